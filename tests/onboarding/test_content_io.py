from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import include, path

from onboarding import queries
from onboarding.api.authoring import authoring_urlpatterns
from onboarding.content_io import ContentImportError, content_export, content_import
from onboarding.models import (
    Condition,
    Criterion,
    Journey,
    PublishedVersion,
    Step,
    Tooltip,
    Walkthrough,
    Workspace,
)
from tests.factories import (
    ConditionFactory,
    EndUserFactory,
    JourneyFactory,
    MilestoneCompletionFactory,
    MilestoneFactory,
    ProgressBarFactory,
    ProgressBarItemFactory,
    ResourceItemFactory,
    ResourceSectionFactory,
    SegmentFactory,
    StepFactory,
    TooltipFactory,
    WalkthroughFactory,
    WorkspaceFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def authored() -> Workspace:
    """A workspace with one of everything, cross-referenced by keys."""
    workspace = WorkspaceFactory()
    segment = SegmentFactory(workspace=workspace, key="trials", match="any")
    tour = WalkthroughFactory(
        workspace=workspace,
        key="tour",
        segment=segment,
        starts_at=datetime(2025, 1, 1, tzinfo=UTC),
        ends_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    StepFactory(walkthrough=tour, position=0, selector="", title="Hi", body_markdown="**Hey**")
    StepFactory(walkthrough=tour, position=1, selector="#go", advance_on="target_click")
    journey = JourneyFactory(workspace=workspace, key="trial")
    toured = MilestoneFactory(
        journey=journey,
        key="toured",
        position=0,
        criterion=Criterion.WALKTHROUGH,
        event_name="",
        walkthrough=tour,
    )
    MilestoneFactory(journey=journey, key="sent", position=1, window=timedelta(days=2))
    ConditionFactory(segment=segment, position=0)
    ConditionFactory(
        segment=segment,
        position=1,
        kind="milestone",
        trait="",
        milestone=toured,
        operator="not_completed",
        value="",
    )
    TooltipFactory(workspace=workspace, key="tip", segment=segment)
    bar = ProgressBarFactory(journey=journey, key="bar")
    ProgressBarItemFactory(
        progress_bar=bar, milestone=toured, action="start_walkthrough", walkthrough=tour
    )
    help_section = ResourceSectionFactory(
        workspace=workspace, key="help", segment=segment, position="bottom-left"
    )
    ResourceItemFactory(
        section=help_section, key="setup", kind="checklist", title="", url="", progress_bar=bar
    )
    ResourceItemFactory(
        section=help_section, key="replay", kind="tour", title="", url="", walkthrough=tour
    )
    ResourceItemFactory(section=help_section, key="docs", body_markdown="Read **this**.")
    ResourceItemFactory(
        section=help_section,
        key="new",
        kind="announcement",
        title="New",
        url="",
        published_on=datetime(2026, 11, 2, tzinfo=UTC).date(),
    )
    return workspace


def test_export_then_import_into_an_empty_workspace_then_export_is_identical(
    authored: Workspace,
) -> None:
    exported = content_export(workspace=authored)
    empty = WorkspaceFactory()
    content_import(workspace=empty, data=exported)
    assert content_export(workspace=empty) == exported
    assert exported["walkthroughs"][0]["segment"] == "trials"
    assert exported["segments"][0]["conditions"][1]["milestone"] == "toured"
    [section] = exported["resource_sections"]
    assert [item["key"] for item in section["items"]] == ["setup", "replay", "docs", "new"]
    assert section["items"][0]["progress_bar"] == "bar"
    assert section["items"][3]["published_on"] == "2026-11-02"


def test_re_importing_the_same_file_changes_nothing(authored: Workspace) -> None:
    exported = content_export(workspace=authored)
    stamps = list(Walkthrough.objects.values_list("updated_at", flat=True))
    step_ids = list(Step.objects.values_list("pk", flat=True))
    result = content_import(workspace=authored, data=exported)
    assert result.changes == []
    assert list(Walkthrough.objects.values_list("updated_at", flat=True)) == stamps
    assert list(Step.objects.values_list("pk", flat=True)) == step_ids


def test_a_dry_run_reports_the_changes_and_writes_nothing(authored: Workspace) -> None:
    data = content_export(workspace=authored)
    data["walkthroughs"][0]["name"] = "Renamed"
    data["tooltips"].append({**data["tooltips"][0], "key": "new-tip"})
    before = content_export(workspace=authored)

    result = content_import(workspace=authored, data=data, dry_run=True, publish=True)

    assert "update walkthrough 'tour'" in result.changes
    assert "create tooltip 'new-tip'" in result.changes
    assert any(c.startswith("publish tooltip 'new-tip'") for c in result.changes)
    assert content_export(workspace=authored) == before
    assert not PublishedVersion.objects.exists()


def test_import_updates_by_key_and_replaces_children(authored: Workspace) -> None:
    data = content_export(workspace=authored)
    data["walkthroughs"][0]["steps"] = data["walkthroughs"][0]["steps"][:1]
    data["walkthroughs"][0]["steps"][0]["title"] = "Only step"
    walkthrough_id = Walkthrough.objects.get(key="tour").pk

    result = content_import(workspace=authored, data=data)

    assert result.changes == ["update walkthrough 'tour'"]
    tour = Walkthrough.objects.get(key="tour")
    assert tour.pk == walkthrough_id
    assert list(tour.steps.values_list("title", flat=True)) == ["Only step"]


def test_import_with_publish_publishes_only_what_changed(authored: Workspace) -> None:
    data = content_export(workspace=authored)
    content_import(workspace=authored, data=data, publish=True)
    # journey, walkthrough, tooltip, progress bar and the resource section naming the last two
    assert PublishedVersion.objects.count() == 5
    again = content_import(workspace=authored, data=data, publish=True)
    assert again.changes == []
    data["tooltips"][0]["body_markdown"] = "Changed"
    content_import(workspace=authored, data=data, publish=True)
    assert PublishedVersion.objects.count() == 6
    live = {v.key: v for v in queries.published_content(workspace=authored)}
    assert live["tip"].snapshot["body_html"] == "<p>Changed</p>"


def bad_file(authored: Workspace, change: Any) -> dict[str, Any]:
    data = copy.deepcopy(content_export(workspace=authored))
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (
            lambda d: d["walkthroughs"][0]["steps"][1].update(selector="li:eq(1)"),
            "walkthroughs[0].steps[1].selector",
            "is not a CSS selector browsers accept",
        ),
        (
            lambda d: d["journeys"][0]["milestones"][1].update(event_name=""),
            "journeys[0].milestones[1].event_name",
            "A milestone with a window needs an event.",
        ),
        (
            lambda d: d["segments"][0]["conditions"][0].update(operator="resembles"),
            "segments[0].conditions[0].operator",
            "Unknown operator 'resembles'",
        ),
        (
            lambda d: d["resource_sections"][0]["items"][1].update(walkthrough=None),
            "resource_sections[0].items[1].walkthrough",
            "Choose the walkthrough this item replays.",
        ),
        (
            lambda d: d["resource_sections"][0]["items"][2].update(url="javascript:alert(1)"),
            "resource_sections[0].items[2].url",
            "is not an http(s) URL",
        ),
        (
            lambda d: d["resource_sections"][0]["items"][3].update(key="docs"),
            "resource_sections[0].items[3].key",
            "Duplicate item key 'docs'",
        ),
        (
            lambda d: d["resource_sections"][0].update(
                items=[{"key": f"i{n}", "title": "T", "url": "/x"} for n in range(51)]
            ),
            "resource_sections[0].items",
            "At most 50 items in a section.",
        ),
        (
            lambda d: d["resource_sections"][0].update(position="middle"),
            "resource_sections[0].position",
            "is not a valid choice",
        ),
        (
            lambda d: d["tooltips"][0].update(segment="nobody"),
            "tooltips[0].segment",
            "No segment with key 'nobody'",
        ),
        (
            lambda d: d["walkthroughs"][0]["steps"][0].update(colour="red"),
            "walkthroughs[0].steps[0].colour",
            "Unknown field",
        ),
        (
            lambda d: d["progress_bars"][0].update(priority="high"),
            "progress_bars[0].priority",
            "A valid integer is required.",
        ),
        (
            lambda d: d["journeys"].append(copy.deepcopy(d["journeys"][0])),
            "journeys[1].key",
            "Duplicate key 'trial'",
        ),
        (lambda d: d.update(format="other/9"), "format", "Expected 'milepost-content/1'"),
    ],
)
def test_a_bad_file_writes_nothing_and_names_the_path(
    authored: Workspace, change: Any, path: str, message: str
) -> None:
    data = bad_file(authored, change)
    data["walkthroughs"][0]["name"] = "Should not be written"
    data["tooltips"].append({**data["tooltips"][0], "key": "should-not-exist", "segment": None})
    before = content_export(workspace=authored)

    with pytest.raises(ContentImportError) as caught:
        content_import(workspace=authored, data=data)

    assert any(e.startswith(f"{path}: ") and message in e for e in caught.value.errors), (
        caught.value.errors
    )
    assert content_export(workspace=authored) == before


def test_a_file_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ContentImportError, match="Expected a JSON object"):
        content_import(workspace=WorkspaceFactory(), data=["not", "an", "object"])


def test_import_refuses_to_drop_a_milestone_end_users_reached(authored: Workspace) -> None:
    journey = Journey.objects.get(key="trial")
    sent = journey.milestones.get(key="sent")
    MilestoneCompletionFactory(
        end_user=EndUserFactory(workspace=authored), milestone=sent, journey=journey
    )
    data = content_export(workspace=authored)
    data["journeys"][0]["milestones"] = data["journeys"][0]["milestones"][:1]
    with pytest.raises(ContentImportError, match=r"journeys\[0\]\.milestones: Removing sent"):
        content_import(workspace=authored, data=data)
    assert journey.milestones.filter(key="sent").exists()


def test_importing_never_touches_another_workspace(authored: Workspace) -> None:
    other = WorkspaceFactory()
    content_import(workspace=other, data=content_export(workspace=authored))
    data = content_export(workspace=other)
    data["segments"][0]["conditions"] = []
    content_import(workspace=other, data=data)
    assert Condition.objects.filter(segment__workspace=authored).count() == 2


# Authoring API (content as code over HTTP) ---------------------------------------------------

# The lead mounts authoring_urlpatterns under /api/v1/; these tests mount them the same way.
urlpatterns = [path("api/v1/", include((authoring_urlpatterns, "api")))]
api = pytest.mark.urls("tests.onboarding.test_content_io")


def bearer(workspace: Workspace) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {workspace.keys['secret_key']}"}


@api
def test_the_api_exports_the_keys_workspace_only(client: Client, authored: Workspace) -> None:
    other = WorkspaceFactory()
    TooltipFactory(workspace=other, key="foreign-tip")
    response = client.get("/api/v1/content", **bearer(authored))
    assert response.status_code == 200
    assert response.json() == content_export(workspace=authored)
    assert "foreign-tip" not in response.content.decode()


@api
def test_the_api_refuses_a_missing_or_publishable_key(client: Client, authored: Workspace) -> None:
    assert client.get("/api/v1/content").status_code == 401
    refused = client.get("/api/v1/content", HTTP_AUTHORIZATION=f"Bearer {authored.publishable_key}")
    assert refused.status_code == 401


@api
def test_the_api_imports_with_a_dry_run_then_for_real(client: Client, authored: Workspace) -> None:
    target = WorkspaceFactory()
    body = content_export(workspace=authored)

    dry = client.put(
        "/api/v1/content?dry_run=1", body, content_type="application/json", **bearer(target)
    )
    assert dry.json() == {
        "changes": [
            "create segment 'trials'",
            "create journey 'trial'",
            "create walkthrough 'tour'",
            "create tooltip 'tip'",
            "create progress bar 'bar'",
            "create resource section 'help'",
        ],
        "dry_run": True,
        "warnings": [],
    }
    assert not Walkthrough.objects.filter(workspace=target).exists()

    real = client.put(
        "/api/v1/content?publish=1", body, content_type="application/json", **bearer(target)
    )
    assert real.status_code == 200
    assert content_export(workspace=target) == body
    assert len(queries.published_content(workspace=target)) == 5


@api
def test_the_api_answers_a_bad_file_with_its_paths_and_writes_nothing(
    client: Client, authored: Workspace
) -> None:
    body = content_export(workspace=authored)
    body["walkthroughs"][0]["steps"][1]["selector"] = "div["
    body["tooltips"][0]["body_markdown"] = "Should not be written"
    response = client.put(
        "/api/v1/content", body, content_type="application/json", **bearer(authored)
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_content"
    assert set(error["fields"]) == {"walkthroughs[0].steps[1].selector"}
    assert Tooltip.objects.get(workspace=authored, key="tip").body_markdown == "A hint."
    response = client.put(
        "/api/v1/content", "[1, 2]", content_type="application/json", **bearer(authored)
    )
    assert response.status_code == 400


@api
def test_the_api_publishes_one_piece(client: Client, authored: Workspace) -> None:
    first = client.post("/api/v1/content/walkthrough/tour/publish", **bearer(authored))
    second = client.post("/api/v1/content/walkthrough/tour/publish", **bearer(authored))
    assert first.status_code == 201
    assert (first.json()["version"], second.json()["version"]) == (1, 2)
    assert client.post("/api/v1/content/widget/tour/publish", **bearer(authored)).status_code == 404
    assert (
        client.post("/api/v1/content/tooltip/nope/publish", **bearer(authored)).status_code == 404
    )


@api
def test_the_api_explains_why_a_piece_cannot_be_published(
    client: Client, authored: Workspace
) -> None:
    response = client.post("/api/v1/content/progress_bar/bar/publish", **bearer(authored))
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["journey"] == ["Publish the journey 'trial' first."]
