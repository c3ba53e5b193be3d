"""Admin draws each walkthrough step with the widget's own renderer (static/milepost/
preview.js, built from widget/src/render/*): no customer page needed. Screenshot in
var/screenshots/step-preview.png (MILEPOST_SCREENSHOTS elsewhere)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from onboarding.models import Step
from tests.browser.conftest import Live, in_thread
from tests.browser.test_dashboards import SCREENSHOTS
from tests.factories import StepFactory, WalkthroughFactory, WorkspaceFactory

pytestmark = pytest.mark.browser

PREVIEW = "milepost-step-preview [role=dialog]"


def test_each_step_shows_a_preview_drawn_by_the_widgets_renderer(live: Live, page: Any) -> None:
    def author() -> int:
        User.objects.create_superuser("author", "author@acme.test", "preview-pass")
        workspace = WorkspaceFactory(theme={"primary_color": "#be123c"})
        walkthrough = WalkthroughFactory(workspace=workspace, name="Campaign tour")
        StepFactory(
            walkthrough=walkthrough, position=0, title="Welcome to Acme",
            body_markdown="Let us show you **campaigns**.", selector="",
        )  # fmt: skip
        StepFactory(
            walkthrough=walkthrough, position=1, title="Create a campaign",
            body_markdown="Click *New campaign*.", selector="#create",
            advance_on=Step.Advance.TARGET_CLICK,
        )  # fmt: skip
        return walkthrough.pk

    pk = in_thread(author)
    page.goto(f"{live.milepost_url}/admin/login/")
    page.fill("#id_username", "author")
    page.fill("#id_password", "preview-pass")
    page.click("input[type=submit]")
    page.goto(f"{live.milepost_url}/admin/onboarding/walkthrough/{pk}/change/")

    cards = page.locator(PREVIEW)
    expect(cards).to_have_count(2)
    first, second = cards.nth(0), cards.nth(1)
    expect(first.locator("h2")).to_have_text("Welcome to Acme")
    expect(first.locator("strong")).to_have_text("campaigns")  # the Markdown, rendered
    expect(first).to_contain_text("1 of 2")
    expect(first.get_by_role("button", name="Next")).to_be_visible()
    expect(first.get_by_role("button", name="Back")).to_have_count(0)
    expect(second.locator("h2")).to_have_text("Create a campaign")
    expect(second.get_by_role("button", name="Back")).to_be_visible()
    expect(second.get_by_role("button", name="Show me")).to_be_visible()
    # The workspace's theme colours the main button, as in the customer's app.
    colour = first.get_by_role("button", name="Next").evaluate(
        "el => getComputedStyle(el).backgroundColor"
    )
    assert colour == "rgb(190, 18, 60)"
    # The preview follows the form as the author types.
    page.fill("#id_steps-0-title", "Welcome aboard")
    expect(first.locator("h2")).to_have_text("Welcome aboard")
    page.select_option("#id_steps-1-advance_on", "next")
    expect(second.get_by_role("button", name="Done")).to_be_visible()

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    first.scroll_into_view_if_needed()
    page.locator(".inline-group").first.screenshot(path=str(SCREENSHOTS / "step-preview.png"))
    assert page.errors == []
