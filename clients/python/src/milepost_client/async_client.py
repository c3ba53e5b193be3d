"""`AsyncMilepost`: the asyncio client, with a background task that sends tracked events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar, Unpack

import httpx

from milepost_client import batching, calls, models
from milepost_client.base import ClientBase, ClientOptions
from milepost_client.errors import MilepostError
from milepost_client.transport import result, unreachable

T = TypeVar("T")


class AsyncMilepost(ClientBase):
    """The same API as `Milepost`, awaited. `track` stays a plain (non-blocking) method: it
    queues the event for a task on the running event loop. `await aclose()` (or `async with`)
    sends what is queued."""

    def __init__(
        self,
        base_url: str,
        secret_key: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__(base_url, secret_key, **options)
        self._http = httpx.AsyncClient(transport=transport, **self.options.client_arguments())
        self._wake: asyncio.Event | None = None
        self._sending: asyncio.Lock | None = None
        self._flusher: asyncio.Task[None] | None = None

    async def identify(
        self, user_id: str, traits: Mapping[str, Any] | None = None, *, replace: bool = False
    ) -> models.EndUser:
        return await self._send(calls.identify(user_id, traits, replace=replace))

    def track(
        self,
        user_id: str,
        name: str,
        properties: Mapping[str, Any] | None = None,
        *,
        timestamp: datetime | None = None,
        event_id: str | None = None,
    ) -> str:
        event_id, full = self._enqueue(user_id, name, properties, timestamp, event_id)
        wake = self._start_flusher()
        if full:
            wake.set()
        return event_id

    async def send_events(self, events: Sequence[Mapping[str, Any]]) -> models.EventAck:
        return await self._send(
            calls.send_events([dict(e) for e in events], sent_at=datetime.now(UTC))
        )

    async def complete_milestone(
        self, user_id: str, milestone: str, *, at: datetime | None = None
    ) -> models.MilestoneCompletion:
        return await self._send(calls.complete_milestone(user_id, milestone, at=at))

    async def progress(self, user_id: str) -> models.Progress:
        return await self._send(calls.progress(user_id))

    async def erase(self, user_id: str) -> models.Erased:
        return await self._send(calls.erase(user_id))

    async def export_content(self) -> dict[str, Any]:
        return await self._send(calls.export_content())

    async def import_content(
        self, document: Mapping[str, Any], *, dry_run: bool = False, publish: bool = False
    ) -> models.ContentChanges:
        return await self._send(calls.import_content(document, dry_run=dry_run, publish=publish))

    async def publish(self, kind: str, key: str) -> models.PublishedVersion:
        return await self._send(calls.publish(kind, key))

    async def report(self, name: str, **params: Any) -> dict[str, Any]:
        return await self._send(calls.report(name, params))

    async def event_funnel(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        return await self._send(calls.event_funnel(spec))

    async def flush(self) -> None:
        """Send every queued event now; see `Milepost.flush`."""
        if self._sending is None:
            self._sending = asyncio.Lock()
        async with self._sending:
            while batch := self._queue.take():
                try:
                    ack = await self.send_events(batch)
                except MilepostError as error:
                    self._undelivered(batch, error)
                    raise
                self._queue.settle(batch)
                batching.log_ack(ack)

    async def aclose(self) -> None:
        self._closed = True
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        try:
            await self.flush()
        except MilepostError as error:
            batching.logger.error("Milepost: %d events not sent at close: %s", self.pending, error)
        await self._http.aclose()

    async def __aenter__(self) -> AsyncMilepost:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _start_flusher(self) -> asyncio.Event:
        # A task dies with its event loop (a new asyncio.run): start another on this one.
        if self._wake is None or self._flusher is None or self._flusher.done():
            self._wake = asyncio.Event()
            self._flusher = asyncio.get_running_loop().create_task(self._flush_forever())
        return self._wake

    async def _flush_forever(self) -> None:
        assert self._wake is not None  # noqa: S101 - set before the task starts
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_interval)
            self._wake.clear()
            try:
                await self.flush()
            except MilepostError as error:
                batching.logger.warning("Milepost: sending tracked events failed: %s", error)

    async def _send(self, call: calls.Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    call.method, call.path, json=call.json, params=call.params
                )
            except httpx.TransportError as error:
                delay = self.options.retry_delay(call, attempt, error=error)
                if delay is None:
                    raise unreachable(call, error) from error
            else:
                delay = self.options.retry_delay(call, attempt, response=response)
                if delay is None:
                    return result(call, response)
            await asyncio.sleep(delay)
            attempt += 1
