"""The asyncio client against a live Milepost: the same calls, awaited, with a background task
that sends tracked events."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from milepost_client import AsyncMilepost, JourneyFunnel, Milepost, NotFoundError, RetryPolicy

from onboarding.models import Event
from tests.clients.conftest import TRIAL_CONTENT, GatewayTimeoutOnce, LiveMilepost, serve


def stored(ids: list[str]) -> int:
    return Event.objects.filter(client_id__in=[uuid.UUID(i) for i in ids]).count()


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


async def test_the_async_client_retries_a_timed_out_batch_and_stores_it_once(
    live_milepost: LiveMilepost,
) -> None:
    gateway = GatewayTimeoutOnce()
    with serve(gateway) as server:
        async with AsyncMilepost(
            server.url,  # type: ignore[attr-defined]
            live_milepost.secret_key,
            retry=RetryPolicy(max_retries=1, backoff=0.01),
        ) as client:
            ids = [client.track("user-9", "message_sent") for _ in range(3)]
            await client.flush()

    assert gateway.timed_out == 1
    assert await sync_to_async(stored)(ids) == 3


async def test_the_async_client_answers_the_same_typed_results_as_the_sync_one(
    live_milepost: LiveMilepost,
) -> None:
    today = datetime.now(UTC).date()
    dates = {"date_from": today - timedelta(days=1), "date_to": today + timedelta(days=1)}
    async with AsyncMilepost(live_milepost.url, live_milepost.secret_key) as client:
        await client.import_content(TRIAL_CONTENT, publish=True)
        await client.send_events(
            [{"id": str(uuid.uuid4()), "user_id": "ann", "name": "message_sent"} for _ in range(2)]
        )
        funnel = await client.journey_funnel("trial", **dates)
        velocity = await client.velocity("trial", **dates)
        progress = await client.progress("ann")

    with Milepost(live_milepost.url, live_milepost.secret_key) as sync_client:
        assert funnel == await sync_to_async(sync_client.journey_funnel)("trial", **dates)
        assert velocity == await sync_to_async(sync_client.velocity)("trial", **dates)
    assert isinstance(funnel, JourneyFunnel)
    assert funnel.step("sent-2-messages").reached == 1
    assert velocity.milestone("sent-2-messages").reached == 1
    assert progress.journey("trial").pql_at is not None
