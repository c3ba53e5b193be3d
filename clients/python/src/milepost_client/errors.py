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
        self, status: int, code: str, message: str, fields: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{code}: {message} (HTTP {status})")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}


class InvalidRequestError(ApiError):
    """400: the input is wrong; `fields` names what."""


class AuthenticationError(ApiError):
    """401: the secret key is missing, wrong, or not a secret key."""


class NotFoundError(ApiError):
    """404: unknown user, milestone, content key or kind."""


class PayloadTooLargeError(ApiError):
    """413: the body or the batch is over Milepost's limits."""


class RateLimitedError(ApiError):
    """429: too many calls; retried with back-off before it is raised."""


class ServerError(ApiError):
    """5xx: Milepost or a proxy in front of it failed; retried before it is raised."""


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
}


def api_error(status: int, body: Any) -> ApiError:
    """The exception for an error answer, from its JSON body when it has the API's shape."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code") or "error")
        message = str(error.get("message") or "")
        fields = error.get("fields") if isinstance(error.get("fields"), dict) else None
    else:
        code, message, fields = f"http_{status}", "Milepost answered without an error body.", None
    kind = ServerError if status >= 500 else _BY_STATUS.get(status, ApiError)
    return kind(status, code, message, fields)
