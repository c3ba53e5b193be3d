"""What an events POST costs the database: the statements of one batch are the same for 1 or 20
people reaching milestones in it, and for 20 or 100 events (SQLite takes 100 rows a statement).
A batch that read or wrote per person or per event would slow the server API's ingest (and the
socket's group commit, which records through the same function) by a round trip for each."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from engagement import rule_index
from onboarding import queries, recording, services
from onboarding.models import Criterion, JourneyStart, MilestoneCompletion, Workspace
from tests.factories import JourneyFactory, MilestoneFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def copies_kept_while_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    # The process rechecks its copies of the live content and of the engagement rules every few
    # seconds, whoever calls: on a slow machine such a recheck would land in one count only.
    monkeypatch.setattr(queries, "LIVE_CONTENT_RECHECK_SECONDS", 3600.0)
    monkeypatch.setattr(rule_index, "INDEX_TTL", 3600.0)


def trial_workspace() -> Workspace:
    """A published journey that starts when a person is first seen: a campaign created, a
    contact added and a teammate invited, each once within a week (nobody invites anyone here,
    so no journey completes and every batch writes the same kinds of rows)."""
    workspace = WorkspaceFactory()
    journey = JourneyFactory(workspace=workspace, key="trial", starts_on=JourneyStart.FIRST_SEEN)
    for position, (key, name) in enumerate(
        (("campaign", "campaign_created"), ("contact", "contact_added"), ("invite", "invited"))
    ):
        MilestoneFactory(
            journey=journey,
            key=key,
            event_name=name,
            criterion=Criterion.EVENT,
            window=timedelta(days=7),
            position=position,
        )
    services.content_publish(obj=journey)
    return workspace


def batch(people: list[str], size: int, completing: str, reaching: int) -> list[dict[str, Any]]:
    """`size` events over `people` in turn: the first `reaching` are `completing`, the others
    page views (which complete nothing)."""
    now = timezone.now()
    return [
        {
            "id": str(uuid.uuid4()),
            "user_id": people[n % len(people)],
            "name": completing if n < reaching else "page_viewed",
            "timestamp": (now + timedelta(milliseconds=n)).isoformat(),
            "properties": {"plan": "trial", "n": n},
        }
        for n in range(size)
    ]


def post(client: Client, workspace: Workspace, events: list[dict[str, Any]]) -> dict[str, Any]:
    response = client.post(
        "/api/v1/events",
        data=json.dumps({"events": events}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {workspace.keys['secret_key']}",
    )
    assert response.status_code == 200, response.content
    return response.json()


def statements(client: Client, workspace: Workspace, events: list[dict[str, Any]]) -> int:
    with CaptureQueriesContext(connection) as captured:
        ack = post(client, workspace, events)
    assert len(ack["accepted"]) == len(events)
    return len(captured.captured_queries)


def test_a_batch_costs_as_many_statements_for_20_people_reaching_milestones_as_for_one(
    client: Client,
) -> None:
    workspace = trial_workspace()
    people = [f"p{n}" for n in range(20)]
    for person in people:  # their journeys start before their events
        recording.end_user_identify(workspace=workspace, external_id=person, traits={})
    post(client, workspace, batch(people, 20, "page_viewed", 0))  # caches warm from here on

    one = statements(client, workspace, batch(people, 20, "campaign_created", 1))
    twenty = statements(client, workspace, batch(people, 20, "contact_added", 20))
    five_times_the_events = statements(
        client, workspace, batch(people[1:], 100, "campaign_created", 1)
    )

    assert one == twenty == five_times_the_events
    # What was counted really happened: two people created a campaign, all twenty a contact.
    reached = MilestoneCompletion.objects.values_list("milestone__key", flat=True)
    assert sorted(reached) == ["campaign"] * 2 + ["contact"] * 20
