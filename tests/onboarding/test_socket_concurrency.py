"""The socket path under concurrency: many connections' events committed together, a failed
commit acknowledged to none, pushes to one person in order, and a connection that keeps
answering pings and reading while its message waits for the database."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import uvicorn
import websockets
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import OperationalError, connection, transaction

from analytics import tasks
from analytics.inputs import DateRange
from analytics.models import JourneyStaleDay
from analytics.report import journey_funnel
from milepost.asgi import application
from onboarding import batching, delivery, realtime, recording
from onboarding.models import EndUser, ErasureRecord, Event, MilestoneCompletion, Workspace
from tests.factories import EndUserFactory
from tests.onboarding.conftest import TrialJourney
from tests.onboarding.test_widget_socket import ORIGIN, event, hello, say
from tests.onboarding.test_widget_socket import socket as widget_socket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def key(trial: TrialJourney) -> str:
    return trial.workspace.keys["publishable_key"]


async def receive(communicator: WebsocketCommunicator) -> dict[str, Any]:
    return json.loads(await communicator.receive_from(timeout=10))


async def open_tabs(key: str, users: list[str]) -> list[WebsocketCommunicator]:
    tabs = [widget_socket(key) for _ in users]
    for tab, user in zip(tabs, users, strict=True):
        await tab.connect()
        assert (await hello(tab, user=user))["type"] == "welcome"
    return tabs


async def test_events_of_many_connections_are_committed_together_and_each_acked_its_own(
    key: str, settings: Any
) -> None:
    settings.MILEPOST_GROUP_COMMIT_MS = 50
    tabs = await open_tabs(key, [f"user-{i}" for i in range(20)])
    sent = [event() for _ in tabs]

    await asyncio.gather(
        *(
            tab.send_to(text_data=json.dumps({"type": "events", "events": [one]}))
            for tab, one in zip(tabs, sent, strict=True)
        )
    )
    acks = [await receive(tab) for tab in tabs]

    assert [ack["accepted"] for ack in acks] == [[one["id"]] for one in sent]
    stored = await sync_to_async(list)(Event.objects.values_list("received_at", flat=True))
    assert len(stored) == 20
    # One transaction has one receive time: the 20 sockets' events went in one or two commits.
    assert len(set(stored)) <= 2
    for tab in tabs:
        await tab.disconnect()


async def test_the_same_event_from_two_tabs_in_one_commit_is_stored_once(
    key: str, settings: Any
) -> None:
    settings.MILEPOST_GROUP_COMMIT_MS = 50
    first, second = await open_tabs(key, ["u1", "u1"])
    shared = event()  # both tabs read the same outbox

    await asyncio.gather(
        first.send_to(text_data=json.dumps({"type": "events", "events": [shared]})),
        second.send_to(text_data=json.dumps({"type": "events", "events": [shared]})),
    )
    acks = [await receive(first), await receive(second)]

    assert sorted(len(ack["accepted"]) for ack in acks) == [0, 1]
    assert sorted(len(ack["duplicates"]) for ack in acks) == [0, 1]
    assert await sync_to_async(Event.objects.count)() == 1
    for tab in (first, second):
        await tab.disconnect()


async def test_a_failed_commit_acknowledges_nothing_and_a_resend_stores_each_event_once(
    key: str, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.MILEPOST_GROUP_COMMIT_MS = 50
    tabs = await open_tabs(key, ["u1", "u2", "u3"])
    sent = [event() for _ in tabs]
    real_insert = recording._insert_new_events

    def failing_insert(rows: list[Any]) -> Any:
        raise OperationalError("could not write to the disk")

    monkeypatch.setattr(recording, "_insert_new_events", failing_insert)
    for tab, one in zip(tabs, sent, strict=True):
        await tab.send_to(text_data=json.dumps({"type": "events", "events": [one]}))
    failures = [await receive(tab) for tab in tabs]
    monkeypatch.setattr(recording, "_insert_new_events", real_insert)
    for tab, one in zip(tabs, sent, strict=True):
        await tab.send_to(text_data=json.dumps({"type": "events", "events": [one]}))
    acks = [await receive(tab) for tab in tabs]

    assert [(f["code"], f["retry_after"]) for f in failures] == [("unavailable", 5)] * 3
    assert [ack["accepted"] for ack in acks] == [[one["id"]] for one in sent]
    assert await sync_to_async(Event.objects.count)() == 3
    for tab in tabs:
        await tab.disconnect()


async def test_one_connection_that_breaks_a_commit_does_not_cost_the_others_their_ack(
    key: str, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.MILEPOST_GROUP_COMMIT_MS = 50
    tabs = await open_tabs(key, ["u1", "u2", "u3"])
    real_insert = recording._insert_new_events

    def insert_refusing_poison(rows: list[Any]) -> Any:
        if any(row.name == "poison" for row in rows):
            raise OperationalError("value too long for the disk")
        return real_insert(rows)

    monkeypatch.setattr(recording, "_insert_new_events", insert_refusing_poison)
    names = ["message_sent", "poison", "message_sent"]
    await asyncio.gather(
        *(
            tab.send_to(text_data=json.dumps({"type": "events", "events": [event(name)]}))
            for tab, name in zip(tabs, names, strict=True)
        )
    )
    answers = [await receive(tab) for tab in tabs]

    assert [a["type"] for a in answers] == ["ack", "error", "ack"]
    assert sorted(await sync_to_async(list)(Event.objects.values_list("name", flat=True))) == [
        "message_sent",
        "message_sent",
    ]
    for tab in tabs:
        await tab.disconnect()


async def test_a_person_erased_while_their_tab_is_open_fails_alone_in_a_shared_commit(
    key: str, trial: TrialJourney, settings: Any
) -> None:
    settings.MILEPOST_GROUP_COMMIT_MS = 50
    tabs = await open_tabs(key, ["u1", "u2", "u3"])
    erased = await sync_to_async(lambda: trial.workspace.end_users.get(external_id="u2"))()
    await sync_to_async(recording.end_user_erase)(
        end_user=erased, requested_by=ErasureRecord.Requester.SECRET_KEY
    )

    await asyncio.gather(
        *(
            tab.send_to(text_data=json.dumps({"type": "events", "events": [event()]}))
            for tab in tabs
        )
    )
    answers = [await receive(tab) for tab in tabs]

    assert [a["type"] for a in answers] == ["ack", "error", "ack"]
    assert answers[1]["code"] == "unknown_user"
    owners = await sync_to_async(list)(
        Event.objects.values_list("end_user__external_id", flat=True)
    )
    assert sorted(owners) == ["u1", "u3"]
    for tab in tabs:
        await tab.disconnect()


async def test_pushes_reach_the_other_tab_in_completion_order_with_consecutive_seq(
    key: str, trial: TrialJourney
) -> None:
    users = [f"user-{i}" for i in range(8)]
    senders = await open_tabs(key, users)
    watchers = await open_tabs(key, users)

    now = datetime.now(UTC).isoformat()
    # Each sender fires its two completing batches without waiting for the first ack.
    for tab in senders:
        await tab.send_to(
            text_data=json.dumps(
                {"type": "events", "events": [event(timestamp=now) for _ in range(3)]}
            )
        )
        await tab.send_to(
            text_data=json.dumps(
                {
                    "type": "events",
                    "events": [
                        event("$walkthrough_completed", properties={"walkthrough": "setup-tour"})
                    ],
                }
            )
        )
    for watcher in watchers:
        pushes = [await receive(watcher) for _ in range(2)]

        assert [p["type"] for p in pushes] == ["progress", "progress"]
        assert [p["completed"] for p in pushes] == ["sent-3-messages", "took-tour"]
        assert pushes[1]["seq"] == pushes[0]["seq"] + 1
        assert pushes[1]["pql"] is True
    assert await sync_to_async(MilestoneCompletion.objects.count)() == 16
    for tab in senders + watchers:
        await tab.disconnect()


def test_pushes_number_in_the_order_their_completions_commit_however_late_they_are_sent(
    trial: TrialJourney, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two commits complete milestones of one person, the second seeing the first's. Even when
    the first commit's after-commit work is held up (a busy thread, a slow receiver), its push
    must carry the lower number: a tab keeps the progress with the highest `seq`, so a number
    taken after the second commit's would leave it showing the older progress."""
    person = recording.end_user_identify(workspace=trial.workspace, external_id="u1")
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(
        realtime,
        "_send",
        lambda per_person: sent.extend(m["message"] for ms in per_person.values() for m in ms),
    )
    first_committed, second_sent = threading.Event(), threading.Event()
    now = datetime.now(UTC).isoformat()

    def record(events: list[dict[str, Any]], *, held: bool) -> None:
        try:
            with transaction.atomic():
                if held:  # runs first after the commit, before the write path's own work
                    transaction.on_commit(lambda: (first_committed.set(), second_sent.wait(10)))
                recording.events_record(
                    workspace=trial.workspace, events=events, source="widget", end_user=person
                )
        finally:
            connection.close()

    first = threading.Thread(
        target=record, args=([event(timestamp=now) for _ in range(3)],), kwargs={"held": True}
    )
    first.start()
    assert first_committed.wait(10)
    tour = event("$walkthrough_completed", timestamp=now, properties={"walkthrough": "setup-tour"})
    record([tour], held=False)
    second_sent.set()
    first.join(10)

    progress = sorted((m for m in sent if m["type"] == "progress"), key=lambda m: m["seq"])
    assert [m["completed"] for m in progress] == ["sent-3-messages", "took-tour"]
    assert progress[-1]["pql"] is True  # the newest number shows both completions


async def test_completions_of_many_connections_in_one_commit_leave_the_rollups_exact(
    key: str, trial: TrialJourney, settings: Any
) -> None:
    settings.MILEPOST_GROUP_COMMIT_MS = 50
    tabs = await open_tabs(key, [f"user-{i}" for i in range(12)])
    # The rollups are stored and current before the completions (no slice left to recount).
    await sync_to_async(tasks.refresh_journey_rollups)()
    assert not await sync_to_async(JourneyStaleDay.objects.exists)()
    now = datetime.now(UTC).isoformat()

    await asyncio.gather(
        *(
            tab.send_to(
                text_data=json.dumps(
                    {"type": "events", "events": [event(timestamp=now) for _ in range(3)]}
                )
            )
            for tab in tabs
        )
    )
    answers = [[await receive(tab) for _ in range(2)] for tab in tabs]

    assert all(sorted(a["type"] for a in both) == ["ack", "progress"] for both in answers)
    for tab in tabs:  # answered once the work after the commits above is done
        assert (await say(tab, {"type": "events", "events": []}))["type"] == "ack"
    # The shared commits marked the people's start slice once each, after the completions.
    assert await sync_to_async(JourneyStaleDay.objects.count)() == 1
    await sync_to_async(tasks.refresh_journey_rollups)()
    today = datetime.now(UTC).date()
    week = DateRange(today - timedelta(days=7), today)

    def funnels() -> tuple[Any, Any]:
        return (
            journey_funnel.journey_funnel(journey=trial.journey, date_range=week),
            journey_funnel.journey_funnel(journey=trial.journey, date_range=week, fresh=True),
        )

    from_rollups, from_scratch = await sync_to_async(funnels)()
    assert from_rollups == from_scratch
    reached = {step.key: step.reached for step in from_rollups.steps}
    assert reached["sent-3-messages"] == 12
    for tab in tabs:
        await tab.disconnect()


async def test_a_message_sent_the_moment_the_previous_one_settles_is_still_committed(
    workspace: Workspace,
) -> None:
    """A socket sends its next message as soon as its previous one has settled, which is when
    the group commit's last runner is returning. With one batch at a time (3 database threads
    or fewer), that message must still get a runner rather than wait for another socket's."""

    def flush(people: Sequence[str]) -> list[str]:
        for person in people:
            EndUserFactory(workspace=workspace, external_id=person)
        return [f"stored {person}" for person in people]

    commits: batching.GroupCommit[str, str] = batching.GroupCommit(
        flush, name="people", max_weight=1, window_seconds=0, concurrency=1
    )
    first, settled = await commits.submit_settling("first")
    await settled
    async with asyncio.timeout(5):  # submitted by this task at once, as the consumer does
        second = await commits.submit("second")

    assert (first, second) == ("stored first", "stored second")
    stored = EndUser.objects.filter(workspace=workspace).values_list("external_id", flat=True)
    assert sorted(await sync_to_async(list)(stored)) == ["first", "second"]


async def test_what_arrives_during_a_commit_waits_for_it_unless_a_backlog_builds() -> None:
    """At a light load one commit at a time, so that what a commit costs is shared by the
    messages that arrived meanwhile; a backlog worth a commit of its own (a 32nd of a batch)
    is written beside the running commit at once."""
    release = threading.Event()
    batches: list[list[str]] = []

    def flush(people: Sequence[str]) -> list[str]:
        batches.append(list(people))
        if "first" in people:
            release.wait(10)
        return [f"stored {person}" for person in people]

    # Without a transaction: SQLite would make the second wait for the first's lock anyway.
    commits: batching.GroupCommit[str, str] = batching.GroupCommit(
        flush, name="people", max_weight=64, window_seconds=0, concurrency=2, atomic=False
    )
    first = asyncio.ensure_future(commits.submit("first"))
    while not batches:
        await asyncio.sleep(0.01)
    second = asyncio.ensure_future(commits.submit("second"))
    await asyncio.sleep(0.3)
    alone = [list(batch) for batch in batches]
    backlog = [asyncio.ensure_future(commits.submit(f"p{n}")) for n in range(2)]
    async with asyncio.timeout(5):
        while len(batches) < 2:
            await asyncio.sleep(0.01)
    release.set()
    async with asyncio.timeout(5):
        answers = await asyncio.gather(first, second, *backlog)

    assert alone == [["first"]]
    assert batches == [["first"], ["second", "p0", "p1"]]
    assert answers == ["stored first", "stored second", "stored p0", "stored p1"]


def test_after_commit_work_of_a_batch_runs_once_per_distinct_key_in_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    marked: list[list[int]] = []
    also: list[list[str]] = []

    def failing(keys: list[str]) -> None:
        raise RuntimeError("receiver down")

    with batching.batch_of_after_commit_work():
        for key in (3, 1, 3, 2, 1):
            batching.once_per_batch(marked.append, key)
        batching.once_per_batch(failing, "x")
        with batching.batch_of_after_commit_work():  # nested: the outer one runs the work
            batching.once_per_batch(also.append, "b")
            batching.once_per_batch(also.append, "a")
        assert marked == []
        assert also == []

    assert marked == [[1, 2, 3]]
    assert also == [["a", "b"]]
    assert "after-commit work" in caplog.text
    assert "receiver down" in caplog.text
    batching.once_per_batch(marked.append, 9)  # outside a batch: at once
    assert marked == [[1, 2, 3], [9]]


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="connections are kept between calls on PostgreSQL"
)
async def test_database_threads_hold_no_connection_once_idle_or_released(
    trial: TrialJourney,
) -> None:
    def out_of_the_pool() -> int:
        stats = connection.pool.get_stats()  # type: ignore[attr-defined]
        return int(stats["pool_size"] - stats["pool_available"])

    def busy() -> int:
        return Event.objects.count()

    mine = await sync_to_async(out_of_the_pool)()  # the test's own thread's, if any
    await asyncio.gather(*(batching.database_work(busy) for _ in range(40)))
    await asyncio.sleep(batching.KEEP_CONNECTION_SECONDS * 3)
    assert await sync_to_async(out_of_the_pool)() <= mine

    await asyncio.gather(*(batching.database_work(busy) for _ in range(40)))
    await sync_to_async(batching.release_connections)()
    assert await sync_to_async(out_of_the_pool)() <= mine


def test_a_database_thread_that_cannot_tidy_its_connection_fails_that_call_and_keeps_serving(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    threads = batching.DatabaseThreads(2)
    failures = iter([OperationalError("server closed the connection unexpectedly")] * 2)

    def hygiene() -> None:  # Django's, failing twice as on a connection the server dropped
        failure = next(failures, None)
        if failure is not None:
            raise failure

    monkeypatch.setattr(batching, "close_old_connections", hygiene)
    try:
        with caplog.at_level(logging.ERROR, logger="onboarding.batching"):
            first = threads.submit(lambda: "stored")
            with pytest.raises(OperationalError, match="server closed"):
                first.result(timeout=5)  # the hygiene before it failed: so did the call
            # The hygiene after it failed too (logged). Both threads still serve, and nothing
            # waits for ever.
            threads.on_each_thread(lambda: None)
            assert [threads.submit(lambda n=n: n).result(timeout=5) for n in range(4)] == [
                0,
                1,
                2,
                3,
            ]
        assert threads.busy() == ["0 calls queued, 0 threads stopped"]
        assert "could not give back its connection" in caplog.text
    finally:
        threads.shutdown()


def test_database_threads_still_busy_say_what_holds_them() -> None:
    threads = batching.DatabaseThreads(2)
    release = threading.Event()

    def a_long_push() -> None:
        release.wait(10)

    threads.submit(a_long_push)
    try:
        with pytest.raises(TimeoutError) as busy:
            threads.on_each_thread(lambda: None, timeout=1.5)
        # What holds the thread, how long for, and where it waits (the other one did not).
        said = str(busy.value)
        assert said.startswith("database threads still busy after 1.5 s: ")
        assert ".a_long_push for 1." in said
        assert "< a_long_push (test_socket_concurrency.py:" in said
        assert said.endswith("calls queued, 0 threads stopped")
    finally:
        release.set()
        threads.shutdown()


# A real server: pings and reading are uvicorn's, which the in-process communicator skips.


@pytest.fixture
def live_socket_url(key: str) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            application,
            host="127.0.0.1",
            port=port,
            lifespan="off",
            log_level="warning",
            ws_ping_interval=0.5,
            ws_ping_timeout=1.0,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the test server did not start")
        threading.Event().wait(0.05)
    yield f"ws://127.0.0.1:{port}/ws/widget/?key={key}"
    server.should_exit = True
    thread.join(timeout=10)


class DatabaseHeld:
    """Another connection holds the event table (PostgreSQL) or the write lock (SQLite) until
    released, as a long transaction or a stalled disk would."""

    def __init__(self) -> None:
        self.held = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self) -> None:
        try:
            with transaction.atomic():  # SQLite: BEGIN IMMEDIATE takes the write lock
                if connection.vendor == "postgresql":
                    with connection.cursor() as cursor:
                        cursor.execute("LOCK TABLE onboarding_event IN EXCLUSIVE MODE")
                self.held.set()
                self.release.wait(30)
        finally:
            connection.close()

    def __enter__(self) -> DatabaseHeld:
        self.thread.start()
        assert self.held.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(10)


async def test_a_connection_waiting_on_the_database_still_answers_pings_and_stays_open(
    live_socket_url: str, settings: Any
) -> None:
    settings.MILEPOST_SOCKET_BACKLOG = 3
    async with websockets.connect(live_socket_url, additional_headers={"Origin": ORIGIN}) as ws:
        await ws.send(json.dumps({"type": "hello", "user": {"id": "u1"}}))
        assert json.loads(await ws.recv())["type"] == "welcome"
        held = DatabaseHeld()
        with held:
            first = event()
            await ws.send(json.dumps({"type": "events", "events": [first]}))
            # Several of the server's 0.5 s pings pass while the events wait; ours is answered.
            await asyncio.sleep(2.5)
            pong = await ws.ping()
            await asyncio.wait_for(pong, timeout=1)
            for _ in range(4):  # one is being handled, three may wait, the next is refused
                await ws.send(json.dumps({"type": "events", "events": [event()]}))
            refused = json.loads(await asyncio.wait_for(ws.recv(), timeout=2))
        answers = [json.loads(await asyncio.wait_for(ws.recv(), timeout=10)) for _ in range(4)]

    assert refused["type"] == "error"
    assert refused["code"] == "backlog_full"
    # Nothing of it was stored: the SDK holds its events and resends them after this.
    assert refused["retry_after"] == 1
    assert [a["type"] for a in answers] == ["ack"] * 4
    assert answers[0]["accepted"] == [first["id"]]
    stored = await sync_to_async(Event.objects.filter(client_id=uuid.UUID(first["id"])).count)()
    assert stored == 1


def test_closing_sockets_logs_no_error_even_when_the_worker_stops_right_after(
    key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A normal close is not an error for operators. A worker that stops (a deploy, a restart)
    cancels every task its event loop still runs, as asyncio does at shutdown: nothing a closed
    socket started may still be running then (channels_redis logs an ERROR for a channel whose
    unsubscribe is cancelled half-way)."""

    async def close_then_stop(turns: int) -> None:
        tabs = await open_tabs(key, [f"u{i}" for i in range(5)])
        await asyncio.gather(*(tab.disconnect() for tab in tabs))
        for _ in range(turns):  # the stop may come at any moment after the closes
            await asyncio.sleep(0)
        # What asyncio.run and asgiref do to the tasks left when their loop's work is done.
        left = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)

    with caplog.at_level(logging.ERROR):
        for turns in range(6):
            async_to_sync(close_then_stop)(turns)

    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("numbered", ["after the welcome's read", "before the welcome's read"])
async def test_a_push_that_arrives_while_the_welcome_is_prepared_never_overtakes_it(
    key: str, monkeypatch: pytest.MonkeyPatch, numbered: str
) -> None:
    """A tab joins its person's group before its welcome is read, so a push can reach the
    socket while the welcome is still being committed. It must follow the welcome (a push
    ahead of it looks like a gap to the SDK), and one the welcome already counts is not sent."""
    real_welcomes = delivery.welcomes_many

    def welcomes_with_a_push_meanwhile(requests: Any) -> Any:
        person = requests[0].end_user.pk
        if numbered == "before the welcome's read":
            realtime.push_to_end_user(end_user_id=person, message={"type": "progress"})
        answers = real_welcomes(requests)
        if numbered == "after the welcome's read":
            realtime.push_to_end_user(end_user_id=person, message={"type": "progress"})
        return answers

    monkeypatch.setattr(delivery, "welcomes_many", welcomes_with_a_push_meanwhile)
    tab = widget_socket(key)
    await tab.connect()
    await tab.send_to(text_data=json.dumps({"type": "hello", "user": {"id": "u1"}}))
    welcome = await receive(tab)

    assert welcome["type"] == "welcome"
    if numbered == "after the welcome's read":
        push = await receive(tab)
        assert (push["type"], push["seq"]) == ("progress", welcome["seq"] + 1)
    else:
        assert await tab.receive_nothing(timeout=0.5)  # the welcome already holds it
    await tab.disconnect()


@pytest.mark.parametrize("loop_state", ["stopped", "closed"])
def test_pushes_after_their_event_loop_stopped_are_logged_as_lost_and_never_hang(
    loop_state: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database thread sends a commit's pushes through the event loop that gave it the work.
    If that loop stopped meanwhile (a worker shutting down, a test ending), the thread must
    not wait for ever (it kept the process from exiting): the pushes are logged as lost."""
    person = EndUserFactory()
    loop = asyncio.new_event_loop()
    if loop_state == "closed":
        loop.close()
    monkeypatch.setattr(realtime, "PUSH_SEND_TIMEOUT_SECONDS", 0.5)

    def on_a_database_thread() -> None:
        try:
            batching._on_loop(
                loop, realtime.push_to_end_user, end_user_id=person.pk, message={"type": "progress"}
            )
        finally:
            connection.close()

    pool_thread_of = threading.Thread(target=on_a_database_thread)
    with caplog.at_level(logging.WARNING, logger="onboarding.realtime"):
        pool_thread_of.start()
        pool_thread_of.join(timeout=10)

    assert not pool_thread_of.is_alive()
    assert "pushes lost" in caplog.text
    loop.close()
