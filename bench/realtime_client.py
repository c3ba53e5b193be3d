"""The WebSocket client of bench/realtime.py: asyncio + `websockets` on uvloop, with the
workspace's Origin, no permessage-deflate (the same for every target, so the figures measure the
servers' work) and no client pings. A `Tab` is one open socket read by its own task; a `Tally`
counts what happened on a figure's sockets besides the measured answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from realtime_seed import ORIGIN


def raise_open_files_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run_async(coroutine: Any) -> Any:
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvicorn[standard] installs it
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coroutine)


def hello_text(user_id: str) -> str:
    return json.dumps({"type": "hello", "user": {"id": user_id, "traits": {}}})


def events_text(names: Iterable[str]) -> str:
    now = datetime.now(UTC).isoformat()
    return json.dumps(
        {
            "type": "events",
            "events": [
                {"id": str(uuid.uuid4()), "name": name, "timestamp": now, "properties": {}}
                for name in names
            ],
        }
    )


def answer_type(target: str, sent: str) -> str:
    """What answers a frame: Milepost's protocol, or the echo of the frame itself."""
    if target == "milepost":
        return {"hello": "welcome", "events": "ack"}[sent]
    return sent


def close_label(ws: Any) -> str:
    received = ws.protocol.close_rcvd
    if received is None:
        return "1006 (no close frame)"
    return f"{received.code} {received.reason}".strip()


async def ws_connect(url: str, timeout: float) -> Any:
    import websockets

    # No compression (the same for every target, so the figures measure the servers' own
    # work), no proxy, and no client pings that a busy client could time out on.
    return await websockets.connect(
        url,
        origin=ORIGIN,
        compression=None,
        proxy=None,
        ping_interval=None,
        open_timeout=timeout,
        close_timeout=2,
        max_size=None,
    )


@dataclass
class Tally:
    """What happened on the sockets of one figure besides the measured answers."""

    closes: Counter[str] = field(default_factory=Counter)  # closed by the server: close code
    failures: Counter[str] = field(default_factory=Counter)  # connects and answers that failed
    other: Counter[str] = field(default_factory=Counter)  # unexpected message types
    errors: Counter[str] = field(default_factory=Counter)  # `error` messages by code
    acks: Counter[str] = field(default_factory=Counter)  # accepted / duplicates / rejected

    def add(self, other: dict[str, dict[str, int]]) -> None:
        for name, counts in other.items():
            getattr(self, name).update(counts)

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {
            name: dict(getattr(self, name))
            for name in ("closes", "failures", "other", "errors", "acks")
        }

    def count_ack(self, message: dict[str, Any]) -> None:
        for key in ("accepted", "duplicates", "rejected"):
            self.acks[key] += len(message.get(key) or [])

    def summary(self) -> str:
        parts = []
        for name in ("acks", "errors", "closes", "failures", "other"):
            counts = getattr(self, name)
            if counts:
                parts.append(f"{name}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        return "; ".join(parts) or "no errors, no closes by the server"


class Tab:
    """One open socket read by its own task; the server's close codes are tallied."""

    def __init__(self, ws: Any, tally: Tally) -> None:
        self.ws = ws
        self.tally = tally
        self.closing = False
        self.inbox: asyncio.Queue[tuple[float, str | None]] = asyncio.Queue()
        self.listener: Callable[[float, str], None] | None = None
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for text in self.ws:
                now = time.monotonic()
                if self.listener is not None:
                    self.listener(now, str(text))
                else:
                    self.inbox.put_nowait((now, str(text)))
        except ConnectionClosed:
            pass
        finally:
            if not self.closing:
                self.tally.closes[close_label(self.ws)] += 1
            self.inbox.put_nowait((time.monotonic(), None))

    async def answer(self, kind: str, timeout: float) -> tuple[float, dict[str, Any]] | None:
        """The next message of type `kind` (or an `error`), or None on close or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                at, text = await asyncio.wait_for(
                    self.inbox.get(), max(0.0, deadline - time.monotonic())
                )
            except TimeoutError:
                self.tally.failures[f"no {kind} within {timeout:.0f} s"] += 1
                return None
            if text is None:
                self.inbox.put_nowait((at, None))
                self.tally.failures[f"closed before {kind}"] += 1
                return None
            message = json.loads(text)
            if message.get("type") == kind:
                return at, message
            if message.get("type") == "error":
                self.tally.errors[str(message.get("code"))] += 1
                return None
            self.tally.other[str(message.get("type"))] += 1

    async def send(self, text: str) -> bool:
        from websockets.exceptions import ConnectionClosed

        try:
            await self.ws.send(text)
        except ConnectionClosed:
            self.tally.failures["send on a closed socket"] += 1
            return False
        return True

    async def close(self) -> None:
        self.closing = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 3)
        self.reader.cancel()
        with contextlib.suppress(BaseException):
            await self.reader


async def open_tabs(
    urls: list[str], tally: Tally, *, timeout: float, concurrency: int = 100
) -> list[Tab | None]:
    gate = asyncio.Semaphore(concurrency)

    async def one(url: str) -> Tab | None:
        async with gate:
            try:
                return Tab(await ws_connect(url, timeout), tally)
            except Exception as error:
                tally.failures[f"connect: {type(error).__name__} {error}"[:90]] += 1
                return None

    return list(await asyncio.gather(*(one(url) for url in urls)))


async def close_tabs(tabs: Iterable[Tab | None]) -> None:
    await asyncio.gather(*(tab.close() for tab in tabs if tab is not None))


async def say_hello(
    target: str, tabs: list[Tab | None], users: list[str], timeout: float
) -> list[float]:
    """Send every hello at once, then wait for the answers; returns the round trips in ms."""
    kind = answer_type(target, "hello")
    started: dict[int, float] = {}
    for index, (tab, user) in enumerate(zip(tabs, users, strict=True)):
        if tab is not None:
            started[index] = time.monotonic()
            if not await tab.send(hello_text(user)):
                del started[index]

    async def answer(index: int) -> float | None:
        tab = tabs[index]
        assert tab is not None
        got = await tab.answer(kind, timeout)
        return None if got is None else (got[0] - started[index]) * 1000

    answers = await asyncio.gather(*(answer(index) for index in started))
    return [value for value in answers if value is not None]
