"""The event funnel's chain (analytics/store_funnel.py's people_sql for ordered and strict
funnels without exclusions): the one-pass recurrence over a whole block of people at once."""

# SQL here is assembled from fixed fragments and integers; values travel as parameters.
# ruff: noqa: S608

from __future__ import annotations

from analytics.inputs import EventFunnelSpec
from analytics.store_funnel_blocks import BLOCK, joins_value


def chains(spec: EventFunnelSpec) -> bool:
    """Whether chain_sql answers this funnel (ordered or strict, without exclusions) rather
    than walk_sql."""
    return spec.order != "unordered" and not spec.exclusions


def chain_sql(spec: EventFunnelSpec) -> str:
    """The rest of people_sql for ordered and strict funnels without exclusions: the one-pass
    recurrence (the latest attempt at each level) computed over a whole block at once, one
    level after the other, with array functions that take the block's arrays side by side (no
    lambda captures an array, no fold, nothing per person until the answer).

    l{k}[j] is the entry of the latest attempt at level k after reading event j (its position
    in the block, 0: none). An event moves the attempt of level k-1 as it was before it
    (shifted by one event, 0 at a person's first event) to level k when it matches step k
    within the window (the entry's ms gathered from b_ms); ordered attempts keep their level
    until a newer one replaces them (arrayFill carries the last value forward, reset at each
    person's first event), strict ones last one event. A person's answer is the attempt with
    the highest (level, entry) over their events; its events are, ordered, those where l{k}
    first takes its entry, strict, the `level` events from its entry on. Those events, cut per
    person, give the times and the attributed value."""
    n = len(spec.steps)
    window = "{window:Int64}"
    ordered = spec.order == "ordered"

    def carried(raw: str) -> str:
        if not ordered:
            return raw
        return f"arrayFill((x, s) -> x != 0 OR s, {raw}, starts)"

    entry = (
        "arrayMap((m, t, i) -> if(bitTest(m, 0) AND t >= {start_ms:Int64} AND t < {end_ms:Int64},"
        " toUInt32(i), toUInt32(0)), b_mask, b_ms, arrayEnumerate(b_ms))"
    )
    # l{k}: an entry per event (plain numbers: cheaper to shift and fill than pairs). One
    # subquery per level: each reads the previous level's column (an alias used twice would be
    # analysed twice, and the levels nest).
    query = f"SELECT *, {carried(entry)} AS l1 FROM sorted"
    for k in range(2, n + 1):
        before = f"arrayShiftRight(l{k - 1}, 1)"
        moved = (
            f"arrayMap((m, t, p, e, s) -> if(bitTest(m, {k - 1}) AND NOT s AND p != 0"
            f" AND t <= e + {window}, p, toUInt32(0)), b_mask, b_ms, {before},"
            f" arrayElement(b_ms, {before}), starts)"
        )
        query = f"SELECT *, {carried(moved)} AS l{k} FROM ({query})"
    levels = [f"l{k}" for k in range(1, n + 1)]
    best = (
        "multiIf("
        + ", ".join(
            f"l{k} != 0, bitOr(bitShiftLeft(toUInt64({k}), 32), l{k})" for k in range(n, 0, -1)
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
        first_held = " OR ".join(f"(x{k} = w AND (s OR y{k} != w))" for k in range(1, n + 1))
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
    # The breakdown value, or with joins_value the id of the event it is read from (0: none).
    breakdown = spec.breakdown
    joined = joins_value(spec)
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
        none = "toUInt64(0)" if joined else "'(none)'"
        value = f"if(length(v) > {step}, v[{step + 1}], {none})"
    values = "b_id" if joined else "b_value"
    outputs = f"'' AS value, {value} AS value_event" if joined else f"{value} AS value"

    def chained(column: str) -> str:
        return (
            f"arraySplit((x, s) -> s, arrayFilter((x, c) -> c, {column}, on_chain), chain_starts)"
        )

    return f"""
    SELECT block * {BLOCK} + p[1] AS person_id, toUInt8(length(t)) AS level,
           toUInt8(0) AS excluded, t[1] AS entry_ms, t AS times, {outputs},
           {"total" if value == "wanted" else "toUInt8(1)"} AS total
    FROM (
        SELECT block, {chained("places")} AS chain_places, {chained("b_ms")} AS chain_times,
               {chained(values) if "v" in value else "chain_times"} AS chain_values,
               {"wanted, total" if value == "wanted" else "block AS wanted"}
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
