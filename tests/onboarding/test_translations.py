"""Content in several languages: what a person reads depends on their language, falls back
field by field, and changes only when the content is published."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import pytest
from django.utils import timezone

from onboarding import delivery, recording, services, translation_files, translations
from onboarding.models import (
    EndUser,
    PublishedVersion,
    Survey,
    Translation,
    Walkthrough,
    Workspace,
)
from tests.factories import (
    JourneyFactory,
    MilestoneFactory,
    ProgressBarFactory,
    ResourceItemFactory,
    ResourceSectionFactory,
    StepFactory,
    TooltipFactory,
    WalkthroughFactory,
    WorkspaceFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def workspace() -> Workspace:
    return WorkspaceFactory()


@pytest.fixture
def tour(workspace: Workspace) -> Walkthrough:
    walkthrough = WalkthroughFactory(workspace=workspace, key="tour", name="Welcome tour")
    StepFactory(walkthrough=walkthrough, title="Welcome", body_markdown="Hello **there**.")
    StepFactory(walkthrough=walkthrough, title="Your numbers", body_markdown="They show here.")
    services.content_publish(obj=walkthrough)
    return walkthrough


def paths(walkthrough: Walkthrough) -> list[int]:
    return list(walkthrough.steps.order_by("position").values_list("pk", flat=True))


def translate(workspace: Workspace, locale: str, texts: dict[str, str], kind: str = "walkthrough",
              key: str = "tour") -> translation_files.ImportResult:  # fmt: skip
    return translation_files.translation_set(
        workspace=workspace, kind=kind, key=key, locale=locale, texts=texts.items()
    )


def welcome_of(workspace: Workspace, *, browser: str | None = None, traits: Any = None,
               user: str = "u1") -> dict[str, Any]:  # fmt: skip
    end_user = delivery.session_open(
        workspace=workspace, hello={"user": {"id": user, "traits": traits or {}}}
    )
    return delivery.welcome(end_user=end_user, session="s1", traits=traits, browser_locale=browser)


def tour_in(welcome: dict[str, Any]) -> dict[str, Any]:
    return next(w for w in welcome["content"]["walkthroughs"] if w["key"] == "tour")


# The language a person gets -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "offered", "expected"),
    [
        ("pt-BR", {"pt", "fr"}, ("pt", ("pt",))),
        ("pt-BR", {"pt-BR", "pt"}, ("pt-BR", ("pt-BR", "pt"))),
        ("ja", {"pt", "fr"}, ("en", ())),
        ("en-GB", {"fr"}, ("en", ())),
        ("", {"fr"}, ("en", ())),
        ("FR-ca", {"fr"}, ("fr", ("fr",))),
    ],
)
def test_a_language_falls_back_to_its_parent_then_to_the_workspace_default(
    requested: str, offered: set[str], expected: tuple[str, tuple[str, ...]]
) -> None:
    resolved = translations.resolve(
        requested=translations.normalise(requested) or "", offered=offered, default="en"
    )
    assert (resolved.tag, resolved.chain) == expected


def test_the_locale_trait_wins_over_the_browser_and_its_name_is_the_workspaces(
    workspace: Workspace,
) -> None:
    assert (
        translations.requested_locale(
            workspace=workspace, traits={"locale": "fr_CA"}, browser="de-DE"
        )
        == "fr-CA"
    )
    assert translations.requested_locale(workspace=workspace, traits={}, browser="de-DE") == "de-DE"
    # A trait that is not a language tag is ignored (it is the host's data), not refused.
    assert (
        translations.requested_locale(workspace=workspace, traits={"locale": 42}, browser="de")
        == "de"
    )
    workspace.locale_trait = "language"
    assert (
        translations.requested_locale(
            workspace=workspace, traits={"locale": "fr", "language": "ar"}, browser=None
        )
        == "ar"
    )


def test_accept_language_gives_the_browsers_most_preferred_language() -> None:
    assert translations.first_accepted("pt-BR,pt;q=0.9,en;q=0.8") == "pt-BR"
    assert translations.first_accepted("en;q=0.5, fr-CA") == "fr-CA"
    assert translations.first_accepted("*") is None
    assert translations.first_accepted(None) is None


# Publishing and delivery -------------------------------------------------------------------


def test_a_translation_reaches_people_only_once_the_content_is_published(
    workspace: Workspace, tour: Walkthrough
) -> None:
    first, _ = paths(tour)
    translate(workspace, "fr", {f"steps.{first}.title": "Bienvenue", "name": "Visite"})

    assert tour_in(welcome_of(workspace, browser="fr-FR"))["steps"][0]["title"] == "Welcome"

    services.content_publish(obj=tour)
    french = tour_in(welcome_of(workspace, browser="fr-FR", user="u2"))
    assert french["steps"][0]["title"] == "Bienvenue"
    assert french["name"] == "Visite"
    english = tour_in(welcome_of(workspace, browser="en-US", user="u3"))
    assert english["steps"][0]["title"] == "Welcome"


def test_a_missing_translation_falls_back_field_by_field(
    workspace: Workspace, tour: Walkthrough
) -> None:
    first, _second = paths(tour)
    translate(workspace, "pt", {f"steps.{first}.title": "Bem-vindo"})
    translate(workspace, "pt-BR", {f"steps.{first}.body_markdown": "Olá **você**."})
    services.content_publish(obj=tour)

    steps = tour_in(welcome_of(workspace, browser="pt-BR"))["steps"]

    assert steps[0]["title"] == "Bem-vindo"  # from pt
    assert steps[0]["body_html"] == "<p>Olá <strong>você</strong>.</p>"  # from pt-BR, rendered
    assert steps[1]["title"] == "Your numbers"  # nobody translated it: the source text


def test_welcome_carries_the_sdks_words_and_direction_for_the_language(
    workspace: Workspace, tour: Walkthrough
) -> None:
    first, _ = paths(tour)
    translate(workspace, "ar", {f"steps.{first}.title": "مرحبًا"})
    translate(workspace, "fr", {f"steps.{first}.title": "Bienvenue"})
    services.content_publish(obj=tour)

    arabic = welcome_of(workspace, browser="ar-EG")["locale"]
    french = welcome_of(workspace, browser="fr", user="u2")["locale"]
    japanese = welcome_of(workspace, browser="ja-JP", user="u3")["locale"]

    assert (arabic["tag"], arabic["dir"], arabic["strings"][0]) == ("ar", "rtl", "التالي")
    assert arabic["strings"][3] == "\u2068{0} من {1}\u2069"  # the counter, isolated
    assert (french["tag"], french["dir"], french["strings"][0]) == ("fr", "", "Suivant")
    # Nothing is translated into Japanese: content and buttons in the default language.
    assert (japanese["tag"], japanese["strings"][0]) == ("en", "Next")


def test_the_language_is_remembered_for_pushes_and_a_trait_names_it(
    workspace: Workspace, tour: Walkthrough
) -> None:
    first, _ = paths(tour)
    translate(workspace, "fr", {f"steps.{first}.title": "Bienvenue"})
    services.content_publish(obj=tour)

    welcome = welcome_of(workspace, browser="en-US", traits={"locale": "fr"})

    assert tour_in(welcome)["steps"][0]["title"] == "Bienvenue"
    end_user = EndUser.objects.get(workspace=workspace, external_id="u1")
    assert end_user.locale == "fr"
    assert (
        delivery.content_message(end_user=end_user, session="s1")["content"]["walkthroughs"][0][
            "steps"
        ][0]["title"]
        == "Bienvenue"
    )


def test_restoring_a_version_brings_back_its_translations(
    workspace: Workspace, tour: Walkthrough
) -> None:
    first, _ = paths(tour)
    translate(workspace, "fr", {f"steps.{first}.title": "Bienvenue"})
    version = services.content_publish(obj=tour)
    translate(workspace, "fr", {f"steps.{first}.title": "Salut"})
    services.content_publish(obj=tour)

    services.content_restore(version=version)

    row = Translation.objects.get(workspace=workspace, locale="fr", path=f"steps.{first}.title")
    assert row.text == "Bienvenue"
    latest = PublishedVersion.objects.filter(object_id=tour.pk).order_by("-version").first()
    assert latest is not None
    assert latest.snapshot["translations"]["fr"][f"steps.{first}.title"] == "Bienvenue"


def test_content_without_translations_publishes_the_same_snapshot_as_before(
    workspace: Workspace, tour: Walkthrough
) -> None:
    latest = PublishedVersion.objects.get(object_id=tour.pk)
    assert "translations" not in latest.snapshot


def test_a_tooltip_and_journey_names_are_translated_too(workspace: Workspace) -> None:
    tooltip = TooltipFactory(workspace=workspace, key="hint", body_markdown="A hint.")
    translate(workspace, "de", {"body_markdown": "Ein *Hinweis*."}, kind="tooltip", key="hint")
    services.content_publish(obj=tooltip)

    hint = welcome_of(workspace, browser="de-AT")["content"]["tooltips"][0]

    assert hint["body_html"] == "<p>Ein <em>Hinweis</em>.</p>"


# What is untranslated --------------------------------------------------------------------


def test_the_status_names_each_untranslated_and_outdated_field(
    workspace: Workspace, tour: Walkthrough
) -> None:
    first, second = paths(tour)
    translate(workspace, "fr", {f"steps.{first}.title": "Bienvenue"})
    StepFactory._meta.model.objects.filter(pk=first).update(title="Welcome aboard")

    (status,) = [s for s in translations.translation_status(workspace=workspace) if s.key == "tour"]

    assert (status.locale, status.total, status.translated) == ("fr", 5, 1)
    assert f"steps.{second}.title" in status.missing
    assert status.outdated == (f"steps.{first}.title",)


def test_the_demo_is_published_once_with_french_and_arabic(settings: Any) -> None:
    from django.core.management import call_command

    settings.DEMO_HOST_URL = "http://localhost:8001"
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())

    versions = PublishedVersion.objects.filter(workspace__slug="acme")
    assert versions.count() == 10
    tour = versions.get(key="welcome-tour")
    assert set(tour.snapshot["translations"]) == {"fr", "ar"}
    assert len(tour.snapshot["translations"]["ar"]) == 1 + 4 * 3  # name, title, body + html


def test_survey_choices_are_shown_translated_and_answered_with_their_source_text(
    workspace: Workspace,
) -> None:
    survey = Survey(workspace=workspace, key="nps", name="How are we doing?")
    survey.questions = [
        {"key": "love", "type": "single_choice", "prompt": "What do you like most?",
         "choices": ["Speed", "Reports", "Support"]},
    ]  # fmt: skip
    survey.full_clean()
    survey.save()
    services.content_publish(obj=survey)
    exported = translation_files.export(workspace=workspace, locale="fr", fmt="json")
    assert [u["path"] for u in json.loads(exported)["translations"]] == [
        "name",
        "thank_you",
        "questions.love.prompt",
        "questions.love.choices.0",
        "questions.love.choices.1",
        "questions.love.choices.2",
    ]
    translate(workspace, "fr", {"questions.love.prompt": "Qu'aimez-vous le plus ?",
                                "questions.love.choices.0": "La rapidité",
                                "questions.love.choices.2": "Le support"},
              kind="survey", key="nps")  # fmt: skip
    [status] = translations.translation_status(workspace=workspace, locales=["fr"])
    assert (status.total, status.missing) == (6, ("name", "thank_you", "questions.love.choices.1"))
    services.content_publish(obj=survey)

    def question(welcome: dict[str, Any]) -> dict[str, Any]:
        [shown] = welcome["content"]["surfaces"]["surveys"]
        return dict(shown["questions"][0])

    french = question(welcome_of(workspace, browser="fr-FR"))
    english = question(welcome_of(workspace, browser="en", user="u2"))

    assert french["prompt"] == "Qu'aimez-vous le plus ?"
    # Shown in French (an untranslated choice in English); answered with the source text.
    assert french["choice_labels"] == ["La rapidité", "Reports", "Le support"]
    assert french["choices"] == ["Speed", "Reports", "Support"]
    assert "choice_labels" not in english
    ack = recording.events_record(
        workspace=workspace,
        events=[{"id": str(uuid.uuid4()), "user_id": "u1", "name": "$survey_answered",
                 "timestamp": timezone.now().isoformat(),
                 "properties": {"survey": "nps", "question": "love", "answer": "Speed"}}],
        source="server",
    )  # fmt: skip
    assert ack.rejected == []


def test_a_resource_center_names_an_untitled_checklist_and_tour_in_the_persons_language(
    workspace: Workspace, tour: Walkthrough
) -> None:
    journey = JourneyFactory(workspace=workspace, key="setup")
    MilestoneFactory(journey=journey, key="invited", position=0)
    services.content_publish(obj=journey)
    bar = ProgressBarFactory(workspace=workspace, journey=journey, key="bar", title="Set up")
    services.content_publish(obj=bar)
    section = ResourceSectionFactory(workspace=workspace, key="help")
    ResourceItemFactory(section=section, key="list", kind="checklist", title="", url="",
                        progress_bar=bar)  # fmt: skip
    ResourceItemFactory(section=section, key="again", kind="tour", title="", url="",
                        walkthrough=tour)  # fmt: skip
    services.content_publish(obj=section)
    translate(workspace, "fr", {"title": "Installation"}, kind="progress_bar", key="bar")
    translate(workspace, "fr", {"name": "Visite"})
    services.content_publish(obj=bar)
    services.content_publish(obj=tour)

    def titles(welcome: dict[str, Any]) -> list[str]:
        [shown] = welcome["content"]["surfaces"]["resource_centers"]
        return [item["title"] for item in shown["items"]]

    assert titles(welcome_of(workspace, browser="fr")) == ["Installation", "Visite"]
    assert titles(welcome_of(workspace, browser="en", user="u2")) == ["Set up", "Welcome tour"]
