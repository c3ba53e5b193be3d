"""The widget protocol's logic, shared by the WebSocket consumer and its HTTP fallback: who is
asking (key, Origin, identity), what they get back (`welcome`, `ack`, progress), and the
limits that keep one connection or one key from swamping the server.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction

from onboarding import recording, signals, targeting
from onboarding.auth import KeyRefused, workspace_for_widget
from onboarding.models import EndUser, Workspace

SDK_EVENT_SOURCE = "widget"


class ProtocolError(Exception):
    """A message or request the widget must be told about: `error {code, message}`."""

    def __init__(self, code: str, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def as_message(self) -> dict[str, Any]:
        return {"type": "error", "code": self.code, "message": self.message}


KEY_REFUSAL_STATUS = {
    "missing_key": 401,
    "unknown_key": 401,
    "secret_key_in_browser": 401,
    "origin_not_allowed": 403,
}


def widget_workspace(*, key: Any, origin: str | None) -> Workspace:
    try:
        return workspace_for_widget(key=key, origin=origin)
    except KeyRefused as refusal:
        raise ProtocolError(
            refusal.code, refusal.message, status=KEY_REFUSAL_STATUS.get(refusal.code, 401)
        ) from None


def _user_id(user: Any) -> str:
    if not isinstance(user, dict):
        raise ProtocolError("missing_user", "Identify the user: user must be {id, traits}.")
    if user.get("id") in (None, ""):
        raise ProtocolError("missing_user", "user.id is missing; call Milepost.identify(id).")
    try:
        return recording.clean_external_id(user["id"])
    except recording.EventRejected as error:
        raise ProtocolError("invalid_user", f"user.{error}") from None


def check_identity(workspace: Workspace, external_id: str, user_hash: Any) -> None:
    if not workspace.enforce_identity_verification:
        return
    if not workspace.user_hash_matches(external_id, user_hash):
        raise ProtocolError(
            "invalid_user_hash",
            "This workspace verifies identities: user_hash must be the hex HMAC-SHA256 of the "
            "user id with the workspace's identity secret.",
            status=403,
        )


def session_open(*, workspace: Workspace, hello: dict[str, Any]) -> EndUser:
    """Identify the end user of a `hello` (or an HTTP bootstrap) and start their journeys."""
    user = hello.get("user")
    external_id = _user_id(user)
    check_identity(workspace, external_id, hello.get("user_hash"))
    traits = user.get("traits") if isinstance(user, dict) else None
    try:
        return recording.end_user_identify(
            workspace=workspace, external_id=external_id, traits=traits
        )
    except recording.EventRejected as error:
        raise ProtocolError("invalid_traits", str(error)) from None


def end_user_for(*, workspace: Workspace, user_id: Any, user_hash: Any) -> EndUser:
    """The already identified end user of an HTTP call that names them."""
    external_id = _user_id({"id": user_id})
    check_identity(workspace, external_id, user_hash)
    end_user = EndUser.objects.filter(workspace=workspace, external_id=external_id).first()
    if end_user is None:
        raise ProtocolError(
            "unknown_user", "This user has not been identified yet; bootstrap first.", status=404
        )
    return end_user


def welcome(*, end_user: EndUser, session: str | None, traits: Any = None) -> dict[str, Any]:
    """What this user sees. `user.traits` echoes only what the page itself sent: traits set by
    the SaaS backend with its secret key (e-mail, revenue, internal flags) never reach a
    browser, which holds only the publishable key."""
    end_user.refresh_from_db(fields=["push_sequence"])
    return {
        "type": "welcome",
        "user": {"id": end_user.external_id, "traits": traits if isinstance(traits, dict) else {}},
        "content": targeting.content_for(end_user=end_user, session=session),
        "journeys": recording.journey_progress(end_user=end_user),
        "theme": end_user.workspace.theme,
        "seq": end_user.push_sequence,
    }


def content_message(*, end_user: EndUser, session: str | None) -> dict[str, Any]:
    return {"type": "content", "content": targeting.content_for(end_user=end_user, session=session)}


def progress_snapshot(*, end_user: EndUser) -> dict[str, Any]:
    end_user.refresh_from_db(fields=["push_sequence"])
    return {
        "journeys": recording.journey_progress(end_user=end_user),
        "seq": end_user.push_sequence,
    }


def events_receive(*, end_user: EndUser, payload: dict[str, Any]) -> dict[str, Any]:
    events = payload.get("events")
    if not isinstance(events, list):
        raise ProtocolError("invalid_events", "events must be a list of events.")
    if len(events) > settings.MILEPOST_MAX_EVENTS_PER_BATCH:
        raise ProtocolError(
            "batch_too_large",
            f"{len(events)} events in one batch; the limit is "
            f"{settings.MILEPOST_MAX_EVENTS_PER_BATCH}.",
            status=413,
        )
    try:
        ack = recording.events_record(
            workspace=end_user.workspace,
            events=events,
            source=SDK_EVENT_SOURCE,
            sent_at=payload.get("sent_at"),
            end_user=end_user,
        )
    except IntegrityError:
        # The person was erased (DELETE /users/{id}) while this tab stayed open.
        raise ProtocolError(
            "unknown_user", "This user no longer exists; identify again.", status=404
        ) from None
    return {"type": "ack", **ack.as_dict()}


def announce_connected(*, end_user: EndUser) -> None:
    transaction.on_commit(
        lambda: signals.end_user_connected.send(
            sender=EndUser, workspace_id=end_user.workspace_id, end_user_id=end_user.pk
        )
    )


def key_rate_allows(workspace_id: int) -> bool:
    """A fixed one-minute window per publishable key, shared by every server process through
    the cache (Redis in production)."""
    window = int(time.time() // 60)
    name = f"milepost:rate:{workspace_id}:{window}"
    cache.add(name, 0, timeout=120)
    try:
        count = cache.incr(name)
    except ValueError:
        cache.set(name, 1, timeout=120)
        count = 1
    return count <= settings.MILEPOST_MAX_MESSAGES_PER_KEY_PER_MINUTE


@dataclass
class ConnectionRate:
    """A token bucket per socket: `limit` messages a minute, refilled continuously."""

    limit: int
    tokens: float = -1.0
    updated: float = 0.0

    def allows(self) -> bool:
        now = time.monotonic()
        if self.tokens < 0:
            self.tokens, self.updated = float(self.limit), now
        self.tokens = min(self.limit, self.tokens + (now - self.updated) * self.limit / 60)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
