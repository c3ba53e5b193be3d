"""A progress bar on a customer's page when its journey finishes: it stays for 4 s (long enough
for the celebration) before it goes (`hide_when_complete`), and shows itself finished meanwhile,
not the step before (issue 16)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from onboarding import services
from onboarding.models import JourneyStart
from tests.browser.conftest import Live, in_thread
from tests.browser.test_surfaces import hostile_page, workspace_for
from tests.factories import JourneyFactory, MilestoneFactory, ProgressBarFactory

pytestmark = pytest.mark.browser


def test_a_finished_checklist_shows_every_milestone_done_while_it_leaves(
    live: Live, page: Any
) -> None:
    workspace = workspace_for(live)
    journey = JourneyFactory(
        workspace=workspace, key="setup", name="Set up Acme", starts_on=JourneyStart.FIRST_SEEN
    )
    for index, key in enumerate(("invited", "sent")):
        MilestoneFactory(journey=journey, key=key, name=key, position=index, event_name=key)
    bar = ProgressBarFactory(workspace=workspace, journey=journey, key="setup-bar", title="Setup")
    in_thread(lambda: [services.content_publish(obj=o) for o in (journey, bar)])
    page.goto(hostile_page(live, workspace))
    progress = page.locator("milepost-widget [data-progress-bar]")
    page.evaluate("Milepost.track('invited')")
    expect(progress).to_contain_text("1 of 2")

    page.evaluate("Milepost.track('sent')")

    # Within the 4 s it stays: the finished state, not "1 of 2" with one item still to do.
    expect(progress).to_contain_text("2 of 2", timeout=3000)
    expect(progress.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(progress.locator("li.d")).to_have_count(2)
    expect(progress).to_have_count(0, timeout=8000)
    assert page.errors == []
