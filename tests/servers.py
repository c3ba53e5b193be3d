"""Real server processes for the tests that need one: `uvicorn milepost.asgi:application` on a
free port with the environment given, stopped (with its workers) when the block ends."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from tests.engagement.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def uvicorn_server(
    env: dict[str, str],
    *,
    workers: int = 1,
    command: Sequence[str] = (),
    log: Path | None = None,
) -> Iterator[str]:
    """Yields the server's base URL once /api/v1/health answers. `command`: another one that
    serves Milepost and takes `--port` (e.g. `manage.py run_milepost`); `log`: a file that
    receives its output."""
    port = free_port()
    files = contextlib.ExitStack()
    output = files.enter_context(log.open("ab")) if log is not None else subprocess.DEVNULL
    uvicorn = [sys.executable, "-m", "uvicorn", "milepost.asgi:application"]
    process = subprocess.Popen(  # noqa: S603 - our own server on loopback
        [
            *(command or [*uvicorn, "--workers", str(workers)]),
            *("--port", str(port)),
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=output,
        stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # Generous: the machine may be busy with other work while the server imports.
        deadline = time.monotonic() + 90
        while True:
            try:
                httpx.get(f"{base}/api/v1/health", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError(f"{base} did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        files.close()
