"""Per-workspace data retention: events older than the workspace's `retention_days` are
deleted, in batches small enough that no batch holds the events table for long.

Runs every MILEPOST_RETENTION_PURGE_SECONDS, from Celery beat in production
(`onboarding.tasks.purge_expired_events`) and from `run()` beside the servers in the embedded
mode (settings.MILEPOST_BACKGROUND_TASKS), and on demand with `manage.py purge_expired_events`.
After each workspace's pass it sends `signals.events_purged(workspace_id, before)`, so a copy
of the events elsewhere (the analytics store) deletes the same range: every event of that
workspace whose `timestamp` is earlier than `before`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from onboarding import signals
from onboarding.models import Event, Workspace
from onboarding.recording import announce_robustly

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Purge:
    workspace_id: int
    before: datetime
    events: int
    batches: int


def events_purge(*, workspace_id: int, before: datetime, batch_size: int) -> Purge:
    """Delete the workspace's events whose timestamp is earlier than `before`, `batch_size` at a
    time, each batch in its own short transaction. Completions keep their rows and lose only
    the link to the event that reached them. Announces `events_purged` when done."""
    deleted = batches = 0
    while True:
        with transaction.atomic():
            ids = list(
                Event.objects.filter(workspace_id=workspace_id, timestamp__lt=before)
                .order_by()
                .values_list("pk", flat=True)[:batch_size]
            )
            if ids:
                # Only the ids are loaded; completions' links to these events are set to null.
                deleted += (
                    Event.objects.filter(pk__in=ids)
                    .only("pk")
                    .delete()[1]
                    .get(Event._meta.label, 0)
                )
                batches += 1
        if len(ids) < batch_size:
            break
    transaction.on_commit(
        lambda: announce_robustly(
            signals.events_purged, sender=Event, workspace_id=workspace_id, before=before
        )
    )
    return Purge(workspace_id=workspace_id, before=before, events=deleted, batches=batches)


def events_purge_expired(
    *, now: datetime | None = None, batch_size: int | None = None
) -> list[Purge]:
    """Apply every workspace's retention (workspaces without one keep everything)."""
    now = now or timezone.now()
    batch_size = batch_size or settings.MILEPOST_RETENTION_BATCH_SIZE
    purges = []
    retained = Workspace.objects.filter(retention_days__isnull=False).order_by("pk")
    for workspace_id, days in retained.values_list("pk", "retention_days"):
        purge = events_purge(
            workspace_id=workspace_id,
            before=now - timedelta(days=days or 0),
            batch_size=batch_size,
        )
        if purge.events:
            logger.info(
                "retention: deleted %d events of workspace %d older than %s in %d batches",
                purge.events,
                workspace_id,
                purge.before.isoformat(),
                purge.batches,
            )
        purges.append(purge)
    return purges


async def run() -> None:
    """The embedded mode's schedule (production uses Celery beat)."""
    while True:
        try:
            await sync_to_async(events_purge_expired, thread_sensitive=True)()
        except Exception:
            # Try again next time: a database hiccup must not stop retention for good.
            logger.exception("retention pass failed")
        await asyncio.sleep(settings.MILEPOST_RETENTION_PURGE_SECONDS)
