"""Celery tasks of analytics, run by beat: the store export every ANALYTICS_EXPORT_SECONDS and
the journey rollups' refresh every MILEPOST_ROLLUP_REFRESH_SECONDS."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from analytics import journey_rollups, store_export


@shared_task(name="analytics.tasks.export", ignore_result=True)
def export() -> dict[str, Any]:
    result = store_export.export()
    return {"exported": result.exported, "purged": result.purged, "busy": result.busy}


@shared_task(name="analytics.tasks.refresh_journey_rollups", ignore_result=True)
def refresh_journey_rollups() -> int:
    return journey_rollups.refresh_stale()
