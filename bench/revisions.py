"""The checkouts an A/B benchmark measures run after run (bench/record_cpu.py,
bench/socket_cpu.py): this one, and with `--before REV` that revision's code in a temporary git
worktree, removed again afterwards."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _worktree(*args: str) -> None:
    git = ["git", "-C", str(ROOT), "worktree", *args]
    subprocess.run(git, check=True, capture_output=True)  # noqa: S603 - git, our repository


@contextlib.contextmanager
def checkouts(before: str | None) -> Iterator[dict[str, Path]]:
    """{name: checkout}: REV's first (when given), then "this checkout"."""
    with tempfile.TemporaryDirectory() as scratch:
        if before is None:
            yield {"this checkout": ROOT}
            return
        path = Path(scratch) / "before"
        _worktree("add", "--detach", str(path), before)
        try:
            yield {before: path, "this checkout": ROOT}
        finally:
            _worktree("remove", "--force", str(path))
