"""Dependencies that are down, for real: Redis at an address where nothing listens (a port
this test just took from the system and released) and a private PostgreSQL that the test
stops. Rate limiters let calls through (logged), pushes and writes answer 503 with
`Retry-After` or a socket `unavailable` with `retry_after`, never a 500 or `internal`."""

from __future__ import annotations

import json
import logging
import socket as sockets
from typing import Any

import pytest
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
