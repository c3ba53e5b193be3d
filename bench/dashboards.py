"""Admin dashboards benchmark (not a test): `python bench/dashboards.py`.

Renders the analytics home and each report's dashboard as a signed-in admin opens them (the
default inputs: the last 30 days, the first journey), over `generate_demo_events` data in
PostgreSQL, by default the demo's size (3 000 people / 150 000 events over 60 days; the
issue's large size is `--users 1000000 --events 10000000`). Prints the median of `--repeat`
renders of each page (after one warm-up) and its ratio to a baseline measured in the same run:
a plain `SELECT count(*)` over the same events, each figure with the load average when it
was taken. The data is the same workspace bench/analytics.py makes, generated once per size and
reused, exported into a fresh chDB store (a temporary directory) the way the scheduler does,
since the reports read the store; with ANALYTICS_URL set, that store is kept and only the
events it lacks are exported (10 M events take minutes to export).

`--sql` writes the data by SQL in PostgreSQL instead (bench/dashboards_data.py: the same shape
in minutes at 1 M people / 10 M events, its rollups counted by the product), `--primary-only`
measures only the pages that read the primary database (home, journey funnel, velocity, PQLs)
and skips the export, and `--check-sql` compares SQL-made data with the product's own counts.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

# The reports read the analytics store: a fresh one, filled below from the dataset, unless
# ANALYTICS_URL names one (kept between runs: only events not yet in it are exported).
FRESH_STORE = "ANALYTICS_URL" not in os.environ
os.environ.setdefault("ANALYTICS_URL", f"chdb://{tempfile.mkdtemp(prefix='milepost-dash-')}")

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("bench_analytics", HERE / "analytics.py")
assert _spec is not None
assert _spec.loader is not None
bench_analytics = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_analytics)

from dashboards_data import check, sql_dataset  # noqa: E402 - after the settings above

PAGES = [
    "",
    "journey-funnel/",
    "velocity/",
    "funnel/",
    "retention/",
    "lifecycle/",
    "pqls/",
    "adoption/",
    "pai/",
]


# The pages that read only the analytics store (and the primary database's settings).
STORE_PAGES = ["funnel/", "retention/", "lifecycle/", "adoption/", "pai/"]
# The pages that read the primary database (the home's walkthrough tiles read the store too,
# but the benchmark's workspace has no walkthroughs).
PRIMARY_PAGES = ["", "journey-funnel/", "velocity/", "pqls/"]

# People and events written straight into the store (no PostgreSQL rows), shaped like
# generate_demo_events': each person signs up at a random moment of the last `days` days with
# a $pageview, then does `per_person - 1` events thinning out after signup, the earlier
# activity names more often; a quarter become PQLs. Hashes of (person, event) stand in for
# the random numbers, so a run makes the same data.
SYNTHETIC_EVENTS = """
    INSERT INTO events (workspace_id, person_id, timestamp, id, name, properties)
    SELECT {w:UInt64}, p, fromUnixTimestamp64Milli(toInt64(if(i = 0, signed, signed
               + (now_ms - signed) * pow(cityHash64(p, i, 2) / 18446744073709551616, 2))), 'UTC'),
           number + 1,
           if(i = 0, '$pageview', {activity:Array(String)}[1 + least({last:UInt32}, toUInt32(
               -log(1 - cityHash64(p, i, 3) / 18446744073709551616) / 0.8))]),
           concat('{"source": "', ['ads', 'email', 'direct'][1 + cityHash64(p, i, 4) % 3], '"}')
    FROM (SELECT number, intDiv(number, {per_person:UInt64}) + 1 AS p,
                 number % {per_person:UInt64} AS i, {now_ms:Int64} AS now_ms,
                 now_ms - cityHash64(p, 1) % ({days:UInt64} * 86400000) AS signed
          FROM numbers({events:UInt64}))
"""
SYNTHETIC_PEOPLE = """
    INSERT INTO people (workspace_id, person_id, first_seen_at, signed_up_at, pql_at, traits,
                        version)
    SELECT {w:UInt64}, p, at, at, if(p % 4 = 0, at + toIntervalHour(1 + p % 48), NULL),
           concat('{"plan": "', ['free', 'pro'][1 + p % 2], '"}'), 1
    FROM (SELECT number + 1 AS p, fromUnixTimestamp64Milli(toInt64({now_ms:Int64}
                 - cityHash64(p, 1) % ({days:UInt64} * 86400000)), 'UTC') AS at
          FROM numbers({users:UInt64}))
"""


def synthetic_store_workspace(users: int, events: int) -> Any:
    """A workspace whose people and events are only in the store, written by SQL in seconds
    (generating 10 M events through PostgreSQL takes 16 minutes on a quiet machine, and more
    than the hour there was on a loaded one). Only the store's reports read it."""
    from django.utils import timezone

    from analytics import store
    from analytics.management.commands.generate_demo_events import ACTIVITY
    from onboarding.models import EndUser, Event, Workspace

    slug = f"bench-store-{users}u-{events}e"
    workspace = Workspace.objects.filter(slug=slug).first()
    if workspace is None:
        workspace = Workspace(name=slug, slug=slug)
        workspace.issue_keys()
        workspace.save()
        # The inputs accept only event names the workspace recorded (checked in PostgreSQL):
        # one event of each name there, which the store does not hold.
        person = EndUser.objects.create(workspace=workspace, external_id="bench-store-person")
        Event.objects.bulk_create(
            Event(
                workspace=workspace,
                end_user=person,
                client_id=uuid.uuid4(),
                name=name,
                timestamp=timezone.now(),
            )
            for name in ACTIVITY
        )
    store.migrate()
    found = store.rows(
        "SELECT count() FROM events WHERE workspace_id = {w:UInt64}", {"w": workspace.pk}
    )
    if found[0][0] == events:
        return workspace
    for table in ("events", "people"):
        store.command(f"DELETE FROM {table} WHERE workspace_id = {{w:UInt64}}", {"w": workspace.pk})
    print(f"writing {users} people / {events} events into the store ...", flush=True)
    started = time.perf_counter()
    parameters = {
        "w": workspace.pk,
        "users": users,
        "events": events,
        "per_person": max(events // users, 1),
        "days": bench_analytics.DAYS,
        "now_ms": int(timezone.now().timestamp() * 1000),
        "activity": ACTIVITY,
        "last": len(ACTIVITY) - 1,
    }
    store.command(SYNTHETIC_EVENTS, parameters)
    store.command(SYNTHETIC_PEOPLE, parameters)
    print(f"written in {time.perf_counter() - started:.0f} s", flush=True)
    return workspace


def measure(
    workspace: Any, repeat: int, pages: list[str] = PAGES
) -> dict[str, tuple[float, float]]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.db.backends.signals import connection_created
    from django.test import Client

    from onboarding.models import Event

    # Not setup_test_environment(): its instrumented templates copy every context they render,
    # which tripled the pages' render time here; a browser's request has none of that.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    admin, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(admin)
    # Every query of the primary database, on whichever thread and connection the request
    # runs (a page's connection is opened for it and closed after it).
    queries: list[str] = []

    def count_query(execute: Any, sql: str, *args: Any) -> Any:
        queries.append(sql)
        return execute(sql, *args)

    def counting(sender: Any, connection: Any, **kwargs: Any) -> None:
        if count_query not in connection.execute_wrappers:
            connection.execute_wrappers.append(count_query)

    connection_created.connect(counting, weak=False)
    counting(None, connection)
    # Each figure with the load average (1 minute) when it was taken: the machine is shared.
    figures: dict[str, tuple[float, float]] = {}

    def count() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT count(*) FROM {Event._meta.db_table} WHERE workspace_id = %s",
                [workspace.pk],
            )

    figures["baseline: count(*) of the events"] = (
        bench_analytics.median_ms(count, repeat),
        os.getloadavg()[0],
    )

    def store_count() -> None:
        from analytics import store

        store.rows(
            "SELECT count() FROM events WHERE workspace_id = {w:UInt64}", {"w": workspace.pk}
        )

    figures["floor: count() in the store"] = (
        bench_analytics.median_ms(store_count, repeat),
        os.getloadavg()[0],
    )
    for page in pages:
        address = f"/admin/analytics/dashboard/{page}?workspace={workspace.pk}"

        def render(address: str = address) -> None:
            answer = client.get(address)
            if answer.status_code != 200:
                raise SystemExit(f"{address} answered {answer.status_code}")

        name = page.rstrip("/") or "home"
        # The warm-up render (which counts what is stale in the journey rollups, as the
        # first page after a bulk write does) and a later one count the primary database's
        # queries, which the machine's load does not change; the timed renders give the wall
        # time and this process's CPU time (chDB's threads included; PostgreSQL's server is
        # another process).
        queries.clear()
        started = time.perf_counter()
        render()
        figures[f"{name} (first render)"] = ((time.perf_counter() - started) * 1000, len(queries))
        wall, cpu = [], []
        for _ in range(repeat):
            queries.clear()
            started, started_cpu = time.perf_counter(), time.process_time()
            render()
            wall.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
        figures[name] = (statistics.median(wall), os.getloadavg()[0])
        figures[f"{name} (CPU ms, queries)"] = (statistics.median(cpu), len(queries))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--events", type=int, default=150_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--store-only",
        action="store_true",
        help="write the people and events straight into the store and measure only the "
        "store's reports (funnel, retention, lifecycle, adoption, PAI)",
    )
    parser.add_argument(
        "--sql",
        action="store_true",
        help="write the people, progress, completions and events by SQL in PostgreSQL "
        "(bench/dashboards_data.py: minutes at 1 M people / 10 M events) instead of "
        "generate_demo_events",
    )
    parser.add_argument(
        "--primary-only",
        action="store_true",
        help="measure only the pages that read the primary database (home, journey funnel, "
        "velocity, PQLs), without exporting the events to the store",
    )
    parser.add_argument(
        "--check-sql",
        action="store_true",
        help="compare the SQL-made data's rollups, progress and completions with the "
        "product's own live counts and rules at a small size, and stop",
    )
    options = parser.parse_args()
    bench_analytics.setup()
    from analytics import store, store_export

    if options.check_sql:
        problems = check()
        print("\n".join(problems) or "the SQL-made data agrees with the product's counts")
        raise SystemExit(1 if problems else 0)
    if options.store_only:
        workspace = synthetic_store_workspace(options.users, options.events)
        pages = STORE_PAGES
    else:
        make = sql_dataset if options.sql else bench_analytics.dataset
        workspace = make(options.users, options.events)
        pages = PRIMARY_PAGES if options.primary_only else PAGES
    if pages is PAGES:
        started = time.perf_counter()
        if FRESH_STORE:
            store.reset()
        exported = store_export.export(settle=timedelta(0)).exported
        print(f"exported {exported} events to the store in {time.perf_counter() - started:.0f} s")
    print(f"load average before: {os.getloadavg()}")
    figures = measure(workspace, options.repeat, pages)
    print(f"load average after: {os.getloadavg()}")
    # A store-only workspace has no events in PostgreSQL: its baseline is the store's floor.
    baseline = figures[
        "floor: count() in the store" if options.store_only else "baseline: count(*) of the events"
    ][0]
    print(f"\n{options.users} people / {options.events} events, median of {options.repeat}")
    for name, (ms, load) in figures.items():
        if name.endswith("(CPU ms, queries)"):
            print(f"  {name:36} {ms:9.1f} ms CPU  {load:4.0f} queries")
        elif name.endswith("(first render)"):
            print(f"  {name:36} {ms:9.1f} ms      {load:4.0f} queries")
        else:
            print(f"  {name:36} {ms:9.1f} ms  {ms / baseline:7.1f}x  load {load:5.1f}")


if __name__ == "__main__":
    main()
