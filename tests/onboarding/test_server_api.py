from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.test import Client

from onboarding.models import EndUser, Event, MilestoneCompletion
from tests.factories import EndUserFactory, MilestoneFactory, WorkspaceFactory
from tests.onboarding.conftest import TrialJourney

pytestmark = pytest.mark.django_db


def call(client: Client, method: str, path: str, key: str | None, body: Any = None, **extra: Any):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    data = body if isinstance(body, str | bytes) else json.dumps(body) if body is not None else ""
    return getattr(client, method)(
        path, data=data, content_type="application/json", **headers, **extra
    )


def new_event(user: str = "u1", name: str = "message_sent", **extra: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "user_id": user, "name": name, **extra}


@pytest.fixture
def secret(trial: TrialJourney) -> str:
    return trial.workspace.keys["secret_key"]


def test_put_creates_then_updates_an_end_users_traits(client: Client, secret: str) -> None:
    created = call(client, "put", "/api/v1/users/u1", secret, {"traits": {"plan": "trial"}})
    updated = call(client, "put", "/api/v1/users/u1", secret, {"traits": {"role": "admin"}})

    assert created.status_code == 201
    assert updated.status_code == 200
    assert updated.json()["traits"] == {"plan": "trial", "role": "admin"}


def test_events_reply_lists_accepted_duplicate_and_rejected_ids(
    client: Client, secret: str
) -> None:
    good = new_event()
    batch = {"events": [good, {"id": "nope", "user_id": "u1", "name": "x"}]}

    first = call(client, "post", "/api/v1/events", secret, batch)
    second = call(client, "post", "/api/v1/events", secret, batch)

    assert first.status_code == 200
    assert first.json() == {
        "accepted": [good["id"]],
        "duplicates": [],
        "rejected": [{"index": 1, "id": "nope", "reason": "id 'nope' is not a UUID"}],
    }
    assert second.json()["accepted"] == []
    assert second.json()["duplicates"] == [good["id"]]
    assert Event.objects.count() == 1


def test_a_batch_over_the_limit_is_refused_whole(client: Client, secret: str) -> None:
    response = call(
        client, "post", "/api/v1/events", secret, {"events": [new_event() for _ in range(501)]}
    )

    assert response.status_code == 413
    assert response.json()["error"]["message"] == ("501 events in one batch; the limit is 500.")
    assert not Event.objects.exists()


def test_a_body_over_the_byte_limit_is_refused_before_it_is_read(
    client: Client, secret: str
) -> None:
    body = json.dumps({"events": [new_event(properties={"x": "y" * 600_000})]})

    response = call(client, "post", "/api/v1/events", secret, body)

    assert response.status_code == 413
    assert "the limit is 512000" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", "malformed_json"),
        ("[1, 2]", "malformed_json"),
        (json.dumps({"events": "many"}), "invalid"),
    ],
)
def test_malformed_bodies_get_a_specific_400(
    client: Client, secret: str, body: str, code: str
) -> None:
    response = call(client, "post", "/api/v1/events", secret, body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_wrong_types_in_traits_name_the_field(client: Client, secret: str) -> None:
    response = call(client, "put", "/api/v1/users/u1", secret, {"traits": ["plan"]})

    assert response.status_code == 400
    assert "traits" in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Authenticate with 'Authorization: Bearer sk_…'."),
        ("Bearer sk_wrong", "The secret key is not valid."),
        ("Basic abc", "Send the secret key as 'Authorization: Bearer sk_…'."),
    ],
)
def test_calls_without_a_valid_secret_key_are_refused(
    client: Client, trial: TrialJourney, header: str | None, message: str
) -> None:
    extra = {"HTTP_AUTHORIZATION": header} if header else {}

    response = client.get("/api/v1/users/u1/progress", **extra)

    assert response.status_code == 401
    assert response.json()["error"]["message"] == message


def test_the_publishable_key_cannot_call_a_server_endpoint(
    client: Client, trial: TrialJourney
) -> None:
    response = call(
        client, "post", "/api/v1/events", trial.workspace.keys["publishable_key"], {"events": []}
    )

    assert response.status_code == 401
    assert "needs the secret key" in response.json()["error"]["message"]


def test_server_reported_milestone_moves_progress(
    client: Client, trial: TrialJourney, secret: str
) -> None:
    first = call(client, "post", "/api/v1/users/u1/milestones/installed-js", secret, {})
    again = call(client, "post", "/api/v1/users/u1/milestones/installed-js", secret, {})
    progress = client.get("/api/v1/users/u1/progress", HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert first.status_code == 201
    assert first.json()["completed"] is True
    assert again.status_code == 200
    assert again.json()["completed"] is False
    assert again.json()["completed_at"] == first.json()["completed_at"]
    (journey,) = progress.json()["journeys"]
    assert journey["percent"] == 33
    assert journey["milestones"][0]["key"] == "installed-js"
    assert journey["milestones"][0]["completed_at"] is not None


def test_unknown_milestone_and_unknown_user_are_404s_naming_them(
    client: Client, secret: str
) -> None:
    milestone = call(client, "post", "/api/v1/users/u1/milestones/no-such", secret, {})
    progress = client.get("/api/v1/users/ghost/progress", HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert milestone.status_code == 404
    assert milestone.json()["error"] == {
        "code": "unknown_milestone",
        "message": "No milestone with key 'no-such' in this workspace.",
    }
    assert progress.status_code == 404
    assert progress.json()["error"]["code"] == "unknown_user"


def test_delete_erases_the_person_in_one_go(
    client: Client, trial: TrialJourney, secret: str
) -> None:
    call(client, "post", "/api/v1/events", secret, {"events": [new_event() for _ in range(3)]})
    call(client, "post", "/api/v1/users/u1/milestones/installed-js", secret, {})

    response = call(client, "delete", "/api/v1/users/u1", secret)

    assert response.status_code == 200
    assert response.json()["erased"] == {"events": 3, "completions": 2, "journeys": 1}
    assert not EndUser.objects.exists()
    assert not Event.objects.exists()
    assert not MilestoneCompletion.objects.exists()


def test_a_key_of_one_workspace_reaches_nothing_of_another(
    client: Client, trial: TrialJourney
) -> None:
    other = WorkspaceFactory()
    foreign_key = other.keys["secret_key"]
    EndUserFactory(workspace=trial.workspace, external_id="victim")
    MilestoneFactory(journey__workspace=other, key="their-own")

    progress = client.get(
        "/api/v1/users/victim/progress", HTTP_AUTHORIZATION=f"Bearer {foreign_key}"
    )
    erase = call(client, "delete", "/api/v1/users/victim", foreign_key)
    report = call(client, "post", "/api/v1/users/victim/milestones/installed-js", foreign_key, {})

    assert progress.status_code == 404
    assert erase.status_code == 404
    assert report.status_code == 404
    assert EndUser.objects.filter(workspace=trial.workspace, external_id="victim").exists()
    assert not MilestoneCompletion.objects.exists()


def test_the_openapi_schema_documents_every_endpoint(client: Client) -> None:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    schema = json.loads(response.content)
    paths = set(schema["paths"])
    assert {
        "/api/v1/events",
        "/api/v1/users/{external_id}",
        "/api/v1/users/{external_id}/progress",
        "/api/v1/users/{external_id}/milestones/{milestone_key}",
        "/api/v1/widget/bootstrap",
        "/api/v1/widget/events",
        "/api/v1/widget/progress",
        "/api/v1/widget/stream",
    } <= paths
    assert "413" in schema["paths"]["/api/v1/events"]["post"]["responses"]


def test_the_openapi_schema_validates_without_warnings(tmp_path: Any) -> None:
    from django.core.management import call_command

    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    assert "/api/v1/widget/stream" in target.read_text()


def test_json_no_database_can_store_is_a_400(client: Client, secret: str) -> None:
    nan = call(client, "post", "/api/v1/events", secret, '{"events": [{"x": NaN}]}')
    deep = call(client, "post", "/api/v1/events", secret, "[" * 50_000)

    assert nan.status_code == 400
    assert deep.status_code == 400
    assert deep.json()["error"]["code"] == "malformed_json"
