"""A step whose target is missing for more than the workspace's (or walkthrough's) share of the
people who reached it is flagged in its step funnel and on the walkthrough admin list, and a
team alert rule tells the team once by webhook and e-mail: end to end, from events recorded
through onboarding's write path, exported to the analytics store, to a real webhook receiver
and a real SMTP server."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from analytics.report import walkthrough_funnel
from engagement import services as engagement
from engagement.models import Delivery, Trigger
from onboarding import recording
from onboarding.models import Walkthrough, Workspace, WorkspaceMember
from tests.engagement.conftest import Mailbox, WebhookReceiver, allow_loopback_webhooks
from tests.engagement.factories import MessageFactory, RuleFactory, WebhookEndpointFactory
from tests.factories import (
    StepFactory,
    UserFactory,
    WalkthroughFactory,
    WorkspaceFactory,
    WorkspaceMemberFactory,
)

pytestmark = pytest.mark.django_db


def widget_events(
    workspace: Workspace, user: str, *events: tuple[str, int], selector: str = "#create"
) -> None:
    now = timezone.now().isoformat()
    ack = recording.events_record(
        workspace=workspace,
        source="widget",
        events=[
            {
                "id": str(uuid.uuid4()),
                "user_id": user,
                "name": name,
                "timestamp": now,
                "properties": {"walkthrough": "tour", "step": step, "selector": selector},
            }
            for name, step in events
        ],
    )
    assert ack.rejected == [], ack.rejected


def tour_seen_by_ten(workspace: Workspace, missing_for: int) -> Walkthrough:
    """Ten people reach both steps; the second step's target is missing for `missing_for` of
    them (who then see it as the centred-modal fallback)."""
    walkthrough = WalkthroughFactory(workspace=workspace, key="tour", name="Campaign tour")
    StepFactory(walkthrough=walkthrough, position=0, title="Welcome", selector="")
    StepFactory(walkthrough=walkthrough, position=1, title="Create one", selector="#create")
    for n in range(10):
        events = [("$step_viewed", 0), ("$step_completed", 0)]
        if n < missing_for:
            events.append(("$step_target_missing", 1))
        widget_events(workspace, f"person-{n}", *events, ("$step_viewed", 1))
    return walkthrough


def test_a_step_over_the_threshold_is_flagged_in_its_funnel(analytics_store: Any) -> None:
    workspace = WorkspaceFactory(missing_target_alert_percent=20)
    walkthrough = tour_seen_by_ten(workspace, missing_for=3)
    analytics_store()
    funnel = walkthrough_funnel.walkthrough_step_funnel(
        walkthrough=walkthrough, date_range=walkthrough_funnel.alert_range()
    )
    assert [(s.reached, s.target_missing_users, s.flagged) for s in funnel.steps] == [
        (10, 0, False),
        (10, 3, True),
    ]
    assert funnel.steps[1].target_missing_share == 0.3
    # The walkthrough's own threshold wins over the workspace's.
    Walkthrough.objects.filter(pk=walkthrough.pk).update(missing_target_alert_percent=30)
    walkthrough.refresh_from_db()
    funnel = walkthrough_funnel.walkthrough_step_funnel(
        walkthrough=walkthrough, date_range=walkthrough_funnel.alert_range()
    )
    assert not funnel.steps[1].flagged  # 30 % is not more than 30 %


def test_too_few_people_flag_nothing(analytics_store: Any) -> None:
    workspace = WorkspaceFactory(missing_target_alert_percent=20)
    walkthrough = WalkthroughFactory(workspace=workspace, key="tour")
    StepFactory(walkthrough=walkthrough, position=0, selector="#gone")
    for n in range(9):
        widget_events(workspace, f"person-{n}", ("$step_target_missing", 0))
    analytics_store()
    assert walkthrough_funnel.missing_target_flags(walkthroughs=[walkthrough]) == []


def test_the_walkthrough_list_flags_the_step(client: Client, analytics_store: Any) -> None:
    workspace = WorkspaceFactory(missing_target_alert_percent=20)
    tour_seen_by_ten(workspace, missing_for=3)
    healthy = WalkthroughFactory(workspace=workspace, key="other", name="Healthy tour")
    StepFactory(walkthrough=healthy, position=0, selector="#fine")
    analytics_store()
    editor = UserFactory()
    WorkspaceMemberFactory(workspace=workspace, user=editor, role=WorkspaceMember.Role.EDITOR)
    client.force_login(editor)
    page = client.get(reverse("admin:onboarding_walkthrough_changelist")).content.decode()
    assert "Step health" in page
    assert "⚠ step 2 “Create one”: target missing for 3 of 10 people (30%)" in page
    assert page.count("⚠") == 1


def test_an_alert_rule_tells_the_team_once_by_webhook_and_email(
    analytics_store: Any,
    smtp_server: Mailbox,
    webhook_receiver: WebhookReceiver,
    django_capture_on_commit_callbacks: Any,
) -> None:
    workspace = WorkspaceFactory(name="Acme", missing_target_alert_percent=20)
    allow_loopback_webhooks(workspace)
    hook = WebhookEndpointFactory(workspace=workspace, url=webhook_receiver.url)
    webhook_receiver.secret = hook.secret
    rule = RuleFactory(
        workspace=workspace, trigger=Trigger.STEP_TARGET_MISSING, event_name="",
        send_in_app=False, send_email=True, email_to="product@acme.test", webhook=hook,
        message=MessageFactory(
            workspace=workspace,
            title="Step {{ step_number }} of {{ walkthrough_name }} is broken",
            body="{{ selector }} was missing for {{ missing_percent }}% of people.",
        ),
    )  # fmt: skip
    rule.full_clean()
    walkthrough = tour_seen_by_ten(workspace, missing_for=3)
    analytics_store()

    with django_capture_on_commit_callbacks(execute=True):
        result = engagement.rules_sweep()
    assert result.fired == 1
    sent = dict(Delivery.objects.filter(rule=rule).values_list("channel", "status"))
    assert sent == {"email": "sent", "webhook": "sent"}
    [mail] = smtp_server.messages
    assert mail["Subject"] == "Step 2 of Campaign tour is broken"
    assert mail["X-Envelope-To"] == "product@acme.test"
    [received] = webhook_receiver.received
    body = received.json()
    assert body["rule"]["trigger"] == "step_target_missing"
    assert body["message"]["text"] == "#create was missing for 30% of people."
    assert body["facts"]["walkthrough"] == "tour"
    assert body["facts"]["people_missing"] == 3
    assert body["facts"]["people_reached"] == 10

    # Still flagged at the next pass: nothing is sent twice.
    with django_capture_on_commit_callbacks(execute=True):
        assert engagement.rules_sweep().fired == 0
    assert len(webhook_receiver.received) == 1
    # A new selector published that end users' widgets report missing too alerts again.
    walkthrough.steps.filter(position=1).update(selector="#create-campaign")
    with django_capture_on_commit_callbacks(execute=True):
        assert engagement.rules_sweep().fired == 0  # a draft edit: nobody had it yet
    widget_events(workspace, "person-0", ("$step_target_missing", 1), selector="#create-campaign")
    analytics_store()
    with django_capture_on_commit_callbacks(execute=True):
        assert engagement.rules_sweep().fired == 1
    assert len(webhook_receiver.received) == 2
    assert webhook_receiver.received[1].json()["facts"]["selector"] == "#create-campaign"


def test_an_alert_rule_is_for_the_team_not_end_users() -> None:
    workspace = WorkspaceFactory()
    rule = RuleFactory.build(
        workspace=workspace, trigger=Trigger.STEP_TARGET_MISSING, event_name="",
        send_in_app=True, send_email=True, email_to="",
        message=MessageFactory(workspace=workspace),
    )  # fmt: skip
    with pytest.raises(ValidationError) as caught:
        rule.full_clean()
    errors = caught.value.message_dict
    assert "alerts your team, not end users" in errors["send_in_app"][0]
    assert "give the addresses" in errors["email_to"][0]


def test_the_threshold_is_a_percentage_from_1_to_100() -> None:
    for bad in (0, 101):
        with pytest.raises(ValidationError) as caught:
            WorkspaceFactory.build(missing_target_alert_percent=bad).full_clean(
                exclude=["publishable_key", "secret_key_hash", "secret_key_hint", "identity_secret"]
            )
        assert "missing_target_alert_percent" in caught.value.message_dict
