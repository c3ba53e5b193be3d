"""The two baselines of bench/realtime.py, served by uvicorn like Milepost itself.

- `echo`: a raw ASGI WebSocket app that accepts and echoes every text frame (no Django).
  `uvicorn realtime_baselines:echo --app-dir bench`
- `relay_app()`: a plain Channels `AsyncWebsocketConsumer` that joins the group named by its
  `?group=` query parameter and `group_send`s every text frame to that group, over the same
  channel layer as Milepost in production (`RedisPubSubChannelLayer` on REDIS_URL).
  `uvicorn realtime_baselines:relay_app --factory --app-dir bench`

The relay's Django settings are configured here, in code, the smallest set Channels needs:
no database, no middleware, only the channel layer. Both answer any HTTP request with 200 so
the bench can tell when a worker is up.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]
Receive = Any
Send = Any


async def _http_ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await _http_ok(scope, receive, send)
        return
    if scope["type"] == "lifespan":
        await _lifespan(scope, receive, send)
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        elif message.get("bytes") is not None:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


def relay_app() -> Any:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="bench-realtime-relay-only",  # noqa: S106 - a loopback benchmark
            INSTALLED_APPS=["channels"],
            DATABASES={},
            USE_TZ=True,
            CHANNEL_LAYERS={
                "default": {
                    "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                    "CONFIG": {"hosts": [os.environ["REDIS_URL"]]},
                }
            },
        )
        django.setup()

    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.routing import ProtocolTypeRouter

    class Relay(AsyncWebsocketConsumer):
        group = "bench-relay"

        async def connect(self) -> None:
            query = parse_qs(self.scope.get("query_string", b"").decode())
            self.group = (query.get("group") or ["bench-relay"])[0]
            await self.channel_layer.group_add(self.group, self.channel_name)
            await self.accept()

        async def disconnect(self, code: int) -> None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

        async def receive(
            self, text_data: str | None = None, bytes_data: bytes | None = None
        ) -> None:
            await self.channel_layer.group_send(
                self.group, {"type": "relay.message", "text": text_data or ""}
            )

        async def relay_message(self, event: dict[str, Any]) -> None:
            await self.send(text_data=event["text"])

    return ProtocolTypeRouter(
        {"http": _http_ok, "lifespan": _lifespan, "websocket": Relay.as_asgi()}
    )
