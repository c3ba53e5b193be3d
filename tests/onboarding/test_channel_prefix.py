"""Two deployments on one Redis: pub/sub channels belong to the whole Redis server, whatever
database REDIS_URL selects, so each deployment's channel names carry its own prefix
(MILEPOST_CHANNEL_PREFIX). Real uvicorn processes on the test database and the test Redis; the
same database on both sides is the worst case (the same end user ids, so the same group names)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from django.conf import settings
from django.db import connection, connections

from onboarding import services
from tests.onboarding.conftest import TrialJourney
from tests.onboarding.test_widget_socket import ORIGIN
from tests.servers import uvicorn_server

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def database_url() -> str:
    database = connection.settings_dict
    credentials = database["USER"] + (f":{database['PASSWORD']}" if database["PASSWORD"] else "")
    return f"postgres://{credentials}@{database['HOST']}:{database['PORT']}/{database['NAME']}"


@pytest.fixture
def deployments() -> Iterator[dict[str, str]]:
    """Servers `a1` and `a2` of one deployment (one prefix), `b` of another (its own prefix)."""
    run = uuid.uuid4().hex[:8]
    prefixes = {"a1": f"test-{run}-a.", "a2": f"test-{run}-a.", "b": f"test-{run}-b."}
    with contextlib.ExitStack() as stack:
        bases = {
            name: stack.enter_context(
                uvicorn_server(
                    {
                        **os.environ,
                        "DATABASE_URL": database_url(),
                        "REDIS_URL": str(settings.REDIS_URL),
                        "MILEPOST_CHANNEL_PREFIX": prefix,
                    }
                )
            )
            for name, prefix in prefixes.items()
        }
        try:
            yield bases
        finally:
            connections.close_all()


async def open_socket(base: str, key: str, user: str) -> Any:
    url = base.replace("http", "ws") + f"/ws/widget/?key={key}"
    tab = await websockets.connect(url, origin=ORIGIN)  # type: ignore[arg-type]
    await tab.send(json.dumps({"type": "hello", "user": {"id": user}}))
    assert json.loads(await tab.recv())["type"] == "welcome"
    return tab


async def progress_within(tab: Any, seconds: float) -> list[str]:
    """The milestones of the progress pushes `tab` receives within `seconds`."""
    reached: list[str] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                message = json.loads(await tab.recv())
                if message["type"] == "progress":
                    reached.append(message["completed"])
    return reached


def test_a_push_reaches_every_server_of_its_deployment_and_never_another_deployment_on_one_redis(
    trial: TrialJourney, deployments: dict[str, str]
) -> None:
    services.content_publish(obj=trial.journey)
    keys = trial.workspace.keys

    async def scenario() -> dict[str, list[str]]:
        # The same person has a tab on each server (one database: the same group name).
        tabs = {
            name: await open_socket(base, keys["publishable_key"], "person-1")
            for name, base in deployments.items()
        }
        async with httpx.AsyncClient(timeout=30) as http:
            answer = await http.post(
                f"{deployments['a1']}/api/v1/users/person-1/milestones/installed-js",
                headers={"Authorization": f"Bearer {keys['secret_key']}"},
            )
        assert answer.status_code in (200, 201), answer.text
        heard = dict(
            zip(
                tabs,
                await asyncio.gather(*(progress_within(tab, 6) for tab in tabs.values())),
                strict=True,
            )
        )
        for tab in tabs.values():
            await tab.close()
        return heard

    heard = asyncio.run(scenario())

    # The push crossed processes within its deployment (so pushes work and are not local)…
    assert "installed-js" in heard["a1"]
    assert "installed-js" in heard["a2"]
    # …and the other deployment's socket, on the same Redis, heard nothing.
    assert heard["b"] == []
