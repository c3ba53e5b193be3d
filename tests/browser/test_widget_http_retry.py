"""The SDK's HTTP fallback against a real server that refuses its event posts for a while (issue
14): the publishable key over its budget answers 429 `rate_limited` with `Retry-After`. The SDK
holds its events (nothing is lost, nothing more is posted meanwhile), retries no sooner than the
server asked and no later than its jittered backoff allows (twice that), and every event is
stored once."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from playwright.sync_api import expect

from onboarding import rate_limits
from tests.browser.conftest import Live, add_hooked_page, events_named, wait_for
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.browser

# The key's budget counts in windows of this many seconds instead of a minute, so that its
# Retry-After (the seconds left in the window) is short enough for a test to wait out.
WINDOW_SECONDS = 6


def events_posts(page: Any) -> list[Any]:
    posts: list[Any] = []
    page.on(
        "request",
        lambda r: posts.append(r) if r.method == "POST" and "/widget/events" in r.url else None,
    )
    return posts


def test_a_refused_post_is_retried_no_sooner_than_its_retry_after_and_loses_nothing(
    live: Live, page: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = WorkspaceFactory(
        allowed_origins=[live.host_url], enforce_identity_verification=True
    )
    add_hooked_page(live, workspace)
    posts = events_posts(page)
    page.route_web_socket("**/ws/widget/**", lambda socket: socket.close())
    page.goto(f"{live.host_url}/app")
    expect(page.locator("body[data-ready]")).to_have_count(1, timeout=15_000)
    assert wait_for(lambda: events_named("$pageview"))
    page.wait_for_timeout(500)  # the push stream subscribes after the bootstrap

    monkeypatch.setattr(rate_limits, "WINDOW_SECONDS", WINDOW_SECONDS)
    # Start early in a window: its Retry-After is then several times the first backoff (0.5 s
    # at most), even when a loaded machine takes seconds to deliver the post.
    while WINDOW_SECONDS - time.time() % WINDOW_SECONDS < 5.5:
        page.wait_for_timeout(100)
    settings.MILEPOST_MAX_MESSAGES_PER_KEY_PER_MINUTE = 0
    with page.expect_response(lambda r: "/widget/events" in r.url) as answer:
        page.evaluate("Milepost.track('report_exported', {n: 1})")
    refused = answer.value
    assert refused.status == 429
    retry_after = int(refused.headers["retry-after"])
    assert retry_after >= 2
    # Once the SDK has read the refusal (a post already on its way could not be held back):
    expect(page.locator("body[data-error=rate_limited]")).to_have_count(1)
    page.evaluate("Milepost.track('report_exported', {n: 2})")
    settings.MILEPOST_MAX_MESSAGES_PER_KEY_PER_MINUTE = 60_000

    assert wait_for(lambda: len(events_named("report_exported")) == 2, timeout=3 * retry_after)
    page.wait_for_timeout(500)  # Playwright reports the requests it saw
    after = posts[posts.index(refused.request) + 1 :]
    assert after, "the refused events were never posted again"
    retry = after[0]
    waited = (retry.timing["startTime"] - refused.request.timing["startTime"]) / 1000
    assert retry_after <= waited <= 2 * retry_after + 1, (retry_after, waited)
    # Nothing was posted while it waited: the second event went out with the first, in the retry.
    sent = [e["properties"]["n"] for e in json.loads(retry.post_data)["events"]]
    assert sorted(sent) == [1, 2]
    page.wait_for_timeout(1000)
    assert sorted(e.properties["n"] for e in events_named("report_exported")) == [1, 2]
    assert page.evaluate("Object.keys(localStorage).filter(k => k.includes('outbox'))") == []
    assert page.errors == []
