"""Engagement messages in the language the person last asked for."""

from __future__ import annotations

import pytest

from engagement import services
from onboarding import translation_files
from tests.engagement.factories import MessageFactory, RuleFactory
from tests.factories import EndUserFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_a_message_is_rendered_in_the_persons_language_field_by_field() -> None:
    workspace = WorkspaceFactory()
    message = MessageFactory(
        workspace=workspace, key="hello", title="Well done, {{ first_name|default:\"friend\" }}!",
        body="Next up: **{{ next_milestone }}**.",
    )  # fmt: skip
    rule = RuleFactory(workspace=workspace, message=message)
    translation_files.translation_set(
        workspace=workspace,
        kind="message",
        key="hello",
        locale="fr",
        texts=[("title", 'Bravo, {{ first_name|default:"l’ami" }} !')],  # noqa: RUF001
    )
    french = EndUserFactory(workspace=workspace, locale="fr-CA", traits={"first_name": "Zoé"})
    german = EndUserFactory(workspace=workspace, locale="de", traits={"first_name": "Jonas"})

    (to_french,) = services.rule_send_test(rule=rule, end_user=french)
    (to_german,) = services.rule_send_test(rule=rule, end_user=german)

    assert to_french.payload["title"] == "Bravo, Zoé !"
    assert "Next up" in to_french.payload["body_html"]  # not translated: the source text
    assert to_german.payload["title"] == "Well done, Jonas!"


def test_message_texts_are_listed_for_translators() -> None:
    workspace = WorkspaceFactory()
    MessageFactory(workspace=workspace, key="hello", title="Hi", body="Body", cta_label="")

    units = translation_files.units(workspace=workspace, locale="fr")

    assert [(u.kind, u.key, u.path, u.source) for u in units] == [
        ("message", "hello", "title", "Hi"),
        ("message", "hello", "body", "Body"),
    ]
