"""The client's exceptions cover every error the API documents: each error status of the
OpenAPI schema, and each default code of onboarding.api.errors, becomes an exception a caller
can catch by kind, carrying the API's code."""

from __future__ import annotations

from typing import Any

from drf_spectacular.generators import SchemaGenerator
from milepost_client import (
    ApiError,
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    ServerError,
    UnavailableError,
)
from milepost_client.errors import api_error

from onboarding.api.errors import STATUS_CODES, error_body


def documented_error_statuses() -> set[int]:
    schema: dict[str, Any] = SchemaGenerator().get_schema(request=None, public=True)
    return {
        int(status)
        for operations in schema["paths"].values()
        for operation in operations.values()
        for status in operation.get("responses", {})
        if status[0] in "45"
    }


def test_every_documented_error_status_raises_its_own_exception() -> None:
    raised = {
        status: type(api_error(status, error_body("some_code", "Some message.")))
        for status in documented_error_statuses()
    }

    assert raised == {
        400: InvalidRequestError,
        401: AuthenticationError,
        403: AuthenticationError,
        404: NotFoundError,
        413: PayloadTooLargeError,
        429: RateLimitedError,
        503: UnavailableError,
    }


def test_every_default_code_of_the_api_keeps_its_code_and_kind() -> None:
    errors = {
        status: api_error(status, error_body(code, "Some message."), "5")
        for status, code in STATUS_CODES.items()
    }

    assert {status: error.code for status, error in errors.items()} == STATUS_CODES
    assert isinstance(errors[500], ServerError)
    assert isinstance(errors[503], UnavailableError)
    assert errors[429].retry_after == 5
    # A client and a server out of step: no kind of their own, still an ApiError with the code.
    assert {type(errors[s]) for s in (405, 406, 415)} == {ApiError}


def test_an_error_without_milepost_s_body_names_the_status() -> None:
    error = api_error(502, None)

    assert isinstance(error, ServerError)
    assert (error.code, error.status) == ("http_502", 502)
