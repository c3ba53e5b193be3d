"""Celery tasks of analytics, run by beat: the store export every ANALYTICS_EXPORT_SECONDS and
the journey rollups' refresh every MILEPOST_ROLLUP_REFRESH_SECONDS."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from analytics import journey_rollups, services, store_export


@shared_task(name="analytics.tasks.export", ignore_result=True)
def export() -> dict[str, Any]:
    result = store_export.export()
    # The lifecycle stages follow the events just exported (throttled inside).
    changed = 0 if result.busy else services.lifecycle_stages_refresh_due()
    return {
        "exported": result.exported,
        "purged": result.purged,
        "busy": result.busy,
        "lifecycle_stages_changed": changed,
    }


@shared_task(name="analytics.tasks.refresh_journey_rollups", ignore_result=True)
def refresh_journey_rollups() -> int:
    return journey_rollups.refresh_stale()
