"""Input no database column stores — numbers beyond a double, NUL characters, unpaired
surrogates — at every entry point: a specific 4xx (or socket `error`) naming the field, nothing
written, never a 500 or `internal`. PostgreSQL is where these used to fail; the suite runs on
both backends."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client, override_settings

from onboarding import recording
from onboarding.models import EndUser, Event
from tests.onboarding.conftest import TrialJourney
from tests.onboarding.test_widget_socket import ORIGIN, event, hello, say, socket

pytestmark = pytest.mark.django_db(transaction=True)

HUGE_INTEGER = "1" + "0" * 400


def server_event(**extra: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "user_id": "u1", "name": "message_sent", **extra}


def send(client: Client, method: str, path: str, body: str, **headers: Any) -> Any:
    return getattr(client, method)(path, data=body, content_type="application/json", **headers)


@pytest.mark.parametrize("number", ["1e400", "-1.5E+999", HUGE_INTEGER])
def test_a_number_beyond_a_double_refuses_the_whole_batch_naming_the_field(
    client: Client, secret_headers: dict[str, str], number: str
) -> None:
    body = json.dumps({"events": [server_event(), server_event(properties={"price": 0})]})
    body = body.replace('"price": 0', f'"price": {number}')

    response = send(client, "post", "/api/v1/events", body, **secret_headers)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "number_out_of_range"
    assert list(error["fields"]) == ["events[1].properties.price"]
    assert error["message"].startswith("events[1].properties.price: ")
    assert not Event.objects.exists()


def test_traits_with_a_number_beyond_a_double_are_a_400_and_create_no_one(
    client: Client, secret_headers: dict[str, str]
) -> None:
    response = send(
        client, "put", "/api/v1/users/u1", '{"traits": {"seats": 1e400}}', **secret_headers
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "traits.seats": "traits.seats: 1e400 is beyond the range of a double-precision number "
        "(±1.8e308)."
    }
    assert not EndUser.objects.exists()


@pytest.mark.parametrize("path", ["/api/v1/widget/bootstrap", "/api/v1/widget/events"])
def test_widget_calls_with_a_number_beyond_a_double_are_a_400(
    client: Client, publishable_key: str, path: str
) -> None:
    body = (
        f'{{"key": "{publishable_key}", "user": {{"id": "u1", "traits": {{"n": 1e400}}}}, '
        f'"events": [{{"id": "{uuid.uuid4()}", "name": "x", "properties": {{"n": -1e999}}}}]}}'
    )

    response = send(client, "post", path, body, HTTP_ORIGIN=ORIGIN)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "number_out_of_range"
    assert not EndUser.objects.exists()


async def test_the_socket_refuses_a_number_beyond_a_double_and_stays_up(
    publishable_key: str,
) -> None:
    communicator = socket(publishable_key)
    await communicator.connect()
    await hello(communicator)
    frame = json.dumps({"type": "events", "events": [event(), event(properties={"n": 1})]})

    await communicator.send_to(text_data=frame.replace('"n": 1', '"n": 1e400'))
    refused = json.loads(await communicator.receive_from(timeout=5))
    ack = await say(communicator, {"type": "events", "events": [event()]})

    assert refused["code"] == "number_out_of_range"
    assert refused["field"] == "events[1].properties.n"
    assert ack["type"] == "ack"
    assert await sync_to_async(Event.objects.count)() == 1
    await communicator.disconnect()


async def test_an_unrelated_integrity_error_is_not_reported_as_an_erased_user(
    trial: TrialJourney, publishable_key: str
) -> None:
    from django.db import connection

    communicator = socket(publishable_key)
    await communicator.connect()
    await hello(communicator)

    def refuse_events_named_boom() -> None:
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                cursor.execute(
                    "CREATE TRIGGER boom BEFORE INSERT ON onboarding_event "
                    "WHEN NEW.name = 'boom' BEGIN SELECT RAISE(ABORT, 'no boom'); END"
                )
            else:
                cursor.execute(
                    "CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN IF NEW.name = 'boom' "
                    "THEN RAISE EXCEPTION 'no boom' USING ERRCODE = 'check_violation'; END IF; "
                    "RETURN NEW; END $$ LANGUAGE plpgsql; CREATE TRIGGER boom BEFORE INSERT ON "
                    "onboarding_event FOR EACH ROW EXECUTE FUNCTION boom()"
                )

    await sync_to_async(refuse_events_named_boom)()
    reply = await say(communicator, {"type": "events", "events": [event("boom")]})

    assert reply["type"] == "error"
    assert reply["code"] == "internal"
    # The SDK holds the events and sends them again after this (not at its next flush, 10 s on).
    assert reply["retry_after"] == 1
    assert await sync_to_async(trial.workspace.end_users.filter(external_id="u1").exists)()
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("query", "code"),
    [("key=pk_%00&user=x", "invalid_key"), ("key=KEY&user=a%00b", "invalid_user")],
)
@pytest.mark.parametrize("path", ["/api/v1/widget/progress", "/api/v1/widget/stream"])
def test_query_parameters_holding_nul_are_a_specific_400(
    client: Client, trial: TrialJourney, publishable_key: str, path: str, query: str, code: str
) -> None:
    recording.end_user_identify(workspace=trial.workspace, external_id="x")

    response = client.get(f"{path}?{query.replace('KEY', publishable_key)}", HTTP_ORIGIN=ORIGIN)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"key": "pk_\u0000", "user": {"id": "u1"}}, "invalid_key"),
        ({"key": "\ud800", "user": {"id": "u1"}}, "invalid_key"),
        ({"key": "KEY", "user": {"id": "u\u0000"}}, "invalid_user"),
        ({"key": "KEY", "user": {"id": "\udfffu"}}, "invalid_user"),
        ({"key": "KEY", "user": {"id": "u1", "traits": {"a\u0000": 1}}}, "invalid_traits"),
        ({"key": "KEY", "user": {"id": "u1", "traits": {"a": ["\ud83d"]}}}, "invalid_traits"),
    ],
)
def test_a_bootstrap_holding_nul_or_a_lone_surrogate_is_a_specific_400(
    client: Client, publishable_key: str, body: dict[str, Any], code: str
) -> None:
    text = json.dumps(body).replace("KEY", publishable_key).replace("\\\\", "\\")

    response = send(client, "post", "/api/v1/widget/bootstrap", text, HTTP_ORIGIN=ORIGIN)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert not EndUser.objects.exists()


@pytest.mark.parametrize(
    ("method", "path", "body", "code"),
    [
        ("put", "/api/v1/users/a%00b", '{"traits": {}}', "invalid_user"),
        ("get", "/api/v1/users/a%00b/progress", "", "invalid_user"),
        ("delete", "/api/v1/users/a%00b", "", "invalid_user"),
        ("post", "/api/v1/users/a%00b/milestones/installed-js", "", "invalid_user"),
        ("put", "/api/v1/users/u1", '{"traits": {"note": "a\\u0000b"}}', "invalid_traits"),
        ("put", "/api/v1/users/u1", '{"traits": {"\\udc00": 1}}', "invalid_traits"),
    ],
)
def test_server_calls_holding_nul_or_a_lone_surrogate_are_a_specific_400(
    client: Client, secret_headers: dict[str, str], method: str, path: str, body: str, code: str
) -> None:
    response = send(client, method, path, body, **secret_headers)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert not EndUser.objects.exists()


def test_events_holding_nul_or_lone_surrogates_are_rejected_by_name_and_the_rest_stored(
    client: Client, secret_headers: dict[str, str]
) -> None:
    good = server_event()
    body = json.dumps(
        {
            "events": [
                good,
                server_event(name="sent\u0000"),
                server_event(properties={"tab": {"title": "\ud800"}}),
                server_event(user_id="\udbff"),
            ]
        }
    ).replace("\\\\", "\\")

    response = send(client, "post", "/api/v1/events", body, **secret_headers)

    assert response.status_code == 200
    assert response.json()["accepted"] == [good["id"]]
    assert [r["reason"] for r in response.json()["rejected"]] == [
        "name must not contain NUL (U+0000) characters",
        "properties.tab.title must not contain unpaired surrogates (U+D800-U+DFFF)",
        "user id must not contain unpaired surrogates (U+D800-U+DFFF)",
    ]
    assert Event.objects.count() == 1


async def test_a_socket_handshake_with_a_nul_key_is_refused(publishable_key: str) -> None:
    communicator = socket("pk_%00")

    connected, _ = await communicator.connect()

    assert connected is False


async def test_a_hello_with_lone_surrogates_is_a_specific_error_not_internal(
    publishable_key: str,
) -> None:
    communicator = socket(publishable_key)
    await communicator.connect()
    frame = '{"type": "hello", "user": {"id": "\\udc80", "traits": {}}}'

    await communicator.send_to(text_data=frame)
    bad_id = json.loads(await communicator.receive_from(timeout=5))
    await communicator.send_to(
        text_data=frame.replace('"\\udc80"', '"u1"').replace("{}", '{"x": "\\ud800"}')
    )
    bad_traits = json.loads(await communicator.receive_from(timeout=5))

    assert (bad_id["code"], bad_traits["code"]) == ("invalid_user", "invalid_traits")
    assert bad_traits["message"] == "traits.x must not contain unpaired surrogates (U+D800-U+DFFF)"
    await communicator.disconnect()


@override_settings(MILEPOST_MAX_EVENT_BYTES=1_000)
def test_an_event_over_the_size_limit_is_rejected_by_its_size_and_the_rest_stored(
    client: Client, secret_headers: dict[str, str]
) -> None:
    """The limit counts the event's compact JSON in UTF-8 bytes: 400 "é" are 800 bytes of text
    (not the 2 400 of their \\u escapes), so that event fits; 600 of them do not. A big integer
    (beyond what orjson writes) is measured too."""
    fits = server_event(properties={"note": "é" * 400})
    too_big = server_event(properties={"note": "é" * 600})
    huge_number = server_event(properties={"id": 10**40, "pad": "x" * 1_000})
    body = json.dumps({"events": [fits, too_big, huge_number]}, ensure_ascii=False)

    response = send(client, "post", "/api/v1/events", body.encode(), **secret_headers)

    assert response.status_code == 200
    assert response.json()["accepted"] == [fits["id"]]

    def size(event: dict[str, Any]) -> int:
        return len(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode())

    assert response.json()["rejected"] == [
        {
            "index": 1,
            "id": too_big["id"],
            "reason": f"event is {size(too_big)} bytes; the limit is 1000",
        },
        {
            "index": 2,
            "id": huge_number["id"],
            "reason": f"event is {size(huge_number)} bytes; the limit is 1000",
        },
    ]
    assert Event.objects.get().properties == {"note": "é" * 400}
