"""`Milepost`: the synchronous client, with a background thread that sends tracked events."""

from __future__ import annotations

import threading
import time
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

    def report(self, name: str, **params: Any) -> dict[str, Any]:
        """One of `calls.REPORTS` with its parameters, e.g. `report("walkthrough-funnel",
        walkthrough="tour", date_from=date(2026, 12, 1), date_to=date(2026, 12, 3))`."""
        return self._send(calls.report(name, params))

    def event_funnel(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        return self._send(calls.event_funnel(spec))

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
        attempt = 0
        while True:
            try:
                response = self._http.request(
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
            time.sleep(delay)
            attempt += 1
