"""The SDK's socket against a real server that refuses `events` messages and keeps the socket
open: `error {code, retry_after}` says nothing of the message was stored. The SDK holds its
events (nothing more goes out meanwhile), sends again no sooner than `retry_after`, every
refused event in one batch, and each is stored once.

- `rate_limited` (issue 14): the connection's budget of messages a minute is spent.
- `backlog_full` (issue 11): past `MILEPOST_SOCKET_BACKLOG` messages wait. The SDK sends the
  refused events again about a second later, not at its next flush ten seconds on (which may
  never come if the person does nothing more).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import FRAME_LOG, Live, add_hooked_page, events_named, wait_for
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.browser

TRACKED = 15


@dataclass(frozen=True)
class Refusal:
    code: str
    setting: str
    value: int
    stored_within: float  # seconds until every event is stored
    prompt: bool  # the retry comes within its jittered backoff: twice `retry_after`, and a second


REFUSALS = [
    # A token every 5 s, 12 at first: the hello and the `$pageview` take two, so ten more
    # messages go through at once and the next waits about 5 s.
    Refusal("rate_limited", "MILEPOST_MAX_SOCKET_MESSAGES_PER_MINUTE", 12, 30, prompt=False),
    # One message handled and one waiting: a burst of messages finds the inbox full. Stored
    # well before the outbox would send them again by itself (10 s after the first send).
    Refusal("backlog_full", "MILEPOST_SOCKET_BACKLOG", 1, 8, prompt=True),
]


@pytest.mark.parametrize("refusal", REFUSALS, ids=[r.code for r in REFUSALS])
def test_refused_events_are_sent_again_after_retry_after_and_stored_once(
    live: Live, page: Any, settings: Any, refusal: Refusal
) -> None:
    setattr(settings, refusal.setting, refusal.value)
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
    # The host hears of the refusal.
    expect(page.locator(f"body[data-error={refusal.code}]")).to_have_count(1)

    def stored() -> list[int]:
        return sorted(e.properties["n"] for e in events_named("report_exported"))

    assert wait_for(lambda: stored() == list(range(TRACKED)), timeout=refusal.stored_within), (
        stored()
    )
    page.wait_for_timeout(1000)  # a late duplicate would be stored by now
    assert stored() == list(range(TRACKED)), "each event is stored exactly once"
    assert page.evaluate("Object.keys(localStorage).filter(k => k.includes('outbox'))") == []

    frames: list[dict[str, Any]] = page.evaluate("frames_")
    refusals = [f for f in frames if f["way"] == "in" and f["data"].get("code") == refusal.code]
    assert refusals, "the server never refused a message: the test did not reach its limit"
    first = refusals[0]
    retry_after = first["data"]["retry_after"]
    assert retry_after > 0
    sent = [f for f in frames if f["way"] == "out" and f["data"]["type"] == "events"]
    # The first batch sent after the refusal was read is the retry, no sooner than the server
    # asked (a few ms of slack for the two clocks' rounding): no tight loop.
    retry = next(f for f in sent if f["t"] > first["t"])
    waited = (retry["t"] - first["t"]) / 1000
    assert waited >= retry_after - 0.05, (first["data"], waited)
    if refusal.prompt:  # a second for a busy machine's late timer
        assert waited <= 2 * retry_after + 1, (first["data"], waited)
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
