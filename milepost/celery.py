"""The Celery app. Tasks run eagerly in the embedded mode (see settings)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import task_failure

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "milepost.settings")

app = Celery("milepost")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_failure.connect
def _count_task_error(**kwargs: Any) -> None:
    from onboarding import metrics

    metrics.ERRORS.labels("task").inc()
