from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from onboarding.models import EndUser, Event, Workspace
from tests.factories import EndUserFactory, EventFactory, WorkspaceFactory


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0, month: int = 3) -> datetime:
    """An instant in March 2025 (UTC) unless told otherwise."""
    return datetime(2025, month, day, hour, minute, second, tzinfo=UTC)


@pytest.fixture
def workspace(db: None) -> Workspace:
    return WorkspaceFactory()


@pytest.fixture
def person(workspace: Workspace) -> Callable[..., EndUser]:
    def make(external_id: str, **fields: Any) -> EndUser:
        fields.setdefault("signed_up_at", at(1))
        fields.setdefault("first_seen_at", at(1))
        return EndUserFactory(workspace=workspace, external_id=external_id, **fields)

    return make


@pytest.fixture
def track() -> Callable[..., Event]:
    def make(end_user: EndUser, name: str, timestamp: datetime, **properties: Any) -> Event:
        return EventFactory(
            end_user=end_user,
            workspace=end_user.workspace,
            name=name,
            timestamp=timestamp,
            properties=properties,
        )

    return make


def marks_aged(seconds: float | None = None) -> None:
    """Every journey rollup mark made older than MILEPOST_ROLLUP_FRESH_SECONDS (or `seconds`):
    as if the refresh its commit woke had been down since."""
    from django.conf import settings
    from django.utils import timezone

    from analytics.models import JourneyStaleDay

    age = settings.MILEPOST_ROLLUP_FRESH_SECONDS + 1 if seconds is None else seconds
    JourneyStaleDay.objects.update(first_marked_at=timezone.now() - timedelta(seconds=age))
