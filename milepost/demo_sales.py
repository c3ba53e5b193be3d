"""The demo's "sales inbox": a stand-in for the CRM or sales channel that Milepost's PQL webhook
tells. Mounted by the demo host app (milepost/demo_host.py) at /sales on DEMO_HOST_URL:

- `POST /sales/webhook` checks the `Milepost-Signature` header (HMAC-SHA256 over
  "timestamp.body" with the secret of the demo workspace's sales endpoint, read from the
  database; timestamps more than five minutes off are refused as replays) and keeps the payload
  in memory: 401 for a missing or bad signature, 400 for a body that is not a JSON object, 413
  above MAX_BODY_BYTES; a delivery id seen before is acknowledged without being listed twice.
- `GET /sales` lists what arrived, newest first (the last KEPT webhooks of this process).

It is what a receiver on the customer's side does, in a few lines, and it needs a Django-
configured process (the demo host app sets Django up before importing it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.template.loader import render_to_string

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

PREFIX = "/sales"
WEBHOOK_PATH = "/sales/webhook"
MAX_BODY_BYTES = 256 * 1024
KEPT = 200
TOLERANCE_SECONDS = 300


@dataclass(frozen=True)
class ReceivedWebhook:
    delivery_id: str
    received_at: datetime
    payload: dict[str, Any]

    @property
    def pretty(self) -> str:
        return json.dumps(self.payload, indent=2, ensure_ascii=False)


inbox: deque[ReceivedWebhook] = deque(maxlen=KEPT)


def _sales_secrets() -> list[str]:
    from engagement.management.commands.seed_demo_engagement import DEMO_SLUG, SALES_WEBHOOK_PATH
    from engagement.models import WebhookEndpoint

    try:
        return list(
            WebhookEndpoint.objects.filter(
                workspace__slug=DEMO_SLUG, is_active=True, url__endswith=SALES_WEBHOOK_PATH
            ).values_list("secret", flat=True)
        )
    finally:
        # No Django request cycle here to give the connection back to the pool.
        close_old_connections()


def signature_problem(header: str, body: bytes, secrets: list[str], now: float) -> str:
    """Why the signature does not hold, or "" when it does (for one of `secrets`)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if "t" not in fields or "v1" not in fields:
        return "Milepost-Signature must look like t=<unix seconds>,v1=<hex HMAC-SHA256>."
    try:
        timestamp = int(fields["t"])
    except ValueError:
        return "Milepost-Signature: t is not a number of seconds."
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        return f"Milepost-Signature: t is more than {TOLERANCE_SECONDS} s away from now."
    signed = fields["t"].encode() + b"." + body
    for secret in secrets:
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, fields["v1"]):
            return ""
    return "Milepost-Signature does not match the sales endpoint's secret."


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"content-security-policy", b"default-src 'none'; style-src 'self'"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _json(send: Send, status: int, value: dict[str, Any]) -> None:
    await _respond(send, status, json.dumps(value).encode(), "application/json")


async def _read_body(receive: Receive) -> bytes | None:
    """The request body, or None once it passes MAX_BODY_BYTES."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > MAX_BODY_BYTES:
            return None
        if not message.get("more_body"):
            return body


async def _receive_webhook(scope: Scope, receive: Receive, send: Send) -> None:
    headers = {name.decode("latin-1").lower(): value for name, value in scope["headers"]}
    body = await _read_body(receive)
    if body is None:
        await _json(send, 413, {"error": f"The body is larger than {MAX_BODY_BYTES} bytes."})
        return
    header = headers.get("milepost-signature", b"").decode("latin-1")
    # Not the thread-sensitive executor: in the embedded mode the webhook that arrives here is
    # sent from that very thread (eager tasks), which waits for this answer.
    secrets = await sync_to_async(_sales_secrets, thread_sensitive=False)()
    problem = signature_problem(header, body, secrets, time.time())
    if problem:
        await _json(send, 401, {"error": problem})
        return
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        payload = None
    if not isinstance(payload, dict):
        await _json(send, 400, {"error": "The body must be a JSON object."})
        return
    delivery_id = headers.get("milepost-delivery", b"").decode("latin-1")[:64]
    duplicate = bool(delivery_id) and any(w.delivery_id == delivery_id for w in inbox)
    if not duplicate:
        inbox.appendleft(ReceivedWebhook(delivery_id, datetime.now(tz=UTC), payload))
    await _json(send, 200, {"received": True, "duplicate": duplicate})


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    """Serves /sales and /sales/webhook (full paths); anything else is a 404."""
    if scope["type"] != "http":
        return
    path, method = scope["path"], scope["method"]
    if path == WEBHOOK_PATH:
        if method != "POST":
            await _json(send, 405, {"error": "POST a signed webhook here."})
            return
        await _receive_webhook(scope, receive, send)
    elif path in {PREFIX, PREFIX + "/"}:
        if method != "GET":
            await _json(send, 405, {"error": "GET this page."})
            return
        html = render_to_string("engagement/demo_sales.html", {"webhooks": list(inbox)})
        await _respond(send, 200, html.encode(), "text/html; charset=utf-8")
    else:
        await _respond(send, 404, b"Not found", "text/plain")
