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

A UTC day of journey starts keeps (analytics.models.JourneyDayRollup) its counts per quarter
hour of start (a *slice*: 96 a day), milestone, basis (0 = from the journey start, 1 = from the
previous milestone) and grain as compressed numpy arrays, and the running total of the days'
counts from the journey's first start day; any span of whole days is then the difference of two
totals, so a report reads a few rows whatever the range, and the whole slices of a partial day
(a time zone's midnight or week boundary, UTC+5:30 and +5:45 included: every zone in use is
offset by whole quarter hours) come from that day's slices. A change (a start, a completion,
an erasure) marks its slice stale after commit, and only that slice is counted again
(analytics/journey_rollups.py).
"""

# SQL here is assembled from fixed fragments, table names and integer ids only; every value a
# caller supplies travels as a query parameter.
# ruff: noqa: S608

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Any

import numpy as np

from analytics.sql import epoch_ms, fetch_all, fetch_small, greatest, is_postgresql
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
SLICE = timedelta(minutes=15)
SLICE_MS = 900_000
SLICES_PER_DAY = 96
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
        # int32 as stored: sums with other totals widen to int64 (Durations.empty).
        counts = np.frombuffer(zlib.decompress(bytes(data)), dtype="<i4")
        return cls(
            started=int(summary["started"]),
            counts=counts.reshape(milestones, 2, len(grains())),
            sums=np.array(summary["sums"], dtype=np.int64).reshape(milestones, 2),
        )


@dataclass
class DayDurations:
    """One UTC day of starts, per slice of start: the durations as (slice, slot, people) rows
    (`slot` indexes Durations.counts flattened), the sums of their milliseconds and the people
    who started (kept with the funnel's slices, JourneyDayRollup.slices)."""

    entries: np.ndarray  # (k, 3) integers, sorted by slice
    sums_by_slice: np.ndarray  # (96, milestones, 2) int64
    started_by_slice: list[int]

    @classmethod
    def empty(cls, milestones: int) -> DayDurations:
        return cls(
            entries=np.zeros((0, 3), dtype=np.int64),
            sums_by_slice=np.zeros((SLICES_PER_DAY, milestones, 2), dtype=np.int64),
            started_by_slice=[0] * SLICES_PER_DAY,
        )

    def part(self, first_slice: int = 0, end_slice: int = SLICES_PER_DAY) -> Durations:
        """The durations of the people who started in these slices of the day."""
        milestones = self.sums_by_slice.shape[1]
        if first_slice == 0 and end_slice == SLICES_PER_DAY:
            chosen = self.entries
        else:
            # Entries are kept sorted by slice: the slices wanted are one run of rows.
            low, high = np.searchsorted(self.entries[:, 0], [first_slice, end_slice])
            chosen = self.entries[low:high]
        counts = np.bincount(
            chosen[:, 1], weights=chosen[:, 2], minlength=milestones * 2 * len(grains())
        )
        return Durations(
            started=sum(self.started_by_slice[first_slice:end_slice]),
            counts=counts.astype(np.int64).reshape(milestones, 2, len(grains())),
            sums=self.sums_by_slice[first_slice:end_slice].sum(axis=0),
        )

    def patched(self, fresh: DayDurations, slices: Sequence[int]) -> DayDurations:
        """This day with `slices` replaced by the same slices of `fresh` (counted again)."""
        chosen = np.array(sorted(slices), dtype=np.int64)
        kept = self.entries[~np.isin(self.entries[:, 0], chosen)]
        counted = fresh.entries[np.isin(fresh.entries[:, 0], chosen)]
        sums = self.sums_by_slice.copy()
        sums[chosen] = fresh.sums_by_slice[chosen]
        entries = np.concatenate([kept, counted])
        return DayDurations(
            entries=entries[np.argsort(entries[:, 0], kind="stable")],
            sums_by_slice=sums,
            started_by_slice=list(fresh.started_by_slice),
        )

    def packed(self) -> bytes:
        return zlib.compress(self.entries.astype("<i4").tobytes(), 1)

    def summary(self) -> dict[str, Any]:
        return {"sums_by_slice": self.sums_by_slice.tolist()}

    @classmethod
    def unpacked(
        cls,
        data: bytes | memoryview | None,
        summary: dict[str, Any] | None,
        slices: dict[str, Any] | None,
        milestones: int,
    ) -> DayDurations:
        if data is None or summary is None or slices is None:
            raise ValueError("These durations were not stored.")
        # Read as stored (int32, sorted by slice): indices and weights need no wider copy.
        entries = np.frombuffer(zlib.decompress(bytes(data)), dtype="<i4")
        return cls(
            entries=entries.reshape(-1, 3),
            sums_by_slice=np.array(summary["sums_by_slice"], dtype=np.int64).reshape(
                SLICES_PER_DAY, milestones, 2
            ),
            started_by_slice=slices["started"],
        )


def _rows(
    journey_id: int,
    milestone_ids: Sequence[int],
    pieces: Sequence[tuple[str, datetime, datetime]],
    *,
    lateral: bool,
    slice_counts: bool,
) -> list[tuple[Any, ...]]:
    """(kind, group, slice, milestone id, basis, grain, people, sum ms) of the people who
    started in each piece (group SQL, from, to): kind 0 starts per slice of start (slices since
    the epoch), 1 durations per milestone, basis and grain, 2 completions per milestone and
    slice of start (kinds 0 and 2 only with `slice_counts`)."""
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
    slice_number = f"(s_ms / {SLICE_MS})"
    # A few people's completions are looked up by person (PostgreSQL would otherwise hash
    # every completion of the journey); a day run joins them all at once.
    if lateral and is_postgresql():
        # OFFSET 0 keeps the planner from flattening the lateral subquery back into a join.
        join, on = "CROSS JOIN LATERAL", ""
        per_person = "AND c.end_user_id = prog.end_user_id OFFSET 0"
    else:
        join, per_person, on = "JOIN", "", "ON c.end_user_id = prog.end_user_id"
    by_slice = (
        f"""
        UNION ALL
        SELECT 0, grp, {slice_number}, 0, 0, 0, COUNT(*), 0 FROM prog
        GROUP BY grp, {slice_number}
        UNION ALL
        SELECT 2, grp, {slice_number}, milestone_id, 0, 0, COUNT(*), 0 FROM comp
        GROUP BY grp, {slice_number}, milestone_id
        """
        if slice_counts
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
        SELECT 1, grp, slice_number, milestone_id, basis, grain, COUNT(*), SUM(d) FROM (
            SELECT grp, {slice_number} AS slice_number, milestone_id, basis,
                   {grain_sql("d")} AS grain, d
            FROM durations
        ) grained GROUP BY grp, slice_number, milestone_id, basis, grain
        {by_slice}
        """,
        [*params, journey_id],
    )


@dataclass
class LiveCounts:
    """Durations of the people who started in a span, and per slice of start (slices since the
    epoch) how many started and how many reached each milestone."""

    durations: Durations
    started_by_slice: dict[int, int]
    reached_by_slice: list[dict[int, int]]


@dataclass
class _Collected:
    """The rows of _rows() of one group, per slice of start (slices since the epoch)."""

    entries: list[tuple[int, int, int]]  # slice, flat slot, people
    sums: dict[tuple[int, int, int], int]  # (slice, milestone, basis): sum of ms
    started_by_slice: dict[int, int]
    reached_by_slice: list[dict[int, int]]


def _collect(rows: list[tuple[Any, ...]], milestone_ids: Sequence[int]) -> dict[Any, _Collected]:
    position = {int(milestone_id): index for index, milestone_id in enumerate(milestone_ids)}
    slots = {int(grain): slot for slot, grain in enumerate(grains())}
    width = len(grains())
    groups: dict[Any, _Collected] = {}
    for kind, group, number, milestone_id, basis, grain, people, total in rows:
        if group not in groups:
            groups[group] = _Collected([], {}, {}, [{} for _ in milestone_ids])
        collected, number = groups[group], int(number)
        if kind == 0:
            collected.started_by_slice[number] = int(people)
        elif kind == 1:
            m, basis = position[int(milestone_id)], int(basis)
            collected.entries.append((number, (m * 2 + basis) * width + slots[int(grain)], people))
            key = (number, m, basis)
            collected.sums[key] = collected.sums.get(key, 0) + int(total)
        else:
            collected.reached_by_slice[position[int(milestone_id)]][number] = int(people)
    return groups


def _entries(collected: _Collected, slice_of_day: bool) -> np.ndarray:
    entries = np.array(collected.entries, dtype=np.int64).reshape(-1, 3)
    if slice_of_day:
        entries[:, 0] %= SLICES_PER_DAY
    return entries


def day_durations(
    *,
    journey_id: int,
    milestone_ids: Sequence[int],
    spans: Sequence[tuple[datetime, datetime]],
    starts: dict[date, list[int]],
) -> dict[date, DayDurations]:
    """Durations of the people who started in the spans (whole UTC days or single slices),
    by UTC start day (days nobody in the spans reached a milestone are left out); the starts
    per slice come from the days' funnel `starts`, counted beside them."""
    rows = _rows(
        journey_id,
        milestone_ids,
        [(f"{epoch_ms('p.started_at')} / 86400000", low, high) for low, high in spans],
        lateral=sum((high - low for low, high in spans), timedelta()) <= LATERAL_SPAN_LIMIT,
        slice_counts=False,
    )
    epoch = date(1970, 1, 1)
    n = len(milestone_ids)
    days = {}
    for day_number, collected in _collect(rows, milestone_ids).items():
        sums = np.zeros((SLICES_PER_DAY, n, 2), dtype=np.int64)
        for (number, m, basis), total in collected.sums.items():
            sums[number % SLICES_PER_DAY, m, basis] += total
        day = epoch + timedelta(days=int(day_number))
        entries = _entries(collected, slice_of_day=True)
        days[day] = DayDurations(
            entries=entries[np.argsort(entries[:, 0], kind="stable")],
            sums_by_slice=sums,
            started_by_slice=starts[day],
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
            slice_counts=True,
        ),
        milestone_ids,
    )
    n = len(milestone_ids)
    results = []
    for index in range(len(pieces)):
        collected = groups.get(index) or _Collected([], {}, {}, [{} for _ in range(n)])
        entries = _entries(collected, slice_of_day=False)
        counts = np.bincount(entries[:, 1], weights=entries[:, 2], minlength=n * 2 * len(grains()))
        sums = np.zeros((n, 2), dtype=np.int64)
        for (_, m, basis), total in collected.sums.items():
            sums[m, basis] += total
        results.append(
            LiveCounts(
                Durations(
                    started=sum(collected.started_by_slice.values()),
                    counts=counts.astype(np.int64).reshape(n, 2, len(grains())),
                    sums=sums,
                ),
                collected.started_by_slice,
                collected.reached_by_slice,
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
    # The pieces are the few people at the edges of quarter hours (velocity's "on the way").
    row = fetch_small(
        f"SELECT {', '.join(conditions)} FROM {PROGRESS} p WHERE p.journey_id = %s AND ({spans})",
        [*params, journey_id, *(bound for span in everything for bound in span)],
    )[0]
    return [int(value or 0) for value in row]
