"""Dependencies that are down, for real: Redis at an address where nothing listens (a port
this test just took from the system and released) and a private PostgreSQL that the test
stops. Rate limiters let calls through (logged), pushes and writes answer 503 with
`Retry-After` or a socket `unavailable` with `retry_after`, never a 500 or `internal`."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket as sockets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from django.test import AsyncClient, Client

from onboarding import recording
from tests.onboarding.conftest import TrialJourney
from tests.onboarding.test_widget_socket import ORIGIN, socket

pytestmark = pytest.mark.django_db(transaction=True)


def unused_port() -> int:
    with sockets.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def redis_down(settings: Any) -> str:
    """Every Redis Milepost uses points at a port with nothing behind it."""
    url = f"redis://127.0.0.1:{unused_port()}/0"
    settings.REDIS_URL = url
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [url]},
        }
    }
    return url


@pytest.mark.usefixtures("redis_down")
def test_with_redis_down_rate_limits_let_calls_through_and_say_so(
    client: Client, trial: TrialJourney, caplog: pytest.LogCaptureFixture
) -> None:
    keys = trial.workspace.keys
    with caplog.at_level(logging.WARNING, logger="onboarding.rate_limits"):
        widget = client.post(
            "/api/v1/widget/bootstrap",
            json.dumps({"key": keys["publishable_key"], "user": {"id": "u1"}}),
            "application/json",
            HTTP_ORIGIN=ORIGIN,
        )
        server = client.put(
            "/api/v1/users/u2",
            '{"traits": {"plan": "pro"}}',
            "application/json",
            HTTP_AUTHORIZATION=f"Bearer {keys['secret_key']}",
        )

    assert widget.status_code == 200
    assert server.status_code == 201
    assert "rate-limit counter unreachable" in caplog.text


@pytest.mark.usefixtures("redis_down")
async def test_with_redis_down_the_push_stream_is_a_503_with_retry_after(
    trial: TrialJourney,
) -> None:
    from asgiref.sync import sync_to_async

    await sync_to_async(recording.end_user_identify)(workspace=trial.workspace, external_id="u1")
    key = trial.workspace.keys["publishable_key"]

    response = await AsyncClient().get(
        f"/api/v1/widget/stream?key={key}&user=u1", headers={"Origin": ORIGIN}
    )

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "unavailable"


@pytest.mark.usefixtures("redis_down")
async def test_with_redis_down_the_socket_handshake_says_unavailable_with_a_retry_hint(
    trial: TrialJourney,
) -> None:
    communicator = socket(trial.workspace.keys["publishable_key"])
    connected, _ = await communicator.connect()

    reply = json.loads(await communicator.receive_from(timeout=5))
    closed = await communicator.receive_output(timeout=5)

    assert connected
    assert (reply["type"], reply["code"], reply["retry_after"]) == ("error", "unavailable", 5)
    assert closed == {"type": "websocket.close", "code": 1013}


POSTGRES_BINARIES = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


class PrivatePostgres:
    """A PostgreSQL of this test's own (initdb in a temporary folder, an ephemeral port) that
    the test may stop and start: never the machine's shared instance."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = unused_port()
        self.data = folder / "data"
        self.bin = POSTGRES_BINARIES[-1]
        folder.chmod(0o777)
        self._as_postgres([str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U",
                           "postgres"])  # fmt: skip

    def _as_postgres(self, command: list[str]) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(prefix + command, check=True, capture_output=True, timeout=120)  # noqa: S603

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self._as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-w",
                           "-l", str(self.folder / "log"), "start"])  # fmt: skip

    def stop(self) -> None:
        self._as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                           "stop"])  # fmt: skip

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"


@pytest.mark.services
@pytest.mark.skipif(not POSTGRES_BINARIES, reason="needs PostgreSQL's server binaries")
def test_with_postgresql_stopped_a_real_server_answers_503_and_recovers() -> None:
    # Not pytest's tmp_path: its parents are closed to the postgres user the server runs as.
    with tempfile.TemporaryDirectory(prefix="milepost-outage-") as folder:
        _postgresql_outage(PrivatePostgres(Path(folder)))


def _postgresql_outage(database: PrivatePostgres) -> None:
    database.start()
    port = unused_port()
    environment = {
        **{k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DEBUG"}},
        "DATABASE_URL": database.url,
        "SECRET_KEY": "outage-test-" + "x" * 40,
        "DJANGO_SETTINGS_MODULE": "milepost.settings",
        # A request that finds no pooled connection waits this long before its 503.
        "MILEPOST_DB_POOL_TIMEOUT_SECONDS": "5",
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], env=environment, check=True, timeout=300)  # noqa: S603
    created = subprocess.run(  # noqa: S603
        [*manage, "create_workspace", "Acme", "--origin", ORIGIN],
        env=environment,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    keys = json.loads(created.stdout)
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "uvicorn", "milepost.asgi:application", "--port", str(port)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as http:
            for _ in range(300):
                try:
                    http.get("/api/v1/health")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)

            def identify() -> httpx.Response:
                return http.put(
                    "/api/v1/users/u1",
                    json={"traits": {"plan": "trial"}},
                    headers={"Authorization": f"Bearer {keys['secret_key']}"},
                )

            before = identify()
            database.stop()
            during = [
                identify(),
                http.get(
                    "/api/v1/widget/progress",
                    params={"key": keys["publishable_key"], "user": "u1"},
                    headers={"Origin": ORIGIN},
                ),
            ]
            socket_answer = asyncio.run(_socket_answer(base, keys["publishable_key"]))
            # Twelve callers at once on the process's one thread for sync views: each one
            # waiting out the pool would keep the last a minute; they are all answered.
            crowd = asyncio.run(_crowd(base, keys["secret_key"], 12))
            database.start()
            # Back within seconds: while it was down, one caller a second probes it, so the
            # first calls after the restart may still get their 503 (with Retry-After).
            after = identify()
            back_by = time.monotonic() + 10
            while after.status_code == 503 and time.monotonic() < back_by:
                time.sleep(0.25)
                after = identify()
    finally:
        server.terminate()
        _, log = server.communicate(timeout=30)
        database.stop()

    assert before.status_code == 201
    assert [r.status_code for r in during] == [503, 503]
    assert [r.headers["Retry-After"] for r in during] == ["5", "5"]
    assert [r.json()["error"]["code"] for r in during] == ["unavailable", "unavailable"]
    # The widget's own fetch (a page of another origin) may read the wait: the same answer for
    # every key, so granting it tells nothing about the key.
    assert during[1].headers["Access-Control-Allow-Origin"] == ORIGIN
    assert during[1].headers["Access-Control-Expose-Headers"] == "Retry-After"
    assert crowd == ["503"] * 12
    assert socket_answer["code"] == "unavailable"
    assert socket_answer["retry_after"] == 5
    assert after.status_code == 200
    assert b"Traceback" not in log


async def _crowd(base: str, secret_key: str, callers: int) -> list[str]:
    async with httpx.AsyncClient(base_url=base, timeout=20) as http:

        async def call() -> str:
            try:
                answer = await http.put(
                    "/api/v1/users/u1",
                    json={"traits": {"plan": "trial"}},
                    headers={"Authorization": f"Bearer {secret_key}"},
                )
            except httpx.TimeoutException:
                return "no answer within 20 s"
            return str(answer.status_code)

        return list(await asyncio.gather(*(call() for _ in range(callers))))


async def _socket_answer(base: str, key: str) -> dict[str, Any]:
    url = f"{base.replace('http', 'ws')}/ws/widget/?key={key}"
    async with websockets.connect(url, origin=websockets.Origin(ORIGIN)) as connection:
        return dict(json.loads(await connection.recv()))
