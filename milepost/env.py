"""Readers for settings taken from the environment.

Each reader fails loudly: a value that cannot be understood stops start-up with
ImproperlyConfigured naming the variable, instead of silently falling back to a default.
django-environ parses URLs; these readers add the validation it leaves out.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_DATABASE_ENGINES = {
    "django.db.backends.postgresql": "postgres",
    "django.db.backends.sqlite3": "sqlite",
}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_str(name: str, default: str) -> str:
    return _raw(name) or default


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use true/false, 1/0, yes/no.")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below its minimum of {minimum}.")
    return number


def env_choice(name: str, default: str, choices: list[str]) -> str:
    value = _raw(name)
    if value is None:
        return default
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of {', '.join(choices)}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_url(name: str, default: str) -> str:
    value = _raw(name) or default
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ImproperlyConfigured(f"{name}={value!r} is not an http(s) URL with a host.")
    return value.rstrip("/")


def env_database(name: str, default: dict[str, Any]) -> dict[str, Any]:
    """A Django DATABASES entry from a URL such as postgres://user@host:5432/name."""
    value = _raw(name)
    if value is None:
        return default
    try:
        config = environ.Env.db_url_config(value)
    except (ValueError, KeyError) as error:
        raise ImproperlyConfigured(f"{name} cannot be parsed: {error}") from None
    engine = config.get("ENGINE", "")
    if engine not in _DATABASE_ENGINES:
        raise ImproperlyConfigured(
            f"{name}={_redact(value)!r} names no supported database; "
            "use postgres://user:password@host:port/name or sqlite:////absolute/path.db."
        )
    if not config.get("NAME"):
        raise ImproperlyConfigured(f"{name}={_redact(value)!r} has no database name.")
    # No thread keeps a connection between uses: PostgreSQL connections come from the
    # process's pool (settings.py sizes it), which Django refuses to combine with persistent
    # ones, and SQLite's are files.
    config["CONN_MAX_AGE"] = 0
    config["CONN_HEALTH_CHECKS"] = True
    if engine.endswith("postgresql"):
        # Parameters travel apart from the SQL instead of being quoted into it by the client:
        # the write path's array parameters (one per column of a batch) cost far less so.
        config.setdefault("OPTIONS", {})["server_side_binding"] = True
    return config


def env_redis_url(name: str) -> str | None:
    value = _raw(name)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in {"redis", "rediss"} or not parts.hostname:
        raise ImproperlyConfigured(
            f"{name}={_redact(value)!r} is not a Redis URL; use redis://host:6379/0."
        )
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ImproperlyConfigured(
            f"{name}={_redact(value)!r} has a port that is not a number."
        ) from None
    return value


def redis_database(url: str) -> int:
    """The database number a Redis URL selects, as redis-py reads it: `/3`, else `?db=3`, else 0."""
    parts = urlsplit(url)
    number = parts.path.strip("/") or (parse_qs(parts.query).get("db") or ["0"])[0]
    try:
        return int(number)
    except ValueError:
        raise ImproperlyConfigured(
            f"REDIS_URL={_redact(url)!r} selects database {number!r}, which is not a number."
        ) from None


# Redis channel names built from a prefix: letters, digits, dot, dash, underscore.
_CHANNEL_PREFIX = re.compile(r"[A-Za-z0-9._-]{1,64}")


def env_channel_prefix(name: str, default: str) -> str:
    value = _raw(name) or default
    if not _CHANNEL_PREFIX.fullmatch(value):
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a channel prefix; use 1-64 letters, digits, '.', '-' or '_'."
        )
    return value


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
