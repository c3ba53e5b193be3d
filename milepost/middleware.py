"""Middleware: static files without making every request sync, and API errors in one shape.

WhiteNoise's middleware is sync-only, and one sync-only middleware makes Django run the whole
middleware chain, and every view behind it, on the single thread that `sync_to_async` keeps for
thread-sensitive work: a process then answers one HTTP request at a time. This subclass keeps
WhiteNoise's file lookup and response, and is async: a static file is found by a dictionary
lookup (or, with autorefresh in development, off the event loop) and every other request
passes straight on."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from whitenoise.middleware import WhiteNoiseMiddleware

from onboarding.api import errors

logger = logging.getLogger(__name__)


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    sync_capable = False
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        super().__init__(get_response)
        if not iscoroutinefunction(get_response):
            raise TypeError("StaticFilesMiddleware needs an async get_response")
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:  # type: ignore[override]
        if self.autorefresh:
            static_file = await sync_to_async(self.find_file, thread_sensitive=False)(
                request.path_info
            )
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            return self.serve(static_file, request)
        response: HttpResponseBase = await self.get_response(request)
        return response


API_PREFIX = "/api/"


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


class ApiErrorsMiddleware:
    """Every error on an API path in the documented JSON shape, and a 503 with `Retry-After`
    (never a 500) on any path when a dependency is down.

    DRF views shape their own errors; this covers the rest: an unknown URL, a method a plain
    view does not take, a refused host, an uncaught error (Django logs it and renders its 500
    page, which is replaced here; in DEBUG its technical page too). Outermost, so the errors
    of other middleware pass through it as well."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        if not iscoroutinefunction(get_response):
            raise TypeError("ApiErrorsMiddleware needs an async get_response")
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response: HttpResponseBase = await self.get_response(request)
        if (
            response.status_code >= 400
            and _is_api(request)
            and not response.get("Content-Type", "").startswith("application/json")
            and self._is_djangos_own(request, response)
        ):
            code = errors.STATUS_CODES.get(response.status_code, "error")
            reason = getattr(response, "reason_phrase", "") or code
            shaped = JsonResponse(
                errors.error_body(code, f"{reason} ({request.method} {request.path_info})."),
                status=response.status_code,
            )
            for header in ("Allow", "Retry-After", "WWW-Authenticate"):
                if header in response:
                    shaped[header] = response[header]
            return shaped
        return response

    @staticmethod
    def _is_djangos_own(request: HttpRequest, response: HttpResponseBase) -> bool:
        """Django's error pages: a URL no view matched, a 5xx, an empty refusal (a method a
        view's decorator does not allow). A view's own page is left alone (unsubscribe links
        under the API path answer people in a browser)."""
        return (
            getattr(request, "resolver_match", None) is None
            or response.status_code >= 500
            or (not response.streaming and not getattr(response, "content", b""))
        )

    def process_exception(self, request: HttpRequest, exception: Exception) -> Any:
        if not errors.dependency_unavailable(exception):
            return None  # Django logs it with its traceback; __call__ shapes the 500
        logger.warning("%s %s answered 503: %r", request.method, request.path_info, exception)
        retry_after = str(errors.UNAVAILABLE_RETRY_AFTER_SECONDS)
        if _is_api(request):
            response: HttpResponseBase = JsonResponse(errors.unavailable_body(), status=503)
        else:
            response = HttpResponse(
                "Milepost cannot reach its database or Redis just now; retry in a few seconds.",
                content_type="text/plain; charset=utf-8",
                status=503,
            )
        response["Retry-After"] = retry_after
        return response
