"""What every benchmark here times the same way."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def median_ms(run: Callable[[], Any], repeat: int) -> float:
    """Median milliseconds of `repeat` runs after one warm-up run (caches, rollups, JIT)."""
    run()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)
