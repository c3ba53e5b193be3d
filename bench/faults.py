"""Fault suite (not a test): `make faults`, or `python bench/faults.py [scenario …]`.

Real processes on this machine, each run with its OWN PostgreSQL (initdb + pg_ctl from
/usr/lib/postgresql/*/bin in a temporary directory) and its OWN Redis (redis-server), both on
free loopback ports, so that killing them touches nobody else's. Milepost runs as it does in
production: uvicorn workers and Celery workers on that PostgreSQL and Redis. Scenarios:

1. `drops`: 100 000 events from 200 clients through a proxy that drops 5 % of the responses
   (the server did the work, the client never hears); clients retry the same batch. Expected:
   exactly 100 000 stored, every id once.
2. `outages`: steady ingest (server API and widget HTTP) while Redis is killed for 20 s and
   PostgreSQL stopped for 30 s; clients retry until acknowledged. Counted: answers by status
   (500s, 503s), events acknowledged but not stored (lost), events stored twice (duplicated).
3. `fanout`: N uvicorn processes and M Celery workers on one Redis: a push from any of them
   reaches a socket held by any other.

Each scenario is bounded in time and prints its figures; bench/README.md keeps them. Nothing
here gates CI.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import glob
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "milepost.settings")
# The harness reads the database between awaits (counts, seeding); no server code runs here.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
PG_BIN = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1])
ORIGIN = "http://faults.localhost"
# Raised so that the load is measured, not refused (the README's limits).
SERVER_LIMITS = {
    "MILEPOST_MAX_SOCKET_MESSAGES_PER_MINUTE": "1000000",
    "MILEPOST_MAX_MESSAGES_PER_KEY_PER_MINUTE": "100000000",
    "MILEPOST_MAX_API_REQUESTS_PER_MINUTE": "100000000",
}


# Ports come from FAULTS_PORTS ("first-last", e.g. 18700-18799 on a shared machine) when it is
# set, else from the kernel; a port handed out once is not handed out again by this process.
_PORTS_GIVEN: set[int] = set()


def free_port() -> int:
    first, _, last = os.environ.get("FAULTS_PORTS", "").partition("-")
    candidates = range(int(first), int(last) + 1) if first and last else [0] * 50
    for candidate in candidates:
        if candidate in _PORTS_GIVEN:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            port = int(probe.getsockname()[1])
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port
    raise RuntimeError(f"no free port in FAULTS_PORTS={os.environ.get('FAULTS_PORTS')}")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# Our own services -------------------------------------------------------------------------


class Postgres:
    """A throw-away cluster in `base`, run as the `postgres` user when we are root."""

    def __init__(self, base: Path) -> None:
        self.base = base / "pg"
        self.data = self.base / "data"
        self.port = free_port()
        self.base.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(  # noqa: S603 - our own binaries and arguments
            [*prefix, *command], check=True, capture_output=True, cwd=self.base
        )

    def init(self) -> None:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust")
        self.start()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1"
        options += " -c max_connections=200"
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.base / "log"),
            "-o", options, "-w", "start",
        )  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str = "milepost") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"


class Redis:
    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class Process:
    """A Milepost process (uvicorn or Celery) with its output in a log file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with self.log_path.open("ab") as output:
            self.process = subprocess.Popen(  # noqa: S603
                command,
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)

    def tracebacks(self) -> int:
        return self.log_path.read_text(errors="replace").count("Traceback (most recent call last)")


@dataclass
class Stack:
    """Our PostgreSQL and Redis, and the Milepost processes started on them."""

    base: Path
    postgres: Postgres
    redis: Redis
    processes: list[Process] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            **SERVER_LIMITS,
            "DATABASE_URL": self.postgres.url(),
            "REDIS_URL": self.redis.url,
            "SECRET_KEY": "milepost-faults-only",
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            **extra,
        }

    def uvicorn(self, name: str, workers: int = 1) -> str:
        port = free_port()
        command = [sys.executable, "-m", "uvicorn", "milepost.asgi:application"]
        command += ["--port", str(port), "--workers", str(workers), "--no-access-log"]
        self.processes.append(Process(name, command, self.env(), self.base))
        base = f"http://127.0.0.1:{port}"
        wait_until_up(f"{base}/api/v1/health")
        return base

    def celery(self, name: str) -> Process:
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo"]
        command += ["--loglevel=WARNING", "--without-mingle", "--without-gossip", "-n", name]
        process = Process(name, command, self.env(), self.base)
        self.processes.append(process)
        return process

    def tracebacks(self) -> int:
        return sum(process.tracebacks() for process in self.processes)


def wait_until_up(url: str, seconds: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer")


@contextlib.contextmanager
def stack() -> Iterator[Stack]:
    base = Path(tempfile.mkdtemp(prefix="milepost-faults-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        base.chmod(0o777)
    running = Stack(base, Postgres(base), Redis())
    try:
        running.postgres.init()
        running.redis.start()
        subprocess.run(  # noqa: S603
            [
                *(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(running.postgres.port)),
                *("-U", "postgres", "milepost"),
            ],
            check=True,
        )
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v0"],
            cwd=ROOT,
            env=running.env(),
            check=True,
        )
        os.environ.update(running.env())
        import django

        django.setup()
        yield running
    finally:
        # Whatever happened, nothing of this run is left running.
        for process in running.processes:
            process.stop()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        with contextlib.suppress(Exception):
            running.postgres.stop("fast")
        running.redis.kill()
        shutil.rmtree(base, ignore_errors=True)


def workspace_create(name: str) -> tuple[Any, dict[str, str]]:
    from onboarding import services

    slug = f"{name}-{uuid.uuid4().hex[:6]}"
    workspace, keys = services.workspace_create(name=slug, slug=slug, origins=[ORIGIN])
    return workspace, keys


def stored_ids(workspace_id: int) -> collections.Counter[str]:
    from django.db import connection

    from onboarding.models import Event

    connection.close()  # back to the pool, which replaces it if a restart broke it

    return collections.Counter(
        str(i)
        for i in Event.objects.filter(workspace_id=workspace_id).values_list("client_id", flat=True)
    )


def new_events(count: int, name: str, user_id: str | None = None) -> list[dict[str, Any]]:
    """Events with fresh ids, as now; `user_id` for the server API (the widget's say no user)."""
    person = {} if user_id is None else {"user_id": user_id}
    at = datetime.now(UTC).isoformat()
    return [
        {"id": str(uuid.uuid4()), "name": name, "timestamp": at, **person} for _ in range(count)
    ]


# 1. Dropped responses -----------------------------------------------------------------------


class DroppingProxy:
    """A TCP proxy in front of the server: one connection carries one request; for `rate` of
    them the server's whole answer is read and thrown away and the client's connection closed."""

    def __init__(self, upstream_port: int, rate: float, seed: int = 14) -> None:
        self.upstream_port = upstream_port
        self.rate = rate
        self.random = random.Random(seed)
        self.dropped = 0
        self.port = 0
        self.handlers: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self.server = server

    async def stop(self) -> None:
        self.server.close()
        for handler in list(self.handlers):
            handler.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)

    async def _handle(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        current = asyncio.current_task()
        if current is not None:
            self.handlers.add(current)
            current.add_done_callback(self.handlers.discard)
        drop = self.random.random() < self.rate
        try:
            up_in, up_out = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_out.close()
            return

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while chunk := await reader.read(65536):
                    if writer is not None:
                        writer.write(chunk)
                        await writer.drain()
            if writer is not None:
                with contextlib.suppress(OSError):
                    writer.write_eof()

        upward = asyncio.create_task(pipe(client_in, up_out))
        await pipe(up_in, None if drop else client_out)
        if drop:
            self.dropped += 1
        upward.cancel()
        for writer in (up_out, client_out):
            writer.close()


@dataclass
class Tally:
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    acknowledged: set[str] = field(default_factory=set)
    duplicates_answered: int = 0
    given_up: set[str] = field(default_factory=set)
    retries: int = 0


async def send_until_acknowledged(
    http: Any,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    tally: Tally,
    deadline: float,
    on_answer: Callable[[str], None] | None = None,
) -> bool:
    """Post the batch until it is acknowledged (200), as the SDK and a careful server client
    would: the same ids each time, waiting as Retry-After says (at most 3 s), else 0.2-0.5 s."""
    import httpx

    ids = [event["id"] for event in body["events"]]
    first = True
    while time.monotonic() < deadline:
        if not first:
            tally.retries += 1
        first = False
        try:
            answer = await http.post(url, json=body, headers=headers)
        except httpx.HTTPError as error:
            tally.statuses[type(error).__name__] += 1
            if on_answer is not None:
                on_answer(type(error).__name__)
            await asyncio.sleep(0.2 + random.random() * 0.3)
            continue
        tally.statuses[str(answer.status_code)] += 1
        if on_answer is not None:
            on_answer(str(answer.status_code))
        if answer.status_code == 200:
            reply = answer.json()
            tally.acknowledged.update(reply["accepted"])
            tally.acknowledged.update(reply["duplicates"])
            tally.duplicates_answered += len(reply["duplicates"])
            if reply["rejected"]:
                raise RuntimeError(f"events rejected: {reply['rejected'][:2]}")
            return True
        wait = answer.headers.get("Retry-After")
        await asyncio.sleep(min(float(wait), 3.0) if wait and wait.isdigit() else 0.5)
    tally.given_up.update(ids)
    return False


async def drops(
    clients: int = 200, events_per_client: int = 500, batch: int = 50
) -> dict[str, Any]:
    import httpx
    from asgiref.sync import sync_to_async

    with stack() as running:
        base = running.uvicorn("uvicorn-drops", workers=2)
        workspace, keys = await sync_to_async(workspace_create)("drops")
        proxy = DroppingProxy(int(base.rsplit(":", 1)[1]), rate=0.05)
        await proxy.start()
        url = f"http://127.0.0.1:{proxy.port}/api/v1/events"
        # One request per connection, so that a dropped answer is a closed connection.
        headers = {"Authorization": f"Bearer {keys['secret_key']}", "Connection": "close"}
        tally = Tally()
        sent: set[str] = set()
        deadline = time.monotonic() + 900
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=0)

        async def client(number: int, http: httpx.AsyncClient) -> None:
            for start in range(0, events_per_client, batch):
                events = new_events(batch, "message_sent", f"c{number}-u{(start // batch) % 5}")
                sent.update(e["id"] for e in events)
                await send_until_acknowledged(
                    http, url, {"events": events}, headers, tally, deadline
                )

        log(f"drops: {clients} clients x {events_per_client} events through a 5 % dropping proxy")
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=60, limits=limits) as http:
            await asyncio.gather(*(client(n, http) for n in range(clients)))
        elapsed = time.monotonic() - started
        stored = await sync_to_async(stored_ids)(workspace.pk)
        result = {
            "events sent (distinct ids)": len(sent),
            "requests": sum(tally.statuses.values()),
            "responses dropped by the proxy": proxy.dropped,
            "retries": tally.retries,
            "answers": dict(tally.statuses),
            "ids answered as duplicates on retry": tally.duplicates_answered,
            "stored": sum(stored.values()),
            "stored ids not sent": len(set(stored) - sent),
            "sent ids not stored": len(sent - set(stored)),
            "ids stored more than once": sum(1 for n in stored.values() if n > 1),
            "given up": len(tally.given_up),
            "seconds": round(elapsed, 1),
            "events/s": round(len(sent) / elapsed),
            "server tracebacks": running.tracebacks(),
        }
        await proxy.stop()
        return result


# 2. Redis and PostgreSQL outages ------------------------------------------------------------


async def outages(
    api_clients: int = 40, widget_clients: int = 10, batch: int = 20
) -> dict[str, Any]:
    import httpx
    from asgiref.sync import sync_to_async

    with stack() as running:
        base = running.uvicorn("uvicorn-outages", workers=2)
        workspace, keys = await sync_to_async(workspace_create)("outages")
        tallies = {"server API": Tally(), "widget HTTP": Tally()}
        phase_statuses: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )
        phase = "before"
        sent: set[str] = set()
        producing_until = time.monotonic() + 100
        deadline = time.monotonic() + 180

        def on_answer(status: str) -> None:
            phase_statuses[phase][status] += 1

        async def api_client(number: int, http: httpx.AsyncClient) -> None:
            tally = tallies["server API"]
            headers = {"Authorization": f"Bearer {keys['secret_key']}"}
            while time.monotonic() < producing_until:
                events = new_events(batch, "message_sent", f"api-{number}")
                sent.update(e["id"] for e in events)
                await send_until_acknowledged(
                    http, f"{base}/api/v1/events", {"events": events}, headers, tally, deadline,
                    on_answer,
                )  # fmt: skip
                await asyncio.sleep(0.2)

        async def widget_client(number: int, http: httpx.AsyncClient) -> None:
            tally = tallies["widget HTTP"]
            headers = {"Origin": ORIGIN}
            user = {"id": f"widget-{number}"}
            while time.monotonic() < deadline:
                try:
                    answer = await http.post(
                        f"{base}/api/v1/widget/bootstrap",
                        json={"key": keys["publishable_key"], "user": user},
                        headers=headers,
                    )
                    tally.statuses[f"bootstrap {answer.status_code}"] += 1
                    phase_statuses[phase][f"bootstrap {answer.status_code}"] += 1
                    if answer.status_code == 200:
                        break
                except httpx.HTTPError as error:
                    tally.statuses[f"bootstrap {type(error).__name__}"] += 1
                    phase_statuses[phase][f"bootstrap {type(error).__name__}"] += 1
                await asyncio.sleep(0.5)
            while time.monotonic() < producing_until:
                events = new_events(batch, "page_viewed")
                sent.update(e["id"] for e in events)
                body = {"key": keys["publishable_key"], "user": user, "events": events}
                await send_until_acknowledged(
                    http, f"{base}/api/v1/widget/events", body, headers, tally, deadline,
                    lambda status: on_answer(f"events {status}"),
                )  # fmt: skip
                await asyncio.sleep(0.2)

        async def faults() -> list[str]:
            nonlocal phase
            timeline = []
            started = time.monotonic()

            async def at(second: float) -> None:
                await asyncio.sleep(max(0.0, started + second - time.monotonic()))

            await at(10)
            running.redis.kill()
            phase = "Redis down"
            timeline.append(f"{time.monotonic() - started:.0f} s: Redis killed (SIGKILL)")
            await at(30)
            running.redis.start()
            phase = "after Redis"
            timeline.append(f"{time.monotonic() - started:.0f} s: Redis started again")
            await at(45)
            await asyncio.to_thread(running.postgres.stop, "immediate")
            phase = "PostgreSQL down"
            timeline.append(f"{time.monotonic() - started:.0f} s: PostgreSQL stopped (immediate)")
            await at(75)
            await asyncio.to_thread(running.postgres.start)
            phase = "after PostgreSQL"
            timeline.append(f"{time.monotonic() - started:.0f} s: PostgreSQL started again")
            return timeline

        log(
            "outages: steady ingest; Redis killed at 10 s for 20 s, "
            "PostgreSQL stopped at 45 s for 30 s"
        )
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=200)) as http:
            timeline, *_ = await asyncio.gather(
                faults(),
                *(api_client(n, http) for n in range(api_clients)),
                *(widget_client(n, http) for n in range(widget_clients)),
            )
        stored = await sync_to_async(stored_ids)(workspace.pk)
        acknowledged = set().union(*(t.acknowledged for t in tallies.values()))
        given_up = set().union(*(t.given_up for t in tallies.values()))
        return {
            "timeline": timeline,
            "events sent (distinct ids)": len(sent),
            "answers by phase": {name: dict(counts) for name, counts in phase_statuses.items()},
            "answers by client": {name: dict(t.statuses) for name, t in tallies.items()},
            "answers of 500": sum(
                n for t in tallies.values() for s, n in t.statuses.items() if s.endswith("500")
            ),
            "answers of 503": sum(
                n for t in tallies.values() for s, n in t.statuses.items() if s.endswith("503")
            ),
            "acknowledged": len(acknowledged),
            "lost (acknowledged, not stored)": len(acknowledged - set(stored)),
            "duplicated (stored more than once)": sum(1 for n in stored.values() if n > 1),
            "stored ids not sent": len(set(stored) - sent),
            "never acknowledged (client gave up at the deadline)": len(given_up),
            "of which stored anyway": len(given_up & set(stored)),
            "server tracebacks": running.tracebacks(),
        }


# 3. Pushes across processes -----------------------------------------------------------------


def fanout_seed(servers: int) -> tuple[Any, dict[str, str], list[str]]:
    from engagement.models import Message, Rule, Trigger
    from onboarding import services
    from onboarding.models import Criterion, Journey, Milestone

    workspace, keys = workspace_create("fanout")
    journey = Journey.objects.create(workspace=workspace, key="trial", name="Trial")
    milestones = [f"reported-by-{origin}" for origin in range(servers)]
    for position, key in enumerate(milestones):
        Milestone.objects.create(
            workspace=workspace, journey=journey, key=key, name=key,
            criterion=Criterion.SERVER, position=position + 1,
        )  # fmt: skip
    services.content_publish(obj=journey)
    message = Message.objects.create(
        workspace=workspace, key="hi", name="Hi", title="Hello from a worker", body="Hi."
    )
    Rule.objects.create(
        workspace=workspace, key="on-ping", name="On ping", trigger=Trigger.EVENT,
        event_name="ping", message=message, once_per_user=False,
    )  # fmt: skip
    return workspace, keys, milestones


async def fanout(servers: int = 3, workers: int = 2) -> dict[str, Any]:
    import httpx
    import websockets
    from asgiref.sync import sync_to_async

    with stack() as running:
        workspace, keys, milestones = await sync_to_async(fanout_seed)(servers)
        bases = [running.uvicorn(f"uvicorn-{n}") for n in range(servers)]
        for n in range(workers):
            running.celery(f"celery-{n}@faults")
        await asyncio.sleep(5)  # the workers connect to the broker
        headers = {"Authorization": f"Bearer {keys['secret_key']}"}
        sockets: dict[tuple[int, int], Any] = {}
        # One person per (holder, origin) pair, their socket on the holder's process.
        for holder in range(servers):
            for origin in range(servers):
                url = (
                    bases[holder].replace("http", "ws")
                    + f"/ws/widget/?key={keys['publishable_key']}"
                )
                connection = await websockets.connect(url, origin=ORIGIN)  # type: ignore[arg-type]
                await connection.send(
                    json.dumps({"type": "hello", "user": {"id": f"h{holder}-o{origin}"}})
                )
                assert json.loads(await connection.recv())["type"] == "welcome"
                sockets[(holder, origin)] = connection

        async def received(connection: Any, kind: str) -> bool:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    while True:
                        if json.loads(await connection.recv()).get("type") == kind:
                            return True
            return False

        progress: dict[str, int] = collections.Counter()
        messages: dict[str, int] = collections.Counter()
        async with httpx.AsyncClient(timeout=30) as http:
            # A milestone reported to process `origin` pushes progress to the socket on `holder`.
            for (holder, origin), connection in sockets.items():
                answer = await http.post(
                    f"{bases[origin]}/api/v1/users/h{holder}-o{origin}/milestones/{milestones[origin]}",
                    headers=headers,
                )
                assert answer.status_code in (200, 201), answer.text
                arrived = await received(connection, "progress")
                progress["arrived" if arrived else "missed"] += 1
                progress["across processes" if holder != origin else "same process"] += 1
            # An event through process `origin` makes a Celery worker push an in-app message.
            for (holder, origin), connection in sockets.items():
                answer = await http.post(
                    f"{bases[origin]}/api/v1/events",
                    json={"events": new_events(1, "ping", f"h{holder}-o{origin}")},
                    headers=headers,
                )  # fmt: skip
                assert answer.status_code == 200, answer.text
                arrived = await received(connection, "message")
                messages["arrived" if arrived else "missed"] += 1
        for connection in sockets.values():
            await connection.close()
        from engagement.models import Delivery

        deliveries = await sync_to_async(
            lambda: Delivery.objects.filter(rule__workspace=workspace).count()
        )()
        return {
            "uvicorn processes": servers,
            "celery workers": workers,
            "progress pushes (server API on one process, socket on another or the same)": dict(
                progress
            ),
            "in-app messages pushed by a Celery worker": dict(messages),
            "deliveries recorded": deliveries,
            "server tracebacks": running.tracebacks(),
        }


SCENARIOS = {"drops": drops, "outages": outages, "fanout": fanout}
# The bound of one scenario, services included (drops needs most: 100 000 events).
SCENARIO_SECONDS = 1200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "scenarios", nargs="*", help=f"any of {', '.join(SCENARIOS)} (default: all)"
    )
    parser.add_argument("--in-this-process", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    names = arguments.scenarios or list(SCENARIOS)
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        parser.error(
            f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}"
        )
    if arguments.in_this_process:
        (name,) = names
        started = time.monotonic()
        result = asyncio.run(SCENARIOS[name]())
        log(f"{name} done in {time.monotonic() - started:.0f} s:")
        print(json.dumps(result, indent=2), flush=True)
        return
    # Each scenario in a process of its own: Django is set up once per process, on that
    # scenario's own PostgreSQL and Redis.
    failed = []
    for name in names:
        run = subprocess.run(  # noqa: S603
            [sys.executable, __file__, name, "--in-this-process"],
            timeout=SCENARIO_SECONDS,
            check=False,
        )
        if run.returncode:
            failed.append(name)
    if failed:
        sys.exit(f"scenario(s) failed to run: {', '.join(failed)}")


if __name__ == "__main__":
    main()
