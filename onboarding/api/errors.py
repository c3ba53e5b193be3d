"""One error shape for every API answer: {"error": {"code", "message", "fields"?}}.

DRF views answer through `exception_handler`; everything else on an API path (an unknown URL,
a method a plain view does not take, an uncaught error) is put in the same shape by
`milepost.middleware.ApiErrorsMiddleware`. A dependency that cannot be reached (the database,
Redis, the task broker) is a 503 with `Retry-After`, never a 500: the caller's retry is safe."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from onboarding import dependencies
from onboarding.api.parsers import JsonRefusedError

logger = logging.getLogger(__name__)

UNAVAILABLE_RETRY_AFTER_SECONDS = dependencies.RETRY_AFTER_SECONDS
# The code of each status that can reach a caller without one chosen by a view.
STATUS_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
}
dependency_unavailable = dependencies.unavailable


def error_body(code: str, message: str, fields: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def unavailable_body() -> dict[str, Any]:
    return error_body(
        "unavailable",
        "A service Milepost depends on is unreachable; nothing was stored. Retry after "
        f"{UNAVAILABLE_RETRY_AFTER_SECONDS} seconds.",
    )


def _flatten(detail: Any) -> Any:
    if isinstance(detail, list):
        return [_flatten(item) for item in detail]
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        return Response(
            error_body("payload_too_large", "The body is larger than the limit of this endpoint."),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if dependency_unavailable(exc):
        logger.warning("answered 503: a dependency is unreachable (%r)", exc)
        return Response(
            unavailable_body(),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)},
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        response.data = error_body("invalid", "The request has invalid fields.", fields)
    elif isinstance(exc, JsonRefusedError):
        code = str(exc.get_codes())
        fields = {exc.field: str(exc.detail)} if exc.field else None
        response.data = error_body(code, str(exc.detail), fields)
    elif isinstance(exc, exceptions.ParseError):
        response.data = error_body("malformed_json", str(exc.detail))
    elif isinstance(exc, exceptions.Throttled):
        response.data = error_body("rate_limited", str(exc.detail))
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else STATUS_CODES.get(response.status_code, "error")
        response.data = error_body(str(code), str(exc.detail))
    if response.status_code == status.HTTP_401_UNAUTHORIZED and "WWW-Authenticate" not in response:
        response["WWW-Authenticate"] = 'Bearer realm="milepost"'
    return response
