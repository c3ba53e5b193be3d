from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from onboarding.models import ContentState
from onboarding.recording import events_record
from tests.factories import EndUserFactory

pytestmark = pytest.mark.django_db
START = timezone.now() - timedelta(minutes=10)


def event(name: str, seconds: int, **properties: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "name": name,
        "timestamp": (START + timedelta(seconds=seconds)).isoformat(),
        "properties": properties,
    }


def record(end_user: Any, *events: dict[str, Any]) -> None:
    ack = events_record(
        workspace=end_user.workspace, events=list(events), source="widget", end_user=end_user
    )
    assert ack.rejected == []


def state(end_user: Any, kind: str = "walkthrough", key: str = "tour") -> ContentState:
    return ContentState.objects.get(end_user=end_user, kind=kind, key=key)


@pytest.fixture
def end_user() -> Any:
    return EndUserFactory()


def test_a_started_tour_is_in_progress_at_its_first_step(end_user: Any) -> None:
    record(end_user, event("$walkthrough_started", 0, walkthrough="tour", session="s1"))
    saved = state(end_user)
    assert (saved.status, saved.step_index, saved.times_seen) == ("in_progress", 0, 1)
    assert saved.last_session == "s1"


def test_completing_a_step_moves_the_resume_point_to_the_next_step(end_user: Any) -> None:
    record(
        end_user,
        event("$walkthrough_started", 0, walkthrough="tour"),
        event("$step_viewed", 1, walkthrough="tour", step=0, step_id=1),
        event("$step_completed", 2, walkthrough="tour", step=0, step_id=1),
        event("$step_viewed", 3, walkthrough="tour", step=1, step_id=2),
    )
    assert state(end_user).step_index == 1
    record(end_user, event("$step_completed", 4, walkthrough="tour", step=1, step_id=2))
    assert state(end_user).step_index == 2


def test_completion_and_dismissal_are_recorded(end_user: Any) -> None:
    record(end_user, event("$walkthrough_completed", 0, walkthrough="tour"))
    record(end_user, event("$walkthrough_dismissed", 0, walkthrough="other", step=2))
    assert state(end_user).status == "completed"
    dismissed = state(end_user, key="other")
    assert (dismissed.status, dismissed.step_index) == ("dismissed", 2)


def test_events_in_one_batch_apply_in_timestamp_order(end_user: Any) -> None:
    record(
        end_user,
        event("$walkthrough_completed", 9, walkthrough="tour"),
        event("$step_viewed", 1, walkthrough="tour", step=0),
    )
    assert state(end_user).status == "completed"


def test_a_late_batch_of_older_events_does_not_reopen_a_finished_tour(end_user: Any) -> None:
    record(end_user, event("$walkthrough_completed", 60, walkthrough="tour"))
    record(end_user, event("$step_viewed", 5, walkthrough="tour", step=1))
    assert state(end_user).status == "completed"


def test_a_retried_event_changes_nothing_twice(end_user: Any) -> None:
    started = event("$walkthrough_started", 0, walkthrough="tour")
    record(end_user, started)
    record(end_user, started)
    assert state(end_user).times_seen == 1


def test_tooltips_are_seen_then_dismissed_and_stay_dismissed(end_user: Any) -> None:
    record(end_user, event("$tooltip_viewed", 0, tooltip="tip"))
    assert state(end_user, "tooltip", "tip").status == "seen"
    record(end_user, event("$tooltip_dismissed", 1, tooltip="tip"))
    record(end_user, event("$tooltip_viewed", 2, tooltip="tip"))
    saved = state(end_user, "tooltip", "tip")
    assert (saved.status, saved.times_seen) == ("dismissed", 2)


def test_events_that_do_not_name_their_content_change_no_state(end_user: Any) -> None:
    record(
        end_user,
        event("$walkthrough_started", 0),
        event("$step_viewed", 1, walkthrough="tour", step="two"),
        event("$step_completed", 2, walkthrough="tour", step=-1),
        event("$tooltip_viewed", 3, tooltip=["not", "a", "key"]),
        event("$walkthrough_completed", 4, walkthrough="x" * 81),
        event("campaign_created", 5, walkthrough="tour"),
    )
    assert not ContentState.objects.filter(end_user=end_user).exists()


def test_each_end_user_has_their_own_state(end_user: Any) -> None:
    other = EndUserFactory(workspace=end_user.workspace)
    record(end_user, event("$walkthrough_completed", 0, walkthrough="tour"))
    record(other, event("$walkthrough_started", 0, walkthrough="tour"))
    assert state(end_user).status == "completed"
    assert state(other).status == "in_progress"
