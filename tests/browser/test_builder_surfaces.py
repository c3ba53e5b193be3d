"""The builder for surveys and banners, as a PM uses it on the Acme demo app (another origin,
strict nonce CSP): pick an inline survey's host element, go through its questions in the
preview, see it as a popover; try a banner at the top and the bottom, pushing and overlaying
the page; publish, and meet the result as an end user."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from onboarding.models import Banner, Event, Survey
from tests.browser.conftest import Live, new_tab, screen
from tests.browser.test_builder import PANEL, editor, log_in, open_builder, pick

pytestmark = pytest.mark.browser

PROMPT = "How likely are you to recommend Acme to a colleague?"


def box(locator: Any) -> dict[str, float]:
    found = locator.bounding_box()
    assert found is not None
    return dict(found)


def test_a_pm_picks_an_inline_surveys_host_element_and_previews_every_question(
    live: Live, page: Any, browser: Any
) -> None:
    editor(live)
    log_in(page, live)
    survey = Survey.objects.get(workspace=live.demo, key="contacts-nps")
    page.goto(f"{live.milepost_url}/admin/onboarding/survey/{survey.pk}/change/")
    builder = open_builder(page, f"{live.demo_url}/contacts")
    panel = builder.locator(PANEL)
    expect(panel).to_contain_text("Survey: How are we doing?")
    expect(panel.locator("#mpb-display")).to_have_value("inline")
    expect(panel.locator("#mpb-selector")).to_have_value("#feedback")
    expect(panel.locator(".sel .n")).to_have_text("1 match on this page")

    # The preview is the survey as end users get it, inside its host element: the NPS scale.
    placed = builder.locator("#feedback > milepost-survey")
    scale = placed.get_by_role("radiogroup", name=PROMPT)
    expect(scale).to_be_visible()
    expect(scale.get_by_role("radio")).to_have_count(11)
    expect(placed).to_contain_text("Not likely")
    expect(placed).to_contain_text("Very likely")

    # Another host element, picked on the page: the list's panel (the list, then wider).
    panel.get_by_role("button", name="Pick", exact=True).click()
    expect(builder.locator("milepost-widget .pb")).to_contain_text("the survey goes inside")
    pick(builder, "#contact-list .empty")
    expect(panel.locator("#mpb-selector")).to_have_value("#contact-list li")
    panel.get_by_role("button", name="Wider").click()
    panel.get_by_role("button", name="Wider").click()
    selector = panel.locator("#mpb-selector").input_value()
    assert builder.locator(selector).evaluate("el => el.matches('main section.panel')")
    moved = builder.locator("section.panel > milepost-survey")
    expect(moved.get_by_role("radiogroup", name=PROMPT)).to_be_visible()
    expect(placed).to_have_count(0)

    # Answering in the preview walks the questions as end users would: a promoter's score
    # leads to its follow-up (one choice), then the optional several-choices question.
    moved.get_by_role("radio", name="9", exact=True).check()
    moved.get_by_role("button", name="Next").click()
    choice = moved.get_by_role("radiogroup", name="What do you like most?")
    expect(choice.get_by_role("radio")).to_have_count(3)
    expect(choice).to_contain_text("Contact import")
    moved.get_by_role("radio", name="Reports").check()
    moved.get_by_role("button", name="Next").click()
    several = moved.get_by_role("group", name="Where do you reach your contacts?")
    expect(several.get_by_role("checkbox")).to_have_count(3)
    expect(moved.get_by_role("button", name="Skip")).to_be_visible()
    expect(moved.get_by_role("button", name="Send")).to_be_visible()
    screen(builder, "builder-10-survey-inline")

    # Any question, straight away: the detractors' free-text follow-up.
    panel.locator("#mpb-question").select_option("fix")
    expect(moved.get_by_role("textbox", name="What should we fix first?")).to_be_visible()
    moved.get_by_role("textbox").fill("Faster imports")
    moved.get_by_role("button", name="Next").click()
    expect(moved.get_by_role("group", name="Where do you reach your contacts?")).to_be_visible()

    # As a popover: a card in the page's bottom corner, beside the panel, not under it.
    panel.locator("#mpb-display").select_option("popover")
    expect(moved).to_have_count(0)
    card = builder.locator("milepost-widget .sv[role=dialog]")
    expect(card.get_by_role("textbox", name="What should we fix first?")).to_be_visible()
    panel.locator("#mpb-question").select_option("score")
    expect(card.get_by_role("radiogroup", name=PROMPT)).to_be_visible()
    card_box, panel_box = box(card), box(panel)
    assert card_box["x"] + card_box["width"] <= panel_box["x"]
    assert abs(card_box["y"] + card_box["height"] - (800 - 16)) <= 1
    screen(builder, "builder-11-survey-popover")
    panel.locator("#mpb-position").select_option("bottom-left")
    expect(card).to_have_class("sv bottom-left")
    assert box(card)["x"] <= 24

    # Inline again, in the picked element; publish.
    panel.locator("#mpb-display").select_option("inline")
    expect(panel.locator("#mpb-selector")).to_have_value(selector)
    expect(moved.get_by_role("radiogroup", name=PROMPT)).to_be_visible()
    panel.get_by_role("button", name="Publish").click()
    expect(panel.locator("footer .st")).to_contain_text("Published as version")
    survey.refresh_from_db()
    assert (survey.display, survey.selector) == ("inline", selector)
    # The preview's answers went nowhere: no answer was recorded.
    assert not Event.objects.filter(name__in=["$survey_answered", "$survey_completed"]).exists()

    # A popover draft keeps no host element (the server refuses one); live users still get
    # the published version.
    panel.locator("#mpb-display").select_option("popover")
    panel.get_by_role("button", name="Save draft").click()
    expect(panel.locator("footer .st")).to_contain_text("Draft saved")
    survey.refresh_from_db()
    assert (survey.display, survey.selector) == ("popover", "")
    assert builder.errors == []

    # An end user meets it where it was picked.
    visitor = browser.new_context(viewport={"width": 1200, "height": 800})
    user = new_tab(visitor)
    user.goto(f"{live.demo_url}/contacts")
    shown = user.locator("section.panel > milepost-survey")
    expect(shown.get_by_role("radiogroup", name=PROMPT)).to_be_visible()
    expect(user.locator("#feedback > milepost-survey")).to_have_count(0)
    assert user.errors == []
    visitor.close()


def test_a_pm_previews_a_banner_at_the_top_and_the_bottom_pushing_or_overlaying_the_page(
    live: Live, page: Any
) -> None:
    editor(live)
    log_in(page, live)
    banner = Banner.objects.get(workspace=live.demo, key="maintenance")
    page.goto(f"{live.milepost_url}/admin/onboarding/banner/{banner.pk}/change/")
    builder = open_builder(page, f"{live.demo_url}/dashboard")
    panel = builder.locator(PANEL)
    expect(panel).to_contain_text("Banner: Scheduled maintenance")
    bar = builder.locator("milepost-banner[data-preview]")
    region = bar.get_by_role("region", name="Sending pauses on Sunday, 02:00-03:00 UTC")
    expect(region).to_contain_text("campaigns queue up")
    expect(region.get_by_role("button", name="See your campaigns")).to_be_visible()
    expect(builder.locator("milepost-banner")).to_have_count(1)  # the live one is put away

    # Top, push: the first thing in the page, which moves down below it.
    assert bar.evaluate("el => el === document.body.firstElementChild")
    top_bar, header = box(region), box(builder.locator("header.topbar"))
    assert top_bar["y"] == 0
    assert header["y"] >= top_bar["height"]
    panel.locator("#mpb-title").fill("Sending pauses on Sunday night")
    expect(bar.get_by_role("region", name="Sending pauses on Sunday night")).to_be_visible()
    screen(builder, "builder-12-banner-top-push")

    # Top, overlay: over the page below its sticky header, which stays where it was; the bar
    # keeps to the page's part of the window, beside the panel.
    panel.locator("#mpb-mode").select_option("overlay")
    expect(bar).to_have_class("fixed")
    header = box(builder.locator("header.topbar"))
    assert header["y"] == 0
    over = box(bar)
    assert abs(over["y"] - (header["y"] + header["height"])) <= 1
    assert over["x"] + over["width"] <= box(panel)["x"]
    screen(builder, "builder-13-banner-top-overlay")

    # Bottom, overlay: on the window's bottom edge. Push: after the whole page, never over it.
    panel.locator("#mpb-position").select_option("bottom")
    expect(bar).to_have_class("fixed bottom")
    assert abs(box(bar)["y"] + box(bar)["height"] - 800) <= 1
    panel.locator("#mpb-mode").select_option("push")
    expect(bar).to_have_class("sticky")
    footer = box(builder.locator("footer.hint"))
    assert box(bar)["y"] >= footer["y"] + footer["height"] - 1
    assert box(bar)["y"] + box(bar)["height"] <= 800 + 1
    screen(builder, "builder-14-banner-bottom-push")

    # No close button when people may not close it; the preview's close button only hides it.
    panel.locator("#mpb-dismissible").uncheck()
    expect(bar.get_by_role("button", name="Dismiss")).to_have_count(0)
    panel.locator("#mpb-dismissible").check()
    bar.get_by_role("button", name="Dismiss").click()
    expect(bar).to_have_count(0)
    panel.locator("#mpb-cta_label").fill("Plan around it")
    expect(bar.get_by_role("button", name="Plan around it")).to_be_visible()

    panel.get_by_role("button", name="Publish").click()
    expect(panel.locator("footer .st")).to_contain_text("Published as version")
    banner.refresh_from_db()
    assert (banner.title, banner.position, banner.mode, banner.cta_label) == (
        "Sending pauses on Sunday night",
        "bottom",
        "push",
        "Plan around it",
    )
    assert not Event.objects.filter(name__in=["$banner_dismissed", "$banner_clicked"]).exists()
    assert builder.errors == []


def test_admin_previews_a_banner_and_every_kind_of_survey_question_before_publishing(
    live: Live, page: Any
) -> None:
    editor(live)
    log_in(page, live)
    banner = Banner.objects.get(workspace=live.demo, key="maintenance")
    page.goto(f"{live.milepost_url}/admin/onboarding/banner/{banner.pk}/change/")
    row = page.locator("[data-milepost-surface-preview]")
    row.get_by_role("button", name="Show").click()
    bar = page.locator("milepost-banner[data-preview]")
    region = bar.get_by_role("region", name="Sending pauses on Sunday, 02:00-03:00 UTC")
    expect(region.get_by_role("button", name="See your campaigns")).to_be_visible()
    # At the top, in the page's flow: admin's own header moves down below the bar.
    assert bar.evaluate("el => el === document.body.firstElementChild")
    assert box(page.locator("#header"))["y"] >= box(region)["height"]
    screen(page, "admin-15-banner-preview")
    row.get_by_role("button", name="Hide").click()
    expect(bar).to_have_count(0)

    # A survey with every kind of question, inline: drawn inside the preview row.
    survey = Survey.objects.get(workspace=live.demo, key="contacts-nps")
    rating = {"key": "ease", "type": "rating", "prompt": "How easy was the import?", "scale": 4}
    Survey.objects.filter(pk=survey.pk).update(questions=[*survey.questions, rating])
    page.goto(f"{live.milepost_url}/admin/onboarding/survey/{survey.pk}/change/")
    row = page.locator("[data-milepost-surface-preview]")
    row.get_by_role("button", name="Show").click()
    inline = row.locator("milepost-survey")
    expect(inline.get_by_role("radiogroup", name=PROMPT).get_by_role("radio")).to_have_count(11)
    chooser = row.get_by_role("combobox", name="Preview from question")
    for key, role, name, count in [
        ("favourite", "radio", "What do you like most?", 3),
        ("channels", "checkbox", "Where do you reach your contacts?", 3),
        ("ease", "radio", "How easy was the import?", 4),
    ]:
        chooser.select_option(key)
        row.get_by_role("button", name="Show").click()
        group = inline.get_by_role("radiogroup" if role == "radio" else "group", name=name)
        expect(group.get_by_role(role)).to_have_count(count)
    expect(inline.get_by_role("radio", name="4 of 4")).to_be_visible()  # each score is named
    inline.get_by_role("radio", name="3 of 4").check()
    screen(page, "admin-16-survey-preview-rating")
    chooser.select_option("fix")
    row.get_by_role("button", name="Show").click()
    inline.get_by_role("textbox", name="What should we fix first?").fill("Faster imports")
    inline.get_by_role("button", name="Next").click()
    expect(inline.get_by_role("group", name="Where do you reach your contacts?")).to_be_visible()

    # As a popover: the card in the window's bottom-right corner.
    Survey.objects.filter(pk=survey.pk).update(display="popover", selector="")
    page.reload()
    row = page.locator("[data-milepost-surface-preview]")
    row.get_by_role("button", name="Show").click()
    card = page.locator("milepost-widget .sv[role=dialog]")
    expect(card.get_by_role("radiogroup", name=PROMPT)).to_be_visible()
    found = box(card)
    assert abs(found["x"] + found["width"] - (1200 - 16)) <= 20  # a scrollbar may take some
    assert abs(found["y"] + found["height"] - (800 - 16)) <= 1
    screen(page, "admin-17-survey-preview-popover")
    assert not Event.objects.filter(name__startswith="$survey").exists()
    assert page.errors == []
