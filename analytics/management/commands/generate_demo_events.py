"""Synthetic workload for the demo, the tests and the benchmark: end users who sign up over
`--days` days and walk the Acme journey with realistic drop-off, in bulk inserts."""

from __future__ import annotations

import random
import sys
import uuid
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from onboarding.models import EndUser, Event, Workspace

FUNNEL = ["$pageview", "campaign_created", "contacts_imported", "report_viewed", "invite_sent"]


class Command(BaseCommand):
    help = "Generate synthetic end users and events: generate_demo_events --users N --days D"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--users", type=int, default=1000)
        parser.add_argument("--days", type=int, default=30)
        parser.add_argument("--workspace", default="acme", help="Workspace slug.")
        parser.add_argument("--events-per-user", type=int, default=10)
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, *args: Any, **options: Any) -> None:
        users, days = options["users"], options["days"]
        if not 1 <= users <= 10_000_000:
            raise CommandError("--users must be between 1 and 10000000.")
        if not 1 <= days <= 3650:
            raise CommandError("--days must be between 1 and 3650.")
        workspace = Workspace.objects.filter(slug=options["workspace"]).first()
        if workspace is None:
            raise CommandError(f"No workspace with slug {options['workspace']!r}.")
        rng = random.Random(options["seed"])  # noqa: S311 - synthetic data, seeded on purpose
        now = timezone.now()
        batch = 2000
        done = 0
        for offset in range(0, users, batch):
            size = min(batch, users - offset)
            with transaction.atomic():
                people = EndUser.objects.bulk_create(
                    EndUser(
                        workspace=workspace,
                        external_id=f"demo-{uuid.uuid4().hex[:12]}",
                        traits={"plan": rng.choice(["trial", "pro", "free"])},
                        signed_up_at=now - timedelta(seconds=rng.randrange(days * 86400)),
                    )
                    for _ in range(size)
                )
                events = []
                for end_user in people:
                    assert end_user.signed_up_at is not None  # noqa: S101
                    moment = end_user.signed_up_at
                    for index in range(options["events_per_user"]):
                        # Each later funnel step is reached by fewer people (drop-off).
                        name = FUNNEL[min(int(rng.expovariate(0.8)), len(FUNNEL) - 1)]
                        if index == 0:
                            name = "$pageview"
                        moment += timedelta(seconds=rng.randrange(60, 2 * 86400))
                        if moment > now:
                            break
                        events.append(
                            Event(
                                workspace=workspace,
                                end_user=end_user,
                                client_id=uuid.uuid4(),
                                name=name,
                                timestamp=moment,
                                properties={"source": rng.choice(["ads", "email", "direct"])},
                                source=Event.Source.SERVER,
                            )
                        )
                Event.objects.bulk_create(events, batch_size=5000)
            done += size
            width = 40
            filled = width * done // users
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{users} users")
            sys.stderr.flush()
        sys.stderr.write("\n")
        self.stdout.write(f"Generated {users} end users over {days} days in {workspace.slug}.")
