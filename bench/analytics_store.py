"""Event funnel in the analytics store (not a test): `python bench/analytics_store.py`.

Generates an empty workspace (what planning each query costs), 60 k events / 3 k people (the
size of the demo data), 1 M events / 100 k people and 10 M events / 1 M people straight into a
chDB store in a temporary directory (one INSERT ... SELECT FROM numbers(): columnar, a few
seconds), each size in its own workspace, over 60 days: five funnel events in decreasing
frequency and three others, a `source` property that changes from event to event. Then measures,
warm (median of `--repeat` runs after one warm-up), analytics/store_funnel.py's `event_funnel`
end to end: ordered 5-step with a 14-day window, the same with a first-touch breakdown by
`source`, with an "all steps" breakdown, with an exclusion, strict and any order (each also
with the exclusion); and the floor: a plain `count()` of the same
events in the same store. The primary database (for the known-event probe and the people lists)
is a throw-away SQLite file that holds no events: the people lists stay empty, so the figures
are the store's work. Goals (issue 12): 5-step funnel at 10 M events / 1 M people 1 s or less,
with a breakdown 1.5 s or less; every funnel on the demo data 200 ms or less. The load average
is printed at the start and the end: the machine is shared. Each funnel's wall minimum and the
CPU the process spent on it (chDB's threads included) are printed as it is measured.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from timing import median_ms

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# MILEPOST_BENCH_DIR keeps the store and its workspaces between runs (10 M events take minutes to
# generate): a size already generated there is reused.
SCRATCH = Path(
    os.environ.get("MILEPOST_BENCH_DIR") or tempfile.mkdtemp(prefix="milepost-bench-store-")
)
SCRATCH.mkdir(parents=True, exist_ok=True)
os.environ["MILEPOST_VAR_DIR"] = str(SCRATCH)
os.environ["ANALYTICS_URL"] = f"chdb://{SCRATCH / 'store'}"
os.environ.pop("DATABASE_URL", None)
os.environ.setdefault("SECRET_KEY", "milepost-bench-only")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "milepost.settings")

STEPS = ("$pageview", "login", "campaign_created", "contacts_imported", "report_viewed")
OTHERS = ("$step_viewed", "settings_opened", "error_shown")
DAYS = 60
FIRST_DAY = date(2026, 1, 1)


def generate(workspace_id: int, people: int, events: int) -> None:
    """Events of `people` people, ~events / people each, spread over DAYS days; names weighted
    so that each funnel step is rarer than the one before."""
    from analytics import store

    start = int(datetime.combine(FIRST_DAY, datetime.min.time(), tzinfo=UTC).timestamp())
    # 16 weighted slots: 5 pageviews, 3 logins, 2 campaigns, 1 import, 1 report, 4 others.
    names = [*[STEPS[0]] * 5, *[STEPS[1]] * 3, *[STEPS[2]] * 2, STEPS[3], STEPS[4], *OTHERS]
    names.append(OTHERS[0])
    store.command(
        f"""INSERT INTO events (workspace_id, person_id, timestamp, id, name, properties)
        SELECT {workspace_id}, 1 + cityHash64(number, 1) % {people},
               fromUnixTimestamp64Milli(toInt64(
                   {start} * 1000 + cityHash64(number, 2) % ({DAYS} * 86400000))),
               {workspace_id} * 100000000 + number,
               {names}[1 + cityHash64(number, 3) % {len(names)}],
               concat('{{"source": "', ['ads', 'email', 'direct', 'partner'][
                   1 + cityHash64(number, 4) % 4], '", "plan": "',
                   ['free', 'pro'][1 + cityHash64(number, 5) % 2], '"}}')
        FROM numbers({events})"""
    )


def load_before(revision: str) -> Any:
    """analytics/store_funnel.py (and the store_funnel_*.py modules beside it, when it had them)
    as it was at `revision`, as modules of their own, to time it interleaved with today's in the
    same process."""
    import importlib
    import re
    import subprocess

    def git(*arguments: str) -> str:
        return subprocess.run(  # noqa: S603
            ["git", *arguments],  # noqa: S607
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    tag = re.sub(r"\W", "_", revision)
    prefix = f"before_{tag}_"
    for path in git("ls-tree", "--name-only", revision, "analytics/").split():
        if re.fullmatch(r"analytics/store_funnel\w*\.py", path):
            # Its imports of its siblings point at the siblings of that revision.
            source = git("show", f"{revision}:{path}")
            source = re.sub(r"\banalytics\.(store_funnel\w*)", rf"{prefix}\1", source)
            (SCRATCH / f"{prefix}{Path(path).name}").write_text(source)
    sys.path.insert(0, str(SCRATCH))
    return importlib.import_module(f"{prefix}store_funnel")


def interleaved_ms(runs: dict[str, Any], repeat: int) -> dict[str, float]:
    """Median ms of each of `runs`, timed in turn (A, B, A, B, ...) after one warm-up each: the
    machine is shared, so a comparison is only fair within one such run."""
    times: dict[str, list[float]] = {label: [] for label in runs}
    cpu: dict[str, list[float]] = {label: [] for label in runs}
    for run in runs.values():
        run()
    for _ in range(repeat):
        for label, run in runs.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            run()
            times[label].append((time.perf_counter() - started) * 1000)
            cpu[label].append((time.process_time() - cpu_started) * 1000)
    for label, values in cpu.items():
        # chDB runs in this process: its CPU (all threads) is less sensitive to the load.
        print(
            f"    {label}: wall min {min(times[label]):.0f} ms, CPU median"
            f" {statistics.median(values):.0f} ms, min {min(values):.0f} ms",
            flush=True,
        )
    return {label: statistics.median(values) for label, values in times.items()}


def measure(workspace: Any, repeat: int, before: Any = None) -> dict[str, float]:
    from analytics import store, store_funnel
    from analytics.inputs import (
        DateRange,
        EventFunnelSpec,
        FunnelBreakdown,
        FunnelExclusion,
        FunnelStep,
    )

    date_range = DateRange(FIRST_DAY, FIRST_DAY + timedelta(days=DAYS - 1))
    steps = tuple(FunnelStep(name) for name in STEPS)
    exclusion = (FunnelExclusion("error_shown", 1, 3),)
    specs = {
        "ordered 5 steps": EventFunnelSpec(steps=steps),
        "  + breakdown (source, first touch)": EventFunnelSpec(
            steps=steps, breakdown=FunnelBreakdown("event", "source")
        ),
        "  + breakdown (source, all steps)": EventFunnelSpec(
            steps=steps, breakdown=FunnelBreakdown("event", "source", "all_steps")
        ),
        "  + exclusion (error_shown 1-3)": EventFunnelSpec(steps=steps, exclusions=exclusion),
        "strict 5 steps": EventFunnelSpec(steps=steps, order="strict"),
        "strict + exclusion": EventFunnelSpec(steps=steps, order="strict", exclusions=exclusion),
        "any order 5 steps": EventFunnelSpec(steps=steps, order="unordered"),
        "any order + exclusion": EventFunnelSpec(
            steps=steps, order="unordered", exclusions=exclusion
        ),
    }
    figures = {
        "count() of the same events (floor)": median_ms(
            lambda: store.rows(
                "SELECT count() FROM events WHERE workspace_id = {w:UInt64}"
                " AND timestamp >= {a:DateTime64(3, 'UTC')}"
                " AND timestamp <= {b:DateTime64(3, 'UTC')}",
                {"w": workspace.id, "a": date_range.start, "b": date_range.end + timedelta(14)},
            ),
            repeat,
        )
    }
    for label, spec in specs.items():
        runs = {
            label: lambda spec=spec: store_funnel.event_funnel(
                workspace=workspace, spec=spec, date_range=date_range
            )
        }
        if before is not None:
            runs[f"{label} (before)"] = lambda spec=spec: before.event_funnel(
                workspace=workspace, spec=spec, date_range=date_range
            )
        figures |= interleaved_ms(runs, repeat)
    result = store_funnel.event_funnel(
        workspace=workspace, spec=specs["ordered 5 steps"], date_range=date_range
    )
    print("  counts:", [step.count for step in result.steps], flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--before",
        metavar="REVISION",
        help="also time analytics/store_funnel.py as it was at REVISION, interleaved",
    )
    parser.add_argument(
        "--sizes",
        default="0:0,3000:60000,100000:1000000,1000000:10000000",
        help="people:events,… (0:0 is an empty workspace: what planning the query costs;"
        " 3000:60000 is the size of the demo data; 1:8000 is one person holding 8 000 events)",
    )
    arguments = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command

    from analytics import store
    from onboarding.models import Workspace

    call_command("migrate", verbosity=0)
    store.migrate()
    print(f"ClickHouse {store.ping()} (chDB) in {SCRATCH}", flush=True)
    print(f"load average at the start: {os.getloadavg()}", flush=True)
    before = load_before(arguments.before) if arguments.before else None
    rows: dict[str, list[float]] = {}
    sizes = [tuple(int(x) for x in size.split(":")) for size in arguments.sizes.split(",")]
    for people, events in sizes:
        workspace = Workspace.objects.filter(slug=f"bench-{people}-{events}").first()
        fresh = workspace is None
        if workspace is None:
            workspace = Workspace(name=f"bench {events}", slug=f"bench-{people}-{events}")
            workspace.issue_keys()
            workspace.save()
        started = time.perf_counter()
        if events and fresh:
            generate(workspace.id, people, events)
        print(
            f"{people} people / {events} events generated in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        for label, ms in measure(workspace, arguments.repeat, before).items():
            rows.setdefault(label, []).append(ms)
            print(f"  {label:40}{ms:9.0f} ms", flush=True)
    print(f"load average at the end: {os.getloadavg()}", flush=True)
    header = "".join(f"{f'{e:,} events':>17}" for _, e in sizes)
    print(f"\n{'warm, median ms (x floor)':40}{header}")
    floors = rows["count() of the same events (floor)"]
    for label, values in rows.items():
        cells = "".join(
            f"{value:9.0f} ({value / max(floor, 0.1):4.0f}x)"
            for value, floor in zip(values, floors, strict=True)
        )
        print(f"{label:40}{cells}")


if __name__ == "__main__":
    main()
