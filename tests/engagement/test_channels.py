"""In-app, e-mail and webhook deliveries against real components on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connections
from django.test import Client
from django.utils import timezone

from engagement import services
from engagement.models import Channel, Delivery, FrequencyCap, Trigger, WebhookEndpoint
from onboarding import signals
from onboarding.realtime import end_user_group
from tests.engagement.conftest import Mailbox, WebhookReceiver, allow_loopback_webhooks
from tests.engagement.factories import MessageFactory, RuleFactory, WebhookEndpointFactory
from tests.factories import EndUserFactory, EventFactory

pytestmark = pytest.mark.django_db


def fire(rule: Any, end_user: Any, capture: Any, occurrence: str = "once") -> list[Delivery]:
    with capture(execute=True):
        created = services.rule_fire(rule=rule, end_user_id=end_user.pk, occurrence=occurrence)
    for delivery in created:
        delivery.refresh_from_db()
    return created


# --- in-app -----------------------------------------------------------------------------------


@pytest.fixture
async def _close_thread_connections() -> Any:
    """The async tests reach the database from asgiref's worker thread; close its connection
    so the test database can be dropped."""
    yield
    await sync_to_async(connections.close_all)()


def _in_app_rule_and_user() -> tuple[Any, Any]:
    end_user = EndUserFactory(traits={"first_name": "Grace"})
    rule = RuleFactory(
        workspace=end_user.workspace,
        key="congrats",
        message=MessageFactory(
            workspace=end_user.workspace,
            style="toast",
            title="Nice one, {{ first_name }}",
            body="Keep *going*.",
            cta_label="Import contacts",
            cta_url="/contacts",
        ),
    )
    return rule, end_user


def _fire_now(rule: Any, end_user: Any) -> list[Delivery]:
    deliveries = services.rule_fire(rule=rule, end_user_id=end_user.pk, occurrence="once")
    return deliveries


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_close_thread_connections")
async def test_an_in_app_message_reaches_the_users_open_tabs_at_once() -> None:
    rule, end_user = await sync_to_async(_in_app_rule_and_user)()
    layer = get_channel_layer()
    tab = await layer.new_channel()
    await layer.group_add(end_user_group(end_user.pk), tab)

    [delivery] = await sync_to_async(_fire_now)(rule, end_user)
    pushed = await asyncio.wait_for(layer.receive(tab), timeout=5)

    message = pushed["message"]
    assert message["type"] == "message"
    assert message["id"] == str(delivery.uid)
    assert message["rule"] == "congrats"
    assert message["style"] == "toast"
    assert message["title"] == "Nice one, Grace"
    assert message["body_html"] == "<p>Keep <em>going</em>.</p>"
    assert message["cta"] == {"label": "Import contacts", "url": "/contacts"}
    assert isinstance(message["seq"], int)
    # No element-present trigger on this message: none in what the SDK gets.
    assert "when_present" not in message
    assert "wait_timeout_ms" not in message


def _rule_waiting_for_an_element() -> tuple[Any, Any]:
    rule, end_user = _in_app_rule_and_user()
    rule.message.when_present = "#contacts .empty"
    rule.message.wait_timeout_ms = 8000
    rule.message.save(update_fields=["when_present", "wait_timeout_ms"])
    return rule, end_user


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_close_thread_connections")
async def test_a_message_that_waits_for_an_element_tells_the_sdk_which_and_how_long() -> None:
    rule, end_user = await sync_to_async(_rule_waiting_for_an_element)()
    layer = get_channel_layer()
    tab = await layer.new_channel()
    await layer.group_add(end_user_group(end_user.pk), tab)

    [delivery] = await sync_to_async(_fire_now)(rule, end_user)
    pushed = await asyncio.wait_for(layer.receive(tab), timeout=5)
    assert pushed["message"]["when_present"] == "#contacts .empty"
    assert pushed["message"]["wait_timeout_ms"] == 8000

    # Not shown (its element never came): pushed again on the next visit, still waiting.
    await sync_to_async(_connected)(end_user)
    again = await asyncio.wait_for(layer.receive(tab), timeout=5)
    assert again["message"]["id"] == str(delivery.uid)
    assert again["message"]["when_present"] == "#contacts .empty"


@pytest.mark.parametrize(
    ("next_url", "cta_url"),
    [
        ("/billing", "/billing"),
        ("https://app.example.com/next", "https://app.example.com/next"),
        ("javascript:alert(document.cookie)", None),
        (" JavaScript:alert(1)", None),
        ("java\tscript:alert(1)", None),
        ("data:text/html,<script>alert(1)</script>", None),
        ("/\\evil.example.net", None),
        ("//evil.example.net", None),
        ("", None),
    ],
)
def test_a_call_to_action_filled_from_traits_is_checked_again_before_it_is_sent(
    next_url: str, cta_url: str | None
) -> None:
    end_user = EndUserFactory(traits={"next_url": next_url})
    rule = RuleFactory(
        workspace=end_user.workspace,
        message=MessageFactory(
            workspace=end_user.workspace, cta_label="Continue", cta_url="{{ traits.next_url }}"
        ),
    )

    [delivery] = _fire_now(rule, end_user)

    sent = delivery.payload["cta"]
    assert (sent["url"] if sent else None) == cta_url


def _shown(end_user: Any, delivery: Delivery, name: str) -> None:
    event = EventFactory(
        end_user=end_user, name=name, properties={"message": str(delivery.uid), "rule": "congrats"}
    )
    signals.events_recorded.send(
        sender=None,
        workspace_id=end_user.workspace_id,
        end_user_ids=[end_user.pk],
        event_ids=[event.pk],
    )


def _connected(end_user: Any) -> None:
    signals.end_user_connected.send(
        sender=None, workspace_id=end_user.workspace_id, end_user_id=end_user.pk
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_close_thread_connections")
async def test_a_user_who_was_away_gets_the_message_on_the_next_visit_until_it_is_shown() -> None:
    rule, end_user = await sync_to_async(_in_app_rule_and_user)()
    [delivery] = await sync_to_async(_fire_now)(rule, end_user)  # nobody is connected
    layer = get_channel_layer()
    tab = await layer.new_channel()
    await layer.group_add(end_user_group(end_user.pk), tab)

    await sync_to_async(_connected)(end_user)
    pushed = await asyncio.wait_for(layer.receive(tab), timeout=5)
    assert pushed["message"]["id"] == str(delivery.uid)

    await sync_to_async(_shown)(end_user, delivery, "$message_shown")
    await sync_to_async(_shown)(end_user, delivery, "$message_clicked")
    await sync_to_async(_connected)(end_user)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(tab), timeout=0.5)

    await sync_to_async(delivery.refresh_from_db)()
    assert delivery.shown_at is not None
    assert delivery.clicked_at is not None
    assert delivery.dismissed_at is None


def test_a_frequency_cap_skips_deliveries_beyond_the_limit(
    django_capture_on_commit_callbacks: Any,
) -> None:
    end_user = EndUserFactory()
    FrequencyCap.objects.create(
        workspace=end_user.workspace, channel=Channel.IN_APP, limit=2, period=timedelta(days=1)
    )
    rules = [RuleFactory(workspace=end_user.workspace) for _ in range(3)]

    for rule in rules:
        fire(rule, end_user, django_capture_on_commit_callbacks)

    statuses = [d.status for d in Delivery.objects.filter(end_user=end_user).order_by("id")]
    assert statuses == ["sent", "sent", "skipped"]
    skipped = Delivery.objects.get(end_user=end_user, status="skipped")
    assert skipped.reason == "frequency cap: At most 2 In-app message per 1 day, 0:00:00"


# --- e-mail -----------------------------------------------------------------------------------


def test_an_email_reaches_the_end_user_with_html_text_and_a_working_unsubscribe(
    smtp_server: Mailbox, django_capture_on_commit_callbacks: Any
) -> None:
    end_user = EndUserFactory(traits={"first_name": "Lin", "email": "lin@example.com"})
    rule = RuleFactory(
        workspace=end_user.workspace,
        send_in_app=False,
        send_email=True,
        message=MessageFactory(
            workspace=end_user.workspace,
            title="Day 10, {{ first_name }}",
            email_subject="{{ first_name }}, one step left",
            body="Import your **contacts** <now>.",
            cta_label="Import",
            cta_url="https://app.example.com/contacts",
        ),
    )

    [delivery] = fire(rule, end_user, django_capture_on_commit_callbacks)

    assert delivery.status == Delivery.Status.SENT
    [mail] = smtp_server.messages
    assert mail["Subject"] == "Lin, one step left"
    assert mail["X-Envelope-To"] == "lin@example.com"
    parts = {
        part.get_content_type(): part.get_payload(decode=True).decode()
        for part in mail.walk()
        if not part.is_multipart()
    }
    assert "Import your **contacts** <now>." in parts["text/plain"]
    assert "Import: https://app.example.com/contacts" in parts["text/plain"]
    assert "<strong>contacts</strong> &lt;now&gt;." in parts["text/html"]
    unsubscribe = mail["List-Unsubscribe"].strip().strip("<>")
    assert unsubscribe in parts["text/html"]
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    path = unsubscribe.split("://", 1)[1].split("/", 1)[1]
    client = Client()
    assert "Unsubscribe?" in client.get(f"/{path}").content.decode()
    assert "You are unsubscribed" in client.post(f"/{path}").content.decode()

    again = RuleFactory(workspace=end_user.workspace, send_in_app=False, send_email=True)
    [skipped] = fire(again, end_user, django_capture_on_commit_callbacks)
    assert skipped.status == Delivery.Status.SKIPPED
    assert skipped.reason == "the end user unsubscribed from e-mail"
    assert len(smtp_server.messages) == 1


def test_a_forged_unsubscribe_link_is_refused() -> None:
    response = Client().post("/api/v1/engagement/unsubscribe/not-a-token")

    assert response.status_code == 400
    assert "This link is not valid" in response.content.decode()


def test_an_email_to_the_sales_team_has_no_unsubscribe_link(
    smtp_server: Mailbox, django_capture_on_commit_callbacks: Any
) -> None:
    end_user = EndUserFactory(external_id="u-42", traits={"email": "user@example.com"})
    rule = RuleFactory(
        workspace=end_user.workspace,
        trigger=Trigger.EVENT,
        send_in_app=False,
        send_email=True,
        email_to="sales@acme.test, founders@acme.test",
        message=MessageFactory(
            workspace=end_user.workspace, title="New PQL: {{ user_id }}", body="Call them."
        ),
    )

    fire(rule, end_user, django_capture_on_commit_callbacks)

    [mail] = smtp_server.messages
    assert mail["X-Envelope-To"] == "sales@acme.test, founders@acme.test"
    assert mail["Subject"] == "New PQL: u-42"
    assert mail["List-Unsubscribe"] is None


def test_an_end_user_without_an_email_trait_is_skipped_with_the_reason(
    django_capture_on_commit_callbacks: Any,
) -> None:
    end_user = EndUserFactory(traits={})
    rule = RuleFactory(workspace=end_user.workspace, send_in_app=False, send_email=True)

    [delivery] = fire(rule, end_user, django_capture_on_commit_callbacks)

    assert delivery.status == Delivery.Status.SKIPPED
    assert delivery.reason == "no e-mail address: the end user has no email trait"


# --- webhooks ---------------------------------------------------------------------------------


def _webhook_rule(receiver: WebhookReceiver, **endpoint: Any) -> tuple[Any, Any]:
    end_user = EndUserFactory(external_id="user-7", traits={"plan": "trial"})
    allow_loopback_webhooks(end_user.workspace)
    hook = WebhookEndpointFactory(workspace=end_user.workspace, url=receiver.url, **endpoint)
    receiver.secret = hook.secret
    rule = RuleFactory(
        workspace=end_user.workspace,
        key="pql-to-crm",
        trigger=Trigger.PQL_REACHED,
        event_name="",
        journey=None,
        send_in_app=False,
        webhook=hook,
        message=MessageFactory(workspace=end_user.workspace, title="New PQL", body="Say hi."),
    )
    return rule, end_user


def test_a_webhook_reaches_a_receiver_that_verifies_the_signature(
    webhook_receiver: WebhookReceiver, django_capture_on_commit_callbacks: Any
) -> None:
    rule, end_user = _webhook_rule(webhook_receiver)

    [delivery] = fire(rule, end_user, django_capture_on_commit_callbacks)

    assert webhook_receiver.bad_signatures == 0
    [request] = webhook_receiver.received
    assert request.headers["Milepost-Delivery"] == str(delivery.uid)
    body = request.json()
    assert body["id"] == str(delivery.uid)
    assert body["type"] == "rule.fired"
    assert body["rule"] == {"key": "pql-to-crm", "name": rule.name, "trigger": "pql_reached"}
    assert body["end_user"]["id"] == "user-7"
    assert body["end_user"]["traits"] == {"plan": "trial"}
    assert body["message"]["title"] == "New PQL"
    assert delivery.status == Delivery.Status.SENT
    assert delivery.response_code == 200


def test_a_receiver_with_the_wrong_secret_refuses_the_webhook_and_it_is_retried(
    webhook_receiver: WebhookReceiver, django_capture_on_commit_callbacks: Any
) -> None:
    rule, end_user = _webhook_rule(webhook_receiver)
    webhook_receiver.secret = "whsec_someone_else"

    [delivery] = fire(rule, end_user, django_capture_on_commit_callbacks)

    assert webhook_receiver.bad_signatures == 1
    assert delivery.status == Delivery.Status.RETRYING
    assert delivery.response_code == 401


def test_a_slack_webhook_gets_a_slack_compatible_payload(
    webhook_receiver: WebhookReceiver, django_capture_on_commit_callbacks: Any
) -> None:
    rule, end_user = _webhook_rule(webhook_receiver, payload_format=WebhookEndpoint.Format.SLACK)

    fire(rule, end_user, django_capture_on_commit_callbacks)

    assert webhook_receiver.received[0].json() == {"text": "*New PQL*\nSay hi.\nEnd user: user-7"}


def test_a_failing_webhook_retries_with_exponential_backoff_until_it_succeeds(
    webhook_receiver: WebhookReceiver, django_capture_on_commit_callbacks: Any
) -> None:
    rule, end_user = _webhook_rule(webhook_receiver)
    webhook_receiver.statuses = [503, 500]

    [delivery] = fire(rule, end_user, django_capture_on_commit_callbacks)
    assert delivery.status == Delivery.Status.RETRYING
    first_retry = delivery.next_attempt_at
    assert first_retry is not None
    assert first_retry - delivery.created_at == pytest.approx(
        timedelta(seconds=30), abs=timedelta(seconds=2)
    )

    with django_capture_on_commit_callbacks(execute=True):
        services.rules_sweep(now=first_retry - timedelta(seconds=1))
    delivery.refresh_from_db()
    assert delivery.attempts == 1

    # Thirty seconds pass: the retry is due, and the next sweep enqueues it.
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        services.rules_sweep()
    delivery.refresh_from_db()
    assert delivery.attempts == 2
    assert delivery.status == Delivery.Status.RETRYING
    # The retry ran at real time now (the task uses the wall clock); the gap doubles.
    second_gap = delivery.next_attempt_at - delivery.log.get(number=2).at
    assert second_gap == timedelta(minutes=1)

    services.delivery_send(delivery_id=delivery.pk, now=delivery.next_attempt_at)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT
    assert [(a.succeeded, a.response_code) for a in delivery.log.all()] == [
        (False, 503), (False, 500), (True, 200),
    ]  # fmt: skip
    assert len(webhook_receiver.received) == 3
    assert {r.headers["Milepost-Delivery"] for r in webhook_receiver.received} == {
        str(delivery.uid)
    }


def test_a_webhook_that_keeps_failing_gives_up_after_24_hours_and_can_be_resent(
    webhook_receiver: WebhookReceiver, django_capture_on_commit_callbacks: Any
) -> None:
    rule, end_user = _webhook_rule(webhook_receiver)
    webhook_receiver.statuses = [500] * 40

    [delivery] = fire(rule, end_user, django_capture_on_commit_callbacks)
    while delivery.status == Delivery.Status.RETRYING:
        services.delivery_send(delivery_id=delivery.pk, now=delivery.next_attempt_at)
        delivery.refresh_from_db()

    assert delivery.status == Delivery.Status.FAILED
    last = delivery.log.order_by("-number").first()
    assert last is not None
    assert last.at - delivery.created_at == pytest.approx(
        timedelta(hours=24), abs=timedelta(seconds=2)
    )
    gaps = [
        b.at - a.at for a, b in zip(delivery.log.all(), list(delivery.log.all())[1:], strict=False)
    ]
    assert gaps[:4] == [
        timedelta(seconds=30),
        timedelta(minutes=1),
        timedelta(minutes=2),
        timedelta(minutes=4),
    ]

    webhook_receiver.statuses = []
    with django_capture_on_commit_callbacks(execute=True):
        services.delivery_resend(delivery=delivery)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT


def test_a_webhook_to_a_private_address_is_refused_at_send_time_when_no_longer_allowed(
    webhook_receiver: WebhookReceiver, django_capture_on_commit_callbacks: Any
) -> None:
    rule, end_user = _webhook_rule(webhook_receiver)
    rule.workspace.engagement_settings.delete()

    [delivery] = fire(rule, end_user, django_capture_on_commit_callbacks)

    assert webhook_receiver.received == []
    assert delivery.status == Delivery.Status.RETRYING
    assert "which this workspace forbids" in delivery.reason
    assert json.dumps(delivery.payload)  # the log keeps what would have been sent
    assert timezone.now() < delivery.retry_until
