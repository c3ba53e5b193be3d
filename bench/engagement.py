"""Engagement benchmark (not a test).

    DATABASE_URL=postgres://… .venv/bin/python bench/engagement.py [N]

1. The inaction sweep over N end users (default 1 000 000) in PostgreSQL: the candidate query
   of a "milestone not reached 10 days after journey start" rule, compared with one plain
   pass over the same journey's progress rows (the baseline, measured in the same run).
2. Trigger evaluation on the write path: `onboarding.recording.events_record` with
   engagement's receivers connected vs disconnected, same batches, alternated.

It creates and drops its own database (<name>_bench_engagement); figures are printed as
ratios to the baselines, never checked against absolute times.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _bench_database() -> tuple[str, str]:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("bench/engagement.py needs DATABASE_URL=postgres://… (PostgreSQL)")
    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'milepost'}_bench_engagement"
    admin = urlunsplit(parts._replace(path="/postgres"))
    return admin, urlunsplit(parts._replace(path=f"/{name}"))


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main(total: int) -> None:
    admin_url, bench_url = _bench_database()
    name = urlsplit(bench_url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-" + "x" * 40)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "milepost.settings")
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
    import logging

    import django

    django.setup()
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
    logging.getLogger("kombu").setLevel(logging.ERROR)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    try:
        sweep_bench(total)
        from milepost.celery import app

        # Production: the receiver only enqueues (an in-memory broker stands in for Redis).
        app.conf.task_always_eager = False
        ingest_bench(label="production: matches enqueued for the worker", slug="ingest-queued")
        # Embedded: the same tasks run inline, so firing and sending are on the write path.
        app.conf.task_always_eager = True
        ingest_bench(label="embedded: tasks run inline", slug="ingest-eager")
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


def sweep_bench(total: int) -> None:
    from django.db import connection
    from django.utils import timezone

    from engagement import services
    from engagement.models import Message, Rule, Trigger
    from onboarding.models import Journey, Milestone, Workspace

    workspace = Workspace(name="Bench", slug="bench")
    workspace.issue_keys()
    workspace.save()
    journey = Journey.objects.create(workspace=workspace, key="trial", name="Trial")
    milestone = Milestone.objects.create(
        journey=journey, workspace=workspace, key="value", name="Value", event_name="x"
    )
    now = timezone.now().replace(microsecond=0)
    t0 = now - timedelta(days=60)
    step = timedelta(days=58) / total  # distinct signup times over 58 days
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO onboarding_enduser (workspace_id, external_id, traits, lifecycle_stage,
                signed_up_at, first_seen_at, last_seen_at, push_sequence)
            SELECT %s, 'u' || g, '{}'::jsonb, 'trial', %s + g * %s, %s + g * %s,
                   %s + g * %s, 0
            FROM generate_series(1, %s) AS g
            """,
            [workspace.pk, t0, step, t0, step, t0, step, total],
        )
        cursor.execute(
            """
            INSERT INTO onboarding_journeyprogress (workspace_id, end_user_id, journey_id,
                started_at)
            SELECT workspace_id, id, %s, signed_up_at FROM onboarding_enduser
            WHERE workspace_id = %s
            """,
            [journey.pk, workspace.pk],
        )
        cursor.execute(
            """
            INSERT INTO onboarding_milestonecompletion (workspace_id, end_user_id,
                milestone_id, journey_id, completed_at, source)
            SELECT workspace_id, id, %s, %s, signed_up_at + interval '1 day', 'server'
            FROM onboarding_enduser WHERE workspace_id = %s AND id %% 3 = 0
            """,
            [milestone.pk, journey.pk, workspace.pk],
        )
        cursor.execute("ANALYZE")
    built = time.perf_counter() - started
    print(f"inaction sweep over {total:,} end users (data built in {built:.0f} s)")

    message = Message.objects.create(
        workspace=workspace, key="nudge", name="Nudge", title="Hi", body="Hi"
    )
    rule = Rule.objects.create(
        workspace=workspace, key="day-10", name="Day 10", trigger=Trigger.MILESTONE_NOT_REACHED,
        milestone=milestone, delay=timedelta(days=10), message=message,
        created_at=t0, swept_until=t0,
    )  # fmt: skip

    def baseline() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM onboarding_journeyprogress WHERE journey_id = %s",
                [journey.pk],
            )
            cursor.fetchone()

    candidates = services._deadline_candidates(rule, t0, now)

    def catch_up_query() -> None:
        candidates.count()

    baseline()
    catch_up_query()
    base = statistics.median(timed(baseline) for _ in range(5))
    full = statistics.median(timed(catch_up_query) for _ in range(5))
    count = candidates.count()
    sql, params = candidates.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join("      " + row[0] for row in cursor.fetchall())
    print(f"  baseline: one pass over the journey's progress rows   {base * 1000:8.0f} ms")
    print(
        f"  candidate query, full catch-up ({count:,} overdue)  {full * 1000:8.0f} ms"
        f"  = {full / base:.2f}x baseline"
    )
    print(f"  plan:\n{plan}")

    # Steady state: the sweep runs every minute and finds the deadlines of that minute.
    Rule.objects.filter(pk=rule.pk).update(swept_until=now - timedelta(minutes=1))
    rule.refresh_from_db()
    steady = timed(lambda: services._sweep_rule(rule, now))
    fired = rule.deliveries.count()
    print(
        f"  one steady-state sweep pass (last minute, {fired} fired)  {steady * 1000:8.0f} ms"
        f"  = {steady / base:.3f}x baseline"
    )
    # A bounded catch-up pass: SWEEP_BATCH users fired (FIRE_CHUNK per transaction), the
    # rest left to the next passes.
    Rule.objects.filter(pk=rule.pk).update(swept_until=now - timedelta(days=1))
    rule.refresh_from_db()
    before = rule.deliveries.count()
    batch = timed(lambda: services._sweep_rule(rule, now))
    fired = rule.deliveries.count() - before
    per_firing = batch / max(fired, 1)
    print(
        f"  one catch-up pass firing {fired:,} rules             {batch * 1000:8.0f} ms"
        f"  = {batch / base:.2f}x baseline ({per_firing * 1e6:.0f} µs per firing)"
    )
    # Same-run baseline for the firing cost: one transaction per firing (rule_fire, as the
    # signal receivers fire), over overdue users the pass above did not reach.
    overdue = [
        user_id
        for user_id, _ in services._deadline_candidates(rule, t0, now - timedelta(days=2))[:500]
    ]
    single = timed(
        lambda: [
            services.rule_fire(rule=rule, end_user_id=user_id, occurrence="once", now=now)
            for user_id in overdue
        ]
    ) / max(len(overdue), 1)
    print(
        f"  the same firings one per transaction ({len(overdue)})   "
        f"{single * 1e6:8.0f} µs per firing = {single / per_firing:.1f}x the batched cost"
    )


def ingest_bench(
    *, label: str, slug: str, batches: int = 60, batch_size: int = 100, users: int = 500
) -> None:
    from django.utils import timezone

    from engagement import receivers
    from engagement.models import Message, Rule, Trigger
    from onboarding import recording, signals
    from onboarding.models import Workspace

    workspace = Workspace(name=slug, slug=slug)
    workspace.issue_keys()
    workspace.save()
    message = Message.objects.create(workspace=workspace, key="m", name="M", title="Hi", body="Hi")
    # Realistic rules: most watch other events, one fires rarely (once per user).
    for index in range(5):
        Rule.objects.create(
            workspace=workspace, key=f"other-{index}", name=f"Other {index}",
            trigger=Trigger.EVENT, event_name=f"other_event_{index}", message=message,
        )  # fmt: skip
    Rule.objects.create(
        workspace=workspace, key="rare", name="Rare", trigger=Trigger.EVENT,
        event_name="export_done", message=message,
    )  # fmt: skip

    def batch(index: int) -> list[dict[str, object]]:
        stamp = timezone.now().isoformat()
        return [
            {
                "id": str(uuid.uuid4()),
                "user_id": f"u{(index * batch_size + n) % users}",
                "name": "export_done" if n == 0 else "page_action",
                "timestamp": stamp,
                "properties": {"n": n},
            }
            for n in range(batch_size)
        ]

    def ingest(count: int) -> float:
        return timed(
            lambda: [
                recording.events_record(workspace=workspace, events=batch(i), source="server")
                for i in range(count)
            ]
        )

    uid = "engagement"

    def disconnect() -> None:
        signals.events_recorded.disconnect(dispatch_uid=uid)

    def connect() -> None:
        signals.events_recorded.connect(receivers.on_events_recorded, dispatch_uid=uid)

    ingest(6)  # warm up: create the end users (and fire the rare rule for some)
    without, with_engagement = [], []
    rounds = 6
    for _ in range(rounds):
        disconnect()
        without.append(ingest(batches // rounds))
        connect()
        with_engagement.append(ingest(batches // rounds))
    events = batches // rounds * batch_size
    base = statistics.median(without)
    extra = statistics.median(with_engagement)
    print(f"trigger evaluation on the write path, {label}")
    print(f"  ({batch_size}-event batches over {users} users, 6 event rules, one matches)")
    print(f"  ingest without engagement   {events / base:8.0f} events/s")
    print(f"  ingest with engagement      {events / extra:8.0f} events/s")
    print(f"  overhead: {(extra - base) / base * 100:.1f} % of ingest time")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
