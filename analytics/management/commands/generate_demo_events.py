"""Synthetic workload for the demo, the tests and the benchmark: end users who sign up over
`--days` days, start the workspace's journeys, reach each milestone with a decreasing share
and at increasing delays, and do events (the milestones' own events among them).

PostgreSQL is loaded with COPY (ids reserved from the tables' sequences, so completions can
name the event that reached them); SQLite with bulk_create. Each batch of people is one
transaction; the start days touched are marked stale for the journey rollups."""

from __future__ import annotations

import json
import os
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.utils import timezone

from analytics import services
from onboarding.models import (
    Criterion,
    EndUser,
    Event,
    Journey,
    JourneyProgress,
    LifecycleStage,
    Milestone,
    MilestoneCompletion,
    Workspace,
)

# Product events that fill each person's activity; earlier names are done more often.
ACTIVITY = ["$pageview", "login", "campaign_created", "contacts_imported", "report_viewed"]
ACTIVITY += ["invite_sent"]
# Of the people who reached milestone i - 1, the share who reach milestone i.
REACH_SHARES = (0.85, 0.6, 0.5, 0.45, 0.4)
MAX_USERS = 10_000_000
MAX_EVENTS = 200_000_000
BATCH_USERS = 5_000


@dataclass
class Batch:
    """One batch of synthetic rows; people and events are referred to by their index here."""

    users: list[tuple[str, str, datetime, str]] = field(default_factory=list)
    # (person, journey id, started_at, completed_at, pql_at)
    progress: list[tuple[int, int, datetime, datetime | None, datetime | None]] = field(
        default_factory=list
    )
    # (person, milestone id, journey id, completed_at, event index or None)
    completions: list[tuple[int, int, int, datetime, int | None]] = field(default_factory=list)
    # (person, name, timestamp, properties JSON)
    events: list[tuple[int, str, datetime, str]] = field(default_factory=list)


class Command(BaseCommand):
    help = (
        "Generate synthetic end users, journey progress, milestone completions and events: "
        "generate_demo_events --users N --days D [--events E | --events-per-user K]"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--users", type=int, default=1000)
        parser.add_argument("--days", type=int, default=30)
        parser.add_argument("--workspace", default="acme", help="Workspace slug.")
        parser.add_argument("--events-per-user", type=int, default=10)
        parser.add_argument(
            "--events", type=int, default=None, help="Total events (overrides --events-per-user)."
        )
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--quiet", action="store_true", help="No progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        users, days = options["users"], options["days"]
        if not 1 <= users <= MAX_USERS:
            raise CommandError(f"--users must be between 1 and {MAX_USERS}.")
        if not 1 <= days <= 3650:
            raise CommandError("--days must be between 1 and 3650.")
        total_events = options["events"]
        if total_events is None:
            if not 1 <= options["events_per_user"] <= 1000:
                raise CommandError("--events-per-user must be between 1 and 1000.")
            total_events = users * options["events_per_user"]
        if not users <= total_events <= MAX_EVENTS:
            raise CommandError(f"--events must be between --users ({users}) and {MAX_EVENTS}.")
        workspace = Workspace.objects.filter(slug=options["workspace"]).first()
        if workspace is None:
            raise CommandError(f"No workspace with slug {options['workspace']!r}.")
        journeys = [
            (journey, list(journey.milestones.order_by("position", "id")))
            for journey in Journey.objects.filter(workspace=workspace).order_by("id")
        ]
        generator = _Generator(
            workspace=workspace,
            journeys=journeys,
            days=days,
            rng=random.Random(options["seed"]),  # noqa: S311 - synthetic data, seeded on purpose
            run=os.urandom(4).hex(),
        )
        write = _copy_batch if connection.vendor == "postgresql" else _create_batch
        done = 0
        written_events = 0
        for offset in range(0, users, BATCH_USERS):
            size = min(BATCH_USERS, users - offset)
            # Spread the events evenly: the first `extra` people of the run get one more.
            base, extra = divmod(total_events, users)
            budgets = [base + (1 if offset + i < extra else 0) for i in range(size)]
            batch = generator.batch(offset, budgets)
            with transaction.atomic():
                write(workspace, batch)
                for journey_id, day in {
                    (p[1], p[2].astimezone(UTC).date()) for p in batch.progress
                }:
                    services.journey_day_mark_stale(journey_id=journey_id, day=day)
            done += size
            written_events += len(batch.events)
            if not options["quiet"]:
                _progress_bar(done, users, written_events)
        if not options["quiet"]:
            sys.stderr.write("\n")
        self.stdout.write(
            f"Generated {users} end users and {written_events} events over {days} days"
            f" in {workspace.slug}."
        )


def _progress_bar(done: int, total: int, events: int) -> None:
    width = 40
    filled = width * done // total
    sys.stderr.write(
        f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} users, {events} events"
    )
    sys.stderr.flush()


class _Generator:
    def __init__(
        self,
        *,
        workspace: Workspace,
        journeys: list[tuple[Journey, list[Milestone]]],
        days: int,
        rng: random.Random,
        run: str,
    ) -> None:
        self.workspace = workspace
        self.journeys = journeys
        self.days = days
        self.rng = rng
        self.run = run
        self.now = timezone.now()

    def batch(self, offset: int, budgets: list[int]) -> Batch:
        rng, now = self.rng, self.now
        batch = Batch()
        for index, budget in enumerate(budgets):
            signed_up = now - timedelta(seconds=rng.randrange(self.days * 86400))
            events: list[tuple[str, datetime]] = [("$pageview", signed_up)]
            reached: list[tuple[int, int, datetime, int]] = []  # milestone, journey, at, event
            pql = False
            for journey, milestones in self.journeys:
                started = signed_up  # signup and first seen are the same moment here
                done_at: dict[int, datetime] = {}
                moment = started
                for position, milestone in enumerate(milestones):
                    share = REACH_SHARES[min(position, len(REACH_SHARES) - 1)]
                    if rng.random() >= share:
                        break
                    # Each later milestone takes longer: mean gap of 2, 4, 8 ... hours.
                    moment += timedelta(seconds=rng.expovariate(1 / (7200 * 2**position)))
                    late = milestone.window is not None and moment - started > milestone.window
                    if moment > now or late:
                        break
                    done_at[milestone.pk] = moment
                    event_index = -1
                    if milestone.criterion == Criterion.EVENT and milestone.event_name:
                        # The min_count-th event reaches it; the earlier ones come just before.
                        for before in range(milestone.min_count - 1, -1, -1):
                            events.append(
                                (milestone.event_name, moment - timedelta(seconds=before))
                            )
                        event_index = len(events) - 1
                    reached.append((milestone.pk, journey.pk, moment, event_index))
                pql_ids = [m.pk for m in milestones if m.counts_toward_pql]
                pql_at = (
                    max(done_at[m] for m in pql_ids)
                    if pql_ids and all(m in done_at for m in pql_ids)
                    else None
                )
                pql = pql or pql_at is not None
                completed_at = (
                    max(done_at.values())
                    if milestones and len(done_at) == len(milestones)
                    else None
                )
                batch.progress.append((index, journey.pk, started, completed_at, pql_at))
            span = max((now - signed_up).total_seconds(), 1.0)
            while len(events) < budget:
                name = ACTIVITY[min(int(rng.expovariate(0.8)), len(ACTIVITY) - 1)]
                # Activity thins out after signup: more events early than late.
                events.append((name, signed_up + timedelta(seconds=span * rng.random() ** 2)))
            first_event = len(batch.events)
            for name, moment in events[:budget]:
                source = rng.choice(("ads", "email", "direct"))
                batch.events.append((index, name, moment, f'{{"source": "{source}"}}'))
            for milestone_id, journey_id, moment, event_index in reached:
                kept = 0 <= event_index < budget
                batch.completions.append(
                    (
                        index,
                        milestone_id,
                        journey_id,
                        moment,
                        first_event + event_index if kept else None,
                    )
                )
            plan = rng.choice(("trial", "pro", "free"))
            stage = LifecycleStage.PQL if pql else LifecycleStage.TRIAL
            batch.users.append(
                (f"demo-{self.run}-{offset + index}", json.dumps({"plan": plan}), signed_up, stage)
            )
        return batch


def _reserve_ids(cursor: Any, table: str, count: int) -> list[int]:
    if not count:
        return []
    cursor.execute(
        "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
        [table, count],
    )
    return [row[0] for row in cursor.fetchall()]


def _text(value: Any) -> str:
    """One value in COPY's text format (the generated values hold no tab, newline or \\)."""
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


def _copy(cursor: Any, table: str, columns: str, rows: Iterator[tuple[Any, ...]]) -> None:
    with cursor.copy(f"COPY {table} ({', '.join(columns.split())}) FROM STDIN") as copy:
        chunk: list[str] = []
        for row in rows:
            chunk.append("\t".join(_text(v) for v in row))
            if len(chunk) >= 10_000:
                copy.write("\n".join(chunk) + "\n")
                chunk = []
        if chunk:
            copy.write("\n".join(chunk) + "\n")


def _copy_batch(workspace: Workspace, batch: Batch) -> None:
    ws = workspace.pk
    with connection.cursor() as cursor:
        user_ids = _reserve_ids(cursor, EndUser._meta.db_table, len(batch.users))
        event_ids = _reserve_ids(cursor, Event._meta.db_table, len(batch.events))
        _copy(
            cursor,
            EndUser._meta.db_table,
            "id workspace_id external_id traits lifecycle_stage signed_up_at first_seen_at"
            " last_seen_at push_sequence",
            (
                (user_ids[i], ws, external_id, traits, stage, signed_up, signed_up, signed_up, 0)
                for i, (external_id, traits, signed_up, stage) in enumerate(batch.users)
            ),
        )
        client_ids = os.urandom(16 * len(batch.events)).hex()
        _copy(
            cursor,
            Event._meta.db_table,
            "id workspace_id end_user_id client_id name timestamp received_at properties source"
            " clock_skew_clamped",
            (
                (
                    event_ids[i],
                    ws,
                    user_ids[person],
                    client_ids[32 * i : 32 * i + 32],
                    name,
                    moment,
                    moment,
                    properties,
                    Event.Source.SERVER,
                    "f",
                )
                for i, (person, name, moment, properties) in enumerate(batch.events)
            ),
        )
        _copy(
            cursor,
            JourneyProgress._meta.db_table,
            "workspace_id end_user_id journey_id started_at completed_at pql_at",
            ((ws, user_ids[p], j, s, c, q) for p, j, s, c, q in batch.progress),
        )
        _copy(
            cursor,
            MilestoneCompletion._meta.db_table,
            "workspace_id end_user_id milestone_id journey_id completed_at event_id source",
            (
                (
                    ws,
                    user_ids[p],
                    m,
                    j,
                    at,
                    None if e is None else event_ids[e],
                    Event.Source.SERVER,
                )
                for p, m, j, at, e in batch.completions
            ),
        )


def _create_batch(workspace: Workspace, batch: Batch) -> None:
    people = EndUser.objects.bulk_create(
        EndUser(
            workspace=workspace,
            external_id=external_id,
            traits=json.loads(traits),
            lifecycle_stage=stage,
            signed_up_at=signed_up,
            first_seen_at=signed_up,
            last_seen_at=signed_up,
        )
        for external_id, traits, signed_up, stage in batch.users
    )
    client_ids = os.urandom(16 * len(batch.events)).hex()
    events = Event.objects.bulk_create(
        (
            Event(
                workspace=workspace,
                end_user=people[person],
                client_id=client_ids[32 * i : 32 * i + 32],
                name=name,
                timestamp=moment,
                received_at=moment,
                properties=json.loads(properties),
                source=Event.Source.SERVER,
            )
            for i, (person, name, moment, properties) in enumerate(batch.events)
        ),
        batch_size=2000,
    )
    JourneyProgress.objects.bulk_create(
        (
            JourneyProgress(
                workspace=workspace,
                end_user=people[p],
                journey_id=j,
                started_at=s,
                completed_at=c,
                pql_at=q,
            )
            for p, j, s, c, q in batch.progress
        ),
        batch_size=2000,
    )
    MilestoneCompletion.objects.bulk_create(
        (
            MilestoneCompletion(
                workspace=workspace,
                end_user=people[p],
                milestone_id=m,
                journey_id=j,
                completed_at=at,
                event=None if e is None else events[e],
                source=Event.Source.SERVER,
            )
            for p, m, j, at, e in batch.completions
        ),
        batch_size=2000,
    )
