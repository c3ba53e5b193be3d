from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from engagement import receivers, rule_index
from engagement.models import Delivery, Message, Trigger
from tests.engagement.conftest import WebhookReceiver, allow_loopback_webhooks
from tests.engagement.factories import MessageFactory, RuleFactory, WebhookEndpointFactory
from tests.factories import (
    EndUserFactory,
    JourneyFactory,
    UserFactory,
    WorkspaceFactory,
    WorkspaceMemberFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def member() -> Any:
    """A staff user who belongs to one workspace and may manage engagement there."""
    membership = WorkspaceMemberFactory()
    membership.user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="engagement")
    )
    return membership


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_staff_see_only_their_workspaces_rules_and_deliveries(member: Any) -> None:
    mine = RuleFactory(workspace=member.workspace, name="Mine")
    theirs = RuleFactory(name="Someone else's")
    client = logged_in(member.user)

    page = client.get("/admin/engagement/rule/").content.decode()

    assert "Mine" in page
    assert "Someone else" not in page
    assert client.get(f"/admin/engagement/rule/{theirs.pk}/change/").status_code == 302
    assert client.get(f"/admin/engagement/rule/{mine.pk}/change/").status_code == 200


def test_the_rule_form_offers_only_the_members_workspace_choices(member: Any) -> None:
    MessageFactory(workspace=member.workspace, name="Our welcome")
    MessageFactory(name="Foreign message")

    page = logged_in(member.user).get("/admin/engagement/rule/add/").content.decode()

    assert "Our welcome" in page
    assert "Foreign message" not in page


def test_saving_a_message_with_an_unknown_field_in_admin_names_the_field(member: Any) -> None:
    response = logged_in(member.user).post(
        "/admin/engagement/message/add/",
        {
            "workspace": member.workspace.pk,
            "key": "hello",
            "name": "Hello",
            "style": "modal",
            "title": "Hi {{ nickname }}",
            "body": "Welcome.",
        },
    )

    assert response.status_code == 200
    assert "Unknown field {{ nickname }}" in response.content.decode()
    assert not Message.objects.filter(key="hello").exists()


def test_a_message_may_wait_for_an_element_and_a_bad_selector_is_refused_naming_it(
    member: Any,
) -> None:
    client = logged_in(member.user)
    form = {
        "workspace": member.workspace.pk,
        "key": "import-tip",
        "name": "Import tip",
        "style": "toast",
        "title": "Import your contacts",
        "body": "From a CSV file.",
        "when_present": "#contacts .empty[",
        "wait_timeout_ms": 8000,
    }
    page = client.get("/admin/engagement/message/add/").content.decode()
    assert "Show when this element is present" in page
    assert "In the app: wait for an element" in page

    refused = client.post("/admin/engagement/message/add/", form)

    assert refused.status_code == 200
    errors = refused.context["adminform"].form.errors
    assert list(errors) == ["when_present"]
    assert "is not a CSS selector browsers accept" in errors["when_present"][0]
    assert not Message.objects.filter(key="import-tip").exists()

    saved = client.post(
        "/admin/engagement/message/add/", {**form, "when_present": "#contacts .empty"}
    )

    assert saved.status_code == 302
    message = Message.objects.get(workspace=member.workspace, key="import-tip")
    assert (message.when_present, message.wait_timeout_ms) == ("#contacts .empty", 8000)


def test_send_test_delivers_the_rule_to_the_chosen_end_user(
    member: Any, webhook_receiver: WebhookReceiver, django_capture_on_commit_callbacks: Any
) -> None:
    allow_loopback_webhooks(member.workspace)
    hook = WebhookEndpointFactory(workspace=member.workspace, url=webhook_receiver.url)
    webhook_receiver.secret = hook.secret
    rule = RuleFactory(workspace=member.workspace, webhook=hook)
    EndUserFactory(workspace=member.workspace, external_id="qa-user")
    client = logged_in(member.user)
    action = {"action": "send_test", "_selected_action": [rule.pk]}

    form = client.post("/admin/engagement/rule/", action)
    assert "End user id" in form.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post("/admin/engagement/rule/", {**action, "end_user": "qa-user"})

    assert done.status_code == 302
    assert webhook_receiver.received[0].json()["test"] is True
    assert set(Delivery.objects.filter(rule=rule).values_list("is_test", "status")) == {
        (True, "sent")
    }


def test_send_test_refuses_an_unknown_end_user(member: Any) -> None:
    rule = RuleFactory(workspace=member.workspace)

    response = logged_in(member.user).post(
        "/admin/engagement/rule/",
        {"action": "send_test", "_selected_action": [rule.pk], "end_user": "nobody"},
    )

    assert f"{member.workspace} has no end user with this id." in response.content.decode()
    assert not Delivery.objects.exists()


def test_the_delivery_log_shows_attempts_and_resends_a_failed_webhook(
    member: Any, webhook_receiver: WebhookReceiver, django_capture_on_commit_callbacks: Any
) -> None:
    from engagement import services

    allow_loopback_webhooks(member.workspace)
    hook = WebhookEndpointFactory(workspace=member.workspace, url=webhook_receiver.url)
    webhook_receiver.secret = hook.secret
    webhook_receiver.statuses = [500]
    rule = RuleFactory(workspace=member.workspace, webhook=hook, send_in_app=False)
    end_user = EndUserFactory(workspace=member.workspace)
    with django_capture_on_commit_callbacks(execute=True):
        [delivery] = services.rule_fire(rule=rule, end_user_id=end_user.pk, occurrence="once")
    client = logged_in(member.user)

    detail = client.get(f"/admin/engagement/delivery/{delivery.pk}/change/").content.decode()
    assert "HTTP 500" in detail

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/engagement/delivery/",
            {"action": "resend", "_selected_action": [delivery.pk]},
        )

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT
    assert list(delivery.log.values_list("response_code", flat=True)) == [500, 200]


def test_only_a_superuser_may_allow_private_webhook_addresses(member: Any) -> None:
    superuser = UserFactory(is_superuser=True)
    workspace = WorkspaceFactory()
    WorkspaceMemberFactory(workspace=workspace, user=member.user)

    staff_page = logged_in(member.user).get("/admin/engagement/engagementsettings/add/")
    super_page = logged_in(superuser).get("/admin/engagement/engagementsettings/add/")

    field = 'name="allow_private_webhook_addresses"'
    assert field not in staff_page.content.decode()
    assert field in super_page.content.decode()


def test_resuming_and_pausing_rules_in_admin_takes_effect_at_once(
    member: Any, django_capture_on_commit_callbacks: Any
) -> None:
    journey = JourneyFactory(workspace=member.workspace)
    rule = RuleFactory(
        workspace=member.workspace,
        trigger=Trigger.JOURNEY_STARTED,
        event_name="",
        journey=journey,
        is_paused=True,
    )
    resumed_for, paused_for = EndUserFactory.create_batch(2, workspace=member.workspace)
    rule_index.for_workspace(member.workspace.pk)  # the write path has read the rules already
    client = logged_in(member.user)

    def journey_started(end_user: Any) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            receivers.on_journey_started(
                workspace_id=member.workspace.pk, end_user_id=end_user.pk, journey_id=journey.pk
            )

    client.post("/admin/engagement/rule/", {"action": "resume", "_selected_action": [rule.pk]})
    journey_started(resumed_for)
    client.post("/admin/engagement/rule/", {"action": "pause", "_selected_action": [rule.pk]})
    journey_started(paused_for)

    assert [d.end_user for d in Delivery.objects.filter(rule=rule)] == [resumed_for]
