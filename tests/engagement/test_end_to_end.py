"""The seeds' sequence through onboarding's real write path: welcome → congratulate and point
to the next milestone → PQL tells sales by webhook and e-mail."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.utils import timezone

from engagement.models import Delivery, Trigger
from onboarding import recording, services
from tests.engagement.conftest import Mailbox, WebhookReceiver, allow_loopback_webhooks
from tests.engagement.factories import MessageFactory, RuleFactory, WebhookEndpointFactory
from tests.factories import JourneyFactory, MilestoneFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def track(workspace: Any, user: str, name: str) -> None:
    ack = recording.events_record(
        workspace=workspace,
        source="server",
        events=[
            {
                "id": str(uuid.uuid4()),
                "user_id": user,
                "name": name,
                "timestamp": timezone.now().isoformat(),
                "properties": {},
            }
        ],
    )
    assert ack.rejected == [], ack.rejected


def test_welcome_congratulate_and_pql_run_end_to_end(
    smtp_server: Mailbox,
    webhook_receiver: WebhookReceiver,
    django_capture_on_commit_callbacks: Any,
) -> None:
    workspace = WorkspaceFactory(name="Acme")
    allow_loopback_webhooks(workspace)
    journey = JourneyFactory(workspace=workspace, key="trial-onboarding", name="Trial onboarding")
    first = MilestoneFactory(
        journey=journey, key="first-campaign", name="Create your first campaign",
        event_name="campaign_created", counts_toward_pql=True, position=1,
    )  # fmt: skip
    MilestoneFactory(
        journey=journey, key="imported-contacts", name="Import your contacts",
        event_name="contacts_imported", counts_toward_pql=True, position=2,
    )  # fmt: skip
    services.content_publish(obj=journey)
    hook = WebhookEndpointFactory(workspace=workspace, url=webhook_receiver.url)
    webhook_receiver.secret = hook.secret

    def message(title: str, body: str) -> Any:
        return MessageFactory(workspace=workspace, title=title, body=body)

    welcome = RuleFactory(
        workspace=workspace, trigger=Trigger.JOURNEY_STARTED, event_name="", journey=journey,
        message=message("Welcome, {{ first_name }}", "First: {{ next_milestone }}."),
    )  # fmt: skip
    congratulate = RuleFactory(
        workspace=workspace, trigger=Trigger.MILESTONE_COMPLETED, event_name="", milestone=first,
        message=message("Nice, {{ first_name }}!", "Next: {{ next_milestone }}."),
    )  # fmt: skip
    pql = RuleFactory(
        workspace=workspace, trigger=Trigger.PQL_REACHED, event_name="", journey=journey,
        send_in_app=False, send_email=True, email_to="sales@acme.test", webhook=hook,
        message=message("New PQL: {{ user_id }}", "{{ name }} at {{ company }} is a PQL."),
    )  # fmt: skip

    with django_capture_on_commit_callbacks(execute=True):
        recording.end_user_identify(
            workspace=workspace,
            external_id="ada",
            traits={"name": "Ada Lovelace", "company": "Engines Ltd", "email": "ada@x.test"},
        )
    [hello] = Delivery.objects.filter(rule=welcome)
    assert (hello.payload["title"], hello.payload["body_text"]) == (
        "Welcome, Ada",
        "First: Create your first campaign.",
    )

    with django_capture_on_commit_callbacks(execute=True):
        track(workspace, "ada", "campaign_created")
    [well_done] = Delivery.objects.filter(rule=congratulate)
    assert well_done.payload["body_text"] == "Next: Import your contacts."
    assert not Delivery.objects.filter(rule=pql).exists()

    with django_capture_on_commit_callbacks(execute=True):
        track(workspace, "ada", "contacts_imported")

    sent = dict(Delivery.objects.filter(rule=pql).values_list("channel", "status"))
    assert sent == {"email": "sent", "webhook": "sent"}
    [mail] = smtp_server.messages
    assert mail["Subject"] == "New PQL: ada"
    assert mail["X-Envelope-To"] == "sales@acme.test"
    body = webhook_receiver.received[0].json()
    assert body["rule"]["trigger"] == "pql_reached"
    assert body["message"]["text"] == "Ada Lovelace at Engines Ltd is a PQL."
    assert body["facts"] == {"journey": "trial-onboarding"}
