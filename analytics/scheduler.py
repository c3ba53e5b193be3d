"""The embedded mode's analytics loops: `manage.py run_milepost` runs them beside the servers
(settings.MILEPOST_BACKGROUND_TASKS), so new events reach the analytics store and the journey
rollups count again what commits changed (woken by the commit), without a worker. Production
runs the same work from Celery beat and tasks (analytics.tasks.export,
analytics.tasks.refresh_journey_rollups)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection

from analytics import journey_rollups, rollup_refresh, services, store_export

logger = logging.getLogger(__name__)


async def run() -> None:
    interval = float(settings.ANALYTICS_EXPORT_SECONDS)
    while True:
        try:
            await sync_to_async(_export_once, thread_sensitive=False)()
        except Exception:
            # Keep exporting: a store or database hiccup must not stop reports going fresh.
            logger.exception("analytics export failed")
        await asyncio.sleep(interval)


def _export_once() -> None:
    # Off the servers' thread, so a long first export holds no request up; the thread's
    # connection is closed afterwards, not left to the pool's next user.
    try:
        store_export.export()
        services.lifecycle_stages_refresh_due()
    finally:
        connection.close()


async def run_rollup_refresh() -> None:
    """Count the marked quarter hours right after a commit marks them (it sets `marked`), and
    every MILEPOST_ROLLUP_REFRESH_SECONDS in any case. Commits during a refresh set `marked`
    again: one more refresh follows, however many they were."""
    interval = float(settings.MILEPOST_ROLLUP_REFRESH_SECONDS)
    marked = asyncio.Event()
    with rollup_refresh.listening(marked):
        while True:
            marked.clear()
            try:
                await sync_to_async(_refresh_once, thread_sensitive=False)()
            except Exception:
                # Keep refreshing: a report counts itself what stays stale past the bound.
                logger.exception("journey rollup refresh failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(marked.wait(), interval)


def _refresh_once() -> None:
    try:
        journey_rollups.refresh_stale()
    finally:
        connection.close()
