"""A live Milepost for the clients: milepost.asgi under uvicorn on 127.0.0.1 (in a thread of
the test process, against the test database), a workspace with its keys, and its content."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from analytics import store, store_export
from milepost.asgi import application
from onboarding.content_io import FORMAT
from onboarding.models import Workspace
from onboarding.services import workspace_create
from tests.browser.conftest import ServerThread, listener, port_of

TRIAL_CONTENT: dict[str, Any] = {
    "format": FORMAT,
    "journeys": [
        {
            "key": "trial",
            "name": "Trial onboarding",
            "starts_on": "first_seen",
            "milestones": [
                {"key": "installed-js", "name": "Installed the snippet", "criterion": "server"},
                {
                    "key": "sent-2-messages",
                    "name": "Sent two messages",
                    "criterion": "event",
                    "event_name": "message_sent",
                    "min_count": 2,
                    "counts_toward_pql": True,
                },
            ],
        }
    ],
}


@dataclass(frozen=True)
class LiveMilepost:
    url: str
    workspace: Workspace
    keys: dict[str, str]

    @property
    def secret_key(self) -> str:
        return self.keys["secret_key"]

    def export_to_store(self) -> None:
        """What the running server's scheduler does every few seconds: copy the events recorded
        so far into the analytics store, which event-level reports read."""
        store_export.export(settle=timedelta(0))


def serve(app: Any) -> ServerThread:
    bound = listener()
    server = ServerThread([(app, bound)])
    server.url = f"http://127.0.0.1:{port_of(bound)}"  # type: ignore[attr-defined]
    return server


class GatewayTimeoutOnce:
    """A load balancer that gives up on the first event batch after Milepost stored it: the
    client sees 504 although the events are in, and must retry without doubling them."""

    def __init__(self) -> None:
        self.timed_out = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/api/v1/events" and not self.timed_out:
            self.timed_out += 1

            async def lost(message: dict[str, Any]) -> None:
                pass

            await application(scope, receive, lost)
            await send({"type": "http.response.start", "status": 504, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await application(scope, receive, send)


@pytest.fixture
def live_milepost(transactional_db: None) -> Iterator[LiveMilepost]:
    workspace, keys = workspace_create(name="Acme", origins=["https://app.acme.test"])
    store.reset()
    with serve(application) as server:
        yield LiveMilepost(server.url, workspace, keys)  # type: ignore[attr-defined]
