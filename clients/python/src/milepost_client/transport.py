"""What the sync and async clients share around a request: connection settings, reading an
answer, and the retry rule (which failures to retry, how long to wait)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from milepost_client import __version__
from milepost_client.calls import Call
from milepost_client.errors import TransportError, api_error

T = TypeVar("T")

RETRIED_STATUSES = frozenset({429, 502, 503, 504})
# Failures that happen before a request is sent: safe to retry even for a call that must not
# be repeated once it reached Milepost.
UNSENT_FAILURES = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class Options:
    base_url: str
    secret_key: str
    timeout: float = 10.0  # seconds for each of connect, read, write and pool
    max_retries: int = 3
    backoff: float = 0.5  # first wait; doubled each retry, with full jitter
    max_backoff: float = 8.0

    def client_arguments(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url.rstrip("/") + "/api/v1/",
            "headers": {
                "Authorization": f"Bearer {self.secret_key}",
                "User-Agent": f"milepost-client-python/{__version__}",
            },
            "timeout": httpx.Timeout(self.timeout),
        }

    def retry_delay(
        self,
        call: Call[Any],
        attempt: int,
        *,
        response: httpx.Response | None = None,
        error: httpx.TransportError | None = None,
    ) -> float | None:
        """Seconds to wait before retrying after this answer or failure; None: do not retry."""
        if attempt >= self.max_retries:
            return None
        if response is not None:
            if response.status_code not in RETRIED_STATUSES or call.retry != "always":
                return None
            retry_after = response.headers.get("Retry-After", "")
            if retry_after.isdigit():
                return min(float(retry_after), self.max_backoff)
        elif call.retry != "always" and not isinstance(error, UNSENT_FAILURES):
            return None
        return random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))  # noqa: S311


def result(call: Call[T], response: httpx.Response) -> T:
    """The call's typed result, or the ApiError the answer stands for."""
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    if response.is_error:
        raise api_error(response.status_code, body)
    return call.read(response.status_code, body)


def unreachable(call: Call[Any], error: httpx.TransportError) -> TransportError:
    return TransportError(f"{call.method} {call.path}: {type(error).__name__}: {error}")
