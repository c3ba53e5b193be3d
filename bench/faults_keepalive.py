"""The fault suite's `keepalive` scenario (run through bench/faults.py): why the soak's server API
requests ended in `httpx.ReadError` now and then, shown on purpose instead of by chance.

uvicorn closes an idle HTTP connection after `--timeout-keep-alive` seconds (5 by default), and
httpx (so Milepost's Python client too) reuses an idle pooled connection for up to its
`keepalive_expiry` (5 s by default). A request sent on a connection idle for just under 5 s
reaches a server that is closing it: the server never reads it, the kernel answers with a reset,
and the client gets `ReadError` (or `RemoteProtocolError` on a clean close). Nothing was stored
(the request was never read), so a client that retries loses nothing, but it pays a failed
round trip; a client that does not retry reports a failure.

Here clients wait between their requests for just about the idle timeout, against a server with
uvicorn's default and, at the same time, one with Milepost's setting (KEEP_ALIVE_SECONDS, longer
than any client's or load balancer's idle timeout), and count the failures of each.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from typing import Any

from faults_stack import KEEP_ALIVE_SECONDS, load_average, new_events, stack, workspace_create

UVICORN_DEFAULT_KEEP_ALIVE = 5


async def _client(
    base: str, secret: str, stop_at: float, outcomes: collections.Counter[str]
) -> None:
    """One client on its own pooled connection (httpx's defaults, as the Python client has),
    pausing about the idle timeout between requests."""
    import httpx

    async with httpx.AsyncClient(timeout=30) as http:
        while time.monotonic() < stop_at:
            try:
                answer = await http.post(
                    f"{base}/api/v1/events",
                    json={"events": new_events(1, "kept_alive", "keeper")},
                    headers={"Authorization": f"Bearer {secret}"},
                )
                outcomes[f"answer {answer.status_code}"] += 1
            except httpx.HTTPError as error:
                outcomes[type(error).__name__] += 1
            await asyncio.sleep(UVICORN_DEFAULT_KEEP_ALIVE + random.uniform(-0.15, 0.05))


async def keepalive(clients: int = 50, seconds: float = 90.0) -> dict[str, Any]:
    from asgiref.sync import sync_to_async

    with stack() as running:
        _, keys = await sync_to_async(workspace_create)("keepalive")
        servers = {
            f"uvicorn's default ({UVICORN_DEFAULT_KEEP_ALIVE} s)": running.uvicorn(
                "uvicorn-default-keep-alive", keep_alive=UVICORN_DEFAULT_KEEP_ALIVE
            ),
            f"Milepost's setting ({KEEP_ALIVE_SECONDS} s)": running.uvicorn(
                "uvicorn-milepost-keep-alive"
            ),
        }
        outcomes = {name: collections.Counter[str]() for name in servers}
        stop_at = time.monotonic() + seconds
        await asyncio.gather(
            *(
                _client(base, keys["secret_key"], stop_at, outcomes[name])
                for name, base in servers.items()
                for _ in range(clients)
            )
        )
        return {
            "clients per server (each its own connection, ~5 s between requests)": clients,
            "seconds": seconds,
            "outcomes by server keep-alive": {name: dict(c) for name, c in outcomes.items()},
            "load average at the end": load_average(),
            "server tracebacks": running.tracebacks(),
        }
