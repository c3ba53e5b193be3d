"""The Python client (clients/python) against a live Milepost: every call a team makes, the
background flusher, retries that store nothing twice, and errors naming the API's code."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from milepost_client import (
    AuthenticationError,
    InvalidRequestError,
    Milepost,
    NotFoundError,
    QueueFullError,
    ServerError,
    TransportError,
    UnavailableError,
)

from milepost.asgi import application
from onboarding.models import EndUser, Event
from tests.clients.conftest import TRIAL_CONTENT, GatewayTimeoutOnce, LiveMilepost, serve


@pytest.fixture
def client(live_milepost: LiveMilepost) -> Iterator[Milepost]:
    with Milepost(live_milepost.url, live_milepost.secret_key, backoff=0.01) as milepost:
        milepost.import_content(TRIAL_CONTENT, publish=True)
        yield milepost


def stored(ids: list[str]) -> int:
    return Event.objects.filter(client_id__in=[uuid.UUID(i) for i in ids]).count()


def test_identify_creates_then_merges_traits(client: Milepost) -> None:
    first = client.identify("user-42", {"plan": "trial", "role": "admin"})
    second = client.identify("user-42", {"plan": "pro"})

    assert first.created
    assert not second.created
    assert second.traits == {"plan": "pro", "role": "admin"}
    assert second.first_seen_at.tzinfo is not None


def test_tracked_events_reach_milepost_in_the_background_and_complete_a_milestone(
    client: Milepost,
) -> None:
    ids = [client.track("user-7", "message_sent", {"channel": "email"}) for _ in range(2)]

    deadline = time.monotonic() + 10
    while client.pending and time.monotonic() < deadline:  # the flusher sends without a flush
        time.sleep(0.05)

    assert stored(ids) == 2
    assert client.pending == 0
    journey = client.progress("user-7").journey("trial")
    reached = {m.key: m.completed_at is not None for m in journey.milestones}
    assert reached == {"installed-js": False, "sent-2-messages": True}
    assert journey.pql


def test_flush_sends_whole_batches_and_a_resend_stores_nothing_twice(client: Milepost) -> None:
    ids = [client.track("user-8", "report_viewed", {"n": n}) for n in range(250)]
    client.flush()

    again = client.send_events(
        [{"id": i, "user_id": "user-8", "name": "report_viewed"} for i in ids[:3]]
    )

    assert stored(ids) == 250
    assert again.accepted == ()
    assert again.duplicates == tuple(ids[:3])


def test_a_batch_retried_after_a_gateway_timeout_is_stored_once(
    live_milepost: LiveMilepost,
) -> None:
    gateway = GatewayTimeoutOnce()
    with (
        serve(gateway) as server,
        Milepost(server.url, live_milepost.secret_key, backoff=0.01) as client,  # type: ignore[attr-defined]
    ):
        ids = [client.track("user-9", "message_sent") for _ in range(3)]
        client.flush()

    assert gateway.timed_out == 1
    assert stored(ids) == 3
    assert client.pending == 0


def test_a_server_report_completes_a_milestone_once(client: Milepost) -> None:
    at = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    first = client.complete_milestone("user-5", "installed-js", at=at)
    second = client.complete_milestone("user-5", "installed-js")

    assert (first.completed, first.completed_at) == (True, at)
    assert (second.completed, second.completed_at) == (False, at)
    assert client.progress("user-5").journey("trial").percent == 50


def test_errors_name_the_api_code(client: Milepost, live_milepost: LiveMilepost) -> None:
    with pytest.raises(NotFoundError) as unknown:
        client.complete_milestone("user-5", "no-such-milestone")
    with pytest.raises(InvalidRequestError) as invalid:
        client.import_content({"format": "milepost-content/1", "walkthroughs": [{"key": "x"}]})
    with (
        Milepost(live_milepost.url, "sk_wrong") as stranger,
        pytest.raises(AuthenticationError) as refused,
    ):
        stranger.progress("user-5")

    assert (unknown.value.status, unknown.value.code) == (404, "unknown_milestone")
    assert invalid.value.code == "invalid_content"
    assert any(path.startswith("walkthroughs[0]") for path in invalid.value.fields)
    assert (refused.value.status, refused.value.code) == (401, "authentication_failed")


def test_erase_removes_the_person(client: Milepost) -> None:
    client.identify("user-gone", {"plan": "trial"})
    client.send_events([{"id": str(uuid.uuid4()), "user_id": "user-gone", "name": "login"}])

    erased = client.erase("user-gone")

    assert erased.erased["events"] == 1
    assert not EndUser.objects.filter(external_id="user-gone").exists()
    with pytest.raises(NotFoundError) as gone:
        client.progress("user-gone")
    assert gone.value.code == "unknown_user"


def test_content_dry_run_writes_nothing_and_publish_makes_a_version(client: Milepost) -> None:
    tooltip = {
        "format": "milepost-content/1",
        "tooltips": [
            {
                "key": "help",
                "name": "Help",
                "page_url_pattern": "/dashboard",
                "selector": "#help",
                "body_markdown": "Ask us anything.",
            }
        ],
    }

    preview = client.import_content(tooltip, dry_run=True)
    exported_before = client.export_content()
    client.import_content(tooltip)
    version = client.publish("tooltip", "help")

    assert preview.dry_run
    assert preview.changes
    assert exported_before["tooltips"] == []
    assert [t["key"] for t in client.export_content()["tooltips"]] == ["help"]
    assert (version.kind, version.key, version.version) == ("tooltip", "help", 1)


def test_reports_answer_the_dashboard_numbers(client: Milepost) -> None:
    client.track("user-1", "message_sent")
    client.track("user-1", "message_sent")
    client.flush()
    today = datetime.now(UTC).date()

    funnel = client.journey_funnel(
        "trial", date_from=today - timedelta(days=1), date_to=today + timedelta(days=1)
    )

    reached = {step.key: step.reached for step in funnel.steps}
    assert reached == {"started": 1, "installed-js": 0, "sent-2-messages": 1}


class PublishedThenTimedOut:
    """A load balancer that gives up on every publish after Milepost made the version."""

    def __init__(self) -> None:
        self.publishes = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/publish"):
            self.publishes += 1

            async def lost(message: dict[str, Any]) -> None:
                pass

            await application(scope, receive, lost)
            await send({"type": "http.response.start", "status": 504, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await application(scope, receive, send)


def test_a_publish_that_timed_out_is_not_repeated(
    client: Milepost, live_milepost: LiveMilepost
) -> None:
    gateway = PublishedThenTimedOut()
    with (
        serve(gateway) as server,
        Milepost(server.url, live_milepost.secret_key, backoff=0.01) as behind,  # type: ignore[attr-defined]
        pytest.raises(ServerError) as failed,
    ):
        behind.publish("journey", "trial")

    assert (failed.value.status, failed.value.code) == (504, "http_504")
    assert gateway.publishes == 1  # a retry would have made a third version
    assert client.publish("journey", "trial").version == 3


def test_an_analytics_store_that_is_down_raises_unavailable_with_its_wait(
    client: Milepost, settings: Any
) -> None:
    settings.ANALYTICS_URL = "http://127.0.0.1:9/milepost"  # nothing listens there
    today = datetime.now(UTC).date()
    with (
        Milepost(client.options.base_url, client.options.secret_key, max_retries=0) as once,
        pytest.raises(UnavailableError) as down,
    ):
        once.retention(date_from=today, date_to=today, periods=2)

    assert (down.value.status, down.value.code) == (503, "analytics_unavailable")
    assert down.value.retry_after == 30
    assert "127.0.0.1:9" in down.value.message


def test_an_unanswering_server_fails_with_a_transport_error_after_the_retries() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with (
            Milepost(url, "sk_x", timeout=0.2, max_retries=1, backoff=0.01) as client,
            pytest.raises(TransportError) as failed,
        ):
            client.progress("user-1")

    assert "Timeout" in str(failed.value)


def test_the_queue_is_bounded_while_milepost_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"  # nothing listens there
    client = Milepost(url, "sk_x", batch_size=2, max_queue_size=2, max_retries=0)
    client.track("user-1", "a")
    client.track("user-1", "b")

    with pytest.raises(QueueFullError):
        client.track("user-1", "c")
    assert client.pending == 2  # waiting or being tried, whichever the flusher is at
    client.close()  # logs what it could not send
    assert client.pending == 2  # kept, never silently counted as sent
