"""The widget's WebSocket endpoint, `/ws/widget/?key=pk_…`.

The key and the page's Origin are checked in connect(), before the socket is accepted (a
refusal is an HTTP 403 to the handshake). Then one `hello` identifies the end user; after that
`events` are recorded and acknowledged, and pushes for the user or the workspace arrive
through the channel layer groups. Handlers are named after message types.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from uvicorn.protocols.utils import ClientDisconnected

from onboarding import delivery, realtime
from onboarding.api.parsers import refuse_json_constant
from onboarding.models import EndUser, Workspace

logger = logging.getLogger(__name__)

# A frame larger than a full batch plus its envelope is refused without parsing it.
MAX_FRAME_BYTES_OVER_BATCH = 16 * 1024
CLOSE_TOO_BIG = 1009


class WidgetConsumer(AsyncWebsocketConsumer):
    workspace: Workspace
    end_user: EndUser | None = None
    session: str | None = None

    async def connect(self) -> None:
        query = parse_qs(self.scope.get("query_string", b"").decode())
        key = (query.get("key") or [""])[0]
        origin = None
        for name, value in self.scope.get("headers", []):
            if name == b"origin":
                origin = value.decode("latin-1")
        try:
            self.workspace = await database_sync_to_async(delivery.widget_workspace)(
                key=key, origin=origin
            )
        except delivery.ProtocolError as refusal:
            logger.info("widget socket refused: %s", refusal.code)
            await self.close()
            return
        self.rate = delivery.ConnectionRate(settings.MILEPOST_MAX_SOCKET_MESSAGES_PER_MINUTE)
        self.groups_joined: list[str] = []
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        raw = text_data if text_data is not None else (bytes_data or b"").decode("utf-8", "replace")
        limit = settings.MILEPOST_MAX_BATCH_BYTES + MAX_FRAME_BYTES_OVER_BATCH
        if len(raw.encode()) > limit:
            await self._error("frame_too_large", f"A message may be at most {limit} bytes.")
            await self.close(code=CLOSE_TOO_BIG)
            return
        if not self.rate.allows():
            await self._error(
                "rate_limited",
                f"More than {self.rate.limit} messages a minute on this connection; "
                "slow down and resend (unacknowledged events are kept by the SDK).",
            )
            return
        if not await database_sync_to_async(delivery.key_rate_allows)(self.workspace.pk):
            await self._error("rate_limited", "This key sends too many messages a minute.")
            return
        try:
            message = json.loads(raw, parse_constant=refuse_json_constant)
        except json.JSONDecodeError as error:
            await self._error("malformed_json", f"The message is not JSON: {error.msg}.")
            return
        except (ValueError, RecursionError):
            await self._error(
                "malformed_json",
                "The message is not JSON this server accepts (NaN, "
                "Infinity, numbers over 4300 digits and nesting deeper than ~1000 are refused).",
            )
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self._error("missing_type", "Every message is a JSON object with a `type`.")
            return
        handler = {
            "hello": self.on_hello,
            "events": self.on_events,
            "page": self.on_page,
        }.get(message["type"])
        if handler is None:
            await self._error("unknown_type", f"Unknown message type {message['type']!r}.")
            return
        try:
            await handler(message)
        except delivery.ProtocolError as error:
            await self.send_json(error.as_message())
        except ClientDisconnected:
            # The tab went away (navigation, close) before its answer: the SDK resends what
            # was not acknowledged from the next page.
            logger.debug("widget socket closed before its %r answer", message.get("type"))
        except Exception:
            # The socket stays up and the SDK keeps its unacknowledged events to resend.
            logger.exception("widget message %r failed", message.get("type"))
            await self._error("internal", "The server could not handle this message; retry.")

    async def on_hello(self, message: dict[str, Any]) -> None:
        session = message.get("session")
        self.session = session if isinstance(session, str) else None
        end_user = await database_sync_to_async(delivery.session_open)(
            workspace=self.workspace, hello=message
        )
        if self.end_user is not None and self.end_user.pk != end_user.pk:
            await self.channel_layer.group_discard(
                realtime.end_user_group(self.end_user.pk), self.channel_name
            )
        self.end_user = end_user
        for group in (
            realtime.end_user_group(end_user.pk),
            realtime.workspace_group(self.workspace.pk),
        ):
            if group not in self.groups_joined:
                await self.channel_layer.group_add(group, self.channel_name)
                self.groups_joined.append(group)
        user = message.get("user")
        await self.send_json(
            await database_sync_to_async(delivery.welcome)(
                end_user=end_user,
                session=self.session,
                traits=user.get("traits") if isinstance(user, dict) else None,
            )
        )
        # After joining the groups, so whatever a receiver pushes now reaches this socket.
        await database_sync_to_async(delivery.announce_connected)(end_user=end_user)

    async def on_events(self, message: dict[str, Any]) -> None:
        if self.end_user is None:
            raise delivery.ProtocolError("hello_first", "Send `hello` before `events`.")
        ack = await database_sync_to_async(delivery.events_receive)(
            end_user=self.end_user, payload=message
        )
        await self.send_json(ack)

    async def on_page(self, message: dict[str, Any]) -> None:
        if self.end_user is None:
            raise delivery.ProtocolError("hello_first", "Send `hello` before `page`.")
        # URL rules are applied by the SDK, which also records the `$pageview`; the server only
        # checks the message's shape.
        page = message.get("url")
        if not isinstance(page, str):
            raise delivery.ProtocolError("invalid_page", "page.url must be a string.")

    # Channel layer handlers --------------------------------------------------------------

    async def push_to_client(self, event: dict[str, Any]) -> None:
        await self.send_json(event["message"])

    async def workspace_notice(self, event: dict[str, Any]) -> None:
        if event["message"].get("type") == "content_changed" and self.end_user is not None:
            await self.send_json(
                await database_sync_to_async(delivery.content_message)(
                    end_user=self.end_user, session=self.session
                )
            )

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content, default=str))

    async def _error(self, code: str, message: str) -> None:
        await self.send_json({"type": "error", "code": code, "message": message})
