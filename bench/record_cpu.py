"""Write-path CPU benchmark (not a test): `python bench/record_cpu.py [--before REV]`.

The CPU time (this thread's, `time.thread_time`) the write path spends per stored event, which a
busy machine disturbs far less than a rate does: the figure behind the socket's closed loop and
the server API's ingest when their process is the bottleneck (bench/realtime.py figures 1 and 5).

- `socket`: rounds of 250 one-event `events` messages of 250 people in one group commit
  (`delivery.events_receive_many`, as the socket's group commit calls it).
- `api`: rounds of one 500-event body of the server API for 500 people
  (`recording.events_record`, as `POST /api/v1/events` calls it).

People's journeys start before their events and their events walk bench/realtime_seed.py's
LOOP_NAMES, so the first rounds complete milestones ("completing" below: four per person) and
the later ones only count ("counting"); the completions are counted in the database and printed.
PostgreSQL as bench/ingest.py sets it up (DATABASE_URL, default milepost_bench).

`--before REV` measures REV's code too, from a temporary git worktree, run after run with this
checkout's (A, B, A, B…), so both see the same machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from revisions import checkouts

HERE = Path(__file__).resolve().parent
PEOPLE = 500
COMPLETING_ROUNDS = 8  # rounds 0-7 complete milestones; later rounds only count


def measure(mode: str, rounds: int) -> None:
    """One run in this process: prints the medians (µs of CPU per event)."""
    sys.path.insert(0, str(HERE))
    from ingest import setup

    setup()
    from django.db import transaction
    from realtime_seed import LOOP_NAMES, seed_workspace

    from onboarding import delivery, recording
    from onboarding.batching import batch_of_after_commit_work
    from onboarding.models import MilestoneCompletion

    workspace, _ = seed_workspace()
    with transaction.atomic():
        people = recording.end_users_identify_many(
            identities=[
                recording.Identity(workspace=workspace, external_id=f"p{n}", traits={})
                for n in range(PEOPLE)
            ]
        )

    def event(name: str, **extra: object) -> dict[str, object]:
        now = datetime.now(UTC).isoformat()
        return {"id": str(uuid.uuid4()), "name": name, "timestamp": now, **extra}

    cpu: list[float] = []
    for r in range(rounds):
        if mode == "socket":
            half = people[(r % 2) * 250 : (r % 2) * 250 + 250]
            sent_at = datetime.now(UTC).isoformat()
            submissions = [
                delivery.EventsSubmission(
                    person,
                    [event(LOOP_NAMES[(r // 2 + n) % len(LOOP_NAMES)], properties={"n": n})],
                    sent_at,
                )
                for n, person in enumerate(half)
            ]
            started = time.thread_time()
            with batch_of_after_commit_work(), transaction.atomic():
                answers = delivery.events_receive_many(submissions)
            cpu.append((time.thread_time() - started) / len(submissions) * 1e6)
            assert all(isinstance(a, dict) and a["accepted"] for a in answers)
        else:
            events = [
                event(LOOP_NAMES[(r + n) % len(LOOP_NAMES)], user_id=f"p{n}", properties={"n": n})
                for n in range(PEOPLE)
            ]
            started = time.thread_time()
            with batch_of_after_commit_work(), transaction.atomic():
                ack = recording.events_record(workspace=workspace, events=events, source="server")
            cpu.append((time.thread_time() - started) / len(events) * 1e6)
            assert len(ack.accepted) == len(events), ack.rejected[:3]
    completions = MilestoneCompletion.objects.filter(workspace=workspace).count()
    print(
        f"{statistics.median(cpu[:COMPLETING_ROUNDS]):.1f} "
        f"{statistics.median(cpu[COMPLETING_ROUNDS:]):.1f} {completions}"
    )


def run(checkout: Path, mode: str, rounds: int) -> tuple[float, float, int]:
    """One run in a fresh process with `checkout`'s code: (completing, counting, completions)."""
    script = checkout / "bench" / "record_cpu.py"
    if not script.exists():  # a revision before this file: this file, that code
        script = Path(__file__).resolve()
    output = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, str(script), "--child", mode, "--rounds", str(rounds)],
        cwd=checkout,
        env={**os.environ, "PYTHONPATH": str(checkout)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return float(output[-3]), float(output[-2]), int(output[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("socket", "api", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3, help="runs of each mode (and revision)")
    parser.add_argument("--before", help="a git revision to measure beside this checkout")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        measure(options.child, options.rounds)
        return
    if options.rounds <= COMPLETING_ROUNDS:
        parser.error(f"--rounds must be over {COMPLETING_ROUNDS}: the first rounds complete")
    modes = ["socket", "api"] if options.mode == "both" else [options.mode]
    with checkouts(options.before) as measured:
        for mode in modes:
            results: dict[str, list[tuple[float, float, int]]] = {k: [] for k in measured}
            for _ in range(options.runs):
                for name, checkout in measured.items():
                    results[name].append(run(checkout, mode, options.rounds))
            for name, runs in results.items():
                completing = statistics.median(r[0] for r in runs)
                counting = statistics.median(r[1] for r in runs)
                print(
                    f"{mode:6} {name:>14}: µs of CPU per event, completing rounds "
                    f"{completing:.1f}, counting rounds {counting:.1f} (median of "
                    f"{len(runs)} runs; {runs[0][2]} milestone completions a run)"
                )


if __name__ == "__main__":
    main()
