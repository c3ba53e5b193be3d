"""Engagement's admin forms as a person fills them in: the workspace chosen for them, delays as
a number and a unit, event filters as rows, and each message previewed as it will be seen."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from engagement.models import FrequencyCap, Rule
from tests.engagement.factories import FrequencyCapFactory, MessageFactory
from tests.factories import WorkspaceMemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member() -> Any:
    membership = WorkspaceMemberFactory()
    membership.user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="engagement")
    )
    return membership


def client_of(member: Any) -> Client:
    client = Client()
    client.force_login(member.user)
    return client


def rule_form(member: Any, **fields: Any) -> dict[str, Any]:
    message = MessageFactory(workspace=member.workspace)
    return {
        "workspace": member.workspace.pk,
        "name": "Nudge",
        "key": "nudge",
        "message": message.pk,
        "counted_from": "journey_start",
        "once_per_user": "on",
        "send_in_app": "on",
        "delay_0": "",
        "delay_1": "days",
        **fields,
    }


@pytest.mark.parametrize("page", ["rule", "message", "frequencycap", "webhookendpoint"])
def test_an_add_form_preselects_the_only_workspace_of_its_member(member: Any, page: str) -> None:
    form = client_of(member).get(f"/admin/engagement/{page}/add/").content.decode()

    assert f'<option value="{member.workspace.pk}" selected>' in form


def test_a_delay_is_a_number_and_a_unit(member: Any) -> None:
    client = client_of(member)

    saved = client.post(
        "/admin/engagement/rule/add/",
        rule_form(member, trigger="inactive", delay_0="10", delay_1="days"),
    )

    assert saved.status_code == 302, saved.content.decode()[:3000]
    rule = Rule.objects.get(key="nudge")
    assert rule.delay == timedelta(days=10)
    page = client.get(f"/admin/engagement/rule/{rule.pk}/change/").content.decode()
    assert 'name="delay_0" value="10"' in page
    assert '<option value="days" selected>' in page
    assert "00:00:00" not in page


def test_a_delay_that_is_not_a_whole_number_is_named(member: Any) -> None:
    answer = client_of(member).post(
        "/admin/engagement/rule/add/",
        rule_form(member, trigger="inactive", delay_0="ten", delay_1="days"),
    )

    assert answer.status_code == 200
    assert "Enter a whole number." in answer.content.decode()
    assert not Rule.objects.exists()


def test_event_filters_are_rows_of_property_and_value(member: Any) -> None:
    client = client_of(member)
    data = rule_form(member, trigger="event", event_name="invoice_sent")

    saved = client.post(
        "/admin/engagement/rule/add/",
        {
            **data,
            "event_properties_property": ["plan", "seats", "paid", "code", ""],
            "event_properties_value": ["pro", "3", "true", '"42"', ""],
        },
    )

    assert saved.status_code == 302, re.findall(r"errorlist.*?</ul>", saved.content.decode())
    rule = Rule.objects.get(key="nudge")
    assert rule.event_properties == {"plan": "pro", "seats": 3, "paid": True, "code": "42"}
    assert rule.event_matches(
        "invoice_sent", {"plan": "pro", "seats": 3, "paid": True, "code": "42"}
    )
    assert not rule.event_matches(
        "invoice_sent", {"plan": "pro", "seats": 3, "paid": "yes", "code": "42"}
    )
    page = client.get(f"/admin/engagement/rule/{rule.pk}/change/").content.decode()
    assert 'name="event_properties_property" value="plan"' in page
    assert 'name="event_properties_value" value="&quot;42&quot;"' in page


def test_an_event_filter_value_without_a_property_is_refused(member: Any) -> None:
    answer = client_of(member).post(
        "/admin/engagement/rule/add/",
        {
            **rule_form(member, trigger="event", event_name="invoice_sent"),
            "event_properties_property": ["plan", ""],
            "event_properties_value": ["pro", "orphan"],
        },
    )

    assert answer.status_code == 200
    assert "Row 2: name the property the value is for." in answer.content.decode()
    assert not Rule.objects.exists()


def test_a_frequency_cap_reads_per_day(member: Any) -> None:
    FrequencyCapFactory(workspace=member.workspace, limit=2, period=timedelta(days=1))
    client = client_of(member)

    listed = client.get("/admin/engagement/frequencycap/").content.decode()
    changed = client.post(
        "/admin/engagement/frequencycap/add/",
        {
            "workspace": member.workspace.pk,
            "channel": "email",
            "limit": 1,
            "period_0": "12",
            "period_1": "hours",
        },
    )

    assert ">1 day<" in listed
    assert changed.status_code == 302
    assert FrequencyCap.objects.get(channel="email").period == timedelta(hours=12)


def test_a_message_is_previewed_as_a_person_will_see_it(member: Any) -> None:
    message = MessageFactory(
        workspace=member.workspace,
        style="banner",
        title='Hi {{ first_name|default:"there" }}',
        body="Next: **{{ next_milestone }}**",
        cta_label="Import now",
        cta_url="/contacts/import",
    )
    member.workspace.theme = {"primary_color": "#ff5500"}
    member.workspace.save(update_fields=["theme"])

    page = client_of(member).get(f"/admin/engagement/message/{message.pk}/change/")

    text = page.content.decode()
    frames = [html.unescape(part.split('"')[0]) for part in text.split('srcdoc="')[1:]]
    in_app, email = frames
    assert "<h2>Hi Alex</h2>" in in_app
    assert "<strong>Imported contacts</strong>" in in_app
    assert 'class="page banner"' in in_app
    assert "#ff5500" in in_app
    assert ">Import now</a>" in in_app
    assert "Hi Alex</h1>" in email
    assert "subject: Hi Alex" in text
