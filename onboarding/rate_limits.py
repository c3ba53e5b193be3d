"""Per-key budgets counted in one-minute windows that every server process shares (the cache:
Redis in production, so four processes do not each allow the whole budget).

A counter that cannot be reached lets traffic through, as PostHog's capture does: a Redis
outage must not refuse every call of every customer. Each process then goes unlimited (the
socket path and the secret-key API count on their own, see `SharedKeyRate`) and says so in the
log, at most once every `OUTAGE_LOG_SECONDS`."""

from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
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


@dataclass
class _KeyWindow:
    window: int
    shared: int = 0  # the total every process had counted at the last sync
    unsynced: int = 0  # counted here since
    in_flight: int = 0  # being added to the shared counter right now
    synced_at: float = 0.0


class SharedKeyRate:
    """A per-key budget (the setting named `limit_setting`, counted in the same window and
    counter as `allows(kind, …)`) without a cache round trip per call: each process counts
    locally and, at most every `sync_seconds` per key, adds its count to the shared counter and
    learns the others' total in the same round trip. A key may overshoot its budget by what
    other processes let through in one sync interval. If the cache is down the process goes on
    counting on its own (logged), so a Redis outage does not refuse every call.

    Not locked: for one event loop (the socket path, which syncs off the loop). Sync callers on
    several threads use `ThreadedKeyRate`."""

    def __init__(
        self,
        *,
        kind: str = "",
        limit_setting: str = "MILEPOST_MAX_MESSAGES_PER_KEY_PER_MINUTE",
        sync_seconds: float = 0.5,
    ) -> None:
        self.kind = kind
        self.limit_setting = limit_setting
        self.sync_seconds = sync_seconds
        self._keys: dict[int, _KeyWindow] = {}

    def _current(self, workspace_id: int) -> _KeyWindow:
        window = current_window()
        state = self._keys.get(workspace_id)
        if state is None or state.window != window:
            state = self._keys[workspace_id] = _KeyWindow(window)
        return state

    def allows(self, workspace_id: int) -> bool:
        state = self._current(workspace_id)
        state.unsynced += 1
        total = state.shared + state.in_flight + state.unsynced
        return total <= int(getattr(settings, self.limit_setting))

    def sync_due(self, workspace_id: int) -> bool:
        state = self._current(workspace_id)
        return (
            not state.in_flight
            and state.unsynced > 0
            and time.monotonic() - state.synced_at >= self.sync_seconds
        )

    def sync_start(self, workspace_id: int) -> tuple[str, int]:
        """Take this process's unsynced count for the shared counter: (counter name, count)."""
        state = self._current(workspace_id)
        state.in_flight, state.unsynced = state.unsynced, 0
        state.synced_at = time.monotonic()
        return counter_name(self.kind, workspace_id, state.window), state.in_flight

    def sync_end(self, workspace_id: int, name: str, total: int | None) -> None:
        """`total`: the shared counter after the addition, or None when the cache failed."""
        state = self._current(workspace_id)
        if counter_name(self.kind, workspace_id, state.window) != name:
            return  # a new minute began meanwhile
        if total is None:
            state.shared += state.in_flight
        else:
            state.shared = max(state.shared + state.in_flight, total)
        state.in_flight = 0

    @staticmethod
    def add_shared(name: str, count: int) -> int | None:
        """Blocking: the round trip to the shared counter (run it off the event loop)."""
        try:
            if settings.REDIS_URL is None:
                return window_add(name, count)  # one process: the in-memory cache
            # Straight to Redis on one client for the process: Django's cache object is made
            # per async context, which on the socket path meant a connection per sync.
            key = cache.make_key(name)  # the key `allows` counts under
            with _redis_client().pipeline() as pipe:
                pipe.incrby(key, count)
                pipe.expire(key, 120)
                total, _ = pipe.execute()
            return int(total)
        except Exception as error:
            count_unreachable(error)
            return None


@functools.cache
def _redis_client() -> redis.Redis:
    return redis.Redis.from_url(str(settings.REDIS_URL), **settings.REDIS_TIMEOUTS)


class ThreadedKeyRate(SharedKeyRate):
    """`SharedKeyRate` for sync callers on several threads (the API's views run on the database
    pool): counted under a lock, and synced inline by the call that finds a sync due, so a key
    costs one cache round trip per `sync_seconds` and process instead of two per call."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lock = threading.Lock()

    def allows_now(self, key_id: int) -> bool:
        with self._lock:
            allowed = self.allows(key_id)
            sync = self.sync_start(key_id) if self.sync_due(key_id) else None
        if sync is not None:
            name, count = sync
            total = self.add_shared(name, count)
            with self._lock:
                self.sync_end(key_id, name, total)
        return allowed
