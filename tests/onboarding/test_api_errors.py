"""Every API error in the documented shape {"error": {"code", "message"}}, whatever answered it
(a DRF view, Django's URL resolver, an uncaught exception); every 429 with `Retry-After`; the
secret-key API limited per key; CORS granted to no origin that was not checked."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.test import Client

from onboarding import rate_limits, recording
from tests.factories import WorkspaceFactory
from tests.onboarding.conftest import TrialJourney

pytestmark = pytest.mark.django_db

ORIGIN = "https://app.example.com"
FOREIGN = "https://evil.example.net"


@pytest.fixture(autouse=True)
def _a_fresh_rate_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counters live in the cache, shared with other tests (and the wall clock's minute): each
    test counts in a window of its own."""
    window = uuid.uuid4().int
    monkeypatch.setattr(rate_limits, "current_window", lambda: window)


def error_of(response: Any) -> dict[str, Any]:
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) <= {"code", "message", "fields"}
    assert error["message"]
    return error


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("get", "/api/v1/no-such-thing", 404, "not_found"),
        ("get", "/api/v1/analytics/nope", 404, "not_found"),
        ("delete", "/api/v1/events", 405, "method_not_allowed"),
        ("get", "/api/v1/widget/bootstrap", 405, "method_not_allowed"),
        ("post", "/api/v1/content/journey/nope/publish", 404, "unknown_key"),
    ],
)
def test_errors_on_api_paths_are_json_in_the_documented_shape(
    client: Client, secret_headers: dict[str, str], method: str, path: str, status: int, code: str
) -> None:
    response = getattr(client, method)(path, **secret_headers)

    assert response.status_code == status
    assert error_of(response)["code"] == code


def test_an_uncaught_error_is_a_json_500_not_djangos_page(
    secret_headers: dict[str, str], trial: TrialJourney, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(recording, "journey_progress", broken)
    recording.end_user_identify(workspace=trial.workspace, external_id="u1")
    client = Client(raise_request_exception=False)

    response = client.get("/api/v1/users/u1/progress", **secret_headers)

    assert response.status_code == 500
    assert error_of(response)["code"] == "internal"


def test_the_secret_key_api_is_limited_per_key_with_retry_after(
    client: Client, secret_headers: dict[str, str], settings: Any, trial: TrialJourney
) -> None:
    settings.MILEPOST_MAX_API_REQUESTS_PER_MINUTE = 3
    other = {"HTTP_AUTHORIZATION": f"Bearer {WorkspaceFactory().keys['secret_key']}"}
    answers = [
        client.get("/api/v1/users/u1/progress", **secret_headers).status_code for _ in range(4)
    ]
    limited = client.get("/api/v1/content", **secret_headers)
    other_key = client.get("/api/v1/content", **other)

    assert answers == [404, 404, 404, 429]
    assert limited.status_code == 429
    assert error_of(limited)["code"] == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert other_key.status_code == 200


def test_the_secret_key_budget_counts_what_other_processes_let_through(
    client: Client, secret_headers: dict[str, str], settings: Any, trial: TrialJourney
) -> None:
    settings.MILEPOST_MAX_API_REQUESTS_PER_MINUTE = 5
    # Four calls this minute counted by other server processes in the shared counter.
    shared = rate_limits.counter_name("api:", trial.workspace.pk, rate_limits.current_window())
    rate_limits.window_add(shared, 4)

    answers = [client.get("/api/v1/content", **secret_headers).status_code for _ in range(3)]

    # The first call is this process's fifth of the minute; it learns the others' four as it
    # counts it, so the next is refused.
    assert answers == [200, 429, 429]


def test_a_widget_key_over_its_budget_gets_retry_after(
    client: Client, publishable_key: str, settings: Any
) -> None:
    settings.MILEPOST_MAX_MESSAGES_PER_KEY_PER_MINUTE = 1
    body = json.dumps({"key": publishable_key, "user": {"id": "u1"}})
    client.post("/api/v1/widget/bootstrap", body, "application/json", HTTP_ORIGIN=ORIGIN)

    limited = client.post("/api/v1/widget/bootstrap", body, "application/json", HTTP_ORIGIN=ORIGIN)

    assert limited.status_code == 429
    assert error_of(limited)["code"] == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert limited["Access-Control-Allow-Origin"] == ORIGIN
    # The page's own script may read it (CORS hides every other header but a few).
    assert limited["Access-Control-Expose-Headers"] == "Retry-After"


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ('{"key": "pk_unknown", "user": {"id": "u1"}}', "application/json", 401),
        ('{"key": "KEY", "user": {"id": "u1"}}', "application/json", 403),
        ("{oops", "application/json", 400),
        ('{"key": "KEY", "events": ' + "[" * 10 + "]" * 10 + "}", "application/xml", 415),
        ('{"key": "KEY", "pad": "' + "x" * 600_000 + '"}', "application/json", 413),
    ],
)
def test_no_answer_given_before_the_origin_check_grants_a_foreign_origin(
    client: Client, publishable_key: str, body: str, content_type: str, status: int
) -> None:
    response = client.post(
        "/api/v1/widget/events",
        body.replace("KEY", publishable_key),
        content_type,
        HTTP_ORIGIN=FOREIGN,
    )
    wrong_method = client.put("/api/v1/widget/events", "{}", HTTP_ORIGIN=FOREIGN)

    assert response.status_code == status
    assert "Access-Control-Allow-Origin" not in response
    assert wrong_method.status_code == 405
    assert "Access-Control-Allow-Origin" not in wrong_method


def test_a_foreign_page_cannot_tell_a_valid_key_from_an_unknown_one(
    client: Client, publishable_key: str
) -> None:
    def probe(candidate: str) -> dict[str, str]:
        response = client.post(
            "/api/v1/widget/bootstrap",
            json.dumps({"key": candidate, "user": {"id": "u1"}}),
            "application/json",
            HTTP_ORIGIN=FOREIGN,
        )
        return {k: v for k, v in response.items() if k.startswith("Access-Control")}

    assert probe(publishable_key) == probe("pk_unknown") == {}
