"""A commit that marks journey rollups stale has them counted right after it, not at the next
periodic tick: the embedded loop is woken, production enqueues one Celery refresh per journey
however many commits come before it runs."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import timedelta

import pytest
import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from analytics import rollup_refresh, scheduler, tasks
from analytics.inputs import DateRange
from analytics.models import JourneyStaleDay
from analytics.report import journey_funnel, milestone_velocity
from milepost.celery import app as celery_app
from onboarding import recording
from tests.factories import EndUserFactory, JourneyFactory, JourneyProgressFactory, MilestoneFactory


@pytest.fixture
def journey(workspace):
    journey = JourneyFactory(workspace=workspace, key="trial")
    for position in range(3):
        MilestoneFactory(journey=journey, key=f"m{position}", position=position)
    return journey


def started_today(journey, count):
    now = timezone.now()
    people = []
    for index in range(count):
        who = EndUserFactory(workspace=journey.workspace, external_id=f"p{index}")
        JourneyProgressFactory(
            end_user=who, journey=journey, started_at=now - timedelta(minutes=20 * index)
        )
        people.append(who)
    return people


def recent_days():
    today = timezone.now().date()
    return DateRange(today - timedelta(days=2), today)


@pytest.mark.django_db(transaction=True)
@override_settings(MILEPOST_ROLLUP_REFRESH_SECONDS=60)
async def test_the_embedded_loop_counts_a_commit_at_once_not_at_its_next_tick(journey):
    people, first = await sync_to_async(closing(lambda: (started_today(journey, 4), m0(journey))))()
    loop = asyncio.create_task(scheduler.run_rollup_refresh())
    try:
        # Its first pass counts the journey's days; then it waits up to 60 s for a commit.
        await wait_until(rollup_refresh.loop_listening, 5)
        before = await sync_to_async(read)(journey)
        await wait_until(lambda: not marked(journey), 10)

        began = time.monotonic()
        for who in people:  # four commits, each marks and wakes the loop
            await sync_to_async(complete)(who, first)
        await wait_until(lambda: not marked(journey), 10)
        landed = time.monotonic() - began
    finally:
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop

    after = await sync_to_async(read)(journey)
    assert landed < 10  # not the 60 s tick
    assert after.steps[1].users == before.steps[1].users + 4
    assert not rollup_refresh.loop_listening()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_many_commits_queue_one_refresh_of_their_journey_until_it_runs(journey):
    assert not celery_app.conf.task_always_eager
    people = started_today(journey, 6)
    first = journey.milestones.get(key="m0")
    cache.delete(rollup_refresh.queued_key(journey.pk))
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queued_before = queued_refreshes(broker, journey.pk)

    for who in people[:5]:
        complete(who, first)
    # Queued by the process's sender thread, off the committing thread.
    after_five = queued_soon(broker, journey.pk, queued_before + 1)
    tasks.refresh_journey_rollups(journey_ids=[journey.pk])  # a worker takes the task
    complete(people[5], first)

    assert after_five == queued_before + 1
    assert queued_soon(broker, journey.pk, queued_before + 2) == queued_before + 2
    # What the first task counted, a report reads from the stored rows straight away.
    assert read(journey).steps[1].users == 5


def m0(journey):
    return journey.milestones.get(key="m0")


def closing(work):
    """`work` on a thread that gives its connection back afterwards."""

    def run():
        try:
            return work()
        finally:
            connection.close()

    return run


def complete(who, milestone):
    try:
        recording.milestone_complete(end_user=who, milestone=milestone)
    finally:
        connection.close()


def read(journey):
    try:
        milestone_velocity.milestone_velocity(journey=journey, date_range=recent_days())
        return journey_funnel.journey_funnel(journey=journey, date_range=recent_days())
    finally:
        connection.close()


def marked(journey) -> bool:
    try:
        return JourneyStaleDay.objects.filter(journey=journey).exists()
    finally:
        connection.close()


async def wait_until(condition, seconds):
    deadline = time.monotonic() + seconds
    while not await sync_to_async(condition)():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def queued_soon(broker, journey_id, expected, seconds=5.0) -> int:
    """The refreshes queued for the journey once `expected` are (or `seconds` have passed),
    a moment later: what the sender thread queued by then, and nothing more."""
    deadline = time.monotonic() + seconds
    while queued_refreshes(broker, journey_id) < expected and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    return queued_refreshes(broker, journey_id)


def queued_refreshes(broker, journey_id) -> int:
    """Refresh tasks for this journey waiting in the Redis broker's queue."""
    count = 0
    for raw in broker.lrange("celery", 0, -1):
        message = json.loads(raw)
        if message["headers"].get("task") != rollup_refresh.TASK:
            continue
        _, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        count += journey_id in (kwargs.get("journey_ids") or [])
    return count
