"""What an unreachable dependency looks like, so every edge answers it the same way: a 503 with
`Retry-After` over HTTP, a socket `unavailable` with `retry_after`, a logged warning for a push
that could not be sent. Never a 500: nothing was acknowledged, so the caller's retry is safe."""

from __future__ import annotations

import redis
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerUnavailable

# How long a caller should wait before retrying when a dependency is down.
RETRY_AFTER_SECONDS = 5
_UNAVAILABLE = (
    OperationalError,  # PostgreSQL unreachable, restarting or shutting down; SQLite locked
    InterfaceError,  # a connection closed under us
    redis.exceptions.ConnectionError,  # also redis' BusyLoadingError
    redis.exceptions.TimeoutError,
    BrokerUnavailable,
)


def unavailable(exc: BaseException) -> bool:
    """True when `exc` means a service Milepost needs could not be reached, not a bug."""
    return isinstance(exc, _UNAVAILABLE)
