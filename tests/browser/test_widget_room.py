"""The widget never hides what a step points at: its own checklist and toasts make room for
the step's target and popover, and popovers leave a scroll container for the viewport's room
without going under a sticky header, pointing at their target with an arrow. Measured in
Chromium at a phone's size and a laptop's."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from onboarding import services
from onboarding.models import Step, Walkthrough, Workspace
from tests.browser.conftest import Live, in_thread, new_user_id, screen, snippet
from tests.factories import (
    JourneyFactory,
    MilestoneFactory,
    ProgressBarFactory,
    ProgressBarItemFactory,
    StepFactory,
    WalkthroughFactory,
    WorkspaceFactory,
)

pytestmark = pytest.mark.browser

CARD = "milepost-widget [role=dialog]"
MOBILE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
SIZES = [pytest.param(MOBILE, id="mobile"), pytest.param(DESKTOP, id="desktop")]

# Boxes of what a person sees, in viewport pixels; the widget's surfaces with their visibility.
BOXES = """(selector) => {
  const shadow = document.querySelector('milepost-widget').shadowRoot;
  const rect = (el) => { const r = el.getBoundingClientRect();
    return {left: r.left, top: r.top, right: r.right, bottom: r.bottom}; };
  const card = shadow.querySelector('[role=dialog][data-step]');
  return {
    target: rect(document.querySelector(selector)),
    card: card && rect(card),
    arrow: card && rect(card.querySelector('.a')),
    surfaces: [...shadow.querySelectorAll('.g, .t')].map((el) => ({
      kind: el.className, shown: getComputedStyle(el).visibility === 'visible', ...rect(el) })),
  };
}"""


def overlap(a: dict[str, float], b: dict[str, float]) -> float:
    width = min(a["right"], b["right"]) - max(a["left"], b["left"])
    height = min(a["bottom"], b["bottom"]) - max(a["top"], b["top"])
    return max(0.0, width) * max(0.0, height)


def workspace_for(live: Live) -> Workspace:
    return WorkspaceFactory(allowed_origins=[live.host_url], enforce_identity_verification=True)


def publish_tour(workspace: Workspace, **step: Any) -> Walkthrough:
    walkthrough = WalkthroughFactory(workspace=workspace, name="Room tour")
    StepFactory(walkthrough=walkthrough, position=0, page_url_pattern="", **step)
    StepFactory(walkthrough=walkthrough, position=1, page_url_pattern="", selector="")
    in_thread(lambda: services.content_publish(obj=walkthrough))
    return walkthrough


def open_host_page(
    live: Live, browser: Any, workspace: Workspace, viewport: dict[str, int], head: str, body: str
) -> tuple[Any, Any]:
    """The customer's page (its own `head` and `body`) in a new browser of the given size:
    (context, page)."""
    live.host.add(
        "/app",
        f"<!doctype html><html lang=en><head><title>Host</title>{head}"
        f"{snippet(live, workspace, new_user_id())}</head><body>{body}</body></html>",
    )
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.goto(f"{live.host_url}/app")
    return context, page


def publish_checklist(workspace: Workspace) -> None:
    journey = JourneyFactory(workspace=workspace, name="Getting started")
    bar = ProgressBarFactory(journey=journey, title="Getting started", style="checklist")
    for position, label in enumerate(["Send a message", "Import contacts", "Invite the team"]):
        milestone = MilestoneFactory(
            journey=journey, position=position, event_name=f"did_{position}", name=label
        )
        ProgressBarItemFactory(progress_bar=bar, milestone=milestone, label=label)
    in_thread(lambda: services.content_publish(obj=journey))
    in_thread(lambda: services.content_publish(obj=bar))


# A phone-sized page whose main action sits at the bottom right, where the checklist is.
IMPORT_PAGE = (
    "<meta name=viewport content='width=device-width'>"
    "<style>body{margin:0;font:16px sans-serif}main{padding:16px}"
    "#import{position:fixed;right:16px;bottom:24px;padding:12px 18px}</style>",
    "<main><h1>Contacts</h1><p>Nobody here yet.</p>"
    "<button id=import>Import contacts</button></main>",
)
GEAR_PAGE = (
    "<style>body{margin:0}#gear{position:absolute;top:8px;right:4px;width:32px;height:32px}"
    "</style>",
    "<button id=gear aria-label=Settings>⚙</button>",
)


@pytest.mark.parametrize("viewport", SIZES)
def test_the_checklist_and_toasts_make_room_for_a_step_and_come_back_after_it(
    live: Live, browser: Any, viewport: dict[str, int]
) -> None:
    workspace = workspace_for(live)
    publish_checklist(workspace)
    publish_tour(workspace, title="Import here", selector="#import", placement=Step.Placement.AUTO)
    context, page = open_host_page(live, browser, workspace, viewport, *IMPORT_PAGE)
    expect(page.locator(CARD)).to_contain_text("Import here")
    expect(page.locator("milepost-widget [data-progress-bar]")).to_be_attached()
    # A milestone reached while the step shows: its celebration toast must make room too.
    page.evaluate("Milepost.track('did_0')")
    expect(page.locator("milepost-widget .t")).to_be_attached()
    page.wait_for_timeout(400)  # the next position update (every 250 ms at the latest)

    seen = page.evaluate(BOXES, "#import")
    screen(page, f"room-{viewport['width']}x{viewport['height']}")
    assert {s["kind"].split()[0] for s in seen["surfaces"]} == {"g", "t"}
    for surface in seen["surfaces"]:
        if surface["shown"]:
            assert overlap(surface, seen["target"]) == 0, surface
            assert overlap(surface, seen["card"]) == 0, surface
    assert overlap(seen["card"], seen["target"]) == 0  # the popover beside its target

    page.keyboard.press("Escape")
    expect(page.locator(CARD)).to_have_count(0)
    checklist = page.locator("milepost-widget [data-progress-bar]")
    expect(checklist).to_be_visible()  # back once the step is gone
    expect(checklist).to_contain_text("Import contacts")
    context.close()


STICKY_PAGE = (
    "<style>body{margin:0;font:16px sans-serif}"
    "header{position:sticky;top:0;height:64px;background:#1f2937;color:#fff;z-index:5}"
    "main{height:2600px;padding:400px 16px 0}"
    "#box{height:120px;overflow:auto;border:1px solid #999;max-width:600px}"
    ".pad{height:300px}.tail{height:600px}</style>",
    "<header>Acme</header><main><div id=box><div class=pad></div>"
    "<button id=deep>Deep target</button><div class=tail></div></div></main>",
)


@pytest.mark.parametrize("viewport", SIZES)
def test_below_a_sticky_header_in_a_scroll_container_the_popover_flips_out_of_the_container(
    live: Live, browser: Any, viewport: dict[str, int]
) -> None:
    workspace = workspace_for(live)
    publish_tour(workspace, title="Deep inside", selector="#deep", placement=Step.Placement.TOP)
    context, page = open_host_page(live, browser, workspace, viewport, *STICKY_PAGE)
    expect(page.locator(CARD)).to_contain_text("Deep inside")

    # The container scrolled so the target is 30 px below its top, the page so that it comes to
    # rest 4 px below the 64 px header: no room above, all the room below, outside the box.
    page.evaluate(
        "() => { const box = document.getElementById('box');"
        " box.scrollTop = 300 - 30;"
        " const top = document.getElementById('deep').getBoundingClientRect().top;"
        " window.scrollBy(0, top - 68); }"
    )
    page.wait_for_function(
        "() => { const card = document.querySelector('milepost-widget').shadowRoot"
        ".querySelector('[role=dialog]').getBoundingClientRect();"
        " return card.top >= document.getElementById('deep').getBoundingClientRect().bottom; }"
    )
    seen = page.evaluate(BOXES, "#deep")
    box = page.evaluate(
        "() => { const r = document.getElementById('box').getBoundingClientRect();"
        " return {top: r.top, bottom: r.bottom}; }"
    )
    screen(page, f"sticky-{viewport['width']}x{viewport['height']}")
    card, target, arrow = seen["card"], seen["target"], seen["arrow"]
    assert abs(target["top"] - 68) <= 1
    assert card["top"] >= 64  # never on the header
    assert card["bottom"] <= viewport["height"]  # never clipped by the viewport
    assert card["bottom"] > box["bottom"]  # out of the container's clip area, into the room below
    expect(page.locator(CARD)).to_be_visible()
    # The arrow sticks out of the card's top edge towards the target, under its centre.
    assert arrow["top"] < card["top"] < arrow["bottom"]
    assert target["left"] < (arrow["left"] + arrow["right"]) / 2 < target["right"]
    context.close()


def test_at_the_viewports_edge_the_popover_shifts_in_and_its_arrow_still_points(
    live: Live, browser: Any
) -> None:
    workspace = workspace_for(live)
    publish_tour(workspace, title="Settings", selector="#gear", placement=Step.Placement.BOTTOM)
    context, page = open_host_page(live, browser, workspace, MOBILE, *GEAR_PAGE)
    expect(page.locator(CARD)).to_contain_text("Settings")
    page.wait_for_timeout(300)
    seen = page.evaluate(BOXES, "#gear")
    card, target, arrow = seen["card"], seen["target"], seen["arrow"]
    assert card["right"] <= MOBILE["width"] - 8 + 0.5  # shifted in, 8 px from the edge
    assert card["left"] >= 8 - 0.5
    assert card["top"] >= target["bottom"]  # below, as authored
    assert arrow["top"] < card["top"]
    assert target["left"] < (arrow["left"] + arrow["right"]) / 2 < target["right"]
    context.close()
