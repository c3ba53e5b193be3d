from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from onboarding.models import ContentState, MilestoneCompletion
from onboarding.recording import events_record
from tests.factories import EndUserFactory
from tests.onboarding.conftest import TrialJourney

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


# One truth across tabs: transitions carry their attempt and the step they came from ----------


def tour(name: str, seconds: int, attempt: int, step: int = 0) -> dict[str, Any]:
    return event(name, seconds, walkthrough="tour", attempt=attempt, step=step)


def shown(end_user: Any) -> tuple[str, int, int]:
    saved = state(end_user)
    return saved.status, saved.step_index, saved.times_seen


def test_next_and_back_move_the_attempt_from_the_step_they_came_from(end_user: Any) -> None:
    record(end_user, tour("$walkthrough_started", 0, 1))
    record(end_user, tour("$step_completed", 1, 1, 0), tour("$step_completed", 2, 1, 1))
    assert shown(end_user) == ("in_progress", 2, 1)
    record(end_user, tour("$step_back", 3, 1, 2))
    assert shown(end_user) == ("in_progress", 1, 1)
    record(end_user, tour("$step_completed", 4, 1, 1), tour("$walkthrough_completed", 5, 1, 1))
    assert shown(end_user) == ("completed", 2, 1)


def test_a_stale_tabs_next_after_a_dismissal_never_brings_the_tour_back(end_user: Any) -> None:
    record(end_user, tour("$walkthrough_started", 0, 1))
    record(end_user, tour("$walkthrough_dismissed", 1, 1, 0))  # tab A: Esc
    # Tab B still shows step 0 of that attempt and presses Next, then Back, then Done.
    record(
        end_user,
        tour("$step_completed", 2, 1, 0),
        tour("$step_back", 3, 1, 1),
        tour("$walkthrough_completed", 4, 1, 0),
    )
    assert shown(end_user) == ("dismissed", 0, 1)


def test_a_stale_tab_cannot_move_a_step_another_tab_already_left(end_user: Any) -> None:
    record(end_user, tour("$walkthrough_started", 0, 1), tour("$step_completed", 1, 1, 0))
    record(end_user, tour("$step_completed", 2, 1, 0))  # a second tab, still on step 0
    record(end_user, tour("$step_back", 3, 1, 0))
    assert shown(end_user) == ("in_progress", 1, 1)


def test_a_start_must_claim_the_next_attempt_so_two_tabs_open_one(end_user: Any) -> None:
    record(end_user, tour("$walkthrough_started", 0, 1), tour("$walkthrough_started", 1, 1))
    assert shown(end_user) == ("in_progress", 0, 1)
    record(end_user, tour("$walkthrough_dismissed", 2, 1))
    record(end_user, tour("$walkthrough_started", 3, 1))  # a tab that never heard of attempt 1
    assert shown(end_user) == ("dismissed", 0, 1)
    record(end_user, tour("$walkthrough_started", 4, 2))  # started again on request
    assert shown(end_user) == ("in_progress", 0, 2)


def test_an_older_attempts_steps_change_nothing(end_user: Any) -> None:
    record(end_user, tour("$walkthrough_started", 0, 1), tour("$walkthrough_started", 1, 2))
    record(end_user, tour("$step_completed", 2, 1, 0), tour("$walkthrough_dismissed", 3, 1))
    assert shown(end_user) == ("in_progress", 0, 2)


def test_a_view_of_an_attempt_records_an_event_and_moves_nothing(end_user: Any) -> None:
    record(end_user, tour("$walkthrough_started", 0, 1), tour("$step_viewed", 1, 1, 3))
    assert shown(end_user) == ("in_progress", 0, 1)


def test_events_without_an_attempt_never_reopen_a_finished_tour(end_user: Any) -> None:
    record(end_user, event("$walkthrough_dismissed", 0, walkthrough="tour", step=0))
    record(end_user, event("$step_completed", 5, walkthrough="tour", step=0))
    assert state(end_user).status == "dismissed"
    record(end_user, event("$walkthrough_started", 9, walkthrough="tour"))
    assert shown(end_user) == ("in_progress", 0, 1)


def test_a_refused_done_completes_no_walkthrough_milestone(trial: TrialJourney) -> None:
    person = EndUserFactory(workspace=trial.workspace)

    def walked(name: str, seconds: int, step: int = 0) -> dict[str, Any]:
        return event(name, seconds, walkthrough="setup-tour", attempt=1, step=step)

    record(person, walked("$walkthrough_started", 0), walked("$walkthrough_dismissed", 1))
    record(person, walked("$walkthrough_completed", 2))  # a stale tab's Done
    assert not MilestoneCompletion.objects.filter(end_user=person).exists()

    record(person, event("$walkthrough_started", 3, walkthrough="setup-tour", attempt=2))
    record(person, event("$walkthrough_completed", 4, walkthrough="setup-tour", attempt=2, step=0))
    assert MilestoneCompletion.objects.filter(end_user=person, milestone=trial.tour).exists()
