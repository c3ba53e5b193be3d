"""Copy the primary database's events into the analytics store, incrementally and idempotently.

The store's own highest event id is the watermark: each run reads the events above it in id
order, in batches of ANALYTICS_EXPORT_BATCH rows, and inserts each batch as one block (which
ClickHouse writes atomically). An event stamped in the last ANALYTICS_EXPORT_SETTLE_SECONDS
ends the run: a transaction holding a lower id may still be committing, and the watermark must
not pass it. A run that stopped half-way is harmless: the next one starts from what the store
holds, and no batch is ever half-written. Runs never overlap (a lock in the cache). On
PostgreSQL a batch travels as COPY's text, which ClickHouse reads as TabSeparated unchanged.

People (what reports read of them: first seen, signup, first PQL, traits) are copied as new
versions of their row: everyone seen since the previous run began, minus a margin.

Erasures and retention purges reach the store through StorePurge rows, written in the same
transaction as the deletion and applied first by every run.
"""

# SQL here is assembled from fixed fragments, table names and integers; values travel as
# parameters.
# ruff: noqa: S608

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import F
from django.utils import timezone

from analytics import store
from analytics.models import StorePurge
from analytics.sql import epoch_ms, is_postgresql
from onboarding.models import EndUser, Event, JourneyProgress

logger = logging.getLogger(__name__)

EVENT_COLUMNS = ("workspace_id", "person_id", "timestamp", "id", "name", "properties")
EXPORT_STATE_COLUMNS = ("source", "last_id", "updated_at")
_LOCK = "analytics-store-export"
_LOCK_SECONDS = 600
PURGE_BATCH = 10_000  # purge requests applied by one pair of DELETEs


@dataclass(frozen=True)
class ExportResult:
    exported: int  # events inserted by this run
    people: int  # people (re-)exported by this run
    purged: int  # purge requests applied
    watermark: int  # the store's highest event id afterwards
    seconds: float
    busy: bool = False  # another run held the lock; this one did nothing

    @property
    def rate(self) -> float:
        return self.exported / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class _Batch:
    data: Any  # TabSeparated bytes, or one sequence per column
    count: int
    last_id: int


def _insert(batch: _Batch) -> int:
    if isinstance(batch.data, bytes):
        store.insert_tsv("events", batch.data, EVENT_COLUMNS)
    else:
        store.insert("events", batch.data, EVENT_COLUMNS)
    return batch.count


def _first_unsettled(after: int, settled_before: datetime) -> int | None:
    """The lowest id above `after` of an event stamped at or after `settled_before`: events
    from there on wait, since a transaction holding a lower id may still be committing.

    Read through the index on received_at: the recent events are few, while those above `after`
    may be millions (a store that was down a while). `id + 0` keeps SQLite, which cannot tell
    the narrower of two ranges apart, from walking the primary key instead (and MIN(id) made
    it walk the table from its first row)."""
    recent = Event.objects.filter(received_at__gte=settled_before)
    above = recent.alias(later=F("id") + 0).filter(later__gt=after)
    return above.order_by("id").values_list("id", flat=True).first()


def _copy_batches(after: int, size: int, before: int | None) -> Iterator[_Batch]:
    """PostgreSQL: each batch as the TabSeparated text COPY writes, which ClickHouse reads as
    is (the same escapes), so no row passes through Python."""
    connection.ensure_connection()
    raw = connection.connection
    assert raw is not None  # noqa: S101 - ensured above
    limit = "" if before is None else f" AND id < {int(before)}"
    # A timestamp's own text output in UTC ("2026-01-01 10:00:00.123456"), which ClickHouse
    # reads into DateTime64(3) as is: to_char() cost ~40 % of the COPY, and `AT TIME ZONE
    # 'UTC'` (a zone looked up by name per row) about a third of what remained; a cast to
    # `timestamp` in a UTC session writes the same text (measured, bench/README).
    with raw.cursor() as cursor:
        cursor.execute("SET DateStyle TO 'ISO'")
        cursor.execute("SET TIME ZONE 'UTC'")
    while True:
        statement = (
            "COPY (SELECT workspace_id, end_user_id, timestamp::timestamp, id, name,"
            f" properties FROM {Event._meta.db_table} WHERE id > {int(after)}{limit}"
            f" ORDER BY id LIMIT {int(size)}) TO STDOUT"
        )
        buffer = bytearray()
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for chunk in copy:
                buffer += chunk
        count = buffer.count(b"\n")
        if count:
            last_line = bytes(buffer[buffer.rfind(b"\n", 0, len(buffer) - 1) + 1 : -1])
            after = int(last_line.split(b"\t")[3])
            yield _Batch(bytes(buffer), count, after)
        if count < size:
            return


def _row_batches(after: int, size: int, before: int | None) -> Iterator[_Batch]:
    """SQLite (the embedded default, small data): rows through Python, inserted by column."""
    sql = (
        f"SELECT workspace_id, end_user_id, {epoch_ms('timestamp')}, id, name, properties"
        f" FROM {Event._meta.db_table} WHERE id > %s AND id < %s ORDER BY id LIMIT %s"
    )
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql, [after, 2**62 if before is None else before, size])
            rows = cursor.fetchall()
        if rows:
            after = rows[-1][3]
            yield _Batch(list(zip(*rows, strict=True)), len(rows), after)
        if len(rows) < size:
            return


PEOPLE_COLUMNS = (
    "workspace_id",
    "person_id",
    "first_seen_at",
    "signed_up_at",
    "pql_at",
    "traits",
    "version",
)
# A change to a person (traits, signup time, a PQL) always comes with their `last_seen_at`
# moved to within a minute of it (onboarding/recording.py), so each run re-exports the people
# seen since the previous run began, minus this margin; extra copies of a person are harmless
# (the newest version wins).
PEOPLE_MARGIN = timedelta(minutes=10)


def _people(since: datetime | None, size: int) -> int:
    """Copy the people seen since `since` (everyone when None); returns how many."""
    progress = JourneyProgress._meta.db_table
    traits = "u.traits::text" if is_postgresql() else "u.traits"
    sql = (
        f"SELECT u.workspace_id, u.id, {epoch_ms('u.first_seen_at')},"
        f" {epoch_ms('u.signed_up_at')}, (SELECT {epoch_ms('MIN(p.pql_at)')} FROM {progress} p"
        f" WHERE p.end_user_id = u.id), {traits} FROM {EndUser._meta.db_table} u"
        " WHERE u.id > %s AND u.last_seen_at >= %s ORDER BY u.id LIMIT %s"
    )
    floor = connection.ops.adapt_datetimefield_value(since or datetime(1970, 1, 1, tzinfo=UTC))
    version = time.time_ns()
    after = copied = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql, [after, floor, size])
            rows = cursor.fetchall()
        if rows:
            columns = [*zip(*rows, strict=True), [version] * len(rows)]
            store.insert("people", columns, PEOPLE_COLUMNS)
            copied += len(rows)
            after = rows[-1][1]
        if len(rows) < size:
            return copied


def _people_since() -> datetime | None:
    found = store.rows("SELECT max(updated_at) FROM export_state FINAL WHERE source = 'people'")
    last = found[0][0] if found else None
    if last is None or last.year <= 1970:
        return None
    return last.replace(tzinfo=UTC) - PEOPLE_MARGIN


def watermark() -> int:
    return int(store.rows("SELECT max(id) FROM events")[0][0] or 0)


def _purge() -> int:
    """Apply the waiting purge requests, up to PURGE_BATCH at a time in one DELETE per table
    (each DELETE is a mutation costing ~10 ms however many rows it names: a backlog of one
    request per person of a deleted workspace stalled the export at two per request). Each
    request is removed only once the store has done it."""
    requests = list(StorePurge.objects.order_by("id")[:PURGE_BATCH])
    if not requests:
        return 0
    people: set[tuple[int, int]] = set()
    workspaces: set[int] = set()
    before: dict[int, int] = {}  # workspace -> events before this instant (epoch ms) go
    for request in requests:
        if request.end_user_id is not None:
            people.add((request.workspace_id, request.end_user_id))
        elif request.before is None:
            workspaces.add(request.workspace_id)
        else:
            instant = int(request.before.timestamp() * 1000)
            before[request.workspace_id] = max(instant, before.get(request.workspace_id, 0))
    parameters: dict[str, Any] = {
        "people": sorted(people),
        "workspaces": sorted(workspaces),
        "retained": list(before),
        "before": list(before.values()),
    }
    whole = (
        "(workspace_id, person_id) IN (SELECT arrayJoin({people:Array(Tuple(UInt64, UInt64))}))"
        " OR workspace_id IN (SELECT arrayJoin({workspaces:Array(UInt64)}))"
    )
    if people or workspaces:
        store.command(f"DELETE FROM people WHERE {whole}", parameters)
    expired = (
        " OR toUnixTimestamp64Milli(timestamp) < transform(workspace_id,"
        " {retained:Array(UInt64)}, {before:Array(Int64)}, toInt64(0))"
    )
    store.command(f"DELETE FROM events WHERE {whole}{expired if before else ''}", parameters)
    StorePurge.objects.filter(id__in=[request.id for request in requests]).delete()
    return len(requests)


def export(
    *,
    batch_size: int | None = None,
    settle: timedelta | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ExportResult:
    """One export run: purges, then every settled event the store lacks. `progress` is called
    after each batch with (events exported so far, events waiting when the run started)."""
    started = time.monotonic()
    if not cache.add(_LOCK, "1", _LOCK_SECONDS):
        return ExportResult(0, 0, 0, 0, 0.0, busy=True)
    try:
        store.migrate()
        purged = _purge()
        size = batch_size or int(settings.ANALYTICS_EXPORT_BATCH)
        if settle is None:
            settle = timedelta(seconds=int(settings.ANALYTICS_EXPORT_SETTLE_SECONDS))
        # The watermark is the store's highest id: what the store holds, and nothing else,
        # decides where a run starts, so a run that stopped between two batches (each one
        # atomic insert) is simply continued. A purge that removed the highest ids removed them
        # from the primary database too, so nothing below the watermark is missing.
        run_started = timezone.now()
        people = _people(_people_since(), size)
        store.insert("export_state", [["people"], [0], [run_started]], EXPORT_STATE_COLUMNS)
        after = watermark()
        waiting = Event.objects.filter(id__gt=after).count() if progress else 0
        # With no settling time (a rebuild, a backfill, the bench) every committed event goes,
        # and the search for the first unsettled one, which could find nothing, is skipped.
        before = _first_unsettled(after, timezone.now() - settle) if settle else None
        batches = _copy_batches if is_postgresql() else _row_batches
        exported = 0
        # The store writes batch N in a second thread while this one reads batch N+1 (both
        # wait on I/O or native code, without the GIL): the export runs at the pace of the
        # slower side instead of their sum. Batches are still written one at a time and in id
        # order, each after the previous one succeeded, so the watermark never passes a gap.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-export") as writer:
            writing: Future[int] | None = None
            for batch in batches(after, size, before):
                if writing is not None:
                    exported += writing.result()
                    if progress:
                        progress(exported, waiting)
                writing = writer.submit(_insert, batch)
            if writing is not None:
                exported += writing.result()
                if progress:
                    progress(exported, waiting)
        seconds = time.monotonic() - started
        result = ExportResult(exported, people, purged, watermark(), seconds)
        if exported or purged:
            logger.info(
                "analytics export: %s events (%.0f/s), %s purges, watermark %s",
                exported,
                result.rate,
                purged,
                result.watermark,
            )
        return result
    finally:
        cache.delete(_LOCK)


def rebuild(*, progress: Callable[[int, int], None] | None = None) -> ExportResult:
    """Empty the store and copy everything again from the primary database."""
    store.reset()
    StorePurge.objects.all().delete()
    return export(settle=timedelta(0), progress=progress)
