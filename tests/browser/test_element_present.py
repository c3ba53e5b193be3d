"""The "element present" trigger on walkthroughs, tooltips, surveys and in-app messages, and
the checklist celebration where the page has no other surfaces, in real Chromium on the hostile
host page of test_surfaces.py (strict CSP, sticky header, hostile CSS, an app that navigates
with the history API and adds its empty list 400 ms after the navigation). Screenshots go to
docs/screenshots/."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from engagement import services as engagement_services
from engagement.models import Delivery
from onboarding import services
from onboarding.models import EndUser, JourneyStart, Survey
from tests.browser.conftest import Live, events_named, in_thread, new_user_id, wait_for
from tests.browser.test_surfaces import DIALOGS, hostile_page, shot, visitor, workspace_for
from tests.engagement.factories import MessageFactory, RuleFactory
from tests.factories import (
    JourneyFactory,
    MilestoneFactory,
    ProgressBarFactory,
    StepFactory,
    TooltipFactory,
    WalkthroughFactory,
)

pytestmark = pytest.mark.browser
PROMPT = "How likely are you to recommend us?"
EMPTY = "#empty-campaigns"  # added by the host page 400 ms after it navigates to /app/campaigns


def test_a_tour_starts_only_once_its_element_is_on_the_page(live: Live, page: Any) -> None:
    workspace = workspace_for(live)
    tour = WalkthroughFactory(
        workspace=workspace, key="first-campaign", name="First campaign", when_present=EMPTY
    )
    StepFactory(
        walkthrough=tour,
        title="Start from a template",
        selector="",
        page_url_pattern="/app/*",
    )
    never = WalkthroughFactory(
        workspace=workspace, key="never", when_present="#not-here", wait_timeout_ms=800
    )
    StepFactory(walkthrough=never, title="Never shown", selector="", page_url_pattern="")
    in_thread(lambda: [services.content_publish(obj=w) for w in (tour, never)])
    page.goto(hostile_page(live, workspace))
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    # Its first step's page matches /app/*, but the element is not there: no tour.
    assert wait_for(
        lambda: events_named(
            "$content_target_missing", kind="walkthrough", key="never", selector="#not-here"
        )
    )
    expect(page.locator(DIALOGS)).to_have_count(0)

    page.get_by_role("link", name="Campaigns").click()  # the app navigates, the list follows
    expect(page.locator(DIALOGS)).to_contain_text("Start from a template")
    assert page.locator(EMPTY).count() == 1
    assert wait_for(lambda: events_named("$walkthrough_started", walkthrough="first-campaign"))
    assert events_named("$walkthrough_started", walkthrough="never") == []
    shot(page, "element-present-tour")
    page.get_by_role("button", name="Close First campaign").click()
    expect(page.locator(DIALOGS)).to_have_count(0)
    # Dismissed on this page: going back and forth does not start it again here.
    page.evaluate("history.pushState({}, '', '/app'); history.pushState({}, '', '/app/campaigns')")
    page.wait_for_timeout(800)
    expect(page.locator(DIALOGS)).to_have_count(0)
    assert len(events_named("$walkthrough_started", walkthrough="first-campaign")) == 1
    assert page.evaluate("window.violations") == []
    assert page.errors == []


def test_a_tooltip_shows_while_its_element_is_on_the_page(live: Live, page: Any) -> None:
    workspace = workspace_for(live)
    tip = TooltipFactory(
        workspace=workspace,
        key="menu-tip",
        selector="#menu",
        body_markdown="Templates live in the menu.",
        when_present=EMPTY,
    )
    in_thread(lambda: services.content_publish(obj=tip))
    page.goto(hostile_page(live, workspace))
    beacon = page.locator("milepost-widget [data-tooltip=menu-tip]")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    page.wait_for_timeout(600)
    expect(beacon).to_have_count(0)  # #menu is there, the empty list is not
    assert wait_for(lambda: events_named("$content_target_missing", kind="tooltip", key="menu-tip"))

    page.get_by_role("link", name="Campaigns").click()
    expect(beacon).to_be_visible()
    beacon.click()
    card = page.locator("milepost-widget [role=dialog][data-tooltip=menu-tip]")
    expect(card).to_contain_text("Templates live in the menu.")
    shot(page, "element-present-tooltip")
    assert wait_for(lambda: events_named("$tooltip_viewed", tooltip="menu-tip"))
    # Back to a page without the element: the tooltip goes with it.
    page.evaluate("history.pushState({}, '', '/app'); document.getElementById('view').innerHTML=''")
    expect(beacon).to_have_count(0)
    assert page.evaluate("window.violations") == []
    assert page.errors == []


def test_a_survey_waits_for_its_element(live: Live, page: Any) -> None:
    workspace = workspace_for(live)
    survey = Survey.objects.create(
        workspace=workspace,
        key="campaigns-nps",
        name="Campaigns NPS",
        questions=[{"key": "score", "type": "nps", "prompt": PROMPT}],
        when_present=EMPTY,
    )
    in_thread(lambda: services.content_publish(obj=survey))
    page.goto(hostile_page(live, workspace))
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    page.wait_for_timeout(600)
    prompt = page.get_by_text(PROMPT)
    expect(prompt).to_have_count(0)
    page.get_by_role("link", name="Campaigns").click()
    expect(prompt).to_be_visible()
    assert page.locator(EMPTY).count() == 1


def fire_waiting_message(end_user: EndUser, key: str, **message: Any) -> Delivery:
    rule = RuleFactory(
        workspace=end_user.workspace,
        key=key,
        message=MessageFactory(workspace=end_user.workspace, key=key, **message),
    )
    fired = in_thread(
        lambda: engagement_services.rule_fire(rule=rule, end_user_id=end_user.pk, occurrence="1")
    )
    return fired[0]


def test_a_message_waits_for_its_element_and_one_whose_element_never_comes_is_reported(
    live: Live, page: Any
) -> None:
    workspace = workspace_for(live)
    user_id = new_user_id()
    page.goto(hostile_page(live, workspace, user_id))
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    end_user = visitor(workspace, user_id)
    waiting = fire_waiting_message(
        end_user,
        "first-import",
        style="modal",
        title="Import your first contacts",
        body="A CSV file will do.",
        when_present=EMPTY,
        wait_timeout_ms=20_000,
    )
    missing = fire_waiting_message(
        end_user,
        "never",
        style="toast",
        title="Never shown",
        body="Its element is nowhere.",
        when_present="#not-here",
        wait_timeout_ms=800,
    )
    card = page.locator(f"milepost-widget [data-message='{waiting.uid}']")
    assert wait_for(
        lambda: events_named(
            "$content_target_missing", kind="message", key=str(missing.uid), selector="#not-here"
        )
    )
    # Both arrived; neither element is on the dashboard, so nothing shows.
    expect(page.locator("milepost-widget [data-message]")).to_have_count(0)

    page.get_by_role("link", name="Campaigns").click()  # the app navigates, the list follows
    expect(card).to_contain_text("Import your first contacts")
    assert page.locator(EMPTY).count() == 1
    expect(page.locator(DIALOGS)).to_have_count(1)
    assert wait_for(lambda: events_named("$message_shown", message=str(waiting.uid)))
    shot(page, "element-present-message")
    page.get_by_role("button", name="Close message").click()
    expect(card).to_have_count(0)

    # The missing one was never shown: its delivery stays sent-but-not-shown (pushed again on
    # the next visit, where it waits again); the one that waited is marked shown.
    assert events_named("$message_shown", message=str(missing.uid)) == []
    expect(page.locator(f"milepost-widget [data-message='{missing.uid}']")).to_have_count(0)
    missing.refresh_from_db()
    assert (missing.status, missing.shown_at) == (Delivery.Status.SENT, None)
    assert wait_for(lambda: Delivery.objects.get(pk=waiting.pk).shown_at is not None)
    assert events_named("$content_target_missing", kind="message", key=str(waiting.uid)) == []
    assert page.evaluate("window.violations") == []
    assert page.errors == []


def test_finishing_a_checklist_celebrates_on_a_page_without_other_surfaces(
    live: Live, page: Any
) -> None:
    workspace = workspace_for(live)
    journey = JourneyFactory(
        workspace=workspace, key="setup", name="Set up Acme", starts_on=JourneyStart.FIRST_SEEN
    )
    for index, key in enumerate(("invited", "sent")):
        MilestoneFactory(journey=journey, key=key, name=key, position=index, event_name=key)
    bar = ProgressBarFactory(workspace=workspace, journey=journey, key="setup-bar", title="Setup")
    in_thread(lambda: [services.content_publish(obj=o) for o in (journey, bar)])
    page.goto(hostile_page(live, workspace, new_user_id()))
    progress = page.locator("milepost-widget [data-progress-bar]")
    expect(progress).to_contain_text("0 of 2")
    page.evaluate("Milepost.track('invited')")
    expect(progress).to_contain_text("1 of 2")
    # Nothing so far needed the surfaces bundle.
    assert page.evaluate("!!document.querySelector('script[src*=\"surfaces.js\"]')") is False
    page.evaluate("Milepost.track('sent')")
    celebration = page.locator("milepost-widget [data-celebration]")
    expect(celebration).to_contain_text("Set up Acme: all done!")
    page.wait_for_timeout(400)  # mid-burst
    shot(page, "checklist-celebration-without-surfaces")
    # Only once, though the bundle now listens too.
    assert page.locator("milepost-widget [data-celebration]").count() == 1
    assert page.evaluate("window.violations") == []
