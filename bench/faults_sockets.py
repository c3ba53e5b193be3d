"""The fault suite's socket scenarios (run through bench/faults.py):

- `reconnect`: 5 000 sockets dropped at once (the process holding them is SIGKILLed and started
  again); each client reconnects as the SDK does (widget/src/backoff.ts: exponential backoff
  with equal jitter, never sooner than a server's `retry_after`). Meanwhile a milestone is
  reached by every person (events through another process). Counted: sockets back within 60 s,
  people whose welcome after the drop does not show that milestone (missed by the resync), and
  people whose tab misses the next milestone's push once back.
- `churn`: 1 000 clients connect, say hello, stay 1-4 s, leave and come back, while numbered
  pushes flow to them all (`realtime.push_to_end_users`, the services' own path). Counted:
  gaps (a push number skipped on an open socket after its welcome), duplicates.
- `soak`: 5 000 open sockets and 1 000 events/s (half through sockets, half through the server
  API) for `--soak-minutes` (30 by default). Counted: ingest latency p95 (socket ack, API
  answer) minute by minute, memory of the server processes from the first minute to the end;
  and where the time goes: the server's CPU time against its time spent runnable but waiting
  for a core (the kernel's schedstat), what PostgreSQL's busy backends wait on (sampled from
  pg_stat_activity), the harness's own CPU and event-loop lag. `--priority-ab` lowers the
  server's and PostgreSQL's CPU priority every other 30 s: the same minutes then show what the
  latency owes to the share of CPU they get.

A client here is a small state machine over `websockets`, one task per socket, in the harness
process; the machine's open-files limit is raised to its hard limit for every process.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from faults_stack import (
    ORIGIN,
    Process,
    free_port,
    load_average,
    log,
    new_events,
    percentile,
    stack,
    wait_until_up,
    workspace_create,
)


def backoff_delay(attempt: int, at_least: float = 0.0) -> float:
    """widget/src/backoff.ts in seconds: equal jitter on an exponential step (0.5 s doubling up
    to 30 s), the step raised to twice the server's `retry_after` when it asked for one."""
    step = max(min(30.0, 0.5 * 2 ** min(attempt, 20)), 2 * at_least)
    return step / 2 + random.random() * step / 2


async def ws_connect(url: str, timeout: float = 20) -> Any:
    import websockets

    return await websockets.connect(
        url,
        origin=ORIGIN,  # type: ignore[arg-type]
        compression=None,
        proxy=None,
        ping_interval=None,
        open_timeout=timeout,
        close_timeout=2,
        max_size=None,
    )


@dataclass
class Figures:
    """What every client of a scenario saw."""

    welcomes: int = 0
    gaps: int = 0  # push numbers skipped on an open socket after its welcome (all causes)
    # …of which every skipped number had come on this socket before its welcome (the server
    # sent a push newer than the welcome ahead of it): not lost, but out of order
    gaps_sent_before_welcome: int = 0
    duplicates: int = 0  # a number seen twice (or going back) on one socket
    pushes: int = 0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    connect_failures: collections.Counter[str] = field(default_factory=collections.Counter)
    closes: int = 0


class Client:
    """One person's tab as the SDK runs it: connect, hello, read welcome and pushes, check each
    push number against the last, reconnect with the SDK's backoff when the socket drops."""

    def __init__(self, url: str, user: str, figures: Figures) -> None:
        self.url = url
        self.user = user
        self.figures = figures
        self.seq = 0
        self.completed: set[str] = set()  # milestones known from welcomes and pushes
        self.welcomed = asyncio.Event()
        self.welcomed_at: list[float] = []  # monotonic time of each welcome
        self.pushes: list[int] = []
        self.before_welcome: set[int] = set()  # numbers received before this socket's welcome
        self.acks: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.ws: Any = None
        self.stopped = False
        self.reconnect = True
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        from websockets.exceptions import ConnectionClosed

        attempt = 0
        retry_after = 0.0
        while not self.stopped:
            self.welcomed.clear()
            self.before_welcome = set()
            try:
                self.ws = await ws_connect(self.url)
                await self.ws.send(json.dumps({"type": "hello", "user": {"id": self.user}}))
                async for text in self.ws:
                    retry_after = self._receive(json.loads(text)) or retry_after
                    if self.welcomed.is_set():
                        attempt = 0
            except (OSError, ConnectionClosed, TimeoutError) as error:
                if not self.stopped:
                    self.figures.connect_failures[type(error).__name__] += 1
            finally:
                self.ws = None
            if self.stopped or not self.reconnect:
                return
            self.figures.closes += 1
            await asyncio.sleep(backoff_delay(attempt, retry_after))
            attempt += 1
            retry_after = 0.0

    def _receive(self, message: dict[str, Any]) -> float:
        kind = message.get("type")
        if kind == "welcome":
            self.seq = int(message.get("seq") or 0)
            self.completed = {
                m["key"]
                for journey in message.get("journeys") or []
                for m in journey["milestones"]
                if m.get("completed_at")
            }
            self.figures.welcomes += 1
            self.welcomed_at.append(time.monotonic())
            self.welcomed.set()
        elif kind == "ack":
            self.acks.put_nowait(message)
        elif kind == "error":
            self.figures.errors[str(message.get("code"))] += 1
            return float(message.get("retry_after") or 0)
        if "seq" in message and kind != "welcome" and not self.welcomed.is_set():
            self.before_welcome.add(int(message["seq"]))
        elif "seq" in message and kind != "welcome":
            seq = int(message["seq"])
            self.figures.pushes += 1
            self.pushes.append(seq)
            if seq <= self.seq:
                self.figures.duplicates += 1
            elif seq > self.seq + 1:
                self.figures.gaps += 1
                if set(range(self.seq + 1, seq)) <= self.before_welcome:
                    self.figures.gaps_sent_before_welcome += 1
            self.seq = max(self.seq, seq)
            if kind == "progress" and message.get("completed"):
                self.completed.add(message["completed"])
        return 0.0

    async def send(self, message: dict[str, Any]) -> bool:
        with contextlib.suppress(Exception):
            if self.ws is not None and self.welcomed.is_set():
                await self.ws.send(json.dumps(message))
                return True
        return False

    async def leave(self) -> None:
        """Close the socket without stopping: the run loop comes back after its backoff."""
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()

    async def stop(self) -> None:
        self.stopped = True
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 3)
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task


async def open_clients(
    url: str, users: list[str], figures: Figures, per_second: float = 400
) -> list[Client]:
    """Start a client per user, `per_second` at a time, and wait until all are welcomed."""
    clients = [Client(url, user, figures) for user in users]
    started = time.monotonic()
    for index, client in enumerate(clients):
        client.start()
        await asyncio.sleep(max(0.0, started + index / per_second - time.monotonic()))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(180):
            await asyncio.gather(*(client.welcomed.wait() for client in clients))
    welcomed = sum(client.welcomed.is_set() for client in clients)
    log(f"{welcomed}/{len(clients)} sockets welcomed in {time.monotonic() - started:.0f} s")
    return clients


def seed_journey(name: str, milestone_events: list[str]) -> tuple[Any, dict[str, str]]:
    """A workspace with a published journey: one milestone per event name, reached by it once."""
    from onboarding import services
    from onboarding.models import Criterion, Journey, Milestone

    workspace, keys = workspace_create(name)
    journey = Journey.objects.create(workspace=workspace, key="trial", name="Trial")
    for position, event in enumerate(milestone_events):
        Milestone.objects.create(
            workspace=workspace, journey=journey, key=event, name=event, position=position + 1,
            criterion=Criterion.EVENT, event_name=event, min_count=1,
        )  # fmt: skip
    services.content_publish(obj=journey)
    return workspace, keys


async def post_events(
    http: Any, base: str, secret: str, events: list[dict[str, Any]], batch: int = 500
) -> list[float]:
    """The server API, `batch` events a request, each retried until answered 200; returns the
    latency of each request in ms."""
    headers = {"Authorization": f"Bearer {secret}"}
    latencies = []
    for start in range(0, len(events), batch):
        body = {"events": events[start : start + batch]}
        while True:
            began = time.monotonic()
            with contextlib.suppress(Exception):
                answer = await http.post(f"{base}/api/v1/events", json=body, headers=headers)
                if answer.status_code == 200:
                    latencies.append((time.monotonic() - began) * 1000)
                    break
            await asyncio.sleep(0.5)
    return latencies


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": round(percentile(values, 0.5), 1),
        "p95": round(percentile(values, 0.95), 1),
        "p99": round(percentile(values, 0.99), 1),
        "max": round(max(values), 1) if values else float("nan"),
    }


# 1. 5 000 sockets dropped at once ----------------------------------------------------------


async def reconnect(
    sockets: int = 5000, bound: float = 60.0, drop: str = "proxy"
) -> dict[str, Any]:
    """`drop`: "proxy" SIGKILLs the TCP proxy the sockets go through (a load balancer
    restarting: every socket drops, Milepost stays up) and starts it again; "server" SIGKILLs
    the uvicorn processes holding the sockets and starts them again (a crash: the figure then
    includes the seconds Milepost takes to start on this machine)."""
    import httpx
    from asgiref.sync import sync_to_async

    with stack() as running:
        _, keys = await sync_to_async(seed_journey)("reconnect", ["during_drop", "after_resync"])
        holder, base = running.uvicorn_process("uvicorn-sockets", workers=2)
        api = running.uvicorn("uvicorn-api", workers=1)
        if drop == "proxy":
            listen = free_port()
            command = [sys.executable, "bench/faults_proxy.py", str(listen), base.rsplit(":")[-1]]
            holder = Process("proxy", command, running.env(), running.base)
            running.processes.append(holder)
            base = f"http://127.0.0.1:{listen}"
            wait_until_up(f"{base}/api/v1/health")
        url = base.replace("http", "ws") + f"/ws/widget/?key={keys['publishable_key']}"
        figures = Figures()
        users = [f"person-{n}" for n in range(sockets)]
        clients = await open_clients(url, users, figures)
        before = sum(client.welcomed.is_set() for client in clients)

        log(f"reconnect: {before} sockets open; SIGKILL to the {drop} they go through")
        dropped_at = time.monotonic()
        holder.kill()
        holder.start()  # the same port, at once, as a supervisor does
        restarted = asyncio.get_running_loop().create_task(
            asyncio.to_thread(wait_until_up, f"{base}/api/v1/health")
        )
        restarted.add_done_callback(lambda _: up.append(time.monotonic() - dropped_at))
        up: list[float] = []
        async with httpx.AsyncClient(timeout=60) as http:
            # Every person reaches a milestone while their socket is down (through the other
            # process); the welcome after the reconnect is the resync that must show it.
            events = [e for user in users for e in new_events(1, "during_drop", user)]
            await post_events(http, api, keys["secret_key"], events)
            log(f"milestone reached by {len(users)} people while their sockets were down")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(bound + 30):
                    while not all(
                        c.welcomed.is_set() and c.welcomed_at[-1] > dropped_at for c in clients
                    ):
                        await asyncio.sleep(0.5)
            back = [
                c.welcomed_at[-1] - dropped_at
                for c in clients
                if c.welcomed_at and c.welcomed_at[-1] > dropped_at
            ]
            missed_in_resync = sum(
                1 for c in clients if c.welcomed_at and "during_drop" not in c.completed
            )
            # Once back, the next milestone must arrive as a push.
            events = [e for user in users for e in new_events(1, "after_resync", user)]
            await post_events(http, api, keys["secret_key"], events)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not all(
                "after_resync" in c.completed for c in clients
            ):
                await asyncio.sleep(0.5)
        missed_push = sum(1 for c in clients if "after_resync" not in c.completed)
        await asyncio.gather(*(client.stop() for client in clients))
        within = sum(1 for seconds in back if seconds <= bound)
        return {
            "sockets open before the drop": before,
            f"back within {bound:.0f} s": within,
            f"back within {bound:.0f} s (%)": round(100 * within / max(1, before), 2),
            "back at all": len(back),
            "seconds from the drop to the welcome": summary(back),
            "what was killed": drop,
            f"seconds from the drop until the restarted {drop} answered": round(up[0], 1)
            if up
            else None,
            "people whose resync missed the milestone reached while down": missed_in_resync,
            "people whose tab missed the next milestone's push": missed_push,
            "push number gaps on open sockets": figures.gaps,
            "duplicated push numbers": figures.duplicates,
            "socket errors": dict(figures.errors),
            "failed connects (while the process was down)": dict(figures.connect_failures),
            "load average at the end": load_average(),
            "server tracebacks": running.tracebacks(),
        }


# 2. Churn while numbered pushes flow --------------------------------------------------------


def _end_user_ids(workspace_id: int, users: list[str]) -> dict[str, int]:
    from onboarding.models import EndUser

    return dict(
        EndUser.objects.filter(workspace_id=workspace_id, external_id__in=users).values_list(
            "external_id", "pk"
        )
    )


def _push_numbered(pushes: list[tuple[int, dict[str, Any]]]) -> list[int]:
    from django.db import connection

    from onboarding import realtime

    try:
        return realtime.push_to_end_users(pushes)
    finally:
        connection.close()


async def churn(
    clients_count: int = 1000, seconds: float = 120.0, pushes_per_second: int = 200
) -> dict[str, Any]:
    from asgiref.sync import sync_to_async

    with stack() as running:
        workspace, keys = await sync_to_async(seed_journey)("churn", ["churned"])
        base = running.uvicorn("uvicorn-churn", workers=2)
        url = base.replace("http", "ws") + f"/ws/widget/?key={keys['publishable_key']}"
        figures = Figures()
        users = [f"churner-{n}" for n in range(clients_count)]
        clients = await open_clients(url, users, figures)
        ids = await sync_to_async(_end_user_ids)(workspace.pk, users)
        log(f"churn: {clients_count} clients come and go for {seconds:.0f} s; pushes flow")
        stop_at = time.monotonic() + seconds
        sent = 0
        numbers_taken: collections.Counter[int] = collections.Counter()

        async def leave_and_return(client: Client) -> None:
            # Each tab stays 1-4 s, leaves, and its run loop comes back after the SDK's backoff.
            while time.monotonic() < stop_at:
                await asyncio.sleep(random.uniform(1, 4))
                await client.leave()
                await asyncio.sleep(0.2)

        async def pusher() -> None:
            nonlocal sent
            tick = 0.1
            while time.monotonic() < stop_at:
                began = time.monotonic()
                batch = [
                    (ids[random.choice(users)], {"type": "message", "key": "churn", "n": sent + i})
                    for i in range(int(pushes_per_second * tick))
                ]
                numbers = await asyncio.to_thread(_push_numbered, batch)
                for (person, _), number in zip(batch, numbers, strict=True):
                    numbers_taken[person] = max(numbers_taken[person], number)
                sent += len(batch)
                await asyncio.sleep(max(0.0, began + tick - time.monotonic()))

        started = time.monotonic()
        await asyncio.gather(pusher(), *(leave_and_return(c) for c in clients))
        elapsed = time.monotonic() - started
        # Everyone back and quiet: the last welcome of each must carry the last number taken.
        await asyncio.sleep(10)
        behind = 0
        for client in clients:
            if client.welcomed.is_set() and client.seq < numbers_taken.get(ids[client.user], 0):
                behind += 1
        await asyncio.gather(*(client.stop() for client in clients))
        return {
            "clients": clients_count,
            "seconds": round(elapsed),
            "numbered pushes sent": sent,
            "pushes/s": round(sent / elapsed),
            "welcomes (connections that said hello and were welcomed)": figures.welcomes,
            "pushes received on open sockets": figures.pushes,
            "push number gaps on open sockets": figures.gaps,
            "of which the missing pushes came before the welcome": figures.gaps_sent_before_welcome,
            "duplicated push numbers": figures.duplicates,
            "tabs behind the last number at the end": behind,
            "socket errors": dict(figures.errors),
            "failed connects": dict(figures.connect_failures),
            "load average at the end": load_average(),
            "server tracebacks": running.tracebacks(),
        }


# 3. Soak -----------------------------------------------------------------------------------


async def soak(
    minutes: float = 30.0,
    sockets: int = 5000,
    events_per_second: int = 1000,
    priority_ab: bool = False,
) -> dict[str, Any]:
    """`priority_ab`: every 30 s the server and its PostgreSQL switch between the harness's
    niceness and the lowest priority (19), so that the same minutes show what the latency owes
    to the share of CPU the processes get on a shared machine (A/B interleaved)."""
    import httpx
    from asgiref.sync import sync_to_async

    with stack() as running:
        _, keys = await sync_to_async(seed_journey)("soak", ["soaked"])
        process, base = running.uvicorn_process("uvicorn-soak", workers=2)
        url = base.replace("http", "ws") + f"/ws/widget/?key={keys['publishable_key']}"
        figures = Figures()
        users = [f"soaker-{n}" for n in range(sockets)]
        clients = await open_clients(url, users, figures)
        # Half the events through sockets: `senders` tabs, each an event every `period` s.
        socket_rate = events_per_second // 2
        senders = clients[: min(len(clients), socket_rate * 2)]
        period = len(senders) / max(1, socket_rate)
        api_rate = events_per_second - socket_rate
        api_batch = 50
        socket_latency: dict[int, list[float]] = collections.defaultdict(list)
        api_latency: dict[int, list[float]] = collections.defaultdict(list)
        failures: collections.Counter[str] = collections.Counter()
        memory: list[tuple[float, int]] = []
        loads: list[str] = []
        started = time.monotonic()
        stop_at = started + minutes * 60
        sent = {"socket": 0, "api": 0}
        log(
            f"soak: {minutes:g} min, {len(clients)} sockets, {events_per_second} events/s "
            f"({socket_rate}/s from {len(senders)} sockets, {api_rate}/s by the server API)"
        )

        def minute() -> int:
            return int((time.monotonic() - started) // 60)

        async def socket_sender(client: Client, offset: float) -> None:
            await asyncio.sleep(offset)
            next_at = time.monotonic()
            while time.monotonic() < stop_at:
                event = {
                    "id": str(uuid.uuid4()),
                    "name": "page_viewed",
                    "timestamp": datetime.now(UTC).isoformat(),
                }
                began = time.monotonic()
                niceness_at_send = niceness[0]
                if await client.send({"type": "events", "events": [event]}):
                    sent["socket"] += 1
                    try:
                        async with asyncio.timeout(30):
                            await client.acks.get()
                        socket_latency[minute()].append((time.monotonic() - began) * 1000)
                        by_priority[niceness_at_send]["socket"].append(
                            (time.monotonic() - began) * 1000
                        )
                    except TimeoutError:
                        failures["socket ack not within 30 s"] += 1
                else:
                    failures["socket not open to send"] += 1
                next_at += period
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))

        async def api_sender(http: httpx.AsyncClient) -> None:
            # Open loop: a batch every api_batch/api_rate s, whatever the answers' pace.
            interval = api_batch / max(1, api_rate)
            pending: set[asyncio.Task[None]] = set()

            async def one() -> None:
                events = new_events(api_batch, "message_sent", f"api-{random.randrange(500)}")
                began = time.monotonic()
                niceness_at_send = niceness[0]
                try:
                    answer = await http.post(
                        f"{base}/api/v1/events",
                        json={"events": events},
                        headers={"Authorization": f"Bearer {keys['secret_key']}"},
                    )
                    if answer.status_code == 200:
                        api_latency[minute()].append((time.monotonic() - began) * 1000)
                        by_priority[niceness_at_send]["api"].append(
                            (time.monotonic() - began) * 1000
                        )
                        sent["api"] += api_batch
                    else:
                        failures[f"api {answer.status_code}"] += 1
                except httpx.HTTPError as error:
                    failures[f"api {type(error).__name__}"] += 1

            next_at = time.monotonic()
            while time.monotonic() < stop_at:
                task = asyncio.get_running_loop().create_task(one())
                pending.add(task)
                task.add_done_callback(pending.discard)
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            await asyncio.gather(*pending, return_exceptions=True)

        def minute_p95(m: int) -> list[int | None]:
            # A minute may hold no answer of one kind (the last, partial one): None, not NaN.
            return [
                round(percentile(by[m], 0.95)) if by.get(m) else None
                for by in (socket_latency, api_latency)
            ]

        niceness = [os.getpriority(os.PRIO_PROCESS, 0)]
        by_priority: dict[int, dict[str, list[float]]] = collections.defaultdict(
            lambda: collections.defaultdict(list)
        )

        async def priority_switch() -> None:
            own = niceness[0]
            while priority_ab and time.monotonic() < stop_at:
                await asyncio.sleep(30)
                niceness[0] = 19 if niceness[0] == own else own
                process.renice(niceness[0])
                running.postgres.renice(niceness[0])

        lags: dict[int, list[float]] = collections.defaultdict(list)

        async def lag_probe() -> None:
            # How late this harness's own event loop wakes: what every latency above includes.
            while time.monotonic() < stop_at:
                began = time.monotonic()
                await asyncio.sleep(0.05)
                lags[minute()].append((time.monotonic() - began - 0.05) * 1000)

        waits: collections.Counter[str] = collections.Counter()
        samples = [0]

        def pg_sampler() -> None:
            import psycopg

            with psycopg.connect(running.postgres.url(), autocommit=True) as db:
                while time.monotonic() < stop_at:
                    rows = db.execute(
                        "select coalesce(wait_event_type || ':' || wait_event, 'CPU'), state,"
                        " left(query, 40) from pg_stat_activity where datname = 'milepost'"
                        " and pid <> pg_backend_pid() and state <> 'idle'"
                    ).fetchall()
                    samples[0] += 1
                    for wait, state, query in rows:
                        waits[f"{state} {wait} {query}"] += 1
                    time.sleep(0.2)

        async def sampler() -> None:
            while time.monotonic() < stop_at:
                memory.append((time.monotonic() - started, process.rss_kb()))
                loads.append(load_average())
                if len(memory) % 2 == 1 and minute() > 0:
                    # Each minute's figures as they come, so a long run's log keeps them.
                    log(
                        f"soak minute {minute() - 1}: p95 socket / API {minute_p95(minute() - 1)} "
                        f"ms, harness loop lag p95 "
                        f"{percentile(lags.get(minute() - 1, []), 0.95):.0f} ms, "
                        f"RSS {process.rss_kb() / 1024:.0f} MB, load {loads[-1]}, "
                        f"failures {dict(failures)}"
                    )
                await asyncio.sleep(30)

        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=50)) as http:
            cpu_before = os.times()
            scheduled_before = process.scheduled_ns()
            await asyncio.gather(
                sampler(),
                lag_probe(),
                priority_switch(),
                asyncio.to_thread(pg_sampler),
                api_sender(http),
                *(socket_sender(c, i * period / len(senders)) for i, c in enumerate(senders)),
            )
        elapsed = time.monotonic() - started
        cpu_after = os.times()
        ran, waited = (
            after - before
            for after, before in zip(process.scheduled_ns(), scheduled_before, strict=True)
        )
        harness_cpu = cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system
        memory.append((elapsed, process.rss_kb()))
        still_open = sum(1 for c in clients if c.ws is not None)
        await asyncio.gather(*(client.stop() for client in clients))
        # Memory from the end of the first minute (sockets open, caches warm) to the end.
        first = next((kb for at, kb in memory if at >= 60), memory[0][1])
        last = memory[-1][1]
        every = [v for values in socket_latency.values() for v in values]
        every_api = [v for values in api_latency.values() for v in values]
        return {
            "minutes": round(elapsed / 60, 1),
            "sockets open at the start / at the end": f"{len(clients)} / {still_open}",
            "events sent (socket, server API)": dict(sent),
            "events/s achieved": round(sum(sent.values()) / elapsed),
            "socket ingest (event sent -> ack), ms": summary(every),
            "server API ingest (50-event POST), ms": summary(every_api),
            "p95 by minute (socket / API), ms": {
                m: minute_p95(m) for m in sorted(set(socket_latency) | set(api_latency))
            },
            "server memory (RSS, all uvicorn processes), MB: after 1 min -> end": (
                f"{first / 1024:.0f} -> {last / 1024:.0f}"
            ),
            "memory growth (%)": round(100 * (last - first) / max(1, first), 1),
            "failures": dict(failures),
            "by the server's and PostgreSQL's niceness (socket / API), ms": {
                level: {kind: summary(values) for kind, values in kinds.items()}
                for level, kinds in sorted(by_priority.items())
            },
            "harness event loop lag, ms": summary([v for vs in lags.values() for v in vs]),
            "harness CPU (% of one core)": round(100 * harness_cpu / elapsed),
            "server CPU (% of one core) / waiting runnable for a core (% of one core)": (
                f"{100 * ran / 1e9 / elapsed:.0f} / {100 * waited / 1e9 / elapsed:.0f}"
            ),
            "PostgreSQL backends by state and wait (per sample)": {
                k: round(v / max(1, samples[0]), 2) for k, v in waits.most_common(12)
            },
            "socket errors": dict(figures.errors),
            "socket closes": figures.closes,
            "failed connects": dict(figures.connect_failures),
            "load average (every 30 s)": loads[:: max(1, len(loads) // 12)],
            "server tracebacks": running.tracebacks(),
        }
