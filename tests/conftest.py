from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

# Connections opened by database_sync_to_async in worker threads would outlive the test and keep
# PostgreSQL from dropping the test database; close them after every use instead.
settings.DATABASES["default"]["CONN_MAX_AGE"] = 0


@pytest.fixture(scope="session", autouse=True)
def _analytics_store_path(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One chDB path for the whole run: a process may open only one. Opened on first use."""
    settings.ANALYTICS_URL = f"chdb://{tmp_path_factory.mktemp('analytics')}"


@pytest.fixture
def analytics_store(db: None) -> Callable[[], Any]:
    """An empty analytics store (ids repeat between tests on SQLite), and a function that
    exports the events recorded so far into it, as the scheduler does every few seconds."""
    from analytics import store, store_export

    store.reset()

    def sync() -> Any:
        return store_export.export(settle=timedelta(0))

    return sync


@pytest.fixture(autouse=True)
def _fresh_published_content_copies() -> None:
    """Each process keeps its workspaces' published content by workspace id; a rolled-back test
    on SQLite hands the next test the same ids, so no copy may outlive its test."""
    from onboarding import experiments, queries

    queries.live_content_forget()
    experiments.forget()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked `services` needs PostgreSQL and Redis. Outside CI it is skipped when they
    are not configured; in CI (CI=true) a missing service is an error, never a silent skip."""
    have_services = settings.REDIS_URL is not None and settings.DATABASES["default"][
        "ENGINE"
    ].endswith("postgresql")
    if have_services:
        return
    if os.environ.get("MILEPOST_REQUIRE_SERVICES") == "true":
        raise pytest.UsageError(
            "MILEPOST_REQUIRE_SERVICES is set but DATABASE_URL/REDIS_URL are not"
        )
    skip = pytest.mark.skip(reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL")
    for item in items:
        if "services" in item.keywords:
            item.add_marker(skip)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Django deletes the SQLite test database file but not WAL's side files."""
    name = str(settings.DATABASES["default"].get("TEST", {}).get("NAME") or "")
    if name.endswith(".sqlite3"):
        for suffix in ("-wal", "-shm"):
            Path(name + suffix).unlink(missing_ok=True)
