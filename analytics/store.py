"""The analytics store: ClickHouse, through clickhouse-connect, for the event-level reports.

`ANALYTICS_URL` picks it: `chdb:///path` runs ClickHouse in this process (chDB; the embedded
default and the tests), `http(s)://host:8123/database` talks to a ClickHouse server
(production). One SQL text serves both. The primary database stays the source of truth: the
store holds copies written by analytics/store_export.py and can be rebuilt from it at any time.

Only one process at a time may open a chDB path; another one gets `StoreUnavailable` naming
the path. Production web processes and workers therefore talk to a server.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

logger = logging.getLogger(__name__)

# Each statement is idempotent; `store_migrate` runs them all, in order, every time. A change
# to a table is a new statement at the end (an ALTER ... IF NOT EXISTS), never an edit.
SCHEMA: tuple[str, ...] = (
    # One row per event. Sorted by person and time, so a person's events are read in order in
    # one sequential run (what funnels and retention need); the timestamp compresses well as
    # deltas. `id` is the primary database's id, which makes re-exports detectable.
    """CREATE TABLE IF NOT EXISTS events (
        workspace_id UInt64,
        person_id UInt64,
        timestamp DateTime64(3, 'UTC') CODEC(T64, LZ4),
        id UInt64,
        name LowCardinality(String),
        properties String CODEC(ZSTD(1)),
        INDEX id_range id TYPE minmax GRANULARITY 1
    ) ENGINE = MergeTree ORDER BY (workspace_id, person_id, timestamp, id)""",
    # How far each export has got. Kept in the store itself, so a store that is wiped starts
    # again from the beginning.
    """CREATE TABLE IF NOT EXISTS export_state (
        source String,
        last_id UInt64,
        updated_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree(updated_at) ORDER BY source""",
    # One row per person with what reports read of them (lifecycle, PAI, breakdowns by trait):
    # each export of a person adds a newer version; read with FINAL.
    """CREATE TABLE IF NOT EXISTS people (
        workspace_id UInt64,
        person_id UInt64,
        first_seen_at DateTime64(3, 'UTC'),
        signed_up_at Nullable(DateTime64(3, 'UTC')),
        pql_at Nullable(DateTime64(3, 'UTC')),
        traits String CODEC(ZSTD(1)),
        version UInt64
    ) ENGINE = ReplacingMergeTree(version) ORDER BY (workspace_id, person_id)""",
)
TABLES = ("events", "export_state", "people")


class StoreUnavailable(Exception):
    """The analytics store cannot be reached (or, for chDB, is open in another process)."""


@dataclass(frozen=True)
class _Target:
    url: str

    @property
    def in_process(self) -> bool:
        return self.url.startswith("chdb:")

    def describe(self) -> str:
        """The URL without a password, for messages."""
        parts = urlsplit(self.url)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            return parts._replace(netloc=netloc).geturl()
        return self.url


_lock = threading.RLock()
_clients: dict[str, Any] = {}
_local = threading.local()


def _target() -> _Target:
    return _Target(str(settings.ANALYTICS_URL))


def _connect(target: _Target) -> Any:
    """A client whose store has every table: a report asked before the first export (a fresh
    install) finds them empty rather than missing."""
    connected = _open(target)
    try:
        for statement in SCHEMA:
            connected.command(statement)
    except Exception as error:
        raise StoreUnavailable(_reason(target, error)) from error
    return connected


def _open(target: _Target) -> Any:
    from pathlib import Path

    import clickhouse_connect  # imported on first use: chDB costs ~270 MB per process

    try:
        if target.in_process:
            path = target.url.removeprefix("chdb://")
            if path:
                Path(path).mkdir(parents=True, exist_ok=True)
            return clickhouse_connect.get_client(dsn=target.url)
        return clickhouse_connect.get_client(
            dsn=target.url,
            connect_timeout=5,
            send_receive_timeout=int(settings.ANALYTICS_QUERY_TIMEOUT_SECONDS),
        )
    except Exception as error:
        raise StoreUnavailable(_reason(target, error)) from error


def _reason(target: _Target, error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    if target.in_process and "lock" in text.lower():
        return (
            f"The analytics store {target.describe()} is open in another process; only one "
            "process may open a chDB path (production uses a ClickHouse server)."
        )
    return f"The analytics store {target.describe()} is unavailable: {text}"


def client() -> Any:
    """This process's client: one shared chDB session, or one HTTP client per thread (a
    clickhouse-connect client must not run two queries at once)."""
    target = _target()
    if target.in_process:
        with _lock:
            if target.url not in _clients:
                _clients[target.url] = _connect(target)
            return _clients[target.url]
    clients = getattr(_local, "clients", None)
    if clients is None:
        clients = _local.clients = {}
    if target.url not in clients:
        clients[target.url] = _connect(target)
    return clients[target.url]


def _run(method: str, *args: Any, **kwargs: Any) -> Any:
    target = _target()
    try:
        if target.in_process:
            with _lock:
                return getattr(client(), method)(*args, **kwargs)
        return getattr(client(), method)(*args, **kwargs)
    except StoreUnavailable:
        raise
    except Exception as error:
        from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

        if isinstance(error, OperationalError) or (
            target.in_process and not isinstance(error, DatabaseError)
        ):
            raise StoreUnavailable(_reason(target, error)) from error
        raise


def rows(sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """A query's rows. Values travel as server-side parameters: `{name:Type}` in the SQL."""
    result = _run("query", sql, parameters=parameters or {})
    return [tuple(row) for row in result.result_rows]


def command(sql: str, parameters: dict[str, Any] | None = None) -> None:
    _run("command", sql, parameters=parameters or {})


def insert(table: str, data: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
    """One insert of `data` given column by column (one sequence per name in `columns`);
    ClickHouse writes a block of up to a million rows atomically."""
    if data and len(data[0]):
        _run("insert", table, list(data), column_names=list(columns), column_oriented=True)


def insert_tsv(table: str, data: bytes, columns: Sequence[str]) -> None:
    """One insert of rows as TabSeparated text (PostgreSQL's COPY text format)."""
    if data:
        _run("raw_insert", table, list(columns), insert_block=data, fmt="TabSeparated")


def migrate() -> None:
    """Create or bring up to date every table of the store."""
    for statement in SCHEMA:
        command(statement)


def reset() -> None:
    """Empty every table (the store is rebuilt from the primary database by the export)."""
    migrate()
    for table in TABLES:
        command(f"TRUNCATE TABLE IF EXISTS {table}")


def ping() -> str:
    """The store's ClickHouse version; raises StoreUnavailable when it cannot answer."""
    return str(rows("SELECT version()")[0][0])
