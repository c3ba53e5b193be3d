"""`manage.py translations_import WORKSPACE FILE [--locale LOCALE] [--format po|csv|json]`."""

from __future__ import annotations

import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from onboarding import translation_files
from onboarding.management.commands.export_content import workspace_by_slug


class Command(BaseCommand):
    help = (
        "Store the translations of a file written by translations_export (PO, CSV or JSON; the "
        "format from the file's name). All or nothing, idempotent; '-' reads stdin (give "
        "--format). Publish the content to put them live."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workspace", help="The workspace's slug.")
        parser.add_argument("path", help="The file, or - for standard input.")
        parser.add_argument("--locale", help="The language (default: the one the file names).")
        parser.add_argument("--format", choices=translation_files.FORMATS)

    def handle(
        self,
        *args: Any,
        workspace: str,
        path: str,
        locale: str | None,
        format: str | None,
        **options: Any,
    ) -> None:
        target = workspace_by_slug(workspace)
        try:
            fmt = format or translation_files.format_of(path)
            if path == "-":
                text = sys.stdin.read()
            else:
                with open(path, encoding="utf-8") as handle:
                    text = handle.read()
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror}.") from None
        except UnicodeDecodeError:
            raise CommandError(f"{path} is not UTF-8 text.") from None
        try:
            result = translation_files.translations_import(
                workspace=target, text=text, fmt=fmt, locale=locale
            )
        except ValidationError as error:
            lines = "\n".join(f"  {line}" for line in _lines(error))
            raise CommandError(f"Nothing was imported; fix these first:\n{lines}") from None
        self.stdout.write(
            f"{result.locale}: {result.created} new, {result.updated} changed, "
            f"{result.unchanged} unchanged, {result.skipped_empty} left untranslated."
        )


def _lines(error: ValidationError) -> list[str]:
    if hasattr(error, "error_dict"):
        return [f"{field}: {m}" for field, ms in error.message_dict.items() for m in ms]
    return list(error.messages)
