"""The fault suite's machinery (bench/faults.py and its scenario modules): our own PostgreSQL and
Redis in a temporary directory on free loopback ports, Milepost processes (uvicorn, Celery) on
them with their output in log files, and small helpers shared by the scenarios."""

from __future__ import annotations

import collections
import contextlib
import glob
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "milepost.settings")
# The harness reads the database between awaits (counts, seeding); no server code runs here.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
PG_BIN = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1])
ORIGIN = "http://faults.localhost"
# Raised so that the load is measured, not refused (the README's limits).
SERVER_LIMITS = {
    "MILEPOST_MAX_SOCKET_MESSAGES_PER_MINUTE": "1000000",
    "MILEPOST_MAX_MESSAGES_PER_KEY_PER_MINUTE": "100000000",
    "MILEPOST_MAX_API_REQUESTS_PER_MINUTE": "100000000",
}


# Ports come from FAULTS_PORTS ("first-last", e.g. 18700-18799 on a shared machine) when it is
# set, else from the kernel; a port handed out once is not handed out again by this process.
_PORTS_GIVEN: set[int] = set()


FAULTS_WORKER_HEALTHCHECK = os.environ.get("FAULTS_WORKER_HEALTHCHECK", "60")
# How long uvicorn keeps an idle HTTP connection open: the README's command line and the
# Dockerfile's (longer than a client's or a load balancer's idle timeout; see `keepalive`).
KEEP_ALIVE_SECONDS = 75


def free_port() -> int:
    first, _, last = os.environ.get("FAULTS_PORTS", "").partition("-")
    candidates = range(int(first), int(last) + 1) if first and last else [0] * 50
    for candidate in candidates:
        if candidate in _PORTS_GIVEN:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            port = int(probe.getsockname()[1])
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port
    raise RuntimeError(f"no free port in FAULTS_PORTS={os.environ.get('FAULTS_PORTS')}")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# Our own services -------------------------------------------------------------------------


class Postgres:
    """A throw-away cluster in `base`, run as the `postgres` user when we are root."""

    def __init__(self, base: Path) -> None:
        self.base = base / "pg"
        self.data = self.base / "data"
        self.port = free_port()
        self.base.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(  # noqa: S603 - our own binaries and arguments
            [*prefix, *command], check=True, capture_output=True, cwd=self.base
        )

    def init(self) -> None:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust")
        self.start()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1"
        options += " -c max_connections=200"
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.base / "log"),
            "-o", options, "-w", "start",
        )  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def renice(self, niceness: int) -> None:
        """The postmaster and every backend at `niceness`."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        for pid in [postmaster, *_descendants(postmaster)]:
            renice_threads(pid, niceness)

    def url(self, database: str = "milepost") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"


class Redis:
    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class Process:
    """A Milepost process (uvicorn or Celery) with its output in a log file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.start()

    def start(self) -> None:
        with self.log_path.open("ab") as output:
            self.process = subprocess.Popen(  # noqa: S603
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL to the whole process group (uvicorn's workers, Celery's children)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def rss_kb(self) -> int:
        """Resident memory of the process and its children (uvicorn's workers), in kB."""
        return sum(_rss_kb(pid) for pid in [self.process.pid, *_descendants(self.process.pid)])

    def scheduled_ns(self) -> tuple[int, int]:
        """Nanoseconds the process and its children (every thread) have run on a CPU and have
        waited runnable for one (the kernel's schedstat): the second is the machine's
        contention, time a request spends ready to run while other work holds the cores."""
        on_cpu = waiting = 0
        for pid in [self.process.pid, *_descendants(self.process.pid)]:
            with contextlib.suppress(OSError):
                for task in Path(f"/proc/{pid}/task").iterdir():
                    ran, waited, _ = (task / "schedstat").read_text().split()
                    on_cpu += int(ran)
                    waiting += int(waited)
        return on_cpu, waiting

    def renice(self, niceness: int) -> None:
        """Every thread of the process and its children at `niceness` (see soak's priority_ab)."""
        for pid in [self.process.pid, *_descendants(self.process.pid)]:
            renice_threads(pid, niceness)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)

    def tracebacks(self) -> int:
        return self.log_path.read_text(errors="replace").count("Traceback (most recent call last)")


@dataclass
class Stack:
    """Our PostgreSQL and Redis, and the Milepost processes started on them."""

    base: Path
    postgres: Postgres
    redis: Redis
    processes: list[Process] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            **SERVER_LIMITS,
            "DATABASE_URL": self.postgres.url(),
            "REDIS_URL": self.redis.url,
            "SECRET_KEY": "milepost-faults-only",
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            **extra,
        }

    def uvicorn(self, name: str, workers: int = 1, **extra: str) -> str:
        return self.uvicorn_process(name, workers, **extra)[1]

    def uvicorn_process(
        self, name: str, workers: int = 1, keep_alive: int = KEEP_ALIVE_SECONDS, **extra: str
    ) -> tuple[Process, str]:
        port = free_port()
        command = [sys.executable, "-m", "uvicorn", "milepost.asgi:application"]
        command += ["--port", str(port), "--workers", str(workers), "--no-access-log"]
        command += ["--timeout-keep-alive", str(keep_alive)]
        # Thousands of sockets: no backlog limit of uvicorn's own in the way.
        command += ["--backlog", "4096", "--log-level", "warning"]
        # uvicorn's supervisor kills a worker that does not answer its ping within 5 s; on
        # this machine's 2 shared cores, thousands of hellos starve the answering thread that
        # long, and every socket of the worker drops (see bench/README.md).
        command += ["--timeout-worker-healthcheck", FAULTS_WORKER_HEALTHCHECK]
        process = Process(name, command, self.env(**extra), self.base)
        self.processes.append(process)
        base = f"http://127.0.0.1:{port}"
        wait_until_up(f"{base}/api/v1/health")
        return process, base

    def celery(self, name: str, **extra: str) -> Process:
        command = [sys.executable, "-m", "celery", "-A", "milepost", "worker", "--pool=solo"]
        command += ["--loglevel=WARNING", "--without-mingle", "--without-gossip", "-n", name]
        process = Process(name.split("@")[0], command, self.env(**extra), self.base)
        self.processes.append(process)
        return process

    def celery_beat(self, name: str, **extra: str) -> Process:
        command = [sys.executable, "-m", "celery", "-A", "milepost", "beat", "--loglevel=WARNING"]
        command += ["--schedule", str(self.base / "celerybeat-schedule")]
        process = Process(name, command, self.env(**extra), self.base)
        self.processes.append(process)
        return process

    def tracebacks(self) -> int:
        return sum(process.tracebacks() for process in self.processes)


def raise_open_files_limit() -> None:
    """Sockets are files: thousands of them need the hard limit, not the usual soft 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def renice_threads(pid: int, niceness: int) -> None:
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, int(task.name), niceness)


def _rss_kb(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            children = (task / "children").read_text().split()
            for child in map(int, children):
                found += [child, *_descendants(child)]
    return found


def load_average() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def wait_until_up(url: str, seconds: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer")


@contextlib.contextmanager
def stack() -> Iterator[Stack]:
    raise_open_files_limit()  # for this process and, inherited, every process it starts
    base = Path(tempfile.mkdtemp(prefix="milepost-faults-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        base.chmod(0o777)
    running = Stack(base, Postgres(base), Redis())
    try:
        running.postgres.init()
        running.redis.start()
        subprocess.run(  # noqa: S603
            [
                *(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(running.postgres.port)),
                *("-U", "postgres", "milepost"),
            ],
            check=True,
        )
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v0"],
            cwd=ROOT,
            env=running.env(),
            check=True,
        )
        os.environ.update(running.env())
        import django

        django.setup()
        yield running
    finally:
        # Whatever happened, nothing of this run is left running.
        for process in running.processes:
            process.stop()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        with contextlib.suppress(Exception):
            running.postgres.stop("fast")
        running.redis.kill()
        shutil.rmtree(base, ignore_errors=True)


def workspace_create(name: str) -> tuple[Any, dict[str, str]]:
    from onboarding import services

    slug = f"{name}-{uuid.uuid4().hex[:6]}"
    workspace, keys = services.workspace_create(name=slug, slug=slug, origins=[ORIGIN])
    return workspace, keys


def stored_ids(workspace_id: int) -> collections.Counter[str]:
    from django.db import connection

    from onboarding.models import Event

    connection.close()  # back to the pool, which replaces it if a restart broke it

    return collections.Counter(
        str(i)
        for i in Event.objects.filter(workspace_id=workspace_id).values_list("client_id", flat=True)
    )


def new_events(count: int, name: str, user_id: str | None = None) -> list[dict[str, Any]]:
    """Events with fresh ids, as now; `user_id` for the server API (the widget's say no user)."""
    person = {} if user_id is None else {"user_id": user_id}
    at = datetime.now(UTC).isoformat()
    return [
        {"id": str(uuid.uuid4()), "name": name, "timestamp": at, **person} for _ in range(count)
    ]
