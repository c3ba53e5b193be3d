"""The ad-hoc event funnel computed in the analytics store (ClickHouse), exactly as the
reference engine analytics/funnel_engine.py defines it (its docstring holds the semantics;
tests/analytics/test_store_funnel.py compares the two person by person).

How the query works: the events that matter (for strict order, every event of the people who
entered) are read with a bit mask of the steps and of the exclusions each matches, gathered per
block of 1024 person ids (one group per person was the bottleneck) and put in reading order
(time, first step, id) by one sort of a numeric key that also carries the masks (a UInt128 for
most funnels; "all steps": per block and value). Ordered and strict funnels without exclusions
then run over the whole block at once (chain_sql: one array pass per level, nothing per person
until the answer); exclusions and any order walk every entry's attempt for the whole block at
once (walk_sql: one gather per level). Neither folds per entry nor lets a lambda capture an
array (a captured array is copied once per element: quadratic on a person with many events).
The outer query aggregates those people into the report with one aggregate per figure, so only
one row comes back and the analyzer has little to plan. A breakdown by event property reads the
label of the one event each answer takes its value from, joined after the funnel.
`windowFunnel()` is not used: it is not exact (one event matching two steps, strict modes, no
step times). Figures: bench/README.md.
"""

# SQL here is assembled from fixed fragments and integers; every value a caller supplies
# (event names, property keys and values, the time zone) travels as a server-side parameter.
# ruff: noqa: S608

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any

from django.utils import timezone

from analytics import store
from analytics.inputs import DateRange, EventFunnelSpec, PropertyFilter
from analytics.report.event_funnel import (
    EventFunnel,
    EventFunnelGroup,
    EventFunnelPeriod,
    EventFunnelStep,
)
from analytics.report.time_to_convert import HistogramBucket
from analytics.store_funnel_blocks import (
    BLOCK,
    MS_OFFSET,
    carries_values,
    joins_value,
    narrow_columns_sql,
    narrow_key_sql,
    narrow_ms_bits,
    packed_key_sql,
    rank_sql,
)
from analytics.store_funnel_chain import chain_sql, chains
from analytics.store_funnel_walk import walk_sql
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


def _label_sql(column: str, key: str) -> str:
    """funnel_engine.breakdown_label of member `key` (a bound parameter) of a JSON column.
    Most labels are strings: JSONExtractString parses the JSON once and gives any non-empty
    string; its type is asked (a second parse) only when that is empty (not a string, or "")."""
    text = f"JSONExtractString({column}, {key})"
    kind = f"JSONType({column}, {key})"
    return (
        f"if({text} != '', {text}, multiIf({kind} = 'String', '',"
        f" {kind} = 'Null', '(none)',"
        f" {kind} = 'Double', toString(JSONExtractFloat({column}, {key})),"
        f" JSONExtractRaw({column}, {key})))"
    )


def _actors_sql(spec: EventFunnelSpec, bind: _Parameters) -> str | None:
    """People with what the funnel reads of them: the label of the breakdown trait, and, when
    counting by account, the account's label and number (the lowest person id holding it)."""
    person_trait = spec.breakdown is not None and spec.breakdown.kind == "person"
    if not person_trait and spec.aggregate_by is None:
        return None
    columns = ["person_id AS actor_person"]
    if person_trait:
        assert spec.breakdown is not None  # noqa: S101
        columns.append(f"{_label_sql('traits', bind(spec.breakdown.property, 'String'))} AS trait")
    where = "workspace_id = {workspace:UInt64}"
    if spec.aggregate_by is not None:
        key = bind(spec.aggregate_by, "String")
        columns.append(f"{_label_sql('traits', key)} AS actor_label")
        where += f" AND JSONHas(traits, {key})"
    people = f"SELECT {', '.join(columns)} FROM people FINAL WHERE {where}"
    if spec.aggregate_by is None:
        return people
    return f"SELECT *, min(actor_person) OVER (PARTITION BY actor_label) AS actor FROM ({people})"


def _event_value_sql(spec: EventFunnelSpec, bind: _Parameters) -> str:
    """An event's breakdown value as `sorted` needs it: a person trait's, or with "all steps"
    an event property's label, read only from step events (if() is lazy; reading JSON was
    most of a breakdown's cost). Other breakdowns by event property read the label after the
    funnel, of the one event each answer takes it from (people_sql)."""
    breakdown = spec.breakdown
    if breakdown is None or joins_value(spec):
        return "''"
    if breakdown.kind == "person":
        return "a.trait"
    label = _label_sql("properties", bind(breakdown.property, "String"))
    return f"if(event_mask != 0, {label}, '')"


def people_sql(
    *, workspace: Workspace, spec: EventFunnelSpec, date_range: DateRange, totals: bool = False
) -> tuple[str, dict[str, Any]]:
    """SQL of one row per person (per account with aggregate_by; per person and value with the
    "all steps" attribution) who had an attempt: person_id, level, excluded, entry_ms, times
    (ms of each step reached), value (breakdown), total, and its parameters. `total` is 1 but
    for "all steps", where a person's rows per value have 0, and, with `totals`, one more row
    answers the funnel over all values (1, value '')."""
    bind = _Parameters()
    steps = [_match_sql(step.event, step.filters, bind) for step in spec.steps]
    exclusions = [_match_sql(e.event, e.filters, bind) for e in spec.exclusions]
    actors = _actors_sql(spec, bind)
    value = _event_value_sql(spec, bind)
    names = sorted({step.event for step in spec.steps} | {e.event for e in spec.exclusions})
    bind.values |= {
        "workspace": workspace.id,
        "start": date_range.start,
        "stop": date_range.end + spec.window,
        "start_ms": int(date_range.start.timestamp() * 1000),
        "end_ms": int(date_range.end.timestamp() * 1000),
        "window": int(spec.window.total_seconds() * 1000),
        "names": names,
    }
    # Every event read lies between start and stop: the narrow key counts ms from the start
    # (in UTC: aware datetimes of one zone subtract as wall clocks, across DST too).
    stop, start = (bind.values[name].astimezone(UTC) for name in ("stop", "start"))
    span_ms = (stop - start) // timedelta(milliseconds=1)
    in_range = (
        "e.workspace_id = {workspace:UInt64} AND e.timestamp >= {start:DateTime64(3, 'UTC')}"
        " AND e.timestamp <= {stop:DateTime64(3, 'UTC')}"
    )
    if spec.order == "strict" and spec.aggregate_by is not None:
        # Every event of every account: any other event breaks a strict chain, also one done
        # by a colleague who never entered.
        which = "1"
    elif spec.order == "strict":
        # Every event of the people who entered: any other event breaks a strict chain.
        which = (
            f"e.person_id IN (SELECT person_id FROM events AS e WHERE {in_range}"
            f" AND name = {bind(spec.steps[0].event, 'String')}"
            " AND timestamp < {end:DateTime64(3, 'UTC')})"
        )
        bind.values["end"] = date_range.end
    else:
        which = "e.name IN {names:Array(String)}"
    join = "" if actors is None else f"INNER JOIN ({actors}) AS a ON e.person_id = a.actor_person"
    person = "e.person_id" if spec.aggregate_by is None else "a.actor"
    sql = f"""
    WITH matched AS (
        SELECT {person} AS person_id, toUnixTimestamp64Milli(e.timestamp) AS event_ms, e.id AS id,
               {_mask_sql(steps)} AS event_mask, {_mask_sql(exclusions)} AS event_xmask,
               {value} AS event_value
        FROM events AS e {join} WHERE {in_range} AND {which}
    ),
    sorted AS ({_sorted_sql(spec, totals, span_ms)}),
    answers AS ({chain_sql(spec) if chains(spec) else walk_sql(spec)})
    {_answers_sql(spec, bind, in_range)}
    """
    return sql, bind.values


def _answers_sql(spec: EventFunnelSpec, bind: _Parameters, in_range: str) -> str:
    """The people of `answers`, with a breakdown by event property the label of the event
    each answer names (value_event; 0: the attributed step was not reached). The answers are
    what the join holds in memory; the events stream past them, and only the ones joined are
    parsed."""
    if not joins_value(spec):
        return "SELECT * FROM answers"
    assert spec.breakdown is not None  # noqa: S101
    label = _label_sql("v.properties", bind(spec.breakdown.property, "String"))
    return f"""
    SELECT a.person_id AS person_id, a.level AS level, a.excluded AS excluded,
           a.entry_ms AS entry_ms, a.times AS times,
           if(a.value_event = 0, '(none)', {label}) AS value, a.total AS total
    FROM (
        SELECT e.id AS id, e.properties AS properties FROM events AS e
        WHERE {in_range} AND e.name IN {{names:Array(String)}}
    ) AS v
    RIGHT JOIN answers AS a ON v.id = a.value_event"""


def _sorted_sql(spec: EventFunnelSpec, totals: bool, span_ms: int) -> str:
    """`sorted`: the matched events of each block of people in reading order, as parallel
    arrays (store_funnel_blocks.sorted_columns)."""
    all_steps = _all_steps(spec)
    values = carries_values(spec)
    ms_bits = narrow_ms_bits(spec, span_ms)
    if ms_bits is not None:
        narrow = narrow_columns_sql(spec, ms_bits)
        keys = f"groupArray({narrow_key_sql(spec, ms_bits)})"
        high, place = narrow["top"], narrow["place"]
        columns = {"ms": narrow["ms"], "mask": narrow["mask"]}
        columns["xmask"] = narrow["xmask"] if spec.exclusions else "b_ms"
        columns["id"] = narrow["id"] if joins_value(spec) else "b_ms"
    else:
        keys = f"groupArray({packed_key_sql()})"
        high = "arrayMap(k -> toUInt64(bitShiftRight(k, 192)), keys)"
        place = "bitShiftRight(h, 54)"
        columns = {
            "ms": f"arrayMap(h -> toInt64(bitAnd(bitShiftRight(h, 8), {(1 << 44) - 1}))"
            f" - {MS_OFFSET}, high)",
            "mask": "arrayMap(k -> toUInt32(bitAnd(k, 4294967295)), keys)",
            "xmask": "arrayMap(k -> toUInt32(bitAnd(bitShiftRight(k, 32), 4294967295)), keys)"
            if spec.exclusions
            else "b_ms",
            # Each value where its key's position in `groupArray` (bits 64-95) took it.
            "value": "arrayElement(groupArray(event_value), arrayMap(k -> toUInt32(bitAnd("
            "bitShiftRight(k, 64), 4294967295)), keys))"
            if values
            else "b_ms",
            "id": "arrayMap(k -> toUInt64(bitAnd(bitShiftRight(k, 128), 18446744073709551615)),"
            " keys)"
            if joins_value(spec)
            else "b_ms",
        }
        if values:
            keys = (
                f"arrayMap((k, i) -> bitOr(k, bitShiftLeft(toUInt256(i), 64)), {keys},"
                f" arrayEnumerate({keys}))"
            )
    source, grouping = "matched", "block"
    if all_steps:
        source, grouping = _all_steps_source_sql(spec, totals), "block, total, wanted"
    return f"""
        -- People in blocks of {BLOCK} ids (one group per person was the bottleneck), each
        -- block's events in reading order; `starts` marks each person's first event.
        SELECT intDiv(person_id, {BLOCK}) AS block{", total, wanted" if all_steps else ""},
               arraySort({keys}) AS keys,
               {high} AS high,
               arrayMap(h -> toUInt16({place}), high) AS places,
               arrayMap(d -> d != 0, arrayDifference(places)) AS starts,
               {", ".join(f"{column} AS b_{name}" for name, column in columns.items())}
        FROM (
            SELECT *, {rank_sql("event_mask")} AS event_rank FROM {source}
            WHERE event_mask != 0 OR event_xmask != 0 {"OR 1" if spec.order == "strict" else ""}
        )
        GROUP BY {grouping}
    """


def _all_steps(spec: EventFunnelSpec) -> bool:
    return spec.breakdown is not None and spec.breakdown.attribution == "all_steps"


def _all_steps_source_sql(spec: EventFunnelSpec, totals: bool) -> str:
    """The events of the "all steps" attribution: the funnel once per value (`wanted`), as if
    only the events with that value matched steps, and with `totals` once over all of them
    (`total`). Where only steps matter (ordered and any order without exclusions) each step
    event joins its own value's funnel; exclusions and strict order (where any other event
    breaks the chain) read each person's events once per value they have on a step."""
    if spec.exclusions or spec.order == "strict":
        groups = "arrayMap(v -> (0, v), wanted_values)"
        groups = f"arrayPushFront({groups}, (1, ''))" if totals else groups
        return f"""(
            SELECT person_id, event_ms, id, event_xmask, event_value,
                   funnel.1 AS total, funnel.2 AS wanted,
                   if(total OR event_value = wanted, m.event_mask, 0) AS event_mask
            FROM matched AS m INNER JOIN (
                SELECT person_id, groupUniqArray(event_value) AS wanted_values FROM matched
                WHERE event_mask != 0 GROUP BY person_id
            ) AS v USING (person_id)
            ARRAY JOIN {groups} AS funnel
        )"""
    groups = "[(1, ''), (0, event_value)]" if totals else "[(0, event_value)]"
    return f"""(
            SELECT person_id, event_ms, id, event_xmask, event_value, event_mask,
                   funnel.1 AS total, funnel.2 AS wanted
            FROM matched ARRAY JOIN {groups} AS funnel WHERE event_mask != 0
        )"""


def people(
    *, workspace: Workspace, spec: EventFunnelSpec, date_range: DateRange
) -> list[PersonResult]:
    """Every person who had an attempt, with their answer (what the tests compare)."""
    sql, parameters = people_sql(workspace=workspace, spec=spec, date_range=date_range)
    return [
        PersonResult(int(person), int(level), bool(excluded), tuple(times), value)
        for person, level, excluded, _, times, value, _ in store.rows(sql, parameters)
    ]


def _bucket_sql(duration: str) -> str:
    """The histogram bucket of a duration in ms, as velocity.HISTOGRAM_BOUNDS cuts them."""
    cases = [
        f"{duration} < {bound * 1000}, {index}"
        for index, (_, bound) in enumerate(HISTOGRAM_BOUNDS)
        if bound is not None
    ]
    return f"multiIf({', '.join(cases)}, {len(HISTOGRAM_BOUNDS) - 1})"


def _report_sql(spec: EventFunnelSpec, people: str) -> str:
    """One row of aggregates over the people of `people_sql`. Each figure is one aggregate over
    all steps at once (-ForEach over a person's levels or durations, -Resample by level, one
    sumMap with a value array per level) rather than one aggregate per step: ClickHouse's
    analyzer plans each aggregate and each column it reads, and 30 of them took longer to plan
    than the funnel takes to run on small data."""
    n = len(spec.steps)
    limit = spec.people_limit
    buckets = len(HISTOGRAM_BOUNDS)
    columns = [
        "countIf(excluded AND total)",
        "sumForEachIf(arrayWithConstant(level, toUInt64(1)), counted)",
        "sumForEachIf(durations, counted)",
        "quantileExactInclusiveForEachIf(0.5)(durations, counted)",
        f"sumMapIf(arrayMap((d, k) -> toUInt16(k * {buckets} + {_bucket_sql('d')}), durations,"
        " arrayEnumerate(durations)), arrayWithConstant(length(durations), toUInt64(1)), counted)",
        "sumMapIf([level], [toUInt64(1)], counted AND NOT closed)",
        f"groupArraySortedForEachIf({limit})(arrayWithConstant(level, person_id), counted)"
        if limit
        else "[]",
        f"groupArraySortedResampleIf({limit}, 1, {n}, 1)(person_id, level, counted AND closed)"
        if limit
        else "[]",
        f"sumMapIf([period], [toUInt64(1)], [toUInt64(level = {n})], counted)",
    ]
    if spec.breakdown is not None:
        # "All steps" counts a person once per value (total = 0) and once in the funnel.
        grouped = "NOT excluded AND NOT total" if _all_steps(spec) else "counted"
        levels = ", ".join(f"[toUInt64(level > {k})]" for k in range(n))
        columns.append(f"sumMapIf([value], {levels}, {grouped})")
    day = "toDate(fromUnixTimestamp64Milli(entry_ms), {timezone:String})"
    period = f"toMonday({day})" if spec.interval == "week" else day
    # Merging the expression steps of the nested subqueries cost 10-30 % of a small funnel's
    # CPU (bench/README.md) and nothing is lost without it: each subquery computes only new
    # columns and carries on what is read later.
    return f"""
    SELECT {", ".join(columns)} FROM (
        SELECT person_id, level, excluded, value, total, NOT excluded AND total AS counted,
               entry_ms + {{window:Int64}} < {{now_ms:Int64}} AS closed, {period} AS period,
               arrayPopFront(arrayDifference(times)) AS durations
        FROM ({people})
    )
    SETTINGS query_plan_merge_expressions = 0"""


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _external_ids(ids: set[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    ordered = sorted(ids)
    for offset in range(0, len(ordered), _LOOKUP_CHUNK):
        chunk = ordered[offset : offset + _LOOKUP_CHUNK]
        found |= dict(EndUser.objects.filter(id__in=chunk).values_list("id", "external_id"))
    return found


def _account_labels(workspace: Workspace, trait: str, ids: set[int]) -> dict[int, str]:
    """The label of each account number (the lowest person id holding that account)."""
    if not ids:
        return {}
    bind = _Parameters()
    spec = EventFunnelSpec(steps=(), aggregate_by=trait)
    actors = _actors_sql(spec, bind)
    return {
        int(actor): str(label)
        for actor, label in store.rows(
            f"SELECT DISTINCT actor, actor_label FROM ({actors})"
            " WHERE actor IN {ids:Array(UInt64)}",
            bind.values | {"workspace": workspace.id, "ids": sorted(ids)},
        )
    }


def event_funnel(
    *, workspace: Workspace, spec: EventFunnelSpec, date_range: DateRange
) -> StoreEventFunnel:
    """The ad-hoc event funnel, computed in the analytics store (what
    report.event_funnel.event_funnel answers). Entries (step 1, or any step for unordered
    funnels) fall in the date range; later steps may follow up to the conversion window after
    the range ends. The people lists hold the first `people_limit` people by id, shown by
    external id. Raises
    ReportInputError for bad input and store.StoreUnavailable when the store cannot answer."""
    spec.check(workspace)
    n = len(spec.steps)
    unknown = spec.unknown_events(workspace)
    people, parameters = people_sql(
        workspace=workspace, spec=spec, date_range=date_range, totals=True
    )
    parameters |= {
        "timezone": date_range.timezone,
        "now_ms": int(timezone.now().timestamp() * 1000),
    }
    (
        excluded,
        counts_found,
        sums,
        medians,
        (bucket_keys, bucket_users),
        (open_levels, open_users),
        converted_lists,
        dropped_lists,
        (days, entered_on, converted_on),
        *by_value,
    ) = store.rows(_report_sql(spec, people), parameters)[0]
    counts = [int(count) for count in counts_found] + [0] * (n - len(counts_found))
    histograms: dict[int, dict[int, int]] = defaultdict(dict)
    for key, users in zip(bucket_keys, bucket_users, strict=True):
        step, bucket = divmod(int(key), len(HISTOGRAM_BOUNDS))
        histograms[step][bucket] = int(users)
    still_open_at = dict(zip(open_levels, open_users, strict=True))
    lists = [
        (
            converted_lists[k] if k < len(converted_lists) else [],
            dropped_lists[k - 1] if 0 < k <= len(dropped_lists) else [],
        )
        for k in range(n)
    ]
    listed = {person for pair in lists for ids in pair for person in ids}
    labels = (
        _external_ids(listed)
        if spec.aggregate_by is None
        else _account_labels(workspace, spec.aggregate_by, listed)
    )
    entered = dict(zip(days, entered_on, strict=True))
    converted = dict(zip(days, converted_on, strict=True))
    steps = []
    for k in range(n):
        timed = 0 < k <= len(sums)
        total = int(sums[k - 1]) if timed else 0
        median = float(medians[k - 1]) if timed else math.nan
        still_open = int(still_open_at.get(k, 0)) if k else 0
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
                        HistogramBucket(label=label, users=histograms[k].get(index, 0))
                        for index, (label, _) in enumerate(HISTOGRAM_BOUNDS)
                    )
                    if k
                    else ()
                ),
                converted_people=tuple(converted_people),
                dropped_people=tuple(dropped_people),
                still_open=still_open,
            )
        )
    breakdown: dict[str, list[int]] = defaultdict(lambda: [0] * n)
    if spec.breakdown is not None:
        values, *users_by_level = by_value[0]
        for index, value in enumerate(values):
            breakdown[value] = [int(users[index]) for users in users_by_level]
    return StoreEventFunnel(
        order=spec.order,
        window_seconds=int(spec.window.total_seconds()),
        aggregate_by=spec.aggregate_by or "end_user",
        steps=tuple(steps),
        excluded=int(excluded),
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
