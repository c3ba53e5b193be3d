"""What a milestone-completing event costs the database on the socket path: the statements of
the group commit that stores it, completes the milestone and numbers its progress push. Every
statement is a round trip while the people's rows are locked, so other commits for them wait;
and the count must stay the same for more people and more events in one commit."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from engagement import rule_index
from onboarding import batching, delivery, queries, realtime, recording
from onboarding.models import EndUser, MilestoneCompletion
from tests.onboarding.conftest import TrialJourney

pytestmark = pytest.mark.django_db(transaction=True)

# The events inserted; the people who may still reach something locked (and what they may
# reach); the count; the completions inserted; the push numbers taken; the journeys' progress
# and completions read.
STATEMENTS_FOR_A_COMPLETING_COMMIT = 6


@pytest.fixture(autouse=True)
def copies_kept_while_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    # The process rechecks its copies of the live content and of the engagement rules every few
    # seconds, whoever calls: on a slow machine such a recheck would land in one count only.
    monkeypatch.setattr(queries, "LIVE_CONTENT_RECHECK_SECONDS", 3600.0)
    monkeypatch.setattr(rule_index, "INDEX_TTL", 3600.0)


@pytest.fixture
def pushes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, dict[str, Any]]]:
    sent: list[tuple[int, dict[str, Any]]] = []
    monkeypatch.setattr(
        realtime,
        "_send",
        lambda per_person: sent.extend(
            (person, m["message"]) for person, ms in per_person.items() for m in ms
        ),
    )
    return sent


def messages(count: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC).isoformat()
    return [
        {"id": str(uuid.uuid4()), "name": "message_sent", "timestamp": now} for _ in range(count)
    ]


def group_commit(
    people: list[EndUser], count: int, captured: CaptureQueriesContext | None = None
) -> list[dict[str, Any] | Exception]:
    """One group commit of the socket path, as the event loop's GroupCommit runs it: each
    person's connection sends `count` messages. `captured` sees the statements inside its
    transaction (what runs after the commit, the pushes and the analytics' marks, holds no lock
    and keeps no socket waiting)."""
    submissions = [delivery.EventsSubmission(person, messages(count), None) for person in people]
    watched = captured if captured is not None else contextlib.nullcontext()
    with batching.batch_of_after_commit_work(), transaction.atomic(), watched:
        return delivery.events_receive_many(submissions)


def statements(people: list[EndUser], count: int) -> int:
    captured = CaptureQueriesContext(connection)
    acks = group_commit(people, count, captured)
    assert all(isinstance(a, dict) and len(a["accepted"]) == count for a in acks), acks
    return len([q for q in captured.captured_queries if q["sql"] != "BEGIN"])


def test_a_completing_event_costs_a_fixed_number_of_statements_for_any_crowd(
    trial: TrialJourney, pushes: list[tuple[int, dict[str, Any]]]
) -> None:
    people = [
        recording.end_user_identify(workspace=trial.workspace, external_id=f"u{n}")
        for n in range(11)
    ]
    group_commit(people, 0)  # the process's caches are warm from here on
    group_commit(people[:5], 2)
    group_commit(people[5:10], 1)

    one = statements(people[:1], 1)  # the third message
    four = statements(people[1:5], 1)  # four people's third messages
    many_events = statements(people[5:10], 4)  # five people's second to fifth
    alone = statements(people[10:], 3)  # all three messages in one commit

    assert one == four == many_events == alone == STATEMENTS_FOR_A_COMPLETING_COMMIT
    # Each person completed the milestone once, and each one's tabs heard of it once.
    completed = MilestoneCompletion.objects.filter(milestone=trial.messages)
    assert sorted(completed.values_list("end_user_id", flat=True)) == [p.pk for p in people]
    progress = [(person, m) for person, m in pushes if m["type"] == "progress"]
    assert sorted(person for person, _ in progress) == [p.pk for p in people]
    assert all(m["completed"] == "sent-3-messages" and m["seq"] == 1 for _, m in progress)


def test_an_event_that_completes_nothing_costs_fewer_statements_than_one_that_does(
    trial: TrialJourney, pushes: list[tuple[int, dict[str, Any]]]
) -> None:
    people = [
        recording.end_user_identify(workspace=trial.workspace, external_id=f"u{n}")
        for n in range(4)
    ]
    group_commit(people, 0)  # the process's caches are warm from here on

    # The events inserted; the people locked (with what they may still reach); the count.
    assert statements(people, 1) == 3
    assert statements(people, 1) == 3
    assert statements(people, 1) == STATEMENTS_FOR_A_COMPLETING_COMMIT  # the third message
    # Done already: the events inserted, and the read that finds nothing left to reach (and
    # so locks no one).
    assert statements(people, 1) == 2
    assert len([m for _, m in pushes if m["type"] == "progress"]) == len(people)
