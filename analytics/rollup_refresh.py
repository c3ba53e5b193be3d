"""The journey rollups' refresh, asked for right after a commit marks quarter hours stale, so
their counts are written within about a second rather than at the next periodic tick (which
stays, as the safety net) and a report finds them current (analytics/journey_rollups.py).

- Embedded: the in-process loop (analytics.scheduler.run_rollup_refresh) waits on an event that
  the committing thread sets: no round trip, whatever the number of commits.
- Production: one Celery task per journey, coalesced by a cache key (Redis `SET NX`, one round
  trip per journey per batch of commits): while it is set a refresh is queued and nothing more
  is enqueued. The task removes the key before it reads the marks, so a commit after that
  queues the next one: at most one refresh queued per journey however many batches commit.

Both run after the batch's marks are written, off the socket's answer (which goes at commit).
In production the round trips run on a thread of their own (`_Sender`): the group commit's
after-commit work, which the socket's next message waits for, only notes the journeys, and
commits that come while a round trip runs are queued together by the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Collection, Iterator

from celery import current_app
from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

TASK = "analytics.tasks.refresh_journey_rollups"

# The embedded loop waiting for commits: its event loop and the event a commit sets.
_listening: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None


def queued_key(journey_id: int) -> str:
    return f"analytics:rollup-refresh-queued:{journey_id}"


def queued_seconds() -> int:
    """How long a queued refresh holds off the next: by then it has run, or it is lost (its
    message expires with the key) and a later commit or the periodic tick queues another."""
    return max(settings.MILEPOST_ROLLUP_FRESH_SECONDS, settings.MILEPOST_ROLLUP_REFRESH_SECONDS)


def refresh_soon(journey_ids: Collection[int]) -> None:
    """After commit: have these journeys' marked quarter hours counted now. A failure is
    logged; the periodic refresh and the readers (for marks older than the bound) cover it."""
    listening = _listening
    if listening is not None:
        loop, marked = listening
        with contextlib.suppress(RuntimeError):  # the loop has just closed
            loop.call_soon_threadsafe(marked.set)
        return
    if current_app.conf.task_always_eager:
        # Embedded without its loop (a command, a test): a refresh run here would hold up the
        # commit's caller; the next reader counts what is older than the bound.
        return
    _sender.owe(journey_ids)


def _queue(journey_ids: Collection[int]) -> None:
    """One Celery refresh for those of these journeys that have none queued yet."""
    try:
        seconds = queued_seconds()
        queued = sorted(j for j in set(journey_ids) if cache.add(queued_key(j), 1, seconds))
        if queued:
            current_app.send_task(TASK, kwargs={"journey_ids": queued}, expires=seconds)
    except Exception:
        logger.warning("could not queue the journey rollups' refresh", exc_info=True)


class _Sender:
    """The journeys whose refresh is owed, queued by a thread of this process (started when a
    worker starts, or on first use) as soon as it is free."""

    def __init__(self) -> None:
        self._owed: set[int] = set()
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="milepost-rollup-refresh", daemon=True
                )
                self._thread.start()

    def owe(self, journey_ids: Collection[int]) -> None:
        with self._lock:
            self._owed.update(journey_ids)
        self.start()
        self._ready.set()

    def _run(self) -> None:
        try:  # the broker connection made now rather than by the first refresh queued
            with current_app.producer_or_acquire() as producer:
                producer.connection.ensure_connection(max_retries=1)
        except Exception as error:  # the first refresh queued tries again, and logs it
            logger.info("could not reach the Celery broker yet: %r", error)
        while True:
            self._ready.wait()
            self._ready.clear()
            with self._lock:
                owed, self._owed = self._owed, set()
            if owed:
                _queue(owed)


_sender = _Sender()


def prepare() -> None:
    """At a worker's start (milepost/lifespan.py): in production, the sender's thread and its
    broker connection are set up now, not by the commit of the worker's first hellos."""
    if _listening is None and not current_app.conf.task_always_eager:
        _sender.start()


def refresh_taken(journey_ids: Collection[int]) -> None:
    """A queued refresh starts: commits from now on queue the next one."""
    cache.delete_many([queued_key(j) for j in journey_ids])


def loop_listening() -> bool:
    """Whether this process's embedded loop is waiting for commits."""
    return _listening is not None


@contextlib.contextmanager
def listening(marked: asyncio.Event) -> Iterator[None]:
    """While open, commits in this process set `marked` (on its event loop) instead of
    enqueueing a task."""
    global _listening  # one embedded loop per process
    _listening = (asyncio.get_running_loop(), marked)
    try:
        yield
    finally:
        _listening = None
