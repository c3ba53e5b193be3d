"""`AsyncMilepost`: the asyncio client, with a background task that sends tracked events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any, TypeVar, Unpack

import httpx

from milepost_client import batching, calls, models, reports
from milepost_client.base import ClientBase, ClientOptions
from milepost_client.errors import MilepostError
from milepost_client.transport import Outcome

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

    # --- analytics ------------------------------------------------------------------------
    # Days are inclusive, in `timezone` (IANA, the server's default UTC); an argument left None
    # is left out of the request and Milepost's default applies.

    async def journey_funnel(
        self,
        journey: str,
        *,
        date_from: date,
        date_to: date,
        timezone: str | None = None,
        breakdown: str | None = None,
        breakdown_value: str | None = None,
    ) -> reports.JourneyFunnel:
        """How many people who started the journey in the range reached each milestone (and
        every earlier one); `breakdown`: lifecycle, trait (`breakdown_value` names it) or
        segment."""
        return await self._send(
            calls.report(
                "journey-funnel",
                reports.JourneyFunnel,
                {
                    "journey": journey,
                    "date_from": date_from,
                    "date_to": date_to,
                    "timezone": timezone,
                    "breakdown": breakdown,
                    "breakdown_value": breakdown_value,
                },
            )
        )

    async def velocity(
        self,
        journey: str,
        *,
        date_from: date,
        date_to: date,
        timezone: str | None = None,
        horizon_days: int | None = None,
    ) -> reports.Velocity:
        """How long people take to reach each milestone, from the start and from the previous
        one (percentiles, histograms, weekly medians), and who is still on the way."""
        return await self._send(
            calls.report(
                "velocity",
                reports.Velocity,
                {
                    "journey": journey,
                    "date_from": date_from,
                    "date_to": date_to,
                    "timezone": timezone,
                    "horizon_days": horizon_days,
                },
            )
        )

    async def walkthrough_funnel(
        self, walkthrough: str, *, date_from: date, date_to: date, timezone: str | None = None
    ) -> reports.WalkthroughFunnel:
        """Step drop-off of a walkthrough: per step, people who viewed, completed, dismissed
        the tour there, and how often its target was missing."""
        return await self._send(
            calls.report(
                "walkthrough-funnel",
                reports.WalkthroughFunnel,
                {
                    "walkthrough": walkthrough,
                    "date_from": date_from,
                    "date_to": date_to,
                    "timezone": timezone,
                },
            )
        )

    async def event_funnel(self, spec: Mapping[str, Any]) -> reports.EventFunnel:
        """A funnel of events: `{"steps": [{"event": …, "filters": [...]}, …], "date_from",
        "date_to", "order", "window_seconds", "exclusions", "breakdown", …}` (README,
        "Analytics")."""
        return await self._send(calls.event_funnel(spec))

    async def retention(
        self,
        *,
        date_from: date,
        date_to: date,
        timezone: str | None = None,
        period: str | None = None,
        periods: int | None = None,
        mode: str | None = None,
        cohort_type: str | None = None,
        cohort_event: str | None = None,
        journey: str | None = None,
        return_event: str | None = None,
    ) -> reports.Retention:
        """Cohorts by first (or recurring) activity and how many return in each period."""
        return await self._send(
            calls.report(
                "retention",
                reports.Retention,
                {
                    "date_from": date_from,
                    "date_to": date_to,
                    "timezone": timezone,
                    "period": period,
                    "periods": periods,
                    "mode": mode,
                    "cohort_type": cohort_type,
                    "cohort_event": cohort_event,
                    "journey": journey,
                    "return_event": return_event,
                },
            )
        )

    async def lifecycle(self) -> reports.Lifecycle:
        """People in each lifecycle stage now, and how they move between stages."""
        return await self._send(calls.report("lifecycle", reports.Lifecycle, {}))

    async def pqls(
        self,
        *,
        journey: str | None = None,
        date_from: date | None = None,
        date_to: date | None = None,
        timezone: str | None = None,
        period_days: int | None = None,
        min_score: int | None = None,
        search: str | None = None,
        limit: int | None = None,
    ) -> reports.PqlList:
        """Product qualified leads with their activity score, best first."""
        return await self._send(
            calls.report(
                "pqls",
                reports.PqlList,
                {
                    "journey": journey,
                    "date_from": date_from,
                    "date_to": date_to,
                    "timezone": timezone,
                    "period_days": period_days,
                    "min_score": min_score,
                    "search": search,
                    "limit": limit,
                },
            )
        )

    async def adoption(
        self,
        features: Sequence[str],
        *,
        date_from: date,
        date_to: date,
        timezone: str | None = None,
    ) -> reports.AdoptionMatrix:
        """Active people by which of these events (up to 6) they used: every combination."""
        return await self._send(
            calls.report(
                "adoption",
                reports.AdoptionMatrix,
                {
                    "features": list(features),
                    "date_from": date_from,
                    "date_to": date_to,
                    "timezone": timezone,
                },
            )
        )

    async def pai(
        self,
        key_event: str,
        *,
        date_from: date,
        date_to: date,
        timezone: str | None = None,
        window_days: int | None = None,
        retention_day: int | None = None,
        max_threshold: int | None = None,
        return_event: str | None = None,
    ) -> reports.PaiValidation:
        """Which count of `key_event` in the first days best predicts retention."""
        return await self._send(
            calls.report(
                "pai",
                reports.PaiValidation,
                {
                    "key_event": key_event,
                    "date_from": date_from,
                    "date_to": date_to,
                    "timezone": timezone,
                    "window_days": window_days,
                    "retention_day": retention_day,
                    "max_threshold": max_threshold,
                    "return_event": return_event,
                },
            )
        )

    async def report(self, name: str, **params: Any) -> reports.AnyReport:
        """Any GET report by the slug of its endpoint, e.g. `report("walkthrough-funnel",
        walkthrough="tour", date_from=date(2026, 12, 1), date_to=date(2026, 12, 3))`; the
        result is the same typed object as the report's own method answers."""
        return await self._send(calls.report_by_name(name, params))

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
        attempts = self.options.retry.start(call)
        while not attempts.final(await self._try(call)):
            await asyncio.sleep(attempts.wait)
        return attempts.result()

    async def _try(self, call: calls.Call[Any]) -> Outcome:
        try:
            return await self._http.request(
                call.method, call.path, json=call.json, params=call.params
            )
        except httpx.TransportError as error:
            return error
