"""Each signal-driven trigger kind, heard through onboarding's real signals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from engagement.models import Channel, Delivery, Trigger
from onboarding import recording, signals
from onboarding.services import content_publish
from tests.engagement.factories import MessageFactory, RuleFactory
from tests.factories import (
    ConditionFactory,
    EndUserFactory,
    EventFactory,
    JourneyFactory,
    MilestoneCompletionFactory,
    MilestoneFactory,
    SegmentFactory,
    WorkspaceFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def send(django_capture_on_commit_callbacks: Any) -> Callable[..., None]:
    """Send a signal as onboarding does after commit, and run what it enqueues."""

    def send_signal(signal: Any, **kwargs: Any) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            signal.send(sender=None, **kwargs)

    return send_signal


def deliveries(**filters: Any) -> list[Delivery]:
    return list(Delivery.objects.filter(**filters).order_by("id"))


def test_a_completed_milestone_congratulates_and_points_to_the_next_published_one(
    send: Any,
) -> None:
    journey = JourneyFactory(name="Trial onboarding")
    first = MilestoneFactory(journey=journey, name="Created a campaign", position=0)
    second = MilestoneFactory(journey=journey, name="Imported contacts", position=1)
    content_publish(obj=journey)
    # Drafts edited after the publish are not what live users see, so messages ignore them.
    second.name = "Draft name nobody sees yet"
    second.save(update_fields=["name"])
    MilestoneFactory(journey=journey, name="Unpublished step", position=1)
    end_user = EndUserFactory(workspace=journey.workspace, traits={"first_name": "Ada"})
    rule = RuleFactory(
        workspace=journey.workspace,
        trigger=Trigger.MILESTONE_COMPLETED,
        event_name="",
        milestone=first,
        message=MessageFactory(
            workspace=journey.workspace,
            title="Well done, {{ first_name }}!",
            body="You finished {{ milestone_name }}. Next: **{{ next_milestone }}** "
            "({{ progress_percent }}% done).",
        ),
    )
    MilestoneCompletionFactory(end_user=end_user, milestone=first)

    send(
        signals.milestone_completed,
        workspace_id=journey.workspace_id,
        end_user_id=end_user.pk,
        milestone_id=first.pk,
        journey_id=journey.pk,
        completed_at=timezone.now(),
    )

    [delivery] = deliveries(rule=rule)
    assert delivery.channel == Channel.IN_APP
    assert delivery.status == Delivery.Status.SENT
    assert delivery.payload["title"] == "Well done, Ada!"
    assert delivery.payload["body_html"] == (
        "<p>You finished Created a campaign. Next: <strong>Imported contacts</strong> "
        "(50% done).</p>"
    )


def test_a_rule_fires_once_per_user_even_when_the_signal_comes_twice(send: Any) -> None:
    milestone = MilestoneFactory()
    end_user = EndUserFactory(workspace=milestone.workspace)
    rule = RuleFactory(
        workspace=milestone.workspace,
        trigger=Trigger.MILESTONE_COMPLETED,
        event_name="",
        milestone=milestone,
    )
    kwargs = {
        "workspace_id": milestone.workspace_id,
        "end_user_id": end_user.pk,
        "milestone_id": milestone.pk,
        "journey_id": milestone.journey_id,
        "completed_at": timezone.now(),
    }

    send(signals.milestone_completed, **kwargs)
    send(signals.milestone_completed, **kwargs)

    assert len(deliveries(rule=rule)) == 1


def test_journey_started_and_pql_reached_fire_their_rules(send: Any) -> None:
    journey = JourneyFactory()
    end_user = EndUserFactory(workspace=journey.workspace)
    welcome = RuleFactory(
        workspace=journey.workspace,
        trigger=Trigger.JOURNEY_STARTED,
        event_name="",
        journey=journey,
    )
    pql = RuleFactory(
        workspace=journey.workspace, trigger=Trigger.PQL_REACHED, event_name="", journey=journey
    )
    ids = {"workspace_id": journey.workspace_id, "end_user_id": end_user.pk}

    send(signals.journey_started, **ids, journey_id=journey.pk, started_at=timezone.now())
    assert len(deliveries(rule=welcome)) == 1
    assert deliveries(rule=pql) == []

    send(signals.pql_reached, **ids, journey_id=journey.pk, pql_at=timezone.now())
    assert len(deliveries(rule=pql)) == 1


def test_an_event_rule_fires_only_when_the_properties_match(send: Any) -> None:
    end_user = EndUserFactory()
    rule = RuleFactory(
        workspace=end_user.workspace,
        event_name="plan_viewed",
        event_properties={"plan": "pro", "seats": 5},
        once_per_user=False,
    )
    other = EventFactory(end_user=end_user, name="plan_viewed", properties={"plan": "basic"})
    match = EventFactory(
        end_user=end_user, name="plan_viewed", properties={"plan": "pro", "seats": 5.0}
    )
    unrelated = EventFactory(end_user=end_user, name="logged_in", properties={"plan": "pro"})

    send(
        signals.events_recorded,
        workspace_id=end_user.workspace_id,
        end_user_ids=[end_user.pk],
        event_ids=[other.pk, match.pk, unrelated.pk],
    )

    [delivery] = deliveries(rule=rule)
    assert delivery.occurrence == f"event:{match.client_id}"
    assert delivery.payload["facts"] == {"event": "plan_viewed"}


def test_an_event_rule_not_once_per_user_fires_for_every_matching_event(send: Any) -> None:
    end_user = EndUserFactory()
    rule = RuleFactory(workspace=end_user.workspace, event_name="export", once_per_user=False)
    events = [EventFactory(end_user=end_user, name="export") for _ in range(3)]

    send(
        signals.events_recorded,
        workspace_id=end_user.workspace_id,
        end_user_ids=[end_user.pk],
        event_ids=[e.pk for e in events],
    )

    assert len(deliveries(rule=rule)) == 3


def test_a_paused_rule_does_not_fire(send: Any) -> None:
    end_user = EndUserFactory()
    rule = RuleFactory(workspace=end_user.workspace, event_name="export", is_paused=True)
    event = EventFactory(end_user=end_user, name="export")

    send(
        signals.events_recorded,
        workspace_id=end_user.workspace_id,
        end_user_ids=[end_user.pk],
        event_ids=[event.pk],
    )

    assert deliveries(rule=rule) == []


def test_a_rule_reaches_only_its_segment(send: Any) -> None:
    segment = SegmentFactory()
    ConditionFactory(segment=segment, trait="plan", operator="eq", value="trial")
    trial = EndUserFactory(workspace=segment.workspace, traits={"plan": "trial"})
    paying = EndUserFactory(workspace=segment.workspace, traits={"plan": "pro"})
    rule = RuleFactory(workspace=segment.workspace, event_name="export", segment=segment)
    events = [
        EventFactory(end_user=trial, name="export"),
        EventFactory(end_user=paying, name="export"),
    ]

    send(
        signals.events_recorded,
        workspace_id=segment.workspace_id,
        end_user_ids=[trial.pk, paying.pk],
        event_ids=[e.pk for e in events],
    )

    assert [d.end_user_id for d in deliveries(rule=rule)] == [trial.pk]


def test_a_numeric_trait_crossing_its_threshold_fires_once(send: Any) -> None:
    end_user = EndUserFactory(traits={"emails_sent": 80})
    rule = RuleFactory(
        workspace=end_user.workspace,
        trigger=Trigger.TRAIT_THRESHOLD,
        event_name="",
        trait="emails_sent",
        threshold=100,
    )
    ids = {"workspace_id": end_user.workspace_id, "end_user_id": end_user.pk}

    send(signals.end_user_connected, **ids)
    assert deliveries(rule=rule) == []

    end_user.traits = {"emails_sent": 100}
    end_user.save(update_fields=["traits"])
    send(signals.end_user_connected, **ids)
    send(signals.end_user_connected, **ids)

    [delivery] = deliveries(rule=rule)
    assert delivery.payload["facts"] == {"trait": "emails_sent", "value": 100, "threshold": 100}


def identify(workspace: Any, user: str, traits: dict[str, Any], capture: Any) -> None:
    with capture(execute=True):
        recording.end_user_identify(workspace=workspace, external_id=user, traits=traits)


def test_a_trait_reaching_its_threshold_through_identify_fires_at_once(
    django_capture_on_commit_callbacks: Any,
) -> None:
    workspace = WorkspaceFactory()
    limit = RuleFactory(
        workspace=workspace,
        trigger=Trigger.TRAIT_THRESHOLD,
        event_name="",
        trait="emails_sent",
        threshold=100,
        send_email=True,
        email_to="sales@example.com",
    )
    seats = RuleFactory(
        workspace=workspace, trigger=Trigger.TRAIT_THRESHOLD, event_name="", trait="seats",
        threshold=5,
    )  # fmt: skip

    identify(workspace, "kim", {"emails_sent": 80, "seats": 1}, django_capture_on_commit_callbacks)
    assert deliveries() == []
    identify(workspace, "kim", {"emails_sent": 100.5}, django_capture_on_commit_callbacks)
    identify(workspace, "kim", {"emails_sent": 130}, django_capture_on_commit_callbacks)

    [in_app, email] = deliveries(rule=limit)
    assert (in_app.channel, email.channel) == (Channel.IN_APP, Channel.EMAIL)
    assert in_app.status == Delivery.Status.SENT
    assert in_app.payload["facts"] == {"trait": "emails_sent", "value": 100.5, "threshold": 100}
    [sent] = mail.outbox
    assert sent.to == ["sales@example.com"]
    assert deliveries(rule=seats) == []


def test_a_trait_that_is_not_a_number_never_crosses(
    django_capture_on_commit_callbacks: Any,
) -> None:
    workspace = WorkspaceFactory()
    RuleFactory(
        workspace=workspace, trigger=Trigger.TRAIT_THRESHOLD, event_name="",
        trait="emails_sent", threshold=100,
    )  # fmt: skip

    for value in ("1000", True, [200], {"count": 300}):
        identify(workspace, "kim", {"emails_sent": value}, django_capture_on_commit_callbacks)

    assert deliveries() == []
