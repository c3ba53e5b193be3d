"""An engagement in-app message run as an experiment: each person gets their variant's message
(nothing for the holdout, logged as skipped) and is exposed once, when the rule fires."""

from __future__ import annotations

from typing import Any

import pytest

from engagement import services
from engagement.models import Delivery
from onboarding import experiments
from onboarding.models import Event, Experiment
from tests.engagement.factories import MessageFactory, RuleFactory
from tests.factories import EndUserFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_a_message_experiment_sends_each_person_their_variant_and_nothing_to_the_holdout() -> None:
    workspace: Any = WorkspaceFactory()
    control = MessageFactory(workspace=workspace, key="hello-plain", title="Hello")
    MessageFactory(workspace=workspace, key="hello-warm", title="Hello, friend!")
    rule: Any = RuleFactory(workspace=workspace, message=control, send_in_app=True)
    experiment = Experiment.objects.create(
        workspace=workspace,
        key="greeting",
        name="Greeting",
        content_kind="message",
        content_key="hello-plain",
        variants=[
            {"key": "control", "weight": 1, "content_key": "hello-plain"},
            {"key": "warm", "weight": 1, "content_key": "hello-warm"},
            {"key": "holdout", "weight": 1, "content_key": None},
        ],
    )
    experiments.experiment_start(experiment=experiment)
    titles: dict[str, set[str]] = {}
    reasons: dict[str, set[str]] = {}
    for n in range(30):
        person: Any = EndUserFactory(workspace=workspace, external_id=f"p{n}")
        arm = experiments.assigned_variant(experiment, external_id=person.external_id)["key"]
        for occurrence in ("first", "second"):
            services.rule_fire(rule=rule, end_user_id=person.pk, occurrence=occurrence)
        delivery = Delivery.objects.filter(end_user=person).first()
        assert delivery is not None
        titles.setdefault(arm, set()).add(delivery.payload["title"])
        reasons.setdefault(arm, set()).add(delivery.status)
        exposures = Event.objects.filter(end_user=person, name=experiments.EXPOSURE_EVENT)
        assert [e.properties["variant"] for e in exposures] == [arm]
    assert titles["control"] == {"Hello"}
    assert titles["warm"] == {"Hello, friend!"}
    assert reasons["holdout"] == {Delivery.Status.SKIPPED}
    assert reasons["warm"] == {Delivery.Status.SENT}
    skipped = Delivery.objects.filter(status=Delivery.Status.SKIPPED).first()
    assert skipped is not None
    assert "holdout" in skipped.reason
