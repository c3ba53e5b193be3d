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
    cohort_filter = "AND name = {cohort_event:String}" if cohort_event else ""
    if journey is not None:
        starts, arrays = _journey_cohort(journey, date_range)
        parameters |= arrays
        cohort = (
            f"SELECT person_id, first_at, {bucket('first_at', period)} AS cohort FROM ({starts})"
        )
    elif cohort_type == "first_time":
        cohort = f"""
            SELECT person_id, first_at, {bucket("first_at", period)} AS cohort FROM (
                SELECT person_id, min(timestamp) AS first_at FROM events
                WHERE workspace_id = {{workspace:UInt64}} {cohort_filter}
                GROUP BY person_id
            ) WHERE first_at >= {{start:DateTime64(3, 'UTC')}}
                AND first_at < {{end:DateTime64(3, 'UTC')}}
        """
    else:
        cohort = f"""
            SELECT person_id, min(timestamp) AS first_at, {bucket("timestamp", period)} AS cohort
            FROM events
            WHERE workspace_id = {{workspace:UInt64}} {cohort_filter}
              AND timestamp >= {{start:DateTime64(3, 'UTC')}}
              AND timestamp < {{end:DateTime64(3, 'UTC')}}
            GROUP BY person_id, cohort
        """
    return_filter = "AND e.name = {return_event:String}" if return_event else ""
    # Returns: the periods in which each cohort member did the return event, from the moment
    # they entered the cohort on. One scan of the members' events, joined by person.
    activity = f"""
        SELECT DISTINCT c.person_id AS person_id, c.cohort AS cohort,
               {bucket("e.timestamp", period)} AS active
        FROM events AS e INNER JOIN cohort AS c ON e.person_id = c.person_id
        WHERE e.workspace_id = {{workspace:UInt64}} {return_filter}
          AND e.person_id IN (SELECT person_id FROM cohort)
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
    for kind, cohort_start, active, people in store.rows(sql, parameters):
        if kind == 0:
            sizes[cohort_start] = int(people)
        else:
            counts[(cohort_start, period_index(cohort_start, active, period))] += int(people)
    return _result(
        sizes=sizes,
        counts=counts,
        periods=periods,
        period=period,
        mode=mode,
        today=now.astimezone(zoneinfo.ZoneInfo(date_range.timezone)).date(),
        header={
            "period": period,
            "mode": mode,
            "cohort_type": cohort_type,
            "cohort_event": cohort_event,
            "return_event": return_event,
        },
    )


def _result(
    *,
    sizes: dict[date, int],
    counts: dict[tuple[date, int], int],
    periods: int,
    period: str,
    mode: str,
    today: date,
    header: dict[str, Any],
) -> Retention:
    cohorts = []
    baseline_returned = [0] * periods
    baseline_size = [0] * periods
    for start, size in sorted(sizes.items()):
        if mode == "on":
            returned = [counts[(start, i)] for i in range(periods)]
        else:
            returned = [
                sum(v for (c, i), v in counts.items() if c == start and i >= offset)
                for offset in range(periods)
            ]
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
