"""The ad-hoc event funnel computed in the analytics store (ClickHouse), exactly as the
reference engine analytics/funnel_engine.py defines it (its docstring holds the semantics;
tests/analytics/test_store_funnel.py compares the two person by person).

How the query works: the events that matter (for strict order, every event of the people who
entered) are read with a bit mask of the steps and of the exclusions each matches, gathered per
block of 1024 person ids (one group per person was the bottleneck) and put in reading order
(time, first step, id) by one sort of a numeric key that also carries the masks ("all steps":
per block and value). Ordered and strict funnels without exclusions then run over the whole
block at once (_chain_sql: one array pass per level, nothing per person until the answer);
exclusions and any order walk every entry's attempt for the whole block at once (_walk_sql:
one gather per level). Neither folds per entry nor lets a lambda capture an array (a captured
array is copied once per element: quadratic on a person with many events). The outer query
aggregates those people into the report with one aggregate per figure, so only one row comes
back and the analyzer has little to plan. `windowFunnel()` is not used: it is not exact (one
event matching two steps, strict modes, no step times). Figures: bench/README.md.
"""

# SQL here is assembled from fixed fragments and integers; every value a caller supplies
# (event names, property keys and values, the time zone) travels as a server-side parameter.
# ruff: noqa: S608

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.utils import timezone

from analytics import store
from analytics.funnel_engine import NO_STEP
from analytics.inputs import DateRange, EventFunnelSpec, PropertyFilter
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


def _label_sql(column: str, key: str) -> str:
    """funnel_engine.breakdown_label of member `key` (a bound parameter) of a JSON column."""
    kind = f"JSONType({column}, {key})"
    return (
        f"multiIf({kind} = 'String', JSONExtractString({column}, {key}),"
        f" {kind} = 'Null', '(none)',"
        f" {kind} = 'Double', toString(JSONExtractFloat({column}, {key})),"
        f" JSONExtractRaw({column}, {key}))"
    )


# Reading order packed into one UInt128 (sorting numbers is several times faster than sorting
# tuples): the event id in the low half; above it the person's place in its block of 1024
# (10 bits), the time in ms shifted to be positive from 1900 on (44 bits) and the rank (8 bits).
_MS_OFFSET = 2_300_000_000_000
BLOCK = 1024


def _packed_key_sql() -> str:
    """An event's reading order and everything the funnel reads of it but its value, packed
    into one UInt256, so that one sort of plain numbers puts a block in order: from the top,
    the high half of _key_sql (place in the block, ms, rank), the event id, 64 zero bits, the
    exclusion mask and the step mask (32 bits each)."""
    high = (
        f"bitShiftLeft(toUInt64(person_id % {BLOCK}), 54)"
        f" + bitShiftLeft(toUInt64(event_ms + {_MS_OFFSET}), 8) + event_rank"
    )
    masks = "bitOr(toUInt64(event_mask), bitShiftLeft(toUInt64(event_xmask), 32))"
    return (
        f"reinterpretAsUInt256(concat(reinterpretAsFixedString({masks}),"
        " reinterpretAsFixedString(toUInt64(0)), reinterpretAsFixedString(toUInt64(id)),"
        f" reinterpretAsFixedString(toUInt64({high}))))"
    )


def _rank_sql(mask: str) -> str:
    """The reading-order rank of an event: its first step, NO_STEP when it matches none."""
    return f"toUInt8(if({mask} = 0, {NO_STEP}, bitCount(bitAnd({mask}, -{mask}) - 1)))"


def _walk_sql(spec: EventFunnelSpec) -> str:
    """The rest of people_sql for exclusions and any order: every entry's attempt walked for
    the whole block at once, one level after the other, with no fold and no lambda that
    captures an array (a captured array is copied once per element: quadratic).

    P{k}[i] is the position (in the block, 0: none) of the event that counts for the attempt
    entered at i as its k-th step, ignoring the window: the next event after P{k-1} that can
    be the next step, read from per-step "next position" arrays with one gather
    (arrayElement with an array of positions). Ordered attempts look for step k, strict ones
    at the very next event only; any-order attempts for any step a maximum matching of the
    events counted so far could still fill: D{k} holds the step sets those events can fill,
    and an event counts when its steps are not all in every one of them (funnel_engine's
    augmenting path, decided with bit masks). The window cuts each walk to a prefix. An
    attempt is excluded when an exclusion event not counted as its step falls between its
    steps: counted by prefix sums at the edges of the equal-time groups of events (the same
    instant never excludes), the window's end found by one sort of events and window ends.
    A person's answer is their attempt with the highest (level, not excluded, entry)."""
    n = len(spec.steps)
    full = (1 << n) - 1
    window = "{window:Int64}"
    positions = "arrayEnumerate(b_ms)"
    layers: list[tuple[str, str]] = [
        (
            "firsts",
            "arrayMap((p, q, i) -> i = 1 OR p != q, places,"
            f" arrayShiftRight(places, 1), {positions})",
        ),
        ("lasts", "arrayPushBack(arrayPopFront(firsts), 1)"),
    ]
    entry = "m != 0" if spec.order == "unordered" else "bitTest(m, 0)"
    layers.append(
        (
            "P1",
            f"arrayMap((m, t, i) -> if({entry} AND t >= {{start_ms:Int64}}"
            f" AND t < {{end_ms:Int64}}, toUInt32(i), toUInt32(0)), b_mask, b_ms, {positions})",
        )
    )
    wanted_steps = range(n) if spec.order == "unordered" else range(1, n)
    for s in wanted_steps:
        if spec.order == "strict":
            after = (
                f"arrayMap((m, l, i) -> if(NOT l AND bitTest(m, {s}), toUInt32(i + 1),"
                f" toUInt32(0)), arrayPushBack(arrayPopFront(b_mask), 0), lasts, {positions})"
            )
        else:
            at_or_after = (
                f"arrayReverseFill((x, c) -> c, arrayMap((m, i) -> if(bitTest(m, {s}),"
                f" toUInt32(i), toUInt32(0)), b_mask, {positions}), arrayMap((m, l) ->"
                f" bitTest(m, {s}) OR l, b_mask, lasts))"
            )
            after = (
                f"arrayMap((x, l) -> if(l, toUInt32(0), x),"
                f" arrayPushBack(arrayPopFront({at_or_after}), 0), lasts)"
            )
        layers.append((f"next{s}", after))
    if spec.order == "unordered":
        layers.append(
            (
                "D1",
                f"arrayMap(m -> arrayMap(s -> toUInt32(bitShiftLeft(toUInt32(1), s)),"
                f" arrayFilter(s -> bitTest(m, s), range({n}))), b_mask)",
            )
        )
    for k in range(1, n):
        if spec.order != "unordered":
            layers.append((f"P{k + 1}", f"arrayElement(next{k}, P{k})"))
            continue
        # Steps some maximum matching of the counted events leaves free.
        layers.append(
            (
                f"R{k}",
                f"arrayMap(d -> bitXor(toUInt32({full}), arrayFold((acc, x) -> bitAnd(acc, x), d,"
                f" toUInt32({full}))), D{k})",
            )
        )
        gathered = ", ".join(f"arrayElement(next{s}, P{k})" for s in range(n))
        arguments = ", ".join(f"g{s}" for s in range(n))
        candidates = ", ".join(
            f"if(bitTest(r, {s}) AND g{s} != 0, g{s}, 4294967295)" for s in range(n)
        )
        layers.append(
            (
                f"P{k + 1}",
                f"arrayMap((r, {arguments}) -> toUInt32(arrayMin([{candidates}]) % 4294967295),"
                f" R{k}, {gathered})",
            )
        )
        if k + 1 < n:
            layers.append(
                (
                    f"D{k + 1}",
                    "arrayMap((d, m) -> arrayDistinct(arrayFlatten(arrayMap(x -> arrayMap(s ->"
                    " toUInt32(bitOr(x, bitShiftLeft(toUInt32(1), s))), arrayFilter(s ->"
                    f" bitTest(m, s) AND NOT bitTest(x, s), range({n}))), d))), D{k},"
                    f" arrayElement(b_mask, P{k + 1}))",
                )
            )
    for k in range(1, n + 1):
        layers.append((f"T{k}", "b_ms" if k == 1 else f"arrayElement(b_ms, P{k})"))
    reached = " + ".join(f"toUInt8(p{k} != 0 AND t{k} <= t1 + {window})" for k in range(1, n + 1))
    level_arguments = ", ".join(f"p{k}, t{k}" for k in range(1, n + 1))
    level_columns = ", ".join(f"P{k}, T{k}" for k in range(1, n + 1))
    layers.append(("L", f"arrayMap(({level_arguments}) -> {reached}, {level_columns})"))
    checks = []
    if spec.exclusions:
        # Tie groups: a person's events at one instant.
        layers += [
            (
                "tie_firsts",
                "arrayMap((f, t, u) -> f OR t != u, firsts, b_ms, arrayShiftRight(b_ms, 1))",
            ),
            ("tie_lasts", "arrayPushBack(arrayPopFront(tie_firsts), 1)"),
            # The last position of the person at or before each entry's window end: events and
            # window ends (position 0) sorted together, each window end taking the event
            # before it.
            (
                "merged",
                "arrayMap(k -> toUInt32(bitAnd(k, 4294967295)), arraySort(arrayConcat("
                f"arrayMap((p, t, i) -> {_merge_key_sql('p', 't', 0, 'i')}, places, b_ms,"
                f" {positions}), arrayMap((p, t) -> {_merge_key_sql('p', f't + {window}', 1, '0')},"
                " places, b_ms))))",
            ),
            (
                "window_ends",
                "arrayFilter((f, x) -> x = 0, arrayFill(x -> x != 0, merged), merged)",
            ),
        ]
        for k in range(2, n + 1):
            layers.append((f"X{k}", f"arrayElement(b_xmask, P{k})"))
        for j, exclusion in enumerate(spec.exclusions):
            low, high = exclusion.from_step + 1, exclusion.to_step + 1
            layers += [
                (f"C{j}", f"arrayCumSum(arrayMap(x -> toInt64(bitTest(x, {j})), b_xmask))"),
                # Exclusion events up to the end of an instant, before its start, up to the
                # window's end.
                (f"C{j}_le", f"arrayReverseFill((x, c) -> c, C{j}, tie_lasts)"),
                (
                    f"C{j}_lt",
                    f"arrayFill((x, c) -> c, arrayMap((c, x) -> c - bitTest(x, {j}),"
                    f" C{j}, b_xmask), tie_firsts)",
                ),
                (f"Lo{j}", f"arrayElement(C{j}_le, P{low})"),
                (f"Hi{j}", f"arrayElement(C{j}_lt, P{high})"),
                (f"We{j}", f"arrayElement(C{j}, window_ends)"),
            ]
            # Steps of the attempt itself that fall between are not exclusions of it.
            used = (
                " + ".join(
                    f"toInt64({k} <= l AND bitTest(x{k}, {j}) AND t{k} > t{low}"
                    f" AND (l <= {exclusion.to_step} OR t{k} < t{high}))"
                    for k in range(low + 1, high)
                )
                or "0"
            )
            checks.append(
                f"(l > {exclusion.from_step} AND if(l > {exclusion.to_step}, hi{j}, we{j})"
                f" - lo{j} - ({used}) > 0)"
            )
        pairs = [
            *((f"t{k}", f"T{k}") for k in range(1, n + 1)),
            *((f"x{k}", f"X{k}") for k in range(2, n + 1)),
            *(
                (f"{edge}{j}", f"{edge.title()}{j}")
                for j in range(len(spec.exclusions))
                for edge in ("lo", "hi", "we")
            ),
        ]
        layers.append(
            (
                "excluded",
                f"arrayMap((l, {', '.join(p for p, _ in pairs)}) -> {' OR '.join(checks)}, L,"
                f" {', '.join(c for _, c in pairs)})",
            )
        )
        clean = "NOT x"
    else:
        layers.append(("excluded", "arrayWithConstant(length(b_ms), 0)"))
        clean = "1"
    # The attempt that counts, per person: the highest (level, not excluded, entry).
    layers += [
        (
            "attempt_keys",
            f"arrayMap((l, x, e) -> if(e = 0, toUInt64(0), bitOr(bitOr(bitShiftLeft("
            f"toUInt64(l), 40), bitShiftLeft(toUInt64({clean}), 39)), e)), L, excluded, P1)",
        ),
        (
            "best",
            "arrayMap(piece -> arrayMax(piece), arraySplit((x, s) -> s, attempt_keys, firsts))",
        ),
        ("person_places", "arrayFilter((p, f) -> f, places, firsts)"),
        ("winner", "arrayMap(b -> toUInt32(bitAnd(b, 4294967295)), best)"),
        ("winner_level", "arrayMap(b -> toUInt8(bitShiftRight(b, 40)), best)"),
    ]
    for k in range(1, n + 1):
        layers.append((f"W{k}", f"arrayElement(P{k}, winner)"))
    breakdown = spec.breakdown
    if breakdown is None:
        value = "''"
    elif breakdown.attribution == "all_steps":
        value = "wanted"
    elif breakdown.kind == "person" or breakdown.attribution == "first_touch":
        value = "b_value[w1]"
    elif breakdown.attribution == "last_touch":
        value = "b_value[multiIf(" + ", ".join(f"l = {k}, w{k}" for k in range(n, 1, -1)) + ", w1)]"
    else:
        step = breakdown.step or 0
        value = f"if(l > {step}, b_value[w{step + 1}], '(none)')"
    times = ", ".join(f"b_ms[w{k}]" for k in range(1, n + 1))
    query = f"SELECT * FROM ({_layered_sql(layers)})"
    winners = ", ".join(f"W{k} AS w{k}" for k in range(1, n + 1))
    return f"""
    SELECT block * {BLOCK} + place AS person_id, l AS level,
           toUInt8(NOT bitTest(b, 39)) AS excluded, b_ms[w1] AS entry_ms,
           arraySlice([{times}], 1, l) AS times, {value} AS value
    FROM ({query})
    ARRAY JOIN best AS b, person_places AS place, winner_level AS l, {winners}
    WHERE b != 0
    """


def _layered_sql(layers: list[tuple[str, str]]) -> str:
    """`sorted` with the columns of `layers` (name, expression), each computed in the first
    subquery where every column it reads exists: as few nested subqueries as the dependencies
    allow (the analyzer's time grows with their number)."""
    depth: dict[str, int] = {}
    levels: list[list[str]] = []
    for name, expression in layers:
        read = set(re.findall(r"\b\w+\b", expression))
        level = max((depth[column] + 1 for column in read & depth.keys()), default=0)
        depth[name] = level
        if level == len(levels):
            levels.append([])
        levels[level].append(f"{expression} AS {name}")
    query = "SELECT * FROM sorted"
    for columns in levels:
        query = f"SELECT *, {', '.join(columns)} FROM ({query})"
    return query


def _merge_key_sql(place: str, ms: str, kind: int, position: str) -> str:
    """A UInt128 that sorts events and window ends by person, time and kind (an event before a
    window end at the same instant), the position in the low 32 bits."""
    high = (
        f"bitShiftLeft(toUInt64({place}), 54) + bitShiftLeft(toUInt64({ms} + {_MS_OFFSET}), 1)"
        f" + {kind}"
    )
    return (
        f"reinterpretAsUInt128(concat(reinterpretAsFixedString(toUInt64({position})),"
        f" reinterpretAsFixedString(toUInt64({high}))))"
    )


def _chains(spec: EventFunnelSpec) -> bool:
    """Whether _chain_sql answers this funnel (ordered or strict, without exclusions) rather
    than _walk_sql."""
    return spec.order != "unordered" and not spec.exclusions


def _chain_sql(spec: EventFunnelSpec) -> str:
    """The rest of people_sql for ordered and strict funnels without exclusions: the one-pass
    recurrence (the latest attempt at each level) computed over a whole block at once, one
    level after the other, with array functions that take the block's arrays side by side (no
    lambda captures an array, no fold, nothing per person until the answer).

    l{k}[j] is (entry, entry ms) of the latest attempt at level k after reading event j (entry:
    the position in the block, 0: none). An event moves the attempt of level k-1 as it
    was before it (shifted by one event, 0 at a person's first event) to level k when it
    matches step k within the window; ordered attempts keep their level until a newer one
    replaces them (arrayFill carries the last value forward, reset at each person's first
    event), strict ones last one event. A person's answer is the attempt with the highest
    (level, entry) over their events; its events are, ordered, those where l{k} first takes
    its entry, strict, the `level` events from its entry on. Those events, cut per person,
    give the times and the attributed value."""
    n = len(spec.steps)
    window = "{window:Int64}"
    ordered = spec.order == "ordered"

    def carried(raw: str) -> str:
        if not ordered:
            return raw
        return f"arrayFill((x, s) -> x.1 != 0 OR s, {raw}, starts)"

    none = "(toUInt32(0), toInt64(0))"
    entry = (
        "arrayMap((m, t, i) -> if(bitTest(m, 0) AND t >= {start_ms:Int64} AND t < {end_ms:Int64},"
        f" (toUInt32(i), t), {none}), b_mask, b_ms, arrayEnumerate(b_ms))"
    )
    # l{k}: (entry, entry ms) per event. One subquery per level: each reads the previous
    # level's column (an alias used twice would be analysed twice, and the levels nest).
    query = f"SELECT *, {carried(entry)} AS l1 FROM sorted"
    for k in range(2, n + 1):
        moved = (
            f"arrayMap((m, t, p, s) -> if(bitTest(m, {k - 1}) AND NOT s AND p.1 != 0"
            f" AND t <= p.2 + {window}, p, {none}), b_mask, b_ms, arrayShiftRight(l{k - 1}, 1),"
            " starts)"
        )
        query = f"SELECT *, {carried(moved)} AS l{k} FROM ({query})"
    levels = [f"l{k}" for k in range(1, n + 1)]
    best = (
        "multiIf("
        + ", ".join(
            f"l{k}.1 != 0, bitOr(bitShiftLeft(toUInt64({k}), 32), l{k}.1)" for k in range(n, 0, -1)
        )
        + ", toUInt64(0))"
    )
    best = f"arrayMap(({', '.join(levels)}) -> {best}, {', '.join(levels)})"
    if ordered:
        # Levels and entries only grow along a person's events: the last one holds the best,
        # carried back to the person's other events.
        ends = "arrayPushBack(arrayPopFront(starts), 1)"
        best = f"arrayReverseFill((x, e) -> e, {best}, {ends})"
        # An attempt's event at level k is where l{k} first holds its entry.
        first_held = " OR ".join(f"(x{k}.1 = w AND (s OR y{k}.1 != w))" for k in range(1, n + 1))
        arguments = ", ".join(f"x{k}, y{k}" for k in range(1, n + 1))
        columns = ", ".join(f"l{k}, arrayShiftRight(l{k}, 1)" for k in range(1, n + 1))
        on_chain = (
            f"arrayMap((w, s, {arguments}) -> w != 0 AND ({first_held}), winner, starts, {columns})"
        )
    else:
        per_person = f"arraySplit((x, s) -> s, {best}, starts)"
        best = (
            "arrayFlatten(arrayMap((x, piece) -> arrayWithConstant(length(piece), x),"
            f" arrayMap(piece -> arrayMax(piece), {per_person}), {per_person}))"
        )
        on_chain = (
            "arrayMap((w, l, i) -> w != 0 AND i >= w AND i < w + l, winner, winner_level,"
            " arrayEnumerate(b_ms))"
        )
    breakdown = spec.breakdown
    if breakdown is None:
        value = "''"
    elif breakdown.attribution == "all_steps":
        value = "wanted"
    elif breakdown.kind == "person" or breakdown.attribution == "first_touch":
        value = "v[1]"
    elif breakdown.attribution == "last_touch":
        value = "v[-1]"
    else:
        step = breakdown.step or 0
        value = f"if(length(v) > {step}, v[{step + 1}], '(none)')"

    def chained(column: str) -> str:
        return (
            f"arraySplit((x, s) -> s, arrayFilter((x, c) -> c, {column}, on_chain), chain_starts)"
        )

    return f"""
    SELECT block * {BLOCK} + p[1] AS person_id, toUInt8(length(t)) AS level,
           toUInt8(0) AS excluded, t[1] AS entry_ms, t AS times, {value} AS value
    FROM (
        SELECT block, {chained("places")} AS chain_places, {chained("b_ms")} AS chain_times,
               {chained("b_value") if "v" in value else "chain_times"} AS chain_values,
               {"wanted" if value == "wanted" else "block AS wanted"}
        FROM (
            SELECT *, arrayMap(d -> d != 0, arrayDifference(arrayFilter((x, c) -> c, places,
                       on_chain))) AS chain_starts
            FROM (
                SELECT *, {on_chain} AS on_chain
                FROM (
                    SELECT *, arrayMap(b -> toUInt32(bitAnd(b, 4294967295)), best) AS winner,
                           arrayMap(b -> toUInt32(bitShiftRight(b, 32)), best) AS winner_level
                    FROM (SELECT *, {best} AS best FROM ({query}))
                )
            )
        )
    )
    ARRAY JOIN chain_places AS p, chain_times AS t, chain_values AS v
    """


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


def people_sql(
    *, workspace: Workspace, spec: EventFunnelSpec, date_range: DateRange
) -> tuple[str, dict[str, Any]]:
    """SQL of one row per person (per account with aggregate_by; per person and value with the
    "all steps" attribution) who had an attempt: person_id, level, excluded, entry_ms, times
    (ms of each step reached), value (breakdown), and its parameters."""
    bind = _Parameters()
    steps = [_match_sql(step.event, step.filters, bind) for step in spec.steps]
    exclusions = [_match_sql(e.event, e.filters, bind) for e in spec.exclusions]
    actors = _actors_sql(spec, bind)
    breakdown = spec.breakdown
    if breakdown is None:
        value = "''"
    elif breakdown.kind == "person":
        value = "a.trait"
    else:
        value = _label_sql("properties", bind(breakdown.property, "String"))
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
    wanted_values = breakdown is not None
    all_steps = breakdown is not None and breakdown.attribution == "all_steps"

    columns = {
        "ms": f"arrayMap(h -> toInt64(bitAnd(bitShiftRight(h, 8), {(1 << 44) - 1}))"
        f" - {_MS_OFFSET}, high)",
        "mask": "arrayMap(k -> toUInt32(bitAnd(k, 4294967295)), keys)",
        "xmask": "arrayMap(k -> toUInt32(bitAnd(bitShiftRight(k, 32), 4294967295)), keys)"
        if spec.exclusions
        else "b_ms",
        "value": f"arraySort((x, k) -> k, groupArray(event_value), groupArray({_packed_key_sql()}))"
        if wanted_values and not all_steps
        else "b_ms",
    }
    source, grouping = "matched", "block"
    if all_steps:
        # "All steps": the funnel once per value, as if only the events with that value
        # matched steps; each person's events are read once per value they have on a step.
        source = """(
            SELECT person_id, event_ms, id, event_xmask, event_value, wanted,
                   if(event_value = wanted, m.event_mask, 0) AS event_mask
            FROM matched AS m INNER JOIN (
                SELECT person_id, groupUniqArray(event_value) AS wanted_values FROM matched
                WHERE event_mask != 0 GROUP BY person_id
            ) AS v USING (person_id)
            ARRAY JOIN wanted_values AS wanted
        )"""
        grouping = "block, wanted"
    sql = f"""
    WITH matched AS (
        SELECT {person} AS person_id, toUnixTimestamp64Milli(e.timestamp) AS event_ms, e.id AS id,
               {_mask_sql(steps)} AS event_mask, {_mask_sql(exclusions)} AS event_xmask,
               {value if wanted_values else "''"} AS event_value
        FROM events AS e {join} WHERE {in_range} AND {which}
    ),
    sorted AS (
        -- People in blocks of {BLOCK} ids (one group per person was the bottleneck), each
        -- block's events in reading order; `starts` marks each person's first event.
        SELECT intDiv(person_id, {BLOCK}) AS block{", wanted" if all_steps else ""},
               arraySort(groupArray({_packed_key_sql()})) AS keys,
               arrayMap(k -> toUInt64(bitShiftRight(k, 192)), keys) AS high,
               arrayMap(h -> toUInt16(bitShiftRight(h, 54)), high) AS places,
               arrayMap(d -> d != 0, arrayDifference(places)) AS starts,
               {", ".join(f"{column} AS b_{name}" for name, column in columns.items())}
        FROM (
            SELECT *, {_rank_sql("event_mask")} AS event_rank FROM {source}
            WHERE event_mask != 0 OR event_xmask != 0 {"OR 1" if spec.order == "strict" else ""}
        )
        GROUP BY {grouping}
    )
    {_chain_sql(spec) if _chains(spec) else _walk_sql(spec)}
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
        "countIf(excluded)",
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
        levels = ", ".join(f"[toUInt64(level > {k})]" for k in range(n))
        columns.append(f"sumMapIf([value], {levels}, counted)")
    day = "toDate(fromUnixTimestamp64Milli(entry_ms), {timezone:String})"
    period = f"toMonday({day})" if spec.interval == "week" else day
    return f"""
    SELECT {", ".join(columns)} FROM (
        SELECT person_id, level, excluded, value, NOT excluded AS counted,
               entry_ms + {{window:Int64}} < {{now_ms:Int64}} AS closed, {period} AS period,
               arrayPopFront(arrayDifference(times)) AS durations
        FROM ({people})
    )"""


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
    all_steps = spec.breakdown is not None and spec.breakdown.attribution == "all_steps"
    # "All steps" counts a person once per value: the funnel itself is counted without it.
    main = replace(spec, breakdown=None) if all_steps else spec
    people, parameters = people_sql(workspace=workspace, spec=main, date_range=date_range)
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
    ) = store.rows(_report_sql(main, people), parameters)[0]
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
    if all_steps:
        grouped, grouped_parameters = people_sql(
            workspace=workspace, spec=spec, date_range=date_range
        )
        levels = ", ".join(f"countIf(NOT excluded AND level > {k})" for k in range(n))
        for value, *counts_by_level in store.rows(
            f"SELECT value, {levels} FROM ({grouped}) GROUP BY value", grouped_parameters
        ):
            breakdown[value] = [int(count) for count in counts_by_level]
    elif spec.breakdown is not None:
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
