"""The visual builder as a PM uses it: from admin, onto the Acme demo app (another origin, strict
nonce CSP), pick elements on two pages, write the steps, watch the preview, publish, and then
meet the tour as an end user. And selectors that survive a deploy of a page whose class names
and ids are generated."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from onboarding.models import Guide, ProgressBar, Step, Tooltip, Walkthrough, WorkspaceMember
from tests.browser.conftest import Live, new_tab, screen, snippet

pytestmark = pytest.mark.browser

PANEL = "milepost-widget section.B"
CARD = "milepost-widget [role=dialog]"


def editor(live: Live, username: str = "pm", role: str = "editor") -> User:
    user = User.objects.create_user(username, password="pm-password-1", is_staff=True)
    WorkspaceMember.objects.create(workspace=live.demo, user=user, role=role)
    return user


def log_in(page: Any, live: Live, username: str = "pm") -> None:
    page.goto(f"{live.milepost_url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pm-password-1")
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()


def open_builder(page: Any, address: str) -> Any:
    page.fill("#milepost-builder-address", address)
    with page.context.expect_page() as opened:
        page.get_by_role("button", name="Edit on my app").click()
    builder = opened.value
    builder.errors = []
    builder.on("pageerror", lambda error: builder.errors.append(str(error)))
    expect(builder.locator(PANEL)).to_be_visible()
    return builder


def pick(builder: Any, target: str) -> None:
    builder.locator(target).hover()
    expect(builder.locator("milepost-widget .po")).to_be_visible()
    builder.locator(target).click()


def test_a_pm_builds_a_three_step_tour_on_two_pages_and_an_end_user_sees_it(
    live: Live, page: Any, browser: Any
) -> None:
    editor(live)
    log_in(page, live)
    page.goto(f"{live.milepost_url}/admin/onboarding/walkthrough/add/")
    page.fill("#id_key", "campaign-tour")
    page.fill("#id_name", "Your first campaign")
    page.fill("#id_priority", "10")
    page.click("input[name=_continue]")
    expect(page.get_by_role("button", name="Edit on my app")).to_be_visible()
    screen(page, "builder-01-admin-edit-on-my-app")

    builder = open_builder(page, f"{live.demo_url}/dashboard")
    assert "milepost-builder" not in builder.url  # the token left the address bar at once
    panel = builder.locator(PANEL)
    expect(panel).to_contain_text("Walkthrough: Your first campaign")

    # Step 1: pick the "New campaign" button; its label becomes the title.
    panel.get_by_role("button", name="+ Add step: pick an element").click()
    expect(builder.locator("milepost-widget .pb")).to_contain_text("Click the element")
    pick(builder, "#new-campaign-button")
    assert builder.url == f"{live.demo_url}/dashboard"  # the click picked, it did not navigate
    expect(panel.locator("#mpb-title")).to_have_value("New campaign")
    expect(panel.locator("#mpb-selector")).to_have_value("#new-campaign-button")
    expect(panel.locator(".sel .n")).to_have_text("1 match on this page")
    panel.locator("#mpb-body_markdown").fill("Start **here**: one click and you are writing.")
    card = builder.locator(CARD)
    expect(card.locator("strong")).to_have_text("here")  # Markdown, rendered as users see it
    expect(card).to_contain_text("1 of 1")

    # Step 2: the help button, placed on its left, with a spotlight; the preview follows.
    panel.get_by_role("button", name="+ Add step: pick an element").click()
    pick(builder, "#help-button")
    expect(panel.locator("#mpb-selector")).to_have_value("#help-button")
    panel.locator("#mpb-title").fill("Need a hand?")
    expect(card.locator("h2")).to_have_text("Need a hand?")
    panel.locator("#mpb-title").press_sequentially(" Ask")  # typing stays in the panel
    expect(card.locator("h2")).to_have_text("Need a hand? Ask")
    panel.locator("#mpb-placement").select_option("left")
    panel.locator("#mpb-spotlight").check()
    panel.locator("#mpb-on_target_missing").select_option("skip")  # a hint: skip it if gone
    expect(builder.locator("milepost-widget .s")).to_be_visible()
    expect(card).to_contain_text("2 of 2")
    card_box = card.bounding_box()
    help_box = builder.locator("#help-button").bounding_box()
    assert card_box["x"] + card_box["width"] <= help_box["x"]  # placed on its left
    screen(builder, "builder-02-preview-on-dashboard")

    # A wrong turn: a centred step, widened selector checks, then deleted.
    panel.get_by_role("button", name="+ Centred step").click()
    expect(panel.locator(".sel .n")).to_have_text("centred, no element")
    panel.get_by_role("button", name="Delete step 3").click()
    expect(panel.locator("ol li")).to_have_count(2)

    # Another page of the app: the session and the draft come along.
    builder.locator("#nav-campaigns").click()
    builder.wait_for_url("**/campaigns")
    expect(panel.locator("ol li")).to_have_count(2)
    expect(panel.locator("ol li").first).to_contain_text("(another page)")
    panel.get_by_role("button", name="+ Add step: pick an element").click()
    pick(builder, "#campaign-name")
    expect(panel.locator("#mpb-selector")).to_have_value("#campaign-name")
    panel.locator("#mpb-title").fill("Name your campaign")
    panel.locator("#mpb-body_markdown").fill("Anything works; you can rename it later.")
    panel.locator("#mpb-selector").fill("input")
    expect(panel.locator(".sel .n")).to_have_text("1 match on this page")
    panel.get_by_role("button", name="Wider").click()
    expect(panel.locator("#mpb-selector")).to_have_value("#campaign-form")
    panel.get_by_role("button", name="Narrower").click()
    expect(panel.locator("#mpb-selector")).to_have_value("#campaign-name")
    expect(card).to_contain_text("3 of 3")
    screen(builder, "builder-03-preview-on-campaigns")

    # Reorder twice (back where it was), save, publish.
    panel.get_by_role("button", name="Move step 3 up").click()
    expect(panel.locator("ol li").nth(1)).to_contain_text("Name your campaign")
    panel.get_by_role("button", name="Move step 2 down").click()
    expect(panel.locator("ol li").nth(2)).to_contain_text("Name your campaign")
    panel.get_by_role("button", name="Publish").click()
    expect(panel.locator("footer .st")).to_contain_text("Published as version 1")
    screen(builder, "builder-04-published")

    tour = Walkthrough.objects.get(key="campaign-tour")
    steps = list(Step.objects.filter(walkthrough=tour).order_by("position"))
    assert [(s.page_url_pattern, s.selector, s.title) for s in steps] == [
        ("/dashboard", "#new-campaign-button", "New campaign"),
        ("/dashboard", "#help-button", "Need a hand? Ask"),
        ("/campaigns", "#campaign-name", "Name your campaign"),
    ]
    assert steps[1].placement == "left"
    assert steps[1].spotlight
    assert [s.on_target_missing for s in steps] == ["modal", "skip", "modal"]
    assert builder.errors == []

    # An end user, in a browser of their own.
    visitor = browser.new_context(viewport={"width": 1200, "height": 800})
    user = new_tab(visitor)
    user.goto(f"{live.demo_url}/dashboard")
    card = user.locator(CARD)
    expect(card).to_contain_text("New campaign")
    expect(card.locator("strong")).to_have_text("here")
    expect(user.locator(PANEL)).to_have_count(0)
    user.get_by_role("button", name="Next").click()
    expect(card).to_contain_text("Need a hand? Ask")
    screen(user, "builder-05-end-user-step-2")
    user.get_by_role("button", name="Next").click()
    user.locator("#nav-campaigns").click()
    user.wait_for_url("**/campaigns")
    expect(card).to_contain_text("Name your campaign")
    expect(card).to_contain_text("3 of 3")
    assert user.errors == []
    visitor.close()


HASHED = """<!doctype html><html><head><title>Hashed</title></head><body>
<nav class="{nav}"><ul>
  <li class="{item}"><a id="{id1}" class="{link}" href="/reports">Reports</a></li>
  <li class="{item}"><a id="{id2}" class="{link}" href="/billing">Billing</a></li>
</ul></nav>
<main class="{main}">
  <div class="{toolbar}">
    <button id="{id3}" class="{button}" type="button" data-testid="export-button">Export</button>
    <button id="{id4}" class="{button}" type="button" aria-label="Filter the list">⚙</button>
    <button id="{id5}" class="{button}" type="button">Share</button>
  </div>
</main>
{snippet}
</body></html>"""
FIRST = {
    "nav": "css-1q2w3e sc-bdVaJa", "item": "Nav_item__a1B2c", "link": "css-9z8y7x",
    "main": "Layout_main__Xy12z", "toolbar": "css-4r5t6y", "button": "Button_root__x7Yz2",
    "id1": ":r1:", "id2": ":r2:", "id3": "ember482", "id4": "ember483", "id5": "react-aria-77",
}  # fmt: skip
DEPLOYED = {
    "nav": "css-0p9o8i sc-fGHiJk", "item": "Nav_item__Qw9e8", "link": "css-7u6y5t",
    "main": "Layout_main__Mn34b", "toolbar": "css-1a2s3d", "button": "Button_root__k3Lm9",
    "id1": ":r7:", "id2": ":r8:", "id3": "ember911", "id4": "ember912", "id5": "react-aria-12",
}  # fmt: skip


def test_selectors_picked_on_hashed_class_names_still_match_after_a_deploy(
    live: Live, page: Any
) -> None:
    tour = Walkthrough.objects.create(workspace=live.demo, key="hashed-tour", name="Hashed")
    editor(live)
    tags = snippet(live, live.demo, "someone")
    csp = "script-src 'self' http://127.0.0.1:* 'unsafe-inline'; style-src 'self'"
    live.host.add("/app", HASHED.format(snippet=tags, **FIRST), csp)
    live.host.add("/app-deployed", HASHED.format(snippet=tags, **DEPLOYED), csp)
    workspace = live.demo
    workspace.allowed_origins = [*workspace.allowed_origins, live.host_url]
    workspace.save(update_fields=["allowed_origins"])

    log_in(page, live)
    page.goto(f"{live.milepost_url}/admin/onboarding/walkthrough/{tour.pk}/change/")
    builder = open_builder(page, f"{live.host_url}/app")
    panel = builder.locator(PANEL)
    picked: dict[str, str] = {}
    for name, target in [
        ("Billing", "nav li:nth-child(2) a"),
        ("Export", "[data-testid=export-button]"),
        ("Filter", "[aria-label='Filter the list']"),
        ("Share", "main button >> nth=2"),
    ]:
        panel.get_by_role("button", name="+ Add step: pick an element").click()
        pick(builder, target)
        expect(panel.locator(".sel .n")).to_have_text("1 match on this page")
        picked[name] = panel.locator("#mpb-selector").input_value()
    screen(builder, "builder-06-hashed-page")
    assert picked["Export"] == '[data-testid="export-button"]'
    assert picked["Filter"] == 'button[aria-label="Filter the list"]'
    assert picked["Billing"] == 'a[href="/billing"]'
    for selector in picked.values():
        for generated in ("css-", "__", "ember", ":r", "react-aria"):
            assert generated not in selector

    deployed = new_tab(page.context)
    deployed.goto(f"{live.host_url}/app-deployed")
    for name, selector in picked.items():
        found = deployed.locator(selector)
        expect(found).to_have_count(1)
        assert name in (found.text_content() or "") + (found.get_attribute("aria-label") or "")


def test_a_reused_token_or_a_forged_message_opens_no_builder(
    live: Live, page: Any, browser: Any
) -> None:
    tour = Walkthrough.objects.create(workspace=live.demo, key="reuse-tour", name="Reuse")
    editor(live)
    log_in(page, live)
    page.goto(f"{live.milepost_url}/admin/onboarding/walkthrough/{tour.pk}/change/")
    page.fill("#milepost-builder-address", f"{live.demo_url}/dashboard")
    redirects: list[str] = []
    page.context.on(
        "response",
        lambda response: response.status == 302 and redirects.append(response.headers["location"]),
    )
    with page.context.expect_page() as opened:
        page.get_by_role("button", name="Edit on my app").click()
    first = opened.value
    expect(first.locator(PANEL)).to_contain_text("Walkthrough: Reuse")
    address = next(url for url in redirects if "milepost-builder" in url)
    assert "#milepost-builder=mpg_" in address

    # Someone who got hold of the address (history, a screenshot) arrives too late.
    stranger = browser.new_context()
    other = new_tab(stranger)
    other.goto(address)
    expect(other.locator(PANEL)).to_contain_text("already used")
    assert "milepost-builder" not in other.url
    # The builder never listens to postMessage: a forged one opens nothing.
    other.goto(f"{live.demo_url}/contacts")
    other.evaluate(
        "token => window.postMessage({type: 'milepost-builder', token, session: token}, '*')",
        address.split("=")[-1],
    )
    other.wait_for_timeout(500)
    expect(other.locator(PANEL)).to_have_count(0)
    screen(other, "builder-07-refused")
    stranger.close()


def test_a_pm_moves_a_tooltip_and_retitles_the_checklist_with_the_builder(
    live: Live, page: Any
) -> None:
    editor(live)
    log_in(page, live)
    tip = Tooltip.objects.get(workspace=live.demo, key="help-tip")
    page.goto(f"{live.milepost_url}/admin/onboarding/tooltip/{tip.pk}/change/")
    builder = open_builder(page, f"{live.demo_url}/dashboard")
    panel = builder.locator(PANEL)
    expect(panel).to_contain_text("Help button")
    expect(panel.locator("#mpb-selector")).to_have_value("#help-button")

    # The hint moves to the "New campaign" button with new words; the preview follows.
    panel.get_by_role("button", name="Pick").click()
    pick(builder, "#new-campaign-button")
    expect(panel.locator("#mpb-selector")).to_have_value("#new-campaign-button")
    panel.locator("#mpb-body_markdown").fill("Your **first** campaign starts here.")
    beacon = builder.locator("milepost-widget [data-tooltip=help-tip]").first
    expect(beacon).to_be_visible()
    beacon_box = beacon.bounding_box()
    button_box = builder.locator("#new-campaign-button").bounding_box()
    assert abs(beacon_box["y"] - button_box["y"]) < button_box["height"] + beacon_box["height"]
    panel.get_by_role("button", name="Publish").click()
    expect(panel.locator("footer .st")).to_contain_text("Published as version")
    tip.refresh_from_db()
    assert (tip.selector, tip.body_markdown) == (
        "#new-campaign-button",
        "Your **first** campaign starts here.",
    )
    assert builder.errors == []
    builder.close()

    bar = ProgressBar.objects.get(workspace=live.demo, key="getting-started")
    page.goto(f"{live.milepost_url}/admin/onboarding/progressbar/{bar.pk}/change/")
    builder = open_builder(page, f"{live.demo_url}/dashboard")
    panel = builder.locator(PANEL)
    panel.locator("#mpb-title").fill("Set up Acme in four steps")
    expect(
        builder.locator("milepost-widget").get_by_text("Set up Acme in four steps")
    ).to_be_visible()
    checklist = builder.locator("milepost-widget")
    expect(checklist.get_by_text("Install the snippet")).to_be_visible()  # the authored label
    panel.locator("#mpb-position").select_option("bottom-left")
    screen(builder, "builder-08-progress-bar")
    panel.get_by_role("button", name="Publish").click()
    expect(panel.locator("footer .st")).to_contain_text("Published as version")
    bar.refresh_from_db()
    assert (bar.title, bar.position) == ("Set up Acme in four steps", "bottom-left")
    assert builder.errors == []


def test_a_pm_places_an_empty_state_guide_and_its_trigger_with_the_builder(
    live: Live, page: Any
) -> None:
    editor(live)
    log_in(page, live)
    guide = Guide.objects.get(workspace=live.demo, key="no-contacts")
    page.goto(f"{live.milepost_url}/admin/onboarding/guide/{guide.pk}/change/")
    builder = open_builder(page, f"{live.demo_url}/contacts")
    panel = builder.locator(PANEL)
    expect(panel).to_contain_text("Empty-state guide: No contacts yet")
    expect(panel.locator("#mpb-selector")).to_have_value("#contacts-empty")
    # The preview is the guide as end users get it, inside its host element.
    placed = builder.locator("#contacts-empty > milepost-guide")
    expect(placed.get_by_role("region", name="Your audience starts here")).to_be_visible()

    # Another host element, picked on the page; the preview moves with it.
    panel.get_by_role("button", name="Pick", exact=True).click()
    expect(builder.locator("milepost-widget .pb")).to_contain_text("the guide goes inside")
    pick(builder, "#contact-list .empty")
    expect(panel.locator("#mpb-selector")).to_have_value("#contact-list li")
    panel.get_by_role("button", name="Wider").click()  # the list, not its placeholder row
    expect(panel.locator("#mpb-selector")).to_have_value("#contact-list")
    moved = builder.locator("#contact-list > milepost-guide")
    expect(moved.get_by_role("heading", name="Your audience starts here")).to_be_visible()
    expect(placed).to_have_count(0)

    # The element-present trigger, picked too: shown only while the list is empty.
    panel.get_by_role("button", name="Select on page").click()
    expect(builder.locator("milepost-widget .pb")).to_contain_text("must be on the page first")
    pick(builder, "#contact-list .empty")
    trigger = panel.locator("#mpb-when_present")
    expect(trigger).not_to_have_value("")
    expect(panel.locator(".tg .n")).to_have_text("1 match on this page")
    panel.locator("#mpb-title").fill("Bring your audience")
    expect(moved.get_by_role("heading", name="Bring your audience")).to_be_visible()
    screen(builder, "builder-09-empty-state-guide")
    panel.get_by_role("button", name="Publish").click()
    expect(panel.locator("footer .st")).to_contain_text("Published as version")
    guide.refresh_from_db()
    assert (guide.selector, guide.title) == ("#contact-list", "Bring your audience")
    assert guide.when_present == trigger.input_value()
    assert builder.locator(guide.when_present).count() == 1
    assert builder.errors == []
