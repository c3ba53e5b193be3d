"""`manage.py export_content WORKSPACE > content.json`: authored content as code."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from onboarding.content_io import content_export
from onboarding.models import Workspace


def workspace_by_slug(slug: str) -> Workspace:
    workspace = Workspace.objects.filter(slug=slug).first()
    if workspace is None:
        raise CommandError(f"No workspace with the slug {slug!r}.")
    return workspace


class Command(BaseCommand):
    help = "Print a workspace's journeys, walkthroughs, tooltips, progress bars and segments."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workspace", help="The workspace's slug.")

    def handle(self, *args: Any, workspace: str, **options: Any) -> None:
        content = content_export(workspace=workspace_by_slug(workspace))
        self.stdout.write(json.dumps(content, indent=2, ensure_ascii=False))
