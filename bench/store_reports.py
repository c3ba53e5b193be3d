"""Analytics store benchmark (not a test): `make bench` or `python bench/store_reports.py`.

Two parts, both in one run:

1. The export: events written to PostgreSQL (one batch with generate_series), then copied into
   a fresh chDB store by `store_export.export()`; its rate is printed next to the floor, the
   same rows read out of PostgreSQL by COPY and discarded, in the same run.
2. The reports computed in the store (retention first-time and recurring, 8 weekly periods;
   lifecycle; PAI validation; the adoption matrix; the walkthrough step funnel) at 1 M events
   / 100 k people and 10 M events / 1 M people, each next to a plain `count()` of the same
   workspace's events in the same store (the floor). Events are generated straight into the
   store (columnar inserts), spread over 60 days; people's activity is skewed (a few heavy
   users, many light ones); 70 % of people signed up, 10 % became PQLs.

Prints the median of `--repeat` warm runs per figure (wall and this process's CPU, chDB's
threads included) and its ratio to the floor. The export's events are counted back from the
store, so the figure is proven, not assumed; after it, what the scheduled export (settling time
on) pays to find the first event still settling, with the received_at index and without it.
`--before REVISION` also times the report modules as they were at REVISION, interleaved with
today's in the same process; `MILEPOST_BENCH_DIR=DIR` keeps the generated store in DIR.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from timing import median_ms

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/milepost_bench_store")
os.environ.setdefault("SECRET_KEY", "milepost-bench-only")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "milepost.settings")
# MILEPOST_BENCH_DIR keeps the store between runs: a size already generated there (and not
# emptied since by the export or demo parts, which reset the store) is reused, not generated
# again (10 M events take minutes).
KEEP = bool(os.environ.get("MILEPOST_BENCH_DIR"))
STORE_DIR = os.environ.get("MILEPOST_BENCH_DIR") or tempfile.mkdtemp(prefix="milepost-store-bench-")
os.environ["ANALYTICS_URL"] = f"chdb://{STORE_DIR}"

NAMES = (
    "$pageview",
    "login",
    "campaign_created",
    "contacts_imported",
    "report_viewed",
    "subscription_started",
)
STEP_NAMES = ("$walkthrough_started", "$step_viewed", "$step_completed")
SOURCES = ("ads", "email", "direct", "partner")
FUNNEL = NAMES[:5]
DAYS = 60
ORIGIN = datetime(2026, 1, 1, tzinfo=UTC)


def setup() -> None:
    import psycopg

    url = os.environ["DATABASE_URL"]
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def workspace(slug: str) -> Any:
    from onboarding.models import EndUser, Event, Walkthrough, Workspace

    for old in Workspace.objects.filter(slug=slug):
        drop(old)
    ws = Workspace(name=slug, slug=slug)
    ws.issue_keys()
    ws.save()
    Walkthrough.objects.create(workspace=ws, key="tour", name="Tour")
    # The reports check that a named event was ever recorded, in the primary database.
    person = EndUser.objects.create(workspace=ws, external_id="probe")
    Event.objects.bulk_create(
        Event(
            workspace=ws,
            end_user=person,
            client_id=f"00000000-0000-4000-8000-{i:012d}",
            name=name,
            timestamp=ORIGIN,
        )
        for i, name in enumerate(NAMES + STEP_NAMES)
    )
    return ws


def drop(ws: Any) -> None:
    """Delete a workspace, its many events first in one statement (the ORM's cascade would
    list their ids)."""
    from django.db import connection

    from onboarding.models import Event

    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Event._meta.db_table} WHERE workspace_id = %s", [ws.pk])
    ws.delete()


def fill_store(workspace_id: int, people: int, events: int) -> None:
    """`events` events of `people` people straight into the store, in 1 M-row blocks."""
    import numpy as np

    from analytics import store

    rng = np.random.default_rng(workspace_id)
    names = np.array(NAMES + STEP_NAMES, dtype=object)
    weights = np.array([0.4, 0.2, 0.08, 0.06, 0.1, 0.01, 0.05, 0.06, 0.05])
    chunk = 1_000_000
    origin_ms = int(ORIGIN.timestamp() * 1000)
    for offset in range(0, events, chunk):
        size = min(chunk, events - offset)
        person = (rng.pareto(1.2, size) * people / 20).astype(np.int64) % people + 1
        # Each person starts on a day of their own and is active from then on.
        start_day = (person * 7919) % (DAYS // 2)
        day = start_day + (rng.exponential(6, size).astype(np.int64) % (DAYS - start_day))
        ms = origin_ms + day * 86_400_000 + rng.integers(0, 86_400_000, size)
        name = rng.choice(names, size, p=weights / weights.sum())
        step = rng.integers(0, 4, size)
        # A `source` that changes from event to event, for breakdowns by an event property.
        sources = np.array([f'{{"source":"{source}"}}' for source in SOURCES], dtype=object)
        properties = np.where(
            np.isin(name, STEP_NAMES),
            np.char.add(np.char.add('{"walkthrough":"tour","step":', step.astype(str)), "}"),
            sources[rng.integers(0, len(SOURCES), size)],
        )
        store.insert(
            "events",
            [
                [workspace_id] * size,
                person.tolist(),
                ms.tolist(),
                list(range(offset + 1, offset + size + 1)),
                name.tolist(),
                properties.tolist(),
            ],
            ["workspace_id", "person_id", "timestamp", "id", "name", "properties"],
        )
    # One row per person: first seen on their start day, 70 % signed up then, 10 % PQLs.
    ids = np.arange(1, people + 1)
    first_ms = origin_ms + ((ids * 7919) % (DAYS // 2)) * 86_400_000
    signed = rng.random(people) < 0.7
    pql = rng.random(people) < 0.1
    store.insert(
        "people",
        [
            [workspace_id] * people,
            ids.tolist(),
            first_ms.tolist(),
            [int(ms) + 3_600_000 if s else None for ms, s in zip(first_ms, signed, strict=True)],
            [int(ms) + 5 * 86_400_000 if p else None for ms, p in zip(first_ms, pql, strict=True)],
            [f'{{"plan":"{plan}"}}' for plan in rng.choice(["free", "pro", "team"], people)],
            [1] * people,
        ],
        [
            "workspace_id",
            "person_id",
            "first_seen_at",
            "signed_up_at",
            "pql_at",
            "traits",
            "version",
        ],
    )
    store.command("OPTIMIZE TABLE events FINAL")


def funnels(date_range: Any) -> dict[str, Any]:
    """The event funnels timed: 5 steps, 14-day window, each order mode, breakdowns."""
    from analytics.inputs import EventFunnelSpec, FunnelBreakdown, FunnelExclusion, FunnelStep

    steps = tuple(FunnelStep(name) for name in FUNNEL)
    return {
        "funnel, ordered, 5 steps": EventFunnelSpec(steps=steps),
        "  + breakdown by source, first touch": EventFunnelSpec(
            steps=steps, breakdown=FunnelBreakdown("event", "source")
        ),
        "  + breakdown by source, all steps": EventFunnelSpec(
            steps=steps, breakdown=FunnelBreakdown("event", "source", "all_steps")
        ),
        "  + breakdown by person trait plan": EventFunnelSpec(
            steps=steps, breakdown=FunnelBreakdown("person", "plan")
        ),
        "  + exclusion (subscription 1-3)": EventFunnelSpec(
            steps=steps, exclusions=(FunnelExclusion("subscription_started", 1, 3),)
        ),
        "funnel, strict, 5 steps": EventFunnelSpec(steps=steps, order="strict"),
        "funnel, any order, 5 steps": EventFunnelSpec(steps=steps, order="unordered"),
    }


REPORT_MODULES = ("retention", "lifecycle", "pai", "adoption")


def load_before(revision: str) -> SimpleNamespace:
    """The report modules this bench times (REPORT_MODULES) as they were at `revision`, each a
    module of its own, to time them interleaved with today's in the same process."""
    import importlib.util
    import subprocess

    modules = {}
    folder = Path(tempfile.mkdtemp(prefix="milepost-bench-before-"))
    for name in REPORT_MODULES:
        source = subprocess.run(  # noqa: S603
            ["git", "show", f"{revision}:analytics/report/{name}.py"],  # noqa: S607
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        path = folder / f"{name}_{revision}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(f"{name}_{revision}", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        modules[name] = module
    return SimpleNamespace(**modules)


def interleaved(runs: dict[str, Callable[[], Any]], repeat: int) -> dict[str, tuple[float, float]]:
    """Per run, the median (wall ms, CPU ms) of `repeat` timings after one warm-up, the runs
    timed in turn (A, B, A, B, ...): the machine is shared, so a comparison is only fair within
    one such round. CPU is this process's (chDB's threads included): less moved by the load."""
    times: dict[str, list[tuple[float, float]]] = {label: [] for label in runs}
    for run in runs.values():
        run()
    for _ in range(repeat):
        for label, run in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            times[label].append(
                ((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000)
            )
    return {
        label: (
            statistics.median(wall for wall, _ in values),
            statistics.median(cpu for _, cpu in values),
        )
        for label, values in times.items()
    }


def measure_reports(
    ws: Any,
    repeat: int,
    with_funnels: bool = True,
    before: SimpleNamespace | None = None,
    funnel_repeat: int = 1,
) -> dict[str, tuple[float, float]]:
    """Each report's (wall ms, CPU ms), next to the floor; with `before`, each report also as
    those modules compute it (label "... (before)"), interleaved with today's."""
    from analytics import store, store_funnel
    from analytics.inputs import DateRange
    from analytics.report import adoption, lifecycle, pai, retention, walkthrough_funnel
    from onboarding.models import Walkthrough

    everything = DateRange(ORIGIN.date(), ORIGIN.date() + timedelta(days=DAYS), "UTC")
    new_york = DateRange(ORIGIN.date(), ORIGIN.date() + timedelta(days=DAYS), "America/New_York")
    # The lifecycle dashboard's default: 90 days by week.
    ninety_days = DateRange(
        ORIGIN.date() + timedelta(days=DAYS - 89), ORIGIN.date() + timedelta(days=DAYS), "UTC"
    )
    now = ORIGIN + timedelta(days=DAYS + 60)
    tour = Walkthrough.objects.get(workspace=ws, key="tour")
    today = SimpleNamespace(retention=retention, lifecycle=lifecycle, pai=pai, adoption=adoption)

    def floor() -> None:
        store.rows("SELECT count() FROM events WHERE workspace_id = {w:UInt64}", {"w": ws.pk})

    def weekly(cohort_type: str, date_range: DateRange = everything) -> Callable[[Any], Any]:
        return lambda m: m.retention.retention(
            workspace=ws,
            date_range=date_range,
            period="week",
            periods=8,
            cohort_type=cohort_type,
            now=now,
        )

    figures = {"floor: count() of the events": interleaved({"floor": floor}, repeat)["floor"]}
    for label, spec in funnels(everything).items() if with_funnels else ():
        figures[label] = interleaved(
            {
                label: lambda spec=spec: store_funnel.event_funnel(
                    workspace=ws, spec=spec, date_range=everything
                )
            },
            funnel_repeat,
        )[label]
        print(f"  {label:<40} {figures[label][0]:9.1f} ms", flush=True)
    reports: dict[str, Callable[[Any], Any]] = {
        "retention, 8 weeks, first-time": weekly("first_time"),
        "retention, 8 weeks, recurring": weekly("recurring"),
        "retention, 8 weeks, New York": weekly("first_time", new_york),
        "retention, 8 days, login -> report": lambda m: m.retention.retention(
            workspace=ws,
            date_range=everything,
            periods=8,
            cohort_event="login",
            return_event="report_viewed",
            now=now,
        ),
        "adoption matrix, 3 features": lambda m: m.adoption.adoption_matrix(
            workspace=ws,
            features=["campaign_created", "contacts_imported", "report_viewed"],
            date_range=everything,
        ),
        "lifecycle": lambda m: m.lifecycle.lifecycle(workspace=ws, now=now),
        "lifecycle + 13 weeks over time": lambda m: m.lifecycle.lifecycle(
            workspace=ws, now=now, date_range=ninety_days, period="week"
        ),
        "PAI validation (10 thresholds, day 21)": lambda m: m.pai.pai_validation(
            workspace=ws, key_event="campaign_created", date_range=everything, now=now
        ),
    }
    for label, report in reports.items():
        runs = {label: lambda report=report: report(today)}
        if before is not None:
            runs[f"{label} (before)"] = lambda report=report: report(before)
        figures |= interleaved(runs, repeat)
    figures["walkthrough step funnel"] = interleaved(
        {
            "walkthrough": lambda: walkthrough_funnel.walkthrough_step_funnel(
                walkthrough=tour, date_range=everything
            )
        },
        repeat,
    )["walkthrough"]
    return figures


def planning_ms(report: Callable[[], Any], repeat: int) -> float:
    """What ClickHouse spends planning a report: its store queries, captured from one run,
    timed as `EXPLAIN PLAN` (analysis and planning, no execution), median of `repeat`."""
    from analytics import store

    asked: list[tuple[str, Any]] = []
    rows = store.rows

    def capture(sql: str, parameters: Any = None) -> Any:
        asked.append((sql, parameters))
        return rows(sql, parameters)

    store.rows = capture  # type: ignore[assignment]
    try:
        report()
    finally:
        store.rows = rows  # type: ignore[assignment]
    return median_ms(lambda: [rows(f"EXPLAIN PLAN {sql}", p) for sql, p in asked], repeat)


def measure_demo(
    users: int, events: int, repeat: int, with_funnels: bool = True
) -> dict[str, float]:
    """Every report on the data `generate_demo_events` makes (exported to the store as the
    scheduler does), next to the floor; each report but the funnels also with its planning
    time alone (`<report>: planning`)."""
    from django.core.management import call_command

    from analytics import store, store_export, store_funnel
    from analytics.inputs import DateRange
    from analytics.report import adoption, lifecycle, pai, retention, walkthrough_funnel
    from onboarding.models import Walkthrough

    ws = workspace("bench-store-demo")
    call_command("generate_demo_events", users=users, events=events, workspace=ws.slug, quiet=True)
    store.reset()
    store_export.export(settle=timedelta(0))
    today = datetime.now(UTC).date()
    last = DateRange(today - timedelta(days=60), today, "UTC")
    tour = Walkthrough.objects.get(workspace=ws, key="tour")
    figures = {
        "floor: count() of the events": median_ms(
            lambda: store.rows(
                "SELECT count() FROM events WHERE workspace_id = {w:UInt64}", {"w": ws.pk}
            ),
            repeat,
        )
    }
    for label, spec in funnels(last).items() if with_funnels else ():
        figures[label] = median_ms(
            lambda spec=spec: store_funnel.event_funnel(workspace=ws, spec=spec, date_range=last),
            repeat,
        )
    reports: dict[str, Callable[[], Any]] = {
        "retention, 4 weeks": lambda: retention.retention(
            workspace=ws, date_range=last, period="week", periods=4
        ),
        "retention, 7 days": lambda: retention.retention(workspace=ws, date_range=last, periods=7),
        "retention, 8 weeks, recurring": lambda: retention.retention(
            workspace=ws, date_range=last, period="week", periods=8, cohort_type="recurring"
        ),
        "adoption matrix, 3 features": lambda: adoption.adoption_matrix(
            workspace=ws,
            features=["campaign_created", "contacts_imported", "report_viewed"],
            date_range=last,
        ),
        "lifecycle": lambda: lifecycle.lifecycle(workspace=ws),
        "PAI validation": lambda: pai.pai_validation(
            workspace=ws, key_event="campaign_created", date_range=last
        ),
        "walkthrough step funnel": lambda: walkthrough_funnel.walkthrough_step_funnel(
            walkthrough=tour, date_range=last
        ),
    }
    for label, report in reports.items():
        figures[label] = median_ms(report, repeat)
        figures[f"{label}: planning"] = planning_ms(report, repeat)
    stored = store.rows("SELECT count() FROM events WHERE workspace_id = {w:UInt64}", {"w": ws.pk})
    print(f"\ndemo data: {users:,} people, {stored[0][0]:,} events in the store")
    for table in ("events", "people"):
        store.command(f"DELETE FROM {table} WHERE workspace_id = {{w:UInt64}}", {"w": ws.pk})
    drop(ws)
    return figures


def measure_export(events: int, rounds: int = 2) -> list[tuple[float, float, int]]:
    """Per round, (export rows/s, plain PostgreSQL read rows/s, events counted in the store):
    the floor and the export alternate, each export into an emptied store. Before the first
    round, one insert into the store is timed apart: clickhouse-connect imports pandas on a
    process's first insert (1-8 s here), which a scheduler pays once, not per row."""
    from django.db import connection
    from django.utils import timezone

    from analytics import store, store_export
    from analytics.models import StorePurge
    from onboarding.models import EndUser, Event

    ws = workspace("bench-store-export")
    person = EndUser.objects.get(workspace=ws, external_id="probe")
    table = Event._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {table} (workspace_id, end_user_id, client_id, name, timestamp,
                    received_at, properties, source, clock_skew_clamped)
                SELECT %s, %s, md5(i::text)::uuid, (ARRAY['login','report_viewed','$pageview'])
                       [1 + i %% 3], %s::timestamptz + i * interval '1 second',
                       %s::timestamptz, jsonb_build_object('plan', 'pro', 'seats', i %% 50),
                       'server', false
                FROM generate_series(1, %s) AS i""",
            [ws.pk, person.pk, ORIGIN, ORIGIN, events],
        )
        cursor.execute("ANALYZE")
    expected = Event.objects.filter(workspace=ws).count()
    others = Event.objects.exclude(workspace=ws).count()
    if others:
        print(f"  ({others:,} other events in this database are exported too)")
    store.reset()
    started = time.perf_counter()
    store.insert(
        "export_state",
        [["bench-warm-up"], [0], [timezone.now()]],
        store_export.EXPORT_STATE_COLUMNS,
    )
    print(
        f"  first insert of the process: {time.perf_counter() - started:.2f} s (once per process)"
    )
    figures = []
    for _ in range(rounds):
        # The floor: the same rows read out of PostgreSQL by COPY and thrown away.
        connection.ensure_connection()
        started = time.perf_counter()
        read = 0
        with (
            connection.connection.cursor() as raw,
            raw.copy(
                f"COPY (SELECT workspace_id, end_user_id, timestamp, id, name, properties"
                f" FROM {table} WHERE workspace_id = {int(ws.pk)} ORDER BY id) TO STDOUT"
            ) as copy,
        ):
            for chunk in copy:
                read += bytes(chunk).count(b"\n")
        read_rate = read / (time.perf_counter() - started)
        store.reset()
        # Workspaces dropped by earlier runs left purge requests for a store that is now
        # empty: applying them (two DELETEs each) would be timed as export.
        StorePurge.objects.all().delete()
        result = store_export.export(settle=timedelta(0))
        stored = int(
            store.rows("SELECT count() FROM events WHERE workspace_id = {w:UInt64}", {"w": ws.pk})[
                0
            ][0]
        )
        assert stored == expected, (stored, expected)
        figures.append((result.rate, read_rate, stored))
    measure_scheduled_export(ws, expected)
    drop(ws)
    return figures


def measure_scheduled_export(ws: Any, expected: int) -> None:
    """What the scheduled export pays, over the rebuild, to find the first event still settling
    among a backlog of `expected` settled events: that search alone with the received_at index
    and without it (dropped in a transaction that is rolled back), then a whole scheduled run."""
    from django.db import connection, transaction
    from django.utils import timezone

    from analytics import store, store_export

    def search_ms() -> float:
        started = time.perf_counter()
        store_export._first_unsettled(0, timezone.now() - timedelta(seconds=5))
        return (time.perf_counter() - started) * 1000

    with_index = statistics.median(search_ms() for _ in range(3))
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DROP INDEX event_received_at")
        without_index = statistics.median(search_ms() for _ in range(3))
        transaction.set_rollback(True)
    print(
        f"search for the first event still settling, {expected:,} waiting: {with_index:.1f} ms "
        f"with the received_at index, {without_index:.1f} ms without; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    for _ in range(2):  # a scheduled run and a rebuild's, alternated, each into an empty store
        rates = []
        for settle in (None, timedelta(0)):
            store.reset()
            rates.append(store_export.export(settle=settle).rate)
            stored = store.rows(
                "SELECT count() FROM events WHERE workspace_id = {w:UInt64}", {"w": ws.pk}
            )
            assert stored[0][0] == expected, (stored, expected)
        print(
            f"scheduled export (settling time on): {rates[0]:,.0f} events/s; without the search "
            f"(settling time 0): {rates[1]:,.0f} events/s; load {os.getloadavg()[0]:.1f}",
            flush=True,
        )


def kept_workspace(slug: str, events: int) -> Any:
    """The workspace of a size generated by an earlier run into a kept store, if all its events
    are still there."""
    from analytics import store
    from onboarding.models import Workspace

    ws = Workspace.objects.filter(slug=slug).first()
    if ws is None:
        return None
    stored = store.rows("SELECT count() FROM events WHERE workspace_id = {w:UInt64}", {"w": ws.pk})
    return ws if int(stored[0][0]) == events else None


def print_figures(figures: dict[str, tuple[float, float]]) -> None:
    floor = figures["floor: count() of the events"][0]
    print(f"  {'':<44} {'wall ms':>9} {'x floor':>9} {'CPU ms':>9}")
    for label, (wall, cpu) in figures.items():
        print(f"  {label:<44} {wall:9.1f} {wall / floor:8.1f}x {cpu:9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000000:100000,10000000:1000000")
    parser.add_argument("--export-events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--demo", default="3000:60000", help="users:events ('' to skip)")
    parser.add_argument("--no-funnels", action="store_true", help="time the other reports only")
    parser.add_argument(
        "--before",
        metavar="REVISION",
        help="also time the report modules as they were at REVISION, interleaved",
    )
    args = parser.parse_args()
    setup()
    from analytics import store

    started = datetime.now(UTC).date()
    print(f"analytics store bench ({started}), chDB {store.ping()} in {STORE_DIR}")
    print(f"load average at start: {os.getloadavg()}", flush=True)
    before = load_before(args.before) if args.before else None
    for rate, floor_rate, stored in (
        measure_export(args.export_events) if args.export_events else ()
    ):
        print(
            f"export: {rate:,.0f} events/s; COPY of the same rows out of PostgreSQL "
            f"{floor_rate:,.0f} rows/s (ratio {rate / floor_rate:.2f}); all {stored:,} events "
            f"counted back in the store; load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    if args.demo:
        users, events = (int(part) for part in args.demo.split(":"))
        figures = measure_demo(users, events, args.repeat, with_funnels=not args.no_funnels)
        floor = figures["floor: count() of the events"]
        for label, ms in figures.items():
            print(f"  {label:<40} {ms:9.1f} ms  {ms / floor:8.1f}x floor")
    for size in filter(None, args.sizes.split(",")):
        events, people = (int(part) for part in size.split(":"))
        slug = f"bench-store-{events}"
        ws = kept_workspace(slug, events) if KEEP else None
        if ws is None:
            ws = workspace(slug)
            generated = time.perf_counter()
            fill_store(ws.pk, people, events)
            print(
                f"\n{events:,} events / {people:,} people generated into the store in "
                f"{time.perf_counter() - generated:.0f} s"
            )
        else:
            print(f"\n{events:,} events / {people:,} people kept in {STORE_DIR}")
        print(f"  load average: {os.getloadavg()}", flush=True)
        # One timed funnel after the warm-up at 10 M: a funnel takes seconds on this machine.
        figures = measure_reports(
            ws,
            args.repeat,
            with_funnels=not args.no_funnels,
            before=before,
            funnel_repeat=args.repeat if events < 5_000_000 else 1,
        )
        print_figures(figures)
        print(f"  load average: {os.getloadavg()}", flush=True)
        if not KEEP:
            for table in ("events", "people"):
                store.command(
                    f"DELETE FROM {table} WHERE workspace_id = {{w:UInt64}}", {"w": ws.pk}
                )
            drop(ws)


if __name__ == "__main__":
    main()
