"""Socket CPU benchmark (not a test): `python bench/socket_cpu.py [--before REV]`.

The CPU a uvicorn worker spends per acknowledged socket message at a fixed rate, below what it
can take: 500 sockets say hello, then one-event `events` messages go out at `--rate` a second,
round robin over the sockets (at 3 000/s each socket sends every 167 ms, long after its last
ack). The worker's CPU (user + system, all its threads, from /proc) over the window, divided by
the acks in the window. Baseline: the raw echo (realtime_baselines.echo) at the same rate with
the same frames, in the same run.

Beside bench/realtime.py's closed loop, whose rate swings by a third from run to run on a
shared machine: a fixed rate leaves the machine's speed as the only noise, and it is the load a
server mostly sees, where group commits are small and what each commit costs is shared by few
messages. The events walk bench/realtime_seed.py's LOOP_NAMES, so milestones complete; the
completions are counted in the database and printed. PostgreSQL and Redis as bench/realtime.py
sets them up (DATABASE_URL, REDIS_URL).

`--before REV` measures REV's server too, from a temporary git worktree, run after run with
this checkout's (A, B, A, B…).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from revisions import checkouts

SOCKETS = 500
WARMUP_SECONDS = 2.0


async def paced(url: str, target: str, server: Any, rate: int, seconds: float) -> dict[str, float]:
    """Open the sockets (hello on Milepost), send at `rate` for the warm-up and the window;
    the server's CPU and the answers in the window."""
    from realtime_client import Tally, answer_type, close_tabs, events_text, open_tabs, say_hello
    from realtime_seed import LOOP_NAMES

    tally = Tally()
    tabs = [tab for tab in await open_tabs([url] * SOCKETS, tally, timeout=30) if tab]
    if target == "milepost":
        users = [f"cpu-{uuid.uuid4().hex[:8]}-{n}" for n in range(len(tabs))]
        await say_hello(target, tabs, users, timeout=30)  # type: ignore[arg-type]
    kind = answer_type(target, "events")
    answers = 0

    def listen(_: float, text: str) -> None:
        nonlocal answers
        if f'"type":"{kind}"' in text.replace(" ", "")[:40]:
            answers += 1

    for tab in tabs:
        tab.listener = listen
    await asyncio.sleep(1)
    start = time.monotonic()
    sent = 0
    window: dict[str, float] = {}
    while (now := time.monotonic()) < start + WARMUP_SECONDS + seconds:
        if not window and now >= start + WARMUP_SECONDS:
            window = {"cpu": server.cpu_seconds(), "answers": answers, "at": now}
        while sent < int((now - start) * rate):
            tab = tabs[sent % len(tabs)]
            await tab.ws.send(events_text([LOOP_NAMES[(sent // len(tabs)) % len(LOOP_NAMES)]]))
            sent += 1
        await asyncio.sleep(0.002)
    elapsed = time.monotonic() - window["at"]
    cpu = server.cpu_seconds() - window["cpu"]
    in_window = answers - window["answers"]
    await asyncio.sleep(2)  # the last answers
    await close_tabs(tabs)
    return {
        "us_per_answer": cpu / in_window * 1e6,
        "rate": in_window / elapsed,
        "answered": answers,
        "sent": sent,
        "closes": sum(tally.closes.values()),
    }


def child(rate: int, seconds: float) -> None:
    """One run in this process of the checkout on sys.path: prints the figures."""
    from ingest import setup

    setup()
    from realtime_client import raise_open_files_limit, run_async
    from realtime_seed import caused_since, database_mark, describe_completions, seed_workspace
    from realtime_servers import echo_server, milepost_server

    raise_open_files_limit()
    workspace, keys = seed_workspace()
    figures = {}
    mark = database_mark()
    for target, make in (("echo", echo_server), ("milepost", milepost_server)):
        server = make(1)
        server.start()
        try:
            path = f"/ws/widget/?key={keys['publishable_key']}" if target == "milepost" else "/"
            url = f"ws://127.0.0.1:{server.port}{path}"
            figures[target] = run_async(paced(url, target, server, rate, seconds))
        finally:
            server.stop()
    events, completions, total = caused_since(workspace, mark)
    ours, echo = figures["milepost"], figures["echo"]
    print(
        f"  echo {echo['us_per_answer']:.1f} µs per answer at {echo['rate']:.0f}/s; milepost "
        f"{ours['us_per_answer']:.1f} µs per ack at {ours['rate']:.0f}/s, "
        f"{ours['answered']:.0f} acks of {ours['sent']:.0f} sent, {events} events stored, "
        f"milestone completions {describe_completions(completions)}, "
        f"closes by the server {ours['closes'] + echo['closes']:.0f}",
        file=sys.stderr,
    )
    print(ours["us_per_answer"], echo["us_per_answer"], total)


def run(checkout: Path, rate: int, seconds: float) -> tuple[float, float, int]:
    """One run in a fresh process with `checkout`'s server: (Milepost µs, echo µs, completions)."""
    script = checkout / "bench" / "socket_cpu.py"
    if not script.exists():  # a revision before this file: this file, that code
        script = Path(__file__).resolve()
    process = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, str(script), "--child", "--rate", str(rate), "--seconds", str(seconds)],
        cwd=checkout,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(checkout / "bench"), str(checkout)])},
        capture_output=True,
        text=True,
        check=True,
    )
    print(f"{checkout.name}:{process.stderr.strip().splitlines()[-1]}", flush=True)
    ours, echo, completions = process.stdout.split()[-3:]
    return float(ours), float(echo), int(completions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=3000, help="messages a second (3000)")
    parser.add_argument("--seconds", type=float, default=8.0, help="the measured window (8)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each revision (3)")
    parser.add_argument("--before", help="a git revision to measure beside this checkout")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        sys.path.insert(0, str(Path.cwd() / "bench"))
        child(options.rate, options.seconds)
        return
    with checkouts(options.before) as measured:
        results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in measured}
        for _ in range(options.runs):
            for name, checkout in measured.items():
                results[name].append(run(checkout, options.rate, options.seconds))
        for name, runs in results.items():
            ours = statistics.median(r[0] for r in runs)
            ratio = statistics.median(r[0] / r[1] for r in runs)
            print(
                f"{name:>14}: {ours:.1f} µs of server CPU per ack at {options.rate}/s, "
                f"{ratio:.2f}x the echo's per answer (medians of {len(runs)} runs; "
                f"{runs[0][2]} milestone completions in the first)"
            )


if __name__ == "__main__":
    main()
