"""Survey questions in admin as fields (key, type, prompt, choices, scale, NPS follow-ups per
band), with errors naming the question and the field, and nothing saved until all is right."""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from onboarding.models import Survey
from tests.factories import UserFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def block(index: int, **fields: str) -> dict[str, str]:
    return {f"questions-{index}-{name}": value for name, value in fields.items()}


def survey_form(workspace_id: int, rows: int, *blocks: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "workspace": workspace_id,
        "key": "nps",
        "name": "How are we doing?",
        "questions-rows": str(rows),
        "thank_you": "Thanks!",
        "display": "popover",
        "position": "bottom-right",
        "selector": "",
        "page_url_pattern": "",
        "when_present": "",
        "wait_timeout_ms": "5000",
        "segment": "",
        "frequency": "until_completed",
        "priority": "0",
    }
    for one in blocks:
        data.update(one)
    return data


@pytest.fixture
def admin_client(client: Client) -> Client:
    client.force_login(UserFactory(username="root", is_superuser=True))
    return client


def test_an_admin_writes_questions_in_fields_and_gets_the_json_list(admin_client: Client) -> None:
    workspace = WorkspaceFactory()
    data = survey_form(
        workspace.pk,
        4,
        block(0, key="score", type="nps", prompt="Recommend us?", follow_detractor="why"),
        block(1, key="why", type="text", prompt="What should we fix?", optional="on"),
        block(2, key="love", type="single_choice", prompt="Best part?", choices="Speed\nReports\n"),
        block(3),  # a blank block is left out
    )
    response = admin_client.post(reverse("admin:onboarding_survey_add"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Survey.objects.get(key="nps").questions == [
        {
            "key": "score",
            "type": "nps",
            "prompt": "Recommend us?",
            "follow_up": {"detractor": "why"},
        },
        {"key": "why", "type": "text", "prompt": "What should we fix?", "optional": True},
        {
            "key": "love",
            "type": "single_choice",
            "prompt": "Best part?",
            "choices": ["Speed", "Reports"],
        },
    ]
    # Editing shows each question in its block, plus blank ones to add more.
    survey = Survey.objects.get(key="nps")
    page = admin_client.get(reverse("admin:onboarding_survey_change", args=[survey.pk]))
    text = page.content.decode()
    assert text.count('class="module survey-question"') == 5
    assert 'name="questions-2-choices" rows="3" cols="40">Speed\nReports</textarea>' in text
    assert 'name="questions-0-follow_detractor" value="why"' in text


def test_errors_name_the_question_and_the_field_and_nothing_is_saved(
    admin_client: Client,
) -> None:
    workspace = WorkspaceFactory()
    data = survey_form(
        workspace.pk,
        3,
        block(0, key="score", type="nps", prompt="Recommend us?", follow_promoter="nowhere"),
        block(1, key="love", type="single_choice", prompt="Best part?", choices="Only one"),
        block(2, key="stars", type="text", prompt="Rate us", scale="5"),
    )
    response = admin_client.post(reverse("admin:onboarding_survey_add"), data)
    assert response.status_code == 200
    text = html.unescape(response.content.decode())
    assert "Question 2 (“love”), choices: List 2 to 20 choices." in text
    assert "Question 3 (“stars”), scale: Only a rating question has a scale." in text
    assert (
        "Question 1 (“score”), follow-up for promoters: 'nowhere' is not the key of a later "
        "question." in text
    )
    # What the author typed is still in the blocks.
    assert 'name="questions-1-choices" rows="3" cols="40">Only one</textarea>' in text
    assert not Survey.objects.exists()


def test_a_survey_without_questions_is_refused(admin_client: Client) -> None:
    workspace = WorkspaceFactory()
    response = admin_client.post(
        reverse("admin:onboarding_survey_add"), survey_form(workspace.pk, 2, block(0), block(1))
    )
    assert response.status_code == 200
    assert "A survey needs at least one question" in html.unescape(response.content.decode())
    assert not Survey.objects.exists()
