"""Per-key budgets counted in one-minute windows that every server process shares (the cache:
Redis in production, so four processes do not each allow the whole budget).

A counter that cannot be reached lets traffic through, as PostHog's capture does: a Redis
outage must not refuse every call of every customer. Each process then goes unlimited (the
socket path counts on its own, see `delivery.SharedKeyRate`) and says so in the log, at most
once every `OUTAGE_LOG_SECONDS`."""

from __future__ import annotations

import logging
import time

from django.core.cache import cache

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
OUTAGE_LOG_SECONDS = 10.0
_last_outage_logged = 0.0


def current_window() -> int:
    return int(time.time() // WINDOW_SECONDS)


def seconds_to_next_window() -> int:
    """For `Retry-After`: whole seconds until the current window ends (at least 1)."""
    return max(1, int(WINDOW_SECONDS - time.time() % WINDOW_SECONDS + 0.999))


def counter_name(kind: str, key_id: int, window: int) -> str:
    return f"milepost:rate:{kind}{key_id}:{window}"


def count_unreachable(error: BaseException) -> None:
    global _last_outage_logged  # one warning per interval per process, not one per call
    now = time.monotonic()
    if now - _last_outage_logged >= OUTAGE_LOG_SECONDS:
        _last_outage_logged = now
        logger.warning("rate-limit counter unreachable (%r); letting calls through", error)


def window_add(name: str, count: int = 1) -> int | None:
    """Add `count` to a shared counter of the current window and return its total, or None when
    the cache cannot be reached (the caller lets the call through)."""
    try:
        cache.add(name, 0, timeout=2 * WINDOW_SECONDS)
        try:
            return int(cache.incr(name, count))
        except ValueError:  # expired between add and incr
            cache.set(name, count, timeout=2 * WINDOW_SECONDS)
            return count
    except Exception as error:  # any cache failure: fail open
        count_unreachable(error)
        return None


def allows(kind: str, key_id: int, limit: int) -> bool:
    """One more call of `key_id` within `limit` calls this minute? (True when uncountable.)"""
    total = window_add(counter_name(kind, key_id, current_window()))
    return total is None or total <= limit
