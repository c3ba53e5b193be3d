"""One tour state per person, across their open tabs: what one tab does to a walkthrough
(next, back, dismiss) shows in the others at once, over the socket or the HTTP fallback, and a
tab that missed it cannot bring a finished tour back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import expect

from onboarding import services
from onboarding.models import ContentState, Walkthrough, Workspace
from tests.browser.conftest import Live, in_thread, new_tab, new_user_id, snippet, wait_for
from tests.factories import StepFactory, WalkthroughFactory, WorkspaceFactory

pytestmark = pytest.mark.browser

CARD = "milepost-widget [role=dialog]"
STEPS = ["First things", "The search", "Last words"]


def shared_tour(live: Live, first_page: str = "") -> tuple[Workspace, str]:
    """A "once" tour of three steps (the middle one anchored, the first on `first_page` if
    given) and the page one person has open in several tabs (at /app and /other)."""
    workspace = WorkspaceFactory(
        allowed_origins=[live.host_url], enforce_identity_verification=True
    )
    walkthrough = WalkthroughFactory(
        workspace=workspace, key="tour", name="Tab tour", frequency=Walkthrough.Frequency.ONCE
    )
    for position, title in enumerate(STEPS):
        StepFactory(
            walkthrough=walkthrough,
            position=position,
            page_url_pattern=first_page if position == 0 else "",
            title=title,
            selector="#search" if position == 1 else "",
        )
    in_thread(lambda: services.content_publish(obj=walkthrough))
    html = (
        "<!doctype html><html lang=en><head><title>Host</title>"
        f"{snippet(live, workspace, new_user_id())}"
        '<script>milepost.push(["on", "ready", () => { document.body.dataset.ready = "1"; }]);'
        "</script></head><body><main><input id=search aria-label=Search></main></body></html>"
    )
    live.host.add("/app", html)
    live.host.add("/other", html)
    return workspace, f"{live.host_url}/app"


def saved() -> tuple[str, int, int] | None:
    state = ContentState.objects.filter(key="tour").first()
    return (state.status, state.step_index, state.times_seen) if state else None


def open_tab(context: Any, url: str, title: str | None = STEPS[0]) -> Any:
    tab = new_tab(context)
    tab.goto(url)
    expect(tab.locator("body[data-ready]")).to_have_count(1)
    if title is None:
        expect(tab.locator(CARD)).to_have_count(0)
    else:
        expect(tab.locator(CARD)).to_contain_text(title)
    return tab


def test_next_and_back_in_one_tab_move_the_other_tab_at_once(live: Live, context: Any) -> None:
    _, url = shared_tour(live)
    first = open_tab(context, url)
    assert wait_for(lambda: saved() == ("in_progress", 0, 1))
    second = open_tab(context, url)  # resumes the same attempt, at the same step

    first.get_by_role("button", name="Next").click()
    expect(second.locator(CARD)).to_contain_text(STEPS[1])
    expect(second.locator(CARD)).to_have_attribute("data-step", "1")
    second.get_by_role("button", name="Next").click()
    expect(first.locator(CARD)).to_contain_text(STEPS[2])
    first.get_by_role("button", name="Back").click()
    expect(second.locator(CARD)).to_contain_text(STEPS[1])

    assert wait_for(lambda: saved() == ("in_progress", 1, 1))
    assert first.errors == []
    assert second.errors == []


def test_esc_in_one_tab_closes_the_tour_in_the_other_and_it_never_comes_back(
    live: Live, context: Any
) -> None:
    _, url = shared_tour(live)
    first = open_tab(context, url)
    assert wait_for(lambda: saved() == ("in_progress", 0, 1))
    second = open_tab(context, url)

    first.keyboard.press("Escape")

    expect(first.locator(CARD)).to_have_count(0)
    expect(second.locator(CARD)).to_have_count(0)
    assert wait_for(lambda: saved() == ("dismissed", 0, 1))
    for tab in (first, second):
        tab.reload()
        expect(tab.locator("body[data-ready]")).to_have_count(1)
        expect(tab.locator(CARD)).to_have_count(0)
    assert saved() == ("dismissed", 0, 1)


def test_a_stale_tabs_next_is_answered_with_the_dismissal_and_the_tab_follows(
    live: Live, context: Any
) -> None:
    _, url = shared_tour(live)
    deaf = {"on": False}

    def second_tabs_socket(socket: Any) -> None:
        # The second tab's socket, with walkthrough pushes lost while `deaf` is on (the channel
        # layer delivers at most once).
        server = socket.connect_to_server()
        socket.on_message(server.send)

        def to_page(message: str | bytes) -> None:
            if not (deaf["on"] and json.loads(message).get("type") == "walkthrough"):
                socket.send(message)

        server.on_message(to_page)

    first = open_tab(context, url)
    assert wait_for(lambda: saved() == ("in_progress", 0, 1))
    second = new_tab(context)
    second.route_web_socket("**/ws/widget/**", second_tabs_socket)
    second.goto(url)
    expect(second.locator(CARD)).to_contain_text(STEPS[0])

    deaf["on"] = True
    first.keyboard.press("Escape")
    assert wait_for(lambda: saved() == ("dismissed", 0, 1))
    second.wait_for_timeout(300)
    expect(second.locator(CARD)).to_contain_text(STEPS[0])  # it missed the dismissal
    deaf["on"] = False

    second.get_by_role("button", name="Next").click()

    expect(second.locator(CARD)).to_have_count(0)  # answered with the dismissal, and follows it
    assert saved() == ("dismissed", 0, 1)
    first.reload()
    expect(first.locator("body[data-ready]")).to_have_count(1)
    expect(first.locator(CARD)).to_have_count(0)
    assert second.errors == []


def test_a_tab_on_the_http_fallback_follows_the_other_tab_too(live: Live, context: Any) -> None:
    _, url = shared_tour(live)
    first = open_tab(context, url)
    assert wait_for(lambda: saved() == ("in_progress", 0, 1))
    second = new_tab(context)
    second.route_web_socket("**/ws/widget/**", lambda socket: socket.close())
    second.goto(url)
    # Bootstrapped over HTTP, pushes over server-sent events.
    expect(second.locator(CARD)).to_contain_text(STEPS[0], timeout=15_000)
    second.wait_for_timeout(500)  # the stream subscribes after the bootstrap

    first.get_by_role("button", name="Next").click()
    expect(second.locator(CARD)).to_contain_text(STEPS[1])
    first.keyboard.press("Escape")
    expect(second.locator(CARD)).to_have_count(0)
    assert wait_for(lambda: saved() == ("dismissed", 1, 1))


def test_a_tab_that_saw_the_tour_end_elsewhere_does_not_start_it_on_its_next_page(
    live: Live, context: Any
) -> None:
    _, url = shared_tour(live, first_page="/app")
    other = open_tab(context, f"{live.host_url}/other", title=None)  # not the tour's page
    first = open_tab(context, url)
    assert wait_for(lambda: saved() == ("in_progress", 0, 1))
    first.keyboard.press("Escape")
    assert wait_for(lambda: saved() == ("dismissed", 0, 1))
    other.wait_for_timeout(300)  # the dismissal's push reaches the other tab

    # The single-page app moves to the tour's page: its welcome said "start by itself", but
    # the person has seen and dismissed this "once" tour since.
    other.evaluate("history.pushState({}, '', '/app')")
    other.wait_for_timeout(500)
    expect(other.locator(CARD)).to_have_count(0)
    assert saved() == ("dismissed", 0, 1)
