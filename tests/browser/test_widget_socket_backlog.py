"""The SDK's socket against a real server whose inbox for the connection is full (issue 11):
past `MILEPOST_SOCKET_BACKLOG` waiting messages the server answers an `events` message with
`error {code: "backlog_full", retry_after}` and keeps the socket open. Nothing of it was stored:
the SDK sends the refused events again about a second later, all in one batch (not at its next
flush ten seconds on, which may never come if the person does nothing more), and every event is
stored once."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import FRAME_LOG, Live, add_hooked_page, events_named, wait_for
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.browser

# One message handled and one waiting: a burst of messages finds the inbox full.
BACKLOG = 1
TRACKED = 15


def test_events_refused_as_backlog_full_are_sent_again_soon_and_stored_once(
    live: Live, page: Any, settings: Any
) -> None:
    settings.MILEPOST_SOCKET_BACKLOG = BACKLOG
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
    expect(page.locator("body[data-error=backlog_full]")).to_have_count(1)

    def stored() -> list[int]:
        return sorted(e.properties["n"] for e in events_named("report_exported"))

    # Well before the outbox would send them again by itself (10 s after the first send).
    assert wait_for(lambda: stored() == list(range(TRACKED)), timeout=8), stored()
    page.wait_for_timeout(1000)  # a late duplicate would be stored by now
    assert stored() == list(range(TRACKED)), "each event is stored exactly once"
    assert page.evaluate("Object.keys(localStorage).filter(k => k.includes('outbox'))") == []

    frames: list[dict[str, Any]] = page.evaluate("frames_")
    refusals = [f for f in frames if f["way"] == "in" and f["data"].get("code") == "backlog_full"]
    assert refusals, "the server never refused a message: the test did not fill the inbox"
    first = refusals[0]
    retry_after = first["data"]["retry_after"]
    assert retry_after > 0
    sent = [f for f in frames if f["way"] == "out" and f["data"]["type"] == "events"]
    # The first batch sent after the refusal was read is the retry: no sooner than the server
    # asked (a few ms of slack for rounding), no later than its jittered backoff allows (twice
    # that, and a second for a busy machine's late timer).
    retry = next(f for f in sent if f["t"] > first["t"])
    waited = (retry["t"] - first["t"]) / 1000
    assert retry_after - 0.05 <= waited <= 2 * retry_after + 1, (first["data"], waited)
    # It carries every event not acknowledged by then, the refused ones among them, at once.
    answered = {
        str(i)
        for f in frames
        if f["way"] == "in" and f["data"]["type"] == "ack" and f["t"] < retry["t"]
        for i in f["data"]["accepted"] + f["data"]["duplicates"]
    }
    waiting = {e["id"] for f in sent if f["t"] < retry["t"] for e in f["data"]["events"]}
    assert waiting - answered <= {e["id"] for e in retry["data"]["events"]}, json.dumps(frames)
    assert page.errors == []
