"""The demo's engagement: `seed_demo_engagement`, the sales inbox (milepost/demo_sales.py) and
the seeds' sequence end to end (welcome → congratulate → next step; PQL → sales e-mail and a
signed webhook that the sales inbox verifies and lists)."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone

from engagement import services, webhooks
from engagement.models import Delivery, EngagementSettings, Message, Rule, WebhookEndpoint
from milepost import demo_sales
from onboarding import recording
from onboarding.models import Workspace
from tests.engagement.conftest import SalesInbox

DEMO_RULES = {"welcome", "congrats-first-campaign", "day-10-reminder", "pql-to-sales"}


def seed() -> Workspace:
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    call_command("seed_demo_engagement", stdout=open("/dev/null", "w"))  # noqa: SIM115
    return Workspace.objects.get(slug="acme")


def counts() -> tuple[int, int, int]:
    return Rule.objects.count(), Message.objects.count(), WebhookEndpoint.objects.count()


@pytest.mark.django_db
def test_seeding_creates_the_demo_rules_once_and_keeps_admin_edits(settings: Any) -> None:
    workspace = seed()
    rules = {rule.key: rule for rule in Rule.objects.filter(workspace=workspace)}
    assert set(rules) == DEMO_RULES
    for rule in rules.values():
        rule.full_clean()
    pql = rules["pql-to-sales"]
    assert (pql.email_to, pql.send_email, pql.send_in_app) == ("sales@acme.test", True, False)
    assert pql.webhook is not None
    assert pql.webhook.url == settings.DEMO_HOST_URL.rstrip("/") + "/sales/webhook"
    assert EngagementSettings.private_addresses_allowed(workspace.pk)
    assert rules["day-10-reminder"].delay == timedelta(days=10)
    assert rules["welcome"].message.title == 'Welcome, {{ first_name|default:"there" }}'
    before = counts()
    Message.objects.filter(key="welcome").update(title="Hello!")

    call_command("seed_demo_engagement", stdout=open("/dev/null", "w"))  # noqa: SIM115

    assert counts() == before
    assert Message.objects.get(key="welcome").title == "Hello!"


@pytest.mark.django_db
def test_it_asks_for_seed_demo_when_the_demo_workspace_is_missing() -> None:
    with pytest.raises(CommandError, match=re.escape("run `manage.py seed_demo` first")):
        call_command("seed_demo_engagement")
    assert counts() == (0, 0, 0)


# --- the sales inbox ---------------------------------------------------------------------------


def post_to_inbox(body: bytes, headers: dict[str, str]) -> httpx.Response:
    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=demo_sales.application)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
            return await client.post("/sales/webhook", content=body, headers=headers)

    return async_to_sync(post)()


def inbox_page() -> str:
    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=demo_sales.application)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
            return await client.get("/sales")

    response = async_to_sync(get)()
    assert response.status_code == 200
    return response.text


def signed(secret: str, body: bytes, *, at: float | None = None) -> dict[str, str]:
    stamp = int(time.time() if at is None else at)
    return {
        "Milepost-Signature": webhooks.sign(secret=secret, timestamp=stamp, body=body),
        "Milepost-Delivery": str(uuid.uuid4()),
        "Content-Type": "application/json",
    }


@pytest.fixture
def sales_secret() -> str:
    demo_sales.inbox.clear()
    seed()
    return WebhookEndpoint.objects.get(workspace__slug="acme").secret


PAYLOAD = {
    "type": "rule.fired",
    "rule": {"key": "pql-to-sales", "name": "Tell sales about a new PQL"},
    "end_user": {"id": "demo-ada"},
    "message": {"title": "New PQL: demo-ada", "text": "Ada <b>reached</b> every PQL milestone."},
}


@pytest.mark.django_db(transaction=True)  # the inbox reads the secret on its own thread
def test_the_sales_inbox_refuses_a_bad_signature_and_lists_a_good_one(sales_secret: str) -> None:
    body = json.dumps(PAYLOAD).encode()

    forged = post_to_inbox(body, signed("whsec_not-the-secret", body))
    stale = post_to_inbox(body, signed(sales_secret, body, at=time.time() - 3600))
    unsigned = post_to_inbox(body, {"Content-Type": "application/json"})
    assert [r.status_code for r in (forged, stale, unsigned)] == [401, 401, 401]
    assert "does not match" in forged.json()["error"]
    assert "300 s" in stale.json()["error"]
    assert "New PQL: demo-ada" not in inbox_page()

    good = post_to_inbox(body, signed(sales_secret, body))

    assert good.status_code == 200
    page = inbox_page()
    assert "New PQL: demo-ada" in page
    assert "<code>demo-ada</code>" in page
    # The payload is data from Milepost's users: shown as text, never as markup.
    assert "Ada &lt;b&gt;reached&lt;/b&gt;" in page


@pytest.mark.django_db(transaction=True)  # the inbox reads the secret on its own thread
def test_the_sales_inbox_lists_newest_first_once_per_delivery(sales_secret: str) -> None:
    first = json.dumps({**PAYLOAD, "message": {"title": "First PQL"}}).encode()
    second = json.dumps({**PAYLOAD, "message": {"title": "Second PQL"}}).encode()
    headers = signed(sales_secret, first)
    post_to_inbox(first, headers)
    retried = post_to_inbox(first, headers)
    post_to_inbox(second, signed(sales_secret, second))

    assert retried.json() == {"received": True, "duplicate": True}
    page = inbox_page()
    assert page.count("<h2>First PQL</h2>") == 1
    assert page.index("<h2>Second PQL</h2>") < page.index("<h2>First PQL</h2>")


@pytest.mark.django_db(transaction=True)  # the inbox reads the secret on its own thread
def test_the_sales_inbox_refuses_a_body_that_is_not_a_json_object(sales_secret: str) -> None:
    body = b"[1, 2, 3]"
    response = post_to_inbox(body, signed(sales_secret, body))
    assert response.status_code == 400
    assert response.json() == {"error": "The body must be a JSON object."}
    assert 'id="no-webhooks"' in inbox_page()


# --- the demo, end to end --------------------------------------------------------------------


def track(workspace: Workspace, user: str, name: str) -> None:
    event = {
        "id": str(uuid.uuid4()),
        "user_id": user,
        "name": name,
        "timestamp": timezone.now().isoformat(),
        "properties": {},
    }
    ack = recording.events_record(workspace=workspace, source="server", events=[event])
    assert ack.rejected == [], ack.rejected


def payloads(rule_key: str) -> list[dict[str, Any]]:
    return [
        d.payload for d in Delivery.objects.filter(rule__key=rule_key).order_by("created_at", "id")
    ]


# Committed for real: the sales inbox reads the endpoint's secret on its own connection.
@pytest.mark.django_db(transaction=True)
def test_the_demo_welcomes_congratulates_and_tells_sales_about_a_pql(
    sales_inbox: SalesInbox,
) -> None:
    workspace = seed()
    WebhookEndpoint.objects.filter(workspace=workspace).update(url=sales_inbox.webhook_url())

    signed_up_at = timezone.now().isoformat()
    recording.end_user_identify(
        workspace=workspace,
        external_id="demo-ada",
        traits={"name": "Ada Lovelace", "plan": "trial", "signed_up_at": signed_up_at},
    )
    [welcome] = payloads("welcome")
    assert (welcome["style"], welcome["title"]) == ("banner", "Welcome, Ada")
    assert welcome["body_text"] == "First: Installed the JavaScript snippet"

    track(workspace, "demo-ada", "campaign_created")
    [congrats] = payloads("congrats-first-campaign")
    assert congrats["style"] == "toast"
    assert congrats["body_text"] == "Next: Imported contacts"
    assert mail.outbox == []

    track(workspace, "demo-ada", "contacts_imported")

    sent = dict(Delivery.objects.filter(rule__key="pql-to-sales").values_list("channel", "status"))
    assert sent == {"email": "sent", "webhook": "sent"}
    [email] = mail.outbox
    assert email.to == ["sales@acme.test"]
    assert email.subject == "New product-qualified lead: demo-ada"
    assert "Ada Lovelace (trial) reached every PQL milestone of Trial onboarding." in email.body
    page = httpx.get(f"{sales_inbox.url}/sales", timeout=10).text
    assert "New PQL: demo-ada" in page
    assert "Tell sales about a new PQL" in page


@pytest.mark.django_db
def test_the_demo_reminds_on_day_10_by_email_who_has_not_imported_contacts(
    django_capture_on_commit_callbacks: Any,
) -> None:
    workspace = seed()
    with django_capture_on_commit_callbacks(execute=True):
        for user in ("stuck", "done"):
            recording.end_user_identify(
                workspace=workspace,
                external_id=user,
                traits={"first_name": user.title(), "email": f"{user}@example.com"},
            )
        track(workspace, "done", "contacts_imported")
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        services.rules_sweep(now=timezone.now() + timedelta(days=9))
    assert mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        services.rules_sweep(now=timezone.now() + timedelta(days=10, minutes=5))

    [reminder] = mail.outbox
    assert reminder.to == ["stuck@example.com"]
    assert reminder.subject == "Still to do: Imported contacts"
    assert "Hi Stuck, you are 0% through Trial onboarding." in reminder.body
