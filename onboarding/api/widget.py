"""The widget's HTTP fallback: the same payloads as the socket, for pages where WebSockets
fail or are blocked, plus a server-sent-events stream carrying the same pushes.

Calls come from customers' pages on other origins, so these views answer CORS themselves, and
never to an origin that was not checked: a preflight carries no key, so it is granted to an
origin that some workspace allows; a call is granted once its key's workspace allows its
Origin. An answer given before that check (an unknown key, malformed JSON, a body too large, a
wrong method or media type) carries no grant, so a foreign page cannot read it and cannot tell a
valid key from an unknown one. `text/plain` bodies are parsed as JSON too, because
`navigator.sendBeacon` on page hide cannot send application/json without a preflight.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from onboarding import delivery, realtime, translations
from onboarding.api import serializers as s
from onboarding.api.cross_origin import CrossOriginView, cors
from onboarding.api.parsers import PlainTextJSONParser, StrictJSONParser
from onboarding.api.views import json_object
from onboarding.batching import database_work
from onboarding.dependencies import unavailable as dependency_unavailable
from onboarding.models import EndUser, Workspace

KEEP_ALIVE_SECONDS = 15.0
# Streams end after this long; EventSource reconnects by itself with Last-Event-ID.
STREAM_LIFETIME_SECONDS = 600.0

WIDGET_ERRORS = {
    400: OpenApiResponse(s.ErrorSerializer, description="Malformed input"),
    401: OpenApiResponse(s.ErrorSerializer, description="Missing or unknown publishable key"),
    403: OpenApiResponse(s.ErrorSerializer, description="Origin not allowed or bad user_hash"),
    404: OpenApiResponse(s.ErrorSerializer, description="User not identified yet"),
    413: OpenApiResponse(s.ErrorSerializer, description="Batch too large"),
    429: OpenApiResponse(s.ErrorSerializer, description="Rate limited (see Retry-After)"),
    503: OpenApiResponse(s.ErrorSerializer, description="A dependency is down (see Retry-After)"),
}


def _error_body(error: delivery.ProtocolError) -> dict[str, Any]:
    return {"error": {"code": error.code, "message": error.message}}


def _retry_after(response: HttpResponseBase, error: delivery.ProtocolError) -> HttpResponseBase:
    if error.retry_after is not None:
        response["Retry-After"] = str(error.retry_after)
    return response


class WidgetView(CrossOriginView):
    parser_classes = [StrictJSONParser, PlainTextJSONParser]

    def workspace(self, key: Any) -> Workspace:
        workspace = delivery.widget_workspace(key=key, origin=self.origin)
        self.granted_origin = self.origin
        if not delivery.key_rate_allows(workspace.pk):
            raise delivery.rate_limited()
        return workspace

    def handle_exception(self, exc: Exception) -> Response:
        if dependency_unavailable(exc):
            # The same answer for every key and origin, so granting it tells a foreign page
            # nothing, and the widget's fetch can read how long to wait (Retry-After).
            self.granted_origin = self.origin
        if isinstance(exc, delivery.ProtocolError):
            response = Response(_error_body(exc), status=exc.status)
            _retry_after(response, exc)
            return response
        return super().handle_exception(exc)


class WidgetBootstrapView(WidgetView):
    @extend_schema(
        summary="Widget: identify the user and get what they see (the socket's hello/welcome)",
        request=s.WidgetHelloSerializer,
        responses={200: s.WelcomeSerializer, **WIDGET_ERRORS},
    )
    def post(self, request: Request) -> Response:
        body = json_object(request)
        workspace = self.workspace(body.get("key"))
        end_user = delivery.session_open(workspace=workspace, hello=body)
        session = body.get("session") if isinstance(body.get("session"), str) else None
        user = body.get("user")
        answer = delivery.welcome(
            end_user=end_user,
            session=session,
            traits=user.get("traits") if isinstance(user, dict) else None,
            page=delivery.page_url(body),
            browser_locale=body.get("locale")
            or translations.first_accepted(request.META.get("HTTP_ACCEPT_LANGUAGE")),
        )
        delivery.announce_connected(end_user=end_user)
        return Response(answer)


class WidgetEventsView(WidgetView):
    @extend_schema(
        summary="Widget: record a batch of events (the socket's events/ack)",
        request=s.WidgetEventsSerializer,
        responses={200: s.WidgetAckSerializer, **WIDGET_ERRORS},
    )
    def post(self, request: Request) -> Response:
        body = json_object(request)
        workspace = self.workspace(body.get("key"))
        user = body.get("user")
        end_user = delivery.end_user_for(
            workspace=workspace,
            user_id=user.get("id") if isinstance(user, dict) else None,
            user_hash=body.get("user_hash"),
        )
        answer = delivery.events_receive(end_user=end_user, payload=body)
        return Response(answer)


class WidgetProgressView(WidgetView):
    @extend_schema(
        summary="Widget: the user's progress and push sequence (to resync after a gap)",
        parameters=[
            OpenApiParameter("key", str, required=True),
            OpenApiParameter("user", str, required=True),
            OpenApiParameter("user_hash", str),
        ],
        responses={200: s.WidgetProgressSerializer, **WIDGET_ERRORS},
    )
    def get(self, request: Request) -> Response:
        workspace = self.workspace(request.query_params.get("key"))
        end_user = delivery.end_user_for(
            workspace=workspace,
            user_id=request.query_params.get("user"),
            user_hash=request.query_params.get("user_hash"),
        )
        return Response(delivery.progress_snapshot(end_user=end_user))


def _stream_end_user(workspace: Workspace, params: dict[str, str]) -> EndUser:
    if not delivery.key_rate_allows(workspace.pk):
        raise delivery.rate_limited()
    return delivery.end_user_for(
        workspace=workspace, user_id=params.get("user"), user_hash=params.get("user_hash")
    )


def _refusal(error: delivery.ProtocolError, granted_origin: str | None) -> HttpResponseBase:
    response = JsonResponse(_error_body(error), status=error.status)
    return cors(_retry_after(response, error), granted_origin)


def _sse(message: dict[str, Any]) -> str:
    lines = [f"event: {message.get('type', 'message')}"]
    if "seq" in message:
        lines.insert(0, f"id: {message['seq']}")
    lines.append(f"data: {json.dumps(message, default=str)}")
    return "\n".join(lines) + "\n\n"


@csrf_exempt
async def widget_stream(request: HttpRequest) -> HttpResponseBase:
    origin = request.headers.get("Origin")
    params = dict(request.GET.items())
    try:
        workspace = await database_work(
            delivery.widget_workspace, key=params.get("key"), origin=origin
        )
    except delivery.ProtocolError as error:
        return _refusal(error, None)
    try:
        end_user = await database_work(_stream_end_user, workspace, params)
    except delivery.ProtocolError as error:
        return _refusal(error, origin)
    after_text = str(params.get("after") or request.headers.get("Last-Event-ID") or "")
    after = int(after_text) if after_text.isascii() and after_text.isdigit() else None
    layer = get_channel_layer()
    if layer is None:
        return JsonResponse(
            {"error": {"code": "no_channel_layer", "message": "None set."}}, status=503
        )
    channel = await layer.new_channel()
    groups = [realtime.end_user_group(end_user.pk), realtime.workspace_group(end_user.workspace_id)]
    for group in groups:
        await layer.group_add(group, channel)
    # Read after subscribing, so a push sent in between is either received or counted as missed.
    await database_sync_to_async(end_user.refresh_from_db)(fields=["push_sequence"])
    current = end_user.push_sequence

    async def events() -> AsyncIterator[str]:
        try:
            yield "retry: 3000\n\n"
            if after is not None and current > after:
                # Pushes were missed while away: tell the SDK to fetch progress again.
                yield _sse({"type": "resync", "seq": current})
            loop = asyncio.get_running_loop()
            deadline = loop.time() + STREAM_LIFETIME_SECONDS
            while loop.time() < deadline:
                try:
                    event = await asyncio.wait_for(layer.receive(channel), KEEP_ALIVE_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if event.get("type") == "push.to.client":
                    yield _sse(event["message"])
                elif event.get("type") == "workspace.notice":
                    message = await database_sync_to_async(delivery.content_message)(
                        end_user=end_user, session=params.get("session")
                    )
                    yield _sse(message)
        finally:
            for group in groups:
                await layer.group_discard(group, channel)

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return cors(response, origin)
