"""The ad-hoc event funnel computed in the database, for its common case: order "ordered", no
exclusions, counted by person, no breakdown or a breakdown by a person trait, and every step a
different event name (so an event matches one step at most). Everything else goes through
analytics/funnel_engine.py; on the common case both give the same answer (tests/analytics/
test_funnel_sql.py checks it on random event sets, on SQLite and PostgreSQL).

Why it is the engine's answer: with one step per event, the engine's attempt from an entry at
t0 reaches step k at t_k = the earliest step-k event at or after t_{k-1} (same timestamp
allowed), while t_k <= t0 + window. That greedy chain is monotone in its start, so the chain
that follows a step-k event is the one of the earliest step-(k+1) event at or after it, and each
later time of that chain is the smallest among all later step-(k+1) events: n - 1 passes of
suffix minima (window functions), last step first, give every entry its whole chain. A person
counts at the furthest level of their attempts, the earliest entry among equals, as in the
engine; the totals (levels, durations, median, histogram, periods, people, breakdown) are
aggregated in the same query, so only a few hundred rows come back.
"""

# SQL here is assembled from fixed fragments, column names and integers; every value a caller
# supplies travels as a query parameter (the step filters come compiled by the ORM).
# ruff: noqa: S608

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Case, IntegerField, Q, Value, When

from analytics.inputs import EventFunnelSpec
from analytics.sql import epoch_ms, fetch_all, is_postgresql, local_bucket
from onboarding.models import EndUser, Event, Workspace

END_USER = EndUser._meta.db_table


def supports(spec: EventFunnelSpec) -> bool:
    names = [step.event for step in spec.steps]
    return (
        spec.order == "ordered"
        and not spec.exclusions
        and spec.aggregate_by is None
        and (spec.breakdown is None or spec.breakdown.kind == "person")
        and len(set(names)) == len(names)
    )


@dataclass
class FunnelTotals:
    """What the report needs, per level (the number of steps a person's best attempt reached)."""

    levels: dict[int, int] = field(default_factory=dict)
    durations: dict[int, tuple[int, int]] = field(default_factory=dict)  # step: (count, sum ms)
    medians: dict[int, int] = field(default_factory=dict)  # step: nearest-rank median ms
    histograms: dict[int, dict[int, int]] = field(default_factory=dict)  # step: {bucket: n}
    periods: dict[tuple[date, int], int] = field(default_factory=dict)  # (period, level): n
    people: dict[int, list[str]] = field(default_factory=dict)  # level: first external ids
    breakdown: list[tuple[Any, int, int]] = field(default_factory=list)  # (trait, level, n)


def _best_attempts(
    *,
    workspace: Workspace,
    step_qs: list[Q],
    start: datetime,
    end: datetime,
    window: timedelta,
    window_ms: int,
) -> tuple[str, list[Any]]:
    """SQL of one row per person: actor, level, ts (entry, whole seconds), t0 (entry ms),
    t1..t(n-1) (ms of each step reached, NULL past the level)."""
    n = len(step_qs)
    wanted = step_qs[0] & Q(timestamp__lt=end)
    for q in step_qs[1:]:
        wanted |= q
    steps = (
        Event.objects.filter(workspace=workspace, timestamp__gte=start, timestamp__lte=end + window)
        .filter(wanted)
        .annotate(
            step=Case(
                *[When(q, then=Value(index)) for index, q in enumerate(step_qs)],
                output_field=IntegerField(),
            )
        )
        .values_list("end_user_id", "timestamp", "step")
    )
    base_sql, base_params = steps.query.sql_with_params()
    chain = [f"c{j}" for j in range(1, n)]
    window_clause = (
        # A suffix minimum as a running one over descending time: aggregated incrementally,
        # where a frame ending at UNBOUNDED FOLLOWING is recomputed row by row on PostgreSQL.
        # Within one millisecond later steps sort first, so a step sees the next step's events
        # of the same millisecond (the engine lets equal timestamps chain) without RANGE peers.
        "WINDOW w AS (PARTITION BY actor ORDER BY ms DESC, step DESC"
        " ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    )
    ms = epoch_ms('b."timestamp"')
    sql = (
        f"SELECT end_user_id AS actor, {ms} AS ms,"
        f" step, {', '.join(f'CAST(NULL AS BIGINT) AS {c}' for c in chain)}"
        f" FROM ({base_sql}) b"
    )
    for k in range(n - 2, -1, -1):
        columns = []
        for j in range(1, n):
            if j <= k:
                columns.append(f"c{j}")
            elif j == k + 1:
                columns.append(
                    f"CASE WHEN step = {k} THEN MIN(CASE WHEN step = {k + 1} THEN ms END) OVER w"
                    f" END AS c{j}"
                )
            else:
                columns.append(
                    f"CASE WHEN step = {k} THEN MIN(CASE WHEN step = {k + 1} THEN c{j} END)"
                    f" OVER w ELSE c{j} END AS c{j}"
                )
        sql = (
            f"SELECT actor, ms, step, {', '.join(columns)}"
            f" FROM ({sql}) p{k} WHERE step <= {k + 1} {window_clause}"
        )
    reached = " + ".join(f"CASE WHEN {c} <= ms + %s THEN 1 ELSE 0 END" for c in chain)
    entries = (
        f"SELECT actor, ms, 1 + {reached} AS level, {', '.join(chain)}"
        f" FROM ({sql}) chains WHERE step = 0"
    )
    # The best attempt is the earliest entry of the highest level. Its chain is the smallest
    # among the entries of that level (a chain is monotone in its entry), so one grouped pass
    # finds it: per level, the earliest entry and the smallest time of every step.
    levels = range(n, 0, -1)
    firsts = [f"MIN(ms) FILTER (WHERE level = {level}) AS e{level}" for level in levels]
    firsts += [
        f"MIN(c{j}) FILTER (WHERE level = {level}) AS l{level}_{j}"
        for level in levels
        for j in range(1, level)
    ]
    grouped = f"SELECT actor, {', '.join(firsts)} FROM ({entries}) entries GROUP BY actor"
    level_case = " ".join(f"WHEN e{level} IS NOT NULL THEN {level}" for level in levels)
    times = [f"COALESCE({', '.join(f'e{level}' for level in levels)}) AS t0"]
    for j in range(1, n):
        cases = " ".join(
            f"WHEN e{level} IS NOT NULL THEN l{level}_{j}" for level in levels if level > j
        )
        times.append(f"CASE {cases} END AS t{j}")
    instant = "to_timestamp(t0 / 1000)" if is_postgresql() else "datetime(t0 / 1000, 'unixepoch')"
    best = (
        f"SELECT actor, CASE {level_case} END AS level, {', '.join(times)} FROM ({grouped}) grouped"
    )
    # Whole seconds of the entry are enough to find its day or week (zone offsets are whole
    # seconds).
    all_times = ", ".join(f"t{j}" for j in range(n))
    best = f"SELECT actor, level, {instant} AS ts, {all_times} FROM ({best}) firsts"
    return best, [*([window_ms] * (n - 1)), *base_params]


def _histogram_case(column: str, bounds: list[int | None]) -> str:
    parts = [
        f"WHEN {column} < {bound * 1000} THEN {index}"
        for index, bound in enumerate(bounds)
        if bound is not None
    ]
    return f"CASE {' '.join(parts)} ELSE {len(bounds) - 1} END"


def funnel_totals(
    *,
    workspace: Workspace,
    spec: EventFunnelSpec,
    step_qs: list[Q],
    start: datetime,
    end: datetime,
    timezone: str,
    histogram_bounds: list[int | None],
) -> FunnelTotals:
    n = len(spec.steps)
    window_ms = int(spec.window.total_seconds() * 1000)
    best, params = _best_attempts(
        workspace=workspace,
        step_qs=step_qs,
        start=start,
        end=end,
        window=spec.window,
        window_ms=window_ms,
    )
    null_int, null_text = "CAST(NULL AS BIGINT)", "CAST(NULL AS TEXT)"
    branches = [f"SELECT 0, level, {null_text}, COUNT(*), {null_int} FROM best GROUP BY level"]
    branch_params: list[Any] = []
    for k in range(1, n):
        duration = f"t{k} - t{k - 1}"
        branches.append(
            f"SELECT 1, {k}, {null_text}, COUNT(*), SUM({duration}) FROM best WHERE level > {k}"
        )
        if is_postgresql():
            branches.append(
                f"SELECT 2, {k}, {null_text}, percentile_disc(0.5) WITHIN GROUP"
                f" (ORDER BY {duration}), {null_int} FROM best WHERE level > {k}"
            )
        else:
            branches.append(
                f"SELECT 2, {k}, {null_text}, d, {null_int} FROM (SELECT d,"
                " ROW_NUMBER() OVER (ORDER BY d) AS position, COUNT(*) OVER () AS total"
                f" FROM (SELECT {duration} AS d FROM best WHERE level > {k}) durations)"
                " ranked WHERE position = (total * 50 + 99) / 100"
            )
        branches.append(
            f"SELECT 3, {k}, {null_text}, bucket, COUNT(*) FROM (SELECT"
            f" {_histogram_case(duration, histogram_bounds)} AS bucket FROM best"
            f" WHERE level > {k}) buckets GROUP BY bucket"
        )
    branches.append(
        f"SELECT 4, level, period, COUNT(*), {null_int} FROM (SELECT level,"
        f" {local_bucket('ts', spec.interval)} AS period FROM best) periods"
        " GROUP BY period, level"
    )
    branch_params.append(timezone)
    if spec.people_limit:
        collate = ' COLLATE "C"' if is_postgresql() else ""
        branches.append(
            f"SELECT 5, level, external_id, {null_int}, {null_int} FROM (SELECT level,"
            f" u.external_id, ROW_NUMBER() OVER (PARTITION BY level ORDER BY"
            f" u.external_id{collate}) AS position"
            f" FROM best JOIN {END_USER} u ON u.id = best.actor)"
            f" named WHERE position <= {int(spec.people_limit)}"
        )
    if spec.breakdown is not None:
        if is_postgresql():
            trait = "CAST(u.traits -> %s AS TEXT)"
            branch_params.append(spec.breakdown.property)
        else:
            trait = "(u.traits -> ('$.\"' || %s || '\"'))"
            branch_params.append(spec.breakdown.property)
        branches.append(
            f"SELECT 6, level, trait, COUNT(*), {null_int} FROM (SELECT level, {trait} AS trait"
            f" FROM best JOIN {END_USER} u ON u.id = best.actor) traits GROUP BY trait, level"
        )
    materialized = "MATERIALIZED "
    sql = f"WITH best AS {materialized}({best}) " + " UNION ALL ".join(
        f"SELECT * FROM ({branch}) part{index}" for index, branch in enumerate(branches)
    )
    totals = FunnelTotals()
    for kind, k, text, value, extra in fetch_all(sql, [*params, *branch_params]):
        if kind == 0:
            totals.levels[k] = value
        elif kind == 1:
            totals.durations[k] = (value, int(extra or 0))
        elif kind == 2:
            if value is not None:
                totals.medians[k] = int(value)
        elif kind == 3:
            totals.histograms.setdefault(k, {})[value] = extra
        elif kind == 4:
            totals.periods[(date.fromisoformat(text), k)] = value
        elif kind == 5:
            totals.people.setdefault(k, []).append(text)
        else:
            totals.breakdown.append((None if text is None else json.loads(text), k, value))
    for names in totals.people.values():
        names.sort()
    return totals
