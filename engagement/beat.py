"""The engagement sweep's default interval. Production runs it from Celery beat
(settings.CELERY_BEAT_SCHEDULE, `make worker`); the embedded mode from engagement.scheduler.
Both use settings.MILEPOST_ENGAGEMENT_SWEEP_SECONDS."""

from __future__ import annotations

SWEEP_SECONDS = 60.0
