"""The load of bench/realtime.py's figures and what each one measures, against any of the
servers (Milepost, the echo, the relay): the socket figures 2, 3 and 6, the closed loop of
figure 1 in client processes, the pushes to the other tab of figure 4, and the batches POSTed to
the events API in figure 5. The command line, seeding and printing are in bench/realtime.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from realtime_client import (
    Tab,
    Tally,
    answer_type,
    close_label,
    close_tabs,
    events_text,
    hello_text,
    open_tabs,
    raise_open_files_limit,
    run_async,
    say_hello,
)
from realtime_seed import COMPLETING, FILLER_NAMES, LOOP_NAMES
from realtime_servers import Server, cpu_ticks, machine_busy_ticks, settle

# Figures 2, 3 and 6: a burst of hellos, then arrivals beside the idle sockets -----------------


@dataclass
class SocketFigures:
    burst: list[float]
    burst_sockets: int
    arrivals: list[float]
    arrival_connects: list[float]
    arrivals_tried: int
    rss_before_kb: int
    rss_after_kb: int
    tally_burst: Tally
    tally_arrivals: Tally

    @property
    def kb_per_socket(self) -> float:
        if not self.burst_sockets:
            return math.nan
        return (self.rss_after_kb - self.rss_before_kb) / self.burst_sockets


async def warm_up(target: str, url: str, workers: int, prefix: str) -> None:
    """Touch every lazily imported path in each worker before anything is measured."""
    tally = Tally()
    tabs = await open_tabs([url] * 8 * workers, tally, timeout=60)
    await say_hello(target, tabs, [f"{prefix}-{i}" for i in range(len(tabs))], 60)
    for tab in tabs:
        if tab is not None:
            await tab.send(events_text(["page_viewed"]))
            await tab.answer(answer_type(target, "events"), 60)
    await close_tabs(tabs)


async def socket_figures(
    target: str, url: str, server: Server, *, sockets: int, arrival_rate: int, seconds: float
) -> SocketFigures:
    await warm_up(target, url, server.workers, "warm")
    await settle(server)
    rss_before = server.rss_kb()
    burst_tally = Tally()
    tabs = await open_tabs([url] * sockets, burst_tally, timeout=120)
    burst = await say_hello(target, tabs, [f"burst-{i}" for i in range(sockets)], timeout=120)
    await settle(server)  # the work a hello leaves behind (signals after commit)
    rss_after = server.rss_kb()

    arrival_tally = Tally()
    hellos: list[float] = []
    connects: list[float] = []
    new_tabs: list[Tab] = []
    count = int(arrival_rate * seconds)

    async def arrive(index: int) -> None:
        started = time.monotonic()
        opened = await open_tabs([url], arrival_tally, timeout=30)
        tab = opened[0]
        if tab is None:
            return
        new_tabs.append(tab)
        connects.append((time.monotonic() - started) * 1000)
        hellos.extend(await say_hello(target, [tab], [f"arrival-{index}"], timeout=30))

    began = time.monotonic()
    arrivals = []
    for index in range(count):
        await asyncio.sleep(max(0.0, began + index / arrival_rate - time.monotonic()))
        arrivals.append(asyncio.create_task(arrive(index)))
    await asyncio.gather(*arrivals)
    await close_tabs([*tabs, *new_tabs])
    return SocketFigures(
        burst=burst,
        burst_sockets=sum(tab is not None for tab in tabs),
        arrivals=hellos,
        arrival_connects=connects,
        arrivals_tried=count,
        rss_before_kb=rss_before,
        rss_after_kb=rss_after,
        tally_burst=burst_tally,
        tally_arrivals=arrival_tally,
    )


# Figure 1: the closed loop, in client processes --------------------------------------------


@dataclass
class LoopResult:
    sockets: int
    seconds: float
    answered_in_window: int
    latencies: list[float]
    unanswered: int
    sent: int
    tally: Tally
    processes: int
    server_cpu: float  # cores busy in the server's workers during the window
    client_cpu: list[float]  # the same for each client process
    machine_cpu: float  # every process of the machine, the bench's or not
    setup_seconds: float

    @property
    def rate(self) -> float:
        return self.answered_in_window / self.seconds


async def _loop_client(spec: dict[str, Any], ready: Any, go: Any, start_at: Any) -> dict[str, Any]:
    from websockets.exceptions import ConnectionClosed

    target = spec["target"]
    tally = Tally()
    setup_started = time.monotonic()
    tabs = await open_tabs([spec["url"]] * spec["sockets"], tally, timeout=spec["setup_timeout"])
    if target == "milepost":
        await say_hello(target, tabs, spec["users"], timeout=spec["setup_timeout"])
    sockets = [tab for tab in tabs if tab is not None]
    # The loop reads its own answers; the readers only served the hellos.
    for tab in sockets:
        tab.closing = True
        tab.reader.cancel()
        with contextlib.suppress(BaseException):
            await tab.reader
    setup_seconds = time.monotonic() - setup_started
    try:
        await asyncio.to_thread(ready.wait, spec["barrier_timeout"])
        await asyncio.to_thread(go.wait, 30)
    except threading.BrokenBarrierError:
        await close_tabs(sockets)
        return {"error": "the processes did not all get ready in time", **tally.as_dict()}
    start = start_at.value
    window_start = start + spec["warmup"]
    window_end = window_start + spec["seconds"]
    drain_end = window_end + spec["drain"]
    kind = answer_type(target, "events")
    latencies: list[float] = []
    counts = Counter[str]()
    loop = asyncio.get_running_loop()

    cpu: dict[str, float] = {}

    async def cpu_in_window() -> None:
        await asyncio.sleep(max(0.0, window_start - time.monotonic()))
        cpu["start"] = time.process_time()
        await asyncio.sleep(max(0.0, window_end - time.monotonic()))
        cpu["end"] = time.process_time()

    async def run(index: int, tab: Tab) -> None:
        names = LOOP_NAMES[index % len(LOOP_NAMES) :] + LOOP_NAMES[: index % len(LOOP_NAMES)]
        waiting = False
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        try:
            async with asyncio.timeout_at(loop.time() + (drain_end - time.monotonic())):
                for lap in range(10**9):
                    sent_at = time.monotonic()
                    if sent_at >= window_end:
                        return
                    await tab.ws.send(events_text([names[lap % len(names)]]))
                    counts["sent"] += 1
                    waiting = True
                    while True:
                        message = json.loads(await tab.ws.recv())
                        if message.get("type") in (kind, "error"):
                            break
                        tally.other[str(message.get("type"))] += 1
                    done_at = time.monotonic()
                    waiting = False
                    if message["type"] == "error":
                        tally.errors[str(message.get("code"))] += 1
                        continue
                    if target == "milepost":
                        tally.count_ack(message)
                    if window_start <= done_at < window_end:
                        counts["answered_in_window"] += 1
                    # Every round trip answered from the window's start on, those still in
                    # flight at its end included: against a slow server (a round of 500
                    # taking seconds) a rule on the send time would leave no samples.
                    if done_at >= window_start:
                        latencies.append((done_at - sent_at) * 1000)
        except TimeoutError:
            pass
        except ConnectionClosed:
            tally.closes[close_label(tab.ws)] += 1
        if waiting:
            counts["unanswered"] += 1

    await asyncio.gather(cpu_in_window(), *(run(index, tab) for index, tab in enumerate(sockets)))
    await close_tabs(sockets)
    return {
        "cpu": (cpu["end"] - cpu["start"]) / spec["seconds"],
        "latencies": latencies,
        "sockets": len(sockets),
        "setup_seconds": setup_seconds,
        **counts,
        **tally.as_dict(),
    }


def _loop_process(spec: dict[str, Any], ready: Any, go: Any, start_at: Any, out: Any) -> None:
    raise_open_files_limit()
    try:
        result = run_async(_loop_client(spec, ready, go, start_at))
    except Exception as error:
        result = {"error": f"{type(error).__name__}: {error}"}
    out.put(result)


def closed_loop(
    target: str,
    url: str,
    server: Server,
    *,
    sockets: int,
    processes: int,
    seconds: float,
    warmup: float,
    drain: float,
    prefix: str,
) -> LoopResult:
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(processes + 1)
    go = context.Barrier(processes + 1)
    start_at = context.Value("d", 0.0)
    out = context.Queue()
    setup_timeout = 180.0
    shares = [sockets // processes + (i < sockets % processes) for i in range(processes)]
    workers = []
    for number, share in enumerate(shares):
        spec = {
            "target": target,
            "url": url,
            "sockets": share,
            "users": [f"{prefix}-{number}-{i}" for i in range(share)],
            "setup_timeout": setup_timeout,
            "barrier_timeout": setup_timeout + 60,
            "seconds": seconds,
            "warmup": warmup,
            "drain": drain,
        }
        process = context.Process(target=_loop_process, args=(spec, ready, go, start_at, out))
        process.start()
        workers.append(process)
    results: list[dict[str, Any]] = []
    try:
        server_cpu = machine_cpu = math.nan
        with contextlib.suppress(threading.BrokenBarrierError):
            ready.wait(setup_timeout + 30)
            run_async(settle(server))
            start_at.value = time.monotonic() + 0.5
            go.wait(30)
            # The workers' CPU over the measured window, in cores (1.0 = one core busy).
            pids = server.worker_pids()
            time.sleep(max(0.0, start_at.value + warmup - time.monotonic()))
            before = sum(cpu_ticks(pid) for pid in pids)
            machine_before = machine_busy_ticks()
            time.sleep(max(0.0, start_at.value + warmup + seconds - time.monotonic()))
            ticks = os.sysconf("SC_CLK_TCK")
            server_cpu = (sum(cpu_ticks(pid) for pid in pids) - before) / ticks / seconds
            machine_cpu = (machine_busy_ticks() - machine_before) / ticks / seconds
        for _ in workers:
            results.append(out.get(timeout=setup_timeout + warmup + seconds + drain + 60))
    finally:
        for process in workers:
            process.join(10)
            if process.is_alive():
                process.terminate()
                process.join(5)
    tally = Tally()
    latencies: list[float] = []
    for result in results:
        tally.add({name: result.get(name, {}) for name in tally.as_dict()})
        latencies.extend(result.get("latencies", []))
        if "error" in result:
            tally.failures[f"client process: {result['error']}"] += 1
    return LoopResult(
        sockets=sum(r.get("sockets", 0) for r in results),
        seconds=seconds,
        answered_in_window=sum(r.get("answered_in_window", 0) for r in results),
        latencies=latencies,
        unanswered=sum(r.get("unanswered", 0) for r in results),
        sent=sum(r.get("sent", 0) for r in results),
        tally=tally,
        processes=processes,
        server_cpu=server_cpu,
        machine_cpu=machine_cpu,
        client_cpu=[r["cpu"] for r in results if "cpu" in r],
        setup_seconds=max((r.get("setup_seconds", 0.0) for r in results), default=math.nan),
    )


# Figure 4: a push to the person's other tab -------------------------------------------------


@dataclass
class RateResult:
    rate: int
    sent: int = 0
    send_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    lost: int = 0
    late: int = 0  # of the lost, arrived after the grace but before the tabs closed
    backlog: int = 0  # events of this rate still not acknowledged when the next one started
    seq_gaps: int = 0
    # Milepost: where a push's time goes, event sent → its ack on tab A (the commit), and that
    # ack → the progress on tab B (numbering, the channel layer, the fan-out).
    to_ack: list[float] = field(default_factory=list)
    ack_to_push: list[float] = field(default_factory=list)

    @property
    def achieved(self) -> float:
        return self.sent / self.send_seconds if self.send_seconds else math.nan


@dataclass
class PushResult:
    pairs: int
    setup_seconds: float
    rates: list[RateResult]
    tally: Tally
    exhausted: bool = False


async def pushes(
    target: str,
    server: Server,
    url_for: Callable[[int], str],
    *,
    pairs: int,
    rates: list[tuple[int, float]],
    grace: float,
    drain: float,
) -> PushResult:
    """Tab A of person j sends; tab B of the same person times the push. Milepost: A's event
    completes a milestone j has not reached, B waits for its `progress`. Relay: A's frame is
    group_sent to the pair's group, B waits for it."""
    tally = Tally()
    setup_started = time.monotonic()
    urls = [url_for(j) for j in range(pairs) for _ in "AB"]
    tabs = await open_tabs(urls, tally, timeout=120)
    if target == "milepost":
        users = [f"pair-{j}" for j in range(pairs) for _ in "AB"]
        kind = answer_type(target, "hello")
        started = time.monotonic()
        for tab, user in zip(tabs, users, strict=True):
            if tab is not None:
                await tab.send(hello_text(user))
        seq: dict[int, int] = {}
        for index, tab in enumerate(tabs):
            if tab is not None:
                got = await tab.answer(kind, max(5.0, 180 - (time.monotonic() - started)))
                if got is not None and index % 2:
                    seq[index // 2] = int(got[1].get("seq") or 0)
    setup_seconds = time.monotonic() - setup_started

    pending: dict[tuple[int, str], float] = {}
    last_key: dict[int, str] = {}  # what tab A of person j sent last (one at a time per person)
    acked: dict[tuple[int, str], float] = {}
    expired: dict[tuple[int, str], RateResult] = {}
    outstanding = Counter[str]()  # acks (Milepost) or A's own copies (relay) still to come
    current: list[RateResult] = []

    def on_b(j: int) -> Callable[[float, str], None]:
        def listen(at: float, text: str) -> None:
            message = json.loads(text)
            if target == "milepost":
                if message.get("type") != "progress":
                    tally.other[f"tab B: {message.get('type')}"] += 1
                    return
                number = int(message.get("seq") or 0)
                if j in seq and number > seq[j] + 1:
                    current[-1].seq_gaps += number - seq[j] - 1
                seq[j] = max(seq.get(j, 0), number)
                key = (j, str(message.get("completed")))
            else:
                key = (j, str(message.get("k")))
            sent_at = pending.pop(key, None)
            if sent_at is not None and at - sent_at <= grace:
                current[-1].latencies.append((at - sent_at) * 1000)
                ack_at = acked.pop(key, None)
                if ack_at is not None:
                    current[-1].ack_to_push.append((at - ack_at) * 1000)
            elif sent_at is not None:  # later than the grace: lost, though it came
                current[-1].lost += 1
                current[-1].late += 1
            elif key in expired:
                expired.pop(key).late += 1
            else:
                tally.other["tab B: push for nothing sent"] += 1

        return listen

    def on_a(j: int) -> Callable[[float, str], None]:
        return lambda at, text: a_heard(j, at, text)

    def a_heard(j: int, at: float, text: str) -> None:
        message = json.loads(text)
        kind = message.get("type")
        if kind in ("ack", "events"):
            outstanding["answers"] -= 1
            if kind == "ack":
                tally.count_ack(message)
                key = (j, last_key.get(j, ""))
                if key in pending:
                    acked[key] = at
                    current[-1].to_ack.append((at - pending[key]) * 1000)
        elif kind == "error":
            outstanding["answers"] -= 1
            tally.errors[str(message.get("code"))] += 1
        elif kind != "progress":  # A is a tab of the same person: it gets the push too
            tally.other[f"tab A: {kind}"] += 1

    live = [j for j in range(pairs) if tabs[2 * j] is not None and tabs[2 * j + 1] is not None]
    for j in live:
        a, b = tabs[2 * j], tabs[2 * j + 1]
        assert a is not None
        assert b is not None
        # Whatever arrived before (welcome, hello's pushes) is not part of the figure.
        a.listener, b.listener = on_a(j), on_b(j)
    next_slot = dict.fromkeys(live, 0)
    result = PushResult(pairs=len(live), setup_seconds=setup_seconds, rates=[], tally=tally)
    cursor = 0
    for rate, seconds in rates:
        await settle(server)
        planned = int(rate * seconds)
        current.append(RateResult(rate=rate))
        began = time.monotonic()
        for n in range(planned):
            await asyncio.sleep(max(0.0, began + n / rate - time.monotonic()))
            for _ in range(len(live)):
                j = live[cursor % len(live)]
                cursor += 1
                if target != "milepost" or next_slot[j] < len(COMPLETING):
                    break
            else:
                result.exhausted = True
                break
            a = tabs[2 * j]
            assert a is not None
            if target == "milepost":
                key, names = COMPLETING[next_slot[j]]
                next_slot[j] += 1
                text = events_text(names)
            else:
                key = f"{rate}-{n}"
                text = json.dumps({"type": "events", "k": key, "pad": "x" * 120})
            pending[(j, key)] = time.monotonic()
            last_key[j] = key
            if not await a.send(text):
                pending.pop((j, key))
                continue
            outstanding["answers"] += 1
            current[-1].sent += 1
        current[-1].send_seconds = time.monotonic() - began
        last_sent = time.monotonic()
        while pending and time.monotonic() < last_sent + grace:
            await asyncio.sleep(0.05)
        current[-1].lost += len(pending)
        expired.update(dict.fromkeys(pending, current[-1]))
        pending.clear()
        while outstanding["answers"] > 0 and time.monotonic() < last_sent + grace + drain:
            await asyncio.sleep(0.05)
        current[-1].backlog = max(0, outstanding["answers"])
        result.rates.append(current[-1])
        if result.exhausted:
            break
    await close_tabs(tabs)
    return result


# Figure 5: the server API's events endpoint ------------------------------------------------


@dataclass
class HttpResult:
    events: int
    seconds: float
    statuses: Counter[int]
    acks: Counter[str]
    latencies: list[float]
    raw_rate: float
    completions: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds


async def post_batches(
    port: int, secret_key: str, batches: list[list[dict[str, Any]]], clients: int
) -> tuple[float, Counter[int], Counter[str], list[float]]:
    import httpx

    statuses = Counter[int]()
    acks = Counter[str]()
    latencies: list[float] = []
    queue = list(reversed(batches))

    async def client_loop(client: httpx.AsyncClient) -> None:
        while queue:
            batch = queue.pop()
            started = time.monotonic()
            try:
                response = await client.post("/api/v1/events", json={"events": batch})
            except httpx.HTTPError as error:
                statuses[-1] += 1
                acks[f"transport error: {type(error).__name__}"] += len(batch)
                continue
            latencies.append((time.monotonic() - started) * 1000)
            statuses[response.status_code] += 1
            if response.status_code == 200:
                body = response.json()
                for key in ("accepted", "duplicates", "rejected"):
                    acks[key] += len(body.get(key) or [])

    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {secret_key}"},
        timeout=120,
        trust_env=False,
        limits=httpx.Limits(max_connections=clients),
    ) as client:
        started = time.monotonic()
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
        elapsed = time.monotonic() - started
    return elapsed, statuses, acks, latencies


def http_batches(user_ids: list[str], total: int, batch: int) -> list[list[dict[str, Any]]]:
    """`total` events over the people, 1 in 20 completing a milestone (campaign, then
    contact, for each person in turn), the rest names that complete nothing. Timestamped now:
    after the people's journeys started."""
    now = datetime.now(UTC)
    completing = ["campaign_created", "contact_added"]
    events = []
    for i in range(total):
        if i % 20 == 0:
            k = i // 20
            user = user_ids[k % len(user_ids)]
            name = completing[(k // len(user_ids)) % len(completing)]
        else:
            user = user_ids[i % len(user_ids)]
            name = FILLER_NAMES[i % len(FILLER_NAMES)]
        events.append(
            {
                "id": str(uuid.uuid4()),
                "user_id": user,
                "name": name,
                "timestamp": (now + timedelta(microseconds=i)).isoformat(),
                "properties": {"plan": "trial", "n": i},
            }
        )
    return [events[i : i + batch] for i in range(0, total, batch)]
