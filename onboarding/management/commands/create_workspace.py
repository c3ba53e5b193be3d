"""`manage.py create_workspace NAME --origin URL [--origin URL…]`: prints the keys as JSON."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from onboarding.services import workspace_create


class Command(BaseCommand):
    help = (
        "Create a workspace and print ONE JSON object with its keys: "
        '{"workspace", "publishable_key", "secret_key", "identity_secret"}. '
        "The secret key is shown only this once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="The team's name, e.g. 'Acme'.")
        parser.add_argument(
            "--origin",
            action="append",
            default=[],
            dest="origins",
            help="An origin allowed to load the widget (repeatable), e.g. https://app.acme.com.",
        )
        parser.add_argument("--slug", default=None, help="Defaults to the slugified name.")

    def handle(
        self, *args: Any, name: str, origins: list[str], slug: str | None, **options: Any
    ) -> None:
        try:
            workspace, keys = workspace_create(name=name, origins=origins, slug=slug)
        except ValidationError as error:
            problems = [
                f"{'origin' if field == 'allowed_origins' else field}: {message}"
                for field, messages in error.message_dict.items()
                for message in messages
            ]
            raise CommandError("; ".join(problems)) from None
        self.stdout.write(json.dumps({"workspace": workspace.slug, **keys}))
