"""`manage.py import_content WORKSPACE content.json [--dry-run] [--publish]`."""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from onboarding.content_io import ContentImportError, content_import
from onboarding.management.commands.export_content import workspace_by_slug


class Command(BaseCommand):
    help = (
        "Create or update a workspace's content from a file written by export_content "
        "(idempotent by key, one transaction: an error writes nothing). '-' reads stdin."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workspace", help="The workspace's slug.")
        parser.add_argument("path", help="The JSON file, or - for standard input.")
        parser.add_argument("--dry-run", action="store_true", help="Show changes, write nothing.")
        parser.add_argument(
            "--publish", action="store_true", help="Publish every piece whose draft changed."
        )

    def handle(
        self, *args: Any, workspace: str, path: str, dry_run: bool, publish: bool, **options: Any
    ) -> None:
        target = workspace_by_slug(workspace)
        try:
            if path == "-":
                data = json.load(sys.stdin)
            else:
                with open(path, encoding="utf-8") as handle:
                    data = json.load(handle)
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror}.") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CommandError(f"{path} is not valid JSON: {error}.") from None
        try:
            result = content_import(workspace=target, data=data, dry_run=dry_run, publish=publish)
        except ContentImportError as error:
            lines = "\n".join(f"  {line}" for line in error.errors)
            raise CommandError(f"Nothing was imported; fix these first:\n{lines}") from None
        prefix = "would " if dry_run else ""
        for change in result.changes:
            self.stdout.write(f"{prefix}{change}")
        for warning in result.warnings:
            self.stdout.write(self.style.WARNING(f"warning: {warning}"))
        if not result.changes:
            self.stdout.write("No changes: the workspace already matches the file.")
        elif dry_run:
            self.stdout.write("Dry run: nothing was written.")
