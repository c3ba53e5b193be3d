"""What end users get when a step's target never appears: after the step's wait, the step is
reported missing (`$step_target_missing`, with what happens next) and then, as the step says,
shown as a centred modal, skipped, or the tour ends. Never a silent vanish."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from onboarding.models import ContentState, Step
from tests.browser.conftest import Live, events_named, wait_for
from tests.browser.test_widget_behaviour import CARD, host_page, host_workspace, publish_tour

pytestmark = pytest.mark.browser

Missing = Step.TargetMissing


def test_by_default_a_missing_target_shows_the_step_as_a_centred_modal(
    live: Live, page: Any
) -> None:
    workspace = host_workspace(live)
    publish_tour(
        workspace,
        [
            {
                "title": "Open settings",
                "selector": "#never",
                "wait_timeout_ms": 800,
                "advance_on": Step.Advance.TARGET_CLICK,
            }
        ],
    )
    page.goto(host_page(live, workspace, "<main><h1>App</h1></main>"))
    card = page.locator(CARD)
    expect(card).to_contain_text("Open settings")
    # Centred in the 1200 x 800 viewport, over a dimmed page.
    box = card.bounding_box()
    assert abs(box["x"] + box["width"] / 2 - 600) < 2
    assert abs(box["y"] + box["height"] / 2 - 400) < 2
    # Its target is not there to click: the card offers the way on.
    page.get_by_role("button", name="Done").click()
    expect(card).to_have_count(0)
    missing = wait_for(lambda: events_named("$step_target_missing", selector="#never"))
    assert missing[0].properties["then"] == "modal"
    assert wait_for(lambda: events_named("$walkthrough_completed"))
    assert page.errors == []


def test_a_step_that_says_skip_moves_on_to_the_next_step(live: Live, page: Any) -> None:
    workspace = host_workspace(live)
    walkthrough = publish_tour(
        workspace,
        [
            {"title": "Ghost", "selector": "#never", "wait_timeout_ms": 800,
             "on_target_missing": Missing.SKIP},
            {"title": "Welcome aboard", "selector": "#here"},
        ],
    )  # fmt: skip
    page.goto(host_page(live, workspace, "<main><button id=here>Here</button></main>"))
    card = page.locator(CARD)
    expect(card).to_contain_text("Welcome aboard")
    expect(card).not_to_contain_text("Ghost")
    assert wait_for(lambda: events_named("$step_skipped", step=0))
    assert events_named("$step_target_missing", step=0)[0].properties["then"] == "skip"
    assert events_named("$step_viewed", step=0) == []
    # The server's state moved on too: a reload shows the second step, not the ghost.
    assert wait_for(lambda: ContentState.objects.filter(key=walkthrough.key, step_index=1).exists())
    page.reload()
    expect(card).to_contain_text("Welcome aboard")


def test_a_last_step_that_says_skip_ends_the_tour(live: Live, page: Any) -> None:
    workspace = host_workspace(live)
    publish_tour(
        workspace,
        [
            {"title": "Hello", "selector": ""},
            {"title": "Ghost", "selector": "#never", "wait_timeout_ms": 500,
             "on_target_missing": Missing.SKIP},
        ],
    )  # fmt: skip
    page.goto(host_page(live, workspace, "<main><h1>App</h1></main>"))
    page.get_by_role("button", name="Next").click()
    assert wait_for(lambda: events_named("$walkthrough_dismissed", step=1))
    expect(page.locator(CARD)).to_have_count(0)
    assert events_named("$walkthrough_completed") == []


def test_a_step_that_says_end_ends_the_tour_for_good(live: Live, page: Any) -> None:
    workspace = host_workspace(live)
    walkthrough = publish_tour(
        workspace,
        [
            {"title": "Hello", "selector": ""},
            {"title": "Ghost", "selector": "#never", "wait_timeout_ms": 800,
             "on_target_missing": Missing.END},
            {"title": "Never reached", "selector": ""},
        ],
    )  # fmt: skip
    page.goto(host_page(live, workspace, "<main><h1>App</h1></main>"))
    card = page.locator(CARD)
    page.get_by_role("button", name="Next").click()
    assert wait_for(lambda: events_named("$walkthrough_dismissed", step=1))
    expect(card).to_have_count(0)
    assert events_named("$step_target_missing", step=1)[0].properties["then"] == "end"
    state = wait_for(
        lambda: ContentState.objects.filter(
            key=walkthrough.key, status=ContentState.Status.DISMISSED
        ).first()
    )
    assert state.step_index == 1
    # Ended, not paused: the tour does not come back on the next visit.
    page.reload()
    page.wait_for_timeout(1500)
    expect(card).to_have_count(0)
