"""Serve Milepost (HTTP + WebSocket on one port) and the demo host app, for `make run`."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils.module_loading import import_string

# uvicorn closes an idle connection after 5 s by default, just when an HTTP client that keeps
# connections 5 s (httpx) may reuse it: that request fails unread. Longer than any client's or
# load balancer's idle timeout (README, Production; the fault suite's `keepalive`).
KEEP_ALIVE_SECONDS = 75


class Command(BaseCommand):
    help = "Serve Milepost through uvicorn, with the demo host app on a second port."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--demo-port", type=int, default=8001, help="0 serves no demo host app."
        )

    def handle(self, *args: Any, host: str, port: int, demo_port: int, **options: Any) -> None:
        asyncio.run(self._serve(host, port, demo_port))

    async def _serve(self, host: str, port: int, demo_port: int) -> None:
        servers = [
            uvicorn.Server(
                # No access log: it would write every visitor's IP address (README, Privacy).
                uvicorn.Config(
                    "milepost.asgi:application",
                    host=host,
                    port=port,
                    lifespan="on",  # milepost/lifespan.py: the worker set up before it serves
                    access_log=False,
                    timeout_keep_alive=KEEP_ALIVE_SECONDS,
                )
            )
        ]
        if demo_port:
            # The demo host app is a customer's app: it lives on another origin than Milepost.
            servers.append(
                uvicorn.Server(
                    uvicorn.Config(
                        "milepost.demo_host:application",
                        host="localhost" if host == "127.0.0.1" else host,
                        port=demo_port,
                        lifespan="off",
                        # uvicorn's access logger is one for the process: a second server
                        # with it on would turn it on for Milepost's too.
                        access_log=False,
                    )
                )
            )
        # Work that runs beside the servers in the embedded mode, e.g. the engagement
        # scheduler; named in settings so this command imports no app above onboarding.
        background = [
            asyncio.ensure_future(import_string(path)())
            for path in getattr(settings, "MILEPOST_BACKGROUND_TASKS", [])
        ]
        try:
            await asyncio.gather(*(server.serve() for server in servers))
        finally:
            for task in background:
                task.cancel()
