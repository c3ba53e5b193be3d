"""The Acme demo host app (its own origin, strict nonce CSP, identity verification on) with
the seeded demo content, as a new visitor sees it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from onboarding.models import ContentState, EndUser, MilestoneCompletion
from tests.browser.conftest import Live, events_named, wait_for

pytestmark = pytest.mark.browser

CARD = "milepost-widget [role=dialog]"


def visitor_id(page: Any) -> str:
    return str(page.locator(".who code").inner_text())


def test_a_new_visitor_completes_the_welcome_tour_across_two_pages(live: Live, page: Any) -> None:
    page.goto(f"{live.demo_url}/dashboard")
    card = page.locator(CARD)
    expect(card).to_contain_text("Welcome to Acme")
    expect(card).to_have_attribute("aria-modal", "true")
    page.get_by_role("button", name="Next").click()

    expect(card).to_have_attribute("data-step", "1")
    expect(page.locator("milepost-widget .s")).to_be_visible()  # the spotlight
    page.get_by_role("button", name="Next").click()

    expect(card).to_have_attribute("data-step", "2")
    page.locator("#nav-campaigns").click()  # advances on a click on its target, and navigates

    page.wait_for_url("**/campaigns")
    expect(card).to_have_attribute("data-step", "3")
    page.fill("#campaign-name", "Spring sale")
    page.click("#create-campaign")  # the tracked event campaign_created advances the last step
    expect(card).to_have_count(0)
    expect(page.locator("milepost-widget .t")).to_contain_text("complete")

    user = EndUser.objects.get(external_id=visitor_id(page))
    assert wait_for(
        lambda: ContentState.objects.filter(
            end_user=user, key="welcome-tour", status="completed"
        ).exists()
    )
    steps = sorted(e.properties["step"] for e in events_named("$step_completed"))
    assert steps == [0, 1, 2, 3]
    assert wait_for(
        lambda: MilestoneCompletion.objects.filter(
            end_user=user, milestone__key="first-campaign"
        ).exists()
    )
    done = page.locator("milepost-widget li[data-milestone=first-campaign]")
    expect(done).to_have_class("d")
    assert page.errors == []


def test_the_tour_continues_after_a_reload(live: Live, page: Any) -> None:
    page.goto(f"{live.demo_url}/dashboard")
    page.get_by_role("button", name="Next").click()
    expect(page.locator(CARD)).to_have_attribute("data-step", "1")
    page.reload()
    expect(page.locator(CARD)).to_have_attribute("data-step", "1")
    assert len(wait_for(lambda: events_named("$walkthrough_started"))) == 1


def test_the_tour_resumes_from_the_server_state_in_a_fresh_browser(
    live: Live, page: Any, browser: Any
) -> None:
    page.goto(f"{live.demo_url}/dashboard")
    page.get_by_role("button", name="Next").click()
    expect(page.locator(CARD)).to_have_attribute("data-step", "1")
    user = EndUser.objects.get(external_id=visitor_id(page))
    assert wait_for(lambda: ContentState.objects.filter(end_user=user, step_index=1).exists())
    cookies = page.context.cookies()
    other = browser.new_context(viewport={"width": 1200, "height": 800})
    try:
        other.add_cookies(cookies)  # same person, no local state at all
        fresh = other.new_page()
        fresh.goto(f"{live.demo_url}/dashboard")
        expect(fresh.locator(CARD)).to_have_attribute("data-step", "1", timeout=10_000)
    finally:
        other.close()


def test_the_help_tooltip_shows_and_dismisses(live: Live, page: Any) -> None:
    page.goto(f"{live.demo_url}/dashboard")
    page.get_by_role("button", name="Close Welcome tour").click()
    # The demo's banner waited for the tour and now pushes the page down: the beacon moves
    # with its anchor, so it is clicked where it comes to rest.
    expect(
        page.get_by_role("region", name="Sending pauses on Sunday, 02:00-03:00 UTC")
    ).to_be_visible()
    beacon = page.locator("milepost-widget [data-tooltip=help-tip]")
    beacon.click()
    hint = page.locator("milepost-widget .c[data-tooltip=help-tip]")
    expect(hint).to_be_visible()
    page.get_by_role("button", name="Got it").click()
    expect(hint).to_have_count(0)
    expect(beacon).to_have_count(0)
    assert wait_for(lambda: events_named("$tooltip_dismissed", tooltip="help-tip"))
    page.reload()
    expect(page.locator("milepost-widget [data-progress-bar]")).to_be_visible()
    expect(page.locator("milepost-widget [data-tooltip=help-tip]")).to_have_count(0)


def test_the_checklist_moves_without_reload_when_the_server_api_completes_a_milestone(
    live: Live, page: Any
) -> None:
    page.goto(f"{live.demo_url}/dashboard")
    item = page.locator("milepost-widget li[data-milestone=installed-js]")
    expect(item).to_be_visible()
    expect(item).not_to_have_class("d")
    response = httpx.post(
        f"{live.milepost_url}/api/v1/users/{visitor_id(page)}/milestones/installed-js",
        headers={"Authorization": f"Bearer {live.secret_key}"},
        json={},
    )
    assert response.status_code in {200, 201}, response.text
    expect(item).to_have_class("d")
    expect(page.locator("milepost-widget [role=progressbar]")).to_have_attribute(
        "aria-valuenow", "33"
    )
    expect(page.locator("milepost-widget .t")).to_contain_text("done")


def test_the_strict_nonce_csp_page_reports_no_violation(live: Live, page: Any) -> None:
    page.add_init_script(
        "window.__violations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    response = page.goto(f"{live.demo_url}/dashboard")
    assert "strict-dynamic" in response.headers["content-security-policy"]
    expect(page.locator(CARD)).to_be_visible()
    page.get_by_role("button", name="Next").click()
    expect(page.locator("milepost-widget .s")).to_be_visible()
    assert page.evaluate("window.__violations") == []
