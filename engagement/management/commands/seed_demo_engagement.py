"""`manage.py seed_demo_engagement`: the Acme demo's engagement rules, run after `seed_demo`.

The seeds' example sequence: welcome when the trial journey starts → congratulate the first
campaign and point to the next milestone → remind on day 10 whoever has not imported contacts
→ tell sales (e-mail to sales@acme.test and a signed webhook to the demo's sales inbox at
DEMO_HOST_URL/sales/webhook, milepost/demo_sales.py) the moment a user becomes a PQL.

Idempotent: a re-run creates only what is missing and never overwrites a message, rule or
endpoint an admin edited (rows are found by key, the endpoint by name).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import models, transaction

from engagement.models import EngagementSettings, Message, Rule, Trigger, WebhookEndpoint
from onboarding.models import Journey, Milestone, Workspace

DEMO_SLUG = "acme"
JOURNEY_KEY = "trial-onboarding"
SALES_EMAIL = "sales@acme.test"
SALES_ENDPOINT_NAME = "Acme sales inbox (demo)"
SALES_WEBHOOK_PATH = "/sales/webhook"


def _messages() -> list[dict[str, Any]]:
    return [
        {
            "key": "welcome",
            "name": "Welcome",
            # A banner, not a modal: the welcome tour's first step is a centred modal already.
            "style": Message.Style.BANNER,
            "title": 'Welcome, {{ first_name|default:"there" }}',
            "body": "First: {{ next_milestone }}",
        },
        {
            "key": "congrats",
            "name": "Congratulations on a first campaign",
            "style": Message.Style.TOAST,
            "title": 'Your first campaign is ready, {{ first_name|default:"there" }}!',
            "body": "Next: {{ next_milestone }}",
        },
        {
            "key": "import-reminder",
            "name": "Day 10: import your contacts",
            "style": Message.Style.BANNER,
            "title": "Your campaigns need an audience",
            "body": 'Hi {{ first_name|default:"there" }}, you are {{ progress_percent }}% through '
            "{{ journey_name }}. Still to do: **{{ milestone_name }}**.",
            "cta_label": "Import contacts",
            "cta_url": settings.DEMO_HOST_URL.rstrip("/") + "/contacts",
            "email_subject": "Still to do: {{ milestone_name }}",
        },
        {
            "key": "pql-alert",
            "name": "New PQL for sales",
            "style": Message.Style.MODAL,
            "title": "New PQL: {{ user_id }}",
            "body": '{{ name|default:"A trial user" }} ({{ plan|default:"trial" }}) reached every '
            "PQL milestone of {{ journey_name }}.",
            "email_subject": "New product-qualified lead: {{ user_id }}",
        },
    ]


def _rules(journey: Journey, milestones: dict[str, Milestone]) -> list[dict[str, Any]]:
    return [
        {
            "key": "welcome",
            "name": "Welcome new trial users",
            "trigger": Trigger.JOURNEY_STARTED,
            "journey": journey,
            "message": "welcome",
            "send_in_app": True,
        },
        {
            "key": "congrats-first-campaign",
            "name": "Congratulate the first campaign",
            "trigger": Trigger.MILESTONE_COMPLETED,
            "milestone": milestones["first-campaign"],
            "message": "congrats",
            "send_in_app": True,
        },
        {
            "key": "day-10-reminder",
            "name": "Day 10: contacts not imported yet",
            "trigger": Trigger.MILESTONE_NOT_REACHED,
            "milestone": milestones["imported-contacts"],
            "delay": timedelta(days=10),
            "counted_from": Rule.CountedFrom.JOURNEY_START,
            "message": "import-reminder",
            "send_in_app": False,
            "send_email": True,
        },
        {
            "key": "pql-to-sales",
            "name": "Tell sales about a new PQL",
            "trigger": Trigger.PQL_REACHED,
            "journey": journey,
            "message": "pql-alert",
            "send_in_app": False,
            "send_email": True,
            "email_to": SALES_EMAIL,
            "webhook": "sales",
        },
    ]


def _save(row: models.Model) -> None:
    try:
        row.full_clean()
    except ValidationError as error:
        raise CommandError(f"{type(row).__name__} {row}: {error.message_dict}") from None
    row.save()


class Command(BaseCommand):
    help = (
        "Create (if missing) the Acme demo's engagement: welcome, congratulate, day-10 reminder "
        "and PQL → sales e-mail + webhook. Run `manage.py seed_demo` first."
    )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        workspace = Workspace.objects.filter(slug=DEMO_SLUG).first()
        if workspace is None:
            raise CommandError(f"No workspace {DEMO_SLUG!r}: run `manage.py seed_demo` first.")
        journey = Journey.objects.filter(workspace=workspace, key=JOURNEY_KEY).first()
        if journey is None:
            raise CommandError(f"No journey {JOURNEY_KEY!r} in {DEMO_SLUG}: run seed_demo first.")
        milestones = {m.key: m for m in Milestone.objects.filter(journey=journey)}
        missing = {"first-campaign", "imported-contacts"} - set(milestones)
        if missing:
            raise CommandError(
                f"Journey {JOURNEY_KEY!r} lacks milestone(s) {', '.join(sorted(missing))}."
            )
        created: list[str] = []

        # The demo's sales inbox lives on the demo host (localhost), a private address.
        EngagementSettings.objects.update_or_create(
            workspace=workspace, defaults={"allow_private_webhook_addresses": True}
        )
        url = settings.DEMO_HOST_URL.rstrip("/") + SALES_WEBHOOK_PATH
        endpoint = WebhookEndpoint.objects.filter(workspace=workspace, name=SALES_ENDPOINT_NAME)
        sales = endpoint.first()
        if sales is None:
            sales = WebhookEndpoint(workspace=workspace, name=SALES_ENDPOINT_NAME, url=url)
            _save(sales)
            created.append(f"webhook endpoint {SALES_ENDPOINT_NAME!r} → {url}")
        elif sales.url != url:
            self.stdout.write(
                f"  note: the endpoint {SALES_ENDPOINT_NAME!r} posts to {sales.url}, not {url} "
                "(left as an admin set it)"
            )

        messages: dict[str, Message] = {}
        for spec in _messages():
            message = Message.objects.filter(workspace=workspace, key=spec["key"]).first()
            if message is None:
                message = Message(workspace=workspace, **spec)
                _save(message)
                created.append(f"message {spec['key']}")
            messages[spec["key"]] = message

        for spec in _rules(journey, milestones):
            if Rule.objects.filter(workspace=workspace, key=spec["key"]).exists():
                continue
            values = {
                **spec,
                "message": messages[spec["message"]],
                "webhook": sales if spec.get("webhook") else None,
            }
            _save(Rule(workspace=workspace, **values))
            created.append(f"rule {spec['key']}")

        for line in created:
            self.stdout.write(f"  created {line}")
        self.stdout.write(f"Sales inbox (webhooks): {settings.DEMO_HOST_URL.rstrip('/')}/sales")
