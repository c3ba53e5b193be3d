"""The embedded mode's export loop: `manage.py run_milepost` runs `run()` beside the servers
(settings.MILEPOST_BACKGROUND_TASKS), so new events reach the analytics store without a worker.
Production runs the same export from Celery beat (analytics.tasks.export)."""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection

from analytics import services, store_export

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
