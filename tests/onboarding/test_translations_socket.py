"""The socket's language: the browser's Accept-Language (or hello.locale), and the pushes that
follow the welcome in the same language."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from milepost.asgi import application
from onboarding import recording, sdk_strings, services, translation_files
from onboarding.models import EndUser
from tests.onboarding.conftest import TrialJourney

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = b"https://app.example.com"


def socket(key: str, language: str | None = None) -> WebsocketCommunicator:
    headers = [(b"origin", ORIGIN)]
    if language:
        headers.append((b"accept-language", language.encode()))
    return WebsocketCommunicator(application, f"/ws/widget/?key={key}", headers=headers)


async def say(communicator: WebsocketCommunicator, message: dict[str, Any]) -> dict[str, Any]:
    await communicator.send_to(text_data=json.dumps(message))
    return json.loads(await communicator.receive_from(timeout=5))


def translate_trial(trial: TrialJourney) -> None:
    translation_files.translation_set(
        workspace=trial.workspace,
        kind="journey",
        key="trial",
        locale="fr",
        texts=[("name", "Prise en main"), ("milestones.installed-js.name", "Snippet installé")],
    )
    services.content_publish(obj=trial.journey)


async def test_the_handshakes_accept_language_picks_the_language(trial: TrialJourney) -> None:
    await sync_to_async(translate_trial)(trial)
    communicator = socket(trial.workspace.keys["publishable_key"], "fr-FR,fr;q=0.9,en;q=0.5")
    await communicator.connect()

    welcome = await say(communicator, {"type": "hello", "user": {"id": "u1", "traits": {}}})

    assert welcome["locale"]["tag"] == "fr"
    assert welcome["locale"]["strings"][0] == "Suivant"
    journey = welcome["journeys"][0]
    assert journey["journey"]["name"] == "Prise en main"
    assert journey["milestones"][0]["name"] == "Snippet installé"

    # A milestone completed from the server reaches the tab in the person's language too.
    end_user = await sync_to_async(EndUser.objects.get)(external_id="u1")
    await sync_to_async(recording.milestone_complete)(end_user=end_user, milestone=trial.installed)
    progress = json.loads(await communicator.receive_from(timeout=5))
    assert progress["type"] == "progress"
    assert progress["journey"]["name"] == "Prise en main"
    await communicator.disconnect()


async def test_hello_locale_wins_and_a_malformed_one_is_refused(trial: TrialJourney) -> None:
    await sync_to_async(translate_trial)(trial)
    communicator = socket(trial.workspace.keys["publishable_key"], "de-DE")
    await communicator.connect()

    refused = await say(communicator, {"type": "hello", "user": {"id": "u1"}, "locale": "<script>"})
    welcome = await say(communicator, {"type": "hello", "user": {"id": "u1"}, "locale": "fr-CA"})

    assert (refused["type"], refused["code"]) == ("error", "invalid_locale")
    assert welcome["locale"]["tag"] == "fr"
    assert await sync_to_async(lambda: EndUser.objects.get(external_id="u1").locale)() == "fr-CA"
    await communicator.disconnect()


def test_the_builders_english_words_are_the_servers() -> None:
    source = Path(__file__).parents[2] / "widget" / "src" / "strings-en.ts"
    found = re.search(r"strings: (\[.*\]),", source.read_text(encoding="utf-8"))
    assert found is not None
    assert json.loads(found.group(1)) == sdk_strings.sdk_locale("en")["strings"]


def test_every_language_has_every_word() -> None:
    english = sdk_strings.sdk_locale("en")["strings"]
    for tag in sdk_strings.languages():
        strings = sdk_strings.sdk_locale(tag)["strings"]
        assert isinstance(strings, list)
        assert isinstance(english, list)
        assert len(strings) == len(english)
        # A plural's forms need not all name the number ("نتيجتان": two results); its `other`
        # form does (tests/onboarding/test_sdk_strings.py).
        assert all(
            s.count("{0}") == e.count("{0}")
            for s, e in zip(strings, english, strict=True)
            if "|" not in e
        )
