"""What an operator watches: /metrics, /api/v1/ready and JSON logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

from milepost.celery import app as celery_app
from onboarding import recording
from tests.engagement.conftest import free_port
from tests.onboarding.conftest import TrialJourney
from tests.onboarding.test_widget_socket import hello, socket
from tests.servers import uvicorn_server
from tests.test_connections import database_url

ROOT = Path(__file__).resolve().parents[2]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client: Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with override_settings(MILEPOST_METRICS_TOKEN="scraper"):
        response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scraper")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return samples(response.content.decode())


def events(outcome: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("milepost_events_total", (("outcome", outcome),))


OPEN_SOCKETS = ("milepost_open_sockets", ())
PUSHES = ("milepost_push_lag_seconds_count", ())
HTTP_ERRORS = ("milepost_errors_total", (("where", "http"),))


@pytest.mark.django_db
def test_metrics_count_accepted_duplicate_and_rejected_events(
    client: Client, trial: TrialJourney, django_capture_on_commit_callbacks: Any
) -> None:
    before = scrape(client)
    good = {"id": str(uuid.uuid4()), "user_id": "u1", "name": "message_sent"}
    headers = {"HTTP_AUTHORIZATION": f"Bearer {trial.workspace.keys['secret_key']}"}
    for body in (
        {"events": [good, {"id": "bad", "user_id": "u1", "name": "x"}]},
        {"events": [good]},
    ):
        with django_capture_on_commit_callbacks(execute=True):
            answer = client.post(
                "/api/v1/events", json.dumps(body), content_type="application/json", **headers
            )
        assert answer.status_code == 200

    after = scrape(client)

    for outcome in ("accepted", "duplicate", "rejected"):
        assert after[events(outcome)] - before.get(events(outcome), 0) == 1


@pytest.mark.django_db(transaction=True)
async def test_metrics_show_open_sockets_and_push_lag(trial: TrialJourney) -> None:
    client = Client()
    before = await _async_scrape(client)
    communicator = socket(trial.workspace.keys["publishable_key"])
    await communicator.connect()
    await hello(communicator)
    open_now = await _async_scrape(client)
    end_user = await sync_to_async(lambda: trial.workspace.end_users.get(external_id="u1"))()
    await sync_to_async(recording.milestone_complete)(end_user=end_user, milestone=trial.installed)
    pushed = json.loads(await communicator.receive_from(timeout=5))
    await communicator.disconnect()
    after = await _async_scrape(client)

    assert pushed["type"] == "progress"
    assert open_now[OPEN_SOCKETS] == before[OPEN_SOCKETS] + 1
    assert after[OPEN_SOCKETS] == before[OPEN_SOCKETS]
    assert after[PUSHES] >= before.get(PUSHES, 0) + 1


async def _async_scrape(client: Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return await sync_to_async(scrape)(client)


@pytest.mark.django_db
@pytest.mark.urls("tests.observability_urls")
def test_metrics_count_a_request_that_failed_unexpectedly(client: Client) -> None:
    before = scrape(client)
    failing = Client(raise_request_exception=False)

    assert failing.get("/broken").status_code == 500
    assert scrape(client)[HTTP_ERRORS] == before.get(HTTP_ERRORS, 0) + 1


@pytest.mark.django_db
def test_metrics_need_the_token_when_one_is_set(client: Client) -> None:
    with override_settings(MILEPOST_METRICS_TOKEN="s3cret-token"):
        missing = client.get("/metrics")
        wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer guess")
        right = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token")

    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "not_authenticated"
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert b"milepost_events_total" in right.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("debug", "status", "says"),
    [(True, 200, "milepost_open_sockets"), (False, 403, "Set MILEPOST_METRICS_TOKEN")],
)
def test_without_a_token_metrics_are_open_only_in_debug(
    client: Client, debug: bool, status: int, says: str
) -> None:
    with override_settings(DEBUG=debug, MILEPOST_METRICS_TOKEN=""):
        response = client.get("/metrics")

    assert response.status_code == status
    assert says in response.content.decode()


@pytest.mark.services
@pytest.mark.django_db
def test_metrics_show_the_celery_queue_depth(client: Client) -> None:
    broker = redis.Redis.from_url(str(settings.REDIS_URL))
    broker.delete("celery")
    try:
        for _ in range(3):
            celery_app.send_task("engagement.tasks.sweep")
        depth = scrape(client)[("milepost_task_queue_depth", (("queue", "celery"),))]
    finally:
        broker.delete("celery")

    assert depth == 3


# Readiness -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_ready_when_every_dependency_answers(client: Client) -> None:
    response = client.get("/api/v1/ready")

    assert response.status_code == 200
    expected = {"database": "ok", **({"redis": "ok"} if settings.REDIS_URL else {})}
    assert response.json() == {"status": "ready", "checks": expected}


@pytest.mark.django_db
def test_not_ready_while_redis_is_unreachable(client: Client) -> None:
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"):
        response = client.get("/api/v1/ready")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["checks"]["redis"] == "unavailable: ConnectionError"
    assert response.json()["checks"]["database"] == "ok"


@pytest.fixture
def server_without_its_database() -> Iterator[str]:
    env = {
        **{k: v for k, v in os.environ.items() if k != "REDIS_URL"},
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/gone",
        "SECRET_KEY": "x",
    }
    with uvicorn_server(env) as base:
        yield base


def test_a_server_whose_database_is_down_is_alive_but_not_ready(
    server_without_its_database: str,
) -> None:
    health = httpx.get(f"{server_without_its_database}/api/v1/health", timeout=10)
    ready = httpx.get(f"{server_without_its_database}/api/v1/ready", timeout=10)

    assert health.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "unavailable: OperationalError"


# Several processes ---------------------------------------------------------------------------


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_every_worker_process_reports_the_same_totals(trial: TrialJourney) -> None:
    headers = {"Authorization": f"Bearer {trial.workspace.keys['secret_key']}"}
    with tempfile.TemporaryDirectory() as shared:
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "PROMETHEUS_MULTIPROC_DIR": shared,
            "MILEPOST_METRICS_TOKEN": "t",
        }
        with uvicorn_server(env, workers=2) as base:
            for _ in range(20):  # a new connection each: the workers share them out
                batch = [{"id": str(uuid.uuid4()), "user_id": "u1", "name": "x"}]
                answer = httpx.post(
                    f"{base}/api/v1/events", json={"events": batch}, headers=headers
                )
                assert answer.status_code == 200
            totals = {
                samples(httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer t"}).text)[
                    events("accepted")
                ]
                for _ in range(10)
            }

    assert totals == {20}


# Logs ----------------------------------------------------------------------------------------


def test_json_logs_are_one_object_a_line() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, logging; django.setup(); "
            "logging.getLogger('onboarding.demo').warning('queue %s is slow', 'celery')",
        ],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}},
            "DJANGO_SETTINGS_MODULE": "milepost.settings",
            "MILEPOST_LOG_FORMAT": "json",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert line["level"] == "WARNING"
    assert line["logger"] == "onboarding.demo"
    assert line["message"] == "queue celery is slow"
    assert "time" in line
