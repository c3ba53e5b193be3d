"""The "element present" trigger on every content kind (issue 16): a walkthrough, a tooltip or a
survey with `when_present` reaches the widget so that it waits for the element (the walkthrough
without starting by itself, the tooltip inside `surfaces.present`); publishing refuses a
selector browsers reject, naming the field; content as code, the authoring API and admin carry
it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import include, path, reverse
from django.utils import timezone

from onboarding import experiments, queries, services
from onboarding.api.authoring import authoring_urlpatterns
from onboarding.content_io import ContentImportError, content_export, content_import
from onboarding.models import Experiment, PublishedVersion, Survey, Tooltip, Walkthrough
from onboarding.recording import events_record
from onboarding.targeting import content_for
from tests.factories import (
    EndUserFactory,
    StepFactory,
    TooltipFactory,
    UserFactory,
    WalkthroughFactory,
    WorkspaceFactory,
)
from tests.onboarding.test_experiments import person_in

pytestmark = pytest.mark.django_db
urlpatterns = [path("api/v1/", include((authoring_urlpatterns, "api")))]
api = pytest.mark.urls("tests.onboarding.test_element_present")
QUESTIONS = [{"key": "score", "type": "nps", "prompt": "How likely are you to recommend us?"}]


def published_tour(workspace: Any, **fields: Any) -> Walkthrough:
    walkthrough = WalkthroughFactory(workspace=workspace, key="tour", **fields)
    StepFactory(walkthrough=walkthrough, page_url_pattern="/campaigns/*")
    services.content_publish(obj=walkthrough)
    return walkthrough


def test_a_tour_with_the_trigger_does_not_start_by_itself_but_waits_in_surfaces() -> None:
    end_user = EndUserFactory()
    published_tour(end_user.workspace, when_present="#empty-list", wait_timeout_ms=8000)
    content = content_for(end_user=end_user, session="s1")
    # Still sent (a checklist or Milepost.start may start it), but the core leaves it alone.
    assert [(w["key"], w["auto_start"]) for w in content["walkthroughs"]] == [("tour", False)]
    assert content["surfaces"]["present"] == [
        {
            "key": "tour",
            "version": 1,
            "priority": 0,
            "kind": "walkthrough",
            "page_url_pattern": "/campaigns/*",
            "when_present": "#empty-list",
            "wait_timeout_ms": 8000,
        }
    ]


def test_a_tour_without_the_trigger_is_sent_as_before() -> None:
    end_user = EndUserFactory()
    walkthrough = published_tour(end_user.workspace)
    content = content_for(end_user=end_user, session="s1")
    assert content["walkthroughs"][0]["auto_start"] is True
    # No surfaces key: the SDK does not load its lazy bundle for nothing.
    assert "surfaces" not in content
    # Versions published before the trigger existed still equal the draft.
    assert "when_present" not in PublishedVersion.objects.get(kind="walkthrough").snapshot
    assert not queries.draft_differs_from_published(obj=walkthrough)


def test_a_tour_that_may_not_start_by_itself_gets_no_trigger() -> None:
    end_user = EndUserFactory()
    published_tour(
        end_user.workspace, when_present="#empty-list", frequency=Walkthrough.Frequency.ONCE
    )
    events_record(
        workspace=end_user.workspace,
        events=[
            {
                "id": str(uuid.uuid4()),
                "name": "$walkthrough_started",
                "timestamp": timezone.now().isoformat(),
                "properties": {"walkthrough": "tour", "attempt": 1, "step": 0, "session": "s1"},
            }
        ],
        source="widget",
        end_user=end_user,
    )
    content = content_for(end_user=end_user, session="s2")
    assert content["walkthroughs"][0]["auto_start"] is False
    assert "surfaces" not in content


def test_a_tooltip_with_the_trigger_travels_inside_its_surfaces_item() -> None:
    end_user = EndUserFactory()
    plain = TooltipFactory(workspace=end_user.workspace, key="plain")
    waiting = TooltipFactory(
        workspace=end_user.workspace,
        key="waiting",
        selector="#export",
        page_url_pattern="/reports",
        when_present="#report-table",
    )
    services.content_publish(obj=plain)
    services.content_publish(obj=waiting)
    content = content_for(end_user=end_user, session="s1")
    assert [t["key"] for t in content["tooltips"]] == ["plain"]
    [item] = content["surfaces"]["present"]
    assert item["kind"] == "tooltip"
    assert (item["key"], item["page_url_pattern"], item["when_present"]) == (
        "waiting",
        "/reports",
        "#report-table",
    )
    assert item["tooltip"]["selector"] == "#export"
    assert item["tooltip"]["body_html"] == "<p>A hint.</p>"


def test_a_survey_with_the_trigger_carries_it() -> None:
    end_user = EndUserFactory()
    survey = Survey.objects.create(
        workspace=end_user.workspace,
        key="nps",
        name="NPS",
        questions=QUESTIONS,
        when_present="#dashboard-ready",
        wait_timeout_ms=2000,
    )
    services.content_publish(obj=survey)
    [sent] = content_for(end_user=end_user, session="s1")["surfaces"]["surveys"]
    assert (sent["when_present"], sent["wait_timeout_ms"]) == ("#dashboard-ready", 2000)


@pytest.mark.parametrize(
    ("make", "fields", "bad"),
    [
        ("walkthrough", {"when_present": 'div:contains("x")'}, "when_present"),
        ("walkthrough", {"when_present": "#a", "wait_timeout_ms": 0}, "wait_timeout_ms"),
        ("tooltip", {"when_present": "a[["}, "when_present"),
        ("tooltip", {"wait_timeout_ms": 60_001}, "wait_timeout_ms"),
        ("survey", {"when_present": "#x >"}, "when_present"),
    ],
)
def test_publishing_refuses_a_bad_trigger_and_names_the_field(
    make: str, fields: dict[str, Any], bad: str
) -> None:
    workspace = WorkspaceFactory()
    obj: Walkthrough | Tooltip | Survey
    if make == "walkthrough":
        obj = WalkthroughFactory(workspace=workspace, **fields)
        StepFactory(walkthrough=obj)
    elif make == "tooltip":
        obj = TooltipFactory(workspace=workspace, **fields)
    else:
        obj = Survey.objects.create(
            workspace=workspace, key="s", name="S", questions=QUESTIONS, **fields
        )
    with pytest.raises(ValidationError) as error:
        services.content_publish(obj=obj)
    assert any(message.startswith(f"{bad}: ") for message in error.value.messages)
    assert not PublishedVersion.objects.exists()


def test_content_as_code_carries_the_trigger_and_names_a_bad_one_by_path() -> None:
    workspace = WorkspaceFactory()
    walkthrough = WalkthroughFactory(workspace=workspace, key="tour", when_present="#app")
    StepFactory(walkthrough=walkthrough)
    TooltipFactory(workspace=workspace, key="tip", when_present=".ready", wait_timeout_ms=900)
    exported = content_export(workspace=workspace)
    assert exported["walkthroughs"][0]["when_present"] == "#app"
    assert exported["tooltips"][0]["wait_timeout_ms"] == 900
    other = WorkspaceFactory()
    content_import(workspace=other, data=exported, publish=True)
    assert Tooltip.objects.get(workspace=other).when_present == ".ready"
    assert content_for(end_user=EndUserFactory(workspace=other))["surfaces"]["present"]
    # A wait out of range is refused by the file's shape, a selector by the model: by path.
    for section, field, value in (
        ("walkthroughs", "when_present", "#app >"),
        ("tooltips", "wait_timeout_ms", 0),
    ):
        broken = {**exported, section: [{**exported[section][0], field: value}]}
        with pytest.raises(ContentImportError) as error:
            content_import(workspace=other, data=broken)
        assert [line.split(":")[0] for line in error.value.errors] == [f"{section}[0].{field}"]


@api
def test_the_authoring_api_refuses_to_publish_a_bad_trigger(client: Client) -> None:
    workspace = WorkspaceFactory()
    TooltipFactory(workspace=workspace, key="tip", when_present="a[[")
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {workspace.keys['secret_key']}"}
    answer = client.post("/api/v1/content/tooltip/tip/publish", **bearer)
    assert answer.status_code == 400
    assert "when_present" in answer.content.decode()
    assert not PublishedVersion.objects.exists()


def test_admin_shows_the_trigger_and_refuses_a_bad_selector(client: Client) -> None:
    tooltip = TooltipFactory(key="tip")
    client.force_login(UserFactory(username="root", is_superuser=True))
    url = reverse("admin:onboarding_tooltip_change", args=[tooltip.pk])
    page = client.get(url).content.decode()
    assert "Show when this element is present" in page
    form = {
        "workspace": tooltip.workspace_id,
        "key": "tip",
        "name": "Tip",
        "page_url_pattern": "",
        "when_present": "div:contains('x')",
        "wait_timeout_ms": "5000",
        "selector": "#help",
        "body_markdown": "A hint.",
        "trigger": "hotspot",
        "placement": "auto",
        "frequency": "until_completed",
        "priority": "0",
    }
    refused = client.post(url, form)
    assert refused.status_code == 200
    assert "is not a CSS selector browsers accept" in refused.content.decode()
    assert client.post(url, {**form, "when_present": "#report-table"}).status_code == 302
    tooltip.refresh_from_db()
    assert tooltip.when_present == "#report-table"


def test_an_experiment_on_tooltips_with_triggers_sends_only_the_persons_variant() -> None:
    workspace = WorkspaceFactory()
    for key in ("tip-a", "tip-b"):
        services.content_publish(
            obj=TooltipFactory(workspace=workspace, key=key, when_present="#report-table")
        )
    experiment = Experiment.objects.create(
        workspace=workspace,
        key="tip-test",
        name="Tip test",
        content_kind="tooltip",
        content_key="tip-a",
        variants=[
            {"key": "control", "weight": 50, "content_key": "tip-a"},
            {"key": "bold", "weight": 50, "content_key": "tip-b"},
        ],
    )
    experiments.experiment_start(experiment=experiment)
    for variant, key in (("control", "tip-a"), ("bold", "tip-b")):
        person = EndUserFactory(workspace=workspace, external_id=person_in(experiment, variant))
        content = content_for(end_user=person, session="s1")
        assert content["tooltips"] == []
        assert [item["tooltip"]["key"] for item in content["surfaces"]["present"]] == [key]
