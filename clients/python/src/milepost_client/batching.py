"""The bounded queue of tracked events, shared by the sync and async clients' flushers.

Every event gets its id when it is tracked, so a batch sent again after a timeout (when
Milepost may have stored it) is answered as duplicates and stored once."""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from milepost_client.errors import (
    MilepostError,
    QueueFullError,
    RateLimitedError,
    ServerError,
    TransportError,
)
from milepost_client.models import EventAck

logger = logging.getLogger("milepost_client")

MAX_BATCH_SIZE = 500  # Milepost's MILEPOST_MAX_EVENTS_PER_BATCH default


def event(
    user_id: str,
    name: str,
    properties: Mapping[str, Any] | None,
    timestamp: datetime | None,
    event_id: str | None,
) -> dict[str, Any]:
    if timestamp is not None and timestamp.tzinfo is None:
        raise ValueError("timestamp must be timezone-aware")
    return {
        "id": event_id or str(uuid.uuid4()),
        "user_id": user_id,
        "name": name,
        "timestamp": (timestamp or datetime.now(UTC)).isoformat(),
        "properties": dict(properties or {}),
    }


def worth_retrying(error: MilepostError) -> bool:
    """A batch that failed this way is kept for the next flush; any other failure (400, 401,
    413) would fail again, so its events are dropped and logged."""
    return isinstance(error, TransportError | ServerError | RateLimitedError)


def log_ack(ack: EventAck) -> None:
    for rejection in ack.rejected:
        logger.warning("Milepost rejected event %s: %s", rejection.id, rejection.reason)


class EventQueue:
    """Events waiting to be sent, at most `max_size`; thread-safe. The batch being sent
    counts too (in the length and the limit) until it is delivered (`settle`) or put back."""

    def __init__(self, max_size: int, batch_size: int) -> None:
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH_SIZE}")
        if max_size < batch_size:
            raise ValueError("max_queue_size must be at least batch_size")
        self.max_size = max_size
        self.batch_size = batch_size
        self._events: deque[dict[str, Any]] = deque()
        self._in_flight = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._events) + self._in_flight

    def put(self, item: dict[str, Any]) -> bool:
        """Queue one event; True when a full batch is now waiting."""
        with self._lock:
            if len(self._events) + self._in_flight >= self.max_size:
                raise QueueFullError(
                    f"{self.max_size} events are waiting to be sent (max_queue_size); "
                    f"event {item['id']} was not queued."
                )
            self._events.append(item)
            return len(self._events) >= self.batch_size

    def take(self) -> list[dict[str, Any]]:
        with self._lock:
            count = min(self.batch_size, len(self._events))
            self._in_flight += count
            return [self._events.popleft() for _ in range(count)]

    def settle(self, batch: list[dict[str, Any]]) -> None:
        """A taken batch is done with: delivered, or dropped because Milepost refused it."""
        with self._lock:
            self._in_flight -= len(batch)

    def put_back(self, batch: list[dict[str, Any]]) -> None:
        """Return a batch that could not be delivered to the front, in order (it still counts
        toward the limit, so there is always room for it)."""
        with self._lock:
            self._in_flight -= len(batch)
            self._events.extendleft(reversed(batch))
