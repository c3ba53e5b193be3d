"""The resource center and the checklist celebration in real Chromium, on a hostile host page:
strict CSP (no inline styles; a nonce only for the page's own sheet), a sticky header, hostile
CSS and an app that navigates with the history API. Screenshots go to docs/screenshots/."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from onboarding import services
from onboarding.models import JourneyStart, Workspace
from tests.browser.conftest import (
    AXE,
    Live,
    events_named,
    in_thread,
    new_user_id,
    snippet,
    wait_for,
)
from tests.factories import (
    EndUserFactory,
    JourneyFactory,
    JourneyProgressFactory,
    MilestoneCompletionFactory,
    MilestoneFactory,
    ProgressBarFactory,
    ResourceItemFactory,
    ResourceSectionFactory,
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
    "main{padding:24px}section{height:400px;border-bottom:1px solid #ddd}"
    # Hostile rules aimed at whatever a widget might add.
    "button,input,a{all:unset!important;color:red!important}"
    "div,ul,li{display:inline!important;font-size:30px}"
    "</style>"
)
BODY = (
    "<header><strong>Acme</strong><a id=to-campaigns href=/app/campaigns>Campaigns</a></header>"
    "<main id=view><h1>Dashboard</h1><section>Charts</section></main>"
    "<script>"
    "document.getElementById('to-campaigns').addEventListener('click', (event) => {"
    "  event.preventDefault(); history.pushState({}, '', '/app/campaigns');"
    "  document.getElementById('view').innerHTML = '<h1>Campaigns</h1>'; });"
    "window.violations = [];"
    "document.addEventListener('securitypolicyviolation', (e) => "
    "  window.violations.push(e.violatedDirective + ' ' + e.blockedURI));"
    "</script>"
)
LAUNCHER = "milepost-widget [data-resource-center]"
PANEL = "milepost-widget [data-resource-panel]"
CARD = "milepost-widget .c[role=dialog]"


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def hostile_page(live: Live, workspace: Workspace, user_id: str, direction: str = "ltr") -> str:
    html = (
        f"<!doctype html><html lang=en dir={direction}><head><title>Host</title>{HEAD}"
        f"{snippet(live, workspace, user_id)}</head><body>{BODY}</body></html>"
    )
    live.host.add("/app", html, CSP)
    live.host.add("/app/campaigns", html, CSP)
    return f"{live.host_url}/app"


def authored(live: Live, position: str = "bottom-right") -> Workspace:
    """A workspace with a three-milestone checklist, a tour to replay, and a resource center
    listing both, a link, an article and an announcement."""
    workspace = WorkspaceFactory(
        allowed_origins=[live.host_url], enforce_identity_verification=True
    )
    journey = JourneyFactory(
        workspace=workspace, key="setup", name="Set up Acme", starts_on=JourneyStart.FIRST_SEEN
    )
    for position_index, (key, name) in enumerate(
        [("invited", "Invite a teammate"), ("imported", "Import contacts"), ("sent", "Send")]
    ):
        MilestoneFactory(
            journey=journey, key=key, name=name, position=position_index, event_name=key
        )
    tour = WalkthroughFactory(workspace=workspace, key="welcome", name="Welcome tour")
    tour.auto_start = False
    tour.save(update_fields=["auto_start"])
    StepFactory(walkthrough=tour, position=0, selector="", page_url_pattern="", title="Hello!")
    bar = ProgressBarFactory(workspace=workspace, journey=journey, key="setup-bar", title="Setup")
    section = ResourceSectionFactory(
        workspace=workspace,
        key="getting-started",
        title="Getting started",
        launcher_label="Help",
        position=position,
    )
    help_section = ResourceSectionFactory(
        workspace=workspace, key="help", title="Help and news", priority=-1
    )
    ResourceItemFactory(
        section=section, key="setup", kind="checklist", title="", url="", progress_bar=bar
    )
    ResourceItemFactory(
        section=section, key="replay", kind="tour", title="", url="", walkthrough=tour
    )
    ResourceItemFactory(
        section=help_section,
        key="invite-guide",
        kind="article",
        title="How to invite your team",
        url="",
        body_markdown="Open **Settings → Team** and send invitations.",
    )
    ResourceItemFactory(
        section=help_section, key="docs", kind="link", title="Help center", url="/app/help"
    )
    ResourceItemFactory(
        section=help_section,
        key="news",
        kind="announcement",
        title="Campaign templates are here",
        url="",
        published_on=date(2026, 11, 30),
    )

    def publish() -> None:
        for obj in (journey, tour, bar, section, help_section):
            services.content_publish(obj=obj)

    in_thread(publish)
    return workspace


def open_panel(page: Any) -> Any:
    page.locator(LAUNCHER).click()
    panel = page.locator(PANEL)
    expect(panel).to_be_visible()
    return panel


def test_the_resource_center_opens_searches_and_replays_a_tour(live: Live, page: Any) -> None:
    workspace = authored(live)
    page.goto(hostile_page(live, workspace, new_user_id()))
    launcher = page.locator(LAUNCHER)
    expect(launcher).to_have_text("?Help")
    # Beside the checklist bar in the same corner, not on it.
    bar = page.locator("milepost-widget [data-progress-bar=setup-bar]").bounding_box()
    spot = launcher.bounding_box()
    assert bar is not None
    assert spot is not None
    assert spot["x"] + spot["width"] <= bar["x"]

    page.evaluate("Milepost.track('invited')")
    expect(page.locator("milepost-widget [data-progress-bar]")).to_contain_text("1 of 3")

    panel = open_panel(page)
    expect(panel).to_have_attribute("aria-modal", "true")
    expect(page.get_by_role("dialog", name="Help")).to_be_visible()
    checklist = panel.locator("[data-resource=setup]")
    expect(checklist).to_contain_text("Setup")
    expect(checklist).to_contain_text("1 of 3 done")
    expect(checklist.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "33")
    expect(panel.locator("[data-resource=news]")).to_contain_text("Nov 30, 2026")
    expect(panel.get_by_role("searchbox", name="Search help")).to_be_focused()
    assert wait_for(lambda: events_named("$resource_center_opened"))
    shot(page, "resource-center-open")
    page.evaluate(AXE.read_text())
    violations = page.evaluate(
        "async () => (await axe.run({include: [['milepost-widget']]}))"
        ".violations.map(v => v.id + ': ' + v.nodes.map(n => n.html).join(' | '))"
    )
    assert violations == []

    page.keyboard.type("invite")
    expect(panel.locator("li")).to_have_count(1)
    expect(panel.locator("li")).to_contain_text("How to invite your team")
    assert wait_for(lambda: events_named("$resource_center_searched", query="invite", results=1))
    panel.get_by_role("button", name="How to invite your team").click()
    expect(panel).to_contain_text("Open Settings → Team")
    assert wait_for(lambda: events_named("$resource_clicked", item="invite-guide"))
    shot(page, "resource-center-search")

    panel.get_by_role("searchbox").fill("zebra")
    expect(panel).to_contain_text("Nothing matches “zebra”.")

    # Escape closes and gives focus back to the launcher; Enter opens it again.
    panel.get_by_role("searchbox").focus()
    page.keyboard.press("Escape")
    expect(page.locator(PANEL)).to_have_count(0)
    assert page.evaluate(
        "document.querySelector('milepost-widget').shadowRoot.activeElement"
        ".hasAttribute('data-resource-center')"
    )
    page.keyboard.press("Enter")
    panel = page.locator(PANEL)
    expect(panel).to_be_visible()
    # Tab stays inside the dialog.
    for _ in range(12):
        page.keyboard.press("Tab")
    assert page.evaluate(
        "!!document.querySelector('milepost-widget').shadowRoot.activeElement"
        ".closest('[data-resource-panel]')"
    )

    panel.get_by_role("searchbox").fill("")
    panel.get_by_role("button", name="Welcome tour").click()
    expect(page.locator(PANEL)).to_have_count(0)
    expect(page.locator(CARD)).to_contain_text("Hello!")
    assert wait_for(lambda: events_named("$resource_clicked", item="replay", kind="tour"))
    assert wait_for(lambda: events_named("$walkthrough_started", walkthrough="welcome"))
    shot(page, "resource-center-replayed-tour")

    # SPA navigation keeps the launcher (no URL rule) and nothing broke the CSP.
    page.keyboard.press("Escape")
    page.locator("#to-campaigns").click()
    expect(page.locator(LAUNCHER)).to_be_visible()
    assert page.evaluate("window.violations") == []
    assert page.errors == []


def test_finishing_the_checklist_celebrates_and_shows_peer_comparison(
    live: Live, page: Any
) -> None:
    workspace = authored(live)
    # Twelve people who started this week and took an hour to invite a teammate.
    now = timezone.now()
    monday = datetime.combine(now.date() - timedelta(days=now.weekday()), time.min, tzinfo=UTC)
    started = max(now - timedelta(hours=2), monday + timedelta(minutes=1))
    journey = workspace.journeys.get(key="setup")
    invited = journey.milestones.get(key="invited")

    def peers() -> None:
        for index in range(12):
            person = EndUserFactory(workspace=workspace, external_id=f"peer-{index}")
            JourneyProgressFactory(end_user=person, journey=journey, started_at=started)
            MilestoneCompletionFactory(
                end_user=person,
                milestone=invited,
                completed_at=started + timedelta(minutes=60 + index),
            )

    in_thread(peers)
    url = hostile_page(live, workspace, new_user_id())
    page.goto(url)
    expect(page.locator(LAUNCHER)).to_be_visible()
    page.evaluate("Milepost.track('invited')")
    expect(page.locator("milepost-widget [data-progress-bar]")).to_contain_text("1 of 3")
    page.reload()
    bar = page.locator("milepost-widget [data-progress-bar]")
    expect(bar).to_contain_text("Faster than all 12 people who started")
    panel = open_panel(page)
    expect(panel.locator("[data-resource=setup]")).to_contain_text(
        "Faster than all 12 people who started"
    )
    page.wait_for_timeout(300)  # the panel's fade-in
    shot(page, "resource-center-peer-comparison")
    page.keyboard.press("Escape")
    # A progress push carries no comparison: the bar keeps the welcome's.
    page.evaluate("Milepost.track('imported')")
    expect(bar).to_contain_text("2 of 3")
    expect(bar).to_contain_text("Faster than all 12 people who started")
    shot(page, "progress-bar-peer-comparison")

    page.evaluate("Milepost.track('sent')")
    celebration = page.locator("milepost-widget [data-celebration]")
    expect(celebration).to_contain_text("Set up Acme: all done!")
    burst = page.locator("milepost-widget .cb i")
    expect(burst.first).to_be_visible()
    page.wait_for_timeout(500)  # mid-burst
    shot(page, "checklist-celebration")
    expect(celebration).to_have_count(0, timeout=6000)
    assert page.evaluate("window.violations") == []


def test_reduced_motion_celebrates_without_confetti(live: Live, page: Any) -> None:
    workspace = authored(live)
    page.emulate_media(reduced_motion="reduce")
    page.goto(hostile_page(live, workspace, new_user_id()))
    expect(page.locator(LAUNCHER)).to_be_visible()
    page.evaluate("Milepost.track('invited'); Milepost.track('imported'); Milepost.track('sent')")
    celebration = page.locator("milepost-widget [data-celebration]")
    expect(celebration).to_contain_text("all done!")
    expect(page.locator("milepost-widget .cb i").first).to_be_hidden()


def test_a_right_to_left_page_mirrors_the_launcher_and_panel(live: Live, page: Any) -> None:
    workspace = authored(live, position="bottom-left")
    page.goto(hostile_page(live, workspace, new_user_id(), direction="rtl"))
    launcher = page.locator(LAUNCHER)
    expect(launcher).to_be_visible()
    spot = launcher.bounding_box()
    # bottom-left in a right-to-left page is the reading start: the right-hand side.
    assert spot is not None
    assert spot["x"] > 600
    panel = open_panel(page)
    box = panel.bounding_box()
    assert box is not None
    assert box["x"] + box["width"] > 1100
    assert panel.evaluate("el => getComputedStyle(el).direction") == "rtl"
    shot(page, "resource-center-rtl")


def test_the_demo_app_has_a_help_center_after_its_welcome_tour(live: Live, page: Any) -> None:
    page.goto(f"{live.demo_url}/dashboard")
    expect(page.locator(CARD)).to_be_visible()  # the welcome tour comes first
    page.keyboard.press("Escape")
    expect(page.locator(CARD)).to_have_count(0)
    panel = open_panel(page)
    expect(panel.get_by_role("heading", name="Getting started")).to_be_visible()
    expect(panel.locator("[data-resource=checklist]")).to_contain_text("Getting started with Acme")
    expect(panel.locator("[data-resource=templates]")).to_contain_text("Campaign templates")
    page.wait_for_timeout(300)  # the panel's fade-in
    shot(page, "demo-resource-center")
    panel.get_by_role("button", name="Replay the welcome tour").click()
    expect(page.locator(CARD)).to_be_visible()
    assert page.errors == []
