"""Static files without making every request sync.

WhiteNoise's middleware is sync-only, and one sync-only middleware makes Django run the whole
middleware chain, and every view behind it, on the single thread that `sync_to_async` keeps for
thread-sensitive work: a process then answers one HTTP request at a time. This subclass keeps
WhiteNoise's file lookup and response, and is async: a static file is found by a dictionary
lookup (or, with autorefresh in development, off the event loop) and every other request
passes straight on."""

from __future__ import annotations

from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from whitenoise.middleware import WhiteNoiseMiddleware


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
