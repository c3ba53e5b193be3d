"""The SDK's socket against a real server whose per-connection budget is spent (issue 14): the
server answers an `events` message with `error {code: "rate_limited", retry_after}` and keeps the
socket open. The SDK holds its events (nothing more goes out meanwhile), sends again no sooner
than `retry_after`, all the refused events in one batch, and every event is stored once."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import FRAME_LOG, Live, add_hooked_page, events_named, wait_for
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.browser

# A token every 5 s, 12 at first: the hello and the `$pageview` take two, so ten more
# messages go through at once and the next waits about 5 s.
MESSAGES_PER_MINUTE = 12
TRACKED = 15


def test_events_refused_as_rate_limited_are_sent_again_after_retry_after_and_stored_once(
    live: Live, page: Any, settings: Any
) -> None:
    settings.MILEPOST_MAX_SOCKET_MESSAGES_PER_MINUTE = MESSAGES_PER_MINUTE
    workspace = WorkspaceFactory(
        allowed_origins=[live.host_url], enforce_identity_verification=True
    )
    add_hooked_page(live, workspace)
    page.add_init_script(FRAME_LOG)
    page.goto(f"{live.host_url}/app")
    expect(page.locator("body[data-ready]")).to_have_count(1, timeout=15_000)
    assert wait_for(lambda: events_named("$pageview"))

    # One message per event: each track sends what is not already awaiting its ack.
    page.evaluate(f"for (let n = 0; n < {TRACKED}; n++) Milepost.track('report_exported', {{n}})")
    # The host hears of the refusal, as before.
    expect(page.locator("body[data-error=rate_limited]")).to_have_count(1)

    def stored() -> list[int]:
        return sorted(e.properties["n"] for e in events_named("report_exported"))

    assert wait_for(lambda: stored() == list(range(TRACKED)), timeout=30), stored()
    page.wait_for_timeout(1000)  # a late duplicate would be stored by now
    assert stored() == list(range(TRACKED)), "each event is stored exactly once"
    assert page.evaluate("Object.keys(localStorage).filter(k => k.includes('outbox'))") == []

    frames: list[dict[str, Any]] = page.evaluate("frames_")
    refusals = [f for f in frames if f["way"] == "in" and f["data"].get("code") == "rate_limited"]
    assert refusals, "the server never refused a message: the test did not reach the limit"
    first = refusals[0]
    sent = [f for f in frames if f["way"] == "out" and f["data"]["type"] == "events"]
    # The first batch sent after the refusal was read is the retry, and it came no sooner than
    # the server asked (a few ms of slack for the two clocks' rounding): no tight loop.
    retry = next(f for f in sent if f["t"] > first["t"])
    waited = (retry["t"] - first["t"]) / 1000
    assert waited >= first["data"]["retry_after"] - 0.05, (first["data"], waited)
    # Every refused message held one event; the retry carries them all, at once.
    refused_before_retry = [f for f in refusals if f["t"] < retry["t"]]
    assert len(retry["data"]["events"]) == len(refused_before_retry), json.dumps(retry["data"])
    assert page.errors == []
