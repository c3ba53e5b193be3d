"""Celery tasks of analytics: the store export, run by beat every ANALYTICS_EXPORT_SECONDS."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from analytics import store_export


@shared_task(name="analytics.tasks.export", ignore_result=True)
def export() -> dict[str, Any]:
    result = store_export.export()
    return {"exported": result.exported, "purged": result.purged, "busy": result.busy}
