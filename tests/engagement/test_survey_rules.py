"""An engagement rule on survey answers: "detractor -> e-mail the success team" is an event rule
on `$survey_answered` filtered on the band the server sets on every NPS answer."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.utils import timezone

from engagement.models import Delivery, Trigger
from onboarding import recording, services
from onboarding.models import Survey
from tests.engagement.conftest import Mailbox
from tests.engagement.factories import MessageFactory, RuleFactory
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db


def nps(workspace: Any, user: str, score: int) -> None:
    ack = recording.events_record(
        workspace=workspace,
        source="widget",
        events=[
            {
                "id": str(uuid.uuid4()),
                "user_id": user,
                "name": "$survey_answered",
                "timestamp": timezone.now().isoformat(),
                "properties": {"survey": "nps", "question": "score", "answer": score},
            }
        ],
    )
    assert ack.rejected == [], ack.rejected


def test_a_detractor_answer_emails_the_success_team_and_other_answers_do_not(
    smtp_server: Mailbox, django_capture_on_commit_callbacks: Any
) -> None:
    workspace = WorkspaceFactory(name="Acme")
    survey = Survey.objects.create(
        workspace=workspace,
        key="nps",
        name="NPS",
        questions=[{"key": "score", "type": "nps", "prompt": "Recommend us?"}],
    )
    services.content_publish(obj=survey)
    rule = RuleFactory(
        workspace=workspace, trigger=Trigger.EVENT, event_name="$survey_answered",
        event_properties={"survey": "nps", "band": "detractor"}, once_per_user=False,
        send_in_app=False, send_email=True, email_to="success@acme.test",
        message=MessageFactory(
            workspace=workspace, title="Detractor: {{ user_id }}", body="Call them today."
        ),
    )  # fmt: skip
    rule.full_clean()

    with django_capture_on_commit_callbacks(execute=True):
        nps(workspace, "happy", 10)
        nps(workspace, "meh", 7)
        nps(workspace, "angry", 6)

    [delivery] = Delivery.objects.filter(rule=rule)
    assert delivery.status == "sent"
    [mail] = smtp_server.messages
    assert mail["Subject"] == "Detractor: angry"
    assert mail["X-Envelope-To"] == "success@acme.test"
