"""Start the customer's Django project (tests/django_host) in its own process: its own
settings and SQLite database, pointed at a live Milepost with a workspace's keys."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.serving import serving

HOST_DIR = Path(__file__).resolve().parent.parent / "django_host"


@contextmanager
def running_host(
    *, milepost_url: str, keys: dict[str, str], port: int, data_dir: Path
) -> Iterator[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(HOST_DIR),
        "DJANGO_SETTINGS_MODULE": "acme_host.settings",
        "HOST_DB": str(data_dir / "acme.sqlite3"),
        "MILEPOST_URL": milepost_url,
        "MILEPOST_PUBLISHABLE_KEY": keys["publishable_key"],
        "MILEPOST_SECRET_KEY": keys["secret_key"],
        "MILEPOST_IDENTITY_SECRET": keys["identity_secret"],
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "-v0"], env=env, check=True, timeout=120
    )
    with serving(
        [sys.executable, "-m", "uvicorn", "acme_host.asgi:application", "--port", str(port)],
        probe=f"http://127.0.0.1:{port}/page",
        env=env,
        cwd=data_dir,
    ):
        yield f"http://127.0.0.1:{port}"
