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
4. `worker-kills` (bench/faults_worker.py): a Celery worker SIGKILLed every 10 s for 5 minutes
   while sign-ups send e-mails and webhooks, counted at real receivers.
5. `reconnect`, `churn`, `soak` (bench/faults_sockets.py): 5 000 sockets dropped at once; 1 000
   clients churning while numbered pushes flow; 5 000 sockets and 1 000 events/s for 30 minutes
   (not run by default: name it).
6. `keepalive` (bench/faults_keepalive.py): clients pausing about 5 s between requests against
   uvicorn's default keep-alive (5 s) and Milepost's (75 s): failed requests of each.

Each scenario is bounded in time and prints its figures; bench/README.md keeps them. Nothing
here gates CI.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import faults_keepalive
import faults_sockets
import faults_worker
from faults_stack import (
    ORIGIN,
    load_average,
    log,
    new_events,
    stack,
    stored_ids,
    workspace_create,
)

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


SCENARIOS = {
    "drops": drops,
    "outages": outages,
    "fanout": fanout,
    "worker-kills": faults_worker.worker_kills,
    "reconnect": faults_sockets.reconnect,
    "churn": faults_sockets.churn,
    "soak": faults_sockets.soak,
    "keepalive": faults_keepalive.keepalive,
}
# The soak is not part of a plain `make faults` (30 minutes of load): name it to run it.
DEFAULT_SCENARIOS = [name for name in SCENARIOS if name != "soak"]
# The bound of one scenario, services included (drops needs most: 100 000 events); the soak's
# is its duration and as much again for setting up 5 000 sockets and reading the figures.
SCENARIO_SECONDS = 1200


def scenario_arguments(name: str, arguments: argparse.Namespace) -> dict[str, Any]:
    """The options that apply to scenario `name`; `--scale` shrinks the crowds for a quick try."""
    scale = arguments.scale
    return {
        "worker-kills": {"minutes": arguments.kill_minutes},
        "reconnect": {"sockets": arguments.sockets or round(5000 * scale), "drop": arguments.drop},
        "churn": {"clients_count": round(1000 * scale), "seconds": arguments.churn_seconds},
        "soak": {
            "minutes": arguments.soak_minutes,
            "sockets": arguments.sockets or round(5000 * scale),
            "events_per_second": round(1000 * scale),
            "priority_ab": arguments.priority_ab,
        },
    }.get(name, {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "scenarios",
        nargs="*",
        help=f"any of {', '.join(SCENARIOS)} (default: all but soak)",
    )
    parser.add_argument("--soak-minutes", type=float, default=30.0, help="the soak's duration")
    parser.add_argument(
        "--kill-minutes", type=float, default=5.0, help="how long worker-kills kills workers"
    )
    parser.add_argument(
        "--drop",
        choices=["proxy", "server"],
        default="proxy",
        help="reconnect: kill the proxy in front of Milepost, or Milepost itself",
    )
    parser.add_argument(
        "--sockets", type=int, default=0, help="reconnect, soak: sockets (5000 x scale)"
    )
    parser.add_argument(
        "--priority-ab",
        action="store_true",
        help="soak: switch the server and PostgreSQL to the lowest CPU priority every other 30 s",
    )
    parser.add_argument("--churn-seconds", type=float, default=120.0, help="churn's duration")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="crowd sizes x this (0.1: a quick try)"
    )
    parser.add_argument("--in-this-process", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    names = arguments.scenarios or DEFAULT_SCENARIOS
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        parser.error(
            f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}"
        )
    if arguments.in_this_process:
        (name,) = names
        started = time.monotonic()
        log(f"{name}: load average {load_average()}")
        result = asyncio.run(SCENARIOS[name](**scenario_arguments(name, arguments)))
        log(f"{name} done in {time.monotonic() - started:.0f} s (load average {load_average()}):")
        print(json.dumps(result, indent=2), flush=True)
        return
    # Each scenario in a process of its own: Django is set up once per process, on that
    # scenario's own PostgreSQL and Redis.
    failed = []
    options = sys.argv[1:]
    options = [o for o in options if o not in names]
    for name in names:
        bound = SCENARIO_SECONDS + (2 * 60 * arguments.soak_minutes if name == "soak" else 0)
        run = subprocess.run(  # noqa: S603
            [sys.executable, __file__, name, *options, "--in-this-process"],
            timeout=bound,
            check=False,
        )
        if run.returncode:
            failed.append(name)
    if failed:
        sys.exit(f"scenario(s) failed to run: {', '.join(failed)}")


if __name__ == "__main__":
    main()
