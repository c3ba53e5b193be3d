"""Against the production services: PostgreSQL row locks, a real Celery worker on Redis, and
a worker killed in the middle of a delivery."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings
from django.db import connection, connections

from engagement import services
from engagement.models import Channel, Delivery, FrequencyCap, Trigger
from tests.engagement.conftest import Mailbox, free_port
from tests.engagement.factories import RuleFactory
from tests.factories import EndUserFactory

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], bool], *, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def test_frequency_caps_hold_under_concurrent_events() -> None:
    end_user = EndUserFactory()
    FrequencyCap.objects.create(
        workspace=end_user.workspace, channel=Channel.IN_APP, limit=2, period=timedelta(days=1)
    )
    rules = [RuleFactory(workspace=end_user.workspace) for _ in range(8)]
    start = threading.Barrier(len(rules))

    def fire(rule: Any) -> None:
        try:
            start.wait()
            services.rule_fire(rule=rule, end_user_id=end_user.pk, occurrence="once")
        finally:
            connection.close()

    threads = [threading.Thread(target=fire, args=(rule,)) for rule in rules]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = sorted(Delivery.objects.filter(end_user=end_user).values_list("status", flat=True))
    assert statuses == ["sent"] * 2 + ["skipped"] * 6


def test_one_occurrence_fired_concurrently_by_many_workers_is_delivered_once() -> None:
    end_user = EndUserFactory()
    rule = RuleFactory(workspace=end_user.workspace)
    start = threading.Barrier(6)

    def fire() -> None:
        try:
            start.wait()
            services.rule_fire(rule=rule, end_user_id=end_user.pk, occurrence="once")
        finally:
            connection.close()

    threads = [threading.Thread(target=fire) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Delivery.objects.filter(rule=rule).count() == 1


class StallingMailbox(Mailbox):
    """Holds the first SMTP conversation at RCPT until released, so a worker can be killed
    while it is in the middle of sending."""

    def __init__(self) -> None:
        super().__init__()
        self.stalled = threading.Event()
        self.conversations = 0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        self.conversations += 1
        if self.conversations == 1:
            self.stalled.set()
            await asyncio.sleep(60)
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[StallingMailbox, int]]:
    box = StallingMailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
def celery_worker() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start real Celery workers (solo pool) on the test database and Redis."""
    started: list[subprocess.Popen[bytes]] = []
    database = connection.settings_dict
    credentials = database["USER"] + (f":{database['PASSWORD']}" if database["PASSWORD"] else "")
    url = f"postgres://{credentials}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    script = (
        "from milepost.celery import app;"
        "app.conf.broker_transport_options = {'visibility_timeout': 3,"
        " 'unacked_restore_interval': 1, 'unacked_restore_throttle': 1};"
        "app.worker_main(['worker', '--pool=solo', '--loglevel=INFO', '--without-mingle',"
        " '--without-gossip', '-n', 'engagement-test@%h'])"
    )

    def start(**environment: str) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "REDIS_URL": str(settings.REDIS_URL),
            "CELERY_TASK_ALWAYS_EAGER": "false",
            **environment,
        }
        worker = subprocess.Popen(  # noqa: S603
            [sys.executable, "-c", script], cwd=ROOT, env=env, start_new_session=True
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
    connections.close_all()


def test_a_real_worker_delivers_an_email_and_a_worker_killed_mid_send_loses_and_duplicates_nothing(
    celery_worker: Callable[..., subprocess.Popen[bytes]],
    mailbox: tuple[StallingMailbox, int],
) -> None:
    box, port = mailbox
    smtp = {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(port),
    }
    end_user = EndUserFactory(traits={"email": "kim@example.com", "first_name": "Kim"})
    rule = RuleFactory(
        workspace=end_user.workspace,
        trigger=Trigger.EVENT,
        send_in_app=False,
        send_email=True,
    )
    first = celery_worker(**smtp)

    [delivery] = services.rule_fire(rule=rule, end_user_id=end_user.pk, occurrence="once")
    assert box.stalled.wait(timeout=60), "the worker never started sending"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.PENDING
    assert box.messages == []

    celery_worker(**smtp)
    wait_for(
        lambda: Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.SENT,
        seconds=90,
        what="the second worker to send the delivery",
    )

    delivery.refresh_from_db()
    assert delivery.attempts == 1
    assert [attempt.succeeded for attempt in delivery.log.all()] == [True]
    [mail] = box.messages
    assert mail["X-Envelope-To"] == "kim@example.com"
    assert mail["X-Milepost-Delivery"] == str(delivery.uid)
