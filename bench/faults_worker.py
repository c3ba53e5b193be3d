"""The fault suite's Celery scenario (run through bench/faults.py): `worker-kills`.

Two Celery workers (solo pool, as the README deploys them) and Celery beat on our own Redis and
PostgreSQL; an engagement rule sends an e-mail (SMTP) and a signed webhook when a person signs
up. People sign up steadily through the server API while one of the workers is SIGKILLed every
10 s and started again, for `minutes` (5 by default). The e-mails arrive at a real SMTP server
(aiosmtpd) and the webhooks at a real HTTP server, both in this process, which count every
arrival by its delivery id (`X-Milepost-Delivery` / `Milepost-Delivery`). Expected: every
person's e-mail and webhook arrive, each exactly once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import http.server
import threading
import time
from email import message_from_bytes
from typing import Any

from faults_stack import (
    free_port,
    load_average,
    log,
    new_events,
    stack,
    workspace_create,
)

# A task lost with a killed worker is run again after the broker's visibility timeout (the
# README's MILEPOST_TASK_VISIBILITY_TIMEOUT_SECONDS); short here so the run stays short.
VISIBILITY_TIMEOUT_SECONDS = 30


class Arrivals:
    """Every e-mail and webhook received, by delivery id, from the servers' threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.emails: collections.Counter[str] = collections.Counter()
        self.webhooks: collections.Counter[str] = collections.Counter()

    def add(self, kind: collections.Counter[str], delivery: str) -> None:
        with self.lock:
            kind[delivery] += 1


class Mailbox:
    """aiosmtpd's handler: one count per message, by its X-Milepost-Delivery header."""

    def __init__(self, arrivals: Arrivals) -> None:
        self.arrivals = arrivals

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content)
        self.arrivals.add(self.arrivals.emails, str(message.get("X-Milepost-Delivery")))
        return "250 OK"


def webhook_receiver(arrivals: Arrivals) -> tuple[http.server.ThreadingHTTPServer, int]:
    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            arrivals.add(arrivals.webhooks, str(self.headers.get("Milepost-Delivery")))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, port


def seed(webhook_port: int) -> tuple[Any, dict[str, str]]:
    from engagement.models import EngagementSettings, Message, Rule, Trigger, WebhookEndpoint

    workspace, keys = workspace_create("worker-kills")
    EngagementSettings.objects.create(workspace=workspace, allow_private_webhook_addresses=True)
    endpoint = WebhookEndpoint.objects.create(
        workspace=workspace, name="Receiver", url=f"http://127.0.0.1:{webhook_port}/hook"
    )
    message = Message.objects.create(
        workspace=workspace, key="welcome", name="Welcome", title="Welcome", body="Hello.",
        email_subject="Welcome",
    )  # fmt: skip
    Rule.objects.create(
        workspace=workspace, key="on-signup", name="On sign-up", trigger=Trigger.EVENT,
        event_name="signed_up", message=message, send_in_app=False, send_email=True,
        email_to="team@example.com", webhook=endpoint,
    )  # fmt: skip
    return workspace, keys


def delivery_counts(workspace_id: int) -> dict[str, dict[str, int]]:
    from django.db import connection
    from django.db.models import Count

    from engagement.models import Delivery

    try:
        rows = (
            Delivery.objects.filter(workspace_id=workspace_id)
            .values_list("channel", "status")
            .annotate(n=Count("pk"))
        )
        counts: dict[str, dict[str, int]] = collections.defaultdict(dict)
        for channel, status, n in rows:
            counts[channel][status] = n
        return dict(counts)
    finally:
        connection.close()


def delivery_ids(workspace_id: int) -> dict[str, set[str]]:
    from django.db import connection

    from engagement.models import Delivery

    try:
        ids: dict[str, set[str]] = collections.defaultdict(set)
        for channel, uid in Delivery.objects.filter(workspace_id=workspace_id).values_list(
            "channel", "uid"
        ):
            ids[channel].add(str(uid))
        return ids
    finally:
        connection.close()


async def worker_kills(
    minutes: float = 5.0, every: float = 10.0, signups_per_second: float = 2.0
) -> dict[str, Any]:
    import httpx
    from aiosmtpd.controller import Controller
    from asgiref.sync import sync_to_async

    arrivals = Arrivals()
    smtp_port = free_port()
    smtp = Controller(Mailbox(arrivals), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    receiver, webhook_port = webhook_receiver(arrivals)
    try:
        with stack() as running:
            workspace, keys = await sync_to_async(seed)(webhook_port)
            env = {
                "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "EMAIL_HOST": "127.0.0.1",
                "EMAIL_PORT": str(smtp_port),
                "MILEPOST_TASK_VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY_TIMEOUT_SECONDS),
                "MILEPOST_ENGAGEMENT_SWEEP_SECONDS": "10",
            }
            base = running.uvicorn("uvicorn-api", **env)
            workers = [running.celery(f"celery-{n}@faults", **env) for n in range(2)]
            running.celery_beat("celery-beat", **env)
            people: list[str] = []
            kills = 0
            stop_at = time.monotonic() + minutes * 60
            headers = {"Authorization": f"Bearer {keys['secret_key']}"}
            log(
                f"worker-kills: {signups_per_second:g} sign-ups/s for {minutes:g} min, one of "
                f"{len(workers)} workers SIGKILLed every {every:g} s"
            )

            async def sign_ups(http: httpx.AsyncClient) -> None:
                next_at = time.monotonic()
                while time.monotonic() < stop_at:
                    person = f"signup-{len(people)}"
                    body = {"events": new_events(1, "signed_up", person)}
                    while True:
                        with contextlib.suppress(httpx.HTTPError):
                            answer = await http.post(
                                f"{base}/api/v1/events", json=body, headers=headers
                            )
                            if answer.status_code == 200:
                                break
                        await asyncio.sleep(0.5)
                    people.append(person)
                    next_at += 1 / signups_per_second
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))

            async def killer() -> None:
                nonlocal kills
                while time.monotonic() + every < stop_at:
                    await asyncio.sleep(every)
                    victim = workers[kills % len(workers)]
                    victim.kill()
                    kills += 1
                    victim.start()

            async with httpx.AsyncClient(timeout=30) as http:
                await asyncio.gather(sign_ups(http), killer())
            expected = len(people)
            log(f"{expected} sign-ups, {kills} kills; waiting for the deliveries to drain")
            drain_started = time.monotonic()
            # Lost tasks come back after the visibility timeout; stale pending deliveries are
            # re-enqueued by the sweep after 2 minutes: wait for both, and a margin.
            drain_deadline = drain_started + VISIBILITY_TIMEOUT_SECONDS + 240
            while time.monotonic() < drain_deadline:
                with arrivals.lock:
                    done = len(arrivals.emails) >= expected and len(arrivals.webhooks) >= expected
                if done:
                    break
                await asyncio.sleep(2)
            await asyncio.sleep(5)  # anything sent twice would arrive now
            drained_in = time.monotonic() - drain_started
            counts = await sync_to_async(delivery_counts)(workspace.pk)
            ids = await sync_to_async(delivery_ids)(workspace.pk)
            with arrivals.lock:
                emails, webhooks = (
                    collections.Counter(arrivals.emails),
                    collections.Counter(arrivals.webhooks),
                )
            return {
                "minutes of kills": minutes,
                "workers killed (SIGKILL)": kills,
                "people signed up (each: one e-mail, one webhook)": expected,
                "deliveries by channel and status": counts,
                "e-mails received / distinct deliveries / received twice or more": [
                    sum(emails.values()),
                    len(emails),
                    sum(1 for n in emails.values() if n > 1),
                ],
                "webhooks received / distinct deliveries / received twice or more": [
                    sum(webhooks.values()),
                    len(webhooks),
                    sum(1 for n in webhooks.values() if n > 1),
                ],
                "people without an e-mail": expected - len(emails),
                "people without a webhook": expected - len(webhooks),
                "received for no delivery on record": len(
                    (set(emails) - ids.get("email", set()))
                    | (set(webhooks) - ids.get("webhook", set()))
                ),
                "seconds from the last sign-up until all arrived": round(drained_in, 1),
                "load average at the end": load_average(),
                "worker tracebacks": running.tracebacks(),
            }
    finally:
        smtp.stop()
        receiver.shutdown()
