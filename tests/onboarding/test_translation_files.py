"""Translation files (PO, XLIFF, CSV, JSON) through the service, the commands, the authoring
API, the socket's language and admin: idempotent, all or nothing, errors naming the line (or
unit) and field."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
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


X = "{urn:oasis:names:tc:xliff:document:1.2}"


def parsed(text: str) -> ET.Element:
    return ET.fromstring(text)  # noqa: S314 (our own export)


def translated_xliff(workspace: Workspace, texts: dict[str, str]) -> str:
    """The exported XLIFF with a <target> for each source in `texts`, as a tool writes it."""
    root = parsed(translation_files.export(workspace=workspace, locale="fr", fmt="xliff"))
    for unit in root.iter(f"{X}trans-unit"):
        source = unit.findtext(f"{X}source") or ""
        if source in texts:
            ET.SubElement(unit, f"{X}target", {"state": "translated"}).text = texts[source]
    return ET.tostring(root, encoding="unicode")


def test_an_xliff_file_round_trips_idempotently(workspace: Workspace, tour: Walkthrough) -> None:
    sid = step_id(tour)
    exported = translation_files.export(workspace=workspace, locale="fr", fmt="xliff")
    root = parsed(exported)
    [file] = root.findall(f"{X}file")
    assert (root.get("version"), file.get("source-language"), file.get("target-language")) == (
        "1.2", "en", "fr",
    )  # fmt: skip
    units = {u.get("id"): u.findtext(f"{X}source") for u in root.iter(f"{X}trans-unit")}
    assert units == {
        "walkthrough:tour:name": "Welcome tour",
        f"walkthrough:tour:steps.{sid}.title": "Welcome",
        f"walkthrough:tour:steps.{sid}.body_markdown": "Hello.",
    }
    translated = translated_xliff(workspace, {"Welcome tour": "Visite", "Welcome": "Bienvenue"})

    first = translation_files.translations_import(workspace=workspace, text=translated, fmt="xliff")
    again = translation_files.export(workspace=workspace, locale="fr", fmt="xliff")
    second = translation_files.translations_import(workspace=workspace, text=again, fmt="xliff")

    assert (first.locale, first.created, first.skipped_empty) == ("fr", 2, 0)
    assert (second.created, second.updated, second.unchanged) == (0, 0, 2)
    assert Translation.objects.get(path=f"steps.{sid}.title").text == "Bienvenue"
    # Exported, imported, exported: the same file, byte for byte.
    assert translation_files.export(workspace=workspace, locale="fr", fmt="xliff") == again
    assert 'id="walkthrough:tour:name"' in again
    assert '<target state="translated">Visite</target>' in again


def test_an_xliff_unit_that_is_new_or_empty_is_skipped_not_deleted(
    workspace: Workspace, tour: Walkthrough
) -> None:
    translation_files.translations_import(
        workspace=workspace, text=translated_xliff(workspace, {"Welcome": "Bienvenue"}),
        fmt="xliff",
    )  # fmt: skip
    root = parsed(translation_files.export(workspace=workspace, locale="fr", fmt="xliff"))
    for unit in root.iter(f"{X}trans-unit"):
        target = unit.find(f"{X}target")
        if target is not None:
            target.set("state", "needs-translation")
            target.text = "Bienvenue ?"

    result = translation_files.translations_import(
        workspace=workspace, text=ET.tostring(root, encoding="unicode"), fmt="xliff"
    )

    assert (result.created, result.updated) == (0, 0)
    assert Translation.objects.get(path=f"steps.{step_id(tour)}.title").text == "Bienvenue"


def test_xliff_mistakes_are_refused_naming_the_unit(
    workspace: Workspace, tour: Walkthrough
) -> None:
    def refused(text: str) -> list[str]:
        with pytest.raises(ValidationError) as error:
            translation_files.translations_import(workspace=workspace, text=text, fmt="xliff")
        return error.value.messages

    sid = step_id(tour)
    good = translated_xliff(workspace, {"Welcome": "Bienvenue"})
    inline = good.replace("Bienvenue</", 'Bien<ns0:g id="1">venue</ns0:g></')
    assert refused(inline) == [
        f"trans-unit 'walkthrough:tour:steps.{sid}.title': <g> inside <target>: only plain text "
        "is read."
    ]
    moved = good.replace(f"steps.{sid}.title", "steps.999999.title")
    assert refused(moved) == [
        "trans-unit 'walkthrough:tour:steps.999999.title': path: walkthrough 'tour' has no text "
        "at 'steps.999999.title'."
    ]
    assert refused(good.replace('id="walkthrough:tour:name"', 'id="name"')) == [
        "trans-unit 'name': the id is not kind:key:path, as exported."
    ]
    assert refused("<xliff version='2.0' xmlns='urn:oasis:names:tc:xliff:document:2.0'/>")[
        0
    ].startswith("Not XLIFF 1.2")
    assert refused("<xliff")[0].startswith("Not XML")
    bomb = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xliff>&a;</xliff>'
    assert refused(bomb) == ["Not read: an XLIFF file has no DOCTYPE."]
    assert not Translation.objects.exists()


def test_the_command_reads_an_xlf_file_by_its_name(
    workspace: Workspace, tour: Walkthrough, tmp_path: Path
) -> None:
    out = tmp_path / "fr.xlf"
    call_command("translations_export", "acme-test", "fr", "--format", "xliff", "-o", str(out))
    root = parsed(out.read_text(encoding="utf-8"))
    for unit in root.iter(f"{X}trans-unit"):
        if unit.findtext(f"{X}source") == "Welcome":
            ET.SubElement(unit, f"{X}target").text = "Bienvenue"
    out.write_text(ET.tostring(root, encoding="unicode"), encoding="utf-8")
    stdout = io.StringIO()

    call_command("translations_import", "acme-test", str(out), stdout=stdout)

    assert stdout.getvalue().strip() == "fr: 1 new, 0 changed, 0 unchanged, 0 left untranslated."


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
