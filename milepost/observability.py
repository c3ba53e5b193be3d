"""Operations endpoints: Prometheus metrics at /metrics and readiness at /api/v1/ready.

- /metrics is open in the embedded default (DEBUG on, no token set). With MILEPOST_METRICS_TOKEN
  set it needs `Authorization: Bearer <token>`; with DEBUG off and no token it is closed.
- /api/v1/ready answers 200 when every dependency answers (PostgreSQL or SQLite; Redis when
  REDIS_URL is set) and 503 naming the one that does not, so a load balancer stops sending
  traffic to a process that could only fail it. /api/v1/health stays a liveness check.

Both are async views that do their blocking work off the event loop and off Django's single
thread for sync views, so a slow dependency delays nobody else's request.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Iterator
from typing import Any

import psycopg
import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from onboarding import metrics  # noqa: F401 - defines the runtime's metrics in this process
from onboarding.api.errors import error_body

logger = logging.getLogger(__name__)

# Celery's queues on the Redis broker are lists under the queue's name ("celery" by default).
TASK_QUEUES = ("celery",)
DEPENDENCY_TIMEOUT_SECONDS = 2.0
RETRY_AFTER_SECONDS = 5


def _redis() -> redis.Redis:
    return redis.Redis.from_url(
        str(settings.REDIS_URL),
        socket_connect_timeout=DEPENDENCY_TIMEOUT_SECONDS,
        socket_timeout=DEPENDENCY_TIMEOUT_SECONDS,
    )


class TaskQueueDepth(Collector):
    """Tasks waiting in each Celery queue, read from the broker at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if not settings.REDIS_URL or settings.CELERY_TASK_ALWAYS_EAGER:
            return
        family = GaugeMetricFamily(
            "milepost_task_queue_depth", "Celery tasks waiting in the queue.", labels=["queue"]
        )
        try:
            client = _redis()
            with client.pipeline(transaction=False) as pipe:
                for queue in TASK_QUEUES:
                    pipe.llen(queue)
                depths = pipe.execute()
        except redis.RedisError as error:
            # The readiness check says Redis is down; metrics of the rest still go out.
            logger.warning("task queue depth unavailable: %s", error)
            return
        for queue, depth in zip(TASK_QUEUES, depths, strict=True):
            family.add_metric([queue], depth)
        yield family


_task_queue_depth = TaskQueueDepth()
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    REGISTRY.register(_task_queue_depth)


def _metrics_refusal(request: HttpRequest) -> JsonResponse | None:
    token = settings.MILEPOST_METRICS_TOKEN
    if not token:
        if settings.DEBUG:
            return None
        return JsonResponse(
            error_body(
                "metrics_disabled",
                "Set MILEPOST_METRICS_TOKEN to read the metrics when DEBUG is off.",
            ),
            status=403,
        )
    given = request.headers.get("Authorization", "")
    if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return None
    response = JsonResponse(
        error_body("not_authenticated", "Send Authorization: Bearer <MILEPOST_METRICS_TOKEN>."),
        status=401,
    )
    response["WWW-Authenticate"] = 'Bearer realm="milepost-metrics"'
    return response


def _exposition() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Every process's values, added up from the shared directory.
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        registry.register(_task_queue_depth)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


async def metrics_view(request: HttpRequest) -> HttpResponse:
    refusal = _metrics_refusal(request)
    if refusal is not None:
        return refusal
    body = await sync_to_async(_exposition, thread_sensitive=False)()
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


def _database_check() -> str:
    if connection.vendor == "postgresql":
        # A connection of its own with a short timeout: the pool would wait for its timeout.
        parameters = connection.get_connection_params()
        with psycopg.connect(**parameters, connect_timeout=int(DEPENDENCY_TIMEOUT_SECONDS)) as db:
            db.execute("SELECT 1")
        return "ok"
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    connection.close()
    return "ok"


def _redis_check() -> str:
    _redis().ping()
    return "ok"


def _dependencies() -> dict[str, str]:
    checks: dict[str, Any] = {"database": _database_check}
    if settings.REDIS_URL:
        checks["redis"] = _redis_check
    answers = {}
    for name, check in checks.items():
        try:
            answers[name] = check()
        except Exception as error:
            logger.warning("readiness: %s unavailable: %s", name, error)
            answers[name] = f"unavailable: {type(error).__name__}"
    return answers


async def readiness_view(request: HttpRequest) -> JsonResponse:
    checks = await sync_to_async(_dependencies, thread_sensitive=False)()
    ready = all(answer == "ok" for answer in checks.values())
    response = JsonResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )
    if not ready:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
