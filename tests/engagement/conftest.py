from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message as EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from asgiref.sync import SyncToAsync
from django.db import connections
from django.test import override_settings

from engagement import rule_index
from engagement.models import EngagementSettings
from milepost import demo_sales
from milepost.celery import app as celery_app
from tests.browser.conftest import ServerThread, free_port, listener, port_of


@pytest.fixture(autouse=True)
def _eager_tasks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tasks run in-process here (on both backends); the worker tests start a real worker."""
    if "celery_worker" in request.fixturenames:
        yield
        return
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


@pytest.fixture(autouse=True)
def _fresh_rule_index() -> Iterator[None]:
    """Each test starts with no cached rule index: SQLite hands a rolled-back test's workspace
    id out again, and the index of that workspace would outlive the rows it describes."""
    rule_index.forget_all()
    yield
    rule_index.forget_all()


@dataclass
class Mailbox:
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        parsed["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(parsed)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[Mailbox]:
    """A real SMTP server on 127.0.0.1; Django's SMTP backend sends to it."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=port,
            EMAIL_USE_TLS=False,
        ):
            yield mailbox
    finally:
        controller.stop()


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 that checks Milepost's signature like a CRM would."""

    secret: str = ""
    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    bad_signatures: int = 0
    url: str = ""

    def signature_valid(self, header: str, body: bytes) -> bool:
        parts = dict(item.split("=", 1) for item in header.split(","))
        expected = hmac.new(
            self.secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(expected, parts.get("v1", ""))


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if not receiver.signature_valid(self.headers.get("Milepost-Signature", "t=0"), body):
                receiver.bad_signatures += 1
                self.send_response(401)
                self.end_headers()
                return
            receiver.received.append(Received(dict(self.headers), body))
            status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/milepost"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def allow_loopback_webhooks(workspace: Any) -> None:
    EngagementSettings.objects.update_or_create(
        workspace=workspace, defaults={"allow_private_webhook_addresses": True}
    )


@dataclass
class SalesInbox:
    """milepost.demo_sales served by uvicorn on 127.0.0.1, as the demo host app mounts it."""

    url: str

    def webhook_url(self) -> str:
        return f"{self.url}/sales/webhook"


@pytest.fixture
def sales_inbox() -> Iterator[SalesInbox]:
    demo_sales.inbox.clear()
    bound = listener()
    try:
        with ServerThread([(demo_sales.application, bound)]):
            yield SalesInbox(url=f"http://127.0.0.1:{port_of(bound)}")
    finally:
        demo_sales.inbox.clear()
        # The app's ORM reads ran on asgiref's shared thread; close its connection so the test
        # database can be dropped.
        SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=10)
