from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from onboarding import services
from onboarding.models import Condition, ContentState, LifecycleStage, Walkthrough
from onboarding.targeting import content_for
from tests.factories import (
    ConditionFactory,
    ContentStateFactory,
    EndUserFactory,
    EventFactory,
    JourneyProgressFactory,
    MilestoneCompletionFactory,
    MilestoneFactory,
    ProgressBarFactory,
    ProgressBarItemFactory,
    SegmentFactory,
    StepFactory,
    TooltipFactory,
    WalkthroughFactory,
    WorkspaceFactory,
)

pytestmark = pytest.mark.django_db
Frequency = Walkthrough.Frequency


def published_walkthrough(workspace: Any, **kwargs: Any) -> Walkthrough:
    walkthrough = WalkthroughFactory(workspace=workspace, **kwargs)
    StepFactory(walkthrough=walkthrough, position=0, title="Hello", selector="")
    StepFactory(walkthrough=walkthrough, position=1, title="Stats", selector="#stats")
    services.content_publish(obj=walkthrough)
    return walkthrough


def keys(content: dict[str, Any], kind: str) -> list[str]:
    return [item["key"] for item in content[kind]]


@pytest.fixture
def workspace() -> Any:
    return WorkspaceFactory()


@pytest.fixture
def end_user(workspace: Any) -> Any:
    return EndUserFactory(workspace=workspace, traits={"plan": "trial", "role": "admin"})


def test_it_sends_published_content_with_steps_in_order(workspace: Any, end_user: Any) -> None:
    tour = published_walkthrough(workspace, key="welcome-tour", name="Welcome")
    content = content_for(end_user=end_user, session="s1")
    [sent] = content["walkthroughs"]
    assert sent["key"] == "welcome-tour"
    assert sent["auto_start"] is True
    assert sent["state"] is None
    assert [step["title"] for step in sent["steps"]] == ["Hello", "Stats"]
    assert sent["steps"][1]["selector"] == "#stats"
    assert "body_markdown" not in sent["steps"][0]
    assert tour.key == sent["key"]


def test_it_never_sends_a_draft_that_was_not_published(workspace: Any, end_user: Any) -> None:
    WalkthroughFactory(workspace=workspace)
    TooltipFactory(workspace=workspace)
    content = content_for(end_user=end_user)
    assert content == {"walkthroughs": [], "tooltips": [], "progress_bars": []}


def test_it_sends_the_published_version_not_the_edited_draft(workspace: Any, end_user: Any) -> None:
    tooltip = TooltipFactory(workspace=workspace, body_markdown="Published words")
    services.content_publish(obj=tooltip)
    tooltip.body_markdown = "Draft words"
    tooltip.save()
    [sent] = content_for(end_user=end_user)["tooltips"]
    assert "Published words" in sent["body_html"]


def test_it_leaves_out_content_of_another_workspace(end_user: Any) -> None:
    published_walkthrough(WorkspaceFactory())
    assert content_for(end_user=end_user)["walkthroughs"] == []


def test_it_applies_trait_segments_on_the_server(workspace: Any, end_user: Any) -> None:
    admins = SegmentFactory(workspace=workspace)
    ConditionFactory(segment=admins, trait="role", operator="eq", value="admin")
    paying = SegmentFactory(workspace=workspace)
    ConditionFactory(segment=paying, trait="plan", operator="eq", value="paid")
    published_walkthrough(workspace, key="for-admins", segment=admins)
    published_walkthrough(workspace, key="for-paying", segment=paying)
    assert keys(content_for(end_user=end_user), "walkthroughs") == ["for-admins"]


def test_it_applies_milestone_and_lifecycle_segments(workspace: Any, end_user: Any) -> None:
    milestone = MilestoneFactory(journey__workspace=workspace)
    done = SegmentFactory(workspace=workspace)
    ConditionFactory(
        segment=done, kind=Condition.Kind.MILESTONE, trait="", milestone=milestone,
        operator="completed", value="",
    )  # fmt: skip
    pql = SegmentFactory(workspace=workspace)
    ConditionFactory(
        segment=pql, kind=Condition.Kind.LIFECYCLE, trait="", operator="is",
        value=LifecycleStage.PQL,
    )  # fmt: skip
    TooltipFactory(workspace=workspace, key="after-milestone", segment=done)
    TooltipFactory(workspace=workspace, key="for-pqls", segment=pql)
    for tooltip in workspace.tooltips.all():
        services.content_publish(obj=tooltip)
    assert keys(content_for(end_user=end_user), "tooltips") == []

    MilestoneCompletionFactory(end_user=end_user, milestone=milestone)
    end_user.lifecycle_stage = LifecycleStage.PQL
    end_user.save(update_fields=["lifecycle_stage"])
    assert keys(content_for(end_user=end_user), "tooltips") == ["after-milestone", "for-pqls"]


def test_it_applies_event_segments(workspace: Any, end_user: Any) -> None:
    segment = SegmentFactory(workspace=workspace)
    ConditionFactory(
        segment=segment, kind=Condition.Kind.EVENT, trait="", event_name="campaign_created",
        operator="performed", value="",
    )  # fmt: skip
    published_walkthrough(workspace, key="power-tour", segment=segment)
    assert content_for(end_user=end_user)["walkthroughs"] == []
    EventFactory(end_user=end_user, name="campaign_created")
    assert keys(content_for(end_user=end_user), "walkthroughs") == ["power-tour"]


def test_it_respects_the_schedule(workspace: Any, end_user: Any) -> None:
    now = timezone.now()
    published_walkthrough(workspace, key="future", starts_at=now + timedelta(days=1))
    published_walkthrough(workspace, key="past", ends_at=now - timedelta(seconds=1))
    published_walkthrough(
        workspace, key="running", starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1)
    )
    assert keys(content_for(end_user=end_user, now=now), "walkthroughs") == ["running"]
    later = now + timedelta(days=2)
    assert keys(content_for(end_user=end_user, now=later), "walkthroughs") == ["future"]


def test_it_orders_by_priority_then_key(workspace: Any, end_user: Any) -> None:
    published_walkthrough(workspace, key="b-low", priority=0)
    published_walkthrough(workspace, key="a-low", priority=0)
    published_walkthrough(workspace, key="z-high", priority=10)
    assert keys(content_for(end_user=end_user), "walkthroughs") == ["z-high", "a-low", "b-low"]


def test_it_sends_resume_state_for_a_tour_in_progress(workspace: Any, end_user: Any) -> None:
    published_walkthrough(workspace, key="tour", frequency=Frequency.ONCE)
    ContentStateFactory(
        end_user=end_user,
        key="tour",
        status=ContentState.Status.IN_PROGRESS,
        step_index=1,
        times_seen=2,
    )
    [sent] = content_for(end_user=end_user, session="s2")["walkthroughs"]
    assert sent["state"] == {"status": "in_progress", "step": 1, "attempt": 2}


@pytest.mark.parametrize(
    ("frequency", "status", "last_session", "auto_start"),
    [
        (Frequency.ONCE, "completed", "old", False),
        (Frequency.ONCE, "dismissed", "old", False),
        (Frequency.UNTIL_COMPLETED, "completed", "old", False),
        (Frequency.UNTIL_COMPLETED, "dismissed", "now", False),
        (Frequency.UNTIL_COMPLETED, "dismissed", "old", True),
        (Frequency.EVERY_SESSION, "completed", "now", False),
        (Frequency.EVERY_SESSION, "completed", "old", True),
    ],
)
def test_frequency_decides_whether_a_tour_starts_by_itself(
    workspace: Any, end_user: Any, frequency: str, status: str, last_session: str, auto_start: bool
) -> None:
    published_walkthrough(workspace, key="tour", frequency=frequency)
    ContentStateFactory(
        end_user=end_user, key="tour", status=status, last_session=last_session, times_seen=1
    )
    [sent] = content_for(end_user=end_user, session="now")["walkthroughs"]
    assert sent["auto_start"] is auto_start
    # Sent finished too: the tab's next start must claim the attempt after this one.
    assert sent["state"] == {"status": status, "step": 0, "attempt": 1}


def test_a_tour_that_may_not_start_by_itself_is_still_sent_for_a_checklist(
    workspace: Any, end_user: Any
) -> None:
    published_walkthrough(workspace, key="manual", auto_start=False)
    [sent] = content_for(end_user=end_user)["walkthroughs"]
    assert sent["auto_start"] is False


@pytest.mark.parametrize(
    ("frequency", "status", "last_session", "shown"),
    [
        (Frequency.ONCE, "seen", "old", False),
        (Frequency.UNTIL_COMPLETED, "seen", "old", True),
        (Frequency.UNTIL_COMPLETED, "dismissed", "old", False),
        (Frequency.EVERY_SESSION, "dismissed", "now", False),
        (Frequency.EVERY_SESSION, "dismissed", "old", True),
    ],
)
def test_frequency_decides_whether_a_tooltip_shows(
    workspace: Any, end_user: Any, frequency: str, status: str, last_session: str, shown: bool
) -> None:
    tooltip = TooltipFactory(workspace=workspace, key="tip", frequency=frequency)
    services.content_publish(obj=tooltip)
    ContentStateFactory(
        end_user=end_user, kind="tooltip", key="tip", status=status, last_session=last_session
    )
    assert keys(content_for(end_user=end_user, session="now"), "tooltips") == (
        ["tip"] if shown else []
    )


def test_a_progress_bar_hides_once_its_journey_is_complete(workspace: Any, end_user: Any) -> None:
    bar = ProgressBarFactory(journey__workspace=workspace, key="getting-started")
    item = ProgressBarItemFactory(progress_bar=bar, label="Send a message")
    services.content_publish(obj=bar.journey)
    services.content_publish(obj=bar)
    [sent] = content_for(end_user=end_user)["progress_bars"]
    assert sent["journey"] == bar.journey.key
    assert sent["items"] == [
        {"milestone": item.milestone.key, "label": "Send a message", "action": "none",
         "walkthrough": None, "url": ""}
    ]  # fmt: skip
    JourneyProgressFactory(end_user=end_user, journey=bar.journey, completed_at=timezone.now())
    assert content_for(end_user=end_user)["progress_bars"] == []


def test_a_segment_deleted_after_publishing_shows_the_content_to_no_one(
    workspace: Any, end_user: Any
) -> None:
    segment = SegmentFactory(workspace=workspace)
    tooltip = TooltipFactory(workspace=workspace, segment=segment)
    services.content_publish(obj=tooltip)
    tooltip.segment = None
    tooltip.save(update_fields=["segment"])
    segment.delete()
    assert content_for(end_user=end_user)["tooltips"] == []


def test_it_runs_a_fixed_number_of_queries(
    workspace: Any, end_user: Any, django_assert_max_num_queries: Any
) -> None:
    segment = SegmentFactory(workspace=workspace)
    ConditionFactory(segment=segment)
    for index in range(5):
        published_walkthrough(workspace, key=f"tour-{index}", segment=segment)
        services.content_publish(obj=TooltipFactory(workspace=workspace, segment=segment))
    with django_assert_max_num_queries(8):
        content = content_for(end_user=end_user)
    assert len(content["walkthroughs"]) == 5
    assert len(content["tooltips"]) == 5
