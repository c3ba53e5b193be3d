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
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import tempfile
import time
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


def measure(workspace: Any, repeat: int) -> dict[str, tuple[float, float]]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from onboarding.models import Event

    # Not setup_test_environment(): its instrumented templates copy every context they render,
    # which tripled the pages' render time here; a browser's request has none of that.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    admin, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(admin)
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
    for page in PAGES:
        address = f"/admin/analytics/dashboard/{page}?workspace={workspace.pk}"

        def render(address: str = address) -> None:
            answer = client.get(address)
            if answer.status_code != 200:
                raise SystemExit(f"{address} answered {answer.status_code}")

        name = page.rstrip("/") or "home"
        # The warm-up render counts the primary database's queries; then the wall time and
        # what a shared machine's load does not change, this process's CPU time (chDB's threads
        # included; PostgreSQL's server is another process), from the same renders.
        with CaptureQueriesContext(connection) as queries:
            render()
        wall, cpu = [], []
        for _ in range(repeat):
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
    options = parser.parse_args()
    bench_analytics.setup()
    workspace = bench_analytics.dataset(options.users, options.events)
    from analytics import store, store_export

    started = time.perf_counter()
    if FRESH_STORE:
        store.reset()
    exported = store_export.export(settle=timedelta(0)).exported
    print(f"exported {exported} events to the store in {time.perf_counter() - started:.0f} s")
    print(f"load average before: {os.getloadavg()}")
    figures = measure(workspace, options.repeat)
    print(f"load average after: {os.getloadavg()}")
    baseline = figures["baseline: count(*) of the events"][0]
    print(f"\n{options.users} people / {options.events} events, median of {options.repeat}")
    for name, (ms, load) in figures.items():
        if name.endswith("(CPU ms, queries)"):
            print(f"  {name:36} {ms:9.1f} ms CPU  {load:4.0f} queries")
        else:
            print(f"  {name:36} {ms:9.1f} ms  {ms / baseline:7.1f}x baseline  load {load:5.1f}")


if __name__ == "__main__":
    main()
