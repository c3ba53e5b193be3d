"""The widget on a live page: hover hints, content published while the page is open, in-app
messages from engagement rules, and what is still queued when the page goes away."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import expect

from engagement import services as engagement_services
from engagement.models import Delivery
from onboarding import services
from onboarding.models import EndUser, Tooltip
from tests.browser.conftest import Live, events_named, in_thread, wait_for
from tests.engagement.factories import MessageFactory, RuleFactory
from tests.factories import TooltipFactory

pytestmark = pytest.mark.browser

CARD = "milepost-widget [role=dialog]"


def visitor(page: Any) -> EndUser:
    external_id = str(page.locator(".who code").inner_text())
    found = wait_for(lambda: EndUser.objects.filter(external_id=external_id).first())
    assert found is not None
    return found


def test_a_hover_hint_shows_on_hover_hides_on_leave_and_dismisses_for_good(
    live: Live, page: Any
) -> None:
    page.goto(f"{live.demo_url}/contacts")
    expect(page.locator("milepost-widget [data-progress-bar]")).to_be_visible()
    # The demo's banner pushes the page down when it comes: the button must be where it stays,
    # or the pointer would be left above it.
    expect(
        page.get_by_role("region", name="Sending pauses on Sunday, 02:00-03:00 UTC")
    ).to_be_visible()
    hint = page.locator("milepost-widget .c[data-tooltip=import-tip]")
    expect(hint).to_have_count(0)

    page.hover("#import-contacts")
    expect(hint).to_contain_text("Import a CSV of contacts")
    assert wait_for(lambda: events_named("$tooltip_viewed", tooltip="import-tip"))
    page.mouse.move(5, 700)  # away from the button and from the hint
    expect(hint).to_have_count(0)
    assert events_named("$tooltip_dismissed") == []  # leaving only closes it

    page.hover("#import-contacts")
    expect(hint).to_be_visible()
    hint.get_by_role("button", name="Got it").click()
    expect(hint).to_have_count(0)
    assert wait_for(lambda: events_named("$tooltip_dismissed", tooltip="import-tip"))
    page.hover("#import-contacts")
    page.wait_for_timeout(500)
    expect(hint).to_have_count(0)
    assert len(events_named("$tooltip_viewed", tooltip="import-tip")) == 1


def test_a_publish_in_admin_reaches_the_open_page_without_a_reload(live: Live, page: Any) -> None:
    page.goto(f"{live.demo_url}/dashboard")
    page.get_by_role("button", name="Close Welcome tour").click()
    expect(page.locator("milepost-widget [data-tooltip=help-tip]")).to_be_visible()
    page.evaluate("window.sameDocument = true")  # gone if the page reloads

    tip = TooltipFactory(
        workspace=live.demo,
        key="new-campaign-tip",
        page_url_pattern="/dashboard",
        selector="#new-campaign-button",
        body_markdown="Start **here**.",
        trigger=Tooltip.Trigger.HOTSPOT,
    )
    in_thread(lambda: services.content_publish(obj=tip))
    beacon = page.locator("milepost-widget [data-tooltip=new-campaign-tip]")
    expect(beacon).to_be_visible()
    beacon.click()
    expect(page.locator("milepost-widget .c[data-tooltip=new-campaign-tip]")).to_contain_text(
        "Start here."
    )

    # An edit stays invisible until it is published, then shows at once.
    help_tip = Tooltip.objects.get(workspace=live.demo, key="help-tip")
    help_tip.body_markdown = "Chat with us, we answer within minutes."
    help_tip.save(update_fields=["body_markdown"])
    page.locator("milepost-widget [data-tooltip=help-tip]").click()
    open_hint = page.locator("milepost-widget .c[data-tooltip=help-tip]")
    expect(open_hint).to_contain_text("Stuck?")
    page.keyboard.press("Escape")
    in_thread(lambda: services.content_publish(obj=help_tip))
    page.wait_for_timeout(1000)
    page.locator("milepost-widget [data-tooltip=help-tip]").click()
    expect(open_hint).to_contain_text("Chat with us")
    assert page.evaluate("window.sameDocument") is True


def in_app_rule(live: Live, style: str) -> Any:
    return RuleFactory(
        workspace=live.demo,
        key=f"nudge-{style}",
        message=MessageFactory(
            workspace=live.demo,
            style=style,
            title="Import your contacts",
            body="Campaigns need *people*.",
            cta_label="Import now",
            cta_url="/contacts",
        ),
    )


def fire(rule: Any, end_user: EndUser) -> Delivery:
    [delivery] = in_thread(
        lambda: engagement_services.rule_fire(rule=rule, end_user_id=end_user.pk, occurrence="once")
    )
    return delivery


def test_an_in_app_message_is_shown_and_its_click_is_recorded(live: Live, page: Any) -> None:
    page.goto(f"{live.demo_url}/dashboard")
    page.get_by_role("button", name="Close Welcome tour").click()
    delivery = fire(in_app_rule(live, "modal"), visitor(page))

    message = page.locator(f"milepost-widget [data-message='{delivery.uid}']")
    expect(message).to_contain_text("Import your contacts")
    expect(message).to_contain_text("Campaigns need people.")
    expect(message.get_by_role("button", name="Import now")).to_be_focused()  # a modal
    assert wait_for(lambda: events_named("$message_shown", message=str(delivery.uid)))

    page.keyboard.press("Enter")
    page.wait_for_url("**/contacts")  # the call to action's URL
    clicked = wait_for(lambda: events_named("$message_clicked", message=str(delivery.uid)))
    assert len(clicked) == 1
    assert clicked[0].properties["rule"] == "nudge-modal"
    assert wait_for(lambda: Delivery.objects.get(pk=delivery.pk).clicked_at is not None)
    expect(page.locator("milepost-widget [data-message]")).to_have_count(0)  # not shown again


def test_a_dismissed_in_app_message_is_recorded_and_not_shown_again(live: Live, page: Any) -> None:
    page.goto(f"{live.demo_url}/dashboard")
    page.get_by_role("button", name="Close Welcome tour").click()
    delivery = fire(in_app_rule(live, "toast"), visitor(page))

    message = page.locator(f"milepost-widget [data-message='{delivery.uid}']")
    expect(message).to_contain_text("Import your contacts")
    message.get_by_role("button", name="Close message").click()
    expect(message).to_have_count(0)
    dismissed = wait_for(lambda: events_named("$message_dismissed", message=str(delivery.uid)))
    assert len(dismissed) == 1
    assert wait_for(lambda: Delivery.objects.get(pk=delivery.pk).dismissed_at is not None)
    assert events_named("$message_clicked") == []
    page.reload()
    expect(page.locator("milepost-widget [data-progress-bar]")).to_be_visible()
    page.wait_for_timeout(500)
    expect(page.locator("milepost-widget [data-message]")).to_have_count(0)


def test_events_still_queued_when_the_page_goes_away_leave_in_a_beacon(
    live: Live, page: Any
) -> None:
    def withhold_events(ws: Any) -> None:
        """A socket that works, except that the server never hears the widget's events."""
        server = ws.connect_to_server()

        def to_server(message: str | bytes) -> None:
            if json.loads(message).get("type") != "events":
                server.send(message)

        ws.on_message(to_server)

    page.route_web_socket("**/ws/widget/**", withhold_events)
    # Browsers do not show beacons to Playwright's network events: note each call instead.
    page.add_init_script(
        "const send = navigator.sendBeacon.bind(navigator);"
        "navigator.sendBeacon = (url, body) => { const sent = send(url, body);"
        " localStorage.setItem('test:beacon', JSON.stringify({url, body: typeof body, sent}));"
        " return sent; };"
    )
    page.goto(f"{live.demo_url}/dashboard")
    expect(page.locator(CARD)).to_contain_text("Welcome to Acme")
    page.evaluate("Milepost.track('report_exported', {format: 'csv'})")
    page.wait_for_timeout(500)
    assert events_named("report_exported") == []  # the socket withholds it

    page.goto(f"{live.host_url}/elsewhere")  # the user leaves the app
    stored = wait_for(lambda: events_named("report_exported", format="csv"))
    assert len(stored) == 1
    assert stored[0].source == "widget"
    page.goto(f"{live.demo_url}/dashboard")
    beacon = json.loads(page.evaluate("localStorage.getItem('test:beacon')"))
    assert beacon == {
        "url": f"{live.milepost_url}/api/v1/widget/events",
        "body": "string",
        "sent": True,
    }
