from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.core.exceptions import ValidationError

from onboarding import queries, services
from onboarding.models import Criterion, PublishedVersion, Step
from onboarding.realtime import workspace_group
from tests.factories import (
    JourneyFactory,
    MilestoneFactory,
    ProgressBarItemFactory,
    StepFactory,
    TooltipFactory,
    WalkthroughFactory,
    WorkspaceFactory,
)

pytestmark = pytest.mark.django_db


def walkthrough_with_steps(**kwargs: object) -> object:
    walkthrough = WalkthroughFactory(**kwargs)
    StepFactory(walkthrough=walkthrough, position=0, title="First", selector="#one")
    StepFactory(walkthrough=walkthrough, position=1, title="Second", selector="#two")
    return walkthrough


def test_it_numbers_versions_one_two_three() -> None:
    walkthrough = walkthrough_with_steps()
    versions = [services.content_publish(obj=walkthrough).version for _ in range(3)]
    assert versions == [1, 2, 3]


def test_a_published_version_cannot_be_saved_or_deleted_again() -> None:
    version = services.content_publish(obj=walkthrough_with_steps())
    version.snapshot = {"tampered": True}
    with pytest.raises(ValidationError, match="immutable"):
        version.save()
    with pytest.raises(ValidationError, match="immutable"):
        version.delete()
    assert PublishedVersion.objects.get(pk=version.pk).snapshot["steps"][0]["title"] == "First"


def test_editing_a_draft_does_not_change_what_live_users_see() -> None:
    walkthrough = walkthrough_with_steps()
    services.content_publish(obj=walkthrough)
    step = walkthrough.steps.get(title="First")
    step.title = "Edited draft"
    step.save()
    walkthrough.name = "Renamed draft"
    walkthrough.save()

    (live,) = queries.published_content(workspace=walkthrough.workspace)
    assert live.snapshot["name"] != "Renamed draft"
    assert [s["title"] for s in live.snapshot["steps"]] == ["First", "Second"]


def test_publishing_again_makes_the_edit_live() -> None:
    walkthrough = walkthrough_with_steps()
    services.content_publish(obj=walkthrough)
    walkthrough.name = "Renamed"
    walkthrough.save()
    services.content_publish(obj=walkthrough)
    (live,) = queries.published_content(workspace=walkthrough.workspace)
    assert (live.version, live.snapshot["name"]) == (2, "Renamed")


def test_deleting_the_draft_unpublishes_it_but_keeps_the_history() -> None:
    walkthrough = walkthrough_with_steps()
    services.content_publish(obj=walkthrough)
    services.content_unpublish(obj=walkthrough)
    assert queries.published_content(workspace=walkthrough.workspace) == []
    assert PublishedVersion.objects.filter(key=walkthrough.key).count() == 1


def test_restore_brings_back_old_content_as_a_new_version() -> None:
    walkthrough = walkthrough_with_steps(name="Original")
    first = services.content_publish(obj=walkthrough)
    walkthrough.name = "Changed"
    walkthrough.save()
    walkthrough.steps.get(title="Second").delete()
    StepFactory(walkthrough=walkthrough, position=5, title="Third", body_markdown="*new*")
    services.content_publish(obj=walkthrough)

    restored = services.content_restore(version=first)

    assert (restored.version, restored.restored_from) == (3, 1)
    (live,) = queries.published_content(workspace=walkthrough.workspace)
    assert live.snapshot["name"] == "Original"
    assert [s["title"] for s in live.snapshot["steps"]] == ["First", "Second"]
    walkthrough.refresh_from_db()
    assert walkthrough.name == "Original"
    assert list(walkthrough.steps.values_list("title", flat=True)) == ["First", "Second"]
    assert walkthrough.steps.get(title="Second").body_markdown == "Click **here** to continue."


def test_restore_of_a_journey_brings_back_its_milestones() -> None:
    journey = JourneyFactory()
    MilestoneFactory(journey=journey, key="signed-up", name="Signed up", position=0)
    first = services.content_publish(obj=journey)
    MilestoneFactory(journey=journey, key="later", position=1)
    journey.milestones.filter(key="signed-up").update(name="Renamed")
    services.content_publish(obj=journey)

    services.content_restore(version=first)

    assert list(journey.milestones.values_list("key", "name")) == [("signed-up", "Signed up")]
    assert queries.published_journeys(workspace=journey.workspace)[0]["milestones"][0]["key"] == (
        "signed-up"
    )


def test_it_refuses_to_publish_a_step_with_an_invalid_selector_and_names_it() -> None:
    walkthrough = walkthrough_with_steps()
    Step.objects.filter(walkthrough=walkthrough, title="Second").update(selector="div[")
    with pytest.raises(ValidationError) as caught:
        services.content_publish(obj=walkthrough)
    assert any(m.startswith("steps[1].selector:") for m in caught.value.messages)
    assert not PublishedVersion.objects.exists()


def test_it_refuses_to_publish_a_walkthrough_without_steps() -> None:
    with pytest.raises(ValidationError, match="at least one step"):
        services.content_publish(obj=WalkthroughFactory())


def test_it_refuses_a_progress_bar_whose_journey_is_not_published() -> None:
    item = ProgressBarItemFactory()
    with pytest.raises(ValidationError, match="Publish the journey"):
        services.content_publish(obj=item.progress_bar)
    services.content_publish(obj=item.progress_bar.journey)
    version = services.content_publish(obj=item.progress_bar)
    assert version.snapshot["items"][0]["milestone"] == item.milestone.key


def test_journey_snapshot_has_the_contract_shape() -> None:
    walkthrough = walkthrough_with_steps()
    journey = JourneyFactory(workspace=walkthrough.workspace, key="trial")
    MilestoneFactory(journey=journey, key="b", position=2, window=timedelta(days=1))
    MilestoneFactory(
        journey=journey,
        key="a",
        position=1,
        criterion=Criterion.WALKTHROUGH,
        event_name="",
        walkthrough=walkthrough,
    )
    snapshot = services.content_publish(obj=journey).snapshot
    assert set(snapshot) == {"id", "key", "name", "description", "starts_on", "milestones"}
    assert [m["key"] for m in snapshot["milestones"]] == ["a", "b"]
    assert snapshot["milestones"][0]["walkthrough"] == walkthrough.key
    assert snapshot["milestones"][1]["window_seconds"] == 86400


def test_progress_bar_and_tooltip_snapshots_have_the_contract_shape() -> None:
    bar = ProgressBarItemFactory().progress_bar
    services.content_publish(obj=bar.journey)
    bar_snapshot = services.content_publish(obj=bar).snapshot
    assert {"journey", "journey_id", "style", "position", "items"} <= set(bar_snapshot)
    tooltip_snapshot = services.content_publish(obj=TooltipFactory(body_markdown="**Hi**")).snapshot
    assert tooltip_snapshot["body_html"] == "<p><strong>Hi</strong></p>"
    assert {"selector", "trigger", "placement", "segment_id", "starts_at"} <= set(tooltip_snapshot)


def test_publishing_tells_the_workspaces_widgets_after_commit(
    django_capture_on_commit_callbacks: Any,
) -> None:
    walkthrough = walkthrough_with_steps()
    layer = get_channel_layer()

    def publish() -> int:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            services.content_publish(obj=walkthrough)
        return len(callbacks)

    async def listen_while_publishing() -> tuple[int, dict[str, Any]]:
        # One event loop throughout: the Redis pub/sub layer binds channels to their loop.
        channel = await layer.new_channel()
        await layer.group_add(workspace_group(walkthrough.workspace_id), channel)
        callbacks = await sync_to_async(publish)()
        return callbacks, await asyncio.wait_for(layer.receive(channel), timeout=10)

    callbacks, received = async_to_sync(listen_while_publishing)()
    assert callbacks == 1
    assert received["message"] == {"type": "content_changed"}


def test_version_history_lists_newest_first() -> None:
    tooltip = TooltipFactory()
    for _ in range(3):
        services.content_publish(obj=tooltip)
    history = queries.version_history(kind="tooltip", object_id=tooltip.pk)
    assert [v.version for v in history] == [3, 2, 1]


def test_published_content_is_scoped_to_the_workspace() -> None:
    mine, theirs = WorkspaceFactory(), WorkspaceFactory()
    services.content_publish(obj=TooltipFactory(workspace=mine))
    services.content_publish(obj=TooltipFactory(workspace=theirs))
    assert [v.workspace_id for v in queries.published_content(workspace=mine)] == [mine.pk]
