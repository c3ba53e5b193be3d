"""What the runtime counts for Prometheus (served at /metrics by milepost.observability).

Counters and gauges live in the process that changes them. With several processes (uvicorn
--workers, Celery), set PROMETHEUS_MULTIPROC_DIR to an empty directory they share before they
start: prometheus_client then keeps each process's values in a file there and /metrics adds
them up, whichever process answers the scrape (README, Metrics).
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Sequence
from typing import Any

from django.core.signals import got_request_exception
from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "milepost_events",
    "Events received, by outcome: accepted (stored), duplicate (an id stored before), "
    "rejected (invalid); counted when their transaction commits.",
    ["outcome"],
)
OPEN_SOCKETS = Gauge(
    "milepost_open_sockets",
    "Widget WebSockets open now (accepted and not yet closed).",
    multiprocess_mode="livesum",
)
PUSH_LAG = Histogram(
    "milepost_push_lag_seconds",
    "From a push leaving the process that committed it to its write on a widget socket.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
ERRORS = Counter(
    "milepost_errors",
    "Unexpected errors: http (a request answered 500), socket (a message answered `internal` "
    "or a socket that lost its channel layer), task (a Celery task that raised).",
    ["where"],
)


def events_counted(acks: Sequence[Any]) -> None:
    """Count the outcomes of committed batches (recording's `Ack`s)."""
    for outcome, attribute in (
        ("accepted", "accepted"),
        ("duplicate", "duplicates"),
        ("rejected", "rejected"),
    ):
        total = sum(len(getattr(ack, attribute)) for ack in acks)
        if total:
            EVENTS.labels(outcome).inc(total)


def _count_http_error(sender: Any, **kwargs: Any) -> None:
    ERRORS.labels("http").inc()


got_request_exception.connect(_count_http_error, dispatch_uid="milepost.metrics.http_error")

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):

    def _forget_this_process() -> None:
        from prometheus_client import multiprocess

        # Its open sockets are closed: leave them out of the live sum.
        multiprocess.mark_process_dead(os.getpid())

    atexit.register(_forget_this_process)
