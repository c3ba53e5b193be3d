"""What the sync and async clients share: their options and the queue of tracked events."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypedDict, Unpack

from milepost_client import batching
from milepost_client.errors import MilepostError
from milepost_client.transport import Options, RetryPolicy


class ClientOptions(TypedDict, total=False):
    timeout: float  # seconds for each of connect, read, write and pool (10)
    max_retries: int  # retries of a call when repeating it is safe (3)
    backoff: float  # first wait before a retry, doubled each time, with jitter (0.5 s)
    batch_size: int  # events per request from the queue (100; Milepost takes at most 500)
    max_queue_size: int  # events waiting at most; `track` raises QueueFullError beyond (10 000)
    flush_interval: float  # seconds between background sends (1)
    retry: RetryPolicy  # the whole retry policy at once (max_retries, backoff, max_backoff)


class ClientBase:
    def __init__(self, base_url: str, secret_key: str, **options: Unpack[ClientOptions]) -> None:
        self.options = Options(
            base_url,
            secret_key,
            timeout=options.get("timeout", 10.0),
            retry=options.get("retry")
            or RetryPolicy(
                max_retries=options.get("max_retries", 3), backoff=options.get("backoff", 0.5)
            ),
        )
        self._queue = batching.EventQueue(
            options.get("max_queue_size", 10_000), options.get("batch_size", 100)
        )
        self._flush_interval = options.get("flush_interval", 1.0)
        self._closed = False

    @property
    def pending(self) -> int:
        """Events tracked and not yet delivered."""
        return len(self._queue)

    def _enqueue(
        self,
        user_id: str,
        name: str,
        properties: Mapping[str, Any] | None,
        timestamp: datetime | None,
        event_id: str | None,
    ) -> tuple[str, bool]:
        """Queue one event: its id, and whether a full batch is now waiting."""
        if self._closed:
            raise MilepostError("this client is closed")
        item = batching.event(user_id, name, properties, timestamp, event_id)
        return str(item["id"]), self._queue.put(item)

    def _undelivered(self, batch: list[dict[str, Any]], error: MilepostError) -> None:
        """A batch that failed for a reason worth retrying goes back to the queue; one that
        Milepost refused would fail again and is dropped (and logged)."""
        if batching.worth_retrying(error):
            self._queue.put_back(batch)
        else:
            self._queue.settle(batch)
            batching.logger.error(
                "Milepost refused a batch of %d events, dropped: %s", len(batch), error
            )
