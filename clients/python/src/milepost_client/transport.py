"""What the sync and async clients share around a request: connection settings, the retry
policy (which failures to retry, how long to wait) and the attempts of one call, and reading an
answer into its typed result or its exception."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

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
class RetryPolicy:
    """When a call is tried again and after how long, for both clients. Retried: a failure to
    reach Milepost, 429, 502, 503, 504; a call that must not act twice (`Call.retry ==
    "unsent"`, a publish) only when the request cannot have been sent."""

    max_retries: int = 3
    backoff: float = 0.5  # first wait; doubled each retry, with full jitter
    max_backoff: float = 8.0  # also caps a Retry-After

    def start(self, call: Call[T]) -> Attempts[T]:
        return Attempts(self, call)

    def delay(self, call: Call[Any], retries: int, outcome: Outcome) -> float | None:
        """Seconds to wait before trying again after this outcome; None: it is final."""
        if retries >= self.max_retries:
            return None
        if isinstance(outcome, httpx.Response):
            if outcome.status_code not in RETRIED_STATUSES or call.retry != "always":
                return None
            retry_after = outcome.headers.get("Retry-After", "")
            if retry_after.isdigit():
                return min(float(retry_after), self.max_backoff)
        elif call.retry != "always" and not isinstance(outcome, UNSENT_FAILURES):
            return None
        return random.uniform(0, min(self.max_backoff, self.backoff * 2**retries))  # noqa: S311


# What one try of a call comes to: Milepost's answer, or the failure to get one.
Outcome = httpx.Response | httpx.TransportError


class Attempts(Generic[T]):
    """One call through its tries, the same for the sync and the async client, which only
    send and sleep: `while not attempts.final(<try the call>): <sleep attempts.wait>`, then
    `attempts.result()` answers the typed result or raises."""

    def __init__(self, policy: RetryPolicy, call: Call[T]) -> None:
        self.policy = policy
        self.call = call
        self.tries = 0
        self.wait = 0.0
        self._last: Outcome | None = None

    def final(self, outcome: Outcome) -> bool:
        """Record a try's outcome: True when it is the last, else wait `wait` seconds first."""
        delay = self.policy.delay(self.call, self.tries, outcome)
        self.tries += 1
        self._last = outcome
        self.wait = delay or 0.0
        return delay is None

    def result(self) -> T:
        if self._last is None:
            raise RuntimeError("no try of the call was recorded")
        if isinstance(self._last, httpx.TransportError):
            raise unreachable(self.call, self._last) from self._last
        return result(self.call, self._last)


@dataclass(frozen=True)
class Options:
    base_url: str
    secret_key: str
    timeout: float = 10.0  # seconds for each of connect, read, write and pool
    retry: RetryPolicy = RetryPolicy()

    def client_arguments(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url.rstrip("/") + "/api/v1/",
            "headers": {
                "Authorization": f"Bearer {self.secret_key}",
                "User-Agent": f"milepost-client-python/{__version__}",
            },
            "timeout": httpx.Timeout(self.timeout),
        }


def result(call: Call[T], response: httpx.Response) -> T:
    """The call's typed result, or the ApiError the answer stands for."""
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    if response.is_error:
        raise api_error(response.status_code, body, response.headers.get("Retry-After", ""))
    return call.read(response.status_code, body)


def unreachable(call: Call[Any], error: httpx.TransportError) -> TransportError:
    return TransportError(f"{call.method} {call.path}: {type(error).__name__}: {error}")
