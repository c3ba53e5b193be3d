"""Django's PostgreSQL backend, plus a breaker for outages.

Django's sync views run one at a time on a process's single thread for thread-sensitive work,
and a pooled connection that cannot come (PostgreSQL stopped) makes each caller wait the whole
pool timeout: with a few dozen clients, the requests behind the first waited minutes and were
never answered (the fault suite's `outages`: 42 client timeouts against 24 answers of 503).
Here every connection attempt the pool makes reports whether PostgreSQL answered; while the
last attempt failed, a caller is refused at once (a 503 with Retry-After at the edges), and
one caller a second tries a direct connection to find out whether PostgreSQL is back.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
from django.db.backends.postgresql.base import DatabaseWrapper as PostgreSQLDatabaseWrapper

# While PostgreSQL is unreachable, one caller this often tries whether it is back.
PROBE_SECONDS = 1.0
PROBE_CONNECT_TIMEOUT_SECONDS = 1


class Outage:
    """Whether the last connection attempt to PostgreSQL failed, shared by the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.since: float | None = None
        self._probed_at = 0.0

    def begin(self) -> None:
        with self._lock:
            if self.since is None:
                self.since = time.monotonic()

    def end(self) -> None:
        with self._lock:
            self.since = None

    def take_probe(self) -> bool:
        """True for one caller per PROBE_SECONDS: that one may try to connect."""
        with self._lock:
            now = time.monotonic()
            if now - self._probed_at < PROBE_SECONDS:
                return False
            self._probed_at = now
            return True


OUTAGE = Outage()


class WatchedConnection(psycopg.Connection):  # type: ignore[type-arg]
    """The pool's connection class: each attempt tells OUTAGE whether PostgreSQL answered."""

    @classmethod
    def connect(cls, *args: Any, **kwargs: Any) -> Any:
        try:
            connection = super().connect(*args, **kwargs)
        except psycopg.OperationalError:
            OUTAGE.begin()
            raise
        OUTAGE.end()
        return connection


class DatabaseWrapper(PostgreSQLDatabaseWrapper):
    def __init__(self, settings_dict: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        pool = settings_dict.get("OPTIONS", {}).get("pool")
        if isinstance(pool, dict):
            pool.setdefault("connection_class", WatchedConnection)
        super().__init__(settings_dict, *args, **kwargs)

    def close_pool(self) -> None:
        # The socket path's database threads keep their connections between busy calls
        # (onboarding.batching): they give them back first, or the pool would close with them
        # still out (and dropping a test database would find them connected).
        from onboarding import batching  # here: the backend is loaded before the apps

        batching.release_connections()
        super().close_pool()  # type: ignore[misc] # not in django-stubs yet

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        pooled = self.pool is not None  # type: ignore[attr-defined] # not in django-stubs yet
        if pooled and OUTAGE.since is not None:
            down_for = time.monotonic() - OUTAGE.since
            if not OUTAGE.take_probe():
                raise psycopg.OperationalError(
                    f"PostgreSQL has been unreachable for {down_for:.0f} s (refused without "
                    "waiting for a pooled connection)"
                )
            # Django wraps this in its OperationalError, which the edges answer with a 503.
            with WatchedConnection.connect(
                **{**conn_params, "connect_timeout": PROBE_CONNECT_TIMEOUT_SECONDS}
            ):
                pass
        return super().get_new_connection(conn_params)
