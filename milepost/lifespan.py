"""A worker's start: the ASGI lifespan, which uvicorn runs before the worker accepts anything.

What a worker would otherwise set up for its first connections is set up here, before any: the
URL configuration (the API's views and its OpenAPI schema), a database connection on each of
its database threads, the channel layer's Redis connection and subscriber, and the producer
that queues the journey rollups' refresh. Then everything loaded so far, which lives as long as
the process, is frozen out of the cyclic garbage collector's sight (`gc.freeze()`): a full
collection walks only what was made since, mostly the connections' own objects, and pauses the
worker's event loop that much less (bench/README.md, "A worker's start").

A step that fails (PostgreSQL or Redis not reachable yet) is logged and left to the first
connection that needs it: the worker starts anyway, and /api/v1/ready says what is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from channels.layers import get_channel_layer
from django.db import connection
from django.urls import get_resolver

from analytics import rollup_refresh
from onboarding import batching

logger = logging.getLogger(__name__)

# How long the database threads may take to connect before the worker starts without them.
CONNECT_SECONDS = 10.0


async def _urls() -> None:
    get_resolver().url_patterns  # noqa: B018 - imports the URL configuration and its views


def _connect() -> None:
    """On a database thread: its connection made, then given back (to the pool on PostgreSQL,
    which keeps it open) before the thread waits for the others: a pool smaller than the
    threads is then enough."""
    connection.ensure_connection()
    connection.close()


async def _database() -> None:
    pool = batching.database_pool()
    await asyncio.to_thread(pool.on_each_thread, _connect, CONNECT_SECONDS)


async def _channel_layer() -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    # What a socket does: a channel of its own and a reader on it; the reader cancelled
    # unsubscribes again (onboarding/consumers.py, _stopped).
    channel = await layer.new_channel()
    reader = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader


async def _rollup_refresh() -> None:
    rollup_refresh.prepare()


STEPS: list[tuple[str, Callable[[], Awaitable[None]]]] = [
    ("URL configuration", _urls),
    ("database threads", _database),
    ("channel layer", _channel_layer),
    ("rollup refresh queueing", _rollup_refresh),
]


async def worker_start() -> None:
    for name, step in STEPS:
        try:
            await step()
        except Exception as error:
            logger.warning("worker start: %s not set up (%r); the first use will", name, error)
    gc.collect()
    gc.freeze()


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The `lifespan` protocol of milepost.asgi's router."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await worker_start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
