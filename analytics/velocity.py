"""Milestone velocity's durations: counted per grain, kept in the journey rollups, added up.

Velocity needs percentiles of the time people took to reach each milestone. Exact ones would
sort every completion of the date range (1.6 M rows for 1 M people: seconds); instead each
duration is counted under its *grain*: its milliseconds floored to 3 significant digits
(7 214 999 ms -> 7 210 000 ms; below one second, whole milliseconds), never below the time-to-
convert histogram bound it passed (so 7 days and 3 hours stay in "7-14 d"), capped at 10^11 ms
(3.2 years). Flooring is monotone, so the nearest-rank percentile of the grains is exactly the
grain of the nearest-rank percentile: every reported percentile is the true one floored to 3
significant digits (less than 1 % low), identical on SQLite and PostgreSQL. Means add up the
exact milliseconds; counts and histograms are exact.

A UTC day of journey starts keeps (analytics.models.JourneyDayRollup) its counts per UTC hour
of start, milestone, basis (0 = from the journey start, 1 = from the previous milestone) and
grain as compressed numpy arrays, and the running total of the days' counts from the journey's
first start day; any span of whole days is then the difference of two totals, so a report reads
a few rows whatever the range, and the whole hours of a partial day (a time zone's midnight or
week boundary) come from that day's hours. Only today and sub-hour edges (UTC+5:30) are counted
live.
"""

# SQL here is assembled from fixed fragments, table names and integer ids only; every value a
# caller supplies travels as a query parameter.
# ruff: noqa: S608

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Any

import numpy as np

from analytics.sql import epoch_ms, fetch_all, greatest, is_postgresql
from onboarding.models import JourneyProgress, MilestoneCompletion

PROGRESS = JourneyProgress._meta.db_table
COMPLETION = MilestoneCompletion._meta.db_table

# Upper bounds (exclusive) of the time-to-convert histogram buckets, in seconds.
HISTOGRAM_BOUNDS: tuple[tuple[str, int | None], ...] = (
    ("< 1 min", 60),
    ("1-10 min", 600),
    ("10-60 min", 3600),
    ("1-6 h", 6 * 3600),
    ("6-24 h", 86400),
    ("1-3 d", 3 * 86400),
    ("3-7 d", 7 * 86400),
    ("7-14 d", 14 * 86400),
    ("14-30 d", 30 * 86400),
    (">= 30 d", None),
)
BOUNDS_MS = tuple(bound * 1000 for _, bound in HISTOGRAM_BOUNDS if bound is not None)
GRAIN_CAP_MS = 10**11
FROM_START, FROM_PREVIOUS = 0, 1
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
# Live counts over at most this much time look completions up person by person; longer ones
# join all of the journey's completions at once.
LATERAL_SPAN_LIMIT = timedelta(days=7)


@lru_cache(maxsize=1)
def grains() -> np.ndarray:
    """Every grain, ascending: the index of a grain in this array is its slot in a histogram."""
    values = set(range(1000))
    for exponent in range(1, 9):
        values.update(mantissa * 10**exponent for mantissa in range(100, 1000))
    values.update(BOUNDS_MS)
    values.add(GRAIN_CAP_MS)
    return np.array(sorted(values), dtype=np.int64)


def duration_grain(ms: int) -> int:
    """The grain a duration of `ms` milliseconds is counted under (see the module docstring)."""
    if ms >= GRAIN_CAP_MS:
        return GRAIN_CAP_MS
    step = 10 ** max(0, len(str(ms)) - 3)
    return max(ms // step * step, *(bound for bound in BOUNDS_MS if bound <= ms), 0)


def grain_sql(column: str) -> str:
    """duration_grain() of an integer column of non-negative milliseconds, in SQL."""
    floors = [f"WHEN {column} < 1000 THEN {column}"] + [
        f"WHEN {column} < {10 ** (exponent + 3)} THEN {column} / {10**exponent} * {10**exponent}"
        for exponent in range(1, 9)
    ]
    bounds = " ".join(f"WHEN {column} >= {bound} THEN {bound}" for bound in reversed(BOUNDS_MS))
    return greatest(f"CASE {' '.join(floors)} ELSE {GRAIN_CAP_MS} END", f"CASE {bounds} ELSE 0 END")


def histogram_index(ms: int) -> int:
    for index, bound in enumerate(BOUNDS_MS):
        if ms < bound:
            return index
    return len(BOUNDS_MS)


@dataclass
class Durations:
    """Durations of the people whose journey started in some span of time.

    `counts[m, basis, slot]` people reached milestone m (the m-th of the ids the rollup was
    computed with) after a duration of grain `grains()[slot]`; `sums[m, basis]` adds their
    exact milliseconds. `started` counts the people who started in the span."""

    started: int
    counts: np.ndarray
    sums: np.ndarray

    @classmethod
    def empty(cls, milestones: int) -> Durations:
        return cls(
            started=0,
            counts=np.zeros((milestones, 2, len(grains())), dtype=np.int64),
            sums=np.zeros((milestones, 2), dtype=np.int64),
        )

    def __add__(self, other: Durations) -> Durations:
        return Durations(
            self.started + other.started, self.counts + other.counts, self.sums + other.sums
        )

    def __sub__(self, other: Durations) -> Durations:
        return Durations(
            self.started - other.started, self.counts - other.counts, self.sums - other.sums
        )

    def reached(self, milestone: int, basis: int = FROM_START) -> int:
        return int(self.counts[milestone, basis].sum())

    def total_ms(self, milestone: int, basis: int) -> int:
        return int(self.sums[milestone, basis])

    def nearest_rank_ms(self, milestone: int, basis: int, percent: int) -> int | None:
        """The smallest grain with at least `percent` % of the people at or below it."""
        row = self.counts[milestone, basis]
        total = int(row.sum())
        if not total:
            return None
        rank = max(1, (total * percent + 99) // 100)
        slot = int(np.searchsorted(np.cumsum(row), rank))
        return int(grains()[slot])

    def histogram(self, milestone: int, basis: int) -> dict[int, int]:
        """People per time-to-convert histogram bucket (an index into HISTOGRAM_BOUNDS)."""
        row = self.counts[milestone, basis]
        edges = np.searchsorted(grains(), np.array(BOUNDS_MS, dtype=np.int64))
        return {
            index: int(part.sum()) for index, part in enumerate(np.split(row, edges)) if part.any()
        }

    # --- stored form --------------------------------------------------------------------

    def packed(self) -> bytes:
        return zlib.compress(self.counts.astype("<i4").tobytes(), 1)

    def summary(self) -> dict[str, Any]:
        return {"started": self.started, "sums": self.sums.tolist()}

    @classmethod
    def unpacked(
        cls, data: bytes | memoryview | None, summary: dict[str, Any] | None, milestones: int
    ) -> Durations:
        if data is None or summary is None:
            raise ValueError("These durations were not stored.")
        counts = np.frombuffer(zlib.decompress(bytes(data)), dtype="<i4").astype(np.int64)
        return cls(
            started=int(summary["started"]),
            counts=counts.reshape(milestones, 2, len(grains())),
            sums=np.array(summary["sums"], dtype=np.int64).reshape(milestones, 2),
        )


@dataclass
class DayDurations:
    """One UTC day of starts, per UTC hour of start: the durations as (hour, slot, people)
    rows (`slot` indexes Durations.counts flattened), the sums of their milliseconds and the
    people who started (kept with the funnel's hours, JourneyDayRollup.hours)."""

    entries: np.ndarray  # (k, 3) int64
    sums_by_hour: np.ndarray  # (24, milestones, 2) int64
    started_by_hour: list[int]

    @classmethod
    def empty(cls, milestones: int) -> DayDurations:
        return cls(
            entries=np.zeros((0, 3), dtype=np.int64),
            sums_by_hour=np.zeros((24, milestones, 2), dtype=np.int64),
            started_by_hour=[0] * 24,
        )

    def part(self, first_hour: int = 0, end_hour: int = 24) -> Durations:
        """The durations of the people who started in these UTC hours of the day."""
        milestones = self.sums_by_hour.shape[1]
        hours = self.entries[:, 0]
        chosen = self.entries[(hours >= first_hour) & (hours < end_hour)]
        counts = np.bincount(
            chosen[:, 1], weights=chosen[:, 2], minlength=milestones * 2 * len(grains())
        )
        return Durations(
            started=sum(self.started_by_hour[first_hour:end_hour]),
            counts=counts.astype(np.int64).reshape(milestones, 2, len(grains())),
            sums=self.sums_by_hour[first_hour:end_hour].sum(axis=0),
        )

    def packed(self) -> bytes:
        return zlib.compress(self.entries.astype("<i4").tobytes(), 1)

    def summary(self) -> dict[str, Any]:
        return {"sums_by_hour": self.sums_by_hour.tolist()}

    @classmethod
    def unpacked(
        cls,
        data: bytes | memoryview | None,
        summary: dict[str, Any] | None,
        hours: dict[str, Any] | None,
        milestones: int,
    ) -> DayDurations:
        if data is None or summary is None or hours is None:
            raise ValueError("These durations were not stored.")
        entries = np.frombuffer(zlib.decompress(bytes(data)), dtype="<i4").astype(np.int64)
        return cls(
            entries=entries.reshape(-1, 3),
            sums_by_hour=np.array(summary["sums_by_hour"], dtype=np.int64).reshape(
                24, milestones, 2
            ),
            started_by_hour=hours["started"],
        )


def _rows(
    journey_id: int,
    milestone_ids: Sequence[int],
    pieces: Sequence[tuple[str, datetime, datetime]],
    *,
    lateral: bool,
    hour_counts: bool,
) -> list[tuple[Any, ...]]:
    """(kind, group, hour, milestone id, basis, grain, people, sum ms) of the people who
    started in each piece (group SQL, from, to): kind 0 starts per hour of start (hours since
    the epoch), 1 durations per milestone, basis and grain, 2 completions per milestone and
    hour of start (kinds 0 and 2 only with `hour_counts`)."""
    ids = ", ".join(str(int(i)) for i in milestone_ids)
    previous = " ".join(
        f"WHEN {int(current)} THEN {int(before)}" for before, current in pairwise(milestone_ids)
    )
    s_ms = epoch_ms("p.started_at")
    prog = " UNION ALL ".join(
        f"SELECT p.end_user_id, {s_ms} AS s_ms, {group} AS grp FROM {PROGRESS} p"
        " WHERE p.journey_id = %s AND p.started_at >= %s AND p.started_at < %s"
        for group, _, _ in pieces
    )
    params: list[Any] = []
    for _, low, high in pieces:
        params += [journey_id, low, high]
    by_previous = (
        f"""
            UNION ALL
            SELECT a.grp, a.s_ms, a.milestone_id, {FROM_PREVIOUS}, a.c_ms - b.c_ms
            FROM comp a JOIN comp b
              ON b.grp = a.grp AND b.end_user_id = a.end_user_id
             AND b.milestone_id = CASE a.milestone_id {previous} END
            WHERE b.c_ms <= a.c_ms
        """
        if previous
        else ""
    )
    hour = "(s_ms / 3600000)"
    # A few people's completions are looked up by person (PostgreSQL would otherwise hash
    # every completion of the journey); a day run joins them all at once.
    if lateral and is_postgresql():
        # OFFSET 0 keeps the planner from flattening the lateral subquery back into a join.
        join, on = "CROSS JOIN LATERAL", ""
        per_person = "AND c.end_user_id = prog.end_user_id OFFSET 0"
    else:
        join, per_person, on = "JOIN", "", "ON c.end_user_id = prog.end_user_id"
    by_hour = (
        f"""
        UNION ALL
        SELECT 0, grp, {hour}, 0, 0, 0, COUNT(*), 0 FROM prog GROUP BY grp, {hour}
        UNION ALL
        SELECT 2, grp, {hour}, milestone_id, 0, 0, COUNT(*), 0 FROM comp
        GROUP BY grp, {hour}, milestone_id
        """
        if hour_counts
        else ""
    )
    return fetch_all(
        f"""
        WITH prog AS ({prog}),
        comp AS (
            SELECT prog.grp, prog.end_user_id, prog.s_ms, c.milestone_id,
                   {epoch_ms("c.completed_at")} AS c_ms
            FROM prog {join} (
                SELECT c.end_user_id, c.milestone_id, c.completed_at FROM {COMPLETION} c
                WHERE c.journey_id = %s AND c.milestone_id IN ({ids}) {per_person}
            ) c {on}
        ),
        durations AS (
            SELECT grp, s_ms, milestone_id, {FROM_START} AS basis,
                   CASE WHEN c_ms < s_ms THEN 0 ELSE c_ms - s_ms END AS d
            FROM comp
            {by_previous}
        )
        SELECT 1, grp, hour, milestone_id, basis, grain, COUNT(*), SUM(d) FROM (
            SELECT grp, {hour} AS hour, milestone_id, basis, {grain_sql("d")} AS grain, d
            FROM durations
        ) grained GROUP BY grp, hour, milestone_id, basis, grain
        {by_hour}
        """,
        [*params, journey_id],
    )


@dataclass
class LiveCounts:
    """Durations of the people who started in a span, and per hour of start (hours since the
    epoch, UTC) how many started and how many reached each milestone."""

    durations: Durations
    started_by_hour: dict[int, int]
    reached_by_hour: list[dict[int, int]]


@dataclass
class _Collected:
    """The rows of _rows() of one group, per hour of start (hours since the epoch)."""

    entries: list[tuple[int, int, int]]  # hour, flat slot, people
    sums: dict[tuple[int, int, int], int]  # (hour, milestone, basis): sum of ms
    started_by_hour: dict[int, int]
    reached_by_hour: list[dict[int, int]]


def _collect(rows: list[tuple[Any, ...]], milestone_ids: Sequence[int]) -> dict[Any, _Collected]:
    position = {int(milestone_id): index for index, milestone_id in enumerate(milestone_ids)}
    slots = {int(grain): slot for slot, grain in enumerate(grains())}
    width = len(grains())
    groups: dict[Any, _Collected] = {}
    for kind, group, hour, milestone_id, basis, grain, people, total in rows:
        if group not in groups:
            groups[group] = _Collected([], {}, {}, [{} for _ in milestone_ids])
        collected, hour = groups[group], int(hour)
        if kind == 0:
            collected.started_by_hour[hour] = int(people)
        elif kind == 1:
            m, basis = position[int(milestone_id)], int(basis)
            collected.entries.append((hour, (m * 2 + basis) * width + slots[int(grain)], people))
            key = (hour, m, basis)
            collected.sums[key] = collected.sums.get(key, 0) + int(total)
        else:
            collected.reached_by_hour[position[int(milestone_id)]][hour] = int(people)
    return groups


def _entries(collected: _Collected, hour_of_day: bool) -> np.ndarray:
    entries = np.array(collected.entries, dtype=np.int64).reshape(-1, 3)
    if hour_of_day:
        entries[:, 0] %= 24
    return entries


def day_durations(
    *,
    journey_id: int,
    milestone_ids: Sequence[int],
    first: date,
    last: date,
    hours: dict[date, dict[str, Any]],
) -> dict[date, DayDurations]:
    """Durations of each UTC start day first..last (days nobody reached a milestone are left
    out); the starts per hour come from the days' funnel `hours`, counted beside them."""
    low = datetime(first.year, first.month, first.day, tzinfo=UTC)
    high = datetime(last.year, last.month, last.day, tzinfo=UTC) + DAY
    rows = _rows(
        journey_id,
        milestone_ids,
        [(f"{epoch_ms('p.started_at')} / 86400000", low, high)],
        lateral=False,
        hour_counts=False,
    )
    epoch = date(1970, 1, 1)
    n = len(milestone_ids)
    days = {}
    for day_number, collected in _collect(rows, milestone_ids).items():
        sums = np.zeros((24, n, 2), dtype=np.int64)
        for (hour, m, basis), total in collected.sums.items():
            sums[hour % 24, m, basis] += total
        day = epoch + timedelta(days=int(day_number))
        days[day] = DayDurations(
            entries=_entries(collected, hour_of_day=True),
            sums_by_hour=sums,
            started_by_hour=hours[day]["started"],
        )
    return days


def live_durations(
    *, journey_id: int, milestone_ids: Sequence[int], pieces: Sequence[tuple[datetime, datetime]]
) -> list[LiveCounts]:
    """What started in each [from, to) piece, counted now, in one query (pieces may
    overlap)."""
    if not pieces:
        return []
    groups = _collect(
        _rows(
            journey_id,
            milestone_ids,
            [(str(index), low, high) for index, (low, high) in enumerate(pieces)],
            lateral=sum((high - low for low, high in pieces), timedelta()) <= LATERAL_SPAN_LIMIT,
            hour_counts=True,
        ),
        milestone_ids,
    )
    n = len(milestone_ids)
    results = []
    for index in range(len(pieces)):
        collected = groups.get(index) or _Collected([], {}, {}, [{} for _ in range(n)])
        entries = _entries(collected, hour_of_day=False)
        counts = np.bincount(entries[:, 1], weights=entries[:, 2], minlength=n * 2 * len(grains()))
        sums = np.zeros((n, 2), dtype=np.int64)
        for (_, m, basis), total in collected.sums.items():
            sums[m, basis] += total
        results.append(
            LiveCounts(
                Durations(
                    started=sum(collected.started_by_hour.values()),
                    counts=counts.astype(np.int64).reshape(n, 2, len(grains())),
                    sums=sums,
                ),
                collected.started_by_hour,
                collected.reached_by_hour,
            )
        )
    return results


def not_reached_count(
    *,
    journey_id: int,
    milestone_ids: Sequence[int],
    pieces: Sequence[Sequence[tuple[datetime, datetime, bool]]],
) -> list[int]:
    """Per milestone, the people who started in its pieces (from, to, whether `from` itself is
    excluded) and have not reached it, counted now in one query."""
    conditions, params = [], []
    for milestone_id, parts in zip(milestone_ids, pieces, strict=True):
        if not parts:
            conditions.append("0")
            continue
        spans = " OR ".join(
            f"(p.started_at {'>' if open_low else '>='} %s AND p.started_at < %s)"
            for _, _, open_low in parts
        )
        for low, high, _ in parts:
            params += [low, high]
        conditions.append(
            f"SUM(CASE WHEN ({spans}) AND NOT EXISTS (SELECT 1 FROM {COMPLETION} c"
            f" WHERE c.end_user_id = p.end_user_id AND c.milestone_id = {int(milestone_id)})"
            " THEN 1 ELSE 0 END)"
        )
    everything = sorted({(low, high) for parts in pieces for low, high, _ in parts})
    if not everything:
        return [0] * len(milestone_ids)
    spans = " OR ".join("(p.started_at >= %s AND p.started_at < %s)" for _ in everything)
    row = fetch_all(
        f"SELECT {', '.join(conditions)} FROM {PROGRESS} p WHERE p.journey_id = %s AND ({spans})",
        [*params, journey_id, *(bound for span in everything for bound in span)],
    )[0]
    return [int(value or 0) for value in row]
