"""Servers the tests start as separate processes (an installed Milepost, a customer's Django
project): start one and wait until it answers."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


@contextmanager
def serving(
    command: list[str], *, probe: str, env: dict[str, str], cwd: Path, seconds: float = 60
) -> Iterator[httpx.Response]:
    """Run `command` until the block ends; yields the first answer to GET `probe`."""
    server = subprocess.Popen(  # noqa: S603 - the tests' own commands
        command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + seconds
        while True:
            try:
                answer = httpx.get(probe, timeout=1)
                break
            except httpx.TransportError:
                if server.poll() is not None:
                    raise RuntimeError(f"{command[0]} exited with {server.returncode}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{probe} did not answer in {seconds} s") from None
                time.sleep(0.1)
        yield answer
    finally:
        server.terminate()
        server.wait(timeout=15)
