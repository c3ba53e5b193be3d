"""Translation files (PO, CSV, JSON) through the service, the commands, the authoring API, the
socket's language and admin: idempotent, all or nothing, errors naming the line and field."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import polib
import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client

from onboarding import services, translation_files
from onboarding.models import Translation, Walkthrough, Workspace
from tests.factories import StepFactory, UserFactory, WalkthroughFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def workspace() -> Workspace:
    return WorkspaceFactory(slug="acme-test")


@pytest.fixture
def tour(workspace: Workspace) -> Walkthrough:
    walkthrough = WalkthroughFactory(workspace=workspace, key="tour", name="Welcome tour")
    StepFactory(walkthrough=walkthrough, title="Welcome", body_markdown="Hello.")
    services.content_publish(obj=walkthrough)
    return walkthrough


def step_id(tour: Walkthrough) -> int:
    step = tour.steps.first()
    assert step is not None
    return step.pk


def translated_po(workspace: Workspace, texts: dict[str, str]) -> str:
    po = polib.pofile(translation_files.export(workspace=workspace, locale="fr", fmt="po"))
    for entry in po:
        entry.msgstr = texts.get(entry.msgid, "")
    return str(po)


def test_a_po_file_round_trips_and_importing_it_twice_changes_nothing(
    workspace: Workspace, tour: Walkthrough
) -> None:
    po = translated_po(workspace, {"Welcome tour": "Visite", "Welcome": "Bienvenue"})

    first = translation_files.translations_import(workspace=workspace, text=po, fmt="po")
    second = translation_files.translations_import(workspace=workspace, text=po, fmt="po")

    assert (first.locale, first.created, first.skipped_empty) == ("fr", 2, 1)
    assert (second.created, second.updated, second.unchanged) == (0, 0, 2)
    assert Translation.objects.get(path=f"steps.{step_id(tour)}.title").text == "Bienvenue"
    exported = polib.pofile(translation_files.export(workspace=workspace, locale="fr", fmt="po"))
    assert exported.metadata["Language"] == "fr"
    assert {e.msgid: e.msgstr for e in exported}["Welcome"] == "Bienvenue"


def test_csv_and_json_exports_list_every_text_with_its_translation(
    workspace: Workspace, tour: Walkthrough
) -> None:
    rows = list(
        csv.DictReader(
            io.StringIO(translation_files.export(workspace=workspace, locale="de", fmt="csv"))
        )
    )
    document = json.loads(translation_files.export(workspace=workspace, locale="de", fmt="json"))

    sid = step_id(tour)
    assert [r["path"] for r in rows] == ["name", f"steps.{sid}.title", f"steps.{sid}.body_markdown"]
    assert rows[1]["source"] == "Welcome"
    assert rows[1]["translation"] == ""
    assert document["locale"] == "de"
    assert document["translations"][0]["source"] == "Welcome tour"


def test_a_bad_file_is_refused_whole_and_each_problem_names_its_line_and_field(
    workspace: Workspace, tour: Walkthrough
) -> None:
    sid = step_id(tour)
    text = (
        "kind,key,path,source,translation\n"
        f"walkthrough,tour,steps.{sid}.title,Welcome,Bienvenue\n"
        "walkthrough,nope,name,,Visite\n"
        "walkthrough,tour,steps.999999.title,,Rien\n"
        "poster,tour,name,,Bannière\n"
    )

    with pytest.raises(ValidationError) as refused:
        translation_files.translations_import(
            workspace=workspace, text=text, fmt="csv", locale="fr"
        )

    assert refused.value.messages == [
        "line 3: key: no walkthrough 'nope' in this workspace.",
        "line 4: path: walkthrough 'tour' has no text at 'steps.999999.title'.",
        "line 5: kind: 'poster' is not a kind of content.",
    ]
    assert not Translation.objects.exists()  # the good line 2 was not written either


def test_json_and_language_mistakes_are_named(workspace: Workspace, tour: Walkthrough) -> None:
    def refused(text: str, **kwargs: Any) -> dict[str, list[str]]:
        with pytest.raises(ValidationError) as error:
            translation_files.translations_import(workspace=workspace, text=text, **kwargs)
        return error.value.message_dict

    body = json.dumps({"locale": "fr", "translations": [{"kind": "walkthrough", "key": 3}]})
    assert "translations[0].key" in refused(body, fmt="json")
    assert "locale" in refused(json.dumps({"translations": []}), fmt="json")
    assert "locale" in refused(json.dumps({"locale": "fr", "translations": []}), fmt="json",
                               locale="de")  # fmt: skip
    # The workspace's own language is edited in the content, not translated.
    assert "locale" in refused(json.dumps({"locale": "en", "translations": []}), fmt="json")
    assert "format" in refused("x", fmt="xlsx", locale="fr")


def test_the_commands_export_and_import_a_file(
    workspace: Workspace, tour: Walkthrough, tmp_path: Path
) -> None:
    out = tmp_path / "fr.po"
    call_command("translations_export", "acme-test", "fr", "--format", "po", "-o", str(out))
    po = polib.pofile(str(out))
    for entry in po:
        entry.msgstr = "Bienvenue" if entry.msgid == "Welcome" else ""
    po.save(str(out))
    stdout = io.StringIO()

    call_command("translations_import", "acme-test", str(out), stdout=stdout)

    assert stdout.getvalue().strip() == "fr: 1 new, 0 changed, 0 unchanged, 2 left untranslated."
    bad = tmp_path / "bad.csv"
    bad.write_text("kind,key,path,translation\nwalkthrough,tour,nope,X\n", encoding="utf-8")
    with pytest.raises(CommandError, match="line 2: path: walkthrough 'tour' has no text"):
        call_command("translations_import", "acme-test", str(bad), "--locale", "fr")


def test_the_authoring_api_exports_and_imports_with_the_secret_key(
    client: Client, workspace: Workspace, tour: Walkthrough
) -> None:
    auth = {"HTTP_AUTHORIZATION": f"Bearer {workspace.keys['secret_key']}"}  # type: ignore[attr-defined]
    sid = step_id(tour)

    exported = client.get("/api/v1/translations/fr?format=json", **auth)
    document = json.loads(exported.content)
    document["translations"][1]["translation"] = "Bienvenue"
    imported = client.put(
        "/api/v1/translations/fr?format=json", json.dumps(document), "application/json", **auth
    )
    bad = client.put(
        "/api/v1/translations/fr?format=csv",
        "kind,key,path,translation\nwalkthrough,tour,name,\nwalkthrough,tour,nope,X\n",
        "text/csv",
        **auth,
    )
    status = client.get("/api/v1/translations", **auth).json()

    assert exported.status_code == 200
    assert imported.json() == {
        "locale": "fr", "created": 1, "updated": 0, "unchanged": 0, "skipped_empty": 2,
    }  # fmt: skip
    assert bad.status_code == 400
    assert bad.json()["error"]["fields"] == {
        "line 3": ["path: walkthrough 'tour' has no text at 'nope'."]
    }
    assert status["items"] == [
        {
            "kind": "walkthrough", "key": "tour", "locale": "fr", "total": 3, "translated": 1,
            "missing": ["name", f"steps.{sid}.body_markdown"], "outdated": [],
        }
    ]  # fmt: skip
    assert client.get("/api/v1/translations/fr").status_code == 401


def test_admin_shows_what_is_untranslated_and_saves_a_translation(
    client: Client, workspace: Workspace, tour: Walkthrough
) -> None:
    user = UserFactory(is_superuser=True)
    client.force_login(user)
    sid = step_id(tour)
    translation_files.translation_set(
        workspace=workspace, kind="walkthrough", key="tour", locale="fr",
        texts=[(f"steps.{sid}.title", "Bienvenue")],
    )  # fmt: skip

    page = client.get("/admin/onboarding/translation/status/").content.decode()
    url = f"/admin/onboarding/translation/translate/{workspace.pk}/walkthrough/tour/fr/"
    form = client.get(url).content.decode()
    saved = client.post(url, {"t:name": "Visite", f"t:steps.{sid}.title": ""})

    assert "1 of 3" in page
    assert f"name, steps.{sid}.body_markdown" in page
    assert "Bienvenue" in form
    assert saved.status_code == 302
    texts = dict(Translation.objects.filter(locale="fr").values_list("path", "text"))
    assert texts == {"name": "Visite"}  # the emptied title went back to the source text
