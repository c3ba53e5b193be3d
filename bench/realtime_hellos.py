"""Hello throughput (not a test): `python bench/realtime_hellos.py [--sockets 2000] [--workers 2]`.

N sockets opened at once against a Milepost uvicorn (PostgreSQL + Redis, started here), each
saying `hello` as soon as it is open: the seconds until every one is welcomed, and the spread of
connect → welcome. Twice: new people (first hello: identified, journeys started), then the same
people again after every socket was closed (a reconnect storm: the fault suite's `reconnect`
without its proxy). Between rounds the server settles, so one round's after-commit work does not
land in the next. Same environment as bench/realtime.py (DATABASE_URL, REDIS_URL,
MILEPOST_BENCH_PORTS, MILEPOST_BENCH_PYSPY).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import setup
from realtime import percentile, say
from realtime_client import Tab, Tally, hello_text, raise_open_files_limit, run_async, ws_connect
from realtime_load import warm_up
from realtime_seed import seed_workspace
from realtime_servers import Server, milepost_server, settle


async def storm(url: str, users: list[str], concurrency: int) -> tuple[float, list[float], Tally]:
    """Every socket opened (at most `concurrency` handshakes in flight) and its hello sent as
    soon as it is open: (seconds until the last welcome, connect → welcome in ms, tally)."""
    tally = Tally()
    gate = asyncio.Semaphore(concurrency)
    tabs: list[Tab] = []
    began = time.monotonic()

    async def one(user: str) -> float | None:
        started = time.monotonic()
        async with gate:
            try:
                tab = Tab(await ws_connect(url, 120), tally)
            except Exception as error:
                tally.failures[f"connect: {type(error).__name__}"[:60]] += 1
                return None
        tabs.append(tab)
        if not await tab.send(hello_text(user)):
            return None
        got = await tab.answer("welcome", 120)
        return None if got is None else (got[0] - started) * 1000

    answers = await asyncio.gather(*(one(user) for user in users))
    elapsed = time.monotonic() - began
    await asyncio.gather(*(tab.close() for tab in tabs))
    return elapsed, [a for a in answers if a is not None], tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=500, help="handshakes in flight")
    parser.add_argument("--rounds", type=int, default=1, help="returning-people rounds")
    options = parser.parse_args()
    raise_open_files_limit()
    setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    workspace, keys = seed_workspace()
    server = milepost_server(options.workers)
    say(
        f"hello throughput: {options.sockets} sockets, {options.workers} worker(s), load "
        f"average {os.getloadavg()[0]:.1f} at the start; workspace {workspace.slug}"
    )
    try:
        server.start()
        url = f"ws://127.0.0.1:{server.port}/ws/widget/?key={keys['publishable_key']}"
        run_async(warm_up("milepost", url, server.workers, "warm"))
        users = [f"storm-{uuid.uuid4().hex[:6]}-{n}" for n in range(options.sockets)]
        for label in ["new people", *["returning people"] * options.rounds]:
            run_async(settle(server))
            load = os.getloadavg()[0]
            elapsed, welcomes, tally = run_async(storm(url, users, options.concurrency))
            say(
                f"  {label}: {len(welcomes)}/{len(users)} welcomed in {elapsed:.1f} s "
                f"({len(welcomes) / elapsed:.0f} hellos/s); connect → welcome p50 "
                f"{percentile(welcomes, 0.5):.0f} ms, p99 {percentile(welcomes, 0.99):.0f} ms; "
                f"load {load:.1f}; {tally.summary()}"
            )
    finally:
        server.stop()
        bad, first = server.log_problems()
        if bad:
            say(f"  server log {server.log_path}: {bad} error lines, e.g. {first}")
        else:
            server.log_path.unlink(missing_ok=True)
    del Server.started[:]


if __name__ == "__main__":
    main()
