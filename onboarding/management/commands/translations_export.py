"""`manage.py translations_export WORKSPACE LOCALE [--format po|csv|json] [-o FILE]`."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from onboarding import translation_files
from onboarding.management.commands.export_content import workspace_by_slug


class Command(BaseCommand):
    help = (
        "Write every translatable text of a workspace's content with its translation in one "
        "language, as a file for translators (PO, CSV or JSON; standard output by default)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workspace", help="The workspace's slug.")
        parser.add_argument("locale", help="The language, e.g. fr or pt-BR.")
        parser.add_argument("--format", choices=translation_files.FORMATS, default="po")
        parser.add_argument("-o", "--output", help="The file to write (default: stdout).")

    def handle(
        self,
        *args: Any,
        workspace: str,
        locale: str,
        format: str,
        output: str | None,
        **options: Any,
    ) -> None:
        target = workspace_by_slug(workspace)
        try:
            body = translation_files.export(workspace=target, locale=locale, fmt=format)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        if output is None:
            self.stdout.write(body, ending="")
            return
        try:
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(body)
        except OSError as error:
            raise CommandError(f"Cannot write {output}: {error.strerror}.") from None
        self.stderr.write(f"Wrote {output}.")
