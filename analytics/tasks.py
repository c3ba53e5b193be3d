"""Celery tasks of analytics, run by beat: the store export every ANALYTICS_EXPORT_SECONDS and
the journey rollups' refresh every MILEPOST_ROLLUP_REFRESH_SECONDS (and, per journey, right
after commits that mark them: analytics/rollup_refresh.py)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from analytics import journey_rollups, rollup_refresh, services, store_export


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
def refresh_journey_rollups(journey_ids: list[int] | None = None) -> int:
    """Every journey's marks (beat), or these journeys' right after their commits."""
    if journey_ids is not None:
        rollup_refresh.refresh_taken(journey_ids)
    return journey_rollups.refresh_stale(journey_ids=journey_ids)
