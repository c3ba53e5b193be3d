"""What a person sees of the widget's layout: the spotlight dims the page around its target,
popovers stay anchored inside scroll containers and below sticky headers, a right-to-left page
gets a mirrored widget, and reduced motion turns every animation off."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from onboarding import services
from onboarding.models import Step, Walkthrough, Workspace
from tests.browser.conftest import (
    Live,
    brightness,
    events_named,
    in_thread,
    new_user_id,
    pixel,
    snippet,
    wait_for,
)
from tests.factories import StepFactory, WalkthroughFactory, WorkspaceFactory

pytestmark = pytest.mark.browser

CARD = "milepost-widget [role=dialog]"


def publish_tour(workspace: Workspace, steps: list[dict[str, Any]]) -> Walkthrough:
    walkthrough = WalkthroughFactory(workspace=workspace, name="Layout tour")
    for position, step in enumerate(steps):
        StepFactory(walkthrough=walkthrough, position=position, page_url_pattern="", **step)
    in_thread(lambda: services.content_publish(obj=walkthrough))
    return walkthrough


def host_page(live: Live, steps: list[dict[str, Any]], body: str, head: str = "") -> str:
    workspace = WorkspaceFactory(
        allowed_origins=[live.host_url], enforce_identity_verification=True
    )
    publish_tour(workspace, steps)
    live.host.add(
        "/app",
        f"<!doctype html><html lang=en><head><title>Host</title>{head}"
        f"{snippet(live, workspace, new_user_id())}</head><body>{body}</body></html>",
    )
    return f"{live.host_url}/app"


def box(locator: Any) -> dict[str, float]:
    found = locator.bounding_box()
    assert found is not None
    return dict(found)


# Spotlight ----------------------------------------------------------------------------------


def test_the_spotlight_dims_the_page_around_its_target_and_not_the_target(
    live: Live, page: Any
) -> None:
    page.goto(f"{live.demo_url}/dashboard")
    expect(page.locator(CARD)).to_contain_text("Welcome to Acme")
    page.get_by_role("button", name="Next").click()
    expect(page.locator(CARD)).to_have_attribute("data-step", "1")
    panel = box(page.locator("#stats-panel"))
    inside = (panel["x"] + 40, panel["y"] + panel["height"] - 10)  # the white panel
    outside = (40, panel["y"] + panel["height"] + 150)  # the grey page below it
    # The page is light grey (#f3f4f6) and the panel white; dimmed, the page turns dark.
    assert brightness(pixel(page, *outside)) < 150
    assert brightness(pixel(page, *inside)) > 240
    # The page around the target takes no clicks while the spotlight is on; the target does.
    hit = (
        "([x, y]) => document.elementFromPoint(x, y)"
        ".closest('#stats-panel, milepost-widget')?.localName"
    )
    assert page.evaluate(hit, list(outside)) == "milepost-widget"
    assert page.evaluate(hit, list(inside)) == "section"


def test_a_spotlighted_target_still_takes_the_click_that_advances_the_step(
    live: Live, page: Any
) -> None:
    url = host_page(
        live,
        [
            {
                "title": "Press it",
                "selector": "#go",
                "spotlight": True,
                "advance_on": Step.Advance.TARGET_CLICK,
            },
            {"title": "Pressed", "selector": ""},
        ],
        "<main style='padding:200px'><button id=go>Go</button> <button id=other"
        " onclick='this.textContent = \"Clicked\"'>Other</button></main>",
    )
    page.goto(url)
    card = page.locator(CARD)
    expect(card).to_contain_text("Press it")
    # Another control of the page lies under the dimmed layer: a click there misses it.
    other = box(page.locator("#other"))
    page.mouse.click(other["x"] + other["width"] / 2, other["y"] + other["height"] / 2)
    expect(page.locator("#other")).to_have_text("Other")
    expect(card).to_contain_text("Press it")
    page.locator("#go").click()  # a real mouse click, through the spotlight's hole
    expect(card).to_contain_text("Pressed")
    assert wait_for(lambda: events_named("$step_completed", step=0))


def test_a_centred_step_dims_the_whole_page(live: Live, page: Any) -> None:
    page.goto(f"{live.demo_url}/dashboard")
    card = page.locator(CARD)
    expect(card).to_contain_text("Welcome to Acme")
    page.wait_for_timeout(400)  # the card's fade-in
    assert brightness(pixel(page, 40, 700)) < 150


# Positioning --------------------------------------------------------------------------------

CARD_TOP = (
    "document.querySelector('milepost-widget').shadowRoot.querySelector('[role=dialog]')"
    ".getBoundingClientRect().top"
)
SCROLLING_PAGE = (
    "<style>body{margin:0}header{position:sticky;top:0;height:80px;background:#222;color:#fff}"
    "main{height:2400px;padding-top:300px}#box{height:420px;overflow:auto;border:1px solid}"
    ".pad{height:250px}.tail{height:600px}</style>",
    "<header>Sticky header</header><main><div id=box><div class=pad></div>"
    "<button id=deep>Deep target</button><div class=tail></div></div></main>",
)


def test_a_popover_follows_its_target_while_a_scroll_container_scrolls(
    live: Live, page: Any
) -> None:
    head, body = SCROLLING_PAGE
    url = host_page(
        live,
        [{"title": "Deep inside", "selector": "#deep", "placement": Step.Placement.TOP}],
        body,
        head,
    )
    page.goto(url)
    card = page.locator(CARD)
    expect(card).to_contain_text("Deep inside")
    target = box(page.locator("#deep"))
    before = box(card)
    assert before["y"] + before["height"] <= target["y"]  # above its target, as authored

    page.evaluate("document.getElementById('box').scrollTop = 100")
    page.wait_for_function(f"() => Math.abs({CARD_TOP} - {before['y'] - 100}) < 2")
    moved = box(card)
    assert abs((moved["y"] - before["y"]) + 100) <= 2
    assert abs(moved["x"] - before["x"]) <= 1

    # Scrolled out of its container's visible part, the target takes its popover with it.
    page.evaluate("document.getElementById('box').scrollTop = 300")
    expect(card).to_be_hidden()
    page.evaluate("document.getElementById('box').scrollTop = 100")
    expect(card).to_be_visible()


def test_a_popover_never_sits_under_a_sticky_header(live: Live, page: Any) -> None:
    head, body = SCROLLING_PAGE
    url = host_page(
        live,
        [{"title": "Near the top", "selector": "#deep", "placement": Step.Placement.TOP}],
        body,
        head,
    )
    page.goto(url)
    card = page.locator(CARD)
    expect(card).to_contain_text("Near the top")
    # The target comes to rest 100 px below the header: the popover would fit above it in the
    # viewport, but only by sitting under the header.
    top = page.evaluate("document.getElementById('deep').getBoundingClientRect().top")
    page.evaluate(f"window.scrollTo(0, {top - 180})")
    target = page.locator("#deep")
    expect(target).to_be_in_viewport()
    page.wait_for_function(
        f"() => {CARD_TOP} >= document.getElementById('deep').getBoundingClientRect().bottom"
    )
    header = box(page.locator("header"))
    assert box(card)["y"] >= header["y"] + header["height"]  # flipped below, in full view

    # Scrolled under the header, the target cannot be seen, and neither can its popover.
    page.evaluate(f"window.scrollTo(0, {top - 30})")
    expect(card).to_be_hidden()
    page.evaluate(f"window.scrollTo(0, {top - 180})")
    expect(card).to_be_visible()


# Right to left ------------------------------------------------------------------------------


def rtl_dashboard(live: Live, page: Any) -> None:
    """The demo's dashboard as an Arabic host app has it: `<html lang="ar" dir="rtl">`, set
    the moment the element exists, before any script of the page runs (on every page)."""
    page.add_init_script(
        "new MutationObserver((_, observer) => { const html = document.documentElement;"
        " if (html) { html.dir = 'rtl'; html.lang = 'ar'; observer.disconnect(); } })"
        ".observe(document, {childList: true});"
    )
    page.goto(f"{live.demo_url}/dashboard")


def test_a_right_to_left_page_gets_a_mirrored_and_usable_widget(live: Live, page: Any) -> None:
    rtl_dashboard(live, page)
    assert page.evaluate("document.dir") == "rtl"
    card = page.locator(CARD)
    expect(card).to_contain_text("Welcome to Acme")
    card_box = box(card)
    close = box(page.get_by_role("button", name="Close Welcome tour"))
    assert close["x"] + close["width"] / 2 < card_box["x"] + card_box["width"] / 2  # left

    checklist = page.locator("milepost-widget [data-progress-bar]")
    expect(checklist).to_be_visible()
    assert box(checklist)["x"] < 100  # bottom-left: the mirror of bottom-right
    title = box(checklist.locator("button span").first)
    toggle = box(checklist.locator("button").first)
    assert title["x"] + title["width"] > toggle["x"] + toggle["width"] - 30  # starts right

    page.get_by_role("button", name="Next").click()
    expect(card).to_have_attribute("data-step", "1")
    back = box(page.get_by_role("button", name="Back"))
    forward = box(page.get_by_role("button", name="Next"))
    assert forward["x"] < back["x"]  # reading order runs right to left

    # A hotspot placed "right" of its target sits on the left in a right-to-left page.
    beacon = box(page.locator("milepost-widget [data-tooltip=help-tip]"))
    help_button = box(page.locator("#help-button"))
    assert beacon["x"] + beacon["width"] <= help_button["x"]

    page.get_by_role("button", name="Next").click()
    expect(card).to_have_attribute("data-step", "2")
    page.locator("#nav-campaigns").click()
    page.wait_for_url("**/campaigns")
    expect(card).to_have_attribute("data-step", "3")
    assert page.errors == []


# Reduced motion -----------------------------------------------------------------------------

MOTION = """() => {
  const root = document.querySelector('milepost-widget').shadowRoot;
  const style = (selector) => getComputedStyle(root.querySelector(selector));
  return {
    card: style('[role=dialog]').animationName,
    beacon: style('.h').animationName,
    bar: style('.r div').transitionDuration,
  };
}"""


@pytest.mark.parametrize(
    ("reduced_motion", "expected"),
    [
        ("reduce", {"card": "none", "beacon": "none", "bar": "0s"}),
        ("no-preference", {"card": "i", "beacon": "u", "bar": "0.4s"}),
    ],
)
def test_reduced_motion_turns_every_animation_off(
    live: Live, browser: Any, reduced_motion: str, expected: dict[str, str]
) -> None:
    context = browser.new_context(
        viewport={"width": 1200, "height": 800}, reduced_motion=reduced_motion
    )
    try:
        page = context.new_page()
        page.goto(f"{live.demo_url}/dashboard")
        expect(page.locator(CARD)).to_contain_text("Welcome to Acme")
        expect(page.locator("milepost-widget [data-tooltip=help-tip]")).to_be_visible()
        expect(page.locator("milepost-widget [role=progressbar]")).to_be_visible()
        assert page.evaluate(MOTION) == expected
    finally:
        context.close()
