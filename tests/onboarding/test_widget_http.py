from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient, Client

from onboarding import recording
from onboarding.models import EndUser, Event
from tests.onboarding.conftest import TrialJourney

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = "https://app.example.com"


def post(client: Client, path: str, body: Any, origin: str | None = ORIGIN, **extra: Any):
    headers = {"HTTP_ORIGIN": origin} if origin else {}
    return client.post(
        path,
        data=json.dumps(body),
        content_type=extra.pop("content_type", "application/json"),
        **headers,
        **extra,
    )


def event(name: str = "message_sent") -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "name": name, "timestamp": "2026-11-22T10:00:00Z"}


@pytest.fixture
def key(trial: TrialJourney) -> str:
    return trial.workspace.keys["publishable_key"]


def test_bootstrap_answers_like_the_sockets_welcome_with_a_cors_grant(
    client: Client, key: str
) -> None:
    response = post(
        client,
        "/api/v1/widget/bootstrap",
        {"key": key, "user": {"id": "u1", "traits": {"plan": "trial"}}, "session": "s1"},
    )

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    body = response.json()
    assert body["type"] == "welcome"
    assert body["user"]["id"] == "u1"
    assert [j["journey"]["key"] for j in body["journeys"]] == ["trial"]


def test_a_preflight_is_granted_only_to_an_origin_some_workspace_allows(
    client: Client, key: str
) -> None:
    def preflight(origin: str) -> Any:
        return client.options(
            "/api/v1/widget/events",
            HTTP_ORIGIN=origin,
            HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
            HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type",
        )

    allowed = preflight("https://APP.example.com")
    foreign = preflight("https://anywhere.example")

    assert allowed.status_code == 204
    assert allowed["Access-Control-Allow-Origin"] == "https://APP.example.com"
    assert "POST" in allowed["Access-Control-Allow-Methods"]
    assert foreign.status_code == 204
    assert "Access-Control-Allow-Origin" not in foreign


def test_events_over_http_are_stored_once_even_as_a_beacon(client: Client, key: str) -> None:
    post(client, "/api/v1/widget/bootstrap", {"key": key, "user": {"id": "u1"}})
    body = {"key": key, "user": {"id": "u1"}, "events": [event(), event()]}

    first = post(client, "/api/v1/widget/events", body)
    # navigator.sendBeacon posts text/plain; the same batch again is a retry.
    beacon = post(client, "/api/v1/widget/events", body, content_type="text/plain")

    assert first.status_code == 200
    assert first.json()["accepted"] == [e["id"] for e in body["events"]]
    assert beacon.status_code == 200
    assert beacon.json()["duplicates"] == [e["id"] for e in body["events"]]
    assert Event.objects.filter(source="widget").count() == 2


@pytest.mark.parametrize(
    ("body", "origin", "status", "code"),
    [
        ({"user": {"id": "u1"}}, ORIGIN, 401, "missing_key"),
        ({"key": "pk_nope", "user": {"id": "u1"}}, ORIGIN, 401, "unknown_key"),
        ({"key": "KEY", "user": {"id": "u1"}}, "https://evil.example", 403, "origin_not_allowed"),
        ({"key": "KEY", "user": {"id": "u1"}}, None, 403, "origin_not_allowed"),
        ({"key": "KEY"}, ORIGIN, 400, "missing_user"),
        ({"key": "KEY", "user": {"id": ""}}, ORIGIN, 400, "missing_user"),
    ],
)
def test_bootstrap_refusals_are_specific(
    client: Client, key: str, body: dict[str, Any], origin: str | None, status: int, code: str
) -> None:
    if body.get("key") == "KEY":
        body = {**body, "key": key}

    response = post(client, "/api/v1/widget/bootstrap", body, origin=origin)

    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert not EndUser.objects.exists()
    if code == "origin_not_allowed":
        assert "Access-Control-Allow-Origin" not in response


def test_a_secret_key_in_a_widget_call_is_refused(client: Client, trial: TrialJourney) -> None:
    response = post(
        client,
        "/api/v1/widget/bootstrap",
        {"key": trial.workspace.keys["secret_key"], "user": {"id": "u1"}},
    )

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "secret_key_in_browser"


def test_events_for_a_user_never_identified_are_refused(client: Client, key: str) -> None:
    response = post(
        client, "/api/v1/widget/events", {"key": key, "user": {"id": "ghost"}, "events": [event()]}
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_user"
    assert not Event.objects.exists()


def test_malformed_json_over_http_is_a_400(client: Client, key: str) -> None:
    response = client.post(
        "/api/v1/widget/events", data="{oops", content_type="application/json", HTTP_ORIGIN=ORIGIN
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_progress_resync_returns_the_journeys_and_sequence(
    client: Client, trial: TrialJourney, key: str
) -> None:
    post(client, "/api/v1/widget/bootstrap", {"key": key, "user": {"id": "u1"}})
    end_user = EndUser.objects.get(external_id="u1")
    recording.milestone_complete(end_user=end_user, milestone=trial.installed)

    response = client.get("/api/v1/widget/progress", {"key": key, "user": "u1"}, HTTP_ORIGIN=ORIGIN)

    assert response.status_code == 200
    assert response.json()["seq"] == 1
    assert response.json()["journeys"][0]["percent"] == 33


def test_identity_verification_applies_to_http_calls_too(
    client: Client, trial: TrialJourney, key: str
) -> None:
    trial.workspace.enforce_identity_verification = True
    trial.workspace.save(update_fields=["enforce_identity_verification"])
    good = trial.workspace.user_hash_for("u1")

    refused = post(client, "/api/v1/widget/bootstrap", {"key": key, "user": {"id": "u1"}})
    accepted = post(
        client, "/api/v1/widget/bootstrap", {"key": key, "user": {"id": "u1"}, "user_hash": good}
    )
    progress = client.get(
        "/api/v1/widget/progress",
        {"key": key, "user": "u1", "user_hash": "bad"},
        HTTP_ORIGIN=ORIGIN,
    )

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "invalid_user_hash"
    assert accepted.status_code == 200
    assert progress.status_code == 403


async def _next_event(chunks: Any) -> str:
    while True:
        chunk = await asyncio.wait_for(anext(chunks), 5)
        text = chunk.decode() if isinstance(chunk, bytes) else chunk
        if text.startswith("event:") or text.startswith("id:"):
            return text


async def bootstrap_and_stream(client: AsyncClient, key: str) -> Any:
    """Identify u1 over HTTP, then open its push stream (from sequence 0)."""
    await client.post(
        "/api/v1/widget/bootstrap",
        data=json.dumps({"key": key, "user": {"id": "u1"}}),
        content_type="application/json",
        headers={"Origin": ORIGIN},
    )
    return await client.get(
        "/api/v1/widget/stream",
        {"key": key, "user": "u1", "after": "0"},
        headers={"Origin": ORIGIN},
    )


async def test_the_stream_carries_progress_pushes_without_a_socket(
    trial: TrialJourney, key: str
) -> None:
    response = await bootstrap_and_stream(AsyncClient(), key)
    chunks = aiter(response.streaming_content)
    assert (await anext(chunks)).startswith(b"retry:")

    end_user = await sync_to_async(EndUser.objects.get)(external_id="u1")
    # Give the stream a moment to subscribe before the push goes out.
    await asyncio.sleep(0.2)
    await sync_to_async(recording.milestone_complete)(end_user=end_user, milestone=trial.installed)
    text = await _next_event(chunks)

    assert response["Content-Type"] == "text/event-stream"
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    lines = dict(line.split(": ", 1) for line in text.strip().splitlines())
    assert lines["id"] == "1"
    assert lines["event"] == "progress"
    assert json.loads(lines["data"])["completed"] == "installed-js"
    await response.streaming_content.aclose()  # type: ignore[attr-defined]


async def test_the_stream_asks_for_a_resync_after_missed_pushes(
    trial: TrialJourney, key: str
) -> None:
    client = AsyncClient()
    await client.post(
        "/api/v1/widget/bootstrap",
        data=json.dumps({"key": key, "user": {"id": "u1"}}),
        content_type="application/json",
        headers={"Origin": ORIGIN},
    )
    end_user = await sync_to_async(EndUser.objects.get)(external_id="u1")
    await sync_to_async(recording.milestone_complete)(end_user=end_user, milestone=trial.installed)

    response = await client.get(
        "/api/v1/widget/stream",
        {"key": key, "user": "u1", "after": "0"},
        headers={"Origin": ORIGIN},
    )
    chunks = aiter(response.streaming_content)
    await anext(chunks)
    text = await _next_event(chunks)

    assert "event: resync" in text
    await response.streaming_content.aclose()  # type: ignore[attr-defined]


def test_progress_resync_returns_each_walkthroughs_state_too(
    client: Client, trial: TrialJourney, key: str
) -> None:
    post(client, "/api/v1/widget/bootstrap", {"key": key, "user": {"id": "u1"}})
    started = {**event("$walkthrough_started"), "properties": {"walkthrough": "tour", "attempt": 1}}
    post(client, "/api/v1/widget/events", {"key": key, "user": {"id": "u1"}, "events": [started]})

    response = client.get("/api/v1/widget/progress", {"key": key, "user": "u1"}, HTTP_ORIGIN=ORIGIN)

    assert response.json()["walkthroughs"] == {
        "tour": {"status": "in_progress", "step": 0, "attempt": 1}
    }
    assert response.json()["seq"] == 1  # the walkthrough push it answers


async def test_the_stream_carries_walkthrough_pushes_without_a_socket(
    trial: TrialJourney, key: str
) -> None:
    client = AsyncClient()
    identity = {"key": key, "user": {"id": "u1"}}
    response = await bootstrap_and_stream(client, key)
    chunks = aiter(response.streaming_content)
    await anext(chunks)
    await asyncio.sleep(0.2)  # let the stream subscribe
    dismissed = {
        **event("$walkthrough_dismissed"),
        "properties": {"walkthrough": "tour", "attempt": 1, "step": 0},
    }
    await client.post(
        "/api/v1/widget/events",
        data=json.dumps({**identity, "events": [dismissed]}),
        content_type="application/json",
        headers={"Origin": ORIGIN},
    )
    text = await _next_event(chunks)

    lines = dict(line.split(": ", 1) for line in text.strip().splitlines())
    assert lines["event"] == "walkthrough"
    assert lines["id"] == "1"
    data = json.loads(lines["data"])
    # Refused (no attempt 1 was ever started) and answered with the state that holds: none.
    assert (data["walkthrough"], data["state"], data["event"]) == ("tour", None, dismissed["id"])
    await response.streaming_content.aclose()  # type: ignore[attr-defined]
