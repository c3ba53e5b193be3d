"""Time-to-convert figures the journey and event reports share: durations in seconds,
nearest-rank percentiles and the histogram of analytics.velocity.HISTOGRAM_BOUNDS."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from analytics.velocity import HISTOGRAM_BOUNDS


def seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000


def mean_seconds(total_ms: int | None, count: int) -> float | None:
    return round(int(total_ms) / count / 1000, 3) if count and total_ms is not None else None


def nearest_rank_ms(values_ms: Sequence[int], percent: int) -> int | None:
    """The smallest value with at least `percent` % of the values at or below it."""
    if not values_ms:
        return None
    ordered = sorted(values_ms)
    return ordered[max(0, (len(ordered) * percent + 99) // 100 - 1)]


@dataclass(frozen=True)
class HistogramBucket:
    label: str
    users: int


@dataclass(frozen=True)
class DurationStats:
    """Seconds; None when nobody is in the group."""

    users: int
    median: float | None
    p75: float | None
    p90: float | None
    mean: float | None


def histogram(counts: dict[int, int]) -> tuple[HistogramBucket, ...]:
    return tuple(
        HistogramBucket(label=label, users=counts.get(index, 0))
        for index, (label, _) in enumerate(HISTOGRAM_BOUNDS)
    )
