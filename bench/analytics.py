"""Analytics benchmark (not a test): `make bench` or `python bench/analytics.py`.

On `generate_demo_events` data in PostgreSQL, two sizes a tenth apart (by default 10 k people /
100 k events and 100 k people / 1 M events; `--users 1000000 --events 10000000` for the issue's
sizes), each in its own workspace:

- journey funnel from the rollups (warm), the same funnel counted live, and milestone
  velocity, over all the people;
- an ordered 5-step event funnel and a 8-day retention grid over all the events;
- the baseline: a plain `SELECT count(*)` over the same events, measured in the same run.

Prints medians of `--repeat` runs, each figure's ratio to the baseline, and how each figure
grows from the small size to the large one (10x the data: a growth of 10x or less is linear
or better). Data is generated once per size and reused by later runs (workspace slug names
the size). DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/milepost_bench_analytics
(created if missing).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from timing import median_ms

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/milepost_bench_analytics")
os.environ.setdefault("SECRET_KEY", "milepost-bench-only")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "milepost.settings")

FUNNEL_STEPS = ("$pageview", "login", "campaign_created", "contacts_imported", "report_viewed")
DAYS = 60


def ensure_database() -> None:
    import psycopg

    url = os.environ["DATABASE_URL"]
    if not url.startswith("postgres"):
        raise SystemExit("bench/analytics.py measures PostgreSQL; set DATABASE_URL to one.")
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


def dataset(users: int, events: int) -> Any:
    """The workspace holding `users` people and `events` events, generated if missing."""
    from django.core.management import call_command
    from django.db import connection
    from trial_journey import trial_workspace

    slug = f"bench-{users}u-{events}e"
    workspace, complete = trial_workspace(slug, events)
    if complete:
        return workspace
    print(f"generating {users} people / {events} events ...", flush=True)
    started = time.perf_counter()
    call_command(
        "generate_demo_events",
        "--workspace",
        slug,
        "--users",
        str(users),
        "--events",
        str(events),
        "--days",
        str(DAYS),
    )
    print(f"generated in {time.perf_counter() - started:.0f} s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return workspace


def measure(workspace: Any, repeat: int) -> dict[str, float]:
    from django.db import connection
    from django.utils import timezone

    from analytics.inputs import DateRange, EventFunnelSpec, FunnelStep
    from analytics.models import JourneyDayRollup
    from analytics.report import event_funnel, journey_funnel, milestone_velocity, retention
    from onboarding.models import Event, Journey

    journey = Journey.objects.get(workspace=workspace, key="trial")
    today = timezone.now().date()
    everything = DateRange(today - timedelta(days=DAYS + 1), today)
    until_yesterday = DateRange(everything.date_from, today - timedelta(days=1))
    new_york = DateRange(everything.date_from, today, "America/New_York")
    funnel = EventFunnelSpec(steps=tuple(FunnelStep(name) for name in FUNNEL_STEPS))

    # One cold read: the first velocity read of a journey computes every day's rollup.
    JourneyDayRollup.objects.filter(journey=journey).delete()
    started = time.perf_counter()
    milestone_velocity.milestone_velocity(journey=journey, date_range=everything)
    cold_ms = (time.perf_counter() - started) * 1000

    def baseline() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT count(*) FROM {Event._meta.db_table} WHERE workspace_id = %s",
                [workspace.pk],
            )
            cursor.fetchone()

    def step_events() -> None:
        # The floor under any exact funnel: counting the events of its steps in the range.
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT count(*) FROM {Event._meta.db_table} WHERE workspace_id = %s"
                " AND name = ANY(%s) AND timestamp >= %s AND timestamp < %s",
                [workspace.pk, list(FUNNEL_STEPS), everything.start, everything.end],
            )
            cursor.fetchone()

    def journey_reports(date_range: DateRange = everything) -> None:
        journey_funnel.journey_funnel(journey=journey, date_range=date_range)
        milestone_velocity.milestone_velocity(journey=journey, date_range=date_range)

    return {
        "baseline: count(*) of the events": median_ms(baseline, repeat),
        "count(*) of the funnel's step events": median_ms(step_events, repeat),
        "journey funnel (rollups)": median_ms(
            lambda: journey_funnel.journey_funnel(journey=journey, date_range=everything), repeat
        ),
        "journey funnel (live)": median_ms(
            lambda: journey_funnel.journey_funnel(
                journey=journey, date_range=everything, fresh=True
            ),
            repeat,
        ),
        "milestone velocity": median_ms(
            lambda: milestone_velocity.milestone_velocity(journey=journey, date_range=everything),
            repeat,
        ),
        "velocity, America/New_York": median_ms(
            lambda: milestone_velocity.milestone_velocity(journey=journey, date_range=new_york),
            repeat,
        ),
        "velocity, first read (cold rollups)": cold_ms,
        "journey funnel + velocity": median_ms(journey_reports, repeat),
        "funnel + velocity, up to yesterday": median_ms(
            lambda: journey_reports(until_yesterday), repeat
        ),
        "5-step event funnel": median_ms(
            lambda: event_funnel.event_funnel(
                workspace=workspace, spec=funnel, date_range=everything
            ),
            repeat,
        ),
        "retention grid (8 days)": median_ms(
            lambda: retention.retention(workspace=workspace, date_range=everything, periods=8),
            repeat,
        ),
    }


def receiver_cost(workspace: Any, calls: int = 2000) -> tuple[float, float]:
    """Microseconds per milestone_completed receiver call (lookup + upsert of a stale mark)
    against a one-row primary-key SELECT on the same table, both in autocommit."""
    from django.db import connection

    from analytics import receivers
    from onboarding.models import JourneyProgress

    rows = list(
        JourneyProgress.objects.filter(workspace=workspace).values_list(
            "pk", "end_user_id", "journey_id"
        )[:calls]
    )

    def per_call(run: Callable[[tuple[int, int, int]], Any]) -> float:
        started = time.perf_counter()
        for row in rows:
            run(row)
        return (time.perf_counter() - started) / len(rows) * 1e6

    def lookup(row: tuple[int, int, int]) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT started_at FROM {JourneyProgress._meta.db_table} WHERE id = %s",
                [row[0]],
            )
            cursor.fetchone()

    def mark(row: tuple[int, int, int]) -> None:
        receivers.on_milestone_completed(
            sender=None,
            workspace_id=workspace.pk,
            end_user_id=row[1],
            milestone_id=0,
            journey_id=row[2],
            completed_at=None,
        )

    return per_call(mark), per_call(lookup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000, help="People at the large size.")
    parser.add_argument("--events", type=int, default=1_000_000, help="Events at the large size.")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    setup()
    sizes = [(args.users // 10, args.events // 10), (args.users, args.events)]
    results = []
    for users, events in sizes:
        workspace = dataset(users, events)
        results.append(measure(workspace, args.repeat))
    small, large = results
    print()
    print(f"{'figure':38} {'small':>10} {'large':>10} {'x baseline':>11} {'growth':>7}")
    print(f"{'':38} {sizes[0][1]:>9}e {sizes[1][1]:>9}e {'(large)':>11} {'':>7}")
    base = large["baseline: count(*) of the events"]
    for name in large:
        print(
            f"{name:38} {small[name]:>8.1f}ms {large[name]:>8.1f}ms"
            f" {large[name] / base:>10.1f}x {large[name] / small[name]:>6.1f}x"
        )
    print(
        f"\n{sizes[1][0]} people, {sizes[1][1]} events at the large size; growth is large / small"
        f" for 10x the data (10x = linear). Run at {time.strftime('%H:%M', time.gmtime())} UTC:"
        " today's starts so far are counted live."
    )
    mark, lookup = receiver_cost(workspace)
    print(
        f"milestone_completed receiver: {mark:.0f} us per call; baseline one-row SELECT"
        f" {lookup:.0f} us ({mark / lookup:.1f}x)"
    )


if __name__ == "__main__":
    main()
