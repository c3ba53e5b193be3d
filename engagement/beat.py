"""Celery beat schedule for production (settings: CELERY_BEAT_SCHEDULE = ENGAGEMENT_BEAT).
The embedded mode runs the same sweep from engagement.scheduler instead."""

from __future__ import annotations

SWEEP_SECONDS = 60.0

ENGAGEMENT_BEAT = {
    "engagement-sweep": {
        "task": "engagement.tasks.sweep",
        "schedule": SWEEP_SECONDS,
        # A pass that could not start within a minute is replaced by the next one.
        "options": {"expires": SWEEP_SECONDS},
    }
}
