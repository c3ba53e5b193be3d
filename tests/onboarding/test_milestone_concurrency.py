"""Count milestones under concurrent transactions on PostgreSQL (READ COMMITTED).

"Sent 3 messages" must complete exactly once however two processes' transactions interleave.
Each transaction counts what its own statement can see: its own uncommitted events and what
others committed before the count began. With one message committed and two transactions each
storing one more, neither would see the other's and both would count 2, so the person's third
message would never complete the milestone. The write path locks the person's row before it
counts, so the second count waits for the first transaction and then sees all three.

SQLite serialises writers (the second transaction cannot even store its event while the first
is open), so there is nothing to interleave there: these tests need PostgreSQL."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection, transaction

from onboarding import realtime, recording
from onboarding.models import EndUser, Event, JourneyProgress, MilestoneCompletion
from tests.onboarding.conftest import TrialJourney

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def event(name: str = "message_sent", **properties: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "name": name,
        "timestamp": datetime.now(UTC).isoformat(),
        "properties": properties,
    }


def messages(count: int) -> list[dict[str, Any]]:
    return [event() for _ in range(count)]


def record(trial: TrialJourney, person: EndUser, events: list[dict[str, Any]]) -> None:
    recording.events_record(
        workspace=trial.workspace, events=events, source="widget", end_user=person
    )


def another_transaction_waits_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return bool(cursor.fetchone()[0])


def record_while_another_transaction_is_open(
    trial: TrialJourney,
    person: EndUser,
    *,
    first: list[dict[str, Any]],
    second: list[dict[str, Any]],
) -> None:
    """The first transaction stores the `first` events and stays open until the second one,
    storing the `second` events, has committed or waits for the first: the interleaving in
    which the second transaction reads while the first's writes are not committed yet."""
    first_recorded, second_finished = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def open_first() -> None:
        try:
            with transaction.atomic():
                record(trial, person, first)
                first_recorded.set()
                deadline = time.monotonic() + 30
                while not second_finished.is_set() and time.monotonic() < deadline:
                    if another_transaction_waits_for_a_lock():
                        break
                    time.sleep(0.02)
        except BaseException as error:
            failures.append(error)
            first_recorded.set()
        finally:
            connection.close()

    def then_second() -> None:
        try:
            assert first_recorded.wait(30)
            with transaction.atomic():
                record(trial, person, second)
        except BaseException as error:
            failures.append(error)
        finally:
            second_finished.set()
            connection.close()

    threads = [threading.Thread(target=open_first), threading.Thread(target=then_second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures


@pytest.fixture
def pushes(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The progress messages sent to people's tabs (after commit, in any thread)."""
    sent: list[dict[str, Any]] = []
    lock = threading.Lock()

    def capture(per_person: dict[int, list[dict[str, Any]]]) -> None:
        with lock:
            sent.extend(m["message"] for ms in per_person.values() for m in ms)

    monkeypatch.setattr(realtime, "_send", capture)
    return sent


def test_the_third_message_completes_the_milestone_when_two_transactions_store_the_last_two(
    trial: TrialJourney, pushes: list[dict[str, Any]]
) -> None:
    person = recording.end_user_identify(workspace=trial.workspace, external_id="u1")
    record(trial, person, messages(1))

    record_while_another_transaction_is_open(trial, person, first=messages(1), second=messages(1))

    assert Event.objects.filter(end_user=person, name="message_sent").count() == 3
    completions = MilestoneCompletion.objects.filter(end_user=person, milestone=trial.messages)
    assert completions.count() == 1
    progress = [p for p in pushes if p["type"] == "progress"]
    assert [p["completed"] for p in progress] == ["sent-3-messages"]


def test_two_transactions_that_both_reach_the_count_complete_the_milestone_once(
    trial: TrialJourney, pushes: list[dict[str, Any]]
) -> None:
    person = recording.end_user_identify(workspace=trial.workspace, external_id="u1")
    record(trial, person, messages(2))

    record_while_another_transaction_is_open(trial, person, first=messages(1), second=messages(2))

    completions = MilestoneCompletion.objects.filter(end_user=person, milestone=trial.messages)
    assert completions.count() == 1
    # Completed by the third message, whichever transaction stored it.
    third = Event.objects.filter(end_user=person).order_by("timestamp", "pk")[2]
    assert completions.get().event_id == third.pk
    progress = [p for p in pushes if p["type"] == "progress"]
    assert [p["completed"] for p in progress] == ["sent-3-messages"]


def test_two_transactions_completing_the_two_pql_milestones_make_the_person_a_pql_once(
    trial: TrialJourney, pushes: list[dict[str, Any]]
) -> None:
    person = recording.end_user_identify(workspace=trial.workspace, external_id="u1")
    record(trial, person, messages(2))
    tour = event("$walkthrough_completed", walkthrough="setup-tour")

    record_while_another_transaction_is_open(trial, person, first=messages(1), second=[tour])

    progress = JourneyProgress.objects.get(end_user=person, journey=trial.journey)
    assert progress.pql_at is not None
    # The push numbered last shows the person as a PQL, whichever completion came second.
    shown = sorted((p for p in pushes if p["type"] == "progress"), key=lambda p: p["seq"])
    assert sorted(p["completed"] for p in shown) == ["sent-3-messages", "took-tour"]
    assert [p["pql"] for p in shown] == [False, True]
