"""Write-path benchmark (not a test): `make bench` or `python bench/ingest.py`.

1. Ingest: events/s through `events_record` (validation, de-duplication, storage, milestone
   evaluation) against the raw PostgreSQL `executemany` rate of the same rows into a copy of
   the event table, measured in the same run, printed as a ratio.
2. Push latency: a milestone reported through the server API (a real uvicorn server) → the
   `progress` message arriving at a second socket of the same user, over the Redis channel
   layer; p50 / p99.

Needs PostgreSQL and Redis: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/
milepost_bench, created if missing) and REDIS_URL (default redis://127.0.0.1:6379/15).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/milepost_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("SECRET_KEY", "milepost-bench-only")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "milepost.settings")


def ensure_database() -> None:
    import psycopg

    url = os.environ["DATABASE_URL"]
    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def setup() -> None:
    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed(users: int) -> tuple[Any, list[str]]:
    from onboarding import services
    from onboarding.models import Criterion, Journey, Milestone

    slug = f"bench-{uuid.uuid4().hex[:8]}"
    workspace, keys = services.workspace_create(
        name=slug, slug=slug, origins=["http://bench.localhost"]
    )
    workspace.keys = keys
    journey = Journey.objects.create(workspace=workspace, key="trial", name="Trial")
    for position, (key, event_name, count) in enumerate(
        [
            ("first-message", "message_sent", 1),
            ("ten-messages", "message_sent", 10),
            ("campaign", "campaign_created", 1),
        ]
    ):
        Milestone.objects.create(
            workspace=workspace,
            journey=journey,
            key=key,
            name=key,
            position=position,
            criterion=Criterion.EVENT,
            event_name=event_name,
            min_count=count,
            window=timedelta(days=7),
            counts_toward_pql=position > 0,
        )
    Milestone.objects.create(
        workspace=workspace,
        journey=journey,
        key="installed",
        name="installed",
        position=9,
        criterion=Criterion.SERVER,
    )
    services.content_publish(obj=journey)
    return workspace, [f"user-{i}" for i in range(users)]


def make_batches(user_ids: list[str], total: int, batch_size: int) -> list[list[dict[str, Any]]]:
    start = datetime.now(UTC) - timedelta(hours=1)
    names = ["message_sent", "page_viewed", "campaign_created", "contact_added"]
    events = [
        {
            "id": str(uuid.uuid4()),
            "user_id": user_ids[i % len(user_ids)],
            "name": names[i % len(names)],
            "timestamp": (start + timedelta(milliseconds=i)).isoformat(),
            "properties": {"plan": "trial", "n": i},
        }
        for i in range(total)
    ]
    return [events[i : i + batch_size] for i in range(0, total, batch_size)]


def raw_executemany_rate(workspace: Any, batches: list[list[dict[str, Any]]]) -> float:
    """The same rows inserted with psycopg's executemany, 500 a commit, into the event table
    itself, then deleted again: its indexes at its size, as the measured path meets them. A
    bench database keeps every run's events; with 6.2 M stored, an empty copy of the table took
    the same rows a third faster (median 36 k against 28 k rows/s, 2026-12-04), so a ratio
    against the copy drifted with the database's age. The rows get new event ids: the measured
    path stored them under theirs already."""
    from django.db import connection

    from onboarding.models import EndUser

    user_pk = {u.external_id: u.pk for u in EndUser.objects.filter(workspace=workspace)}
    rows = [
        (
            workspace.pk,
            user_pk[e["user_id"]],
            uuid.uuid4(),
            e["name"],
            e["timestamp"],
            datetime.now(UTC),
            json.dumps(e["properties"]),
            "server",
            False,
        )
        for batch in batches
        for e in batch
    ]
    raw = connection.connection
    started = time.perf_counter()
    for i in range(0, len(rows), 500):
        with raw.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO onboarding_event (workspace_id, end_user_id, client_id, name, "
                "timestamp, received_at, properties, source, clock_skew_clamped) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows[i : i + 500],
            )
        raw.commit()
    elapsed = time.perf_counter() - started
    with raw.cursor() as cursor:
        cursor.execute(
            "DELETE FROM onboarding_event WHERE workspace_id = %s AND client_id = ANY(%s)",
            (workspace.pk, [row[2] for row in rows]),
        )
    raw.commit()
    return len(rows) / elapsed


def record_rate(workspace: Any, batches: list[list[dict[str, Any]]]) -> tuple[float, float]:
    from onboarding import recording

    started = time.perf_counter()
    for batch in batches:
        ack = recording.events_record(workspace=workspace, events=batch, source="server")
        assert not ack.rejected, ack.rejected
    first = sum(len(b) for b in batches) / (time.perf_counter() - started)
    # The same batches again: every event is a duplicate; nothing is stored twice.
    started = time.perf_counter()
    for batch in batches[: max(1, len(batches) // 4)]:
        ack = recording.events_record(workspace=workspace, events=batch, source="server")
        assert not ack.accepted
    retried = sum(len(b) for b in batches[: max(1, len(batches) // 4)])
    return first, retried / (time.perf_counter() - started)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _start_server(port: int) -> subprocess.Popen[bytes]:
    import httpx

    server = subprocess.Popen(  # noqa: S603 - our own server on loopback
        [
            sys.executable,
            "-m",
            "uvicorn",
            "milepost.asgi:application",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
    )
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
            return server
        except httpx.HTTPError:
            await asyncio.sleep(0.1)
    raise RuntimeError("the server did not start")


async def push_latencies(workspace: Any, samples: int) -> dict[str, list[float]]:
    """Two tabs of one new user each round. `socket`: tab 1 sends the event that completes a
    milestone, timed until tab 2 receives `progress`. `server_api`: the SaaS backend reports a
    milestone over HTTP, timed until tab 2 receives `progress`."""
    import httpx
    import websockets

    port = free_port()
    server = await _start_server(port)
    url = f"ws://127.0.0.1:{port}/ws/widget/?key={workspace.publishable_key}"
    headers = {"Origin": "http://bench.localhost"}
    latencies: dict[str, list[float]] = {"socket": [], "server_api": []}

    async def progress(tab: Any) -> None:
        while json.loads(await asyncio.wait_for(tab.recv(), 10))["type"] != "progress":
            pass

    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {workspace.keys['secret_key']}"},
        ) as client:
            for i in range(samples):
                user = f"push-{uuid.uuid4().hex[:8]}-{i}"
                async with (
                    websockets.connect(url, additional_headers=headers) as first,
                    websockets.connect(url, additional_headers=headers) as second,
                ):
                    for tab in (first, second):
                        await tab.send(json.dumps({"type": "hello", "user": {"id": user}}))
                        await tab.recv()
                    event = {
                        "id": str(uuid.uuid4()),
                        "name": "campaign_created",
                        "timestamp": datetime.now(UTC).isoformat(),
                    }
                    started = time.perf_counter()
                    await first.send(json.dumps({"type": "events", "events": [event]}))
                    await progress(second)
                    latencies["socket"].append((time.perf_counter() - started) * 1000)
                    started = time.perf_counter()
                    response = await client.post(
                        f"/api/v1/users/{user}/milestones/installed", json={}
                    )
                    await progress(second)
                    latencies["server_api"].append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 201, response.text
        return latencies
    finally:
        server.terminate()
        server.wait(10)


def _percentiles(values: list[float]) -> str:
    values = sorted(values)
    p50 = statistics.median(values)
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    return f"p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   max {values[-1]:6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--push-samples", type=int, default=200)
    args = parser.parse_args()
    setup()
    workspace, user_ids = seed(args.users)
    batches = make_batches(user_ids, args.events, args.batch)
    # Warm up: end users exist before either measurement, so both insert the same rows.
    from onboarding import recording

    for external_id in user_ids:
        recording.end_user_identify(workspace=workspace, external_id=external_id, traits={})
    raw = raw_executemany_rate(workspace, batches)
    ours, retried = record_rate(workspace, batches)
    latencies = asyncio.run(push_latencies(workspace, args.push_samples))
    print(f"ingest: {args.events} events, {args.users} users, batches of {args.batch}")
    print(f"  raw PostgreSQL executemany      {raw:10.0f} rows/s   (baseline)")
    print(f"  events_record (new events)      {ours:10.0f} events/s ({ours / raw:.0%} of raw)")
    print(
        f"  events_record (all duplicates)  {retried:10.0f} events/s ({retried / raw:.0%} of raw)"
    )
    print(f"push latency to a second socket of the same user, Redis layer, n={args.push_samples}")
    print(f"  event on socket 1 → progress  {_percentiles(latencies['socket'])}")
    print(f"  server API report → progress  {_percentiles(latencies['server_api'])}")


if __name__ == "__main__":
    main()
