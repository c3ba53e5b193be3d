"""The journey funnel read from rollups gives exactly the live count, and stays exact as
onboarding records new starts, completions, erasures and moved start times."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics import receivers, services, tasks
from analytics.inputs import DateRange
from analytics.models import JourneyDayRollup, JourneyStaleDay
from analytics.report import journey_funnel
from onboarding import recording
from onboarding.models import ErasureRecord
from onboarding.signals import journey_started, milestone_completed
from tests.analytics.conftest import at, marks_aged
from tests.factories import (
    JourneyFactory,
    JourneyProgressFactory,
    MilestoneCompletionFactory,
    MilestoneFactory,
)

MARCH = DateRange(date(2025, 3, 1), date(2025, 3, 31))


@pytest.fixture
def journey(workspace):
    journey = JourneyFactory(workspace=workspace, key="trial")
    for position, key in enumerate(("installed", "campaign", "contacts")):
        MilestoneFactory(journey=journey, key=key, position=position)
    return journey


def start(journey, end_user, started_at):
    return JourneyProgressFactory(
        end_user=end_user, journey=journey, workspace=journey.workspace, started_at=started_at
    )


def reach(journey, end_user, key, completed_at):
    return MilestoneCompletionFactory(
        end_user=end_user,
        workspace=journey.workspace,
        milestone=journey.milestones.get(key=key),
        journey=journey,
        completed_at=completed_at,
    )


def counts(result):
    return [(s.key, s.users, s.reached, s.dropped) for s in result.steps]


@pytest.fixture
def crowd(journey, person):
    """Twelve people over ten days of March, some near midnight UTC, who reach milestones in
    and out of order, plus two who started today."""
    people = []
    for index in range(12):
        who = person(f"p{index}")
        started = at(2 + index % 10, 23 if index % 3 == 0 else 1, 30)
        start(journey, who, started)
        if index % 2 == 0:
            reach(journey, who, "installed", started + timedelta(hours=1))
        if index % 3 != 2:
            reach(journey, who, "campaign", started + timedelta(days=1))
        if index % 4 == 0:
            reach(journey, who, "contacts", started + timedelta(days=2))
        people.append(who)
    for index in range(2):
        who = person(f"today{index}")
        start(journey, who, timezone.now() - timedelta(minutes=index))
        reach(journey, who, "installed", timezone.now())
        people.append(who)
    return people


@pytest.mark.parametrize(
    "date_range",
    [
        MARCH,
        DateRange(date(2025, 3, 3), date(2025, 3, 7)),
        DateRange(date(2025, 3, 3), date(2025, 3, 7), "Asia/Tokyo"),
        DateRange(date(2025, 3, 3), date(2025, 3, 7), "America/New_York"),
        DateRange(date(2025, 3, 5), date(2025, 3, 5), "Asia/Kolkata"),
        DateRange(date(2025, 2, 1), date(2025, 2, 28)),
        DateRange(date(2025, 3, 1), timezone.now().date() + timedelta(days=2)),
    ],
    ids=["march", "five-days", "tokyo", "new-york", "one-day-kolkata", "empty", "up-to-today"],
)
def test_the_rollup_funnel_equals_the_live_count(journey, crowd, date_range):
    from_rollups = journey_funnel.journey_funnel(journey=journey, date_range=date_range)
    read_again = journey_funnel.journey_funnel(journey=journey, date_range=date_range)
    live = journey_funnel.journey_funnel(journey=journey, date_range=date_range, fresh=True)

    assert from_rollups == live
    assert read_again == live


def test_the_funnel_keeps_one_rollup_row_per_utc_day_it_read(journey, crowd):
    journey_funnel.journey_funnel(journey=journey, date_range=MARCH)

    rows = JourneyDayRollup.objects.filter(journey=journey)
    assert rows.count() == 30  # March 2nd (the first start) to 31st
    assert rows.get(day=date(2025, 3, 2)).started == 2
    assert sum(rows.values_list("started", flat=True)) == 12


def test_the_rollups_hold_the_exact_numbers_of_a_hand_built_month(journey, crowd):
    result = journey_funnel.journey_funnel(journey=journey, date_range=MARCH)

    assert counts(result) == [
        ("started", 12, 12, 0),
        ("installed", 6, 6, 6),
        ("campaign", 4, 8, 2),
        ("contacts", 2, 3, 2),  # p8 reached contacts without campaign
    ]


def test_a_completion_recorded_after_a_read_shows_in_the_next_read(
    journey, crowd, django_capture_on_commit_callbacks
):
    before = journey_funnel.journey_funnel(journey=journey, date_range=MARCH)
    late = crowd[1]  # started March 3rd, reached only "campaign"

    with django_capture_on_commit_callbacks(execute=True):
        recording.milestone_complete(
            end_user=late, milestone=journey.milestones.get(key="installed"), at=at(20)
        )
    tasks.refresh_journey_rollups()  # as the refresh the commit woke does

    after = journey_funnel.journey_funnel(journey=journey, date_range=MARCH)
    assert after.steps[1].users == before.steps[1].users + 1
    assert after == journey_funnel.journey_funnel(journey=journey, date_range=MARCH, fresh=True)
    assert not JourneyStaleDay.objects.filter(journey=journey).exists()


def test_a_person_who_starts_a_journey_after_a_read_is_counted(
    journey, crowd, person, django_capture_on_commit_callbacks
):
    journey_funnel.journey_funnel(journey=journey, date_range=MARCH)
    newcomer = person("newcomer", signed_up_at=at(4, 12))

    with django_capture_on_commit_callbacks(execute=True):
        recording.milestone_complete(
            end_user=newcomer, milestone=journey.milestones.get(key="installed"), at=at(4, 13)
        )
    tasks.refresh_journey_rollups()

    result = journey_funnel.journey_funnel(journey=journey, date_range=MARCH)
    assert result.steps[0].users == 13
    assert result == journey_funnel.journey_funnel(journey=journey, date_range=MARCH, fresh=True)


def test_erasing_a_person_takes_them_out_of_the_rollup_funnel(
    journey, crowd, django_capture_on_commit_callbacks
):
    journey_funnel.journey_funnel(journey=journey, date_range=MARCH)

    with django_capture_on_commit_callbacks(execute=True):
        recording.end_user_erase(end_user=crowd[0], requested_by=ErasureRecord.Requester.SECRET_KEY)
    tasks.refresh_journey_rollups()

    result = journey_funnel.journey_funnel(journey=journey, date_range=MARCH)
    assert result.steps[0].users == 11
    assert result == journey_funnel.journey_funnel(journey=journey, date_range=MARCH, fresh=True)


def test_a_journey_start_moved_to_another_day_moves_the_person(
    journey, crowd, django_capture_on_commit_callbacks
):
    five_days = DateRange(date(2025, 3, 2), date(2025, 3, 6))
    assert journey_funnel.journey_funnel(journey=journey, date_range=five_days).steps[0].users == 7
    progress = crowd[0].progress.get(journey=journey)  # started March 2nd

    with django_capture_on_commit_callbacks(execute=True):
        progress.started_at = at(25)
        progress.save(update_fields=["started_at"])
    tasks.refresh_journey_rollups()

    assert journey_funnel.journey_funnel(journey=journey, date_range=five_days).steps[0].users == 6
    assert journey_funnel.journey_funnel(
        journey=journey, date_range=MARCH
    ) == journey_funnel.journey_funnel(journey=journey, date_range=MARCH, fresh=True)


def test_reordering_milestones_recounts_people_who_reached_every_earlier_one(journey, crowd):
    journey_funnel.journey_funnel(journey=journey, date_range=MARCH)
    journey.milestones.filter(key="contacts").update(position=0)
    journey.milestones.filter(key="installed").update(position=2)

    result = journey_funnel.journey_funnel(journey=journey, date_range=MARCH)

    assert [s.key for s in result.steps] == ["started", "contacts", "campaign", "installed"]
    assert counts(result) == counts(
        journey_funnel.journey_funnel(journey=journey, date_range=MARCH, fresh=True)
    )


def test_a_milestone_added_later_appears_in_the_rollup_funnel(journey, crowd):
    journey_funnel.journey_funnel(journey=journey, date_range=MARCH)
    MilestoneFactory(journey=journey, key="invited", position=9)
    reach(journey, crowd[0], "invited", at(5))

    result = journey_funnel.journey_funnel(journey=journey, date_range=MARCH)

    assert result.steps[-1].key == "invited"
    assert result.steps[-1].reached == 1
    assert result == journey_funnel.journey_funnel(journey=journey, date_range=MARCH, fresh=True)


def test_receivers_ignore_people_and_journeys_that_are_gone(journey, person):
    progress = start(journey, person("ann"), at(3))
    progress.delete()

    milestone_completed.send(
        sender=None,
        workspace_id=journey.workspace_id,
        end_user_id=progress.end_user_id,
        milestone_id=0,
        journey_id=journey.pk,
        completed_at=at(3),
    )
    journey_started.send(
        sender=None,
        workspace_id=journey.workspace_id,
        end_user_id=progress.end_user_id,
        journey_id=journey.pk + 1000,
        started_at=at(3),
    )

    assert not JourneyStaleDay.objects.exists()


def test_a_receiver_marks_the_quarter_hour_of_the_start_stale_with_a_lookup_and_one_write(
    journey, person, django_assert_max_num_queries
):
    ann = person("ann")
    start(journey, ann, at(3, 23, 59))

    with django_assert_max_num_queries(2):
        receivers.on_milestone_completed(
            sender=None,
            workspace_id=journey.workspace_id,
            end_user_id=ann.pk,
            milestone_id=0,
            journey_id=journey.pk,
            completed_at=at(4),
        )

    assert list(JourneyStaleDay.objects.values_list("day", "slice")) == [(date(2025, 3, 3), 95)]


def test_a_mark_set_while_a_slice_was_counted_again_is_kept_as_new_for_reports(journey):
    services.journey_slice_mark_stale(journey_id=journey.pk, started_at=at(3, 0, 5))
    marks_aged()
    seen = JourneyStaleDay.objects.get().marked_at
    services.journey_slice_mark_stale(journey_id=journey.pk, started_at=at(3, 0, 10))
    counted_from = timezone.now()

    services.journey_rollups_store(
        journey=journey,
        milestone_ids=[],
        slices={date(2025, 3, 3): services.empty_slices(0)},
        durations={},
        marks_seen={(date(2025, 3, 3), 0): seen},
        counted_from=counted_from,
    )

    kept = JourneyStaleDay.objects.get(day=date(2025, 3, 3), slice=0)
    # Only what committed after the count began is left: the refresh's, not yet a report's.
    assert kept.first_marked_at == counted_from


def test_the_rollups_use_utc_days_whatever_the_time_zone_of_the_start(journey, person):
    tokyo_morning = datetime(2025, 3, 4, 8, 0, tzinfo=UTC).astimezone(
        DateRange(date(2025, 3, 4), date(2025, 3, 4), "Asia/Tokyo").zone
    )
    start(journey, person("ann"), tokyo_morning)
    journey_funnel.journey_funnel(journey=journey, date_range=MARCH)

    assert JourneyDayRollup.objects.get(journey=journey, day=date(2025, 3, 4)).started == 1


def test_a_read_right_after_a_completion_today_answers_from_the_stored_rows_until_the_refresh(
    journey, crowd, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    recent_days = DateRange(timezone.now().date() - timedelta(days=3), timezone.now().date())
    before = journey_funnel.journey_funnel(journey=journey, date_range=recent_days)
    current_read = queries_of_a_read(journey, recent_days)
    with django_capture_on_commit_callbacks(execute=True):
        recording.milestone_complete(
            end_user=crowd[-1], milestone=journey.milestones.get(key="campaign")
        )
    with django_assert_max_num_queries(current_read):
        at_once = journey_funnel.journey_funnel(journey=journey, date_range=recent_days)

    tasks.refresh_journey_rollups()  # as the refresh the commit woke does, within a second

    after = journey_funnel.journey_funnel(journey=journey, date_range=recent_days)
    assert at_once == before  # the stored rows, counted before the completion
    assert after.steps[2].reached == before.steps[2].reached + 1
    assert after == journey_funnel.journey_funnel(
        journey=journey, date_range=recent_days, fresh=True
    )


def queries_of_a_read(journey, date_range):
    with CaptureQueriesContext(connection) as read:
        journey_funnel.journey_funnel(journey=journey, date_range=date_range)
    return len(read.captured_queries)


def test_a_report_counts_a_completion_itself_once_its_mark_is_older_than_the_bound(
    journey, crowd, django_capture_on_commit_callbacks
):
    before = journey_funnel.journey_funnel(journey=journey, date_range=MARCH)
    with django_capture_on_commit_callbacks(execute=True):
        recording.milestone_complete(
            end_user=crowd[1], milestone=journey.milestones.get(key="installed"), at=at(20)
        )
    assert journey_funnel.journey_funnel(journey=journey, date_range=MARCH) == before

    marks_aged()  # the refresh is down

    after = journey_funnel.journey_funnel(journey=journey, date_range=MARCH)
    assert after.steps[1].users == before.steps[1].users + 1
    assert after == journey_funnel.journey_funnel(journey=journey, date_range=MARCH, fresh=True)
    assert not JourneyStaleDay.objects.filter(journey=journey).exists()


def test_a_quarter_hour_marked_again_and_again_is_counted_by_a_report_from_its_first_mark(
    journey, crowd, person
):
    """A steady stream of completions keeps moving the mark: the bound runs from the first."""
    before = journey_funnel.journey_funnel(journey=journey, date_range=MARCH)
    start(journey, person("newcomer"), at(4, 12))
    services.journey_slice_mark_stale(journey_id=journey.pk, started_at=at(4, 12))
    marks_aged()
    services.journey_slice_mark_stale(journey_id=journey.pk, started_at=at(4, 12, 1))

    after = journey_funnel.journey_funnel(journey=journey, date_range=MARCH)

    assert after.steps[0].users == before.steps[0].users + 1


def test_a_time_zones_partial_day_is_read_from_the_slices_of_its_utc_day(journey, crowd):
    tokyo = DateRange(date(2025, 3, 3), date(2025, 3, 7), "Asia/Tokyo")  # from 15:00 UTC, March 2

    from_rollups = journey_funnel.journey_funnel(journey=journey, date_range=tokyo)

    partial = JourneyDayRollup.objects.get(journey=journey, day=date(2025, 3, 2))
    assert sum(partial.slices["started"][60:]) == 1  # p0 started at 23:30 UTC
    assert partial.started == 2
    assert from_rollups == journey_funnel.journey_funnel(
        journey=journey, date_range=tokyo, fresh=True
    )
