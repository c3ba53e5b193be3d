"""A worker's start (milepost/lifespan.py): set up before it accepts a connection, and started
even when PostgreSQL cannot be reached yet, saying so."""

from __future__ import annotations

import gc
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from channels.testing import ApplicationCommunicator

from milepost import lifespan
from milepost.asgi import application
from onboarding import batching
from tests.servers import uvicorn_server

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """What the worker start freezes is this test process's: given back to the collector."""
    yield
    gc.unfreeze()


@pytest.fixture
def own_database_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A worker starts with database threads of its own, not with the ones this test process
    shares between tests (which an earlier test's leftover work may still hold)."""
    monkeypatch.setattr(batching, "_pool", None)
    yield
    if batching._pool is not None:
        batching._pool.release_connections()
        batching._pool.shutdown()


@pytest.mark.usefixtures("unfrozen", "own_database_threads")
async def test_a_worker_is_set_up_before_it_serves_and_what_it_loaded_is_frozen(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CI runs two suites and Chromium side by side on two cores: connecting may be slow there.
    monkeypatch.setattr(lifespan, "CONNECT_SECONDS", 60.0)
    starting = ApplicationCommunicator(application, {"type": "lifespan"})
    with caplog.at_level(logging.WARNING, logger="milepost.lifespan"):
        await starting.send_input({"type": "lifespan.startup"})
        assert await starting.receive_output(timeout=90) == {"type": "lifespan.startup.complete"}
    # Every step found what it sets up (the database, and Redis where the suite has it).
    assert [r.getMessage() for r in caplog.records] == []
    assert batching._pool is not None
    # The modules, the URL configuration and the connections made so far are out of the
    # cyclic collector's walk: a full collection under load walks what connections made.
    assert gc.get_freeze_count() > 10_000
    await starting.send_input({"type": "lifespan.shutdown"})
    assert await starting.receive_output(timeout=10) == {"type": "lifespan.shutdown.complete"}


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_worker_starts_while_postgresql_is_unreachable_and_says_which_step_waits(
    tmp_path: Path,
) -> None:
    log = tmp_path / "server.log"
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DEBUG"}},
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{unused_port()}/milepost",
        "SECRET_KEY": "worker-start-test-" + "x" * 40,
        "MILEPOST_DB_POOL_TIMEOUT_SECONDS": "1",
    }
    with uvicorn_server(env, log=log) as base:
        health = httpx.get(f"{base}/api/v1/health", timeout=10)
        ready = httpx.get(f"{base}/api/v1/ready", timeout=10)
    output = log.read_text()
    assert health.status_code == 200
    assert ready.status_code == 503
    assert "database" in ready.text
    assert "worker start: database threads not set up" in output
    assert "Traceback" not in output
