"""`Milepost`: the synchronous client, with a background thread that sends tracked events."""

from __future__ import annotations

import threading
import time
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


class Milepost(ClientBase):
    """A client of one workspace, authenticated with its secret key (`sk_…`).

    `track` queues events (at most `max_queue_size`) for a background thread that sends them
    in batches of `batch_size` every `flush_interval` seconds, or as soon as a batch is full.
    Every other method is one request, retried up to `max_retries` times with exponential
    back-off when a retry is safe, and answers a typed result or raises an `ApiError` naming
    the API's error code. Call `close()` (or use `with`) to send what is queued before exit.
    """

    def __init__(
        self,
        base_url: str,
        secret_key: str,
        *,
        transport: httpx.BaseTransport | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__(base_url, secret_key, **options)
        self._http = httpx.Client(transport=transport, **self.options.client_arguments())
        self._wake = threading.Event()
        self._sending = threading.Lock()  # one flush at a time, so batches keep their order
        self._starting = threading.Lock()
        self._flusher: threading.Thread | None = None

    # --- end users and events -------------------------------------------------------------

    def identify(
        self, user_id: str, traits: Mapping[str, Any] | None = None, *, replace: bool = False
    ) -> models.EndUser:
        """Create or update an end user; traits merge unless `replace`."""
        return self._send(calls.identify(user_id, traits, replace=replace))

    def track(
        self,
        user_id: str,
        name: str,
        properties: Mapping[str, Any] | None = None,
        *,
        timestamp: datetime | None = None,
        event_id: str | None = None,
    ) -> str:
        """Queue an event for the background flusher and answer its id. Raises
        `QueueFullError` when `max_queue_size` events are already waiting."""
        event_id, full = self._enqueue(user_id, name, properties, timestamp, event_id)
        if full:
            self._wake.set()
        self._start_flusher()
        return event_id

    def send_events(self, events: Sequence[Mapping[str, Any]]) -> models.EventAck:
        """Send a batch now (no queue); each event needs `id`, `user_id` and `name`."""
        return self._send(calls.send_events([dict(e) for e in events], sent_at=datetime.now(UTC)))

    def complete_milestone(
        self, user_id: str, milestone: str, *, at: datetime | None = None
    ) -> models.MilestoneCompletion:
        """Report a milestone reached on the server (a milestone whose criterion is a report)."""
        return self._send(calls.complete_milestone(user_id, milestone, at=at))

    def progress(self, user_id: str) -> models.Progress:
        return self._send(calls.progress(user_id))

    def erase(self, user_id: str) -> models.Erased:
        """Erase every record of the end user (events, completions, progress, content state)."""
        return self._send(calls.erase(user_id))

    # --- content as code ------------------------------------------------------------------

    def export_content(self) -> dict[str, Any]:
        """The workspace's drafts as a milepost-content/1 document."""
        return self._send(calls.export_content())

    def import_content(
        self, document: Mapping[str, Any], *, dry_run: bool = False, publish: bool = False
    ) -> models.ContentChanges:
        """Create or update pieces by key in one transaction (`dry_run`: report only)."""
        return self._send(calls.import_content(document, dry_run=dry_run, publish=publish))

    def publish(self, kind: str, key: str) -> models.PublishedVersion:
        """Publish one journey, walkthrough, tooltip or progress bar as its next version."""
        return self._send(calls.publish(kind, key))

    # --- analytics ------------------------------------------------------------------------
    # Days are inclusive, in `timezone` (IANA, the server's default UTC); an argument left None
    # is left out of the request and Milepost's default applies.

    def journey_funnel(
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
        return self._send(
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

    def velocity(
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
        return self._send(
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

    def walkthrough_funnel(
        self, walkthrough: str, *, date_from: date, date_to: date, timezone: str | None = None
    ) -> reports.WalkthroughFunnel:
        """Step drop-off of a walkthrough: per step, people who viewed, completed, dismissed
        the tour there, and how often its target was missing."""
        return self._send(
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

    def event_funnel(self, spec: Mapping[str, Any]) -> reports.EventFunnel:
        """A funnel of events: `{"steps": [{"event": …, "filters": [...]}, …], "date_from",
        "date_to", "order", "window_seconds", "exclusions", "breakdown", …}` (README,
        "Analytics")."""
        return self._send(calls.event_funnel(spec))

    def retention(
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
        return self._send(
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

    def lifecycle(self) -> reports.Lifecycle:
        """People in each lifecycle stage now, and how they move between stages."""
        return self._send(calls.report("lifecycle", reports.Lifecycle, {}))

    def pqls(
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
        return self._send(
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

    def adoption(
        self,
        features: Sequence[str],
        *,
        date_from: date,
        date_to: date,
        timezone: str | None = None,
    ) -> reports.AdoptionMatrix:
        """Active people by which of these events (up to 6) they used: every combination."""
        return self._send(
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

    def pai(
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
        return self._send(
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

    def report(self, name: str, **params: Any) -> reports.AnyReport:
        """Any GET report by the slug of its endpoint, e.g. `report("walkthrough-funnel",
        walkthrough="tour", date_from=date(2026, 12, 1), date_to=date(2026, 12, 3))`; the
        result is the same typed object as the report's own method answers."""
        return self._send(calls.report_by_name(name, params))

    # --- queue ----------------------------------------------------------------------------

    def flush(self) -> None:
        """Send every queued event now. Raises the error of a batch Milepost could not take;
        a batch that failed for a reason worth retrying stays queued."""
        with self._sending:
            while batch := self._queue.take():
                try:
                    ack = self.send_events(batch)
                except MilepostError as error:
                    self._undelivered(batch, error)
                    raise
                self._queue.settle(batch)
                batching.log_ack(ack)

    def close(self) -> None:
        """Send what is queued (errors are logged), stop the flusher, close connections."""
        self._closed = True
        self._wake.set()
        if self._flusher is not None:
            self._flusher.join()
        try:
            self.flush()
        except MilepostError as error:
            batching.logger.error("Milepost: %d events not sent at close: %s", self.pending, error)
        self._http.close()

    def __enter__(self) -> Milepost:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- internals ------------------------------------------------------------------------

    def _start_flusher(self) -> None:
        # A forked worker (gunicorn, Celery) inherits the object but not the thread.
        if self._flusher is None or not self._flusher.is_alive():
            with self._starting:
                if self._flusher is None or not self._flusher.is_alive():
                    self._flusher = threading.Thread(
                        target=self._flush_forever, name="milepost-flusher", daemon=True
                    )
                    self._flusher.start()

    def _flush_forever(self) -> None:
        while not self._closed:
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            try:
                self.flush()
            except MilepostError as error:
                batching.logger.warning("Milepost: sending tracked events failed: %s", error)

    def _send(self, call: calls.Call[T]) -> T:
        attempts = self.options.retry.start(call)
        while not attempts.final(self._try(call)):
            time.sleep(attempts.wait)
        return attempts.result()

    def _try(self, call: calls.Call[Any]) -> Outcome:
        try:
            return self._http.request(call.method, call.path, json=call.json, params=call.params)
        except httpx.TransportError as error:
            return error
