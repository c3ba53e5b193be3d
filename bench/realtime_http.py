"""Figure 5 of bench/realtime.py alone, A/B against an older commit (a benchmark, not a test):
`python bench/realtime_http.py [--before COMMIT] [--rounds 3] [--workers 1,2] [--events 20000]`.

`POST /api/v1/events` with the secret key (batches of 500 from 4 concurrent clients, every 20th
event completing a milestone for a person whose journey started before it) against psycopg
`executemany` of the same rows into the event table itself, measured right after each POST
run on the same connection and machine. With `--before`, each round serves the events from a
fresh uvicorn of this tree and of that commit (`git archive` into the temporary directory; one
database, so the two must not differ in migrations), the order alternating from round to round,
each on a workspace of its own. Printed per measurement: events/s, the CPU the server's workers
spent per 1 000 events (on a shared machine far steadier than any rate), executemany rows/s, the
ratio, the milestone completions counted in the database, the load average; at the end the
medians.
Environment as for bench/realtime.py (DATABASE_URL, REDIS_URL, MILEPOST_BENCH_PORTS).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import realtime_servers
from ingest import ROOT, raw_executemany_rate, setup
from realtime_client import run_async
from realtime_load import http_batches, post_batches
from realtime_seed import caused_since, database_mark, seed_workspace
from realtime_servers import milepost_server

BATCH = 500
CLIENTS = 4


@dataclass
class Measurement:
    side: str
    workers: int
    events_per_second: float
    server_cpu_ms_per_1000: float  # the uvicorn workers' CPU: far less sensitive to the load
    executemany_per_second: float
    completions: int
    completing_events: int
    load: float

    @property
    def ratio(self) -> float:
        return self.events_per_second / self.executemany_per_second


def tree_of(revision: str) -> Path:
    """The files of `revision` in the temporary directory (not under var/, where mypy and
    pytest would find a second copy of every module), extracted once."""
    commit = subprocess.run(  # noqa: S603
        ["git", "rev-parse", "--short", revision],  # noqa: S607
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    tree = Path(tempfile.gettempdir()) / f"milepost-bench-before-{commit}"
    if not tree.exists():
        tree.mkdir(parents=True)
        archive = subprocess.run(  # noqa: S603
            ["git", "archive", commit],  # noqa: S607
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)  # noqa: S603, S607
    return tree


@contextlib.contextmanager
def served_from(tree: Path) -> Iterator[None]:
    """Servers started inside run `tree`'s code (realtime_servers reads ROOT at start)."""
    kept = realtime_servers.ROOT
    realtime_servers.ROOT = tree
    try:
        yield
    finally:
        realtime_servers.ROOT = kept


def measure(side: str, tree: Path, workers: int, events: int) -> Measurement:
    from onboarding import recording

    workspace, keys = seed_workspace()
    user_ids = [f"http-{i}" for i in range(max(1, events // 40))]
    for external_id in user_ids:
        recording.end_user_identify(
            workspace=workspace, external_id=external_id, traits={"plan": "trial"}
        )
    batches = http_batches(user_ids, events, BATCH)
    with served_from(tree):
        server = milepost_server(workers)
        try:
            server.start()
            mark = database_mark()
            cpu_before = server.cpu_seconds()
            elapsed, statuses, acks, _ = run_async(
                post_batches(server.port, keys["secret_key"], batches, CLIENTS)
            )
            cpu = server.cpu_seconds() - cpu_before
        finally:
            server.stop()
    _, _, completions = caused_since(workspace, mark)
    if statuses != {200: len(batches)} or acks["accepted"] != events:
        print(f"    {side}: statuses {dict(statuses)}, acks {dict(acks)}", flush=True)
    measured = Measurement(
        side=side,
        workers=workers,
        events_per_second=events / elapsed,
        server_cpu_ms_per_1000=cpu * 1000 / events * 1000,
        executemany_per_second=raw_executemany_rate(workspace, batches),
        completions=completions,
        completing_events=events // 20,
        load=os.getloadavg()[0],
    )
    print(
        f"  {workers} worker(s) {side:>8}: {measured.events_per_second:,.0f} events/s "
        f"(server CPU {measured.server_cpu_ms_per_1000:.0f} ms per 1 000), "
        f"executemany {measured.executemany_per_second:,.0f} rows/s, "
        f"ratio {measured.ratio:.1%}; {completions} completions for "
        f"{measured.completing_events} completing events; load {measured.load:.1f}",
        flush=True,
    )
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="a commit to compare with, e.g. main")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--events", type=int, default=20_000)
    arguments = parser.parse_args()
    setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    sides = {"this": ROOT}
    if arguments.before:
        sides[arguments.before] = tree_of(arguments.before)
    print(
        f"HTTP ingest A/B: {arguments.events} events, batches of {BATCH}, {CLIENTS} clients; "
        f"load {os.getloadavg()[0]:.1f} at the start",
        flush=True,
    )
    results: list[Measurement] = []
    began = time.monotonic()
    for round_number in range(arguments.rounds):
        order = list(sides.items())
        if round_number % 2:
            order.reverse()
        for workers in (int(w) for w in arguments.workers.split(",")):
            for side, tree in order:
                results.append(measure(side, tree, workers, arguments.events))
    print(f"\n{time.monotonic() - began:.0f} s; load {os.getloadavg()[0]:.1f} at the end")
    print(
        "| workers | side | events/s (median) | server CPU ms per 1 000 events | "
        "executemany rows/s | ratio (median) | loads |"
    )
    print("|---|---|---|---|---|---|---|")
    for workers in sorted({r.workers for r in results}):
        for side in sides:
            mine = [r for r in results if r.workers == workers and r.side == side]
            rate = statistics.median(r.events_per_second for r in mine)
            print(
                f"| {workers} | {side} | {rate:,.0f}"
                f" | {statistics.median(r.server_cpu_ms_per_1000 for r in mine):.0f}"
                f" | {statistics.median(r.executemany_per_second for r in mine):,.0f}"
                f" | {statistics.median(r.ratio for r in mine):.1%}"
                f" ({', '.join(f'{r.ratio:.1%}' for r in mine)})"
                f" | {', '.join(f'{r.load:.1f}' for r in mine)} |"
            )


if __name__ == "__main__":
    main()
