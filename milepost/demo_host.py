"""The "Acme" demo host app: a customer's tiny SaaS app (dashboard, campaigns, contacts) that
embeds the Milepost snippet, served on its own origin (http://localhost:8001 next to Milepost
on http://127.0.0.1:8000) by `manage.py run_milepost`.

It behaves like a real customer page: a strict CSP (`script-src 'nonce-…' 'strict-dynamic';
style-src 'self'`), no inline style, CSS and JS from files, and the identity hash computed on
the server. A new visitor gets a fresh demo user id (cookie) signed up now, so they see the
welcome tour; /new-visitor starts over as someone new.
"""

from __future__ import annotations

import json
import mimetypes
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "milepost.settings")
django.setup()

from asgiref.sync import sync_to_async  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import close_old_connections  # noqa: E402
from django.template.loader import render_to_string  # noqa: E402
from django.utils import timezone  # noqa: E402

from milepost import demo_sales  # noqa: E402
from onboarding.models import Workspace  # noqa: E402

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

DEMO_SLUG = "acme"
COOKIE = "acme_demo_user"
STATIC_DIR = (Path(settings.RESOURCE_DIR) / "static" / "demo").resolve()
PAGES = {
    "/dashboard": ("demo/dashboard.html", "Dashboard"),
    "/campaigns": ("demo/campaigns.html", "Campaigns"),
    "/contacts": ("demo/contacts.html", "Contacts"),
}


@dataclass(frozen=True)
class Visitor:
    id: str
    signed_up_at: str
    new: bool


def _visitor(headers: list[tuple[bytes, bytes]]) -> Visitor:
    cookie: SimpleCookie = SimpleCookie()
    for name, value in headers:
        if name == b"cookie":
            cookie.load(value.decode("latin-1"))
    morsel = cookie.get(COOKIE)
    if morsel is not None and "|" in morsel.value:
        user_id, signed_up_at = morsel.value.split("|", 1)
        if user_id.startswith("demo-") and len(user_id) <= 40:
            return Visitor(user_id, signed_up_at, new=False)
    return Visitor(f"demo-{secrets.token_hex(6)}", timezone.now().isoformat(), new=True)


def _workspace() -> Workspace | None:
    try:
        return Workspace.objects.filter(slug=DEMO_SLUG).first()
    finally:
        # No Django request cycle here to give the connection back to the pool.
        close_old_connections()


def _json_for_script(value: Any) -> str:
    # Safe inside <script>: no "</script>" or HTML comment can be formed.
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e")


def _page(path: str, visitor: Visitor, workspace: Workspace | None, nonce: str) -> str:
    template, title = PAGES[path]
    context: dict[str, Any] = {
        "title": title,
        "path": path,
        "nonce": nonce,
        "visitor": visitor,
        "workspace": workspace,
        "milepost_url": settings.PUBLIC_URL,
        "admin_url": f"{settings.PUBLIC_URL}/admin/onboarding/enduser/?q={visitor.id}",
    }
    if workspace is not None:
        traits = {"plan": "trial", "name": "Demo visitor", "signed_up_at": visitor.signed_up_at}
        context["identify"] = _json_for_script(
            [
                "identify",
                visitor.id,
                traits,
                {"userHash": workspace.user_hash_for(visitor.id)},
            ]
        )
    return render_to_string(template, context)


def content_security_policy(nonce: str) -> str:
    return (
        f"script-src 'nonce-{nonce}' 'strict-dynamic'; style-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _static(send: Send, name: str) -> None:
    path = (STATIC_DIR / name).resolve()
    if not path.is_relative_to(STATIC_DIR) or not path.is_file():
        await _respond(send, 404, b"Not found", "text/plain")
        return
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    await _respond(send, 200, path.read_bytes(), content_type)


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "http":
        return
    path: str = scope["path"]
    if path.startswith("/static/demo/"):
        await _static(send, path.removeprefix("/static/demo/"))
        return
    if path in {"/", "/new-visitor"}:
        extra = [(b"location", b"/dashboard")]
        if path == "/new-visitor":
            extra.append((b"set-cookie", f"{COOKIE}=; Path=/; Max-Age=0".encode()))
        await _respond(send, 302, b"", "text/plain", extra)
        return
    if path == "/sales" or path.startswith("/sales/"):
        # Acme's sales inbox: where the demo's PQL webhook lands (signature checked there).
        await demo_sales.application(scope, receive, send)
        return
    if path not in PAGES:
        await _respond(send, 404, b"Not found", "text/plain")
        return
    visitor = _visitor(scope.get("headers", []))
    workspace = await sync_to_async(_workspace)()
    nonce = secrets.token_urlsafe(18)
    html = await sync_to_async(_page)(path, visitor, workspace, nonce)
    extra = [
        (b"content-security-policy", content_security_policy(nonce).encode()),
        (b"cache-control", b"no-store"),
    ]
    if visitor.new:
        value = f"{COOKIE}={visitor.id}|{visitor.signed_up_at}"
        extra.append((b"set-cookie", f"{value}; Path=/; Max-Age=2592000; SameSite=Lax".encode()))
    await _respond(send, 200, html.encode(), "text/html; charset=utf-8", extra)
