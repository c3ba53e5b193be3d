"""`manage.py analytics_store migrate|export|rebuild|status`: the analytics store's schema and
its copy of the events (see analytics/store_export.py)."""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analytics import store, store_export


class Command(BaseCommand):
    help = "Create the analytics store's tables, export new events to it, or rebuild it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["migrate", "export", "rebuild", "status"])

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        try:
            if action == "migrate":
                store.migrate()
                self.stdout.write(f"Analytics store ready (ClickHouse {store.ping()}).")
            elif action == "status":
                store.migrate()
                count = store.rows("SELECT count() FROM events")[0][0]
                self.stdout.write(
                    f"ClickHouse {store.ping()}: {count} events, watermark "
                    f"{store_export.watermark()}."
                )
            else:
                self._export(rebuild=action == "rebuild")
        except store.StoreUnavailable as error:
            raise CommandError(str(error)) from error

    def _export(self, *, rebuild: bool) -> None:
        started = time.monotonic()
        interactive = self.stdout.isatty()

        def progress(done: int, total: int) -> None:
            rate = done / max(time.monotonic() - started, 1e-6)
            share = done * 100 // total if total else 100
            bar = "#" * (share // 4) + "." * (25 - share // 4)
            line = f"[{bar}] {share:3d}% {done}/{total} events, {rate:,.0f}/s"
            if interactive:
                sys.stdout.write("\r" + line)
                sys.stdout.flush()
            else:
                self.stdout.write(line)

        if rebuild:
            result = store_export.rebuild(progress=progress)
        else:
            result = store_export.export(settle=timedelta(0), progress=progress)
        if interactive:
            sys.stdout.write("\n")
        if result.busy:
            raise CommandError("Another export is running; try again when it has finished.")
        self.stdout.write(
            f"Exported {result.exported} events ({result.rate:,.0f}/s), applied "
            f"{result.purged} purges; watermark "
            f"{result.watermark}."
        )
