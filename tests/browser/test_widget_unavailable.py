"""The SDK against a real server that answers its socket `unavailable` (the channel layer's
Redis is down: the server accepts, says `unavailable` with `retry_after`, and closes): the SDK
waits at least that long before each reconnect, keeps to the socket (no HTTP fallback: sockets
do get through), and is welcomed as soon as Redis is back."""

from __future__ import annotations

import itertools
import json
import socket
import time
from typing import Any

import pytest
from playwright.sync_api import expect

from onboarding.dependencies import RETRY_AFTER_SECONDS
from tests.browser.conftest import Live

pytestmark = pytest.mark.browser


def redis_nobody_listens_on() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{probe.getsockname()[1]}/0"


def test_a_socket_told_unavailable_reconnects_no_sooner_than_its_retry_after(
    live: Live, page: Any, settings: Any
) -> None:
    working_layers = settings.CHANNEL_LAYERS
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [redis_nobody_listens_on()]},
        }
    }
    opened: list[float] = []
    unavailable: list[str] = []
    fallbacks: list[str] = []
    page.on("websocket", lambda ws: opened.append(time.monotonic()))
    page.on(
        "websocket",
        lambda ws: ws.on(
            "framereceived",
            lambda frame: unavailable.append(frame) if '"unavailable"' in str(frame) else None,
        ),
    )
    page.on("request", lambda r: fallbacks.append(r.url) if "/widget/bootstrap" in r.url else None)

    page.goto(f"{live.demo_url}/dashboard")
    deadline = time.monotonic() + 60
    while len(opened) < 3 and time.monotonic() < deadline:
        page.wait_for_timeout(200)

    assert len(opened) >= 3, f"only {len(opened)} socket(s) in 60 s"
    assert len(unavailable) >= 2
    assert json.loads(unavailable[0])["retry_after"] == RETRY_AFTER_SECONDS
    gaps = [later - earlier for earlier, later in itertools.pairwise(opened)]
    # Its own backoff alone would have come back after 0.25-1.5 s; half a second of slack for
    # when Playwright hears of each socket.
    assert min(gaps) >= RETRY_AFTER_SECONDS - 0.5, gaps
    assert fallbacks == []

    settings.CHANNEL_LAYERS = working_layers
    expect(page.locator("milepost-widget [role=dialog]")).to_contain_text(
        "Welcome to Acme", timeout=3 * RETRY_AFTER_SECONDS * 1000
    )
    assert fallbacks == []
