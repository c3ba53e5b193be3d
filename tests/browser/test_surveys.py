"""Surveys in real Chromium on a hostile customer page (strict CSP, a sticky header, host CSS
that unsets everything, a scroll container): an NPS survey answered with the keyboard and its
detractor follow-up, the answers in the survey's results in admin; an inline survey inside a
host element. Screenshots go to var/screenshots/ (MILEPOST_SCREENSHOTS=docs/screenshots for
the README's)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from playwright.sync_api import expect

from onboarding import services
from onboarding.models import Survey, Workspace
from tests.browser.conftest import AXE, Live, events_named, in_thread, new_user_id, wait_for
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(
    os.environ.get("MILEPOST_SCREENSHOTS") or settings.BASE_DIR / "var" / "screenshots"
)
NONCE = "s3rv3y"
QUESTIONS = [
    {
        "key": "score",
        "type": "nps",
        "prompt": "How likely are you to recommend Acme to a friend?",
        "follow_up": {"detractor": "fix", "promoter": "love"},
    },
    {"key": "fix", "type": "text", "prompt": "What should we fix first?"},
    {
        "key": "love",
        "type": "single_choice",
        "prompt": "What do you like most?",
        "choices": ["Speed", "Reports", "Support"],
    },
]


def hostile_page(live: Live, workspace: Workspace, user_id: str, body: str = "") -> str:
    user_hash = workspace.user_hash_for(user_id)
    live.host.add(
        "/app",
        "<!doctype html><html lang=en><head><title>Acme</title>"
        f'<script nonce="{NONCE}" async src="{live.milepost_url}/static/milepost/milepost.js" '
        f'data-key="{workspace.publishable_key}"></script>'
        f'<script nonce="{NONCE}">window.milepost = window.milepost || [];'
        f'milepost.push(["identify", "{user_id}", {{}}, {{userHash: "{user_hash}"}}]);</script>'
        f'<style nonce="{NONCE}">* {{ all: unset }} head {{ display: none }}'
        " header { display: block; position: sticky; top: 0; z-index: 99999; height: 56px;"
        " background: #111; color: #fff }"
        " main { display: block; height: 600px; overflow: auto }"
        " input, textarea, label, button, fieldset { font-size: 40px !important;"
        " color: red !important }</style>"
        "</head><body><header>Acme</header><main><h1>Dashboard</h1>"
        f"{body}<p>Lots of data</p></main></body></html>",
        csp=(
            f"default-src 'self'; script-src 'nonce-{NONCE}' {live.milepost_url}; "
            f"style-src 'nonce-{NONCE}'; connect-src {live.milepost_url} "
            f"{live.milepost_url.replace('http', 'ws')}; img-src 'self' data:"
        ),
    )
    return f"{live.host_url}/app"


def axe_violations(page: Any) -> list[dict[str, Any]]:
    page.evaluate(AXE.read_text())
    found: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run({include: [['milepost-widget']]})).violations"
        ".map(v => ({id: v.id, nodes: v.nodes.map(n => n.html)}))"
    )
    return found


def publish(workspace: Workspace, **fields: Any) -> Survey:
    fields.setdefault("questions", QUESTIONS)
    survey = Survey(workspace=workspace, name="How are we doing?", **fields)
    survey.full_clean()
    survey.save()
    in_thread(lambda: services.content_publish(obj=survey))
    return survey


def test_an_nps_survey_answered_with_the_keyboard_reaches_the_results_in_admin(
    live: Live, page: Any, context: Any
) -> None:
    workspace = WorkspaceFactory(
        allowed_origins=[live.host_url], enforce_identity_verification=True
    )
    survey = publish(workspace, key="nps-test", thank_you="Thanks, that helps a lot!")
    user_id = new_user_id()

    page.goto(hostile_page(live, workspace, user_id))
    card = page.locator("milepost-widget [role=dialog][data-survey=nps-test]")
    expect(card).to_be_visible()
    group = card.get_by_role("radiogroup", name="How likely are you to recommend Acme")
    expect(group.get_by_role("radio")).to_have_count(11)
    assert axe_violations(page) == []
    # Keyboard only: the first radio has focus; arrows move and choose, Enter sends.
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(group.get_by_role("radio", name="3")).to_be_checked()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "survey-nps.png"))
    page.keyboard.press("Enter")

    follow_up = card.get_by_role("textbox", name="What should we fix first?")
    expect(follow_up).to_be_focused()
    follow_up.fill("The export is too slow")
    assert axe_violations(page) == []
    page.screenshot(path=str(SCREENSHOTS / "survey-follow-up.png"))
    card.get_by_role("button", name="Send").click()
    expect(card).to_contain_text("Thanks, that helps a lot!")
    expect(card).to_be_hidden(timeout=6000)

    assert wait_for(lambda: events_named("$survey_completed", survey="nps-test"))
    [score] = events_named("$survey_answered", survey="nps-test", question="score")
    assert (score.properties["answer"], score.properties["band"]) == (3, "detractor")
    assert events_named("$survey_answered", question="love") == []
    assert page.errors == []

    admin = context.new_page()
    admin.goto(f"{live.milepost_url}/admin/login/")
    admin.fill("#id_username", "admin")
    admin.fill("#id_password", "milepost-demo")
    admin.click("input[type=submit]")
    admin.goto(f"{live.milepost_url}/admin/onboarding/survey/{survey.pk}/results/")
    expect(admin.locator(".response-rate")).to_contain_text("100 %")
    expect(admin.locator("#question-score .nps-total")).to_contain_text("NPS -100")
    expect(admin.locator("#question-fix .text-answers")).to_contain_text("The export is too slow")
    expect(admin.locator("#question-fix .text-answers")).to_contain_text(user_id)
    admin.screenshot(path=str(SCREENSHOTS / "survey-results.png"), full_page=True)

    # Answered: the next page view does not ask again.
    page.reload()
    page.wait_for_timeout(1500)
    expect(card).to_have_count(0)


def test_an_inline_survey_is_drawn_inside_its_host_element_and_an_invalid_answer_is_refused(
    live: Live, page: Any
) -> None:
    workspace = WorkspaceFactory(allowed_origins=[live.host_url])
    publish(
        workspace,
        key="inline-test",
        display="inline",
        selector="#feedback",
        questions=[
            {"key": "stars", "type": "rating", "prompt": "Rate this report", "scale": 5},
            {"key": "use", "type": "multiple_choice", "prompt": "What do you use it for?",
             "choices": ["Planning", "Reporting", "Billing"]},
        ],
    )  # fmt: skip

    page.goto(hostile_page(live, workspace, new_user_id(), "<section id=feedback></section>"))
    region = page.locator("#feedback milepost-survey [role=region]")
    expect(region).to_be_visible()
    region.get_by_role("button", name="Next").click()
    expect(region).to_contain_text("Choose an answer first.")
    region.get_by_role("radio", name="4 of 5").check()
    region.get_by_role("button", name="Next").click()
    region.get_by_role("checkbox", name="Planning").check()
    region.get_by_role("checkbox", name="Reporting").check()
    page.screenshot(path=str(SCREENSHOTS / "survey-inline.png"))
    region.get_by_role("button", name="Send").click()
    expect(region).to_contain_text("Thank you!")

    assert wait_for(lambda: events_named("$survey_answered", question="use"))
    [use] = events_named("$survey_answered", question="use")
    assert use.properties["answer"] == ["Planning", "Reporting"]
    [stars] = events_named("$survey_answered", question="stars")
    assert stars.properties["answer"] == 4
    assert page.errors == []


def test_the_demo_asks_its_nps_survey_inline_on_the_contacts_page(live: Live, page: Any) -> None:
    page.goto(f"{live.demo_url}/contacts")
    region = page.locator("#feedback milepost-survey [role=region]")
    expect(region.get_by_role("radiogroup")).to_contain_text("recommend Acme to a colleague")
    # Keyboard: a radio chosen, Enter sends the question.
    region.get_by_role("radio", name="10").check()
    page.keyboard.press("Enter")
    expect(region.get_by_role("radiogroup", name="What do you like most?")).to_be_visible()
    region.get_by_role("radio", name="Reports").check()
    page.screenshot(path=str(SCREENSHOTS / "survey-demo.png"))
    page.keyboard.press("Enter")

    assert wait_for(
        lambda: events_named("$survey_answered", survey="contacts-nps", answer="Reports")
    )
    assert page.errors == []


def test_an_admin_edits_the_demo_surveys_questions_in_fields(live: Live, page: Any) -> None:
    survey = Survey.objects.get(workspace=live.demo, key="contacts-nps")
    page.goto(f"{live.milepost_url}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "milepost-demo")
    page.click("input[type=submit]")
    page.goto(f"{live.milepost_url}/admin/onboarding/survey/{survey.pk}/change/")
    blocks = page.locator("fieldset.survey-question")
    expect(blocks).to_have_count(6)  # the demo's four questions and two blank ones
    expect(blocks.nth(0).locator("select")).to_have_value("nps")
    expect(blocks.nth(0).locator("[name$=follow_detractor]")).to_have_value("fix")
    expect(blocks.nth(2).locator("textarea")).to_have_value("Campaigns\nContact import\nReports")
    # A new question with one choice only, and a follow-up to a key that does not exist.
    blocks.nth(4).locator("[name$=-key]").fill("plan")
    blocks.nth(4).locator("select").select_option("single_choice")
    blocks.nth(4).locator("[name$=-prompt]").fill("Which plan are you on?")
    blocks.nth(4).locator("textarea").fill("Starter")
    blocks.nth(0).locator("[name$=follow_passive]").fill("nowhere")
    page.click("input[name=_continue]")
    errors = page.locator(".errorlist")
    expect(errors).to_contain_text("Question 5 (“plan”), choices: List 2 to 20 choices.")
    expect(errors).to_contain_text("Question 1 (“score”), follow-up for passives: 'nowhere'")
    page.screenshot(path=str(SCREENSHOTS / "survey-questions-admin.png"), full_page=True)
    blocks.nth(4).locator("textarea").fill("Starter\nGrowth")
    blocks.nth(0).locator("[name$=follow_passive]").fill("")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    survey.refresh_from_db()
    assert survey.questions[-1] == {
        "key": "plan",
        "type": "single_choice",
        "prompt": "Which plan are you on?",
        "choices": ["Starter", "Growth"],
    }
