"""The journey rollups are kept current after each commit, a quarter hour of starts at a time,
today included: whatever commits, refreshes and reads interleave (concurrent completions,
signals and refreshes run twice, erasures, retention purges), journey funnel and velocity equal
a count from scratch, in every time zone (UTC+5:30, +5:45, a daylight-saving day)."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics import journey_rollups, receivers, tasks
from analytics.inputs import DateRange
from analytics.models import JourneyDayRollup, JourneyStaleDay
from analytics.report import journey_funnel, milestone_velocity
from onboarding import recording, retention
from onboarding.models import ErasureRecord, MilestoneCompletion
from tests.analytics.conftest import at
from tests.factories import (
    EndUserFactory,
    JourneyFactory,
    JourneyProgressFactory,
    MilestoneFactory,
)

MARCH = DateRange(date(2025, 3, 1), date(2025, 3, 31))
ZONES = ("UTC", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu")


@pytest.fixture
def journey(workspace):
    journey = JourneyFactory(workspace=workspace, key="trial")
    for position, window in enumerate([None, None, timedelta(days=3)]):
        MilestoneFactory(journey=journey, key=f"m{position}", position=position, window=window)
    return journey


def today_range(zone: str = "UTC", days: int = 3) -> DateRange:
    today = timezone.now().astimezone(ZoneInfo(zone)).date()
    return DateRange(today - timedelta(days=days), today, zone)


def assert_equal_to_a_count_from_scratch(journey, ranges):
    now = timezone.now()
    for date_range in ranges:
        assert journey_funnel.journey_funnel(
            journey=journey, date_range=date_range
        ) == journey_funnel.journey_funnel(journey=journey, date_range=date_range, fresh=True)
        assert milestone_velocity.milestone_velocity(
            journey=journey, date_range=date_range, now=now
        ) == milestone_velocity.milestone_velocity(
            journey=journey, date_range=date_range, now=now, fresh=True
        )


def people_started(journey, workspace, starts):
    people = []
    for index, started_at in enumerate(starts):
        who = EndUserFactory(workspace=workspace, external_id=f"p{index}")
        JourneyProgressFactory(end_user=who, journey=journey, started_at=started_at)
        people.append(who)
    return people


@pytest.mark.django_db(transaction=True)
def test_concurrent_completions_refreshes_and_reads_leave_the_rollups_exact(workspace, journey):
    now = timezone.now()
    # Starts today and yesterday, on quarter-hour edges and the half and three-quarter hours
    # where Kolkata's and Kathmandu's days begin (18:30 and 18:15 UTC).
    starts = [now - timedelta(minutes=7 * i) for i in range(8)] + [
        datetime.combine(now.date() - timedelta(days=1), datetime.min.time(), UTC)
        + timedelta(hours=18, minutes=minutes)
        for minutes in (14, 15, 29, 30, 44, 45)
    ]
    people = people_started(journey, workspace, starts)
    milestones = list(journey.milestones.order_by("position"))
    ranges = [today_range(zone) for zone in ZONES]
    for date_range in ranges:  # the rollups exist before anything changes
        journey_funnel.journey_funnel(journey=journey, date_range=date_range)
    go = threading.Barrier(6)
    done = threading.Event()
    failures: list[BaseException] = []

    def complete(chosen: list[int]) -> None:
        try:
            go.wait()
            for index in chosen:
                for milestone in milestones[: 1 + index % 3]:
                    recording.milestone_complete(
                        end_user=people[index],
                        milestone=milestone,
                        at=starts[index] + timedelta(minutes=3 * (index + 1)),
                    )
        except BaseException as error:
            failures.append(error)
        finally:
            connection.close()

    def refresh_and_read() -> None:
        try:
            go.wait()
            while not done.is_set():
                journey_rollups.refresh_stale()
                journey_funnel.journey_funnel(journey=journey, date_range=ranges[2])
        except BaseException as error:
            failures.append(error)
        finally:
            connection.close()

    # Two writers share every person, so one person's milestones commit side by side.
    writers = [threading.Thread(target=complete, args=(list(range(k, 14, 2)),)) for k in (0, 1)]
    writers += [threading.Thread(target=complete, args=(list(range(14))[::-1],)) for _ in (0, 1)]
    others = [threading.Thread(target=refresh_and_read) for _ in (0, 1)]
    for thread in writers + others:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    for thread in others:
        thread.join()

    assert failures == []
    assert MilestoneCompletion.objects.filter(journey=journey).count() == sum(
        1 + index % 3 for index in range(14)
    )
    # The readers may have stopped before the last commits' marks were counted: a report
    # leaves marks younger than MILEPOST_ROLLUP_FRESH_SECONDS to the refresh those commits woke.
    journey_rollups.refresh_stale()
    assert_equal_to_a_count_from_scratch(journey, ranges)
    funnel = journey_funnel.journey_funnel(journey=journey, date_range=ranges[0])
    assert funnel.steps[1].reached == 14  # everyone reached the first milestone
    assert not JourneyStaleDay.objects.filter(journey=journey).exists()


def test_a_signal_and_a_refresh_run_twice_count_each_completion_once(
    journey, person, django_capture_on_commit_callbacks
):
    ann = person("ann")
    JourneyProgressFactory(end_user=ann, journey=journey, started_at=timezone.now())
    journey_funnel.journey_funnel(journey=journey, date_range=today_range())

    with django_capture_on_commit_callbacks(execute=True):
        completion = recording.milestone_complete(
            end_user=ann, milestone=journey.milestones.get(key="m0")
        )
    # A retried task or a signal delivered again: the same mark, the same slice counted again.
    receivers.on_milestone_completed(
        sender=None,
        workspace_id=journey.workspace_id,
        end_user_id=ann.pk,
        milestone_id=completion.milestone_id,
        journey_id=journey.pk,
        completed_at=completion.completed_at,
    )
    tasks.refresh_journey_rollups()
    tasks.refresh_journey_rollups()

    result = journey_funnel.journey_funnel(journey=journey, date_range=today_range())
    assert [step.reached for step in result.steps] == [1, 1, 0, 0]
    assert_equal_to_a_count_from_scratch(journey, [today_range(zone) for zone in ZONES])


def test_an_erasure_and_a_retention_purge_leave_the_rollups_exact(
    workspace, journey, person, django_capture_on_commit_callbacks
):
    now = timezone.now()
    people = [person(f"p{index}") for index in range(4)]
    for index, who in enumerate(people):
        JourneyProgressFactory(
            end_user=who, journey=journey, started_at=now - timedelta(hours=3 * index)
        )
    ranges = [today_range(zone) for zone in ZONES]
    journey_funnel.journey_funnel(journey=journey, date_range=ranges[0])
    with django_capture_on_commit_callbacks(execute=True):
        for who in people:
            recording.milestone_complete(end_user=who, milestone=journey.milestones.get(key="m0"))
    tasks.refresh_journey_rollups()

    with django_capture_on_commit_callbacks(execute=True):
        recording.end_user_erase(end_user=people[1], requested_by=ErasureRecord.Requester.ADMIN)
    with django_capture_on_commit_callbacks(execute=True):
        retention.events_purge(
            workspace_id=workspace.pk, before=now + timedelta(days=1), batch_size=100
        )
    tasks.refresh_journey_rollups()

    result = journey_funnel.journey_funnel(journey=journey, date_range=ranges[0])
    assert [step.reached for step in result.steps] == [3, 3, 0, 0]
    assert_equal_to_a_count_from_scratch(journey, ranges)


@pytest.mark.parametrize(
    ("zone", "inside"),
    [
        # Kolkata's March 5th begins at 18:30 UTC on the 4th, Kathmandu's at 18:15.
        ("Asia/Kolkata", [(4, 18, 30), (4, 18, 44), (5, 18, 14), (5, 18, 15), (5, 18, 29)]),
        ("Asia/Kathmandu", [(4, 18, 15), (4, 18, 29), (4, 18, 30), (4, 18, 44), (5, 18, 14)]),
    ],
)
def test_a_day_off_the_hour_is_read_from_stored_quarter_hours(journey, workspace, zone, inside):
    edges = [(4, 18, 14), (4, 18, 15), (4, 18, 29), (4, 18, 30), (4, 18, 44)]
    edges += [(5, 18, 14), (5, 18, 15), (5, 18, 29), (5, 18, 30)]
    people = people_started(journey, workspace, [at(d, h, m) for d, h, m in edges])
    for who in people:
        MilestoneCompletion.objects.create(
            end_user=who,
            workspace=workspace,
            journey=journey,
            milestone=journey.milestones.get(key="m0"),
            completed_at=at(6),
            source="server",
        )
    one_day = DateRange(date(2025, 3, 5), date(2025, 3, 5), zone)
    journey_funnel.journey_funnel(journey=journey, date_range=MARCH)  # the rollups are counted

    with CaptureQueriesContext(connection) as queries:
        result = journey_funnel.journey_funnel(journey=journey, date_range=one_day)

    assert result.steps[0].users == len(inside)
    assert result == journey_funnel.journey_funnel(journey=journey, date_range=one_day, fresh=True)
    completions = MilestoneCompletion._meta.db_table
    assert not [q["sql"] for q in queries.captured_queries if completions in q["sql"]]
    march = DateRange(date(2025, 3, 1), date(2025, 3, 31), zone)
    assert_equal_to_a_count_from_scratch(journey, [one_day, march])


def test_a_daylight_saving_day_is_one_day(journey, workspace):
    # New York's March 9th 2025 runs from 05:00 UTC to 04:00 UTC on the 10th (23 hours).
    starts = [at(9, 4, 30), at(9, 5, 0), at(10, 3, 59), at(10, 4, 0), at(10, 4, 30)]
    people_started(journey, workspace, starts)
    dst_day = DateRange(date(2025, 3, 9), date(2025, 3, 9), "America/New_York")

    result = journey_funnel.journey_funnel(journey=journey, date_range=dst_day)

    assert result.steps[0].users == 2
    assert_equal_to_a_count_from_scratch(
        journey, [dst_day, DateRange(date(2025, 3, 3), date(2025, 3, 16), "America/New_York")]
    )


def test_after_the_scheduled_refresh_a_report_reads_only_stored_rows(
    journey, person, django_capture_on_commit_callbacks
):
    ann, bob = person("ann"), person("bob", signed_up_at=timezone.now())
    JourneyProgressFactory(end_user=ann, journey=journey, started_at=timezone.now())
    journey_funnel.journey_funnel(journey=journey, date_range=today_range())
    with django_capture_on_commit_callbacks(execute=True):  # bob starts as he reaches m0
        recording.milestone_complete(end_user=ann, milestone=journey.milestones.get(key="m0"))
        recording.milestone_complete(end_user=bob, milestone=journey.milestones.get(key="m0"))
    assert JourneyStaleDay.objects.filter(journey=journey).exists()

    tasks.refresh_journey_rollups()

    assert not JourneyStaleDay.objects.filter(journey=journey).exists()
    today = JourneyDayRollup.objects.get(journey=journey, day=timezone.now().date())
    assert today.started == 2
    with CaptureQueriesContext(connection) as queries:
        result = journey_funnel.journey_funnel(journey=journey, date_range=today_range())
    assert [step.reached for step in result.steps] == [2, 2, 0, 0]
    written = [q["sql"] for q in queries.captured_queries if q["sql"].startswith(("INSERT", "UP"))]
    completions = MilestoneCompletion._meta.db_table
    assert written == []
    assert not [q["sql"] for q in queries.captured_queries if completions in q["sql"]]
