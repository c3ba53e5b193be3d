"""The servers bench/realtime.py measures: Milepost and its two baselines
(bench/realtime_baselines.py), each `uvicorn APP --workers N` on loopback, and what the bench
reads of their workers in /proc (CPU time, resident memory).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ingest import ROOT, free_port

# `MILEPOST_BENCH_PORTS=18300-18399`: the servers listen on free ports of this range only (on a
# shared machine each user of it has its own range); without it, any free port.
PORT_RANGE = os.environ.get("MILEPOST_BENCH_PORTS", "")
_ports_given: set[int] = set()
# `MILEPOST_BENCH_PYSPY=DIR`: each Milepost worker is sampled by py-spy (on PATH, e.g. from
# `uv tool install py-spy`) while it runs, its stacks written to DIR as collapsed text.
PYSPY_DIR = os.environ.get("MILEPOST_BENCH_PYSPY", "")


def server_port() -> int:
    if not PORT_RANGE:
        return free_port()
    first, last = (int(part) for part in PORT_RANGE.split("-"))
    for port in range(first, last + 1):
        if port in _ports_given:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _ports_given.add(port)
        return port
    raise RuntimeError(f"no free port left in MILEPOST_BENCH_PORTS={PORT_RANGE}")


BENCH = Path(__file__).resolve().parent
# Raised so that the load is measured, not refused (milepost/settings.py, the README's limits).
SERVER_LIMITS = {
    "MILEPOST_MAX_SOCKET_MESSAGES_PER_MINUTE": "1000000",
    "MILEPOST_MAX_MESSAGES_PER_KEY_PER_MINUTE": "100000000",
}


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def machine_busy_ticks() -> int:
    """CPU ticks the whole machine spent busy (every process, ours or not)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4]  # less idle and iowait


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"resource_tracker" not in cmdline:
            found.append(int(entry.name))
    return found


class Server:
    """`uvicorn APP --workers N` on a free loopback port, its output kept in a log file."""

    started: list[Server] = []  # every server of this run, stopped again by main() at the end

    def __init__(self, name: str, app: list[str], workers: int, health_path: str) -> None:
        self.name = name
        self.app = app
        self.workers = workers
        self.health_path = health_path
        self.port = server_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = Path(tempfile.mkstemp(prefix=f"bench-realtime-{name}-", suffix=".log")[1])

    def start(self) -> None:
        import httpx

        command = [
            sys.executable,
            "-m",
            "uvicorn",
            *self.app,
            "--workers",
            str(self.workers),
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        with self.log_path.open("ab") as log:
            Server.started.append(self)
            self.process = subprocess.Popen(  # noqa: S603 - our own server on loopback
                command,
                cwd=ROOT,
                env=server_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 90
        url = f"http://127.0.0.1:{self.port}{self.health_path}"
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not answer {url}: {self.log_tail()}")
            try:
                if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        # With several workers the port answers as soon as the first is up: wait until every
        # worker exists and has stopped burning CPU on its imports.
        while time.monotonic() < deadline:
            pids = self.worker_pids()
            before = [cpu_ticks(pid) for pid in pids]
            time.sleep(0.5)
            after = [cpu_ticks(pid) for pid in pids]
            if len(pids) == self.workers and all(
                b - a <= 2 for a, b in zip(before, after, strict=True)
            ):
                self._profile()
                return
        raise RuntimeError(f"{self.name}: workers not settled: {self.log_tail()}")

    def _profile(self) -> None:
        if not PYSPY_DIR or self.name != "milepost":
            return
        for pid in self.worker_pids():
            out = Path(PYSPY_DIR) / f"milepost-{self.workers}w-{pid}.txt"
            profiler = [
                "py-spy", "record", "--pid", str(pid), "--nonblocking", "--threads",
                "--format", "raw", "--rate", "97", "--output", str(out),
            ]  # fmt: skip
            subprocess.Popen(  # noqa: S603 - a developer's opt-in profiler
                profiler,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        if self.workers == 1:  # uvicorn serves in its own process then
            return [self.process.pid]
        return _children(self.process.pid)

    def rss_kb(self) -> int:
        return sum(_rss_kb(pid) for pid in self.worker_pids())

    def cpu_seconds(self) -> float:
        return sum(cpu_ticks(pid) for pid in self.worker_pids()) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        # Workers left behind by a supervisor that died first.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def log_problems(self) -> tuple[int, list[str]]:
        """Lines of the server's output that report an error, and the first few distinct ones."""
        lines = self.log_path.read_text(errors="replace").splitlines()
        bad = [line for line in lines if " ERROR " in line or line.startswith("Traceback")]
        distinct: list[str] = []
        for line in bad:
            text = line.split(" ERROR ", 1)[-1][:160]
            if text not in distinct:
                distinct.append(text)
        return len(bad), distinct[:5]


async def settle(server: Server, cap: float = 15.0) -> None:
    """Wait until the server's workers use less than a tenth of a core, so that a figure does
    not start while the previous one's work (signals after commit, pushes) is still running."""
    deadline = time.monotonic() + cap
    while time.monotonic() < deadline:
        before = server.cpu_seconds()
        await asyncio.sleep(0.5)
        if server.cpu_seconds() - before < 0.05:
            return
    print(f"       ({server.name} still busy {cap:.0f} s later; measuring anyway)", flush=True)


def server_env() -> dict[str, str]:
    env = {**os.environ, **SERVER_LIMITS}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def milepost_server(workers: int) -> Server:
    return Server("milepost", ["milepost.asgi:application"], workers, "/api/v1/health")


def echo_server(workers: int) -> Server:
    return Server("echo", ["realtime_baselines:echo", "--app-dir", str(BENCH)], workers, "/")


def relay_server(workers: int) -> Server:
    return Server(
        "relay",
        ["realtime_baselines:relay_app", "--factory", "--app-dir", str(BENCH)],
        workers,
        "/",
    )
