"""The Python client's typed results against a live Milepost: every analytics report as the
fields a team reads (the dashboards' numbers), the same types from the generic `report()`,
and answers of a newer Milepost (fields this client has never heard of) parsed all the same."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from milepost_client import (
    AdoptionMatrix,
    EndUser,
    JourneyFunnel,
    Lifecycle,
    Milepost,
    PaiValidation,
    PqlList,
    Progress,
    Retention,
    Velocity,
    WalkthroughFunnel,
)
from milepost_client.reports import EventFunnel

from milepost.asgi import application
from tests.clients.conftest import TRIAL_CONTENT, LiveMilepost, serve

TOUR = {
    "format": "milepost-content/1",
    "walkthroughs": [
        {
            "key": "tour",
            "name": "Tour",
            "steps": [
                {"page_url_pattern": "/", "selector": "", "title": "Hello", "body_markdown": "Hi."},
                {"page_url_pattern": "/", "selector": "#go", "title": "Go", "body_markdown": "Go."},
            ],
        }
    ],
}


@dataclass(frozen=True)
class Week:
    first: date
    last: date


def event(user: str, name: str, at: datetime, **properties: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "user_id": user,
        "name": name,
        "timestamp": at.isoformat(),
        "properties": properties,
    }


@pytest.fixture
def client(live_milepost: LiveMilepost) -> Iterator[Milepost]:
    """A workspace with a trial journey and a 2-step tour, and three people who signed up two
    days ago and came back an hour ago: ann sends two messages (a PQL) and finishes the tour;
    bob sends one message and stops at the tour's second step; cat only views the first."""
    now = datetime.now(UTC)
    with Milepost(live_milepost.url, live_milepost.secret_key, backoff=0.01) as milepost:
        milepost.import_content({**TRIAL_CONTENT, **TOUR}, publish=True)
        for user in ("ann", "bob", "cat"):
            milepost.identify(user, {"signed_up_at": (now - timedelta(days=2)).isoformat()})
        hour = now - timedelta(hours=1)
        milepost.send_events(
            [
                event("ann", "signup", hour),
                event("ann", "message_sent", hour + timedelta(minutes=1)),
                event("ann", "message_sent", hour + timedelta(minutes=2)),
                event("bob", "signup", hour),
                event("bob", "message_sent", hour + timedelta(minutes=5)),
                *[
                    event(user, name, hour + timedelta(minutes=10), walkthrough="tour", step=step)
                    for user, last in (("ann", 1), ("bob", 1), ("cat", 0))
                    for step in range(last + 1)
                    for name in ("$step_viewed", "$step_completed")
                    if not (name == "$step_completed" and user == "bob" and step == 1)
                ],
            ]
        )
        live_milepost.export_to_store()
        yield milepost


@pytest.fixture
def week() -> Week:
    today = datetime.now(UTC).date()
    return Week(today - timedelta(days=6), today + timedelta(days=1))


def test_the_journey_funnel_and_velocity_are_typed(client: Milepost, week: Week) -> None:
    funnel = client.journey_funnel("trial", date_from=week.first, date_to=week.last)
    velocity = client.velocity("trial", date_from=week.first, date_to=week.last)

    assert isinstance(funnel, JourneyFunnel)
    assert (funnel.journey, funnel.date_from, funnel.timezone) == ("trial", week.first, "UTC")
    assert [(s.key, s.reached) for s in funnel.steps] == [
        ("started", 3),
        ("installed-js", 0),
        ("sent-2-messages", 1),
    ]
    assert funnel.step("installed-js").dropped == 3  # nobody reported the snippet installed
    assert funnel.raw["steps"][0]["key"] == "started"  # the JSON, as it came
    sent = velocity.milestone("sent-2-messages")
    assert (sent.started, sent.reached) == (3, 1)
    assert sent.from_start.users == 1
    assert isinstance(sent.from_start.median, float)
    assert sum(bucket.users for bucket in sent.histogram_from_start) == 1


def test_the_walkthrough_step_drop_off_is_typed(client: Milepost, week: Week) -> None:
    funnel = client.walkthrough_funnel("tour", date_from=week.first, date_to=week.last)

    assert isinstance(funnel, WalkthroughFunnel)
    assert [(s.title, s.viewed, s.completed) for s in funnel.steps] == [
        ("Hello", 3, 3),
        ("Go", 2, 1),
    ]
    assert funnel.steps[1].completion_rate == pytest.approx(0.5)


def test_an_event_funnel_names_who_dropped_off(client: Milepost, week: Week) -> None:
    funnel = client.event_funnel(
        {
            "steps": [{"event": "signup"}, {"event": "message_sent"}],
            "date_from": week.first,
            "date_to": week.last,
        }
    )

    assert isinstance(funnel, EventFunnel)
    assert [s.count for s in funnel.steps] == [2, 2]
    assert funnel.steps[1].conversion_from_previous == 1.0
    assert sorted(funnel.steps[1].converted_people) == ["ann", "bob"]
    assert funnel.over_time[-1].period_start <= week.last


def test_people_reports_are_typed(client: Milepost, week: Week) -> None:
    retention = client.retention(date_from=week.first, date_to=week.last, periods=2)
    lifecycle = client.lifecycle()
    pqls = client.pqls()
    adoption = client.adoption(["message_sent", "signup"], date_from=week.first, date_to=week.last)
    pai = client.pai(
        "message_sent",
        date_from=week.first,
        date_to=week.last,
        window_days=3,
        retention_day=1,
        max_threshold=2,
    )

    assert isinstance(retention, Retention)
    assert sum(c.size for c in retention.cohorts) == 3  # ann, bob, cat: first seen this week
    assert all(len(c.rates) == 2 for c in retention.cohorts)
    assert isinstance(lifecycle, Lifecycle)
    assert sum(state.current for state in lifecycle.states) == 3
    assert isinstance(pqls, PqlList)
    assert [(row.external_id, row.journey) for row in pqls.rows] == [("ann", "trial")]
    assert pqls.rows[0].pql_at.tzinfo is not None
    assert isinstance(adoption, AdoptionMatrix)
    assert adoption.features == ("message_sent", "signup")
    both = next(cell for cell in adoption.cells if cell.used == (True, True))
    assert both.users == 2
    assert isinstance(pai, PaiValidation)
    assert (pai.key_event, pai.signups, pai.retained) == ("message_sent", 3, 3)
    assert [t.threshold for t in pai.thresholds] == [1, 2]
    assert [t.met for t in pai.thresholds] == [2, 1]


def test_report_by_name_answers_the_same_type(client: Milepost, week: Week) -> None:
    by_name = client.report("velocity", journey="trial", date_from=week.first, date_to=week.last)
    with pytest.raises(ValueError, match="unknown report 'funnels'"):
        client.report("funnels")

    assert isinstance(by_name, Velocity)
    assert by_name == client.velocity("trial", date_from=week.first, date_to=week.last)


class NewerMilepost:
    """Milepost as a later version may answer: every JSON object carries fields this client has
    never heard of, at every depth."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        if any(
            k.lower() == b"content-type" and v.startswith(b"application/json") for k, v in headers
        ):
            body = json.dumps(_with_new_fields(json.loads(body))).encode()
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _with_new_fields(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            **{k: _with_new_fields(v) for k, v in value.items()},
            "added_later": {"kind": "new"},
        }
    if isinstance(value, list):
        return [_with_new_fields(item) for item in value]
    return value


def test_answers_with_fields_this_client_does_not_know_still_parse(
    client: Milepost, live_milepost: LiveMilepost, week: Week
) -> None:
    with (
        serve(NewerMilepost(application)) as server,
        Milepost(server.url, live_milepost.secret_key) as newer,  # type: ignore[attr-defined]
    ):
        user = newer.identify("ann", {"plan": "pro"})
        progress = newer.progress("ann")
        funnel = newer.walkthrough_funnel("tour", date_from=week.first, date_to=week.last)
        velocity = newer.velocity("trial", date_from=week.first, date_to=week.last)

    assert isinstance(user, EndUser)
    assert user.traits["plan"] == "pro"
    assert user.raw["added_later"] == {"kind": "new"}
    assert isinstance(progress, Progress)
    assert progress.journey("trial").pql
    assert progress.journey("trial").milestones[1].raw["added_later"] == {"kind": "new"}
    assert funnel == client.walkthrough_funnel("tour", date_from=week.first, date_to=week.last)
    assert velocity == client.velocity("trial", date_from=week.first, date_to=week.last)
