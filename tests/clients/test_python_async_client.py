"""The asyncio client against a live Milepost: the same calls, awaited, with a background task
that sends tracked events."""

from __future__ import annotations

import asyncio

import pytest
from milepost_client import AsyncMilepost, NotFoundError

from tests.clients.conftest import TRIAL_CONTENT, LiveMilepost


async def test_the_async_client_identifies_tracks_and_reads_progress(
    live_milepost: LiveMilepost,
) -> None:
    async with AsyncMilepost(
        live_milepost.url, live_milepost.secret_key, flush_interval=0.05
    ) as client:
        await client.import_content(TRIAL_CONTENT, publish=True)
        user = await client.identify("user-async", {"plan": "trial"})
        ids = [client.track("user-async", "message_sent") for _ in range(2)]
        for _ in range(200):  # the background task sends them without a flush
            if client.pending == 0:
                break
            await asyncio.sleep(0.05)
        progress = await client.progress("user-async")
        resent = await client.send_events(
            [{"id": i, "user_id": "user-async", "name": "message_sent"} for i in ids]
        )
        completion = await client.complete_milestone("user-async", "installed-js")

    assert user.created
    assert client.pending == 0
    assert progress.journey("trial").pql
    assert resent.duplicates == tuple(ids)
    assert completion.completed


async def test_the_async_client_raises_the_api_code(live_milepost: LiveMilepost) -> None:
    async with AsyncMilepost(live_milepost.url, live_milepost.secret_key) as client:
        with pytest.raises(NotFoundError) as unknown:
            await client.publish("walkthrough", "no-such-tour")

    assert unknown.value.code == "unknown_key"
