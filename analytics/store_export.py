"""Copy the primary database's events into the analytics store, incrementally and idempotently.

The store's own highest event id is the watermark: each run reads the events above it in id
order, in batches of ANALYTICS_EXPORT_BATCH rows, and inserts each batch as one block (which
ClickHouse writes atomically). An event stamped in the last ANALYTICS_EXPORT_SETTLE_SECONDS
ends the run: a transaction holding a lower id may still be committing, and the watermark must
not pass it. A run that stopped half-way (a crash between an insert and anything else) is
harmless: before inserting ids the store may already hold, the run asks the store which of
them it has and leaves those out. Runs never overlap (a lock in the cache).

Erasures and retention purges reach the store through StorePurge rows, written in the same
transaction as the deletion and applied first by every run.
"""

# SQL here is assembled from fixed fragments and table names; values travel as parameters.
# ruff: noqa: S608

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from analytics import store
from analytics.models import StorePurge
from analytics.sql import epoch_ms, is_postgresql
from onboarding.models import Event

logger = logging.getLogger(__name__)

EVENT_COLUMNS = ("workspace_id", "person_id", "timestamp", "id", "name", "properties")
_LOCK = "analytics-store-export"
_LOCK_SECONDS = 600


@dataclass(frozen=True)
class ExportResult:
    exported: int  # events inserted by this run
    skipped: int  # events the store already held (a run that stopped half-way)
    purged: int  # purge requests applied
    watermark: int  # the store's highest event id afterwards
    seconds: float
    busy: bool = False  # another run held the lock; this one did nothing

    @property
    def rate(self) -> float:
        return self.exported / self.seconds if self.seconds else 0.0


def _batches(after: int, size: int, settled_before: datetime) -> Iterator[list[tuple[Any, ...]]]:
    """Events above `after` in id order, `size` at a time, up to the first unsettled one."""
    properties = "properties::text" if is_postgresql() else "properties"
    sql = (
        f"SELECT workspace_id, end_user_id, {epoch_ms('timestamp')}, id, name, {properties},"
        " CASE WHEN received_at < %s THEN 1 ELSE 0 END"
        f" FROM {Event._meta.db_table} WHERE id > %s ORDER BY id LIMIT %s"
    )
    cutoff = connection.ops.adapt_datetimefield_value(settled_before)
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql, [cutoff, after, size])
            batch = cursor.fetchall()
        settled = []
        for row in batch:
            if not row[6]:
                break
            settled.append(row[:6])
        if settled:
            yield settled
            after = settled[-1][3]
        if len(settled) < size:
            return


def _present(low: int, high: int) -> set[int]:
    return {
        int(row[0])
        for row in store.rows(
            "SELECT id FROM events WHERE id >= {low:UInt64} AND id <= {high:UInt64}",
            {"low": low, "high": high},
        )
    }


def watermark() -> int:
    return int(store.rows("SELECT max(id) FROM events")[0][0] or 0)


def _purge() -> int:
    """Apply the waiting purge requests; each is removed only once the store has done it."""
    requests = list(StorePurge.objects.order_by("id")[:1000])
    for request in requests:
        conditions = ["workspace_id = {workspace:UInt64}"]
        parameters: dict[str, Any] = {"workspace": request.workspace_id}
        if request.end_user_id is not None:
            conditions.append("person_id = {person:UInt64}")
            parameters["person"] = request.end_user_id
        if request.before is not None:
            conditions.append("timestamp < {before:DateTime64(3, 'UTC')}")
            parameters["before"] = request.before
        store.command(f"DELETE FROM events WHERE {' AND '.join(conditions)}", parameters)
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
        # The watermark is the store's highest id: a purge that removed the highest ids also
        # removed them from the primary database, so nothing below it is missing.
        high = after = watermark()
        waiting = Event.objects.filter(id__gt=after).count() if progress else 0
        exported = skipped = 0
        for batch in _batches(after, size, timezone.now() - settle):
            low_id, high_id = batch[0][3], batch[-1][3]
            if low_id <= high:
                have = _present(low_id, min(high_id, high))
                kept = [row for row in batch if row[3] not in have]
                skipped += len(batch) - len(kept)
                batch = kept
            store.insert("events", list(zip(*batch, strict=True)), EVENT_COLUMNS)
            exported += len(batch)
            if progress:
                progress(exported + skipped, waiting)
        seconds = time.monotonic() - started
        result = ExportResult(exported, skipped, purged, watermark(), seconds)
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
