"""Milepost for a Django app (`pip install "milepost-client[django]"`).

Add `"milepost_client.django"` to INSTALLED_APPS and a `MILEPOST` setting:

    MILEPOST = {
        "URL": "https://milepost.example.com",  # where browsers and this server reach Milepost
        "PUBLISHABLE_KEY": "pk_…",              # the snippet
        "IDENTITY_SECRET": "…",                 # signs user ids (identity verification)
        "SECRET_KEY": "sk_…",                   # server-side events
        "USER_ID": "myapp.milepost.user_id",    # optional: callable(user) -> str (default: pk)
        "USER_TRAITS": "myapp.milepost.traits", # optional: callable(user) -> dict
        "CLIENT_OPTIONS": {"timeout": 5},       # optional: arguments of milepost_client.Milepost
    }

`{% load milepost %}{% milepost_snippet %}` renders the snippet for `request.user`, and the
`*_on_commit` helpers send server-side events only once the surrounding transaction commits
(nothing is sent for work that was rolled back).
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils.module_loading import import_string

from milepost_client.client import Milepost

_client: Milepost | None = None
_client_lock = threading.Lock()


def setting(name: str, default: Any = ...) -> Any:
    """One entry of settings.MILEPOST; a missing required one stops with its name."""
    config = getattr(django_settings, "MILEPOST", None)
    if not isinstance(config, Mapping):
        raise ImproperlyConfigured("settings.MILEPOST must be a dict (see milepost_client.django).")
    value = config.get(name, default)
    if value is ... or value == "":
        raise ImproperlyConfigured(f"settings.MILEPOST[{name!r}] is required.")
    return value


def _callable(name: str) -> Callable[[Any], Any] | None:
    value = setting(name, None)
    read: Callable[[Any], Any] | None = import_string(value) if isinstance(value, str) else value
    return read


def user_id(user: Any) -> str:
    """The id Milepost knows this user by: settings.MILEPOST["USER_ID"](user), or the pk."""
    read = _callable("USER_ID")
    return str(read(user) if read else user.pk)


def user_traits(user: Any) -> dict[str, Any]:
    read = _callable("USER_TRAITS")
    return dict(read(user)) if read else {}


def user_hash(external_id: str) -> str:
    """Hex HMAC-SHA256 of the user id with the workspace's identity secret: what the widget
    sends so Milepost can tell the page speaks for that user."""
    secret = str(setting("IDENTITY_SECRET"))
    return hmac.new(secret.encode(), external_id.encode(), hashlib.sha256).hexdigest()


def get_client() -> Milepost:
    """This process's client (one background flusher), created on first use and flushed when
    the process exits."""
    global _client
    with _client_lock:
        if _client is None:
            _client = Milepost(
                setting("URL"), setting("SECRET_KEY"), **setting("CLIENT_OPTIONS", {})
            )
            atexit.register(_client.close)
        return _client


def track_on_commit(
    user_id: str,
    name: str,
    properties: Mapping[str, Any] | None = None,
    *,
    using: str | None = None,
) -> str:
    """Queue an event once the current transaction commits (at once outside a transaction);
    answers the event's id. The time is taken now, when the thing happened."""
    event_id = str(uuid.uuid4())
    at = datetime.now(UTC)
    transaction.on_commit(
        lambda: get_client().track(user_id, name, properties, timestamp=at, event_id=event_id),
        using=using,
        robust=True,
    )
    return event_id


def identify_on_commit(
    user_id: str, traits: Mapping[str, Any], *, using: str | None = None
) -> None:
    """Update the end user's traits once the current transaction commits."""
    transaction.on_commit(lambda: get_client().identify(user_id, traits), using=using, robust=True)


def complete_milestone_on_commit(user_id: str, milestone: str, *, using: str | None = None) -> None:
    """Report a milestone reached on the server once the current transaction commits."""
    at = datetime.now(UTC)
    transaction.on_commit(
        lambda: get_client().complete_milestone(user_id, milestone, at=at),
        using=using,
        robust=True,
    )
