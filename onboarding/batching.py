"""How the socket path reaches the database without queueing every socket of a process behind
one thread: a pool of database threads, and group commit.

Channels' `database_sync_to_async` runs every call of a process on one thread, so throughput is
one over the serial time per message however many sockets are open. Instead:

- `database_work(fn, …)` runs `fn` on one of `MILEPOST_DB_THREADS` threads. Each takes a
  connection for the call and gives it back afterwards, as Django's request cycle does: on
  PostgreSQL from the process's connection pool (which checks it before handing it out), so an
  idle thread holds none.
- While a flush's after-commit work runs, `once_per_batch(work, key)` collects keys instead of
  running `work` at once; when the flush ends, `work(keys)` runs once with the distinct keys in
  order (the rollups' stale marks: one per slice, not one per completion of a slice).
- `GroupCommit` gathers the work items that sockets submit while earlier flushes are running
  (and within `MILEPOST_GROUP_COMMIT_MS` of the first one, if set) and hands them to one
  `flush` call, which answers each item. Every socket's `events` of that moment are stored in
  one transaction; each socket is answered the moment that transaction commits.

One GroupCommit lives per event loop (a process has one in production; each test has its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import sys
import threading
import time
import traceback
import weakref
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

from asgiref.sync import SyncToAsync, sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections, connection, transaction

logger = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")
Key = TypeVar("Key", bound=Hashable)

# How long a database thread keeps its connection waiting for its next call (DatabaseThreads).
KEEP_CONNECTION_SECONDS = 0.2
# The event loop that handed the current pool thread its work (see calling_loop).
_calling = threading.local()


# What once_per_batch collected on this thread while a batch is open (None when none is).
_collected = threading.local()


@contextlib.contextmanager
def batch_of_after_commit_work() -> Iterator[None]:
    """While open, `once_per_batch` collects its keys on this thread; on exit each collected
    work runs once with its distinct keys (in sorted order, so that two processes marking the
    same rows lock them in the same order). A failing work is logged: what it follows is
    committed already, like any after-commit work. Nested, the outermost one runs the work."""
    if getattr(_collected, "work", None) is not None:
        yield
        return
    _collected.work = {}
    try:
        yield
    finally:
        collected: dict[Callable[[list[Any]], None], set[Any]] = _collected.work
        _collected.work = None
        for work, keys in collected.items():
            try:
                work(sorted(keys))
            except Exception:
                logger.exception("after-commit work %s for %d keys failed", work, len(keys))


def once_per_batch(work: Callable[[list[Key]], None], key: Key) -> None:
    """`work([key])` now, or, inside `batch_of_after_commit_work`, once for all the distinct
    keys collected when it ends. For after-commit work that may come later but must come: a
    group commit of 50 completions in one rollup slice marks that slice once."""
    collected = getattr(_collected, "work", None)
    if collected is None:
        work([key])
    else:
        collected.setdefault(work, set()).add(key)


class DatabaseThreads(Executor):
    """`threads` threads taking calls from one queue, each call with Django's connection
    hygiene around it (what Django does around a request: with CONN_MAX_AGE 0 the connection
    goes back to the pool, or on SQLite is closed, when the call ends).

    Except on PostgreSQL while calls keep coming: a thread that gets its next call within
    KEEP_CONNECTION_SECONDS runs it on the connection it already has, which spares the pool's
    check (a round trip) and its bookkeeping per call on a busy socket path. Only a connection
    left clean (no transaction, no error since its last check) is kept, and a thread that waits
    longer gives it back: an idle thread holds none."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._calls: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], Any, Any] | None]
        self._calls = queue.SimpleQueue()
        # What each thread is running and since when (by its ident), for `busy()`.
        self._running: dict[int, tuple[Callable[..., Any], tuple[Any, ...], float]] = {}
        # Daemons: a worker stopping does not wait for them (a call cut short was not
        # acknowledged, and its transaction is rolled back with its connection).
        self._threads = [
            threading.Thread(target=self._serve, name=f"milepost-db_{number}", daemon=True)
            for number in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(  # type: ignore[override] # Executor's signature, positional-only fn
        self, fn: Callable[..., Result], /, *args: Any, **kwargs: Any
    ) -> Future[Result]:
        future: Future[Result] = Future()
        self._calls.put((future, fn, args, kwargs))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._calls.put(None)

    def on_each_thread(self, function: Callable[[], Any], timeout: float = 5.0) -> None:
        """Blocking: run `function` once on every thread. Each thread takes one call and waits
        for the others, so that none takes two. Raises the first error `function` raised, or
        TimeoutError if some thread was still busy after `timeout` (it runs its call when
        free)."""
        together = threading.Barrier(self.threads + 1, timeout=timeout)
        errors: list[Exception] = []

        def call() -> None:
            try:
                function()
            except Exception as error:
                errors.append(error)
            finally:
                with contextlib.suppress(threading.BrokenBarrierError):
                    together.wait()

        for _ in range(self.threads):
            self.submit(call)
        try:
            together.wait()
        except threading.BrokenBarrierError:
            raise TimeoutError(
                f"database threads still busy after {timeout} s: "
                + "; ".join(self.busy(besides=call))
            ) from None
        if errors:
            raise errors[0]

    def busy(
        self, longer_than: float = 1.0, besides: Callable[..., Any] | None = None
    ) -> list[str]:
        """The calls (but `besides`) running for more than `longer_than` seconds, where each one
        is (its innermost frames), and how many calls wait behind them."""
        now = time.monotonic()
        frames = sys._current_frames()
        found = []
        for ident, (function, args, started) in list(self._running.items()):
            if now - started <= longer_than or function is besides:
                continue
            if function is _on_loop:
                function = args[1]
            stack = traceback.extract_stack(frames[ident])[-3:] if ident in frames else []
            where = " < ".join(
                f"{f.name} ({Path(f.filename).name}:{f.lineno})" for f in stack[::-1]
            )
            name = getattr(function, "__qualname__", repr(function))
            found.append(f"{name} for {now - started:.1f} s, at {where}")
        stopped = sum(1 for thread in self._threads if not thread.is_alive())
        return [*found, f"{self._calls.qsize()} calls queued, {stopped} threads stopped"]

    def release_connections(self, timeout: float = 5.0) -> None:
        """Have every thread give its connection back now (before the pool is closed and its
        database dropped, as a test run does at its end)."""
        try:
            self.on_each_thread(close_old_connections, timeout)
        except Exception as error:
            logger.warning("database threads' connections not all released: %r", error)

    def _serve(self) -> None:
        ident = threading.get_ident()
        kept = False
        while True:
            try:
                call = (
                    self._calls.get(timeout=KEEP_CONNECTION_SECONDS) if kept else self._calls.get()
                )
            except queue.Empty:
                _give_back()
                kept = False
                continue
            if call is None:
                self._calls.put(None)  # for the next thread
                _give_back()
                return
            future, function, args, kwargs = call
            if not future.set_running_or_notify_cancel():
                continue
            self._running[ident] = (function, args, time.monotonic())
            try:
                if not kept:
                    close_old_connections()  # what fails here fails this call, not the thread
                result = function(*args, **kwargs)
            except BaseException as error:
                future.set_exception(error)
            else:
                future.set_result(result)
            finally:
                del self._running[ident]
                kept = _connection_keepable()
                if not kept:
                    _give_back()
            del future, call  # what the caller got is no longer held here while waiting


def _give_back() -> None:
    """Django's connection hygiene after a call, which must not end the thread (its later calls
    would wait for ever): a connection that cannot be given back is logged, and the next call's
    hygiene tries again."""
    try:
        close_old_connections()
    except Exception:
        logger.exception("a database thread could not give back its connection")


_pool: DatabaseThreads | None = None
_pool_lock = threading.Lock()


def database_pool() -> DatabaseThreads:
    global _pool  # one pool per process, made on first use
    with _pool_lock:
        if _pool is None:
            _pool = DatabaseThreads(settings.MILEPOST_DB_THREADS)
    return _pool


def release_connections() -> None:
    """The database threads' connections given back, if the threads were started."""
    if _pool is not None:
        _pool.release_connections()


def calling_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop waiting for this pool thread's work, or None outside the pool (a Celery
    worker, a management command, a WSGI request)."""
    return getattr(_calling, "loop", None)


def _connection_keepable() -> bool:
    """A PostgreSQL connection with nothing pending on it: no transaction, no error since it
    was last checked. Only such a connection goes on to the next call unchecked."""
    return (
        connection.vendor == "postgresql"
        and connection.connection is not None
        and not connection.errors_occurred
        and not connection.in_atomic_block
        and connection.get_autocommit()
    )


def _on_loop(
    loop: asyncio.AbstractEventLoop, function: Callable[..., Result], *args: Any, **kwargs: Any
) -> Result:
    _calling.loop = loop
    try:
        return function(*args, **kwargs)
    finally:
        _calling.loop = None


async def database_work(function: Callable[..., Result], /, *args: Any, **kwargs: Any) -> Result:
    """Run blocking database work on the pool; a push to the channel layer after commit goes
    back to this event loop (realtime._send_or_log)."""
    # asgiref only hands the executor to run_in_executor; its annotation names one class.
    executor: Any = database_pool()
    run = SyncToAsync(_on_loop, thread_sensitive=False, executor=executor)
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


@dataclass(slots=True)
class _Pending(Generic[Item, Result]):
    item: Item
    weight: int
    answer: asyncio.Future[Result]
    # The batch's, given with its answer: done once the after-commit work (pushes, signals) of
    # the commit that holds the item has run too.
    settled: asyncio.Future[None] | None = None


class GroupCommit(Generic[Item, Result]):
    """Batches items from many sockets into one `flush(items) -> answers` on the database pool.

    `flush` runs inside a transaction (unless `atomic` is off, for reads) and returns one answer
    per item, in order: a result, or an exception instance for that item alone. The answers go
    back to the sockets the moment that transaction commits, before the work it left for after
    commit (pushes, signals). If the transaction fails, nothing of the batch was acknowledged
    and each item is tried again on its own.

    At most `concurrency` flushes run at a time per loop; items arriving meanwhile form the
    next batch, so under load batches grow instead of queueing."""

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
        self.spare_weight = max(1, max_weight // 32)
        self._pending: deque[_Pending[Item, Result]] = deque()
        self._weight = 0
        self._running: set[asyncio.Task[None]] = set()
        # Runners that have not returned yet, counted down as a runner returns: one that has
        # just returned stays in `_running` until its done callback runs, and the socket whose
        # settling it announced last may submit before that (its next message). Counted, that
        # runner would leave the item with none at all. (Only a loop that is closing cancels a
        # runner before its first step, which leaves the count high; this GroupCommit goes with
        # that loop.)
        self._runners = 0

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
        answer: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        pending = _Pending(item, max(1, weight), answer)
        self._pending.append(pending)
        self._weight += pending.weight
        self._start()
        result = await answer
        return result, cast("asyncio.Future[None]", pending.settled)  # given with the answer

    def _start(self) -> None:
        # Another flush beside a running one only for a backlog worth a commit of its own: at a
        # light load one flush at a time gathers what arrives meanwhile, and what a commit
        # costs is shared by more items (bench/README.md, "Socket CPU at a fixed rate").
        if self._runners and self._weight < self.spare_weight:
            return
        if self._pending and self._runners < self.concurrency:
            self._runners += 1
            runner = asyncio.get_running_loop().create_task(self._run())
            self._running.add(runner)
            runner.add_done_callback(self._running.discard)

    def _take(self) -> list[_Pending[Item, Result]]:
        batch: list[_Pending[Item, Result]] = []
        weight = 0
        while self._pending and (not batch or weight + self._pending[0].weight <= self.max_weight):
            pending = self._pending.popleft()
            weight += pending.weight
            batch.append(pending)
        self._weight -= weight
        return batch

    async def _run(self) -> None:
        try:
            while self._pending:
                if self._weight < self.max_weight and self.window_seconds > 0:
                    # Give the sockets that are sending right now a moment to join this batch.
                    await asyncio.sleep(self.window_seconds)
                batch = self._take()
                if not batch:
                    return
                self._start()  # what arrives while this batch is written may go to another runner
                await self._flush(batch)
        finally:
            self._runners -= 1

    # On the event loop, for a batch written on a database thread -------------------------

    @staticmethod
    def _answer(batch: Sequence[_Pending[Item, Result]], answers: Sequence[Any]) -> None:
        settled = asyncio.get_running_loop().create_future()
        for pending, answer in zip(batch, answers, strict=True):
            pending.settled = settled
            if pending.answer.done():  # the socket went away
                continue
            if isinstance(answer, BaseException):
                pending.answer.set_exception(answer)
            else:
                pending.answer.set_result(answer)

    @staticmethod
    def _settle(batch: Sequence[_Pending[Item, Result]]) -> None:
        for pending in batch:
            if pending.settled is not None and not pending.settled.done():
                pending.settled.set_result(None)

    async def _flush(self, batch: list[_Pending[Item, Result]]) -> None:
        """Write `batch` on a database thread, which answers and settles its items; a batch
        that fails is answered here, item by item."""
        loop = asyncio.get_running_loop()

        def post(callback: Callable[..., None], *args: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
                loop.call_soon_threadsafe(callback, *args)

        try:
            await database_work(self._commit, batch, post)
        except asyncio.CancelledError:  # the runner is stopping with its event loop
            for pending in batch:
                pending.answer.cancel()
            raise
        except Exception as error:
            failure = error
        else:
            return
        if len(batch) == 1:
            self._answer(batch, [failure])
            self._settle(batch)
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

    # On a database thread -----------------------------------------------------------------

    def _commit(self, batch: list[_Pending[Item, Result]], post: Callable[..., None]) -> None:
        """Flush `batch` in a transaction whose first after-commit step hands the answers to
        the event loop, and say so again once the rest has run: the sockets waiting to send
        their next message go on then."""
        items = [pending.item for pending in batch]
        if not self.atomic:
            post(self._answer, batch, self.flush(items))
            post(self._settle, batch)
            return
        answers: list[Sequence[Any]] = []
        with batch_of_after_commit_work(), transaction.atomic():
            transaction.on_commit(lambda: post(self._answer, batch, answers[0]), robust=True)
            answers.append(self.flush(items))
        post(self._settle, batch)


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
            concurrency=settings.MILEPOST_GROUP_COMMITS,
            atomic=atomic,
        )
    return existing
