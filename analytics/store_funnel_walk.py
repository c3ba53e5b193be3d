"""The event funnel's walk: the rest of analytics/store_funnel.py's people_sql for exclusions
and any order. Every entry's attempt is walked for a whole block of people at once, one level
after the other, with no fold and no lambda that captures an array (a captured array is copied
once per element: quadratic on a person with many events).

P{k}[i] is the position (in the block, 0: none) of the event that counts for the attempt
entered at i as its k-th step, ignoring the window: the next event after P{k-1} that can be
the next step, read from per-step "next position" arrays with one gather (arrayElement with an
array of positions). Ordered attempts look for step k, strict ones at the very next event only;
any-order attempts for any step a maximum matching of the events counted so far could still
fill (funnel_engine's augmenting path, decided with bit masks: see _any_order_layers). The
window cuts each walk to a prefix. An attempt is excluded when an exclusion event not counted as
its step falls between its steps: counted by prefix sums at the edges of the equal-time groups
of events (the same instant never excludes), the window's end found by one sort of events and
window ends. A person's answer is their attempt with the highest (level, not excluded, entry).

The columns are computed in as few nested subqueries as their dependencies allow, and each
subquery passes on only the columns a later one reads: ClickHouse's analyzer spends its time
per subquery and per column it carries, and planning was most of a small funnel's time.
"""

# SQL here is assembled from fixed fragments and integers; values travel as parameters.
# ruff: noqa: S608

from __future__ import annotations

import re

from analytics.inputs import EventFunnelSpec
from analytics.store_funnel_blocks import BLOCK, MS_OFFSET, joins_value, sorted_columns

_POSITIONS = "arrayEnumerate(b_ms)"
_WINDOW = "{window:Int64}"
_NONE = 4294967295  # larger than any position: "no candidate" in a minimum
# The widest funnel whose any-order step sets fit one integer as a set of sets (2**n bits).
_FAMILY_TYPES = {
    2: "UInt8",
    3: "UInt8",
    4: "UInt16",
    5: "UInt32",
    6: "UInt64",
    7: "UInt128",
    8: "UInt256",
}

Layers = list[tuple[str, str]]


def walk_sql(spec: EventFunnelSpec) -> str:
    """One row per person (per value with "all steps") with their answer, from `sorted`."""
    n = len(spec.steps)
    layers = _entry_layers(spec) + _next_layers(spec)
    if spec.order != "unordered":
        layers += [(f"P{k + 1}", f"arrayElement(next{k}, P{k})") for k in range(1, n)]
    elif n in _FAMILY_TYPES:
        layers += _any_order_layers(n)
    else:
        layers += _any_order_wide_layers(n)
    layers += [
        (f"T{k}", "b_ms" if k == 1 else f"arrayElement(b_ms, P{k})") for k in range(1, n + 1)
    ]
    reached = " + ".join(f"toUInt8(p{k} != 0 AND t{k} <= t1 + {_WINDOW})" for k in range(1, n + 1))
    level_arguments = ", ".join(f"p{k}, t{k}" for k in range(1, n + 1))
    level_columns = ", ".join(f"P{k}, T{k}" for k in range(1, n + 1))
    layers.append(("L", f"arrayMap(({level_arguments}) -> {reached}, {level_columns})"))
    layers += _exclusion_layers(spec) + _winner_layers(n)
    value = _value_sql(spec)
    outputs = f"'' AS value, {value} AS value_event" if joins_value(spec) else f"{value} AS value"
    times = ", ".join(f"b_ms[w{k}]" for k in range(1, n + 1))
    winners = ", ".join(f"W{k} AS w{k}" for k in range(1, n + 1))
    final = f"""
    SELECT block * {BLOCK} + place AS person_id, l AS level,
           toUInt8(NOT bitTest(b, 39)) AS excluded, b_ms[w1] AS entry_ms,
           arraySlice([{times}], 1, l) AS times, {outputs},
           {"total" if value == "wanted" else "toUInt8(1)"} AS total
    FROM (QUERY)
    ARRAY JOIN best AS b, person_places AS place, winner_level AS l, {winners}
    WHERE b != 0
    """
    return final.replace("QUERY", _layered_sql(layers, final, sorted_columns(spec)))


def _entry_layers(spec: EventFunnelSpec) -> Layers:
    """Each person's first and last event, and P1: the entries (in the date range)."""
    entry = "m != 0" if spec.order == "unordered" else "bitTest(m, 0)"
    return [
        (
            "firsts",
            "arrayMap((p, q, i) -> i = 1 OR p != q, places,"
            f" arrayShiftRight(places, 1), {_POSITIONS})",
        ),
        ("lasts", "arrayPushBack(arrayPopFront(firsts), 1)"),
        (
            "P1",
            f"arrayMap((m, t, i) -> if({entry} AND t >= {{start_ms:Int64}}"
            f" AND t < {{end_ms:Int64}}, toUInt32(i), toUInt32(0)), b_mask, b_ms, {_POSITIONS})",
        ),
    ]


def _next_layers(spec: EventFunnelSpec) -> Layers:
    """next{s}[i]: the position of the person's next event after i that can be step s (strict:
    only the very next event), 0 when there is none."""
    n = len(spec.steps)
    layers = []
    for s in range(n) if spec.order == "unordered" else range(1, n):
        if spec.order == "strict":
            after = (
                f"arrayMap((m, l, i) -> if(NOT l AND bitTest(m, {s}), toUInt32(i + 1),"
                f" toUInt32(0)), arrayPushBack(arrayPopFront(b_mask), 0), lasts, {_POSITIONS})"
            )
        else:
            at_or_after = (
                f"arrayReverseFill((x, c) -> c, arrayMap((m, i) -> if(bitTest(m, {s}),"
                f" toUInt32(i), toUInt32(0)), b_mask, {_POSITIONS}), arrayMap((m, l) ->"
                f" bitTest(m, {s}) OR l, b_mask, lasts))"
            )
            after = (
                f"arrayMap((x, l) -> if(l, toUInt32(0), x),"
                f" arrayPushBack(arrayPopFront({at_or_after}), 0), lasts)"
            )
        layers.append((f"next{s}", after))
    return layers


def _family_constant(value: int, n: int) -> str:
    """A set of step sets as a literal (wider than 64 bits: from its digits)."""
    return str(value) if n <= 6 else f"to{_FAMILY_TYPES[n]}('{value}')"


def _any_order_layers(n: int) -> Layers:
    """P2..Pn of any-order attempts. F{k}[i] is the family of step sets that some maximum
    matching of the attempt's k counted events fills, as one integer whose bit S is set when
    the set S (itself a bit mask of steps) is in the family. Step s is free in some matching
    when a set without it is in the family (F & without_s != 0); the next event that can fill
    a free step counts; it adds s to each set without s for each step s it matches: ((F &
    without_s) << 2**s), or-ed over its steps. Exactly funnel_engine's augmenting paths for
    funnels of up to 8 steps (2**8 bits: UInt256)."""
    without = [
        _family_constant(sum(1 << steps for steps in range(1 << n) if not steps >> s & 1), n)
        for s in range(n)
    ]
    # The family of the empty matching: the empty set alone (typed: shifted by up to 2**(n-1)).
    empty = f"to{_FAMILY_TYPES[n]}(1)"
    layers = [("F1", f"arrayMap(m -> {_family_step_sql(n, 'm', empty)}, b_mask)")]
    for k in range(1, n):
        gathered = ", ".join(f"arrayElement(next{s}, P{k})" for s in range(n))
        arguments = ", ".join(f"g{s}" for s in range(n))
        candidates = ", ".join(
            f"if(g{s} != 0 AND bitAnd(f, {without[s]}) != 0, g{s}, {_NONE})" for s in range(n)
        )
        layers.append(
            (
                f"P{k + 1}",
                f"arrayMap((f, {arguments}) -> toUInt32(least({candidates}) % {_NONE}),"
                f" F{k}, {gathered})",
            )
        )
        if k + 1 < n:
            grown = _family_step_sql(n, "m", "f", without)
            layers.append(
                (f"F{k + 1}", f"arrayMap((f, m) -> {grown}, F{k}, arrayElement(b_mask, P{k + 1}))")
            )
    return layers


def _family_step_sql(n: int, mask: str, family: str, without: list[str] | None = None) -> str:
    """The family after an event with step mask `mask` is matched: each set of `family` that
    lacks a step s of the event, with s added."""
    terms = []
    for s in range(n):
        kept = family if without is None else f"bitAnd({family}, {without[s]})"
        terms.append(f"if(bitTest({mask}, {s}), bitShiftLeft({kept}, {1 << s}), 0)")
    grown = terms[0]
    for term in terms[1:]:
        grown = f"bitOr({grown}, {term})"
    return grown


def _any_order_wide_layers(n: int) -> Layers:
    """_any_order_layers for funnels of more than 8 steps, whose set of sets does not fit one
    integer: D{k} holds the step sets as an array of masks, R{k} the steps some of them leave
    free."""
    full = (1 << n) - 1
    layers = [
        (
            "D1",
            f"arrayMap(m -> arrayMap(s -> toUInt32(bitShiftLeft(toUInt32(1), s)),"
            f" arrayFilter(s -> bitTest(m, s), range({n}))), b_mask)",
        )
    ]
    for k in range(1, n):
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
            f"if(bitTest(r, {s}) AND g{s} != 0, g{s}, {_NONE})" for s in range(n)
        )
        layers.append(
            (
                f"P{k + 1}",
                f"arrayMap((r, {arguments}) -> toUInt32(least({candidates}) % {_NONE}),"
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
    return layers


def _exclusion_layers(spec: EventFunnelSpec) -> Layers:
    """`excluded`: whether each attempt met one of the funnel's exclusions."""
    n = len(spec.steps)
    if not spec.exclusions:
        return [("excluded", "arrayWithConstant(length(b_ms), 0)")]
    layers = [
        # Tie groups: a person's events at one instant.
        (
            "tie_firsts",
            "arrayMap((f, t, u) -> f OR t != u, firsts, b_ms, arrayShiftRight(b_ms, 1))",
        ),
        ("tie_lasts", "arrayPushBack(arrayPopFront(tie_firsts), 1)"),
        # The last position of the person at or before each entry's window end: events and
        # window ends (position 0) sorted together, each window end taking the event before it.
        (
            "merged",
            "arrayMap(k -> toUInt32(bitAnd(k, 4294967295)), arraySort(arrayConcat("
            f"arrayMap((p, t, i) -> {_merge_key_sql('p', 't', 0, 'i')}, places, b_ms,"
            f" {_POSITIONS}), arrayMap((p, t) -> {_merge_key_sql('p', f't + {_WINDOW}', 1, '0')},"
            " places, b_ms))))",
        ),
        ("window_ends", "arrayFilter((f, x) -> x = 0, arrayFill(x -> x != 0, merged), merged)"),
    ]
    layers += [(f"X{k}", f"arrayElement(b_xmask, P{k})") for k in range(2, n + 1)]
    checks = []
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
    return layers


def _winner_layers(n: int) -> Layers:
    """The attempt that counts, per person: the highest (level, not excluded, entry)."""
    return [
        (
            "attempt_keys",
            "arrayMap((l, x, e) -> if(e = 0, toUInt64(0), bitOr(bitOr(bitShiftLeft("
            "toUInt64(l), 40), bitShiftLeft(toUInt64(NOT x), 39)), e)), L, excluded, P1)",
        ),
        (
            "best",
            "arrayMap(piece -> arrayMax(piece), arraySplit((x, s) -> s, attempt_keys, firsts))",
        ),
        ("person_places", "arrayFilter((p, f) -> f, places, firsts)"),
        ("winner", "arrayMap(b -> toUInt32(bitAnd(b, 4294967295)), best)"),
        ("winner_level", "arrayMap(b -> toUInt8(bitShiftRight(b, 40)), best)"),
        *((f"W{k}", f"arrayElement(P{k}, winner)") for k in range(1, n + 1)),
    ]


def _value_sql(spec: EventFunnelSpec) -> str:
    """The breakdown value of a person's answer (w{k}: the position of its k-th step), or with
    joins_value the id of the event it is read from (0: none)."""
    n = len(spec.steps)
    breakdown = spec.breakdown
    if breakdown is None:
        return "''"
    if breakdown.attribution == "all_steps":
        return "wanted"
    values, none = ("b_id", "toUInt64(0)") if joins_value(spec) else ("b_value", "'(none)'")
    if breakdown.kind == "person" or breakdown.attribution == "first_touch":
        return f"{values}[w1]"
    if breakdown.attribution == "last_touch":
        return (
            f"{values}[multiIf(" + ", ".join(f"l = {k}, w{k}" for k in range(n, 1, -1)) + ", w1)]"
        )
    step = breakdown.step or 0
    return f"if(l > {step}, {values}[w{step + 1}], {none})"


def _columns_read(expression: str) -> set[str]:
    return set(re.findall(r"\b\w+\b", expression))


def _layered_sql(layers: Layers, outer: str, base: set[str]) -> str:
    """`sorted` (whose columns are `base`) with the columns of `layers` (name, expression),
    each computed in the first
    subquery where every column it reads exists: as few nested subqueries as the dependencies
    allow. Each subquery passes on only the columns read further out (by a later subquery or by
    `outer`, the query around them): the analyzer's time grows with the subqueries and with
    the columns each carries."""
    depth: dict[str, int] = {}
    levels: list[list[tuple[str, str]]] = []
    for name, expression in layers:
        level = max((depth[c] + 1 for c in _columns_read(expression) & depth.keys()), default=0)
        depth[name] = level
        if level == len(levels):
            levels.append([])
        levels[level].append((name, expression))
    # The last level (len(levels): the outer query) at which each column is read.
    last_read: dict[str, int] = {}
    for level, columns in enumerate(levels):
        for _, expression in columns:
            for column in _columns_read(expression):
                last_read[column] = max(last_read.get(column, -1), level)
    for column in _columns_read(outer):
        last_read[column] = len(levels)
    known = base | depth.keys()
    query = "sorted"
    for level, columns in enumerate(levels):
        carried = [
            column
            for column, read in last_read.items()
            if column in known and read > level and depth.get(column, -1) < level
        ]
        selected = carried + [f"{expression} AS {name}" for name, expression in columns]
        query = f"(SELECT {', '.join(selected)} FROM {query})"
    return query.removeprefix("(").removesuffix(")")


def _merge_key_sql(place: str, ms: str, kind: int, position: str) -> str:
    """A UInt128 that sorts events and window ends by person, time and kind (an event before a
    window end at the same instant), the position in the low 32 bits."""
    high = (
        f"bitShiftLeft(toUInt64({place}), 54) + bitShiftLeft(toUInt64({ms} + {MS_OFFSET}), 1)"
        f" + {kind}"
    )
    return (
        f"reinterpretAsUInt128(concat(reinterpretAsFixedString(toUInt64({position})),"
        f" reinterpretAsFixedString(toUInt64({high}))))"
    )
