"""The embedded mode's in-process scheduler: `manage.py run_milepost` runs `run()` beside the
servers (settings.MILEPOST_BACKGROUND_TASKS), so inaction and time rules fire without Redis,
a worker or beat. Production runs the same sweep from Celery beat (engagement.beat)."""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import sync_to_async
from django.conf import settings

from engagement import services
from engagement.beat import SWEEP_SECONDS

logger = logging.getLogger(__name__)


async def run() -> None:
    interval = float(getattr(settings, "MILEPOST_ENGAGEMENT_SWEEP_SECONDS", SWEEP_SECONDS))
    while True:
        try:
            result = await sync_to_async(services.rules_sweep, thread_sensitive=True)()
            if result.fired or result.enqueued:
                logger.info("engagement sweep: %s", result)
        except Exception:
            # Keep sweeping: a database hiccup must not stop time-based rules for good.
            logger.exception("engagement sweep failed")
        await asyncio.sleep(interval)
