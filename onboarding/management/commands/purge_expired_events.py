"""`manage.py purge_expired_events`: apply every workspace's data retention now."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from onboarding.retention import events_purge_expired


class Command(BaseCommand):
    help = (
        "Delete the events older than each workspace's retention (Workspace.retention_days), "
        "in batches, and tell the analytics store to do the same. Celery beat runs this every "
        "MILEPOST_RETENTION_PURGE_SECONDS."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=settings.MILEPOST_RETENTION_BATCH_SIZE,
            help="Events deleted per transaction (default: MILEPOST_RETENTION_BATCH_SIZE).",
        )

    def handle(self, *args: Any, batch_size: int, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be 1 or more.")
        purges = events_purge_expired(batch_size=batch_size)
        if not purges:
            self.stdout.write("No workspace has a retention; nothing was deleted.")
        for purge in purges:
            self.stdout.write(
                f"Workspace {purge.workspace_id}: {purge.events} events older than "
                f"{purge.before:%Y-%m-%d %H:%M} UTC deleted in {purge.batches} batches."
            )
