"""Milestone velocity equals a person-by-person reckoning of the same people, on a crowd with
completions out of order, before the journey start and on the week boundaries."""

from __future__ import annotations

import random
import zoneinfo
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics import journey_rollups, services, tasks, velocity
from analytics.inputs import DateRange
from analytics.models import JourneyDayRollup, JourneyDurationCut, JourneyStaleDay
from analytics.report import journey_funnel, milestone_velocity, time_to_convert
from analytics.velocity import Durations, duration_grain
from onboarding import recording
from tests.analytics.conftest import at, marks_aged
from tests.factories import (
    JourneyFactory,
    JourneyProgressFactory,
    MilestoneCompletionFactory,
    MilestoneFactory,
)


def nearest_rank(values, percent):
    """The nearest-rank percentile in seconds, floored to velocity's 3 significant digits."""
    if not values:
        return None
    ordered = sorted(values)
    return duration_grain(ordered[max(0, (len(ordered) * percent + 99) // 100 - 1)]) / 1000


def ms(later, earlier):
    return int((later - earlier).total_seconds() * 1000)


def bucket(ms):
    for index, (_, bound) in enumerate(velocity.HISTOGRAM_BOUNDS):
        if bound is not None and ms < bound * 1000:
            return index
    return len(velocity.HISTOGRAM_BOUNDS) - 1


def expected_stats(values):
    return time_to_convert.DurationStats(
        users=len(values),
        median=nearest_rank(values, 50),
        p75=nearest_rank(values, 75),
        p90=nearest_rank(values, 90),
        mean=round(sum(values) / len(values) / 1000, 3) if values else None,
    )


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "Pacific/Auckland"])
def test_velocity_equals_a_person_by_person_reckoning(workspace, person, zone):
    journey = JourneyFactory(workspace=workspace)
    milestones = [
        MilestoneFactory(journey=journey, key=f"m{i}", position=i, window=window)
        for i, window in enumerate([None, None, timedelta(days=3)])
    ]
    rng = random.Random(5)
    date_range = DateRange(date(2025, 3, 1), date(2025, 3, 28), zone)
    now = at(25)
    crowd = []
    for index in range(45):
        started = at(1) + timedelta(seconds=rng.randrange(30 * 86400))
        who = person(f"p{index}")
        JourneyProgressFactory(end_user=who, journey=journey, started_at=started)
        done = {}
        for milestone in milestones:
            if rng.random() < 0.6:
                # Mostly after the start, sometimes before it, in any order.
                done[milestone.pk] = started + timedelta(seconds=rng.randrange(-3600, 9 * 86400))
                MilestoneCompletionFactory(
                    end_user=who,
                    milestone=milestone,
                    journey=journey,
                    completed_at=done[milestone.pk],
                )
        crowd.append((started, done))

    result = milestone_velocity.milestone_velocity(
        journey=journey, date_range=date_range, horizon=timedelta(days=14), now=now
    )

    tz = zoneinfo.ZoneInfo(zone)
    inside = [(s, d) for s, d in crowd if date_range.start <= s < date_range.end]

    def week_of(moment):
        local = moment.astimezone(tz).date()
        return local - timedelta(days=local.weekday())

    started_by_week = defaultdict(int)
    for s, _ in inside:
        started_by_week[week_of(s)] += 1
    for index, (milestone, row) in enumerate(zip(milestones, result.milestones, strict=True)):
        from_start = [max(0, ms(d[milestone.pk], s)) for s, d in inside if milestone.pk in d]
        previous = milestones[index - 1].pk if index else None
        from_previous = [
            ms(d[milestone.pk], d[previous])
            for _, d in inside
            if milestone.pk in d and previous in d and d[previous] <= d[milestone.pk]
        ]
        window = milestone.window or timedelta(days=14)
        on_the_way = sum(1 for s, d in inside if milestone.pk not in d and s + window > now)
        weekly = defaultdict(list)
        for s, d in inside:
            if milestone.pk in d:
                weekly[week_of(s)].append(max(0, ms(d[milestone.pk], s)))

        assert row.started == len(inside)
        assert row.reached == len(from_start)
        assert row.on_the_way == on_the_way
        assert row.from_start == expected_stats(from_start)
        assert row.from_previous == expected_stats(from_previous)
        assert [b.users for b in row.histogram_from_start] == [
            sum(1 for v in from_start if bucket(v) == i)
            for i in range(len(velocity.HISTOGRAM_BOUNDS))
        ]
        assert [b.users for b in row.histogram_from_previous] == [
            sum(1 for v in from_previous if bucket(v) == i)
            for i in range(len(velocity.HISTOGRAM_BOUNDS))
        ]
        assert [(w.week_start, w.started, w.reached, w.median_from_start) for w in row.weeks] == [
            (week, started_by_week[week], len(weekly[week]), nearest_rank(weekly[week], 50))
            for week in sorted(started_by_week)
        ]


# --- Velocity from the journey rollups ----------------------------------------------------


def test_a_duration_is_floored_to_three_significant_digits_within_its_histogram_bucket():
    assert duration_grain(7_214_999) == 7_210_000
    assert duration_grain(999) == 999
    assert duration_grain(61_234) == 61_200
    # 7 days and 100 s floors to 6.04e8 ms, under the 7-day bound: it stays at the bound.
    seven_days = 7 * 86_400_000
    assert duration_grain(seven_days + 100_000) == seven_days
    assert duration_grain(seven_days - 1) == 604_000_000
    assert duration_grain(10**12) == 10**11


@pytest.fixture
def journey(workspace):
    journey = JourneyFactory(workspace=workspace, key="trial")
    for position, window in enumerate([None, None, timedelta(days=3)]):
        MilestoneFactory(journey=journey, key=f"m{position}", position=position, window=window)
    return journey


@pytest.fixture
def crowd(journey, person):
    """Sixty people over March 2025 (a few near UTC midnight and on week boundaries) who reach
    milestones after seconds to days, out of order or before their start, plus three who
    started today."""
    rng = random.Random(11)
    milestones = list(journey.milestones.order_by("position"))
    people = []
    for index in range(63):
        who = person(f"p{index}")
        if index < 60:
            started = at(1) + timedelta(seconds=rng.randrange(31 * 86400))
        else:
            started = timezone.now() - timedelta(minutes=5 * index - 290)
        JourneyProgressFactory(end_user=who, journey=journey, started_at=started)
        for milestone in milestones:
            if rng.random() < 0.6:
                seconds = rng.choice([rng.randrange(-600, 120), rng.randrange(10**6)])
                MilestoneCompletionFactory(
                    end_user=who,
                    milestone=milestone,
                    journey=journey,
                    completed_at=started + timedelta(seconds=seconds, milliseconds=index),
                )
        people.append(who)
    return people


@pytest.mark.parametrize(
    "date_range",
    [
        DateRange(date(2025, 3, 1), date(2025, 3, 31)),
        DateRange(date(2025, 3, 4), date(2025, 3, 19), "America/New_York"),
        DateRange(date(2025, 3, 2), date(2025, 3, 30), "Asia/Kolkata"),
        DateRange(date(2025, 3, 10), date(2025, 3, 10), "Pacific/Auckland"),
        DateRange(date(2025, 3, 1), timezone.now().date(), "Europe/Paris"),
        DateRange(date(2025, 2, 1), date(2025, 2, 28)),
    ],
    ids=["march", "new-york", "kolkata", "one-day-auckland", "up-to-today-paris", "empty"],
)
def test_velocity_from_the_rollups_equals_the_live_count(journey, crowd, date_range):
    now = timezone.now()
    from_rollups = milestone_velocity.milestone_velocity(
        journey=journey, date_range=date_range, now=now
    )
    read_again = milestone_velocity.milestone_velocity(
        journey=journey, date_range=date_range, now=now
    )
    live = milestone_velocity.milestone_velocity(
        journey=journey, date_range=date_range, now=now, fresh=True
    )

    assert from_rollups == live
    assert read_again == live
    if date_range.date_from.month == 3:  # the comparison is not between two empty reports
        assert from_rollups.milestones[0].reached > 0


def test_velocity_reads_running_totals_from_the_journeys_first_start_day(journey, crowd):
    milestone_velocity.milestone_velocity(
        journey=journey, date_range=DateRange(date(2025, 3, 20), date(2025, 3, 25))
    )

    rows = JourneyDayRollup.objects.filter(journey=journey).order_by("day")
    first_day = min(p.started_at for p in journey.progress.all()).astimezone(UTC).date()
    assert rows.first().day == first_day
    assert rows.last().day == date(2025, 3, 25)  # the range's last day
    totals = [row.durations_total_summary["started"] for row in rows]
    assert totals == sorted(totals)  # running totals only grow
    assert totals[-1] == journey.progress.filter(started_at__lt=at(26)).count()


def test_a_completion_shows_in_velocity_once_refreshed_or_its_mark_is_older_than_the_bound(
    journey, crowd, django_capture_on_commit_callbacks
):
    march = DateRange(date(2025, 3, 1), date(2025, 3, 31))
    before = milestone_velocity.milestone_velocity(journey=journey, date_range=march)
    late = next(
        who for who in crowd[:60] if not who.completions.filter(milestone__key="m2").exists()
    )

    with django_capture_on_commit_callbacks(execute=True):
        recording.milestone_complete(
            end_user=late, milestone=journey.milestones.get(key="m2"), at=at(31, 12)
        )
    # The refresh the commit woke has not landed: the stored rows answer.
    assert milestone_velocity.milestone_velocity(journey=journey, date_range=march) == before
    marks_aged()  # it is down: a read counts the mark itself

    after = milestone_velocity.milestone_velocity(journey=journey, date_range=march)
    assert after.milestones[2].reached == before.milestones[2].reached + 1
    assert after == milestone_velocity.milestone_velocity(
        journey=journey, date_range=march, fresh=True
    )
    assert not JourneyStaleDay.objects.filter(journey=journey).exists()


def test_a_funnel_read_that_recomputes_a_day_empties_the_later_running_totals(journey, crowd):
    march = DateRange(date(2025, 3, 1), date(2025, 3, 31))
    milestone_velocity.milestone_velocity(journey=journey, date_range=march)
    services.journey_day_mark_stale(journey_id=journey.pk, day=date(2025, 3, 12))
    marks_aged()

    journey_funnel.journey_funnel(
        journey=journey, date_range=DateRange(date(2025, 3, 12), date(2025, 3, 12))
    )

    emptied = JourneyDayRollup.objects.filter(journey=journey, durations_total_summary__isnull=True)
    assert min(emptied.values_list("day", flat=True)) == date(2025, 3, 12)
    assert not JourneyDayRollup.objects.filter(
        journey=journey, day__gte=date(2025, 3, 12), durations_total_summary__isnull=False
    ).exists()
    assert milestone_velocity.milestone_velocity(journey=journey, date_range=march) == (
        milestone_velocity.milestone_velocity(journey=journey, date_range=march, fresh=True)
    )


def test_running_totals_are_not_saved_over_a_day_recomputed_meanwhile(journey, crowd):
    milestone_velocity.milestone_velocity(
        journey=journey, date_range=DateRange(date(2025, 3, 1), date(2025, 3, 31))
    )
    row = JourneyDayRollup.objects.filter(journey=journey).order_by("-day").first()
    JourneyDayRollup.objects.filter(pk=row.pk).update(
        durations_total=None, durations_total_summary=None, refreshed_at=timezone.now()
    )

    services.journey_duration_totals_store(
        journey=journey,
        totals={row.day: Durations.empty(3)},
        seen={row.day: row.refreshed_at},
    )

    row.refresh_from_db()
    assert row.durations_total_summary is None


# --- A time zone's weeks from running totals up to its midnights -------------------------


def assert_cuts_equal_a_count_from_scratch(journey):
    """Every stored running total up to a quarter hour inside a day holds exactly the durations
    of everyone who started before that instant, counted live."""
    ids = list(journey.milestones.order_by("position", "id").values_list("pk", flat=True))
    cuts = list(JourneyDurationCut.objects.filter(rollup__journey=journey).select_related("rollup"))
    assert cuts
    for cut in cuts:
        instant = journey_rollups.utc_midnight(cut.rollup.day) + cut.slice * velocity.SLICE
        [live] = velocity.live_durations(
            journey_id=journey.pk,
            milestone_ids=ids,
            pieces=[(datetime(2000, 1, 1, tzinfo=UTC), instant)],
        )
        stored = Durations.unpacked(cut.durations, cut.summary, len(ids))
        assert stored.started == live.durations.started, (cut.rollup.day, cut.slice)
        assert (stored.counts == live.durations.counts).all(), (cut.rollup.day, cut.slice)
        assert (stored.sums == live.durations.sums).all(), (cut.rollup.day, cut.slice)


@pytest.mark.parametrize(
    ("zone", "midnights", "edges"),
    [
        # Monday March 3rd begins at 05:00 UTC (winter), the later Mondays at 04:00 (summer).
        ("America/New_York", {20, 16}, [at(3, 4, 59), at(3, 5), at(10, 3, 59), at(10, 4)]),
        # Monday March 10th begins at 18:30 UTC on the 9th in Kolkata, 18:15 in Kathmandu.
        ("Asia/Kolkata", {74}, [at(9, 18, 29), at(9, 18, 30), at(16, 18, 29)]),
        ("Asia/Kathmandu", {73}, [at(9, 18, 14), at(9, 18, 15), at(16, 18, 14)]),
    ],
)
def test_a_time_zones_weeks_are_read_from_running_totals_up_to_its_midnights(
    journey, crowd, person, zone, midnights, edges
):
    # People who start in the quarter hours on either side of the zone's Monday midnights and
    # reach m0 a minute later: a total cut a quarter hour off would move them to another week.
    m0 = journey.milestones.get(key="m0")
    for index, started in enumerate(edges):
        who = person(f"edge{index}")
        JourneyProgressFactory(end_user=who, journey=journey, started_at=started)
        MilestoneCompletionFactory(
            end_user=who, milestone=m0, journey=journey, completed_at=started + timedelta(minutes=1)
        )
    march = DateRange(date(2025, 3, 1), date(2025, 3, 31), zone)
    now = timezone.now()

    result = milestone_velocity.milestone_velocity(journey=journey, date_range=march, now=now)

    assert result == milestone_velocity.milestone_velocity(
        journey=journey, date_range=march, now=now, fresh=True
    )
    assert len(result.milestones[0].weeks) == 6  # Feb 24th to March 31st
    cuts = JourneyDurationCut.objects.filter(rollup__journey=journey)
    assert set(cuts.values_list("slice", flat=True)) == midnights
    assert_cuts_equal_a_count_from_scratch(journey)
    # Read again, the weeks come from the stored totals alone: no day's own durations.
    with CaptureQueriesContext(connection) as queries:
        again = milestone_velocity.milestone_velocity(journey=journey, date_range=march, now=now)
    assert again == result
    day_durations = f'"{JourneyDayRollup._meta.db_table}"."durations"'
    assert not [q for q in queries.captured_queries if day_durations in q["sql"]]


def test_a_completion_before_a_time_zones_midnight_reaches_its_running_total(
    journey, crowd, django_capture_on_commit_callbacks
):
    kolkata = DateRange(date(2025, 3, 1), date(2025, 3, 31), "Asia/Kolkata")
    now = timezone.now()
    milestone_velocity.milestone_velocity(journey=journey, date_range=kolkata, now=now)
    # Someone who started before 18:30 UTC on a day of March and has not reached m2 yet.
    late = next(
        who
        for who in crowd[:60]
        if who.progress.get().started_at.astimezone(UTC).hour < 18
        and not who.completions.filter(milestone__key="m2").exists()
    )
    before = milestone_velocity.milestone_velocity(journey=journey, date_range=kolkata, now=now)

    with django_capture_on_commit_callbacks(execute=True):
        recording.milestone_complete(
            end_user=late, milestone=journey.milestones.get(key="m2"), at=at(31, 12)
        )
    tasks.refresh_journey_rollups()

    assert not JourneyDurationCut.objects.filter(durations__isnull=True).exists()
    assert_cuts_equal_a_count_from_scratch(journey)
    after = milestone_velocity.milestone_velocity(journey=journey, date_range=kolkata, now=now)
    assert after.milestones[2].reached == before.milestones[2].reached + 1
    assert after == milestone_velocity.milestone_velocity(
        journey=journey, date_range=kolkata, now=now, fresh=True
    )
