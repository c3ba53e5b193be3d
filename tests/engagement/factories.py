"""factory-boy factories for engagement's models."""

from __future__ import annotations

import factory

from engagement import models
from tests.factories import WorkspaceFactory


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Message

    workspace = factory.SubFactory(WorkspaceFactory)
    key = factory.Sequence(lambda n: f"message-{n}")
    name = factory.Sequence(lambda n: f"Message {n}")
    title = 'Well done, {{ first_name|default:"friend" }}!'
    body = "Next up: **{{ next_milestone }}**."


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.WebhookEndpoint

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Endpoint {n}")
    url = "http://127.0.0.1:9/hook"


class RuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Rule

    workspace = factory.SubFactory(WorkspaceFactory)
    key = factory.Sequence(lambda n: f"rule-{n}")
    name = factory.Sequence(lambda n: f"Rule {n}")
    trigger = models.Trigger.EVENT
    event_name = "campaign_created"
    message = factory.SubFactory(MessageFactory, workspace=factory.SelfAttribute("..workspace"))


class FrequencyCapFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.FrequencyCap

    workspace = factory.SubFactory(WorkspaceFactory)
    channel = models.Channel.IN_APP
    limit = 1
