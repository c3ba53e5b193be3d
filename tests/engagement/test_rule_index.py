"""The rule index: engagement's receivers on the write path (journey started, PQL reached,
milestone completed, traits updated, hello) learn without a query that no rule matches, see a
rule change made in this process at once and one made elsewhere within the TTL, and a matching
rule fires exactly once, after the write path, through a `fire_rule` task."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.utils import timezone

from engagement import receivers, rule_index, services
from engagement.models import Channel, Delivery, Rule, Trigger
from tests.engagement.factories import MessageFactory, RuleFactory
from tests.factories import EndUserFactory, JourneyFactory, MilestoneFactory

pytestmark = pytest.mark.django_db

SIGNALS = [
    "journey_started",
    "pql_reached",
    "milestone_completed",
    "end_user_updated",
    "end_user_connected",
]


@pytest.fixture
def journey() -> Any:
    return JourneyFactory()


@pytest.fixture
def milestone(journey: Any) -> Any:
    return MilestoneFactory(journey=journey)


@pytest.fixture
def pushed(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The in-app messages pushed to end users' open tabs."""
    messages: list[dict[str, Any]] = []
    monkeypatch.setattr(
        services, "push_to_end_user", lambda *, end_user_id, message: messages.append(message)
    )
    return messages


def hear(signal: str, *, end_user: Any, journey: Any, milestone: Any) -> None:
    """Call engagement's receiver as onboarding's signal does after commit."""
    ids = {"workspace_id": end_user.workspace_id, "end_user_id": end_user.pk}
    now = timezone.now()
    if signal == "journey_started":
        receivers.on_journey_started(**ids, journey_id=journey.pk, started_at=now)
    elif signal == "pql_reached":
        receivers.on_pql_reached(**ids, journey_id=journey.pk, pql_at=now)
    elif signal == "milestone_completed":
        receivers.on_milestone_completed(
            **ids, milestone_id=milestone.pk, journey_id=journey.pk, completed_at=now
        )
    elif signal == "end_user_updated":
        receivers.on_end_user_updated(**ids, traits_changed=["plan"])
    else:
        receivers.on_end_user_connected(**ids)


def a_rule(trigger: str, *, journey: Any, milestone: Any, **fields: Any) -> Rule:
    target = {"milestone": milestone} if trigger == Trigger.MILESTONE_COMPLETED else {}
    if trigger in (Trigger.JOURNEY_STARTED, Trigger.PQL_REACHED):
        target = {"journey": journey}
    rule: Rule = RuleFactory(
        workspace=journey.workspace, trigger=trigger, event_name="", **target, **fields
    )
    return rule


@pytest.mark.parametrize("signal", SIGNALS)
def test_a_signal_in_a_workspace_without_rules_runs_no_query(
    signal: str,
    journey: Any,
    milestone: Any,
    django_assert_num_queries: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    people = EndUserFactory.create_batch(2, workspace=journey.workspace)
    with django_assert_num_queries(1):  # reading the index, once per process and TTL
        hear(signal, end_user=people[0], journey=journey, milestone=milestone)

    with django_assert_num_queries(0), django_capture_on_commit_callbacks() as enqueued:
        hear(signal, end_user=people[1], journey=journey, milestone=milestone)

    assert enqueued == []
    assert not Delivery.objects.exists()


@pytest.mark.parametrize("signal", SIGNALS[:4])
def test_a_signal_no_rule_matches_runs_no_query(
    signal: str,
    journey: Any,
    milestone: Any,
    django_assert_num_queries: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    other_journey = JourneyFactory(workspace=journey.workspace)
    a_rule(Trigger.JOURNEY_STARTED, journey=other_journey, milestone=None)
    a_rule(Trigger.PQL_REACHED, journey=journey, milestone=None, is_paused=True)
    a_rule(
        Trigger.MILESTONE_COMPLETED, journey=journey, milestone=MilestoneFactory(journey=journey)
    )
    a_rule(Trigger.TRAIT_THRESHOLD, journey=journey, milestone=None, trait="seats", threshold=5)
    RuleFactory(workspace=journey.workspace, event_name="campaign_created")
    end_user = EndUserFactory(workspace=journey.workspace, traits={"plan": "pro", "seats": 9})
    rule_index.for_workspace(journey.workspace_id)

    with django_assert_num_queries(0), django_capture_on_commit_callbacks() as enqueued:
        hear(signal, end_user=end_user, journey=journey, milestone=milestone)

    assert enqueued == []
    assert not Delivery.objects.exists()


@pytest.mark.parametrize(
    "trigger", [Trigger.JOURNEY_STARTED, Trigger.PQL_REACHED, Trigger.MILESTONE_COMPLETED]
)
def test_a_matching_rule_fires_once_after_the_write_path(
    trigger: str,
    journey: Any,
    milestone: Any,
    pushed: list[dict[str, Any]],
    django_assert_num_queries: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    rule = a_rule(trigger, journey=journey, milestone=milestone)
    end_user = EndUserFactory(workspace=journey.workspace)
    signal = {Trigger.JOURNEY_STARTED: "journey_started", Trigger.PQL_REACHED: "pql_reached"}.get(
        trigger, "milestone_completed"
    )

    with django_assert_num_queries(1), django_capture_on_commit_callbacks() as enqueued:
        hear(signal, end_user=end_user, journey=journey, milestone=milestone)
    assert not Delivery.objects.exists()  # the write path only enqueued fire_rule
    assert len(enqueued) == 1
    with django_capture_on_commit_callbacks(execute=True):
        enqueued[0]()
    with django_capture_on_commit_callbacks(execute=True):  # the signal again: no second one
        hear(signal, end_user=end_user, journey=journey, milestone=milestone)

    [delivery] = Delivery.objects.filter(rule=rule)
    assert (delivery.end_user, delivery.channel) == (end_user, Channel.IN_APP)
    assert delivery.status == Delivery.Status.SENT
    assert [message["id"] for message in pushed] == [str(delivery.uid)]
    subject = {"journey": journey.key}
    if trigger == Trigger.MILESTONE_COMPLETED:
        subject = {"milestone": milestone.key}
    assert delivery.payload["facts"] == subject


def test_a_rule_saved_in_this_process_is_seen_at_once(
    journey: Any, milestone: Any, django_capture_on_commit_callbacks: Any
) -> None:
    first, second, third = EndUserFactory.create_batch(3, workspace=journey.workspace)
    hear("journey_started", end_user=first, journey=journey, milestone=milestone)
    assert rule_index.for_workspace(journey.workspace_id).journey_rules == {}

    rule = a_rule(Trigger.JOURNEY_STARTED, journey=journey, milestone=milestone)
    with django_capture_on_commit_callbacks(execute=True):
        hear("journey_started", end_user=second, journey=journey, milestone=milestone)
    rule.journey = JourneyFactory(workspace=journey.workspace)
    rule.save()
    with django_capture_on_commit_callbacks(execute=True):
        hear("journey_started", end_user=third, journey=journey, milestone=milestone)

    assert [d.end_user for d in Delivery.objects.filter(rule=rule)] == [second]


def test_a_rule_added_by_another_process_is_seen_within_the_ttl(
    journey: Any,
    milestone: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(rule_index, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    early, late = EndUserFactory.create_batch(2, workspace=journey.workspace)
    rule_index.for_workspace(journey.workspace_id)
    # bulk_create sends no post_save: this process hears nothing, like a rule saved elsewhere.
    [rule] = Rule.objects.bulk_create(
        [
            Rule(
                workspace=journey.workspace,
                key="welcome",
                name="Welcome",
                trigger=Trigger.JOURNEY_STARTED,
                journey=journey,
                message=MessageFactory(workspace=journey.workspace),
            )
        ]
    )

    clock[0] += rule_index.INDEX_TTL - 0.1
    with django_capture_on_commit_callbacks(execute=True):
        hear("journey_started", end_user=early, journey=journey, milestone=milestone)
    clock[0] += 0.1
    with django_capture_on_commit_callbacks(execute=True):
        hear("journey_started", end_user=late, journey=journey, milestone=milestone)

    assert [d.end_user for d in Delivery.objects.filter(rule=rule)] == [late]


def test_an_index_read_while_a_rule_changes_is_not_kept(
    journey: Any, monkeypatch: pytest.MonkeyPatch, django_assert_num_queries: Any
) -> None:
    read = rule_index._read

    def read_then_a_rule_changes(workspace_id: int) -> rule_index.RuleIndex:
        index = read(workspace_id)
        a_rule(Trigger.JOURNEY_STARTED, journey=journey, milestone=None)
        return index

    monkeypatch.setattr(rule_index, "_read", read_then_a_rule_changes)
    assert rule_index.for_workspace(journey.workspace_id).journey_rules == {}
    monkeypatch.setattr(rule_index, "_read", read)

    with django_assert_num_queries(1):
        index = rule_index.for_workspace(journey.workspace_id)
    assert list(index.journey_rules) == [(Trigger.JOURNEY_STARTED, journey.pk)]


def _waiting_message(journey: Any, **rule_fields: Any) -> tuple[Rule, Any, Delivery]:
    """An in-app message fired while the person was away, not shown yet."""
    rule = a_rule(Trigger.JOURNEY_STARTED, journey=journey, milestone=None, **rule_fields)
    end_user = EndUserFactory(workspace=journey.workspace)
    [delivery] = services.rule_fire(rule=rule, end_user_id=end_user.pk, occurrence="once")
    return rule, end_user, delivery


def test_a_hello_still_shows_the_waiting_message_of_a_rule_paused_since(
    journey: Any, pushed: list[dict[str, Any]]
) -> None:
    rule, end_user, delivery = _waiting_message(journey)
    services.rules_set_paused(rules=Rule.objects.filter(pk=rule.pk), paused=True)

    services.end_user_connected(workspace_id=journey.workspace_id, end_user_id=end_user.pk)

    assert [message["id"] for message in pushed] == [str(delivery.uid)]


def test_a_hello_still_shows_the_waiting_message_of_a_rule_no_longer_in_app(
    journey: Any, pushed: list[dict[str, Any]]
) -> None:
    rule, end_user, delivery = _waiting_message(journey)
    rule.send_in_app, rule.send_email = False, True
    rule.save()

    services.end_user_connected(workspace_id=journey.workspace_id, end_user_id=end_user.pk)

    assert [message["id"] for message in pushed] == [str(delivery.uid)]


def test_a_hello_skips_looking_for_messages_when_no_rule_sent_in_app_within_30_days(
    journey: Any, django_assert_num_queries: Any
) -> None:
    rule = a_rule(
        Trigger.JOURNEY_STARTED, journey=journey, milestone=None, send_in_app=False, send_email=True
    )
    end_user = EndUserFactory(workspace=journey.workspace)
    ids = {"workspace_id": journey.workspace_id, "end_user_id": end_user.pk}
    # Saved today: its in-app channel may just have been switched off, so look.
    with django_assert_num_queries(2):
        assert services.end_user_connected(**ids) == 0

    Rule.objects.filter(pk=rule.pk).update(updated_at=timezone.now() - timedelta(days=40))
    rule_index.forget(workspace_id=journey.workspace_id)
    with django_assert_num_queries(1):
        assert services.end_user_connected(**ids) == 0
    with django_assert_num_queries(0):
        assert services.end_user_connected(**ids) == 0
