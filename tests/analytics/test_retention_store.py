"""Retention from the analytics store equals a plain reference, person by person, on random
activity in time zones with daylight-saving changes; recurring cohorts and incomplete periods."""

from __future__ import annotations

import random
import zoneinfo
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from analytics.inputs import DateRange
from analytics.report import retention
from analytics.report.common import period_index
from analytics.report.retention import MODES
from onboarding.models import Event, Workspace
from tests.factories import EndUserFactory

NAMES = ("login", "report", "invite")


def _bucket(instant: datetime, period: str, zone: str) -> date:
    day = instant.astimezone(zoneinfo.ZoneInfo(zone)).date()
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def _reference(
    events: list[tuple[int, datetime, str]],
    *,
    date_range: DateRange,
    period: str,
    periods: int,
    mode: str,
    cohort_type: str,
    cohort_event: str | None,
    return_event: str | None,
) -> list[tuple[date, int, tuple[int, ...]]]:
    zone = date_range.timezone
    entries: dict[tuple[int, date], datetime] = {}
    if cohort_type == "first_time":
        firsts: dict[int, datetime] = {}
        for person, at, name in events:
            if cohort_event in (None, name):
                firsts[person] = min(at, firsts.get(person, at))
        for person, first in firsts.items():
            if date_range.start <= first < date_range.end:
                entries[(person, _bucket(first, period, zone))] = first
    else:
        for person, at, name in events:
            if cohort_event in (None, name) and date_range.start <= at < date_range.end:
                key = (person, _bucket(at, period, zone))
                entries[key] = min(at, entries.get(key, at))
    returned: dict[tuple[int, date], set[int]] = defaultdict(set)
    for (person, cohort), first in entries.items():
        for who, at, name in events:
            if who == person and return_event in (None, name) and at >= first:
                returned[(person, cohort)].add(
                    period_index(cohort, _bucket(at, period, zone), period)
                )
    grid: dict[date, list[int]] = defaultdict(lambda: [0] * periods)
    sizes: dict[date, int] = defaultdict(int)
    for (_person, cohort), indices in returned.items():
        for offset in range(periods):
            if (mode == "on" and offset in indices) or (
                mode == "on_or_after" and any(i >= offset for i in indices)
            ):
                grid[cohort][offset] += 1
    for _person, cohort in entries:
        sizes[cohort] += 1
    return [(c, sizes[c], tuple(grid[c])) for c in sorted(sizes)]


@pytest.mark.parametrize("seed", range(6))
def test_store_retention_equals_the_reference_on_random_activity(
    workspace: Workspace, analytics_store: Callable[[], Any], seed: int
) -> None:
    rng = random.Random(seed)
    zone = rng.choice(["UTC", "America/New_York", "Asia/Kolkata", "Europe/Berlin"])
    # Early March to mid April 2025 crosses both daylight-saving changes (US and EU).
    origin = datetime(2025, 3, 1, tzinfo=UTC)
    events: list[tuple[int, datetime, str]] = []
    rows = []
    for p in range(14):
        user = EndUserFactory(workspace=workspace, external_id=f"p{p}")
        for _ in range(rng.randint(1, 9)):
            at = origin + timedelta(minutes=rng.randint(0, 45 * 24 * 60))
            if rng.random() < 0.2 and events:  # ties: another event at an instant already used
                at = rng.choice(events)[1]
            name = rng.choice(NAMES)
            events.append((user.id, at, name))
            rows.append(
                Event(
                    workspace=workspace,
                    end_user=user,
                    client_id=f"00000000-0000-4000-8000-{len(rows):012d}",
                    name=name,
                    timestamp=at,
                )
            )
    Event.objects.bulk_create(rows)
    analytics_store()
    date_range = DateRange(date(2025, 3, 2), date(2025, 3, 30), zone)
    for period in ("day", "week", "month"):
        for mode in ("on", "on_or_after"):
            for cohort_type in ("first_time", "recurring"):
                cohort_event = rng.choice([None, "login"])
                return_event = rng.choice([None, "report"])
                options = {
                    "period": period,
                    "periods": 6,
                    "mode": mode,
                    "cohort_type": cohort_type,
                    "cohort_event": cohort_event,
                    "return_event": return_event,
                }
                result = retention.retention(
                    workspace=workspace,
                    date_range=date_range,
                    now=origin + timedelta(days=90),
                    **options,
                )
                expected = _reference(events, date_range=date_range, **options)
                assert [(c.cohort_start, c.size, c.returned) for c in result.cohorts] == expected, (
                    zone,
                    options,
                )


def test_recurring_cohorts_count_a_person_in_every_period_they_came(
    workspace: Workspace, analytics_store: Callable[[], Any]
) -> None:
    ann = EndUserFactory(workspace=workspace)
    for day in (3, 10, 11):
        Event.objects.create(
            workspace=workspace,
            end_user=ann,
            client_id=f"00000000-0000-4000-8000-0000000000{day:02d}",
            name="login",
            timestamp=datetime(2025, 3, day, 9, tzinfo=UTC),
        )
    analytics_store()
    march = DateRange(date(2025, 3, 1), date(2025, 3, 31), "UTC")

    first = retention.retention(
        workspace=workspace,
        date_range=march,
        period="week",
        periods=3,
        now=datetime(2025, 6, 1, tzinfo=UTC),
    )
    recurring = retention.retention(
        workspace=workspace,
        date_range=march,
        period="week",
        periods=3,
        cohort_type="recurring",
        now=datetime(2025, 6, 1, tzinfo=UTC),
    )

    assert [(c.cohort_start, c.size, c.returned) for c in first.cohorts] == [
        (date(2025, 3, 3), 1, (1, 1, 0))
    ]
    assert [(c.cohort_start, c.size, c.returned) for c in recurring.cohorts] == [
        (date(2025, 3, 3), 1, (1, 1, 0)),
        (date(2025, 3, 10), 1, (1, 0, 0)),
    ]


def test_a_period_still_running_is_marked_incomplete_and_a_future_one_has_no_rate(
    workspace: Workspace, analytics_store: Callable[[], Any]
) -> None:
    ann = EndUserFactory(workspace=workspace)
    Event.objects.create(
        workspace=workspace,
        end_user=ann,
        client_id="00000000-0000-4000-8000-000000000001",
        name="login",
        timestamp=datetime(2025, 3, 3, 9, tzinfo=UTC),
    )
    analytics_store()

    result = retention.retention(
        workspace=workspace,
        date_range=DateRange(date(2025, 3, 1), date(2025, 3, 31), "UTC"),
        period="week",
        periods=3,
        now=datetime(2025, 3, 12, 8, tzinfo=UTC),  # a Wednesday of the cohort's second week
    )

    (cohort,) = result.cohorts
    assert cohort.rates == (1.0, 0.0, None)
    assert cohort.incomplete == (False, True, False)


def _edges(zone: str, first: date, last: date) -> list[datetime]:
    """Instants where retention can go wrong in `zone`: each local midnight between first and
    last and each change of UTC offset, exactly and one millisecond either side."""
    tz = zoneinfo.ZoneInfo(zone)
    exact = []
    day = first
    while day <= last:
        exact.append(datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC))
        day += timedelta(days=1)
    hour = datetime(first.year, first.month, first.day, tzinfo=UTC)
    while hour.date() <= last:
        following = hour + timedelta(minutes=30)
        if hour.astimezone(tz).utcoffset() != following.astimezone(tz).utcoffset():
            exact.append(following)  # changes fall on the half hour in every zone used here
        hour = following
    one_ms = timedelta(milliseconds=1)
    return [instant + shift for instant in exact for shift in (-one_ms, timedelta(0), one_ms)]


# Each zone changes its offset inside the range: New York on 9 March 2025, Berlin on 30 March,
# Santiago on 6 April at midnight (back to 23:00: an hour of the 5th after the 6th began),
# Lord Howe on 6 April by half an hour.
EDGE_ZONES = ("America/New_York", "Europe/Berlin", "America/Santiago", "Australia/Lord_Howe")


@pytest.mark.parametrize("seed", range(len(EDGE_ZONES)))
def test_store_retention_equals_the_reference_at_period_edges_and_offset_changes(
    workspace: Workspace, analytics_store: Callable[[], Any], seed: int
) -> None:
    rng = random.Random(1000 + seed)
    zone = EDGE_ZONES[seed]
    edges = _edges(zone, date(2025, 2, 20), date(2025, 5, 10))
    origin = datetime(2025, 2, 20, tzinfo=UTC)
    events: list[tuple[int, datetime, str]] = []
    rows = []
    for p in range(16):
        user = EndUserFactory(workspace=workspace, external_id=f"p{p}")
        for _ in range(rng.randint(1, 10)):
            if rng.random() < 0.6:
                at = rng.choice(edges)
            else:  # anywhere, to the millisecond (what the store keeps)
                at = origin + timedelta(milliseconds=rng.randint(0, 80 * 86_400_000))
            if rng.random() < 0.15 and events:  # a tie with another event, maybe another name
                at = rng.choice(events)[1]
            name = rng.choice(NAMES)
            events.append((user.id, at, name))
            rows.append(
                Event(
                    workspace=workspace,
                    end_user=user,
                    client_id=f"00000000-0000-4000-8000-{len(rows):012d}",
                    name=name,
                    timestamp=at,
                )
            )
    Event.objects.bulk_create(rows)
    analytics_store()
    # People whose first event is before the range start (20 February to 1 March) and, with
    # the range of decades, a window with more offset changes than the arithmetic takes.
    narrow = DateRange(date(2025, 3, 1), date(2025, 4, 20), zone)
    wide = DateRange(date(1990, 1, 1), date(2025, 4, 20), zone)
    cases = [
        (narrow, period, mode, cohort_type)
        for period in ("day", "week", "month")
        for mode in ("on", "on_or_after")
        for cohort_type in ("first_time", "recurring")
    ] + [(wide, period, rng.choice(MODES), "first_time") for period in ("week", "month")]
    for date_range, period, mode, cohort_type in cases:
        options = {
            "period": period,
            "periods": rng.choice([3, 8]),
            "mode": mode,
            "cohort_type": cohort_type,
            "cohort_event": rng.choice([None, "login"]),
            "return_event": rng.choice([None, "report"]),
        }
        result = retention.retention(
            workspace=workspace,
            date_range=date_range,
            now=datetime(2025, 9, 1, tzinfo=UTC),
            **options,
        )
        expected = _reference(events, date_range=date_range, **options)
        assert [(c.cohort_start, c.size, c.returned) for c in result.cohorts] == expected, (
            zone,
            date_range.date_from,
            options,
        )
