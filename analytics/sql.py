"""Portable SQL fragments for the reports, so SQLite (embedded) and PostgreSQL give the same
answers on the same data.

Time arithmetic is done on whole milliseconds since the epoch (`epoch_ms`), truncated the same
way on both backends; calendar buckets (day / week / month in a time zone) come back as
'YYYY-MM-DD' text of the bucket's first day. Weeks start on Monday on both backends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.db import connection, transaction

DAY_MS = 86_400_000


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def epoch_ms(column: str) -> str:
    """Milliseconds since 1970-01-01 UTC of a stored datetime column (truncated, not rounded)."""
    if is_postgresql():
        return f"CAST(FLOOR(EXTRACT(EPOCH FROM {column}) * 1000) AS BIGINT)"
    # Django stores aware datetimes in SQLite as UTC text 'YYYY-MM-DD HH:MM:SS[.ffffff]'.
    return (
        f"(CAST(strftime('%%s', {column}) AS INTEGER) * 1000"
        f" + CAST(COALESCE(NULLIF(substr({column}, 21, 3), ''), '0') AS INTEGER))"
    )


def local_bucket(column: str, unit: str) -> str:
    """'YYYY-MM-DD' of the start of the day / week / month holding the column's instant in the
    time zone given as the next query parameter."""
    assert unit in {"day", "week", "month"}  # noqa: S101 - callers validate; never user text
    if is_postgresql():
        return f"to_char(date_trunc('{unit}', ({column}) AT TIME ZONE %s), 'YYYY-MM-DD')"
    return f"substr(django_datetime_trunc('{unit}', {column}, %s, 'UTC'), 1, 10)"


def json_text(column: str) -> str:
    """A JSON object's member as text, by the member name given as the next query parameter.
    Booleans read 'true' / 'false' and numbers their JSON spelling on both backends."""
    if is_postgresql():
        return f"({column} ->> %s)"
    path = "'$.\"' || %s || '\"'"
    return (
        f"(CASE json_type({column}, {path}) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'"
        f" WHEN 'null' THEN NULL ELSE CAST(json_extract({column}, {path}) AS TEXT) END)"
    )


def json_text_params(name: str) -> list[Any]:
    """Parameters for one json_text() fragment (SQLite names the member twice)."""
    return [name] if is_postgresql() else [name, name]


def least(*expressions: str) -> str:
    return f"{'LEAST' if is_postgresql() else 'MIN'}({', '.join(expressions)})"


def greatest(*expressions: str) -> str:
    return f"{'GREATEST' if is_postgresql() else 'MAX'}({', '.join(expressions)})"


def _adapt(params: list[Any]) -> list[Any]:
    # Raw cursors do not adapt aware datetimes the ORM's way; SQLite compares them as UTC text.
    return [
        connection.ops.adapt_datetimefield_value(value) if isinstance(value, datetime) else value
        for value in params
    ]


# A report query on PostgreSQL runs with JIT compilation off (on a few hundred thousand rows
# its compile time, about a second here, exceeded the query itself) and with room to sort in
# memory; both only for that query's transaction.
REPORT_WORK_MEM = "64MB"


@contextmanager
def _report_cursor() -> Iterator[Any]:
    if not is_postgresql():
        with connection.cursor() as cursor:
            yield cursor
        return
    with transaction.atomic(), connection.cursor() as cursor:
        # One round trip for both settings.
        cursor.execute(
            "SELECT set_config('jit', 'off', true), set_config('work_mem', %s, true)",
            [REPORT_WORK_MEM],
        )
        yield cursor


def fetch_all(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with _report_cursor() as cursor:
        cursor.execute(sql, _adapt(params))
        return list(cursor.fetchall())


def fetch_small(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """A query on a few indexed rows: without the report settings, which cost a transaction's
    three extra round trips and help only queries that sort or hash many rows."""
    with connection.cursor() as cursor:
        cursor.execute(sql, _adapt(params))
        return list(cursor.fetchall())


def fetch_one(sql: str, params: list[Any]) -> tuple[Any, ...]:
    with _report_cursor() as cursor:
        cursor.execute(sql, _adapt(params))
        row = cursor.fetchone()
    assert row is not None  # noqa: S101 - aggregate queries always return a row
    return row
