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
from datetime import date, datetime, timedelta
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
from analytics.report.local_periods import EPOCH_MS, period_date, period_number_sql, utc_offsets
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


# Each event of a block of _BLOCK people travels as one UInt64, so one plain sort orders the
# block by person, then time, then kind (where five keyed sorts of parallel arrays were the
# report's main cost): the person's slot in the block (10 bits), the milliseconds since
# DateTime64's first instant (44 bits reach 2299) and a kind (2 bits) that puts an event that
# enters the cohort before a return at the same instant.
_BLOCK = 1024
_MS_MASK = 2**44 - 1
_COHORT_AND_RETURN, _COHORT_ONLY, _RETURN_ONLY = 0, 1, 2


def _event_grid(
    period: str, periods: int, mode: str, cohort_type: str, parameters: dict[str, Any]
) -> tuple[dict[date, int], dict[tuple[date, int], int]]:
    """One scan of the workspace's cohort and return events, gathered in blocks of _BLOCK
    people (one group per person, or per person and period, was what cost: 1 M groups), sorted
    once as packed integers and cut per person. Per person, the cohort entries (first-time: the
    first cohort event ever, if it falls in the range; recurring: the first one of each period
    in the range) and, for each, the periods with a return at or after the entry, as offsets
    from the entry's period ("on": every one under `periods`; "on_or_after": the last, capped);
    then one row per (cohort, offsets) with its number of people, spread into the grid here."""
    start, end = parameters["start"], parameters["end"]
    # Past the last cohort's last period, a return only needs to be known as later.
    last_day = end.date() - timedelta(days=1)  # `end` is the local midnight after the range
    last_cohort = {
        "day": last_day,
        "week": last_day - timedelta(days=last_day.weekday()),
        "month": last_day.replace(day=1),
    }[period]
    window_end = datetime.combine(
        period_start(last_cohort, periods, period), datetime.min.time(), tzinfo=end.tzinfo
    )
    offsets = utc_offsets(parameters["tz"], start, window_end)
    first_ms = int(start.timestamp() * 1000) - EPOCH_MS
    end_ms = int(end.timestamp() * 1000) - EPOCH_MS

    def ms(packed: str) -> str:
        return f"bitAnd(bitShiftRight({packed}, 2), {_MS_MASK})"

    def number(packed_ms: str) -> str:
        return period_number_sql(packed_ms, period, offsets)

    is_cohort = "name = {cohort_event:String}" if parameters["cohort_event"] else "1"
    is_return = "name = {return_event:String}" if parameters["return_event"] else "1"
    in_range = f"{ms('x')} >= {first_ms} AND {ms('x')} < {end_ms}"
    if cohort_type == "first_time":
        # The first cohort event ever (0, outside any range, when there is none).
        entries = f"arrayFilter(x -> {in_range}, [arrayFirst(x -> bitAnd(x, 3) < 2, p)])"
    else:
        # The first cohort event of each period, counting only what happened in the range: the
        # events are in time order, so each run of one period starts with its first (a period
        # met in two runs keeps its first run's, should a zone's clock ever go back past
        # midnight). One pass, where a filter of every event per period was quadratic.
        entries = (
            "arrayFilter((x, q, i) -> indexOf(entry_periods, q) = i, entry_events,"
            " entry_periods, arrayEnumerate(entry_periods))"
        )
    # Offsets of the periods with a return at or after the entry `x` (whose period is `q`),
    # from the person's runs of returns in one period: the last return of a run is at or after
    # `x` exactly when one of the run is. Runs are few, where returns may be thousands.
    offsets_sql = (
        "arrayCompact(arraySort(arrayFilter(i -> i >= 0, arrayMap((rq, r) -> if(r >= "
        f"{ms('x')}, rq - q, -1), run_periods, run_last_ms))))"
    )
    if mode == "on":
        shaped = f"arrayFilter(i -> i < {int(periods)}, {offsets_sql})"
    else:
        shaped = f"arrayMap(i -> least(i, {int(periods) - 1}), arraySlice({offsets_sql}, -1))"
    packed = (
        f"bitShiftLeft(toUInt64(person_id % {_BLOCK}), 54)"
        f" + bitShiftLeft(toUInt64(toUnixTimestamp64Milli(timestamp) - ({EPOCH_MS})), 2)"
        f" + if(is_cohort, if(is_return, {_COHORT_AND_RETURN}, {_COHORT_ONLY}), {_RETURN_ONLY})"
    )
    # A return before the range comes before any entry.
    start = "{start:DateTime64(3, 'UTC')}"
    sql = f"""
        SELECT row.1 AS cohort, row.2 AS returned, count() FROM (
            SELECT arrayJoin(arrayMap(x -> ({number(ms("x"))} AS q, {shaped}), {entries})) AS row
            FROM (
                SELECT p,
                       arrayFilter(x -> bitAnd(x, 3) < 2 AND {in_range}, p) AS cohort_events,
                       arrayMap(x -> {number(ms("x"))}, cohort_events) AS cohort_periods,
                       arrayMap(x -> {ms("x")}, arrayFilter(x -> bitAnd(x, 3) != 1, p))
                           AS return_ms,
                       arrayMap(r -> {number("r")}, return_ms) AS return_periods,
                       arrayCompact(return_periods) AS run_periods,
                       arrayFilter((r, rq, next) -> rq != next, return_ms, return_periods,
                           arraySlice(arrayPushBack(return_periods, -1), 2)) AS run_last_ms,
                       arrayFilter((x, q, previous) -> q != previous, cohort_events,
                           cohort_periods, arrayPopBack(arrayPushFront(cohort_periods, -1)))
                           AS entry_events,
                       arrayCompact(cohort_periods) AS entry_periods
                FROM (
                    -- Each block's events in (person, time, kind) order, cut per person.
                    SELECT arrayJoin(arraySplit((x, s) -> s, sorted, arrayMap(d -> d != 0,
                               arrayDifference(arrayMap(x -> bitShiftRight(x, 54), sorted)))))
                               AS p
                    FROM (
                        SELECT arraySort(groupArray({packed})) AS sorted
                        FROM (
                            SELECT person_id, timestamp, toUInt8({is_cohort}) AS is_cohort,
                                   toUInt8({is_return}) AS is_return
                            FROM events WHERE workspace_id = {{workspace:UInt64}}
                              AND (is_cohort OR (is_return AND timestamp >= {start}))
                        )
                        GROUP BY intDiv(person_id, {_BLOCK})
                    )
                )
            )
        ) GROUP BY cohort, returned
    """
    sizes: dict[date, int] = defaultdict(int)
    counts: dict[tuple[date, int], int] = defaultdict(int)
    for cohort_number, returned, people in store.rows(sql, parameters):
        cohort_start = period_date(int(cohort_number), period)
        sizes[cohort_start] += int(people)
        if mode == "on":
            for offset in returned:
                counts[(cohort_start, offset)] += int(people)
        else:
            for last in returned:  # counted at the last period: returned in N or later
                for offset in range(last + 1):
                    counts[(cohort_start, offset)] += int(people)
    return dict(sizes), counts


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
