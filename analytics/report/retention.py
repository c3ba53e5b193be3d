"""Retention: cohorts of people by when they started, and how many came back in each period
after. Computed in the analytics store.

- first_time: a person's cohort is the period of their first `cohort_event` ever (any event
  when None), or of their journey start when a journey is given; they count once.
- recurring: everyone who did `cohort_event` in a period is in that period's cohort (a person
  may be in several).
- "on": returned in period N; "on_or_after": returned in period N or later.
Period 0 is the cohort's own period; an event counts as a return from the moment the person
entered the cohort. Periods are calendar days, Monday weeks or months in the report's time
zone. A period that has not begun has no rate; one that has begun but not ended is marked
incomplete (its numbers can still grow), so a chart can show it apart from a real 0.
"""

# SQL here is assembled from fixed fragments; every value travels as a query parameter.
# ruff: noqa: S608

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.utils import timezone

from analytics import store
from analytics.inputs import (
    MAX_RETENTION_PERIODS,
    DateRange,
    ReportInputError,
    check_known_event,
    check_range,
)
from analytics.report.common import bucket, period_index, period_start, rate
from onboarding.models import Journey, JourneyProgress, Workspace

PERIODS = ("day", "week", "month")
MODES = ("on", "on_or_after")
COHORT_TYPES = ("first_time", "recurring")


@dataclass(frozen=True)
class RetentionCohort:
    cohort_start: date
    size: int
    returned: tuple[int, ...]  # people returning in period 0, 1, ... (per the mode)
    rates: tuple[float | None, ...]  # None: the period has not begun
    incomplete: tuple[bool, ...]  # the period has begun but not ended yet


@dataclass(frozen=True)
class Retention:
    period: str
    mode: str
    cohort_type: str
    cohort_event: str | None
    return_event: str | None
    cohorts: tuple[RetentionCohort, ...]
    baseline: tuple[float | None, ...]  # returning / cohort size over cohorts old enough


def _journey_cohort(journey: Journey, date_range: DateRange) -> tuple[str, dict[str, Any]]:
    """People who started the journey in the range, with the instant they started, sent to the
    store as two arrays (journey starts live in the primary database)."""
    starts = JourneyProgress.objects.filter(
        journey=journey, started_at__gte=date_range.start, started_at__lt=date_range.end
    ).values_list("end_user_id", "started_at")
    people, instants = [], []
    for person, started_at in starts.iterator(chunk_size=10_000):
        people.append(person)
        instants.append(int(started_at.timestamp() * 1000))
    sql = """
        SELECT person_id, fromUnixTimestamp64Milli(started_ms, 'UTC') AS first_at
        FROM (SELECT arrayJoin(arrayZip({people:Array(UInt64)}, {starts:Array(Int64)})) AS pair,
                     pair.1 AS person_id, pair.2 AS started_ms)
    """
    return sql, {"people": people, "starts": instants}


def retention(
    *,
    workspace: Workspace,
    date_range: DateRange,
    period: str = "day",
    periods: int = 8,
    mode: str = "on",
    cohort_type: str = "first_time",
    cohort_event: str | None = None,
    journey: Journey | None = None,
    return_event: str | None = None,
    now: datetime | None = None,
) -> Retention:
    if period not in PERIODS:
        raise ReportInputError("period", "Choose day, week or month.")
    if mode not in MODES:
        raise ReportInputError("mode", "Choose on or on_or_after.")
    if cohort_type not in COHORT_TYPES:
        raise ReportInputError("cohort_type", "Choose first_time or recurring.")
    if journey is not None and cohort_type == "recurring":
        raise ReportInputError("cohort_type", "A journey starts once: use first_time.")
    check_range(periods, 1, MAX_RETENTION_PERIODS, "periods")
    check_known_event(workspace, cohort_event, "cohort_event")
    check_known_event(workspace, return_event, "return_event")
    now = now or timezone.now()
    parameters: dict[str, Any] = {
        "workspace": workspace.pk,
        "tz": date_range.timezone,
        "start": date_range.start,
        "end": date_range.end,
        "cohort_event": cohort_event or "",
        "return_event": return_event or "",
    }
    if journey is not None:
        sizes, counts = _journey_grid(journey, date_range, period, mode, parameters)
    else:
        sizes, counts = _event_grid(period, periods, mode, cohort_type, parameters)
    return _result(
        sizes=sizes,
        counts=counts,
        periods=periods,
        period=period,
        today=now.astimezone(zoneinfo.ZoneInfo(date_range.timezone)).date(),
        header={
            "period": period,
            "mode": mode,
            "cohort_type": cohort_type,
            "cohort_event": cohort_event,
            "return_event": return_event,
        },
    )


def _event_grid(
    period: str, periods: int, mode: str, cohort_type: str, parameters: dict[str, Any]
) -> tuple[dict[date, int], dict[tuple[date, int], int]]:
    """One scan of the workspace's cohort and return events, gathered in blocks of 1024 people
    (one group per person, or per person and period, was what cost: 1 M groups) and cut per
    person. Per person, the cohort entries (first-time: the first cohort event ever;
    recurring: the first one of each period in the range) and, for each, the periods with a
    return at or after the entry; then one row per cohort with its size and a count per
    period."""
    cohort_if = "name = {cohort_event:String}" if parameters["cohort_event"] else "1"
    return_if = "name = {return_event:String}" if parameters["return_event"] else "1"
    start = "toUnixTimestamp64Milli({start:DateTime64(3, 'UTC')})"
    end = "toUnixTimestamp64Milli({end:DateTime64(3, 'UTC')})"
    index = {
        "day": "dateDiff('day', c.1, q)",
        "week": "intDiv(dateDiff('day', c.1, q), 7)",
        "month": "dateDiff('month', c.1, q)",
    }[period]
    if cohort_type == "first_time":
        # The first cohort event ever; it must then fall in the range.
        entries = (
            f"arrayFilter(c -> c.2 >= {start} AND c.2 < {end}, arrayMap(i -> (pp[i], pt[i]),"
            " arrayFilter(i -> i > 0, [arrayFirstIndex(c -> c, pc)])))"
        )
    else:
        # Only what happened in the range makes a cohort.
        entries = (
            f"arrayMap(q -> (q, arrayMin(arrayFilter((t, x, c) -> c AND x = q AND t >= {start}"
            f" AND t < {end}, pt, pp, pc))), arrayDistinct(arrayFilter((x, t, c) -> c AND"
            f" t >= {start} AND t < {end}, pp, pt, pc)))"
        )
    returned = (
        f"arrayDistinct(arrayMap(q -> {index}, arrayFilter((q, t, r) -> r AND t >= c.2, pp, pt,"
        " pr)))"
    )
    if mode == "on":
        flags = f"arrayMap(i -> toUInt64(has(returned, i)), range({periods}))"
    else:
        last = "arrayMax(arrayPushBack(returned, -1))"
        flags = f"arrayMap(i -> toUInt64({last} >= i), range({periods}))"

    def split(column: str) -> str:
        return f"arraySplit((x, s) -> s, {column}, starts)"

    sql = f"""
        SELECT row.1 AS cohort, count(), sumForEach(row.2) FROM (
            SELECT arrayJoin(arrayFlatten(arrayMap((pt, pp, pc, pr) -> arrayMap(c -> (c.1,
                       arrayMap(returned -> {flags}, [{returned}])[1]), {entries}),
                       {split("ms")}, {split("periods")}, {split("cohorts")},
                       {split("returns")}))) AS row
            FROM (
                -- Each block's events by person, in time order (the first cohort event first).
                SELECT groupArray(bitShiftLeft(toUInt64(person_id % 1024), 54)
                                  + toUInt64(event_ms + 2300000000000)) AS keys,
                       arraySort(keys) AS sorted_keys,
                       arrayMap(d -> d != 0, arrayDifference(arrayMap(
                           k -> bitShiftRight(k, 54), sorted_keys))) AS starts,
                       arraySort((x, k) -> k, groupArray(event_ms), keys) AS ms,
                       arraySort((x, k) -> k, groupArray(event_period), keys) AS periods,
                       arraySort((x, k) -> k, groupArray(is_cohort), keys) AS cohorts,
                       arraySort((x, k) -> k, groupArray(is_return), keys) AS returns
                FROM (
                    SELECT person_id, toUnixTimestamp64Milli(timestamp) AS event_ms,
                           {bucket("timestamp", period)} AS event_period,
                           toUInt8({cohort_if}) AS is_cohort, toUInt8({return_if}) AS is_return
                    FROM events WHERE workspace_id = {{workspace:UInt64}}
                      AND (is_cohort OR is_return)
                )
                GROUP BY intDiv(person_id, 1024)
            )
        ) GROUP BY cohort
    """
    sizes: dict[date, int] = {}
    counts: dict[tuple[date, int], int] = defaultdict(int)
    for cohort_start, size, per_period in store.rows(sql, parameters):
        sizes[cohort_start] = int(size)
        for offset, people in enumerate(per_period):
            counts[(cohort_start, offset)] = int(people)
    return sizes, counts


def _journey_grid(
    journey: Journey,
    date_range: DateRange,
    period: str,
    mode: str,
    parameters: dict[str, Any],
) -> tuple[dict[date, int], dict[tuple[date, int], int]]:
    starts, arrays = _journey_cohort(journey, date_range)
    cohort = f"SELECT person_id, first_at, {bucket('first_at', period)} AS cohort FROM ({starts})"
    return_filter = "AND e.name = {return_event:String}" if parameters["return_event"] else ""
    activity = f"""
        SELECT DISTINCT c.person_id AS person_id, c.cohort AS cohort,
               {bucket("e.timestamp", period)} AS active
        FROM events AS e INNER JOIN cohort AS c ON e.person_id = c.person_id
        WHERE e.workspace_id = {{workspace:UInt64}} {return_filter}
          AND e.timestamp >= c.first_at
    """
    if mode == "on":
        grid = "SELECT cohort, active, count() FROM activity GROUP BY cohort, active"
    else:
        grid = """SELECT cohort, last_active, count() FROM (
            SELECT person_id, cohort, max(active) AS last_active FROM activity
            GROUP BY person_id, cohort) GROUP BY cohort, last_active"""
    sql = f"""
        WITH cohort AS ({cohort}), activity AS ({activity})
        SELECT 0 AS kind, cohort, toDate(0) AS active, count() FROM cohort GROUP BY cohort
        UNION ALL SELECT 1 AS kind, * FROM ({grid})
    """
    sizes: dict[date, int] = {}
    counts: dict[tuple[date, int], int] = defaultdict(int)
    for kind, cohort_start, active, people in store.rows(sql, parameters | arrays):
        if kind == 0:
            sizes[cohort_start] = int(people)
        else:
            counts[(cohort_start, period_index(cohort_start, active, period))] += int(people)
    if mode == "on_or_after":
        # Counted at each person's last period so far: returned in N or later is the sum.
        last = dict(counts)
        counts = defaultdict(int)
        for (cohort_start, index), people in last.items():
            for offset in range(index + 1):
                counts[(cohort_start, offset)] += people
    return sizes, counts


def _result(
    *,
    sizes: dict[date, int],
    counts: dict[tuple[date, int], int],
    periods: int,
    period: str,
    today: date,
    header: dict[str, Any],
) -> Retention:
    cohorts = []
    baseline_returned = [0] * periods
    baseline_size = [0] * periods
    for start, size in sorted(sizes.items()):
        returned = [counts[(start, i)] for i in range(periods)]
        rates: list[float | None] = []
        incomplete = []
        for offset in range(periods):
            begun = period_start(start, offset, period) <= today
            incomplete.append(begun and period_start(start, offset + 1, period) > today)
            if begun:
                baseline_returned[offset] += returned[offset]
                baseline_size[offset] += size
                rates.append(rate(returned[offset], size))
            else:
                rates.append(None)
        cohorts.append(
            RetentionCohort(
                cohort_start=start,
                size=size,
                returned=tuple(returned),
                rates=tuple(rates),
                incomplete=tuple(incomplete),
            )
        )
    return Retention(
        **header,
        cohorts=tuple(cohorts),
        baseline=tuple(rate(r, s) for r, s in zip(baseline_returned, baseline_size, strict=True)),
    )
