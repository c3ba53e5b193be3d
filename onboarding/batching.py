"""How the socket path reaches the database without queueing every socket of a process behind
one thread: a pool of database threads, and group commit.

Channels' `database_sync_to_async` runs every call of a process on one thread, so throughput is
one over the serial time per message however many sockets are open. Instead:

- `database_work(fn, …)` runs `fn` on one of `MILEPOST_DB_THREADS` threads. Each takes a
  connection for the call and gives it back afterwards, as Django's request cycle does: on
  PostgreSQL from the process's connection pool (which checks it before handing it out), so an
  idle thread holds none.
- `GroupCommit` gathers the work items that sockets submit while earlier flushes are running
  (and within `MILEPOST_GROUP_COMMIT_MS` of the first one, if set) and hands them to one
  `flush` call, which answers each item. Every socket's `events` of that moment are stored in
  one transaction; each socket is answered the moment that transaction commits.

One GroupCommit lives per event loop (a process has one in production; each test has its own).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from asgiref.sync import SyncToAsync, sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections, transaction

logger = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")

_pool: ThreadPoolExecutor | None = None
# The event loop that handed the current pool thread its work (see calling_loop).
_calling = threading.local()


def database_pool() -> ThreadPoolExecutor:
    global _pool  # one pool per process, made on first use
    if _pool is None:
        _pool = ThreadPoolExecutor(
            max_workers=settings.MILEPOST_DB_THREADS, thread_name_prefix="milepost-db"
        )
    return _pool


def calling_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop waiting for this pool thread's work, or None outside the pool (a Celery
    worker, a management command, a WSGI request)."""
    return getattr(_calling, "loop", None)


def _with_connection_hygiene(
    loop: asyncio.AbstractEventLoop, function: Callable[..., Result], *args: Any, **kwargs: Any
) -> Result:
    # What Django does around a request. With CONN_MAX_AGE 0 the connection goes back to the
    # pool (or, on SQLite, is closed) when the call ends, so a thread waiting for work holds none.
    close_old_connections()
    _calling.loop = loop
    try:
        return function(*args, **kwargs)
    finally:
        _calling.loop = None
        close_old_connections()


async def database_work(function: Callable[..., Result], /, *args: Any, **kwargs: Any) -> Result:
    """Run blocking database work on the pool; a push to the channel layer after commit goes
    back to this event loop (realtime._send_or_log)."""
    run = SyncToAsync(_with_connection_hygiene, thread_sensitive=False, executor=database_pool())
    return await run(asyncio.get_running_loop(), function, *args, **kwargs)


def on_database_pool(view: Callable[..., Result]) -> Callable[..., Any]:
    """A sync view (a DRF APIView's `as_view()`) served on the database pool: Django would run
    every sync view of a process on one thread. Attributes (`cls`, `csrf_exempt`) are kept, so
    routing, CSRF and the OpenAPI schema see the same view."""

    @functools.wraps(view)
    async def pooled(request: Any, *args: Any, **kwargs: Any) -> Result:
        if isinstance(request, ASGIRequest):
            return await database_work(view, request, *args, **kwargs)
        # Under WSGI (and Django's test client) the request's own thread is the one to use.
        return await sync_to_async(view, thread_sensitive=True)(request, *args, **kwargs)

    return pooled


@dataclass
class _Pending(Generic[Item, Result]):
    item: Item
    weight: int
    answer: asyncio.Future[Result] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    # Done once the commit's after-commit work (pushes, signals) has run too.
    settled: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommit(Generic[Item, Result]):
    """Batches items from many sockets into one `flush(items) -> answers` on the database pool.

    `flush` runs inside a transaction (unless `atomic` is off, for reads) and returns one answer
    per item, in order: a result, or an exception instance for that item alone. The answers go
    back to the sockets the moment that transaction commits, before the work it left for after
    commit (pushes, signals). If
    the transaction fails, nothing of the batch was acknowledged and each item is tried again
    on its own. At most `concurrency` flushes run at a time per loop; items arriving meanwhile
    form the next batch, so under load batches grow instead of queueing."""

    def __init__(
        self,
        flush: Callable[[Sequence[Item]], Sequence[Result | BaseException]],
        *,
        name: str,
        max_weight: int,
        window_seconds: float,
        concurrency: int = 1,
        atomic: bool = True,
    ) -> None:
        self.flush = flush
        self.atomic = atomic
        self.name = name
        self.max_weight = max_weight
        self.window_seconds = window_seconds
        self.concurrency = concurrency
        self._pending: list[_Pending[Item, Result]] = []
        self._weight = 0
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, item: Item, *, weight: int = 1) -> Result:
        answer, _ = await self.submit_settling(item, weight=weight)
        return answer

    async def submit_settling(
        self, item: Item, *, weight: int = 1
    ) -> tuple[Result, asyncio.Future[None]]:
        """The item's answer as soon as its commit is done, and a future that is done once the
        work that commit left for after it (numbering and sending pushes, signals) has run. A
        socket answers at once but waits for the second before its next message, so its pushes
        keep the order of its messages."""
        pending: _Pending[Item, Result] = _Pending(item, max(1, weight))
        self._pending.append(pending)
        self._weight += pending.weight
        self._start()
        return await pending.answer, pending.settled

    def _start(self) -> None:
        if self._pending and len(self._running) < self.concurrency:
            runner = asyncio.get_running_loop().create_task(self._run())
            self._running.add(runner)
            runner.add_done_callback(self._running.discard)

    def _take(self) -> list[_Pending[Item, Result]]:
        batch: list[_Pending[Item, Result]] = []
        weight = 0
        while self._pending and (not batch or weight + self._pending[0].weight <= self.max_weight):
            pending = self._pending.pop(0)
            weight += pending.weight
            batch.append(pending)
        self._weight -= weight
        return batch

    async def _run(self) -> None:
        while self._pending:
            if self._weight < self.max_weight and self.window_seconds > 0:
                # Give the sockets that are sending right now a moment to join this batch.
                await asyncio.sleep(self.window_seconds)
            batch = self._take()
            if not batch:
                return
            self._start()  # what arrives while this batch is written may go to another runner
            try:
                await self._flush(batch)
            except asyncio.CancelledError:
                for pending in batch:
                    pending.answer.cancel()
                raise

    @staticmethod
    def _answer(batch: Sequence[_Pending[Item, Result]], answers: Sequence[Any]) -> None:
        for pending, answer in zip(batch, answers, strict=True):
            if pending.answer.done():  # answered already, or the socket went away
                continue
            if isinstance(answer, BaseException):
                pending.answer.set_exception(answer)
            else:
                pending.answer.set_result(answer)

    def _committed(self, items: Sequence[Item], answer_now: Callable[[Sequence[Any]], None]) -> Any:
        """On a database thread: flush in a transaction whose first after-commit step hands the
        answers back to the event loop."""
        if not self.atomic:
            return self.flush(items)
        answers: list[Sequence[Any]] = []
        with transaction.atomic():
            transaction.on_commit(lambda: answer_now(answers[0]), robust=True)
            answers.append(self.flush(items))
        return answers[0]

    async def _flush(self, batch: Sequence[_Pending[Item, Result]]) -> None:
        try:
            await self._flush_answering(batch)
        finally:
            for pending in batch:
                if not pending.settled.done():
                    pending.settled.set_result(None)

    async def _flush_answering(self, batch: Sequence[_Pending[Item, Result]]) -> None:
        loop = asyncio.get_running_loop()

        def answer_now(answers: Sequence[Any]) -> None:
            loop.call_soon_threadsafe(self._answer, batch, answers)

        try:
            answers = await database_work(self._committed, [p.item for p in batch], answer_now)
        except Exception as failure:
            if len(batch) == 1:
                self._answer(batch, [failure])
                return
            # Nothing of the batch was committed. One item may be its cause (a person erased
            # meanwhile, a deadlock with another process): answer each on its own instead.
            logger.warning(
                "%s batch of %d failed (%r); committing its items one by one",
                self.name,
                len(batch),
                failure,
            )
            for pending in batch:
                await self._flush([pending])
            return
        self._answer(batch, answers)


_group_commits: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[str, GroupCommit[Any, Any]]
] = weakref.WeakKeyDictionary()


def group_commit(
    name: str,
    flush: Callable[[Sequence[Item]], Sequence[Result | BaseException]],
    *,
    max_weight: int,
    atomic: bool = True,
) -> GroupCommit[Item, Result]:
    """This event loop's GroupCommit called `name` (made on first use)."""
    per_loop = _group_commits.setdefault(asyncio.get_running_loop(), {})
    existing = per_loop.get(name)
    if existing is None:
        existing = per_loop[name] = GroupCommit(
            flush,
            name=name,
            max_weight=max_weight,
            window_seconds=settings.MILEPOST_GROUP_COMMIT_MS / 1000,
            # Half the database threads, so hellos and events each keep some for themselves.
            concurrency=max(1, settings.MILEPOST_DB_THREADS // 2),
            atomic=atomic,
        )
    return existing
