"""The visual builder's sessions: granted in admin, exchanged by the snippet on the customer's
page, checked on every builder call.

1. `builder_grant` (admin, "Edit on my app"): a one-time token for one editor, one workspace,
   one of its allowed origins and one piece of content. Admin opens
   `<origin><path>#milepost-builder=<token>`; the fragment never reaches a server log.
2. `builder_exchange` (the page's snippet, within 60 s, from that origin): spends the token
   and answers a session token, valid for an hour.
3. `builder_authorize` (every builder call): the session token, from the origin it was bound
   to, not expired, and its user still holding the role it was granted with.

Only the SHA-256 of either token is stored. Every refusal is a `BuilderRefused` with a code
the API answers by name.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from onboarding.models import BuilderSession, Workspace, WorkspaceMember, hash_secret_key

EDITOR_ROLES = {WorkspaceMember.Role.OWNER, WorkspaceMember.Role.EDITOR}
BUILDER_KINDS = ("walkthrough", "tooltip", "progress_bar", "guide", "banner", "survey")
MAX_PATH = 500


class BuilderRefused(Exception):
    """A builder token or session was refused; `status` is the HTTP status to answer."""

    def __init__(self, code: str, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def role_of(*, user: Any, workspace: Workspace) -> str | None:
    """The user's role in the workspace now (a superuser counts as its owner)."""
    if not user.is_active:
        return None
    if user.is_superuser:
        return WorkspaceMember.Role.OWNER
    return (
        WorkspaceMember.objects.filter(workspace=workspace, user=user)
        .values_list("role", flat=True)
        .first()
    )


def builder_url(*, origin: str, path: str, token: str) -> str:
    return f"{origin.rstrip('/')}{path}#milepost-builder={token}"


def check_page_path(path: str) -> str:
    """A path on the chosen origin: starts with one slash, no scheme, no fragment."""
    path = path.strip() or "/"
    if (
        not path.startswith("/")
        or path.startswith("//")
        or "\\" in path
        or "#" in path
        or len(path) > MAX_PATH
        or not path.isprintable()
    ):
        raise BuilderRefused(
            "invalid_path",
            f"Give a path on your app such as /dashboard (at most {MAX_PATH} characters, "
            "starting with one /, no #).",
            400,
        )
    return path


def builder_grant(
    *, user: Any, workspace: Workspace, origin: str, kind: str, content_key: str
) -> str:
    """A one-time token for `user` to open the builder on `origin`; answers it in clear (the
    only time it exists). Refuses an origin the workspace does not allow and a non-member."""
    if kind not in BUILDER_KINDS:
        raise BuilderRefused("unknown_kind", f"The builder edits {', '.join(BUILDER_KINDS)}.", 400)
    if not workspace.allows_origin(origin):
        raise BuilderRefused(
            "origin_not_allowed",
            f"{origin or '(none)'} is not among the workspace's allowed origins; add it to the "
            "workspace first.",
            400,
        )
    role = role_of(user=user, workspace=workspace)
    if role is None:
        raise BuilderRefused("not_a_member", "You are not a member of this workspace.", 403)
    token = f"mpg_{secrets.token_urlsafe(24)}"
    BuilderSession.objects.create(
        workspace=workspace,
        user=user,
        role=role,
        origin=origin.rstrip("/").lower(),
        kind=kind,
        content_key=content_key,
        grant_hash=hash_secret_key(token),
    )
    return token


@transaction.atomic
def builder_exchange(*, token: Any, origin: str | None) -> tuple[BuilderSession, str]:
    """Spend a one-time token; answers the session and its token in clear."""
    if not isinstance(token, str) or not token.startswith("mpg_") or len(token) > 100:
        raise BuilderRefused("invalid_token", "Pass the one-time token admin put in the URL.")
    found = (
        BuilderSession.objects.select_for_update()
        .select_related("workspace", "user")
        .filter(grant_hash=hash_secret_key(token))
        .first()
    )
    now = timezone.now()
    if found is None:
        raise BuilderRefused("invalid_token", "This builder token is unknown.")
    if found.exchanged_at is not None:
        raise BuilderRefused(
            "token_used", "This builder token was already used; open the builder from admin again."
        )
    if now - found.granted_at > timedelta(seconds=BuilderSession.GRANT_SECONDS):
        raise BuilderRefused(
            "token_expired",
            f"Builder tokens must be used within {BuilderSession.GRANT_SECONDS} s; open the "
            "builder from admin again.",
        )
    _check_origin(found, origin)
    session_token = f"mpb_{secrets.token_urlsafe(32)}"
    found.exchanged_at = now
    found.expires_at = now + timedelta(seconds=BuilderSession.SESSION_SECONDS)
    found.session_hash = hash_secret_key(session_token)
    found.save(update_fields=["exchanged_at", "expires_at", "session_hash"])
    _check_role(found)
    return found, session_token


def builder_authorize(*, session_token: str, origin: str | None) -> BuilderSession:
    """The live session a builder call carries, or BuilderRefused naming why not."""
    if not session_token.startswith("mpb_") or len(session_token) > 100:
        raise BuilderRefused("invalid_session", "Send 'Authorization: Builder mpb_…'.")
    found = (
        BuilderSession.objects.select_related("workspace", "user")
        .filter(session_hash=hash_secret_key(session_token))
        .first()
    )
    if found is None:
        raise BuilderRefused("invalid_session", "This builder session is unknown.")
    if found.expires_at is None or timezone.now() >= found.expires_at:
        raise BuilderRefused(
            "session_expired", "This builder session has expired; open it from admin again."
        )
    _check_origin(found, origin)
    _check_role(found)
    return found


def _check_origin(session: BuilderSession, origin: str | None) -> None:
    mine = (origin or "").rstrip("/").lower()
    if mine != session.origin or not session.workspace.allows_origin(mine):
        raise BuilderRefused(
            "origin_not_allowed",
            f"This builder was opened for {session.origin}, not {origin or '(no origin)'}, or "
            "that origin is no longer allowed.",
            403,
        )


def _check_role(session: BuilderSession) -> None:
    role = role_of(user=session.user, workspace=session.workspace)
    lost = role is None or (session.may_save and role not in EDITOR_ROLES)
    if lost:
        raise BuilderRefused(
            "role_lost",
            "You no longer have the role this builder was opened with; ask an owner.",
            403,
        )
