"""The SDK on purpose-made customer pages (another origin than Milepost) and on the demo host:
waiting for targets, hostile CSS, keyboard use, accessibility, socket failures, offline."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import expect

from onboarding import services
from onboarding.models import Event, Step, Walkthrough, Workspace
from tests.browser.conftest import (
    AXE,
    Live,
    events_named,
    in_thread,
    new_user_id,
    snippet,
    wait_for,
)
from tests.factories import StepFactory, WalkthroughFactory, WorkspaceFactory

pytestmark = pytest.mark.browser

CARD = "milepost-widget [role=dialog]"


def host_workspace(live: Live) -> Workspace:
    return WorkspaceFactory(allowed_origins=[live.host_url], enforce_identity_verification=True)


def publish_tour(workspace: Workspace, steps: list[dict[str, Any]], **kwargs: Any) -> Walkthrough:
    walkthrough = WalkthroughFactory(workspace=workspace, name="Test tour", **kwargs)
    for position, step in enumerate(steps):
        StepFactory(walkthrough=walkthrough, position=position, page_url_pattern="", **step)
    in_thread(lambda: services.content_publish(obj=walkthrough))
    return walkthrough


def host_page(live: Live, workspace: Workspace, body: str, head: str = "") -> str:
    live.host.add(
        "/app",
        f"<!doctype html><html lang=en><head><title>Host</title>{head}"
        f"{snippet(live, workspace, new_user_id())}</head><body>{body}</body></html>",
    )
    return f"{live.host_url}/app"


def test_a_target_that_appears_two_seconds_late_is_waited_for(live: Live, page: Any) -> None:
    workspace = host_workspace(live)
    publish_tour(
        workspace, [{"title": "Late target", "selector": "#late", "wait_timeout_ms": 6000}]
    )
    url = host_page(
        live,
        workspace,
        "<main><h1>Slow app</h1></main><script>setTimeout(() => {"
        "const b = document.createElement('button'); b.id = 'late'; b.textContent = 'Late';"
        "document.querySelector('main').append(b); }, 2000);</script>",
    )
    page.goto(url)
    expect(page.locator(CARD)).to_contain_text("Late target", timeout=8000)
    assert wait_for(lambda: events_named("$step_viewed", step=0))
    assert events_named("$step_target_missing") == []


def test_hostile_host_css_does_not_break_the_widget(live: Live, page: Any) -> None:
    workspace = host_workspace(live)
    publish_tour(
        workspace,
        [
            {"title": "Still here", "selector": ""},
            {"title": "Anchored", "selector": "#target", "spotlight": True},
        ],
    )
    hostile = "<style>* { all: unset } div { display: none !important }</style>"
    page.goto(host_page(live, workspace, "<p><button id=target>Target</button></p>", hostile))
    card = page.locator(CARD)
    expect(card).to_contain_text("Still here")
    box = card.bounding_box()
    assert box is not None
    assert box["width"] > 200
    assert box["height"] > 60
    assert card.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(255, 255, 255)"
    page.get_by_role("button", name="Next").click()
    expect(card).to_contain_text("Anchored")
    page.get_by_role("button", name="Done").click()
    assert wait_for(lambda: events_named("$walkthrough_completed"))


def test_the_keyboard_alone_completes_a_tour(live: Live, page: Any) -> None:
    workspace = host_workspace(live)
    publish_tour(
        workspace,
        [
            {"title": "Welcome", "selector": ""},
            {"title": "The search", "selector": "#search"},
            {
                "title": "Open settings",
                "selector": "#settings",
                "advance_on": Step.Advance.TARGET_CLICK,
            },
        ],
    )
    body = (
        "<input id=search aria-label=Search><button id=settings type=button>Settings</button>"
        "<button id=start type=button>Start</button>"
    )
    page.goto(host_page(live, workspace, body))
    card = page.locator(CARD)
    expect(card).to_contain_text("Welcome")
    expect(page.get_by_role("button", name="Next")).to_be_focused()
    page.keyboard.press("Enter")
    expect(card).to_contain_text("The search")
    page.keyboard.press("ArrowLeft")
    expect(card).to_contain_text("Welcome")
    page.keyboard.press("ArrowRight")
    expect(card).to_contain_text("The search")
    page.keyboard.press("ArrowRight")
    expect(card).to_contain_text("Open settings")
    page.keyboard.press("Enter")  # "Show me" activates the target for keyboard users
    expect(card).to_have_count(0)
    assert wait_for(lambda: events_named("$walkthrough_completed"))


def test_escape_dismisses_a_tour_and_the_dismissal_is_recorded(live: Live, page: Any) -> None:
    workspace = host_workspace(live)
    publish_tour(workspace, [{"title": "One", "selector": ""}, {"title": "Two", "selector": ""}])
    page.goto(host_page(live, workspace, "<main>App</main>"))
    expect(page.locator(CARD)).to_contain_text("One")
    page.keyboard.press("Escape")
    expect(page.locator(CARD)).to_have_count(0)
    assert wait_for(lambda: events_named("$walkthrough_dismissed", step=0))


def test_escape_dismisses_a_tour_after_a_click_on_the_page(live: Live, page: Any) -> None:
    workspace = host_workspace(live)
    publish_tour(
        workspace,
        [{"title": "Search here", "selector": "#search"}, {"title": "Two", "selector": ""}],
    )
    page.goto(host_page(live, workspace, "<main><p id=text>App</p><input id=search></main>"))
    expect(page.locator(CARD)).to_contain_text("Search here")
    page.locator("#text").click()  # focus leaves the card for the host page
    page.keyboard.press("Escape")
    expect(page.locator(CARD)).to_have_count(0)
    assert wait_for(lambda: events_named("$walkthrough_dismissed", step=0))


def test_escape_leaves_focus_in_the_field_the_person_moved_it_to(live: Live, page: Any) -> None:
    workspace = host_workspace(live)
    publish_tour(
        workspace, [{"title": "One", "selector": "#title"}, {"title": "Two", "selector": ""}]
    )
    body = (
        "<main><h1 id=title>Contacts</h1><button id=new autofocus>New contact</button>"
        "<input id=search aria-label=Search></main>"
    )
    page.goto(host_page(live, workspace, body))
    # The step took focus from the page's button (where Esc from the card would put it back).
    expect(page.get_by_role("button", name="Next")).to_be_focused()
    page.locator("#search").click()
    page.keyboard.type("inv")

    page.keyboard.press("Escape")

    expect(page.locator(CARD)).to_have_count(0)
    expect(page.locator("#search")).to_be_focused()  # not pulled away to where it was before
    expect(page.locator("#search")).to_have_value("inv")


def test_escape_from_the_card_puts_focus_back_where_it_was(live: Live, page: Any) -> None:
    workspace = host_workspace(live)
    publish_tour(workspace, [{"title": "One", "selector": "#title"}])
    body = "<main><h1 id=title>Contacts</h1><button id=new autofocus>New contact</button></main>"
    page.goto(host_page(live, workspace, body))
    expect(page.get_by_role("button", name="Done")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator(CARD)).to_have_count(0)
    expect(page.locator("#new")).to_be_focused()


def test_escape_the_host_page_handles_itself_leaves_the_step_alone(live: Live, page: Any) -> None:
    workspace = host_workspace(live)
    publish_tour(workspace, [{"title": "Search here", "selector": "#search"}])
    # The host's own dialog closes on Esc and says so with preventDefault().
    head = (
        "<script>addEventListener('keydown', (event) => { if (event.key === 'Escape' &&"
        " !document.getElementById('menu').hidden) { event.preventDefault();"
        " document.getElementById('menu').hidden = true; } }, true);</script>"
    )
    body = "<main><input id=search aria-label=Search><div id=menu>Host menu</div></main>"
    page.goto(host_page(live, workspace, body, head))
    expect(page.locator(CARD)).to_contain_text("Search here")
    page.locator("#search").click()

    page.keyboard.press("Escape")  # the host's: its menu closes, the step stays
    expect(page.locator("#menu")).to_be_hidden()
    expect(page.locator(CARD)).to_contain_text("Search here")
    page.keyboard.press("Escape")  # nobody else's: the step is dismissed
    expect(page.locator(CARD)).to_have_count(0)
    assert wait_for(lambda: events_named("$walkthrough_dismissed", step=0))


def test_axe_finds_no_accessibility_violation_in_the_widget(live: Live, page: Any) -> None:
    page.goto(f"{live.demo_url}/dashboard")
    expect(page.locator(CARD)).to_be_visible()
    page.get_by_role("button", name="Next").click()
    expect(page.locator("milepost-widget .s")).to_be_visible()
    # The spotlight dims (and blocks the pointer on) everything else: open the hint by keyboard.
    page.locator("milepost-widget [data-tooltip=help-tip]").focus()
    page.keyboard.press("Enter")
    expect(page.locator("milepost-widget .c[data-tooltip=help-tip]")).to_be_visible()
    # Contrast is judged on what the user reads: once the cards have faded in, not mid-fade.
    page.evaluate(
        "() => Promise.all(document.querySelector('milepost-widget').shadowRoot.getAnimations()"
        ".filter(a => a.effect.getTiming().iterations !== Infinity).map(a => a.finished))"
    )
    page.evaluate(AXE.read_text())
    result = page.evaluate(
        "async () => { const r = await axe.run({include: [['milepost-widget']]});"
        " return {violations: r.violations.map(v => ({id: v.id, nodes: v.nodes.map(n => n.html)})),"
        " checked: r.passes.filter(p => p.nodes.some(n => n.html.includes('aria-label')))"
        ".map(p => p.id)}; }"
    )
    assert result["violations"] == []
    assert "button-name" in result["checked"]  # axe did look inside the shadow root


def test_with_the_socket_blocked_the_sdk_falls_back_to_http(live: Live, page: Any) -> None:
    page.route_web_socket("**/ws/widget/**", lambda ws: ws.close())
    page.goto(f"{live.demo_url}/dashboard")
    card = page.locator(CARD)
    expect(card).to_contain_text("Welcome to Acme", timeout=15_000)
    expect(page.locator("milepost-widget li[data-milestone=installed-js]")).to_be_visible()
    page.get_by_role("button", name="Next").click()
    expect(card).to_have_attribute("data-step", "1")
    assert wait_for(lambda: events_named("$step_viewed", step=1))
    assert all(e.source == "widget" for e in Event.objects.all())


def test_over_http_a_refused_identity_is_told_to_the_host_and_the_sdk_stops(
    live: Live, page: Any
) -> None:
    workspace = host_workspace(live)
    user = new_user_id()
    live.host.add(
        "/app",
        "<!doctype html><html lang=en><head><title>Host</title>"
        f'<script async src="{live.milepost_url}/static/milepost/milepost.js" '
        f'data-key="{workspace.publishable_key}"></script>'
        "<script>window.milepost = window.milepost || [];"
        'milepost.push(["on", "error", (e) => { document.body.dataset.error = e.code; }]);'
        f'milepost.push(["identify", "{user}", {{}}, {{userHash: "{"0" * 64}"}}]);'
        "</script></head><body><main>Reports</main></body></html>",
    )
    bootstraps: list[str] = []
    page.on("request", lambda r: bootstraps.append(r.url) if "/bootstrap" in r.url else None)
    page.route_web_socket("**/ws/widget/**", lambda ws: ws.close())
    page.goto(f"{live.host_url}/app")
    expect(page.locator("body[data-error=invalid_user_hash]")).to_have_count(1, timeout=15_000)
    page.wait_for_timeout(3000)  # its backoff would have tried again by now
    assert len(bootstraps) == 1
    page.evaluate("Milepost.track('report_exported')")
    page.wait_for_timeout(500)
    assert events_named("report_exported") == []
    assert page.errors == []


def test_events_made_offline_are_stored_exactly_once_after_reconnecting(
    live: Live, page: Any
) -> None:
    page.goto(f"{live.demo_url}/dashboard")
    expect(page.locator(CARD)).to_be_visible()
    page.get_by_role("button", name="Close Welcome tour").click()
    page.context.set_offline(True)
    for index in range(3):
        page.evaluate(f"Milepost.track('offline_click', {{n: {index}}})")
    stored = json.loads(
        page.evaluate("Object.entries(localStorage).find(([k]) => k.includes('outbox'))[1]")
    )
    assert [e["name"] for e in stored][-3:] == ["offline_click"] * 3
    page.context.set_offline(False)
    assert wait_for(lambda: len(events_named("offline_click")) == 3, timeout=20)
    page.reload()  # a reload re-sends nothing twice
    expect(page.locator("milepost-widget [data-progress-bar]")).to_be_visible()
    page.wait_for_timeout(1000)
    clicks = events_named("offline_click")
    assert sorted(e.properties["n"] for e in clicks) == [0, 1, 2]
    assert page.evaluate("Object.keys(localStorage).filter(k => k.includes('outbox'))") == []
