"""Banners, empty-state guides and "one thing at a time" in real Chromium, on a hostile host
page: strict CSP (no inline styles: a nonce only for the page's own sheet), a sticky header,
hostile CSS aimed at the SDK's elements, and an app that navigates with the history API.
Screenshots go to docs/screenshots/."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from playwright.sync_api import expect

from engagement import services as engagement_services
from engagement.models import Rule
from onboarding import services
from onboarding.models import EndUser, Workspace
from tests.browser.conftest import (
    AXE,
    Live,
    events_named,
    in_thread,
    new_user_id,
    snippet,
    wait_for,
)
from tests.engagement.factories import MessageFactory, RuleFactory
from tests.factories import (
    BannerFactory,
    GuideFactory,
    StepFactory,
    WalkthroughFactory,
    WorkspaceFactory,
)

pytestmark = pytest.mark.browser

SHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"
CSP = "script-src 'self' http://127.0.0.1:* 'unsafe-inline'; style-src 'nonce-h0st'"
HEAD = (
    "<style nonce=h0st>"
    "body{margin:0;font:16px/1.5 Georgia,serif;background:#f8fafc}"
    "header{position:sticky;top:0;height:60px;display:flex;align-items:center;gap:16px;"
    "padding:0 24px;background:#1f2937;color:#fff;z-index:10}"
    "header button{font:inherit;padding:4px 12px}"
    "main{padding:24px}section{height:700px;border-bottom:1px solid #ddd}"
    # Hostile rules aimed at whatever a widget might add.
    "milepost-banner,milepost-guide{display:none!important;all:unset}"
    "div{color:red!important;font-size:30px}"
    "</style>"
)
BODY = (
    "<header><strong>Acme</strong><button id=menu>Menu</button>"
    "<span>Menu clicks: <output id=clicks>0</output></span>"
    "<a id=to-campaigns href=/app/campaigns>Campaigns</a></header>"
    "<main id=view><h1>Dashboard</h1><section>Charts</section><section>More charts</section>"
    "</main>"
    "<script>"
    "let clicks = 0;"
    "document.getElementById('menu').addEventListener('click', () => {"
    "  document.getElementById('clicks').textContent = String(++clicks); });"
    "document.getElementById('to-campaigns').addEventListener('click', (event) => {"
    "  event.preventDefault(); history.pushState({}, '', '/app/campaigns');"
    "  document.getElementById('view').innerHTML = '<h1>Campaigns</h1>';"
    # The list arrives after the navigation, as an app's data would.
    "  setTimeout(() => { const empty = document.createElement('div');"
    "    empty.id = 'empty-campaigns'; empty.className = 'empty';"
    "    document.getElementById('view').append(empty); }, 400); });"
    "window.violations = [];"
    "document.addEventListener('securitypolicyviolation', (e) => "
    "  window.violations.push(e.violatedDirective + ' ' + e.blockedURI));"
    "</script>"
)


def hostile_page(live: Live, workspace: Workspace, user_id: str | None = None) -> str:
    page_html = (
        f"<!doctype html><html lang=en><head><title>Host</title>{HEAD}"
        f"{snippet(live, workspace, user_id or new_user_id())}</head><body>{BODY}</body></html>"
    )
    live.host.add("/app", page_html, CSP)
    live.host.add("/app/campaigns", page_html, CSP)
    return f"{live.host_url}/app"


def workspace_for(live: Live) -> Workspace:
    return WorkspaceFactory(allowed_origins=[live.host_url], enforce_identity_verification=True)


def box(locator: Any) -> dict[str, float]:
    found = locator.bounding_box()
    assert found is not None
    return dict(found)


def shot(page: Any, name: str, full_page: bool = False) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def test_a_banner_pushes_the_page_down_and_the_sticky_header_stays_usable(
    live: Live, page: Any
) -> None:
    workspace = workspace_for(live)
    banner = BannerFactory(
        workspace=workspace,
        key="maintenance",
        page_url_pattern="/app",
        title="Scheduled maintenance",
        body_markdown="Acme is read-only on **Sunday 02:00-03:00 UTC**.",
        cta_label="Status page",
        cta_url="/app/status",
    )
    in_thread(lambda: services.content_publish(obj=banner))
    page.goto(hostile_page(live, workspace))

    bar = page.get_by_role("region", name="Scheduled maintenance")
    expect(bar).to_contain_text("read-only on Sunday")
    assert wait_for(lambda: events_named("$banner_viewed", banner="maintenance", version=1))
    height = box(bar)["height"]
    assert box(bar)["y"] == 0
    assert 30 <= height <= 80
    # Pushed, not covered: the header starts where the bar ends.
    assert abs(box(page.locator("header"))["y"] - height) <= 1
    shot(page, "banner-push-top")

    # Scrolled, the header sticks to the top as before, above nothing of ours, and works.
    page.mouse.wheel(0, 400)
    page.wait_for_function(
        "() => document.querySelector('header').getBoundingClientRect().top === 0"
    )
    menu = box(page.locator("#menu"))
    page.mouse.click(menu["x"] + menu["width"] / 2, menu["y"] + menu["height"] / 2)
    expect(page.locator("#clicks")).to_have_text("1")
    shot(page, "banner-push-top-scrolled")
    page.mouse.wheel(0, -400)

    # Keyboard: the close button is reachable and closes it for good.
    bar.get_by_role("button", name="Dismiss banner").focus()
    page.keyboard.press("Enter")
    expect(page.locator("milepost-banner")).to_have_count(0)
    assert wait_for(lambda: events_named("$banner_dismissed", banner="maintenance"))
    page.wait_for_function(
        "() => document.querySelector('header').getBoundingClientRect().top === 0"
    )
    assert page.evaluate("window.violations") == []
    assert page.errors == []


def test_a_bottom_overlay_banner_with_a_call_to_action(live: Live, page: Any) -> None:
    workspace = workspace_for(live)
    banner = BannerFactory(
        workspace=workspace,
        key="upgrade",
        position="bottom",
        mode="overlay",
        title="Your trial ends in 3 days",
        body_markdown="Keep your campaigns running.",
        cta_label="Choose a plan",
        cta_url="/app/campaigns",
    )
    in_thread(lambda: services.content_publish(obj=banner))
    page.goto(hostile_page(live, workspace))
    bar = page.get_by_role("region", name="Your trial ends in 3 days")
    expect(bar).to_be_visible()
    where = box(bar)
    assert abs(where["y"] + where["height"] - 800) <= 1  # on the window's bottom edge
    assert box(page.locator("header"))["y"] == 0  # overlaid: the page did not move
    shot(page, "banner-overlay-bottom")
    bar.get_by_role("button", name="Choose a plan").click()
    page.wait_for_url("**/app/campaigns")
    assert wait_for(lambda: events_named("$banner_clicked", banner="upgrade"))


def test_a_guide_appears_inside_its_element_after_an_app_navigation(live: Live, page: Any) -> None:
    workspace = workspace_for(live)
    guide = GuideFactory(
        workspace=workspace,
        key="no-campaigns",
        page_url_pattern="/app/campaigns",
        selector="#empty-campaigns",
        title="No campaigns yet",
        body_markdown="Campaigns you create show here. Start with a template.",
        cta_label="Create a campaign",
        cta_url="/app/campaigns?new=1",
    )
    missing = GuideFactory(
        workspace=workspace,
        key="never-there",
        page_url_pattern="/app/campaigns",
        selector="#not-on-this-page",
        wait_timeout_ms=1000,
    )
    in_thread(lambda: [services.content_publish(obj=g) for g in (guide, missing)])
    page.goto(hostile_page(live, workspace))
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    page.wait_for_timeout(500)
    expect(page.locator("milepost-guide")).to_have_count(0)  # not its page

    page.get_by_role("link", name="Campaigns").click()
    placed = page.locator("#empty-campaigns > milepost-guide")
    region = placed.get_by_role("region", name="No campaigns yet")
    expect(region).to_contain_text("Campaigns you create show here.")
    # Inside the element, in the page's flow: no overlay, nothing fixed.
    inside, host = box(region), box(page.locator("#empty-campaigns"))
    assert host["y"] <= inside["y"]
    assert inside["y"] + inside["height"] <= host["y"] + host["height"]
    assert wait_for(lambda: events_named("$guide_viewed", guide="no-campaigns", version=1))
    shot(page, "guide-inside-empty-state")
    reported = wait_for(
        lambda: events_named(
            "$content_target_missing", kind="guide", key="never-there", selector="#not-on-this-page"
        )
    )
    assert reported
    region.get_by_role("button", name="Create a campaign").click()
    page.wait_for_url("**/app/campaigns?new=1")
    assert wait_for(lambda: events_named("$guide_clicked", guide="no-campaigns"))
    assert page.evaluate("window.violations") == []


def auto_tour(workspace: Workspace) -> Any:
    walkthrough = WalkthroughFactory(workspace=workspace, key="welcome", name="Welcome tour")
    StepFactory(
        walkthrough=walkthrough,
        position=0,
        title="Welcome aboard",
        selector="",
        page_url_pattern="",
    )
    StepFactory(
        walkthrough=walkthrough,
        position=1,
        title="Your menu",
        selector="#menu",
        page_url_pattern="",
    )
    in_thread(lambda: services.content_publish(obj=walkthrough))
    return walkthrough


def visitor(workspace: Workspace, user_id: str) -> EndUser:
    found = wait_for(
        lambda: EndUser.objects.filter(workspace=workspace, external_id=user_id).first()
    )
    assert found is not None
    return found


def fire_message(workspace: Workspace, end_user: EndUser, style: str) -> Any:
    rule = RuleFactory(
        workspace=workspace,
        key=f"hello-{style}",
        message=MessageFactory(
            workspace=workspace, style=style, title="Import your contacts", body="Now."
        ),
    )
    return in_thread(
        lambda: engagement_services.rule_fire(rule=rule, end_user_id=end_user.pk, occurrence="1")
    )[0]


DIALOGS = "milepost-widget [role=dialog]"


def test_a_message_waits_while_the_tour_shows_then_takes_its_turn(live: Live, page: Any) -> None:
    workspace = workspace_for(live)
    auto_tour(workspace)
    user_id = new_user_id()
    page.goto(hostile_page(live, workspace, user_id))
    expect(page.locator(DIALOGS)).to_contain_text("Welcome aboard")
    delivery = fire_message(workspace, visitor(workspace, user_id), "modal")

    waiting = wait_for(
        lambda: events_named(
            "$content_waiting",
            kind="message",
            key=str(delivery.uid),
            reason="walkthrough",
            behind="welcome",
        )
    )
    assert waiting
    expect(page.locator(DIALOGS)).to_have_count(1)  # never two modals
    expect(page.locator(f"milepost-widget [data-message='{delivery.uid}']")).to_have_count(0)
    shot(page, "queue-tour-first")

    page.get_by_role("button", name="Close Welcome tour").click()
    message = page.locator(f"milepost-widget [data-message='{delivery.uid}']")
    expect(message).to_contain_text("Import your contacts")
    expect(page.locator(DIALOGS)).to_have_count(1)
    assert wait_for(lambda: events_named("$message_shown", message=str(delivery.uid)))
    shot(page, "queue-message-after-tour")

    # A tour the user starts takes the screen: the message steps back and returns after.
    page.evaluate("Milepost.start('welcome')")
    expect(page.locator(DIALOGS)).to_contain_text("Welcome aboard")
    expect(message).to_have_count(0)
    expect(page.locator(DIALOGS)).to_have_count(1)
    page.get_by_role("button", name="Close Welcome tour").click()
    expect(message).to_contain_text("Import your contacts")
    assert len(events_named("$message_shown", message=str(delivery.uid))) == 1
    assert page.errors == []


def test_a_waiting_banner_is_skipped_when_its_page_is_left(live: Live, page: Any) -> None:
    workspace = workspace_for(live)
    auto_tour(workspace)
    banner = BannerFactory(workspace=workspace, key="dash-only", page_url_pattern="/app")
    in_thread(lambda: services.content_publish(obj=banner))
    page.goto(hostile_page(live, workspace))
    expect(page.locator(DIALOGS)).to_contain_text("Welcome aboard")
    assert wait_for(
        lambda: events_named(
            "$content_waiting", kind="banner", key="dash-only", reason="walkthrough"
        )
    )
    expect(page.locator("milepost-banner")).to_have_count(0)  # one thing at a time
    page.evaluate("document.getElementById('to-campaigns').click()")  # the app navigates
    assert wait_for(
        lambda: events_named("$content_skipped", kind="banner", key="dash-only", reason="page")
    )
    assert events_named("$banner_viewed") == []


def test_the_demo_first_visit_shows_one_thing_at_a_time(live: Live, page: Any) -> None:
    in_thread(lambda: call_command("seed_demo_engagement", stdout=StringIO()))
    page.goto(f"{live.demo_url}/dashboard")
    tour = page.locator(DIALOGS)
    expect(tour).to_contain_text("Welcome to Acme")
    # The "welcome" rule fires when the journey starts, in the background (with a broker, a
    # worker fires it): fire it here too; it fires at most once.
    end_user = visitor(live.demo, str(page.locator(".who code").inner_text()))
    rule = Rule.objects.get(workspace=live.demo, key="welcome")
    in_thread(
        lambda: engagement_services.rule_fire(rule=rule, end_user_id=end_user.pk, occurrence="once")
    )
    # The welcome message (style "banner") and the maintenance banner wait for the tour.
    assert wait_for(lambda: events_named("$content_waiting", kind="message", reason="walkthrough"))
    assert wait_for(
        lambda: events_named(
            "$content_waiting", kind="banner", key="maintenance", reason="walkthrough"
        )
    )
    expect(page.locator("milepost-banner")).to_have_count(0)
    expect(page.locator("milepost-widget .c.k")).to_have_count(0)  # no card under the modal
    page.get_by_role("button", name="Close Welcome tour").click()

    # Then one bar at a time: the welcome message first (a message outranks a banner).
    welcome = page.locator("milepost-banner").get_by_role("region", name=re.compile("^Welcome, "))
    expect(welcome).to_be_visible()
    expect(page.locator("milepost-banner")).to_have_count(1)
    shot(page, "demo-welcome-banner-after-tour")
    welcome.get_by_role("button", name="Dismiss banner").click()
    maintenance = page.get_by_role("region", name="Sending pauses on Sunday, 02:00-03:00 UTC")
    expect(maintenance).to_be_visible()
    expect(page.locator("milepost-banner")).to_have_count(1)
    shot(page, "demo-maintenance-banner")

    # The empty contact list holds its guide; its call to action imports.
    page.goto(f"{live.demo_url}/contacts")
    guide = page.locator("#contacts-empty").get_by_role("region", name="Your audience starts here")
    expect(guide).to_be_visible()
    shot(page, "demo-contacts-guide")
    guide.get_by_role("button", name="Import contacts").click()
    expect(page.locator("#contact-list")).to_contain_text("Ada Lovelace")
    expect(page.locator("milepost-guide")).to_have_count(0)
    assert wait_for(lambda: events_named("$guide_clicked", guide="no-contacts"))


def test_right_to_left_and_accessible(live: Live, page: Any) -> None:
    workspace = workspace_for(live)
    banner = BannerFactory(
        workspace=workspace, title="تحديث", body_markdown="نص", cta_label="اقرأ", cta_url="/app"
    )
    guide = GuideFactory(
        workspace=workspace, selector="#view", title="لا توجد حملات", cta_label="ابدأ"
    )
    in_thread(lambda: [services.content_publish(obj=o) for o in (banner, guide)])
    html = (
        f"<!doctype html><html lang=ar dir=rtl><head><title>Host</title>{HEAD}"
        f"{snippet(live, workspace, new_user_id())}</head><body>{BODY}</body></html>"
    )
    live.host.add("/app", html, CSP)
    page.goto(f"{live.host_url}/app")
    bar = page.get_by_role("region", name="تحديث")
    expect(bar).to_be_visible()
    # Mirrored: the close button sits on the left, the text on the right.
    assert (
        box(bar.get_by_role("button", name="Dismiss banner"))["x"]
        < box(bar.get_by_role("button", name="اقرأ"))["x"]
    )
    region = page.locator("#view milepost-guide").get_by_role("region", name="لا توجد حملات")
    expect(region).to_be_visible()
    close = box(region.get_by_role("button", name="Dismiss guide"))
    assert close["x"] < box(region)["x"] + 60  # the close button in the guide's left corner
    shot(page, "surfaces-rtl", full_page=True)
    page.evaluate(AXE.read_text())
    result = page.evaluate(
        "async () => { const r = await axe.run("
        "{include: [['milepost-banner'], ['milepost-guide']]});"
        " return r.violations.map(v => ({id: v.id, nodes: v.nodes.map(n => n.html)})); }"
    )
    assert result == []
    assert page.evaluate("window.violations") == []
