"""Who is calling: the secret key (server to server) or the publishable key + Origin (widget).

A key of one workspace reaches nothing of another: every view and consumer reads the workspace
from here and scopes every query by it.
"""

from __future__ import annotations

import json
from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from onboarding import rate_limits
from onboarding.json_values import UNSTORABLE_CHARACTERS
from onboarding.models import Workspace, hash_secret_key


class KeyRefused(Exception):
    """A widget credential was refused; `code` is the socket close code / API error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def workspace_for_secret_key(secret_key: str) -> Workspace | None:
    if not secret_key.startswith("sk_"):
        return None
    # The lookup is by the SHA-256 of the key (indexed, unique); the digest comparison in
    # secret_key_matches is constant time, so timing reveals nothing about near misses.
    workspace = Workspace.objects.filter(secret_key_hash=hash_secret_key(secret_key)).first()
    if workspace is None or not workspace.secret_key_matches(secret_key):
        return None
    return workspace


def workspace_for_widget(*, key: Any, origin: str | None) -> Workspace:
    """The workspace of a publishable key, if the calling page's Origin is one it allows."""
    if not isinstance(key, str) or not key:
        raise KeyRefused("missing_key", "Pass the workspace's publishable key (pk_…).")
    if UNSTORABLE_CHARACTERS.search(key):
        raise KeyRefused("invalid_key", "A key holds no NUL characters or unpaired surrogates.")
    if key.startswith("sk_"):
        raise KeyRefused(
            "secret_key_in_browser",
            "A secret key must never be used in the browser; use the publishable key (pk_…).",
        )
    workspace = Workspace.objects.filter(publishable_key=key).first()
    if workspace is None:
        raise KeyRefused("unknown_key", "No workspace has this publishable key.")
    check_widget_origin(workspace, origin)
    return workspace


def check_widget_origin(workspace: Workspace, origin: str | None) -> None:
    """Refuse a calling page whose Origin the workspace does not allow."""
    if not workspace.allows_origin(origin):
        raise KeyRefused(
            "origin_not_allowed",
            f"Origin {origin or '(none)'} is not among this workspace's allowed origins.",
        )


def origin_allowed_anywhere(origin: str | None) -> bool:
    """Whether some workspace allows `origin`: what a CORS preflight, which carries no key, can
    be granted on. Matched as text in the stored list, then exactly."""
    if not origin or UNSTORABLE_CHARACTERS.search(origin) or not origin.isprintable():
        return False
    needle = json.dumps(origin.rstrip("/").lower())
    candidates = Workspace.objects.filter(allowed_origins__icontains=needle).only("allowed_origins")
    return any(workspace.allows_origin(origin) for workspace in candidates[:20])


class SecretKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer sk_…`. Sets request.auth to the Workspace."""

    def authenticate(self, request: Request) -> tuple[None, Workspace] | None:
        header = get_authorization_header(request).split()
        if not header:
            return None
        if header[0].lower() != b"bearer" or len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Send the secret key as 'Authorization: Bearer sk_…'."
            )
        try:
            key = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The key is not valid text.") from None
        if key.startswith("pk_"):
            raise exceptions.AuthenticationFailed(
                "This endpoint needs the secret key (sk_…), not the publishable key."
            )
        workspace = workspace_for_secret_key(key)
        if workspace is None:
            raise exceptions.AuthenticationFailed("The secret key is not valid.")
        return (None, workspace)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="milepost"'


class HasWorkspace(BasePermission):
    """Passes only when an authentication class identified a workspace."""

    message = "Authenticate with 'Authorization: Bearer sk_…'."

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, Workspace)


# Counted in each process, synced with the other processes' counts every half second per key.
_api_rates = rate_limits.ThreadedKeyRate(
    kind="api:", limit_setting="MILEPOST_MAX_API_REQUESTS_PER_MINUTE"
)


class SecretKeyRate(BaseThrottle):
    """`MILEPOST_MAX_API_REQUESTS_PER_MINUTE` calls per secret key, every process together (a
    429 `rate_limited` with `Retry-After` beyond). Calls without a secret key are not counted
    here: the widget's have their own budget per publishable key."""

    def allow_request(self, request: Request, view: Any) -> bool:
        if not isinstance(request.auth, Workspace):
            return True
        return _api_rates.allows_now(request.auth.pk)

    def wait(self) -> float:
        return float(rate_limits.seconds_to_next_window())
