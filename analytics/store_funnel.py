"""The ad-hoc event funnel computed in the analytics store (ClickHouse), exactly as the
reference engine analytics/funnel_engine.py defines it (its docstring holds the semantics;
tests/analytics/test_store_funnel.py compares the two person by person).

How the query works: the events that matter (for strict order, every event of the people who
entered) are read with a bit mask of the steps and of the exclusions each matches, and
gathered into one row per person, in reading order (time, first step, id) by one numeric sort
key (sorting numbers is several times faster than sorting tuples). Array functions then walk
each attempt from its entry (arrayFold), check its exclusions, and keep the attempt that
counts; the outer query aggregates those people into the report in the same pass, so only one
row comes back. Lambdas look ahead only within one person's events: a lambda that captures a
large array copies it once per element. `windowFunnel()` is not used: it is not exact (one
event matching two steps, strict modes, no step times). Measured (bench/analytics_store.py),
one group per person beat arrays of 1024 people cut apart again.
"""

# SQL here is assembled from fixed fragments and integers; every value a caller supplies
# (event names, property keys and values, the time zone) travels as a server-side parameter.
# ruff: noqa: S608

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from analytics import store
from analytics.funnel_engine import NO_STEP, breakdown_label
from analytics.inputs import DateRange, EventFunnelSpec, PropertyFilter, ReportInputError
from analytics.report.event_funnel import (
    EventFunnel,
    EventFunnelGroup,
    EventFunnelPeriod,
    EventFunnelStep,
)
from analytics.report.time_to_convert import HistogramBucket
from analytics.velocity import HISTOGRAM_BOUNDS
from onboarding.models import EndUser, Workspace

_LOOKUP_CHUNK = 5000
_NUMBER_TYPES = "('Int64', 'UInt64', 'Double')"


@dataclass(frozen=True)
class StoreEventFunnelStep(EventFunnelStep):
    """A step, and the people who reached the previous step and may still reach this one: their
    conversion window has not closed yet, so they are not counted in `dropped`."""

    still_open: int = 0


@dataclass(frozen=True)
class StoreEventFunnel(EventFunnel):
    """The funnel, and warnings worth showing next to it (event names never recorded)."""

    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class PersonResult:
    """One person's answer: the furthest level and the ms of each step reached (of the attempt
    that counts), the breakdown value, or `excluded` (then level is that of the attempt)."""

    person_id: int
    level: int
    excluded: bool
    times: tuple[int, ...]
    value: str


class _Parameters:
    """Server-side parameters, named p0, p1, … in the order the SQL asks for them."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def __call__(self, value: Any, kind: str) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"{{{name}:{kind}}}"


def _filter_sql(condition: PropertyFilter, bind: _Parameters) -> str:
    """funnel_engine.property_matches, in ClickHouse."""
    key = bind(condition.key, "String")
    kind = f"JSONType(properties, {key})"
    value = condition.value
    if condition.operator == "is_set":
        return f"JSONHas(properties, {key})"
    if condition.operator == "is_not_set":
        return f"NOT JSONHas(properties, {key})"
    if condition.operator == "contains":
        text = bind(str(value), "String")
        return (
            f"({kind} = 'String' AND"
            f" positionCaseInsensitiveUTF8(JSONExtractString(properties, {key}), {text}) > 0)"
        )
    if condition.operator in ("eq", "neq"):
        if isinstance(value, bool):
            same = f"{kind} = 'Bool' AND JSONExtractBool(properties, {key}) = {bind(value, 'Bool')}"
        elif isinstance(value, int | float):
            number = bind(float(value), "Float64")
            same = f"{kind} IN {_NUMBER_TYPES} AND JSONExtractFloat(properties, {key}) = {number}"
        else:
            text = bind(str(value), "String")
            same = f"{kind} = 'String' AND JSONExtractString(properties, {key}) = {text}"
        return f"({same})" if condition.operator == "eq" else f"NOT ({same})"
    sign = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[condition.operator]
    number = bind(float(value), "Float64")
    return f"({kind} IN {_NUMBER_TYPES} AND JSONExtractFloat(properties, {key}) {sign} {number})"


def _match_sql(event: str, filters: Sequence[PropertyFilter], bind: _Parameters) -> str:
    # The filters are read only for events of the right name (if() evaluates lazily).
    condition = " AND ".join(_filter_sql(f, bind) for f in filters) or "1"
    return f"if(name = {bind(event, 'String')}, {condition}, 0)"


def _mask_sql(matches: list[str]) -> str:
    if not matches:
        return "toUInt32(0)"
    return " + ".join(f"toUInt32({match}) * {1 << k}" for k, match in enumerate(matches))


def _value_sql(spec: EventFunnelSpec, bind: _Parameters) -> str:
    """funnel_engine.breakdown_label of the breakdown property, for an event breakdown."""
    if spec.breakdown is None or spec.breakdown.kind != "event":
        return "''"
    key = bind(spec.breakdown.property, "String")
    kind = f"JSONType(properties, {key})"
    return (
        f"multiIf({kind} = 'String', JSONExtractString(properties, {key}),"
        f" {kind} = 'Null', '(none)',"
        f" {kind} = 'Double', toString(JSONExtractFloat(properties, {key})),"
        f" JSONExtractRaw(properties, {key}))"
    )


def _attempt_sql(spec: EventFunnelSpec) -> str:
    """One attempt from the entry at index i, folded over the person's later events: a tuple
    (level, steps done as a mask, stopped, indexes of the events that counted)."""
    n = len(spec.steps)
    if spec.order == "unordered":
        free = "toUInt32(bitAnd(mask[j], bitNot(acc.2)))"
        lowest = f"toUInt32(bitAnd({free}, bitNot(toUInt32({free} - 1))))"
        advance = (
            f"if({free} != 0, (toUInt8(acc.1 + 1), toUInt32(bitOr(acc.2, {lowest})), toUInt8(0),"
            " arrayPushBack(acc.4, toUInt32(j))), acc)"
        )
    else:
        stopped = "(acc.1, acc.2, toUInt8(1), acc.4)" if spec.order == "strict" else "acc"
        advance = (
            "if(bitTest(mask[j], acc.1), (toUInt8(acc.1 + 1), acc.2, toUInt8(0),"
            f" arrayPushBack(acc.4, toUInt32(j))), {stopped})"
        )
    return (
        f"arrayFold((acc, j) -> if(acc.3 = 1 OR acc.1 = {n}, acc,"
        f" if(ms[j] > ms[i] + {{window:Int64}}, (acc.1, acc.2, toUInt8(1), acc.4), {advance})),"
        " range(i + 1, length(ms) + 1),"
        " (toUInt8(1), toUInt32(bitShiftLeft(toUInt32(1), rank[i])), toUInt8(0),"
        " [toUInt32(i)]))"
    )


def _excluded_sql(spec: EventFunnelSpec) -> str:
    """Whether attempt `a` (entry, level, reached) meets one of its exclusions."""
    if not spec.exclusions:
        return "toUInt8(0)"
    checks = []
    for j, exclusion in enumerate(spec.exclusions):
        low = f"ms[a.3[{exclusion.from_step + 1}]]"
        to = exclusion.to_step
        checks.append(
            f"(a.2 > {exclusion.from_step} AND arrayExists(k -> bitTest(xmask[k], {j})"
            f" AND NOT has(a.3, toUInt32(k)) AND ms[k] > {low} AND if(a.2 > {to},"
            f" ms[k] < ms[a.3[{to + 1}]], ms[k] <= ms[a.1] + {{window:Int64}}),"
            " range(a.1 + 1, length(ms) + 1)))"
        )
    return f"toUInt8({' OR '.join(checks)})"


def _value_of_attempt_sql(spec: EventFunnelSpec) -> str:
    breakdown = spec.breakdown
    if breakdown is None or breakdown.kind != "event":
        return "''"
    if breakdown.attribution == "first_touch":
        return "value[a.3[1]]"
    if breakdown.attribution == "last_touch":
        return "value[a.3[a.2]]"
    step = breakdown.step or 0
    return f"if(a.2 > {step}, value[a.3[{step + 1}]], '(none)')"


def people_sql(
    *, workspace: Workspace, spec: EventFunnelSpec, date_range: DateRange
) -> tuple[str, dict[str, Any]]:
    """SQL of one row per person who had an attempt: person_id, level, excluded, entry_ms,
    times (ms of each step reached), value (event breakdown), and its parameters."""
    bind = _Parameters()
    steps = [_match_sql(step.event, step.filters, bind) for step in spec.steps]
    exclusions = [_match_sql(e.event, e.filters, bind) for e in spec.exclusions]
    value = _value_sql(spec, bind)
    names = sorted({step.event for step in spec.steps} | {e.event for e in spec.exclusions})
    start_ms = int(date_range.start.timestamp() * 1000)
    end_ms = int(date_range.end.timestamp() * 1000)
    bind.values |= {
        "workspace": workspace.id,
        "start": date_range.start,
        "stop": date_range.end + spec.window,
        "start_ms": start_ms,
        "end_ms": end_ms,
        "window": int(spec.window.total_seconds() * 1000),
        "names": names,
    }
    in_range = (
        "workspace_id = {workspace:UInt64} AND timestamp >= {start:DateTime64(3, 'UTC')}"
        " AND timestamp <= {stop:DateTime64(3, 'UTC')}"
    )
    if spec.order == "strict":
        # Every event of the people who entered: any other event breaks a strict chain.
        which = (
            f"person_id IN (SELECT person_id FROM events WHERE {in_range}"
            f" AND name = {bind(spec.steps[0].event, 'String')}"
            " AND timestamp < {end:DateTime64(3, 'UTC')})"
        )
        bind.values["end"] = date_range.end
    else:
        which = "name IN {names:Array(String)}"
    ranks = ", ".join(f"bitTest(event_mask, {k}), {k}" for k in range(len(steps)))
    values = (
        "arraySort((x, key) -> key, groupArray(event_value), keys)"
        if spec.breakdown is not None and spec.breakdown.kind == "event"
        else "[]"
    )
    entry = "mask[i] != 0" if spec.order == "unordered" else "bitTest(mask[i], 0)"
    sql = f"""
    WITH matched AS (
        SELECT person_id, toUnixTimestamp64Milli(timestamp) AS event_ms, id,
               {_mask_sql(steps)} AS event_mask, {_mask_sql(exclusions)} AS event_xmask,
               {value} AS event_value
        FROM events WHERE {in_range} AND {which}
    ),
    arrays AS (
        -- One row per person, events in reading order (time, first step, id) by one numeric
        -- key: sorting numbers is several times faster than sorting tuples.
        SELECT person_id,
               groupArray(bitShiftLeft(toUInt128(event_ms), 72)
                   + bitShiftLeft(toUInt128(event_rank), 64) + toUInt128(id)) AS keys,
               arraySort((x, key) -> key, groupArray(event_ms), keys) AS ms,
               arraySort((x, key) -> key, groupArray(event_rank), keys) AS rank,
               arraySort((x, key) -> key, groupArray(event_mask), keys) AS mask,
               arraySort((x, key) -> key, groupArray(event_xmask), keys) AS xmask,
               {values} AS value,
               arrayFilter(i -> ms[i] >= {{start_ms:Int64}} AND ms[i] < {{end_ms:Int64}}
                   AND {entry}, arrayEnumerate(ms)) AS entries
        FROM (
            SELECT *, toUInt8(multiIf({ranks}, {NO_STEP})) AS event_rank FROM matched
            WHERE event_mask != 0 OR event_xmask != 0 {"OR 1" if spec.order == "strict" else ""}
        )
        GROUP BY person_id
    ),
    attempts AS (
        SELECT person_id, ms, value, xmask,
               arrayMap(i -> {_attempt_sql(spec)}, entries) AS folds,
               arrayMap((i, f) -> (i, f.1, f.4), entries, folds) AS walked,
               -- (entry index, level, indexes of the events that counted, excluded)
               arrayMap(a -> (a.1, a.2, a.3, {_excluded_sql(spec)}), walked) AS tried
        FROM arrays WHERE notEmpty(entries)
    ),
    chosen AS (
        -- The furthest level first, then attempts not excluded, then the earliest.
        SELECT person_id, ms, value, arraySort(a -> (-toInt16(a.2), a.4, a.1), tried)[1] AS a
        FROM attempts
    )
    SELECT person_id, a.2 AS level, a.4 AS excluded, ms[a.1] AS entry_ms,
           arrayMap(r -> ms[r], a.3) AS times, {_value_of_attempt_sql(spec)} AS value
    FROM chosen
    """
    return sql, bind.values


def people(
    *, workspace: Workspace, spec: EventFunnelSpec, date_range: DateRange
) -> list[PersonResult]:
    """Every person who had an attempt, with their answer (what the tests compare)."""
    sql, parameters = people_sql(workspace=workspace, spec=spec, date_range=date_range)
    return [
        PersonResult(int(person), int(level), bool(excluded), tuple(times), value)
        for person, level, excluded, _, times, value in store.rows(sql, parameters)
    ]


def _bucket_sql(duration: str) -> str:
    """The histogram bucket of a duration in ms, as queries.HISTOGRAM_BOUNDS cuts them."""
    cases = [
        f"{duration} < {bound * 1000}, {index}"
        for index, (_, bound) in enumerate(HISTOGRAM_BOUNDS)
        if bound is not None
    ]
    return f"multiIf({', '.join(cases)}, {len(HISTOGRAM_BOUNDS) - 1})"


def _report_sql(spec: EventFunnelSpec, people: str) -> str:
    """One row of aggregates over the people of `people_sql`."""
    n = len(spec.steps)
    limit = spec.people_limit
    counted = "NOT excluded"
    columns = [
        "countIf(excluded)",
        f"[{', '.join(f'countIf({counted} AND level > {k})' for k in range(n))}]",
    ]
    closed = "entry_ms + {window:Int64} < {now_ms:Int64}"
    for k in range(1, n):
        reached = f"{counted} AND level > {k}"
        duration = f"times[{k + 1}] - times[{k}]"
        stopped = f"{counted} AND level = {k}"
        columns += [
            f"sumIf({duration}, {reached})",
            f"quantileExactInclusiveIf(0.5)({duration}, {reached})",
            f"sumMapIf([toUInt8({_bucket_sql(duration)})], [toUInt64(1)], {reached})",
            f"countIf({stopped} AND NOT ({closed}))",
        ]
    for k in range(n):
        reached = f"{counted} AND level > {k}"
        stopped = f"{counted} AND level = {k} AND {closed}"
        columns += [
            f"groupArraySortedIf({limit})(person_id, {reached})" if limit else "[]",
            f"groupArraySortedIf({limit})(person_id, {stopped})" if limit and k else "[]",
        ]
    day = "toDate(fromUnixTimestamp64Milli(entry_ms), {timezone:String})"
    period = f"toMonday({day})" if spec.interval == "week" else day
    columns += [
        f"sumMapIf([{period}], [toUInt64(1)], {counted})",
        f"sumMapIf([{period}], [toUInt64(1)], {counted} AND level = {n})",
    ]
    if spec.breakdown is not None and spec.breakdown.kind == "event":
        columns += [
            f"sumMapIf([value], [toUInt64(1)], {counted} AND level > {k})" for k in range(n)
        ]
    return f"SELECT {', '.join(columns)} FROM ({people})"


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _external_ids(ids: set[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    ordered = sorted(ids)
    for offset in range(0, len(ordered), _LOOKUP_CHUNK):
        chunk = ordered[offset : offset + _LOOKUP_CHUNK]
        found |= dict(EndUser.objects.filter(id__in=chunk).values_list("id", "external_id"))
    return found


def _trait_groups(
    *, workspace: Workspace, spec: EventFunnelSpec, date_range: DateRange, trait: str
) -> dict[str, list[int]]:
    """Counts per step for each value of a person trait. The store holds no traits: they are
    read from the primary database (the source of truth, never stale) for the people in the
    funnel, a chunk at a time."""
    sql, parameters = people_sql(workspace=workspace, spec=spec, date_range=date_range)
    levels = store.rows(f"SELECT person_id, level FROM ({sql}) WHERE NOT excluded", parameters)
    grouped: dict[str, list[int]] = defaultdict(lambda: [0] * len(spec.steps))
    for offset in range(0, len(levels), _LOOKUP_CHUNK):
        chunk = levels[offset : offset + _LOOKUP_CHUNK]
        traits = dict(
            EndUser.objects.filter(
                workspace=workspace, id__in=[person for person, _ in chunk]
            ).values_list("id", "traits")
        )
        for person, level in chunk:
            value = breakdown_label((traits.get(person) or {}).get(trait))
            for k in range(level):
                grouped[value][k] += 1
    return grouped


def event_funnel(
    *, workspace: Workspace, spec: EventFunnelSpec, date_range: DateRange
) -> StoreEventFunnel:
    """The ad-hoc event funnel, computed in the analytics store; a drop-in for
    queries.event_funnel. Entries (step 1, or any step for unordered funnels) fall in the date
    range; later steps may follow up to the conversion window after the range ends. The people
    lists hold the first `people_limit` people by id, shown by external id. Raises
    ReportInputError for bad input and store.StoreUnavailable when the store cannot answer."""
    spec.check(workspace)
    if spec.aggregate_by is not None:
        raise ReportInputError(
            "aggregate_by", "Counting by account is not available in the analytics store yet."
        )
    n = len(spec.steps)
    unknown = spec.unknown_events(workspace)
    people, parameters = people_sql(workspace=workspace, spec=spec, date_range=date_range)
    parameters |= {
        "timezone": date_range.timezone,
        "now_ms": int(timezone.now().timestamp() * 1000),
    }
    row = list(store.rows(_report_sql(spec, people), parameters)[0])
    excluded, counts = int(row.pop(0)), [int(count) for count in row.pop(0)]
    timing: dict[int, tuple[int, float, dict[int, int], int]] = {}
    for k in range(1, n):
        total, median, (buckets, users), still_open = row[:4]
        del row[:4]
        timing[k] = (int(total), float(median), dict(zip(buckets, users, strict=True)), still_open)
    lists = [(row[2 * k], row[2 * k + 1]) for k in range(n)]
    del row[: 2 * n]
    labels = _external_ids({person for pair in lists for ids in pair for person in ids})
    entered = dict(zip(*row.pop(0), strict=True))
    converted = dict(zip(*row.pop(0), strict=True))
    steps = []
    for k in range(n):
        total, median, histogram, still_open = timing.get(k, (0, math.nan, {}, 0))
        previous = counts[k - 1] if k else counts[0]
        # A person erased a moment ago may still be in the store: not listed.
        converted_people, dropped_people = (
            sorted(labels[i] for i in ids if i in labels) for ids in lists[k]
        )
        steps.append(
            StoreEventFunnelStep(
                index=k,
                event=spec.steps[k].event,
                count=counts[k],
                conversion_from_previous=_rate(counts[k], previous),
                conversion_from_start=_rate(counts[k], counts[0]),
                dropped=previous - counts[k] - still_open,
                median_seconds_to_convert=None if math.isnan(median) else median / 1000,
                mean_seconds_to_convert=(
                    round(total / counts[k] / 1000, 3) if k and counts[k] else None
                ),
                histogram=(
                    tuple(
                        HistogramBucket(label=label, users=int(histogram.get(index, 0)))
                        for index, (label, _) in enumerate(HISTOGRAM_BOUNDS)
                    )
                    if k
                    else ()
                ),
                converted_people=tuple(converted_people),
                dropped_people=tuple(dropped_people),
                still_open=int(still_open),
            )
        )
    breakdown: dict[str, list[int]] = {}
    if spec.breakdown is not None and spec.breakdown.kind == "event":
        breakdown = defaultdict(lambda: [0] * n)
        for k, (values, users) in enumerate(row):
            for value, count in zip(values, users, strict=True):
                breakdown[value][k] = int(count)
    elif spec.breakdown is not None:
        breakdown = _trait_groups(
            workspace=workspace, spec=spec, date_range=date_range, trait=spec.breakdown.property
        )
    return StoreEventFunnel(
        order=spec.order,
        window_seconds=int(spec.window.total_seconds()),
        aggregate_by="end_user",
        steps=tuple(steps),
        excluded=excluded,
        breakdown=tuple(
            EventFunnelGroup(value=value, counts=tuple(c), conversion=_rate(c[-1], c[0]))
            for value, c in sorted(breakdown.items(), key=lambda item: (-item[1][0], item[0]))
        ),
        over_time=tuple(
            EventFunnelPeriod(
                period_start=day,
                entered=int(entered[day]),
                converted=int(converted.get(day, 0)),
                conversion=_rate(int(converted.get(day, 0)), int(entered[day])),
            )
            for day in sorted(entered)
        ),
        warnings=tuple(
            f"No event named {name!r} was ever recorded in this workspace: it counts 0 people."
            for name in unknown
        ),
    )
