"""Realtime benchmark (not a test): `make bench` or `python bench/realtime.py [--quick]`.

Milepost's widget socket and events API in production mode (PostgreSQL + Redis, uvicorn with
1 and 2 workers started here as subprocesses), each figure beside a baseline measured in the
same run on the same machine, with the same worker count:

1. 500 sockets in a closed loop, a 1-event `events` message → `ack`: messages/s and round
   trip. Baseline: a raw ASGI echo (realtime_baselines.echo) with the same frame.
2. 500 `hello`s sent at once on 500 open sockets → `welcome`. Baseline: the echo.
3. With those 500 sockets idle, 20 new connections + `hello` a second: hello → welcome.
   Baseline: the echo.
4. An event that completes a milestone on a person's tab A → `progress` on their tab B, paced
   at several rates; pushes not there within the grace are lost. Baseline: a plain Channels
   consumer relaying A's frame to B through a group on the same Redis channel layer
   (realtime_baselines.relay_app).
5. `POST /api/v1/events` (batches of 500, several clients, ~5 % of events complete a
   milestone) against psycopg `executemany` of the same rows into a copy of the event table.
6. Idle memory per socket (worker RSS after N sockets said hello, minus before, / N).
   Baseline: the echo's.

Milestone completions caused by each figure are counted in the database and printed. Needs
PostgreSQL and Redis: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/milepost_bench,
created and migrated if missing) and REDIS_URL (default redis://127.0.0.1:6379/15).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import multiprocessing
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from ingest import ROOT, ensure_database, free_port, raw_executemany_rate  # noqa: E402

ORIGIN = "http://bench.localhost"
# Raised so that the load is measured, not refused (config/settings.py, the README's limits).
SERVER_LIMITS = {
    "MILEPOST_MAX_SOCKET_MESSAGES_PER_MINUTE": "1000000",
    "MILEPOST_MAX_MESSAGES_PER_KEY_PER_MINUTE": "100000000",
}
WINDOW = timedelta(days=7)
# key, event name, count; every one is reached within WINDOW of the journey's start (first seen).
EVENT_MILESTONES = [
    ("first-message", "message_sent", 1),
    ("three-messages", "message_sent", 3),
    ("campaign", "campaign_created", 1),
    ("contact", "contact_added", 1),
    ("report", "report_viewed", 1),
    ("invite", "teammate_invited", 1),
    ("integration", "integration_connected", 1),
    ("template", "template_saved", 1),
    ("domain", "domain_verified", 1),
]
# Figure 4: the message that completes each milestone for a person who has done none of these
# events before, taken in this order (after "first-message", two more messages make three).
COMPLETING = [
    ("first-message", ["message_sent"]),
    ("campaign", ["campaign_created"]),
    ("contact", ["contact_added"]),
    ("report", ["report_viewed"]),
    ("invite", ["teammate_invited"]),
    ("integration", ["integration_connected"]),
    ("template", ["template_saved"]),
    ("domain", ["domain_verified"]),
    ("three-messages", ["message_sent", "message_sent"]),
]
# Names that complete nothing.
FILLER_NAMES = ["page_viewed", "settings_opened", "search_used"]
# Figure 1: each socket walks this list from its own offset; the first lap completes
# first-message, campaign, contact and three-messages for its person.
LOOP_NAMES = [
    "message_sent",
    "page_viewed",
    "campaign_created",
    "message_sent",
    "contact_added",
    "settings_opened",
    "message_sent",
    "search_used",
]


# Numbers -------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def ms(value: float) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:.0f} ms" if value >= 100 else f"{value:.1f} ms"


def ratio(ours: float, baseline: float) -> str:
    if math.isnan(ours) or math.isnan(baseline) or baseline == 0:
        return "—"
    value = ours / baseline
    if value >= 100:
        return f"{value:,.0f}x"
    return f"{value:.3g}x"


def spread(values: list[float]) -> str:
    return (
        f"p50 {ms(percentile(values, 0.5))}, p99 {ms(percentile(values, 0.99))}, "
        f"max {ms(max(values) if values else math.nan)} (n={len(values)})"
    )


# Servers -------------------------------------------------------------------------------------


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def _machine_busy_ticks() -> int:
    """CPU ticks the whole machine spent busy (every process, ours or not)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4]  # less idle and iowait


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"resource_tracker" not in cmdline:
            found.append(int(entry.name))
    return found


class Server:
    """`uvicorn APP --workers N` on a free loopback port, its output kept in a log file."""

    started: list[Server] = []  # every server of this run, stopped again by main() at the end

    def __init__(self, name: str, app: list[str], workers: int, env: dict[str, str]) -> None:
        self.name = name
        self.app = app
        self.workers = workers
        self.env = env
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = Path(tempfile.mkstemp(prefix=f"bench-realtime-{name}-", suffix=".log")[1])

    def start(self, health_path: str) -> None:
        import httpx

        command = [
            sys.executable,
            "-m",
            "uvicorn",
            *self.app,
            "--workers",
            str(self.workers),
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        with self.log_path.open("ab") as log:
            Server.started.append(self)
            self.process = subprocess.Popen(  # noqa: S603 - our own server on loopback
                command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 90
        url = f"http://127.0.0.1:{self.port}{health_path}"
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not answer {url}: {self.log_tail()}")
            try:
                if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        # With several workers the port answers as soon as the first is up: wait until every
        # worker exists and has stopped burning CPU on its imports.
        while time.monotonic() < deadline:
            pids = self.worker_pids()
            before = [_cpu_ticks(pid) for pid in pids]
            time.sleep(0.5)
            after = [_cpu_ticks(pid) for pid in pids]
            if len(pids) == self.workers and all(
                b - a <= 2 for a, b in zip(before, after, strict=True)
            ):
                return
        raise RuntimeError(f"{self.name}: workers not settled: {self.log_tail()}")

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        if self.workers == 1:  # uvicorn serves in its own process then
            return [self.process.pid]
        return _children(self.process.pid)

    def rss_kb(self) -> int:
        return sum(_rss_kb(pid) for pid in self.worker_pids())

    def cpu_seconds(self) -> float:
        return sum(_cpu_ticks(pid) for pid in self.worker_pids()) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        # Workers left behind by a supervisor that died first.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def log_problems(self) -> tuple[int, list[str]]:
        """Lines of the server's output that report an error, and the first few distinct ones."""
        lines = self.log_path.read_text(errors="replace").splitlines()
        bad = [line for line in lines if " ERROR " in line or line.startswith("Traceback")]
        distinct: list[str] = []
        for line in bad:
            text = line.split(" ERROR ", 1)[-1][:160]
            if text not in distinct:
                distinct.append(text)
        return len(bad), distinct[:5]


async def settle(server: Server, cap: float = 15.0) -> None:
    """Wait until the server's workers use less than a tenth of a core, so that a figure does
    not start while the previous one's work (signals after commit, pushes) is still running."""
    deadline = time.monotonic() + cap
    while time.monotonic() < deadline:
        before = server.cpu_seconds()
        await asyncio.sleep(0.5)
        if server.cpu_seconds() - before < 0.05:
            return
    print(f"       ({server.name} still busy {cap:.0f} s later; measuring anyway)", flush=True)


# Client --------------------------------------------------------------------------------------


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


# Figures 2, 3 and 6: a burst of hellos, then arrivals beside the idle sockets -----------------


@dataclass
class SocketFigures:
    burst: list[float]
    burst_sockets: int
    arrivals: list[float]
    arrival_connects: list[float]
    arrivals_tried: int
    rss_before_kb: int
    rss_after_kb: int
    tally_burst: Tally
    tally_arrivals: Tally

    @property
    def kb_per_socket(self) -> float:
        if not self.burst_sockets:
            return math.nan
        return (self.rss_after_kb - self.rss_before_kb) / self.burst_sockets


async def warm_up(target: str, url: str, workers: int, prefix: str) -> None:
    """Touch every lazily imported path in each worker before anything is measured."""
    tally = Tally()
    tabs = await open_tabs([url] * 8 * workers, tally, timeout=60)
    await say_hello(target, tabs, [f"{prefix}-{i}" for i in range(len(tabs))], 60)
    for tab in tabs:
        if tab is not None:
            await tab.send(events_text(["page_viewed"]))
            await tab.answer(answer_type(target, "events"), 60)
    await close_tabs(tabs)


async def socket_figures(
    target: str, url: str, server: Server, *, sockets: int, arrival_rate: int, seconds: float
) -> SocketFigures:
    await warm_up(target, url, server.workers, "warm")
    await settle(server)
    rss_before = server.rss_kb()
    burst_tally = Tally()
    tabs = await open_tabs([url] * sockets, burst_tally, timeout=120)
    burst = await say_hello(target, tabs, [f"burst-{i}" for i in range(sockets)], timeout=120)
    await settle(server)  # the work a hello leaves behind (signals after commit)
    rss_after = server.rss_kb()

    arrival_tally = Tally()
    hellos: list[float] = []
    connects: list[float] = []
    new_tabs: list[Tab] = []
    count = int(arrival_rate * seconds)

    async def arrive(index: int) -> None:
        started = time.monotonic()
        opened = await open_tabs([url], arrival_tally, timeout=30)
        tab = opened[0]
        if tab is None:
            return
        new_tabs.append(tab)
        connects.append((time.monotonic() - started) * 1000)
        hellos.extend(await say_hello(target, [tab], [f"arrival-{index}"], timeout=30))

    began = time.monotonic()
    arrivals = []
    for index in range(count):
        await asyncio.sleep(max(0.0, began + index / arrival_rate - time.monotonic()))
        arrivals.append(asyncio.create_task(arrive(index)))
    await asyncio.gather(*arrivals)
    await close_tabs([*tabs, *new_tabs])
    return SocketFigures(
        burst=burst,
        burst_sockets=sum(tab is not None for tab in tabs),
        arrivals=hellos,
        arrival_connects=connects,
        arrivals_tried=count,
        rss_before_kb=rss_before,
        rss_after_kb=rss_after,
        tally_burst=burst_tally,
        tally_arrivals=arrival_tally,
    )


# Figure 1: the closed loop, in client processes --------------------------------------------


@dataclass
class LoopResult:
    sockets: int
    seconds: float
    answered_in_window: int
    latencies: list[float]
    unanswered: int
    sent: int
    tally: Tally
    processes: int
    server_cpu: float  # cores busy in the server's workers during the window
    client_cpu: list[float]  # the same for each client process
    machine_cpu: float  # every process of the machine, the bench's or not
    setup_seconds: float

    @property
    def rate(self) -> float:
        return self.answered_in_window / self.seconds


async def _loop_client(spec: dict[str, Any], ready: Any, go: Any, start_at: Any) -> dict[str, Any]:
    from websockets.exceptions import ConnectionClosed

    target = spec["target"]
    tally = Tally()
    setup_started = time.monotonic()
    tabs = await open_tabs([spec["url"]] * spec["sockets"], tally, timeout=spec["setup_timeout"])
    if target == "milepost":
        await say_hello(target, tabs, spec["users"], timeout=spec["setup_timeout"])
    sockets = [tab for tab in tabs if tab is not None]
    # The loop reads its own answers; the readers only served the hellos.
    for tab in sockets:
        tab.closing = True
        tab.reader.cancel()
        with contextlib.suppress(BaseException):
            await tab.reader
    setup_seconds = time.monotonic() - setup_started
    try:
        await asyncio.to_thread(ready.wait, spec["barrier_timeout"])
        await asyncio.to_thread(go.wait, 30)
    except threading.BrokenBarrierError:
        await close_tabs(sockets)
        return {"error": "the processes did not all get ready in time", **tally.as_dict()}
    start = start_at.value
    window_start = start + spec["warmup"]
    window_end = window_start + spec["seconds"]
    drain_end = window_end + spec["drain"]
    kind = answer_type(target, "events")
    latencies: list[float] = []
    counts = Counter[str]()
    loop = asyncio.get_running_loop()

    cpu: dict[str, float] = {}

    async def cpu_in_window() -> None:
        await asyncio.sleep(max(0.0, window_start - time.monotonic()))
        cpu["start"] = time.process_time()
        await asyncio.sleep(max(0.0, window_end - time.monotonic()))
        cpu["end"] = time.process_time()

    async def run(index: int, tab: Tab) -> None:
        names = LOOP_NAMES[index % len(LOOP_NAMES) :] + LOOP_NAMES[: index % len(LOOP_NAMES)]
        waiting = False
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        try:
            async with asyncio.timeout_at(loop.time() + (drain_end - time.monotonic())):
                for lap in range(10**9):
                    sent_at = time.monotonic()
                    if sent_at >= window_end:
                        return
                    await tab.ws.send(events_text([names[lap % len(names)]]))
                    counts["sent"] += 1
                    waiting = True
                    while True:
                        message = json.loads(await tab.ws.recv())
                        if message.get("type") in (kind, "error"):
                            break
                        tally.other[str(message.get("type"))] += 1
                    done_at = time.monotonic()
                    waiting = False
                    if message["type"] == "error":
                        tally.errors[str(message.get("code"))] += 1
                        continue
                    if target == "milepost":
                        tally.count_ack(message)
                    if window_start <= done_at < window_end:
                        counts["answered_in_window"] += 1
                    # Every round trip answered from the window's start on, those still in
                    # flight at its end included: against a slow server (a round of 500
                    # taking seconds) a rule on the send time would leave no samples.
                    if done_at >= window_start:
                        latencies.append((done_at - sent_at) * 1000)
        except TimeoutError:
            pass
        except ConnectionClosed:
            tally.closes[close_label(tab.ws)] += 1
        if waiting:
            counts["unanswered"] += 1

    await asyncio.gather(cpu_in_window(), *(run(index, tab) for index, tab in enumerate(sockets)))
    await close_tabs(sockets)
    return {
        "cpu": (cpu["end"] - cpu["start"]) / spec["seconds"],
        "latencies": latencies,
        "sockets": len(sockets),
        "setup_seconds": setup_seconds,
        **counts,
        **tally.as_dict(),
    }


def _loop_process(spec: dict[str, Any], ready: Any, go: Any, start_at: Any, out: Any) -> None:
    raise_open_files_limit()
    try:
        result = run_async(_loop_client(spec, ready, go, start_at))
    except Exception as error:
        result = {"error": f"{type(error).__name__}: {error}"}
    out.put(result)


def closed_loop(
    target: str,
    url: str,
    server: Server,
    *,
    sockets: int,
    processes: int,
    seconds: float,
    warmup: float,
    drain: float,
    prefix: str,
) -> LoopResult:
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(processes + 1)
    go = context.Barrier(processes + 1)
    start_at = context.Value("d", 0.0)
    out = context.Queue()
    setup_timeout = 180.0
    shares = [sockets // processes + (i < sockets % processes) for i in range(processes)]
    workers = []
    for number, share in enumerate(shares):
        spec = {
            "target": target,
            "url": url,
            "sockets": share,
            "users": [f"{prefix}-{number}-{i}" for i in range(share)],
            "setup_timeout": setup_timeout,
            "barrier_timeout": setup_timeout + 60,
            "seconds": seconds,
            "warmup": warmup,
            "drain": drain,
        }
        process = context.Process(target=_loop_process, args=(spec, ready, go, start_at, out))
        process.start()
        workers.append(process)
    results: list[dict[str, Any]] = []
    try:
        server_cpu = machine_cpu = math.nan
        with contextlib.suppress(threading.BrokenBarrierError):
            ready.wait(setup_timeout + 30)
            run_async(settle(server))
            start_at.value = time.monotonic() + 0.5
            go.wait(30)
            # The workers' CPU over the measured window, in cores (1.0 = one core busy).
            pids = server.worker_pids()
            time.sleep(max(0.0, start_at.value + warmup - time.monotonic()))
            before = sum(_cpu_ticks(pid) for pid in pids)
            machine_before = _machine_busy_ticks()
            time.sleep(max(0.0, start_at.value + warmup + seconds - time.monotonic()))
            ticks = os.sysconf("SC_CLK_TCK")
            server_cpu = (sum(_cpu_ticks(pid) for pid in pids) - before) / ticks / seconds
            machine_cpu = (_machine_busy_ticks() - machine_before) / ticks / seconds
        for _ in workers:
            results.append(out.get(timeout=setup_timeout + warmup + seconds + drain + 60))
    finally:
        for process in workers:
            process.join(10)
            if process.is_alive():
                process.terminate()
                process.join(5)
    tally = Tally()
    latencies: list[float] = []
    for result in results:
        tally.add({name: result.get(name, {}) for name in tally.as_dict()})
        latencies.extend(result.get("latencies", []))
        if "error" in result:
            tally.failures[f"client process: {result['error']}"] += 1
    return LoopResult(
        sockets=sum(r.get("sockets", 0) for r in results),
        seconds=seconds,
        answered_in_window=sum(r.get("answered_in_window", 0) for r in results),
        latencies=latencies,
        unanswered=sum(r.get("unanswered", 0) for r in results),
        sent=sum(r.get("sent", 0) for r in results),
        tally=tally,
        processes=processes,
        server_cpu=server_cpu,
        machine_cpu=machine_cpu,
        client_cpu=[r["cpu"] for r in results if "cpu" in r],
        setup_seconds=max((r.get("setup_seconds", 0.0) for r in results), default=math.nan),
    )


# Figure 4: a push to the person's other tab -------------------------------------------------


@dataclass
class RateResult:
    rate: int
    planned: int
    sent: int = 0
    send_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    lost: int = 0
    late: int = 0  # of the lost, arrived after the grace but before the tabs closed
    backlog: int = 0  # events of this rate still not acknowledged when the next one started
    seq_gaps: int = 0

    @property
    def achieved(self) -> float:
        return self.sent / self.send_seconds if self.send_seconds else math.nan


@dataclass
class PushResult:
    pairs: int
    setup_seconds: float
    rates: list[RateResult]
    tally: Tally
    exhausted: bool = False


async def pushes(
    target: str,
    server: Server,
    url_for: Callable[[int], str],
    *,
    pairs: int,
    rates: list[tuple[int, float]],
    grace: float,
    drain: float,
) -> PushResult:
    """Tab A of person j sends; tab B of the same person times the push. Milepost: A's event
    completes a milestone j has not reached, B waits for its `progress`. Relay: A's frame is
    group_sent to the pair's group, B waits for it."""
    tally = Tally()
    setup_started = time.monotonic()
    urls = [url_for(j) for j in range(pairs) for _ in "AB"]
    tabs = await open_tabs(urls, tally, timeout=120)
    if target == "milepost":
        users = [f"pair-{j}" for j in range(pairs) for _ in "AB"]
        kind = answer_type(target, "hello")
        started = time.monotonic()
        for tab, user in zip(tabs, users, strict=True):
            if tab is not None:
                await tab.send(hello_text(user))
        seq: dict[int, int] = {}
        for index, tab in enumerate(tabs):
            if tab is not None:
                got = await tab.answer(kind, max(5.0, 180 - (time.monotonic() - started)))
                if got is not None and index % 2:
                    seq[index // 2] = int(got[1].get("seq") or 0)
    setup_seconds = time.monotonic() - setup_started

    pending: dict[tuple[int, str], float] = {}
    expired: dict[tuple[int, str], RateResult] = {}
    outstanding = Counter[str]()  # acks (Milepost) or A's own copies (relay) still to come
    current: list[RateResult] = []

    def on_b(j: int) -> Callable[[float, str], None]:
        def listen(at: float, text: str) -> None:
            message = json.loads(text)
            if target == "milepost":
                if message.get("type") != "progress":
                    tally.other[f"tab B: {message.get('type')}"] += 1
                    return
                number = int(message.get("seq") or 0)
                if j in seq and number > seq[j] + 1:
                    current[-1].seq_gaps += number - seq[j] - 1
                seq[j] = max(seq.get(j, 0), number)
                key = (j, str(message.get("completed")))
            else:
                key = (j, str(message.get("k")))
            sent_at = pending.pop(key, None)
            if sent_at is not None and at - sent_at <= grace:
                current[-1].latencies.append((at - sent_at) * 1000)
            elif sent_at is not None:  # later than the grace: lost, though it came
                current[-1].lost += 1
                current[-1].late += 1
            elif key in expired:
                expired.pop(key).late += 1
            else:
                tally.other["tab B: push for nothing sent"] += 1

        return listen

    def on_a(at: float, text: str) -> None:
        message = json.loads(text)
        kind = message.get("type")
        if kind in ("ack", "events"):
            outstanding["answers"] -= 1
            if kind == "ack":
                tally.count_ack(message)
        elif kind == "error":
            outstanding["answers"] -= 1
            tally.errors[str(message.get("code"))] += 1
        elif kind != "progress":  # A is a tab of the same person: it gets the push too
            tally.other[f"tab A: {kind}"] += 1

    live = [j for j in range(pairs) if tabs[2 * j] is not None and tabs[2 * j + 1] is not None]
    for j in live:
        a, b = tabs[2 * j], tabs[2 * j + 1]
        assert a is not None
        assert b is not None
        # Whatever arrived before (welcome, hello's pushes) is not part of the figure.
        a.listener, b.listener = on_a, on_b(j)
    next_slot = dict.fromkeys(live, 0)
    result = PushResult(pairs=len(live), setup_seconds=setup_seconds, rates=[], tally=tally)
    cursor = 0
    for rate, seconds in rates:
        await settle(server)
        planned = int(rate * seconds)
        current.append(RateResult(rate=rate, planned=planned))
        began = time.monotonic()
        for n in range(planned):
            await asyncio.sleep(max(0.0, began + n / rate - time.monotonic()))
            for _ in range(len(live)):
                j = live[cursor % len(live)]
                cursor += 1
                if target != "milepost" or next_slot[j] < len(COMPLETING):
                    break
            else:
                result.exhausted = True
                break
            a = tabs[2 * j]
            assert a is not None
            if target == "milepost":
                key, names = COMPLETING[next_slot[j]]
                next_slot[j] += 1
                text = events_text(names)
            else:
                key = f"{rate}-{n}"
                text = json.dumps({"type": "events", "k": key, "pad": "x" * 120})
            pending[(j, key)] = time.monotonic()
            if not await a.send(text):
                pending.pop((j, key))
                continue
            outstanding["answers"] += 1
            current[-1].sent += 1
        current[-1].send_seconds = time.monotonic() - began
        last_sent = time.monotonic()
        while pending and time.monotonic() < last_sent + grace:
            await asyncio.sleep(0.05)
        current[-1].lost += len(pending)
        expired.update(dict.fromkeys(pending, current[-1]))
        pending.clear()
        while outstanding["answers"] > 0 and time.monotonic() < last_sent + grace + drain:
            await asyncio.sleep(0.05)
        current[-1].backlog = max(0, outstanding["answers"])
        result.rates.append(current[-1])
        if result.exhausted:
            break
    await close_tabs(tabs)
    return result


# Figure 5: the server API's events endpoint ------------------------------------------------


@dataclass
class HttpResult:
    events: int
    seconds: float
    statuses: Counter[int]
    acks: Counter[str]
    latencies: list[float]
    raw_rate: float
    completions: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds


async def post_batches(
    port: int, secret_key: str, batches: list[list[dict[str, Any]]], clients: int
) -> tuple[float, Counter[int], Counter[str], list[float]]:
    import httpx

    statuses = Counter[int]()
    acks = Counter[str]()
    latencies: list[float] = []
    queue = list(reversed(batches))

    async def client_loop(client: httpx.AsyncClient) -> None:
        while queue:
            batch = queue.pop()
            started = time.monotonic()
            try:
                response = await client.post("/api/v1/events", json={"events": batch})
            except httpx.HTTPError as error:
                statuses[-1] += 1
                acks[f"transport error: {type(error).__name__}"] += len(batch)
                continue
            latencies.append((time.monotonic() - started) * 1000)
            statuses[response.status_code] += 1
            if response.status_code == 200:
                body = response.json()
                for key in ("accepted", "duplicates", "rejected"):
                    acks[key] += len(body.get(key) or [])

    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {secret_key}"},
        timeout=120,
        trust_env=False,
        limits=httpx.Limits(max_connections=clients),
    ) as client:
        started = time.monotonic()
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
        elapsed = time.monotonic() - started
    return elapsed, statuses, acks, latencies


def http_batches(user_ids: list[str], total: int, batch: int) -> list[list[dict[str, Any]]]:
    """`total` events over the people, 1 in 20 completing a milestone (campaign, then
    contact, for each person in turn), the rest names that complete nothing. Timestamped now:
    after the people's journeys started."""
    now = datetime.now(UTC)
    completing = ["campaign_created", "contact_added"]
    events = []
    for i in range(total):
        if i % 20 == 0:
            k = i // 20
            user = user_ids[k % len(user_ids)]
            name = completing[(k // len(user_ids)) % len(completing)]
        else:
            user = user_ids[i % len(user_ids)]
            name = FILLER_NAMES[i % len(FILLER_NAMES)]
        events.append(
            {
                "id": str(uuid.uuid4()),
                "user_id": user,
                "name": name,
                "timestamp": (now + timedelta(microseconds=i)).isoformat(),
                "properties": {"plan": "trial", "n": i},
            }
        )
    return [events[i : i + batch] for i in range(0, total, batch)]


# Database ------------------------------------------------------------------------------------


def setup_database() -> None:
    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed_workspace() -> tuple[Any, dict[str, str]]:
    from onboarding import services
    from onboarding.models import Criterion, Journey, JourneyStart, Milestone

    slug = f"bench-rt-{uuid.uuid4().hex[:8]}"
    workspace, keys = services.workspace_create(name=slug, slug=slug, origins=[ORIGIN])
    journey = Journey.objects.create(
        workspace=workspace, key="trial", name="Trial", starts_on=JourneyStart.FIRST_SEEN
    )
    for position, (key, event_name, count) in enumerate(EVENT_MILESTONES):
        Milestone.objects.create(
            workspace=workspace,
            journey=journey,
            key=key,
            name=key,
            position=position,
            criterion=Criterion.EVENT,
            event_name=event_name,
            min_count=count,
            window=WINDOW,
            counts_toward_pql=key in ("campaign", "contact"),
        )
    services.content_publish(obj=journey)
    return workspace, keys


@dataclass
class DatabaseMark:
    completion: int
    event: int


def database_mark() -> DatabaseMark:
    from django.db.models import Max

    from onboarding.models import Event, MilestoneCompletion

    return DatabaseMark(
        completion=MilestoneCompletion.objects.aggregate(m=Max("id"))["m"] or 0,
        event=Event.objects.aggregate(m=Max("id"))["m"] or 0,
    )


def caused_since(workspace: Any, mark: DatabaseMark) -> tuple[int, Counter[str], int]:
    """Events stored, and milestone completions by milestone, since `mark`."""
    from onboarding.models import Event, MilestoneCompletion

    completions = Counter(
        MilestoneCompletion.objects.filter(workspace=workspace, pk__gt=mark.completion)
        .values_list("milestone__key", flat=True)
        .iterator()
    )
    events = Event.objects.filter(workspace=workspace, pk__gt=mark.event).count()
    return events, completions, sum(completions.values())


def describe_completions(completions: Counter[str]) -> str:
    if not completions:
        return "none"
    return ", ".join(f"{key} {count}" for key, count in sorted(completions.items()))


# Orchestration -------------------------------------------------------------------------------


class LoadWatch:
    """The machine's 1-minute load average, sampled every few seconds during the run."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(5):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadWatch:
        self.samples.append(os.getloadavg()[0])
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> str:
        return (
            f"{min(self.samples):.1f}-{max(self.samples):.1f} "
            f"(mean {statistics.mean(self.samples):.1f})"
        )


@dataclass
class Options:
    workers: list[int]
    sockets: int
    seconds: float
    warmup: float
    drain: float
    arrival_rate: int
    arrival_seconds: float
    rates: list[tuple[int, float]]
    grace: float
    push_drain: float
    http_events: int
    http_batch: int
    http_clients: int
    http_users: int
    client_processes: int


def server_env() -> dict[str, str]:
    env = {**os.environ, **SERVER_LIMITS}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def milepost_server(workers: int) -> Server:
    return Server("milepost", ["config.asgi:application"], workers, server_env())


def echo_server(workers: int) -> Server:
    return Server(
        "echo", ["realtime_baselines:echo", "--app-dir", str(BENCH)], workers, server_env()
    )


def relay_server(workers: int) -> Server:
    return Server(
        "relay",
        ["realtime_baselines:relay_app", "--factory", "--app-dir", str(BENCH)],
        workers,
        server_env(),
    )


@dataclass
class Run:
    """Every figure of one worker count, for Milepost and its baselines."""

    workers: int
    sockets: dict[str, SocketFigures] = field(default_factory=dict)
    loops: dict[str, LoopResult] = field(default_factory=dict)
    pushes: dict[str, PushResult] = field(default_factory=dict)
    http: HttpResult | None = None
    notes: list[str] = field(default_factory=list)  # milestone completions, by figure
    closes: Counter[str] = field(default_factory=Counter)  # by target, figure and close code
    servers: list[Server] = field(default_factory=list)


def serve(run: Run, make: Callable[[int], Server], health: str) -> Server:
    server = make(run.workers)
    run.servers.append(server)
    server.start(health)
    return server


def say(text: str) -> None:
    print(text, flush=True)


def measure(options: Options, workers: int) -> Run:
    run = Run(workers=workers)
    workspace, keys = seed_workspace()
    widget_path = f"/ws/widget/?key={keys['publishable_key']}"
    token = uuid.uuid4().hex[:8]
    say(f"\n== {workers} worker(s) ==  workspace {workspace.slug}")

    def socket_phase(name: str, server: Server, url: str) -> None:
        mark = database_mark()
        figures = run_async(
            socket_figures(
                name,
                url,
                server,
                sockets=options.sockets,
                arrival_rate=options.arrival_rate,
                seconds=options.arrival_seconds,
            )
        )
        run.sockets[name] = figures
        say(f"  [{name}] 2. {figures.burst_sockets} hellos at once: {spread(figures.burst)}")
        say(f"       {figures.tally_burst.summary()}")
        say(
            f"  [{name}] 3. {len(figures.arrivals)}/{figures.arrivals_tried} arrivals at "
            f"{options.arrival_rate}/s: hello {spread(figures.arrivals)}; "
            f"connect {spread(figures.arrival_connects)}"
        )
        say(f"       {figures.tally_arrivals.summary()}")
        for figure, tally in (("2", figures.tally_burst), ("3", figures.tally_arrivals)):
            run.closes.update({f"{name} fig {figure}: {c}": n for c, n in tally.closes.items()})
        say(
            f"  [{name}] 6. RSS {figures.rss_before_kb / 1024:.1f} → "
            f"{figures.rss_after_kb / 1024:.1f} MB: {figures.kb_per_socket:.1f} KB per socket"
        )
        if name == "milepost":
            events, _, _ = caused_since(workspace, mark)
            say(f"       warm-up events stored {events}")

    def loop_phase(name: str, server: Server, url: str) -> None:
        mark = database_mark()
        result = closed_loop(
            name,
            url,
            server,
            sockets=options.sockets,
            processes=options.client_processes,
            seconds=options.seconds,
            warmup=options.warmup,
            drain=options.drain,
            prefix=f"loop-{token}",
        )
        run.loops[name] = result
        say(
            f"  [{name}] 1. closed loop, {result.sockets} sockets from {result.processes} client "
            f"processes (set up in {result.setup_seconds:.1f} s): {result.rate:.0f} msg/s, "
            f"round trip {spread(result.latencies)}; sent {result.sent}, "
            f"unanswered after {options.drain:.0f} s drain {result.unanswered}"
        )
        say(
            f"       CPU in the window, in cores: server workers {result.server_cpu:.2f}, "
            "client processes "
            + ", ".join(f"{cpu:.2f}" for cpu in result.client_cpu)
            + f"; the whole machine {result.machine_cpu:.2f} of {os.cpu_count()}"
        )
        say(f"       {result.tally.summary()}")
        run.closes.update({f"{name} fig 1: {c}": n for c, n in result.tally.closes.items()})
        if name == "milepost":
            events, completions, total = caused_since(workspace, mark)
            say(
                f"       database: {events} events stored, {total} milestone completions "
                f"({describe_completions(completions)})"
            )
            run.notes.append(f"1. closed loop {total} ({describe_completions(completions)})")

    def push_phase(name: str, server: Server, url_for: Callable[[int], str]) -> None:
        mark = database_mark()
        total = sum(int(rate * seconds) for rate, seconds in options.rates)
        pairs = math.ceil(total / len(COMPLETING) * 1.05)
        result = run_async(
            pushes(
                name,
                server,
                url_for,
                pairs=pairs,
                rates=options.rates,
                grace=options.grace,
                drain=options.push_drain,
            )
        )
        run.pushes[name] = result
        say(
            f"  [{name}] 4. {result.pairs} people with 2 tabs each "
            f"(set up in {result.setup_seconds:.1f} s)"
        )
        for rate in result.rates:
            say(
                f"       {rate.rate}/s (sent {rate.sent} at {rate.achieved:.0f}/s): "
                f"{spread(rate.latencies)}; lost {rate.lost} (not there within "
                f"{options.grace:.0f} s; {rate.late} of them came later); "
                f"seq gaps {rate.seq_gaps}; events still unanswered "
                f"{options.push_drain:.0f} s later: {rate.backlog}"
            )
        if result.exhausted:
            say("       (the pool ran out of milestones to complete)")
        say(f"       {result.tally.summary()}")
        run.closes.update({f"{name} fig 4: {c}": n for c, n in result.tally.closes.items()})
        if name == "milepost":
            events, completions, total_done = caused_since(workspace, mark)
            sent = sum(rate.sent for rate in result.rates)
            say(
                f"       database: {events} events stored, {total_done} milestone completions "
                f"for {sent} completing messages ({describe_completions(completions)})"
            )
            run.notes.append(f"4. pushes {total_done} for {sent} completing messages")

    # Baselines first, each on its own server with the same worker count.
    server = serve(run, echo_server, "/")
    try:
        socket_phase("echo", server, f"ws://127.0.0.1:{server.port}/ws/")
        loop_phase("echo", server, f"ws://127.0.0.1:{server.port}/ws/")
    finally:
        server.stop()
    server = serve(run, relay_server, "/")
    try:
        push_phase(
            "relay",
            server,
            lambda j: f"ws://127.0.0.1:{server.port}/ws/?group=bench-relay.{token}.{j}",
        )
    finally:
        server.stop()

    # Milepost, restarted between figures so that one figure's backlog cannot slow the next.
    server = serve(run, milepost_server, "/api/v1/health")
    try:
        socket_phase("milepost", server, f"ws://127.0.0.1:{server.port}{widget_path}")
    finally:
        server.stop()
    server = serve(run, milepost_server, "/api/v1/health")
    try:
        loop_phase("milepost", server, f"ws://127.0.0.1:{server.port}{widget_path}")
    finally:
        server.stop()
    server = serve(run, milepost_server, "/api/v1/health")
    try:
        push_phase("milepost", server, lambda j: f"ws://127.0.0.1:{server.port}{widget_path}")
    finally:
        server.stop()
    server = serve(run, milepost_server, "/api/v1/health")
    try:
        run.http = http_phase(options, workspace, keys, server)
        run.notes.append(
            f"5. events API {run.http.completions} for {options.http_events // 20} "
            "completing events"
        )
    finally:
        server.stop()
    return run


def http_phase(
    options: Options, workspace: Any, keys: dict[str, str], server: Server
) -> HttpResult:
    from onboarding import recording

    started = time.monotonic()
    user_ids = [f"http-{i}" for i in range(options.http_users)]
    for external_id in user_ids:
        recording.end_user_identify(
            workspace=workspace, external_id=external_id, traits={"plan": "trial"}
        )
    identified = time.monotonic() - started
    batches = http_batches(user_ids, options.http_events, options.http_batch)
    mark = database_mark()
    elapsed, statuses, acks, latencies = run_async(
        post_batches(server.port, keys["secret_key"], batches, options.http_clients)
    )
    events, completions, total = caused_since(workspace, mark)
    raw = raw_executemany_rate(workspace, batches)
    result = HttpResult(
        events=options.http_events,
        seconds=elapsed,
        statuses=statuses,
        acks=acks,
        latencies=latencies,
        raw_rate=raw,
        completions=total,
    )
    say(
        f"  [milepost] 5. POST /api/v1/events: {options.http_events} events in batches of "
        f"{options.http_batch} from {options.http_clients} clients ({len(user_ids)} people "
        f"identified first in {identified:.1f} s): {result.rate:.0f} events/s; "
        f"request {spread(latencies)}"
    )
    say(f"       statuses {dict(statuses)}; acks {dict(acks)}; raw executemany {raw:.0f} rows/s")
    say(
        f"       database: {events} events stored, {total} milestone completions "
        f"({describe_completions(completions)}) for {options.http_events // 20} completing events"
    )
    return result


def table(runs: list[Run], options: Options) -> list[str]:
    lines = [
        "| workers | figure | Milepost | baseline | ratio (Milepost ÷ baseline) |",
        "|---|---|---|---|---|",
    ]

    def row(workers: int, figure: str, ours: float, base: float, fmt: Callable[[float], str]):
        lines.append(f"| {workers} | {figure} | {fmt(ours)} | {fmt(base)} | {ratio(ours, base)} |")

    def rate(value: float) -> str:
        return "—" if math.isnan(value) else f"{value:,.0f}/s"

    def kb(value: float) -> str:
        return "—" if math.isnan(value) else f"{value:.1f} KB"

    for run in runs:
        w = run.workers
        ours_loop, echo_loop = run.loops.get("milepost"), run.loops.get("echo")
        if ours_loop and echo_loop:
            n = options.sockets
            row(w, f"1. closed loop, {n} sockets: messages/s", ours_loop.rate, echo_loop.rate, rate)
            for q, label in ((0.5, "p50"), (0.99, "p99")):
                row(
                    w,
                    f"1. closed loop: round trip {label}",
                    percentile(ours_loop.latencies, q),
                    percentile(echo_loop.latencies, q),
                    ms,
                )
        ours_s, echo_s = run.sockets.get("milepost"), run.sockets.get("echo")
        if ours_s and echo_s:
            for q, label in ((0.5, "p50"), (0.99, "p99"), (1.0, "max")):
                row(
                    w,
                    f"2. {options.sockets} hellos at once → welcome {label}",
                    percentile(ours_s.burst, q),
                    percentile(echo_s.burst, q),
                    ms,
                )
            for q, label in ((0.5, "p50"), (0.99, "p99")):
                row(
                    w,
                    f"3. {options.arrival_rate} new sockets/s beside {options.sockets} idle: "
                    f"hello → welcome {label}",
                    percentile(ours_s.arrivals, q),
                    percentile(echo_s.arrivals, q),
                    ms,
                )
        ours_p, relay_p = run.pushes.get("milepost"), run.pushes.get("relay")
        if ours_p and relay_p:
            for ours_r, relay_r in zip(ours_p.rates, relay_p.rates, strict=False):
                for q, label in ((0.5, "p50"), (0.99, "p99")):
                    row(
                        w,
                        f"4. push to the other tab at {ours_r.rate}/s: {label}",
                        percentile(ours_r.latencies, q),
                        percentile(relay_r.latencies, q),
                        ms,
                    )
                lines.append(
                    f"| {w} | 4. push at {ours_r.rate}/s: lost (not there within "
                    f"{options.grace:.0f} s) | {ours_r.lost} of {ours_r.sent} | "
                    f"{relay_r.lost} of {relay_r.sent} | — |"
                )
        if run.http:
            row(
                w,
                "5. POST /api/v1/events: events/s (baseline: raw executemany rows/s)",
                run.http.rate,
                run.http.raw_rate,
                rate,
            )
        if ours_s and echo_s:
            row(w, "6. idle memory per socket", ours_s.kb_per_socket, echo_s.kb_per_socket, kb)
    return lines


def parse_options() -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="uvicorn worker counts, e.g. 1,2")
    parser.add_argument("--quick", action="store_true", help="fewer sockets, shorter phases")
    parser.add_argument("--sockets", type=int, help="sockets of figures 1, 2, 3, 6 (500)")
    parser.add_argument("--seconds", type=float, help="closed loop window (10)")
    parser.add_argument("--rates", help="push rates/s:seconds (25:10,200:10,1000:3)")
    parser.add_argument("--grace", type=float, help="a push later than this is lost (10)")
    parser.add_argument("--http-events", type=int, help="events POSTed (20000)")
    parser.add_argument("--http-clients", type=int, default=4)
    parser.add_argument(
        "--client-processes", type=int, default=2, help="client processes of the closed loop"
    )
    args = parser.parse_args()
    quick = args.quick
    rates = args.rates or ("25:3,200:3,1000:1" if quick else "25:10,200:10,1000:3")
    http_events = args.http_events or (5_000 if quick else 20_000)
    return Options(
        workers=[int(w) for w in args.workers.split(",")],
        sockets=args.sockets or (200 if quick else 500),
        seconds=args.seconds or (3 if quick else 10),
        warmup=1,
        drain=10 if quick else 15,
        arrival_rate=20,
        arrival_seconds=3 if quick else 10,
        rates=[(int(r), float(s)) for r, s in (part.split(":") for part in rates.split(","))],
        grace=args.grace or (5 if quick else 10),
        push_drain=10 if quick else 20,
        http_events=http_events,
        http_batch=500,
        http_clients=args.http_clients,
        http_users=max(1, http_events // 40),
        client_processes=args.client_processes,
    )


def main() -> None:
    options = parse_options()
    raise_open_files_limit()
    setup_database()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    began = time.monotonic()
    runs: list[Run] = []
    with LoadWatch() as load:
        say(
            f"realtime bench: workers {options.workers}, {os.cpu_count()} cores, load average "
            f"{os.getloadavg()[0]:.1f} at the start; DATABASE_URL "
            f"{os.environ['DATABASE_URL']}, REDIS_URL {os.environ['REDIS_URL']}"
        )
        say(
            f"closed loop driven by {options.client_processes} client processes (asyncio + "
            "websockets + uvloop); the other figures by this process; no compression"
        )
        try:
            for workers in options.workers:
                run = measure(options, workers)
                runs.append(run)
                for server in run.servers:
                    bad, first = server.log_problems()
                    if bad:
                        say(
                            f"  {server.name} server log {server.log_path}: {bad} error lines, "
                            f"e.g. {first}"
                        )
        finally:
            for server in Server.started:
                server.stop()
                if not server.log_problems()[0]:
                    server.log_path.unlink(missing_ok=True)
    say(
        f"\nTotal {time.monotonic() - began:.0f} s; load average (1 min) during the run "
        f"{load.summary()}\n"
    )
    for line in table(runs, options):
        say(line)
    for run in runs:
        say(f"\n{run.workers} worker(s): milestone completions recorded in the database: ")
        for note in run.notes:
            say(f"  {note}")
        closes = ", ".join(f"{key}: {count}" for key, count in sorted(run.closes.items()))
        say(f"  sockets closed by the server: {closes or 'none'}")


if __name__ == "__main__":
    main()
