"""Journey rollups benchmark (not a test): `python bench/journey_rollups.py [--users N]`.

Journey funnel + milestone velocity over every person of a 3-milestone journey, read from the
journey rollups, in several time zones and with today's starts kept current after commit,
against a plain `count(*)` of the same journey progress rows in the same run (the floor).

Data: N people (default 1 000 000) who started the journey over the last 60 days up to now,
generated once in SQL (no events: these reports read journey starts and milestone
completions only) into DATABASE_URL (default postgres://postgres@127.0.0.1:5432/
milepost_bench_rollups, created if missing) and reused by later runs.

"Late in the UTC day" is simulated without waiting for it: the people who started in the last
`--today-hours` hours (default 23.5) are moved into today, so today holds as many starts as a
day ending at 23:30 UTC would.

After commits: a read right after completions (before the refresh they woke has landed) against
an all-current read of the same run, the same marks once older than MILEPOST_ROLLUP_FRESH_SECONDS
(which the read counts itself), and how long after a commit its refresh has landed: with the
embedded loop, or with REDIS_URL set, production's way (each commit queues a Celery task; the
bench starts a worker).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from timing import median_ms

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/milepost_bench_rollups")
os.environ.setdefault("SECRET_KEY", "milepost-bench-only")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "milepost.settings")

DAYS = 60
ZONES = ("UTC", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu")


def ensure_database() -> None:
    import psycopg

    url = os.environ["DATABASE_URL"]
    if not url.startswith("postgres"):
        raise SystemExit("bench/journey_rollups.py measures PostgreSQL; set DATABASE_URL to one.")
    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def setup() -> None:
    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def dataset(users: int) -> Any:
    """The journey of the workspace holding `users` people, generated if missing."""
    from django.db import connection

    from onboarding.models import (
        Criterion,
        EndUser,
        Journey,
        JourneyProgress,
        Milestone,
        MilestoneCompletion,
        Workspace,
    )

    slug = f"rollups-{users}u"
    workspace = Workspace.objects.filter(slug=slug).first()
    if workspace is not None:
        journey = Journey.objects.get(workspace=workspace, key="trial")
        if JourneyProgress.objects.filter(journey=journey).count() == users:
            return journey
        workspace.delete()  # an interrupted run; start again
    workspace = Workspace(name=slug, slug=slug)
    workspace.issue_keys()
    workspace.save()
    journey = Journey.objects.create(workspace=workspace, key="trial", name="Trial")
    milestones = [
        Milestone.objects.create(
            workspace=workspace,
            journey=journey,
            key=key,
            name=key,
            position=position,
            criterion=Criterion.SERVER,
        )
        for position, key in enumerate(["installed-js", "first-campaign", "imported-contacts"])
    ]
    print(f"generating {users} people ...", flush=True)
    began = time.perf_counter()
    now = datetime.now(UTC)
    first = now - timedelta(days=DAYS)
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(
            f"""INSERT INTO {EndUser._meta.db_table}
                (workspace_id, external_id, traits, lifecycle_stage, signed_up_at,
                 first_seen_at, last_seen_at, push_sequence)
            SELECT %s, 'user-' || i, '{{}}'::jsonb, 'trial', NULL, %s, %s, 0
            FROM generate_series(1, %s) i""",
            [workspace.pk, now, now, users],
        )
        cursor.execute(
            f"""INSERT INTO {JourneyProgress._meta.db_table}
                (workspace_id, end_user_id, journey_id, started_at)
            SELECT %s, u.id, %s, %s + random() * (%s - %s)
            FROM {EndUser._meta.db_table} u WHERE u.workspace_id = %s""",
            [workspace.pk, journey.pk, first, now, first, workspace.pk],
        )
        # Each milestone reached by a share of the people, some time after the start (a
        # log-uniform delay from 1 s to 20 days), never in the future.
        for milestone, share in zip(milestones, (0.7, 0.45, 0.3), strict=True):
            cursor.execute(
                f"""INSERT INTO {MilestoneCompletion._meta.db_table}
                    (workspace_id, end_user_id, milestone_id, journey_id, completed_at, source)
                SELECT %s, c.end_user_id, %s, %s, c.at, 'server' FROM (
                    SELECT p.end_user_id,
                           p.started_at + power(1728000.0, random()) * interval '1 second' AS at
                    FROM {JourneyProgress._meta.db_table} p
                    WHERE p.journey_id = %s AND random() < %s
                ) c WHERE c.at < %s""",
                [workspace.pk, milestone.pk, journey.pk, journey.pk, share, now],
            )
        cursor.execute("ANALYZE")
    print(f"generated in {time.perf_counter() - began:.0f} s", flush=True)
    return journey


def shift(journey: Any, hour: float) -> None:
    """Move the journey's starts and completions so the latest start is at `hour` UTC today:
    23.5 puts a whole day's starts into today (late in the UTC day), 0.5 almost none."""
    from django.db import connection, transaction
    from django.utils import timezone

    from analytics.models import JourneyDayRollup, JourneyStaleDay
    from onboarding.models import JourneyProgress, MilestoneCompletion

    latest = JourneyProgress.objects.filter(journey=journey).order_by("-started_at")[0].started_at
    midnight = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    delta = midnight + timedelta(hours=hour) - latest
    print(f"shifting the data by {delta} ...", flush=True)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {JourneyProgress._meta.db_table} SET started_at = started_at + %s"
            " WHERE journey_id = %s",
            [delta, journey.pk],
        )
        cursor.execute(
            f"UPDATE {MilestoneCompletion._meta.db_table} SET completed_at = completed_at + %s"
            " WHERE journey_id = %s",
            [delta, journey.pk],
        )
        # Every day changed: the rollups are counted again (outside the timed reads).
        JourneyDayRollup.objects.filter(journey=journey).delete()
        JourneyStaleDay.objects.filter(journey=journey).delete()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def measure(journey: Any, repeat: int, zones: list[str]) -> None:
    import django.db
    from django.db import connection
    from django.utils import timezone

    from analytics.inputs import DateRange
    from analytics.report import journey_funnel, milestone_velocity
    from onboarding.models import JourneyProgress

    now = timezone.now()
    today = now.astimezone(UTC).date()
    today_starts = JourneyProgress.objects.filter(
        journey=journey, started_at__gte=datetime.combine(today, datetime.min.time(), UTC)
    ).count()
    load = os.getloadavg()
    print(
        f"{now:%Y-%m-%d %H:%M} UTC, {today_starts} starts today so far,"
        f" load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}",
        flush=True,
    )

    def floor() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT count(*) FROM {JourneyProgress._meta.db_table} WHERE journey_id = %s",
                [journey.pk],
            )
            cursor.fetchone()

    began = time.perf_counter()
    milestone_velocity.milestone_velocity(
        journey=journey, date_range=DateRange(today - timedelta(days=DAYS + 1), today)
    )
    print(f"first read (rollups counted where missing): {time.perf_counter() - began:.1f} s")
    baseline = median_ms(floor, repeat)
    print(f"baseline count(*) of the journey's {args_users(journey)} starts: {baseline:.1f} ms")
    print("| zone | journey funnel | velocity | both | x baseline |")
    print("|---|---|---|---|---|")
    for zone in zones:
        local_today = now.astimezone(ZoneInfo(zone)).date()
        date_range = DateRange(local_today - timedelta(days=DAYS + 1), local_today, zone)
        funnel = median_ms(
            lambda dr=date_range: journey_funnel.journey_funnel(journey=journey, date_range=dr),
            repeat,
        )
        speed = median_ms(
            lambda dr=date_range: milestone_velocity.milestone_velocity(
                journey=journey, date_range=dr
            ),
            repeat,
        )
        both = median_ms(
            lambda dr=date_range: (
                journey_funnel.journey_funnel(journey=journey, date_range=dr),
                milestone_velocity.milestone_velocity(journey=journey, date_range=dr),
            ),
            repeat,
        )
        print(
            f"| {zone} | {funnel:.1f} ms | {speed:.1f} ms | {both:.1f} ms |"
            f" {both / baseline:.2f}x |",
            flush=True,
        )
    keep_current(journey, repeat, baseline, zones)
    django.db.close_old_connections()


def keep_current(journey: Any, repeat: int, baseline: float, zones: list[str]) -> None:
    """Completions recorded now (people who started today), each marking its quarter hour after
    commit; the refresh the scheduler runs; reads after it in each zone (the refresh added up
    again the running totals up to the zones' midnights today); a read right after commits
    (before their refresh), and how long after a commit its refresh has landed."""
    import statistics

    from django.utils import timezone

    from analytics import journey_rollups, services
    from analytics.inputs import DateRange
    from analytics.report import journey_funnel, milestone_velocity
    from onboarding import recording
    from onboarding.models import EndUser, JourneyProgress, MilestoneCompletion

    now = timezone.now()
    midnight = datetime.combine(now.astimezone(UTC).date(), datetime.min.time(), UTC)
    last = journey.milestones.order_by("-position")[0]
    done = MilestoneCompletion.objects.filter(milestone=last).values("end_user_id")
    people = list(
        EndUser.objects.filter(
            pk__in=JourneyProgress.objects.filter(journey=journey, started_at__gte=midnight)
            .exclude(end_user_id__in=done)
            .values("end_user_id")[:200]
        )
    )
    write_ms, mark_ms = [], []
    for who in people:
        began = time.perf_counter()
        recording.milestone_complete(end_user=who, milestone=last)
        write_ms.append((time.perf_counter() - began) * 1000)
    for who in people[:50]:
        began = time.perf_counter()
        services.journey_progress_mark_stale(end_user_id=who.pk, journey_id=journey.pk)
        mark_ms.append((time.perf_counter() - began) * 1000)
    from analytics.models import JourneyStaleDay

    marked = JourneyStaleDay.objects.filter(journey=journey).count()
    began = time.perf_counter()
    journey_rollups.refresh_stale()
    refresh_ms = (time.perf_counter() - began) * 1000
    today = now.astimezone(UTC).date()
    everything = DateRange(today - timedelta(days=DAYS + 1), today)

    def both() -> None:
        journey_funnel.journey_funnel(journey=journey, date_range=everything)
        milestone_velocity.milestone_velocity(journey=journey, date_range=everything)

    after = median_ms(both, repeat)
    in_zones = []
    for zone in zones:
        local_today = now.astimezone(ZoneInfo(zone)).date()
        zone_range = DateRange(local_today - timedelta(days=DAYS + 1), local_today, zone)
        zone_ms = median_ms(
            lambda dr=zone_range: (
                journey_funnel.journey_funnel(journey=journey, date_range=dr),
                milestone_velocity.milestone_velocity(journey=journey, date_range=dr),
            ),
            repeat,
        )
        in_zones.append(f"{zone} {zone_ms:.1f} ms ({zone_ms / baseline:.2f}x)")
    # Reads right after completions that marked up to 8 quarter hours: the refresh they woke
    # has not landed yet, so the stored rows answer; then the same marks as if the refresh had
    # been down for longer than MILEPOST_ROLLUP_FRESH_SECONDS, which the read counts itself
    # (what every read before the refresh did before).
    from django.conf import settings

    from analytics.models import JourneyStaleDay

    pending, pending_old = [], []
    second = journey.milestones.get(position=1)
    old = timedelta(seconds=settings.MILEPOST_ROLLUP_FRESH_SECONDS + 1)

    def completed_and_marked() -> None:
        for who in people[:8]:
            recording.milestone_complete(end_user=who, milestone=second)
            services.journey_progress_mark_stale(end_user_id=who.pk, journey_id=journey.pk)

    for _ in range(repeat):
        journey_rollups.refresh_stale()  # the earlier commits' refresh has landed
        completed_and_marked()
        began = time.perf_counter()
        both()
        pending.append((time.perf_counter() - began) * 1000)
    journey_rollups.refresh_stale()
    for _ in range(repeat):
        completed_and_marked()
        JourneyStaleDay.objects.filter(journey=journey).update(first_marked_at=timezone.now() - old)
        began = time.perf_counter()
        both()
        pending_old.append((time.perf_counter() - began) * 1000)
    journey_rollups.refresh_stale()
    current = median_ms(both, repeat)
    # People who started today and have not reached the first milestone: each completion
    # changes a count.
    newcomers = list(
        EndUser.objects.filter(
            pk__in=JourneyProgress.objects.filter(journey=journey, started_at__gte=midnight)
            .exclude(
                end_user_id__in=MilestoneCompletion.objects.filter(
                    milestone=journey.milestones.get(position=0)
                ).values("end_user_id")
            )
            .values("end_user_id")[:repeat]
        )
    )
    celery = bool(os.environ.get("REDIS_URL"))
    landed = (freshness_celery if celery else freshness)(journey, newcomers, repeat)
    print(
        f"\nkept current: {len(people)} completions recorded by people who started today"
        f" (median {statistics.median(write_ms):.1f} ms each, the whole write path), the mark"
        f" alone median {statistics.median(mark_ms):.2f} ms; {marked} quarter hours marked,"
        f" refreshed in {refresh_ms:.0f} ms; then funnel + velocity (UTC) {after:.1f} ms"
        f" ({after / baseline:.2f}x baseline), in each zone {', '.join(in_zones)}",
        flush=True,
    )
    print(
        f"a read right after completions that marked up to 8 quarter hours (their refresh not"
        f" landed yet) {statistics.median(pending):.1f} ms (median of {repeat}),"
        f" {statistics.median(pending) / current:.2f}x an all-current read of the same run"
        f" ({current:.1f} ms); the same marks older than the bound, counted by the read itself,"
        f" {statistics.median(pending_old):.1f} ms"
        f" ({statistics.median(pending_old) / current:.2f}x)",
        flush=True,
    )
    how = "a Celery worker's task queued by the commit" if celery else "embedded loop woken"
    print(
        f"freshness ({how}, {len(landed)} commits one at a time):"
        f" counts stored {ms_range(landed, 0)} after commit, the running totals added up"
        f" {ms_range(landed, 1)} after commit",
        flush=True,
    )


def ms_range(samples: list[tuple[float, float]], index: int) -> str:
    import statistics

    values = [sample[index] for sample in samples]
    return (
        f"median {statistics.median(values):.0f} ms (min {min(values):.0f}, max {max(values):.0f})"
    )


def landed_after_commits(
    journey: Any, people: list[Any], samples: int
) -> list[tuple[float, float]]:
    """Commit a first completion per person, one at a time, each after the previous one has
    landed: milliseconds from its commit until its mark is gone (counts stored), and until the
    running totals it emptied are added up again."""
    from analytics.models import JourneyDayRollup, JourneyStaleDay
    from onboarding import recording

    marks = JourneyStaleDay.objects.filter(journey=journey)
    emptied = JourneyDayRollup.objects.filter(journey=journey, durations_total__isnull=True)

    def wait(done: Any) -> float:
        deadline = time.perf_counter() + 60
        while not done():
            if time.perf_counter() > deadline:
                raise SystemExit("the refresh did not land within 60 s")
            time.sleep(0.005)
        return time.perf_counter()

    wait(lambda: not marks.exists() and not emptied.exists())
    first = journey.milestones.get(position=0)
    landed = []
    for who in people[:samples]:
        recording.milestone_complete(end_user=who, milestone=first)
        committed = time.perf_counter()
        stored = wait(lambda: not marks.exists())
        totals = wait(lambda: not emptied.exists())
        landed.append(((stored - committed) * 1000, (totals - committed) * 1000))
    return landed


def freshness_celery(journey: Any, people: list[Any], samples: int) -> list[tuple[float, float]]:
    """As `freshness`, production's way: REDIS_URL set, each commit queues the journey's
    refresh (coalesced) for a real Celery worker (solo pool) started here."""
    import signal
    import subprocess

    from django.db import connection

    from analytics import journey_rollups, rollup_refresh

    script = (
        "from milepost.celery import app;"
        "app.worker_main(['worker', '--pool=solo', '--loglevel=WARNING', '--without-mingle',"
        " '--without-gossip', '-n', 'bench-rollups@%h'])"
    )
    worker = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", script], cwd=ROOT, start_new_session=True
    )
    try:
        journey_rollups.refresh_stale()
        # Tasks queued above, with no worker yet, expired: none is queued any more.
        rollup_refresh.refresh_taken([journey.pk])
        # The worker's first task (it takes a few seconds to start) is not a sample.
        landed_after_commits(journey, people[:1], 1)
        return landed_after_commits(journey, people[1:], samples)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        connection.close()


def freshness(journey: Any, people: list[Any], samples: int) -> list[tuple[float, float]]:
    """Commits one at a time with the embedded refresh loop running (as `run_milepost` runs
    it, on its own event loop and threads): how long after each commit its quarter hour's
    counts are stored (its mark is gone) and the running totals it emptied are added up."""
    import asyncio
    import contextlib
    import threading

    from django.db import connection

    from analytics import rollup_refresh, scheduler

    async def refresh_until_cancelled() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await scheduler.run_rollup_refresh()

    loop = asyncio.new_event_loop()
    refreshing = loop.create_task(refresh_until_cancelled())
    runner = threading.Thread(target=loop.run_until_complete, args=(refreshing,), daemon=True)
    runner.start()
    try:
        deadline = time.perf_counter() + 60
        while not rollup_refresh.loop_listening() and time.perf_counter() < deadline:
            time.sleep(0.005)
        return landed_after_commits(journey, people, samples)
    finally:
        loop.call_soon_threadsafe(refreshing.cancel)
        runner.join(10)
        connection.close()


def args_users(journey: Any) -> int:
    from onboarding.models import JourneyProgress

    return JourneyProgress.objects.filter(journey=journey).count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--generate-only", action="store_true")
    parser.add_argument(
        "--shift-to",
        type=float,
        default=None,
        help="move every start and completion so the last start is at this hour of today (UTC)",
    )
    parser.add_argument("--zones", default=",".join(ZONES))
    args = parser.parse_args()
    setup()
    journey = dataset(args.users)
    if args.generate_only:
        return
    if args.shift_to is not None:
        shift(journey, args.shift_to)
    measure(journey, args.repeat, args.zones.split(","))


if __name__ == "__main__":
    main()
