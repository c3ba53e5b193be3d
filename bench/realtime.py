"""Realtime benchmark (not a test): `make bench` or `python bench/realtime.py [--quick]`.

Milepost's widget socket and events API in production mode (PostgreSQL + Redis, uvicorn with
1 and 2 workers started here as subprocesses), each figure beside a baseline measured in the
same run on the same machine, with the same worker count:

1. 500 sockets in a closed loop, a 1-event `events` message → `ack`: messages/s and round
   trip. Baseline: a raw ASGI echo (realtime_baselines.echo) with the same frame.
2. 500 `hello`s sent at once on 500 open sockets → `welcome`. Baseline: the echo.
3. With those 500 sockets idle, 20 new connections + `hello` a second: hello → welcome.
   Baseline: the echo.
4. An event that completes a milestone on a person's tab A → `progress` on their tab B, paced
   at several rates; pushes not there within the grace are lost. Baseline: a plain Channels
   consumer relaying A's frame to B through a group on the same Redis channel layer
   (realtime_baselines.relay_app).
5. `POST /api/v1/events` (batches of 500, several clients, ~5 % of events complete a
   milestone) against psycopg `executemany` of the same rows into the event table itself.
6. Idle memory per socket (worker RSS after N sockets said hello, minus before, / N).
   Baseline: the echo's.

Milestone completions caused by each figure are counted in the database and printed. Needs
PostgreSQL and Redis: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/milepost_bench,
created and migrated if missing) and REDIS_URL (default redis://127.0.0.1:6379/15).

This file is the command line: options, the phases of one worker count and what they print,
and the final table. Beside it: realtime_seed.py (the workspace and the database counts),
realtime_servers.py (the uvicorn subprocesses), realtime_client.py (the socket client),
realtime_load.py (each figure's load and measurements), realtime_baselines.py (echo, relay).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# bench/ is not a package: its modules import each other from this directory, and the client
# processes of the closed loop inherit this path.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import raw_executemany_rate, setup
from realtime_client import Tally, raise_open_files_limit, run_async
from realtime_load import (
    HttpResult,
    LoopResult,
    PushResult,
    SocketFigures,
    closed_loop,
    http_batches,
    post_batches,
    pushes,
    socket_figures,
)
from realtime_seed import (
    COMPLETING,
    caused_since,
    database_mark,
    describe_completions,
    seed_workspace,
)
from realtime_servers import Server, echo_server, milepost_server, relay_server

ALL_FIGURES = (1, 2, 3, 4, 5, 6)
SOCKET_FIGURES = (2, 3, 6)  # one phase: a burst of hellos, arrivals beside them, memory

# Numbers -------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def ms(value: float) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:.0f} ms" if value >= 100 else f"{value:.1f} ms"


def ratio(ours: float, baseline: float) -> str:
    if math.isnan(ours) or math.isnan(baseline) or baseline == 0:
        return "—"
    value = ours / baseline
    if value >= 100:
        return f"{value:,.0f}x"
    return f"{value:.3g}x"


def spread(values: list[float]) -> str:
    return (
        f"p50 {ms(percentile(values, 0.5))}, p99 {ms(percentile(values, 0.99))}, "
        f"max {ms(max(values) if values else math.nan)} (n={len(values)})"
    )


# Orchestration -------------------------------------------------------------------------------


class LoadWatch:
    """The machine's 1-minute load average, sampled every few seconds during the run."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(5):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadWatch:
        self.samples.append(os.getloadavg()[0])
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> str:
        return (
            f"{min(self.samples):.1f}-{max(self.samples):.1f} "
            f"(mean {statistics.mean(self.samples):.1f})"
        )


@dataclass
class Options:
    workers: list[int]
    sockets: int
    seconds: float
    warmup: float
    drain: float
    arrival_rate: int
    arrival_seconds: float
    rates: list[tuple[int, float]]
    grace: float
    push_drain: float
    http_events: int
    http_batch: int
    http_clients: int
    http_users: int
    client_processes: int
    # Which figures to measure (1-6); 2, 3 and 6 come from one phase and run together.
    figures: set[int] = field(default_factory=lambda: set(ALL_FIGURES))

    def wants(self, *figures: int) -> bool:
        return bool(self.figures.intersection(figures))


@dataclass
class Run:
    """Every figure of one worker count, for Milepost and its baselines."""

    workers: int
    sockets: dict[str, SocketFigures] = field(default_factory=dict)
    loops: dict[str, LoopResult] = field(default_factory=dict)
    pushes: dict[str, PushResult] = field(default_factory=dict)
    http: HttpResult | None = None
    notes: list[str] = field(default_factory=list)  # milestone completions, by figure
    closes: Counter[str] = field(default_factory=Counter)  # by target, figure and close code
    servers: list[Server] = field(default_factory=list)

    def count_closes(self, target: str, figure: str, tally: Tally) -> None:
        self.closes.update({f"{target} fig {figure}: {c}": n for c, n in tally.closes.items()})


@contextlib.contextmanager
def serving(run: Run, make: Callable[[int], Server]) -> Iterator[Server]:
    """A server with the run's worker count for the figures of one block, stopped after it."""
    server = make(run.workers)
    run.servers.append(server)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def say(text: str) -> None:
    print(text, flush=True)


def measure(options: Options, workers: int) -> Run:
    run = Run(workers=workers)
    workspace, keys = seed_workspace()
    widget_path = f"/ws/widget/?key={keys['publishable_key']}"
    token = uuid.uuid4().hex[:8]
    say(f"\n== {workers} worker(s) ==  workspace {workspace.slug}")

    def socket_phase(name: str, server: Server, url: str) -> None:
        mark = database_mark()
        figures = run_async(
            socket_figures(
                name,
                url,
                server,
                sockets=options.sockets,
                arrival_rate=options.arrival_rate,
                seconds=options.arrival_seconds,
            )
        )
        run.sockets[name] = figures
        say(f"  [{name}] 2. {figures.burst_sockets} hellos at once: {spread(figures.burst)}")
        say(f"       {figures.tally_burst.summary()}")
        say(
            f"  [{name}] 3. {len(figures.arrivals)}/{figures.arrivals_tried} arrivals at "
            f"{options.arrival_rate}/s: hello {spread(figures.arrivals)}; "
            f"connect {spread(figures.arrival_connects)}"
        )
        say(f"       {figures.tally_arrivals.summary()}")
        run.count_closes(name, "2", figures.tally_burst)
        run.count_closes(name, "3", figures.tally_arrivals)
        say(
            f"  [{name}] 6. RSS {figures.rss_before_kb / 1024:.1f} → "
            f"{figures.rss_after_kb / 1024:.1f} MB: {figures.kb_per_socket:.1f} KB per socket"
        )
        if name == "milepost":
            events, _, _ = caused_since(workspace, mark)
            say(f"       warm-up events stored {events}")

    def loop_phase(name: str, server: Server, url: str) -> None:
        mark = database_mark()
        result = closed_loop(
            name,
            url,
            server,
            sockets=options.sockets,
            processes=options.client_processes,
            seconds=options.seconds,
            warmup=options.warmup,
            drain=options.drain,
            prefix=f"loop-{token}",
        )
        run.loops[name] = result
        say(
            f"  [{name}] 1. closed loop, {result.sockets} sockets from {result.processes} client "
            f"processes (set up in {result.setup_seconds:.1f} s): {result.rate:.0f} msg/s, "
            f"round trip {spread(result.latencies)}; sent {result.sent}, "
            f"unanswered after {options.drain:.0f} s drain {result.unanswered}"
        )
        say(
            f"       CPU in the window, in cores: server workers {result.server_cpu:.2f}, "
            "client processes "
            + ", ".join(f"{cpu:.2f}" for cpu in result.client_cpu)
            + f"; the whole machine {result.machine_cpu:.2f} of {os.cpu_count()}"
        )
        say(f"       {result.tally.summary()}")
        run.count_closes(name, "1", result.tally)
        if name == "milepost":
            events, completions, total = caused_since(workspace, mark)
            say(
                f"       database: {events} events stored, {total} milestone completions "
                f"({describe_completions(completions)})"
            )
            run.notes.append(f"1. closed loop {total} ({describe_completions(completions)})")

    def push_phase(name: str, server: Server, url_for: Callable[[int], str]) -> None:
        mark = database_mark()
        total = sum(int(rate * seconds) for rate, seconds in options.rates)
        pairs = math.ceil(total / len(COMPLETING) * 1.05)
        result = run_async(
            pushes(
                name,
                server,
                url_for,
                pairs=pairs,
                rates=options.rates,
                grace=options.grace,
                drain=options.push_drain,
            )
        )
        run.pushes[name] = result
        say(
            f"  [{name}] 4. {result.pairs} people with 2 tabs each "
            f"(set up in {result.setup_seconds:.1f} s)"
        )
        for rate in result.rates:
            say(
                f"       {rate.rate}/s (sent {rate.sent} at {rate.achieved:.0f}/s): "
                f"{spread(rate.latencies)}; lost {rate.lost} (not there within "
                f"{options.grace:.0f} s; {rate.late} of them came later); "
                f"seq gaps {rate.seq_gaps}; events still unanswered "
                f"{options.push_drain:.0f} s later: {rate.backlog}"
            )
            if rate.to_ack:
                say(
                    f"         of which event → ack on tab A {spread(rate.to_ack)}; "
                    f"ack → progress on tab B {spread(rate.ack_to_push)}"
                )
        if result.exhausted:
            say("       (the pool ran out of milestones to complete)")
        say(f"       {result.tally.summary()}")
        run.count_closes(name, "4", result.tally)
        if name == "milepost":
            events, completions, total_done = caused_since(workspace, mark)
            sent = sum(rate.sent for rate in result.rates)
            say(
                f"       database: {events} events stored, {total_done} milestone completions "
                f"for {sent} completing messages ({describe_completions(completions)})"
            )
            run.notes.append(f"4. pushes {total_done} for {sent} completing messages")

    # Baselines first, each on its own server with the same worker count.
    if options.wants(*SOCKET_FIGURES, 1):
        with serving(run, echo_server) as server:
            if options.wants(*SOCKET_FIGURES):
                socket_phase("echo", server, f"ws://127.0.0.1:{server.port}/ws/")
            if options.wants(1):
                loop_phase("echo", server, f"ws://127.0.0.1:{server.port}/ws/")
    if options.wants(4):
        with serving(run, relay_server) as server:
            push_phase(
                "relay",
                server,
                lambda j: f"ws://127.0.0.1:{server.port}/ws/?group=bench-relay.{token}.{j}",
            )

    # Milepost, restarted between figures so that one figure's backlog cannot slow the next.
    if options.wants(*SOCKET_FIGURES):
        with serving(run, milepost_server) as server:
            socket_phase("milepost", server, f"ws://127.0.0.1:{server.port}{widget_path}")
    if options.wants(1):
        with serving(run, milepost_server) as server:
            loop_phase("milepost", server, f"ws://127.0.0.1:{server.port}{widget_path}")
    if options.wants(4):
        with serving(run, milepost_server) as server:
            push_phase("milepost", server, lambda j: f"ws://127.0.0.1:{server.port}{widget_path}")
    if options.wants(5):
        with serving(run, milepost_server) as server:
            run.http = http_phase(options, workspace, keys, server)
            run.notes.append(
                f"5. events API {run.http.completions} for {options.http_events // 20} "
                "completing events"
            )
    return run


def http_phase(
    options: Options, workspace: Any, keys: dict[str, str], server: Server
) -> HttpResult:
    from onboarding import recording

    started = time.monotonic()
    user_ids = [f"http-{i}" for i in range(options.http_users)]
    for external_id in user_ids:
        recording.end_user_identify(
            workspace=workspace, external_id=external_id, traits={"plan": "trial"}
        )
    identified = time.monotonic() - started
    batches = http_batches(user_ids, options.http_events, options.http_batch)
    mark = database_mark()
    elapsed, statuses, acks, latencies = run_async(
        post_batches(server.port, keys["secret_key"], batches, options.http_clients)
    )
    events, completions, total = caused_since(workspace, mark)
    result = HttpResult(
        events=options.http_events,
        seconds=elapsed,
        statuses=statuses,
        acks=acks,
        latencies=latencies,
        raw_rate=raw_executemany_rate(workspace, batches),
        completions=total,
    )
    say(
        f"  [milepost] 5. POST /api/v1/events: {options.http_events} events in batches of "
        f"{options.http_batch} from {options.http_clients} clients ({len(user_ids)} people "
        f"identified first in {identified:.1f} s): {result.rate:.0f} events/s; "
        f"request {spread(result.latencies)}"
    )
    say(
        f"       statuses {dict(result.statuses)}; acks {dict(result.acks)}; "
        f"raw executemany {result.raw_rate:.0f} rows/s"
    )
    say(
        f"       database: {events} events stored, {total} milestone completions "
        f"({describe_completions(completions)}) for {options.http_events // 20} completing events"
    )
    return result


def table(runs: list[Run], options: Options) -> list[str]:
    lines = [
        "| workers | figure | Milepost | baseline | ratio (Milepost ÷ baseline) |",
        "|---|---|---|---|---|",
    ]

    def row(workers: int, figure: str, ours: float, base: float, fmt: Callable[[float], str]):
        lines.append(f"| {workers} | {figure} | {fmt(ours)} | {fmt(base)} | {ratio(ours, base)} |")

    def rate(value: float) -> str:
        return "—" if math.isnan(value) else f"{value:,.0f}/s"

    def kb(value: float) -> str:
        return "—" if math.isnan(value) else f"{value:.1f} KB"

    def latency_rows(
        w: int, title: str, ours: list[float], base: list[float], *, with_max: bool = False
    ) -> None:
        quantiles = [(0.5, "p50"), (0.99, "p99")] + ([(1.0, "max")] if with_max else [])
        for q, label in quantiles:
            row(w, f"{title} {label}", percentile(ours, q), percentile(base, q), ms)

    for run in runs:
        w = run.workers
        ours_loop, echo_loop = run.loops.get("milepost"), run.loops.get("echo")
        if ours_loop and echo_loop:
            n = options.sockets
            row(w, f"1. closed loop, {n} sockets: messages/s", ours_loop.rate, echo_loop.rate, rate)
            latency_rows(w, "1. closed loop: round trip", ours_loop.latencies, echo_loop.latencies)
        ours_s, echo_s = run.sockets.get("milepost"), run.sockets.get("echo")
        if ours_s and echo_s:
            latency_rows(
                w,
                f"2. {options.sockets} hellos at once → welcome",
                ours_s.burst,
                echo_s.burst,
                with_max=True,
            )
            latency_rows(
                w,
                f"3. {options.arrival_rate} new sockets/s beside {options.sockets} idle: "
                "hello → welcome",
                ours_s.arrivals,
                echo_s.arrivals,
            )
        ours_p, relay_p = run.pushes.get("milepost"), run.pushes.get("relay")
        if ours_p and relay_p:
            for ours_r, relay_r in zip(ours_p.rates, relay_p.rates, strict=False):
                latency_rows(
                    w,
                    f"4. push to the other tab at {ours_r.rate}/s:",
                    ours_r.latencies,
                    relay_r.latencies,
                )
                lines.append(
                    f"| {w} | 4. push at {ours_r.rate}/s: lost (not there within "
                    f"{options.grace:.0f} s) | {ours_r.lost} of {ours_r.sent} | "
                    f"{relay_r.lost} of {relay_r.sent} | — |"
                )
        if run.http:
            row(
                w,
                "5. POST /api/v1/events: events/s (baseline: raw executemany rows/s)",
                run.http.rate,
                run.http.raw_rate,
                rate,
            )
        if ours_s and echo_s:
            row(w, "6. idle memory per socket", ours_s.kb_per_socket, echo_s.kb_per_socket, kb)
    return lines


def parse_options() -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="uvicorn worker counts, e.g. 1,2")
    parser.add_argument("--quick", action="store_true", help="fewer sockets, shorter phases")
    parser.add_argument("--sockets", type=int, help="sockets of figures 1, 2, 3, 6 (500)")
    parser.add_argument("--seconds", type=float, help="closed loop window (10)")
    parser.add_argument("--rates", help="push rates/s:seconds (25:10,200:10,1000:3)")
    parser.add_argument("--grace", type=float, help="a push later than this is lost (10)")
    parser.add_argument("--http-events", type=int, help="events POSTed (20000)")
    parser.add_argument("--http-clients", type=int, default=4)
    parser.add_argument(
        "--client-processes", type=int, default=2, help="client processes of the closed loop"
    )
    parser.add_argument(
        "--figures",
        default=",".join(map(str, ALL_FIGURES)),
        help="figures to measure, e.g. 4 or 1,3 (2, 3 and 6 are one phase: any of them runs it)",
    )
    args = parser.parse_args()
    figures = {int(f) for f in args.figures.split(",") if f.strip()}
    if not figures or not figures <= set(ALL_FIGURES):
        parser.error(f"--figures takes numbers among {ALL_FIGURES}, e.g. 1,4")
    quick = args.quick
    rates = args.rates or ("25:3,200:3,1000:1" if quick else "25:10,200:10,1000:3")
    http_events = args.http_events or (5_000 if quick else 20_000)
    return Options(
        workers=[int(w) for w in args.workers.split(",")],
        sockets=args.sockets or (200 if quick else 500),
        seconds=args.seconds or (3 if quick else 10),
        warmup=1,
        drain=10 if quick else 15,
        arrival_rate=20,
        arrival_seconds=3 if quick else 10,
        rates=[(int(r), float(s)) for r, s in (part.split(":") for part in rates.split(","))],
        grace=args.grace or (5 if quick else 10),
        push_drain=10 if quick else 20,
        http_events=http_events,
        http_batch=500,
        http_clients=args.http_clients,
        http_users=max(1, http_events // 40),
        client_processes=args.client_processes,
        figures=figures,
    )


def main() -> None:
    options = parse_options()
    raise_open_files_limit()
    setup()  # the bench database, created and migrated if missing
    logging.getLogger("httpx").setLevel(logging.WARNING)
    began = time.monotonic()
    runs: list[Run] = []
    with LoadWatch() as load:
        say(
            f"realtime bench: workers {options.workers}, {os.cpu_count()} cores, load average "
            f"{os.getloadavg()[0]:.1f} at the start; DATABASE_URL "
            f"{os.environ['DATABASE_URL']}, REDIS_URL {os.environ['REDIS_URL']}"
        )
        say(
            f"closed loop driven by {options.client_processes} client processes (asyncio + "
            "websockets + uvloop); the other figures by this process; no compression"
        )
        try:
            for workers in options.workers:
                run = measure(options, workers)
                runs.append(run)
                for server in run.servers:
                    bad, first = server.log_problems()
                    if bad:
                        say(
                            f"  {server.name} server log {server.log_path}: {bad} error lines, "
                            f"e.g. {first}"
                        )
        finally:
            for server in Server.started:
                server.stop()
                if not server.log_problems()[0]:
                    server.log_path.unlink(missing_ok=True)
    say(
        f"\nTotal {time.monotonic() - began:.0f} s; load average (1 min) during the run "
        f"{load.summary()}\n"
    )
    for line in table(runs, options):
        say(line)
    for run in runs:
        say(f"\n{run.workers} worker(s): milestone completions recorded in the database: ")
        for note in run.notes:
            say(f"  {note}")
        closes = ", ".join(f"{key}: {count}" for key, count in sorted(run.closes.items()))
        say(f"  sockets closed by the server: {closes or 'none'}")


if __name__ == "__main__":
    main()
