"""PostgreSQL connections of a real server process: bounded by its pool under load, given back
when idle (issue 14: 440 "too many clients already" and 55 connections held while idle)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from django.db import connection, connections

from tests.factories import WorkspaceFactory
from tests.servers import uvicorn_server

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parent.parent
POOL_MAX = 3
CLIENTS = 50
SERVER_NAME = "milepost-pool-test"


def database_url() -> str:
    database = connection.settings_dict
    credentials = database["USER"] + (f":{database['PASSWORD']}" if database["PASSWORD"] else "")
    return (
        f"postgres://{credentials}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
        f"?application_name={SERVER_NAME}"
    )


def server_connections() -> int:
    """The server process's connections to the test database."""
    database = connection.settings_dict
    with psycopg.connect(
        host=database["HOST"],
        port=database["PORT"],
        user=database["USER"],
        password=database["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as probe:
        row = probe.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
            [database["NAME"], SERVER_NAME],
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.fixture
def server() -> Iterator[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "MILEPOST_DB_POOL_MIN_SIZE": "1",
        "MILEPOST_DB_POOL_MAX_SIZE": str(POOL_MAX),
        "MILEPOST_DB_POOL_MAX_IDLE_SECONDS": "1",
        "MILEPOST_DB_POOL_TIMEOUT_SECONDS": "30",
    }
    try:
        with uvicorn_server(env) as base:
            yield base
    finally:
        connections.close_all()


def test_fifty_clients_share_a_bounded_pool_and_idle_connections_are_given_back(
    server: str,
) -> None:
    workspace = WorkspaceFactory()
    headers = {"Authorization": f"Bearer {workspace.keys['secret_key']}"}
    peak = 0
    loading = True

    def watch() -> None:
        nonlocal peak
        while loading:
            peak = max(peak, server_connections())
            time.sleep(0.05)

    async def client(http: httpx.AsyncClient, number: int) -> list[int]:
        statuses = []
        for batch in range(4):
            events = [
                {"id": str(uuid.uuid4()), "name": "sent", "user": f"user-{number}-{batch}"}
                for _ in range(20)
            ]
            response = await http.post(
                f"{server}/api/v1/events", json={"events": events}, headers=headers
            )
            statuses.append(response.status_code)
        return statuses

    async def load() -> list[int]:
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=100)) as http:
            answers = await asyncio.gather(*(client(http, n) for n in range(CLIENTS)))
        return [status for statuses in answers for status in statuses]

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        statuses = asyncio.run(load())
    finally:
        loading = False
        watcher.join()

    assert statuses == [200] * (CLIENTS * 4)
    assert 1 <= peak <= POOL_MAX
    # Idle: the pool closes what it holds beyond its minimum (one connection a second here).
    deadline = time.monotonic() + 20
    while server_connections() > 1 and time.monotonic() < deadline:
        time.sleep(0.25)
    assert server_connections() <= 1
