from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from milepost.asgi import application
from onboarding import recording, services
from onboarding.models import ContentState, ErasureRecord, Event, MilestoneCompletion, Workspace
from tests.factories import WorkspaceFactory
from tests.onboarding.conftest import TrialJourney

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = "https://app.example.com"


def socket(key: str, origin: str | None = ORIGIN) -> WebsocketCommunicator:
    headers = [(b"origin", origin.encode())] if origin else []
    return WebsocketCommunicator(application, f"/ws/widget/?key={key}", headers=headers)


async def say(communicator: WebsocketCommunicator, message: dict[str, Any]) -> dict[str, Any]:
    await communicator.send_to(text_data=json.dumps(message))
    return json.loads(await communicator.receive_from(timeout=5))


async def hello(
    communicator: WebsocketCommunicator, user: str = "u1", **extra: Any
) -> dict[str, Any]:
    return await say(
        communicator,
        {"type": "hello", "user": {"id": user, "traits": {"plan": "trial"}}, **extra},
    )


def event(name: str = "message_sent", **extra: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "name": name, "timestamp": "2026-11-22T10:00:00Z", **extra}


@pytest.fixture
def key(trial: TrialJourney) -> str:
    return trial.workspace.keys["publishable_key"]


async def test_hello_gets_a_welcome_with_the_users_journeys(key: str) -> None:
    communicator = socket(key)
    connected, _ = await communicator.connect()

    welcome = await hello(communicator)

    assert connected
    assert welcome["type"] == "welcome"
    assert welcome["user"] == {"id": "u1", "traits": {"plan": "trial"}}
    assert [j["journey"]["key"] for j in welcome["journeys"]] == ["trial"]
    assert set(welcome["content"]) >= {"walkthroughs", "tooltips", "progress_bars"}
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("origin", "key_kind"),
    [
        ("https://evil.example.net", "publishable_key"),
        (None, "publishable_key"),
        (ORIGIN, "secret_key"),
    ],
)
async def test_it_refuses_a_foreign_origin_a_missing_one_or_a_secret_key_before_accepting(
    trial: TrialJourney, origin: str | None, key_kind: str
) -> None:
    communicator = socket(trial.workspace.keys[key_kind], origin)

    connected, _ = await communicator.connect()

    assert connected is False


async def test_an_unknown_key_is_refused(trial: TrialJourney) -> None:
    connected, _ = await socket("pk_unknown").connect()

    assert connected is False


async def test_a_rotated_key_or_a_withdrawn_origin_is_refused_at_once_after_a_connection(
    trial: TrialJourney,
) -> None:
    # Each process keeps a key's workspace for a second; a change saved here forgets it.
    old_key = trial.workspace.keys["publishable_key"]
    first = socket(old_key)
    assert (await first.connect())[0] is True
    await first.disconnect()
    workspace = trial.workspace
    new_key = (await sync_to_async(services.workspace_rotate_keys)(workspace=workspace))[
        "publishable_key"
    ]
    assert (await socket(old_key).connect())[0] is False
    second = socket(new_key)
    assert (await second.connect())[0] is True
    await second.disconnect()
    workspace.allowed_origins = ["https://other.example.com"]
    await sync_to_async(workspace.save)(update_fields=["allowed_origins"])
    assert (await socket(new_key).connect())[0] is False


async def test_events_are_acknowledged_after_they_are_stored_and_never_twice(key: str) -> None:
    communicator = socket(key)
    await communicator.connect()
    await hello(communicator)
    batch = {"type": "events", "events": [event(), event()]}

    first = await say(communicator, batch)
    second = await say(communicator, batch)

    ids = [e["id"] for e in batch["events"]]
    assert first == {"type": "ack", "accepted": ids, "duplicates": [], "rejected": []}
    assert second["accepted"] == []
    assert second["duplicates"] == ids
    assert await sync_to_async(Event.objects.filter(source="widget").count)() == 2
    await communicator.disconnect()


async def test_a_milestone_reached_anywhere_reaches_every_open_tab(
    trial: TrialJourney, key: str
) -> None:
    first_tab, second_tab = socket(key), socket(key)
    for tab in (first_tab, second_tab):
        await tab.connect()
        welcome = await hello(tab)
    sequence_before = welcome["seq"]

    end_user = await sync_to_async(lambda: trial.workspace.end_users.get(external_id="u1"))()
    await sync_to_async(recording.milestone_complete)(end_user=end_user, milestone=trial.installed)

    for tab in (first_tab, second_tab):
        progress = json.loads(await tab.receive_from(timeout=5))
        assert progress["type"] == "progress"
        assert progress["completed"] == "installed-js"
        assert progress["percent"] == 33
        assert progress["seq"] == sequence_before + 1
        await tab.disconnect()


async def test_the_tab_that_sent_the_completing_event_gets_ack_and_progress(
    trial: TrialJourney, key: str
) -> None:
    communicator = socket(key)
    await communicator.connect()
    await hello(communicator)

    await communicator.send_to(
        text_data=json.dumps(
            {
                "type": "events",
                "events": [
                    event("$walkthrough_completed", properties={"walkthrough": "setup-tour"})
                ],
            }
        )
    )
    messages = [json.loads(await communicator.receive_from(timeout=5)) for _ in range(2)]

    assert {m["type"] for m in messages} == {"ack", "progress"}
    progress = next(m for m in messages if m["type"] == "progress")
    assert progress["completed"] == "took-tour"
    assert await sync_to_async(MilestoneCompletion.objects.count)() == 1
    await communicator.disconnect()


async def test_identity_verification_refuses_a_bad_user_hash(trial: TrialJourney, key: str) -> None:
    workspace: Workspace = trial.workspace
    workspace.enforce_identity_verification = True
    await sync_to_async(workspace.save)(update_fields=["enforce_identity_verification"])
    good_hash = workspace.user_hash_for("u1")

    refused_socket = socket(key)
    await refused_socket.connect()
    refused = await hello(refused_socket, user_hash="0" * 64)
    missing = await hello(refused_socket)
    accepted_socket = socket(key)
    await accepted_socket.connect()
    accepted = await hello(accepted_socket, user_hash=good_hash)

    assert refused["type"] == "error"
    assert refused["code"] == "invalid_user_hash"
    assert missing["code"] == "invalid_user_hash"
    assert accepted["type"] == "welcome"
    for communicator in (refused_socket, accepted_socket):
        await communicator.disconnect()


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("{nope", "malformed_json"),
        ("[]", "missing_type"),
        (json.dumps({"type": "dance"}), "unknown_type"),
        (json.dumps({"type": "events", "events": []}), "hello_first"),
    ],
)
async def test_bad_messages_get_an_error_naming_the_problem(
    key: str, message: str, code: str
) -> None:
    communicator = socket(key)
    await communicator.connect()

    await communicator.send_to(text_data=message)
    reply = json.loads(await communicator.receive_from(timeout=5))

    assert reply["type"] == "error"
    assert reply["code"] == code
    await communicator.disconnect()


async def test_bad_hello_and_bad_batches_are_refused_with_a_reason(key: str) -> None:
    communicator = socket(key)
    await communicator.connect()

    no_user = await say(communicator, {"type": "hello"})
    bad_traits = await say(communicator, {"type": "hello", "user": {"id": "u1", "traits": [1]}})
    await hello(communicator)
    too_many = await say(communicator, {"type": "events", "events": [event()] * 501})
    not_a_list = await say(communicator, {"type": "events", "events": {"a": 1}})

    assert no_user["code"] == "missing_user"
    assert bad_traits["code"] == "invalid_traits"
    assert too_many["code"] == "batch_too_large"
    assert not_a_list["code"] == "invalid_events"
    await communicator.disconnect()


async def test_an_oversized_frame_is_refused_and_the_socket_closed(key: str) -> None:
    communicator = socket(key)
    await communicator.connect()

    await communicator.send_to(text_data="x" * 600_000)
    reply = json.loads(await communicator.receive_from(timeout=5))
    closed = await communicator.receive_output(timeout=5)

    assert reply["code"] == "frame_too_large"
    assert closed == {"type": "websocket.close", "code": 1009}


async def test_a_socket_of_one_workspace_never_hears_another_workspaces_user(
    trial: TrialJourney, key: str
) -> None:
    other: Workspace = await sync_to_async(WorkspaceFactory)(
        allowed_origins=["https://app.example.com"]
    )
    ours, theirs = socket(key), socket(other.keys["publishable_key"])
    for communicator in (ours, theirs):
        await communicator.connect()
        await hello(communicator, user="same-id")

    end_user = await sync_to_async(lambda: trial.workspace.end_users.get(external_id="same-id"))()
    await sync_to_async(recording.milestone_complete)(end_user=end_user, milestone=trial.installed)

    assert json.loads(await ours.receive_from(timeout=5))["type"] == "progress"
    assert await theirs.receive_nothing(timeout=0.5)
    for communicator in (ours, theirs):
        await communicator.disconnect()


async def test_a_connection_over_its_message_rate_is_told_to_slow_down(
    key: str, settings: Any
) -> None:
    settings.MILEPOST_MAX_SOCKET_MESSAGES_PER_MINUTE = 3
    communicator = socket(key)
    await communicator.connect()
    await hello(communicator)

    replies = [await say(communicator, {"type": "events", "events": [event()]}) for _ in range(3)]

    assert [r["type"] for r in replies] == ["ack", "ack", "error"]
    assert replies[2]["code"] == "rate_limited"
    await communicator.disconnect()


async def test_publishing_pushes_new_content_to_connected_widgets_of_that_workspace(
    trial: TrialJourney, key: str
) -> None:
    from onboarding import services
    from tests.factories import TooltipFactory

    communicator = socket(key)
    await communicator.connect()
    welcome = await hello(communicator)
    tooltip = await sync_to_async(TooltipFactory)(
        workspace=trial.workspace, key="fresh-tip", page_url_pattern="/dashboard"
    )

    await sync_to_async(services.content_publish)(obj=tooltip)
    pushed = json.loads(await communicator.receive_from(timeout=5))

    assert [t["key"] for t in welcome["content"]["tooltips"]] == []
    assert pushed["type"] == "content"
    assert [t["key"] for t in pushed["content"]["tooltips"]] == ["fresh-tip"]
    await communicator.disconnect()


@pytest.mark.parametrize(
    "frame",
    ['{"type": "events", "events": [{"n": NaN}]}', "[" * 50_000, '{"n": ' + "9" * 5000 + "}"],
)
async def test_json_no_database_can_store_is_refused_and_the_socket_lives(
    key: str, frame: str
) -> None:
    communicator = socket(key)
    await communicator.connect()
    await hello(communicator)

    await communicator.send_to(text_data=frame)
    reply = json.loads(await communicator.receive_from(timeout=5))
    still_alive = await say(communicator, {"type": "events", "events": [event()]})

    assert reply["code"] == "malformed_json"
    assert still_alive["type"] == "ack"
    await communicator.disconnect()


async def test_a_non_ascii_user_hash_is_refused_cleanly(trial: TrialJourney, key: str) -> None:
    trial.workspace.enforce_identity_verification = True
    await sync_to_async(trial.workspace.save)(update_fields=["enforce_identity_verification"])
    communicator = socket(key)
    await communicator.connect()

    reply = await hello(communicator, user_hash="é" * 64)

    assert reply["code"] == "invalid_user_hash"
    await communicator.disconnect()


async def test_an_open_tab_of_an_erased_user_is_told_so(trial: TrialJourney, key: str) -> None:
    communicator = socket(key)
    await communicator.connect()
    await hello(communicator)
    end_user = await sync_to_async(lambda: trial.workspace.end_users.get(external_id="u1"))()
    await sync_to_async(recording.end_user_erase)(
        end_user=end_user, requested_by=ErasureRecord.Requester.SECRET_KEY
    )

    reply = await say(communicator, {"type": "events", "events": [event()]})

    assert reply["code"] == "unknown_user"
    await communicator.disconnect()


async def test_welcome_never_echoes_traits_the_page_did_not_send(
    trial: TrialJourney, key: str
) -> None:
    await sync_to_async(recording.end_user_identify)(
        workspace=trial.workspace, external_id="u1", traits={"mrr": 990, "email": "a@b.c"}
    )
    communicator = socket(key)
    await communicator.connect()

    welcome = await hello(communicator)

    assert welcome["user"] == {"id": "u1", "traits": {"plan": "trial"}}
    await communicator.disconnect()


async def test_characters_and_nesting_no_database_stores_are_refused_with_a_reason(
    key: str,
) -> None:
    communicator = socket(key)
    await communicator.connect()
    nul_traits = await say(
        communicator, {"type": "hello", "user": {"id": "u1", "traits": {"note": "a\u0000b"}}}
    )
    await hello(communicator)
    deep: dict[str, Any] = {}
    for _ in range(400):
        deep = {"d": deep}
    frame = json.dumps(
        {
            "type": "events",
            "events": [event(properties=deep), event(name="tab\ud800clicked")],
        }
    )

    await communicator.send_to(text_data=frame)
    ack = json.loads(await communicator.receive_from(timeout=5))

    assert nul_traits["code"] == "invalid_traits"
    assert ack["type"] == "ack"
    assert ack["accepted"] == []
    assert [r["reason"] for r in ack["rejected"]] == [
        "properties are nested 401 levels deep; the limit is 5",
        "name must not contain unpaired surrogates (U+D800-U+DFFF)",
    ]
    await communicator.disconnect()


async def test_a_publish_reaches_open_tabs_even_if_content_was_read_just_before_its_commit(
    trial: TrialJourney, key: str
) -> None:
    from django.db import connection, transaction

    from onboarding import queries, services
    from tests.factories import TooltipFactory

    communicator = socket(key)
    await communicator.connect()
    await hello(communicator)
    tooltip = await sync_to_async(TooltipFactory)(
        workspace=trial.workspace, key="fresh-tip", page_url_pattern="/dashboard"
    )

    def read_elsewhere() -> None:
        queries.live_content(workspace_id=trial.workspace.pk)
        connection.close()

    def publish_while_another_request_reads() -> None:
        with transaction.atomic():
            services.content_publish(obj=tooltip)
            # As a busy process would: another request refills its copy before the commit.
            reader = threading.Thread(target=read_elsewhere)
            reader.start()
            reader.join()

    await sync_to_async(publish_while_another_request_reads)()
    pushed = json.loads(await communicator.receive_from(timeout=5))

    assert pushed["type"] == "content"
    assert [t["key"] for t in pushed["content"]["tooltips"]] == ["fresh-tip"]
    await communicator.disconnect()


def tour_event(name: str, attempt: int, step: int = 0) -> dict[str, Any]:
    return event(name, properties={"walkthrough": "tour", "attempt": attempt, "step": step})


async def pushes(tab: WebsocketCommunicator, count: int) -> list[dict[str, Any]]:
    """The next `count` pushes to this tab (acks left out)."""
    received: list[dict[str, Any]] = []
    while len(received) < count:
        message = json.loads(await tab.receive_from(timeout=5))
        if message["type"] != "ack":
            received.append(message)
    return received


async def test_a_walkthrough_transition_in_one_tab_is_pushed_to_every_tab(key: str) -> None:
    first_tab, second_tab = socket(key), socket(key)
    for tab in (first_tab, second_tab):
        await tab.connect()
        welcome = await hello(tab)
    before = welcome["seq"]
    started, dismissed = (
        tour_event("$walkthrough_started", 1),
        tour_event("$walkthrough_dismissed", 1),
    )

    await first_tab.send_to(text_data=json.dumps({"type": "events", "events": [started]}))
    await first_tab.send_to(text_data=json.dumps({"type": "events", "events": [dismissed]}))

    for tab in (first_tab, second_tab):
        # Sent after each commit, so they may arrive swapped; their numbers give the order.
        received = sorted(await pushes(tab, 2), key=lambda push: push["seq"])
        assert received == [
            {
                "type": "walkthrough",
                "walkthrough": "tour",
                "state": {"status": "in_progress", "step": 0, "attempt": 1},
                "event": started["id"],
                "seq": before + 1,
            },
            {
                "type": "walkthrough",
                "walkthrough": "tour",
                "state": {"status": "dismissed", "step": 0, "attempt": 1},
                "event": dismissed["id"],
                "seq": before + 2,
            },
        ]
    await first_tab.disconnect()
    await second_tab.disconnect()


async def test_a_stale_tabs_next_is_answered_with_the_state_that_holds(key: str) -> None:
    first_tab, second_tab = socket(key), socket(key)
    for tab in (first_tab, second_tab):
        await tab.connect()
        await hello(tab)
    await say(first_tab, {"type": "events", "events": [tour_event("$walkthrough_started", 1)]})
    await say(first_tab, {"type": "events", "events": [tour_event("$walkthrough_dismissed", 1)]})
    await pushes(second_tab, 2)
    stale_next = tour_event("$step_completed", 1, step=0)

    await second_tab.send_to(text_data=json.dumps({"type": "events", "events": [stale_next]}))

    [answer] = await pushes(second_tab, 1)
    assert answer["event"] == stale_next["id"]
    assert answer["state"] == {"status": "dismissed", "step": 0, "attempt": 1}
    # The Next is kept as an event (it happened); the tour stays dismissed.
    assert await sync_to_async(Event.objects.filter(client_id=stale_next["id"]).exists)()
    saved = await sync_to_async(ContentState.objects.get)(key="tour")
    assert saved.status == "dismissed"
    for tab in (first_tab, second_tab):
        await tab.disconnect()
