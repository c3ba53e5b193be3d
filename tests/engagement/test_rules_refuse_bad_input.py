from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from engagement import personalisation
from engagement.models import Trigger
from tests.engagement.conftest import allow_loopback_webhooks
from tests.engagement.factories import MessageFactory, RuleFactory, WebhookEndpointFactory
from tests.factories import JourneyFactory, MilestoneFactory, SegmentFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_it_refuses_a_message_that_references_an_unknown_field() -> None:
    message = MessageFactory.build(
        workspace=WorkspaceFactory(), body="Hi {{ first_name }}, your {{ credit_card }} expired."
    )

    with pytest.raises(ValidationError) as caught:
        message.full_clean()

    assert "body" in caught.value.message_dict
    assert "Unknown field {{ credit_card }}" in caught.value.message_dict["body"][0]


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("when_present", "a[[", "'a[[' is not a CSS selector browsers accept"),
        ("when_present", "#list >", "is not a CSS selector browsers accept"),
        ("wait_timeout_ms", 0, "Wait between 1 and 60 000 ms."),
        ("wait_timeout_ms", 60_001, "Wait between 1 and 60 000 ms."),
    ],
)
def test_it_refuses_an_element_present_trigger_browsers_could_not_wait_for(
    field: str, value: object, said: str
) -> None:
    message = MessageFactory.build(
        workspace=WorkspaceFactory(), **{"when_present": "#list", field: value}
    )

    with pytest.raises(ValidationError) as caught:
        message.full_clean()

    assert list(caught.value.message_dict) == [field]
    assert said in caught.value.message_dict[field][0]


@pytest.mark.parametrize(
    "title", ["Hi {% if x %}", "Hi {{ first_name", "{{ first_name|upper }}", "{{ 1 + 1 }}"]
)
def test_it_refuses_template_syntax_beyond_placeholders(title: str) -> None:
    message = MessageFactory.build(workspace=WorkspaceFactory(), title=title)

    with pytest.raises(ValidationError) as caught:
        message.full_clean()

    assert "title" in caught.value.message_dict


def test_it_accepts_known_fields_traits_and_defaults() -> None:
    message = MessageFactory.build(
        workspace=WorkspaceFactory(),
        title='Hi {{ first_name|default:"there" }}',
        body="{{ next_milestone }} for {{ traits.team_size }} people at {{ company }}",
        cta_label="Go",
        cta_url="/campaigns",
    )

    message.full_clean()


def test_personalised_values_are_escaped_and_cannot_add_markup() -> None:
    context = {"first_name": "<img src=x onerror=alert(1)>", "next_milestone": "[x](javascript:1)"}

    rendered = personalisation.render_markdown_body(
        "Hi **{{ first_name }}**, next: {{ next_milestone }}", context
    )

    assert "<img" not in rendered.html
    assert "&lt;img src=x onerror=alert(1)&gt;" in rendered.html
    assert "<a " not in rendered.html
    assert rendered.text == "Hi **<img src=x onerror=alert(1)>**, next: [x](javascript:1)"


def test_a_missing_value_falls_back_to_the_default() -> None:
    text = personalisation.render_text('Hi {{ first_name|default:"there" }}!', {"first_name": ""})

    assert text == "Hi there!"


def test_it_refuses_a_webhook_url_that_is_not_http() -> None:
    endpoint = WebhookEndpointFactory.build(
        workspace=WorkspaceFactory(), url="ftp://crm.example.com/hook"
    )

    with pytest.raises(ValidationError) as caught:
        endpoint.full_clean()

    assert "is not an http(s) URL" in caught.value.message_dict["url"][0]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
    ],
)
def test_it_refuses_a_private_webhook_address_when_the_workspace_forbids_it(url: str) -> None:
    endpoint = WebhookEndpointFactory.build(workspace=WorkspaceFactory(), url=url)

    with pytest.raises(ValidationError) as caught:
        endpoint.full_clean()

    assert "which this workspace forbids" in caught.value.message_dict["url"][0]


def test_it_accepts_a_loopback_webhook_when_the_workspace_allows_private_addresses() -> None:
    workspace = WorkspaceFactory()
    allow_loopback_webhooks(workspace)
    endpoint = WebhookEndpointFactory.build(workspace=workspace, url="http://127.0.0.1:8000/h")

    endpoint.full_clean()


def test_it_refuses_a_segment_from_another_workspace() -> None:
    workspace = WorkspaceFactory()
    rule = RuleFactory.build(
        workspace=workspace,
        message=MessageFactory(workspace=workspace),
        segment=SegmentFactory(),
    )

    with pytest.raises(ValidationError) as caught:
        rule.full_clean()

    assert caught.value.message_dict["segment"] == [f"{rule.segment} belongs to another workspace."]


def test_it_names_what_a_trigger_needs_and_what_it_does_not_use() -> None:
    workspace = WorkspaceFactory()
    rule = RuleFactory.build(
        workspace=workspace,
        message=MessageFactory(workspace=workspace),
        trigger=Trigger.MILESTONE_NOT_REACHED,
        event_name="campaign_created",
    )

    with pytest.raises(ValidationError) as caught:
        rule.full_clean()

    errors = caught.value.message_dict
    assert errors["milestone"] == ["A “Milestone not reached in time” rule needs this."]
    assert errors["delay"] == ["A “Milestone not reached in time” rule needs this."]
    assert "does not use this" in errors["event_name"][0]


def test_it_refuses_a_rule_without_a_channel_and_a_bad_email_address() -> None:
    workspace = WorkspaceFactory()
    rule = RuleFactory.build(
        workspace=workspace,
        message=MessageFactory(workspace=workspace),
        send_in_app=False,
    )
    rule.send_email, rule.email_to = False, "sales@example.com"
    with pytest.raises(ValidationError) as caught:
        rule.full_clean()
    assert "send_in_app" in caught.value.message_dict
    assert "email_to" in caught.value.message_dict

    rule.send_email, rule.email_to = True, "sales@example.com, not-an-address"
    with pytest.raises(ValidationError) as caught:
        rule.full_clean()
    assert caught.value.message_dict["email_to"] == ["'not-an-address' is not an e-mail address."]


def test_it_refuses_counting_from_a_previous_milestone_that_does_not_exist() -> None:
    journey = JourneyFactory()
    first = MilestoneFactory(journey=journey, position=0)
    rule = RuleFactory.build(
        workspace=journey.workspace,
        message=MessageFactory(workspace=journey.workspace),
        trigger=Trigger.MILESTONE_NOT_REACHED,
        event_name="",
        milestone=first,
        delay=timedelta(days=3),
        counted_from="previous_milestone",
    )

    with pytest.raises(ValidationError) as caught:
        rule.full_clean()

    assert "is the journey's first milestone" in caught.value.message_dict["counted_from"][0]
