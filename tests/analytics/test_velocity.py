"""Milestone velocity equals a person-by-person reckoning of the same people, on a crowd with
completions out of order, before the journey start and on the week boundaries."""

from __future__ import annotations

import random
import zoneinfo
from collections import defaultdict
from datetime import date, timedelta

import pytest

from analytics import queries
from analytics.inputs import DateRange
from tests.analytics.conftest import at
from tests.factories import (
    JourneyFactory,
    JourneyProgressFactory,
    MilestoneCompletionFactory,
    MilestoneFactory,
)


def nearest_rank(values, percent):
    ordered = sorted(values)
    return ordered[max(0, (len(ordered) * percent + 99) // 100 - 1)] / 1000 if values else None


def ms(later, earlier):
    return int((later - earlier).total_seconds() * 1000)


def bucket(ms):
    for index, (_, bound) in enumerate(queries.HISTOGRAM_BOUNDS):
        if bound is not None and ms < bound * 1000:
            return index
    return len(queries.HISTOGRAM_BOUNDS) - 1


def expected_stats(values):
    return queries.DurationStats(
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

    result = queries.milestone_velocity(
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
            for i in range(len(queries.HISTOGRAM_BOUNDS))
        ]
        assert [b.users for b in row.histogram_from_previous] == [
            sum(1 for v in from_previous if bucket(v) == i)
            for i in range(len(queries.HISTOGRAM_BOUNDS))
        ]
        assert [(w.week_start, w.started, w.reached, w.median_from_start) for w in row.weeks] == [
            (week, started_by_week[week], len(weekly[week]), nearest_rank(weekly[week], 50))
            for week in sorted(started_by_week)
        ]
