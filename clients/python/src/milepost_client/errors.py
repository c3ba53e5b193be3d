"""Exceptions of the client. An answer of the API that is an error becomes an `ApiError`
carrying the API's own `code` (e.g. `unknown_milestone`, `invalid_content`), its message and the
per-field messages, with a subclass per kind of status so callers can catch what they handle."""

from __future__ import annotations

from typing import Any


class MilepostError(Exception):
    """Base of every error this client raises."""


class ApiError(MilepostError):
    """Milepost answered with an error: `{"error": {"code", "message", "fields"?}}`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: dict[str, Any] | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code}: {message} (HTTP {status})")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}
        self.retry_after = retry_after  # seconds, from the answer's Retry-After (429, 503)


class InvalidRequestError(ApiError):
    """400: the input is wrong (`invalid`, `invalid_content`, `invalid_user`, `invalid_traits`,
    `malformed_json`, `not_publishable`, `number_out_of_range`, …); `fields` names what."""


class AuthenticationError(ApiError):
    """401 (`not_authenticated`, `authentication_failed`) or 403 (`forbidden`): the secret key
    is missing, wrong, or not a secret key."""


class NotFoundError(ApiError):
    """404: `unknown_user`, `unknown_milestone`, `unknown_key`, `unknown_kind`, or `not_found`
    (no such endpoint: a client newer than the server)."""


class PayloadTooLargeError(ApiError):
    """413 `payload_too_large`: the body or the batch is over Milepost's limits."""


class RateLimitedError(ApiError):
    """429 `rate_limited`: too many calls; retried with back-off before it is raised."""


class ServerError(ApiError):
    """5xx: Milepost or a proxy in front of it failed (`internal`, or `http_502` … from a
    proxy without Milepost's error body); a 502 or 504 is retried before it is raised."""


class UnavailableError(ServerError):
    """503 `unavailable` (the database or Redis is down; nothing was stored) or
    `analytics_unavailable` (the analytics store cannot answer): retried, honouring
    `Retry-After` up to the client's longest back-off, before it is raised."""


class UnexpectedResponseError(MilepostError):
    """A successful answer did not have the shape this client reads (a required field missing
    or of another type): a server and client too far apart. Fields a newer Milepost adds never
    cause it; they are ignored, and readable in the result's `raw`."""


class TransportError(MilepostError):
    """Milepost could not be reached or did not answer in time, after every retry."""


class QueueFullError(MilepostError):
    """`track` found the bounded event queue full: the event was not queued. Events leave the
    queue when the background flusher delivers them; a queue that stays full means Milepost
    has been unreachable for a while (or `max_queue_size` is too small for the traffic)."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    413: PayloadTooLargeError,
    429: RateLimitedError,
    503: UnavailableError,
}


def api_error(status: int, body: Any, retry_after: str = "") -> ApiError:
    """The exception for an error answer, from its JSON body when it has the API's shape.
    Statuses without a class of their own (405, 406, 415: a client and server out of step)
    raise `ApiError` itself."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code") or "error")
        message = str(error.get("message") or "")
        fields = error.get("fields") if isinstance(error.get("fields"), dict) else None
    else:
        code, message, fields = f"http_{status}", "Milepost answered without an error body.", None
    kind = _BY_STATUS.get(status) or (ServerError if status >= 500 else ApiError)
    wait = float(retry_after) if retry_after.isdigit() else None
    return kind(status, code, message, fields, retry_after=wait)
