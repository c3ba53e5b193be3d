"""PAI validation from the analytics store equals a plain reference on random people: events
before the range and before a signup, people with no events at all, the window's and the
retention day's edges to the millisecond."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from analytics.inputs import DateRange
from analytics.report import pai
from onboarding.models import Event, Workspace
from tests.factories import EndUserFactory

ORIGIN = datetime(2025, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)
NAMES = ("invite", "login", "report")


def _reference(
    people: list[tuple[datetime | None, list[tuple[str, datetime]]]],
    *,
    date_range: DateRange,
    now: datetime,
    window_days: int,
    retention_day: int,
    max_threshold: int,
    return_event: str | None,
) -> tuple[int, int, list[tuple[int, int, int]], list[float | None], list[float | None]]:
    """(signups, retained, [(threshold, met, met and retained)], baseline curve, best curve)."""
    rows = []  # (key count, retained, days active) per person counted
    for signed, events in people:
        if signed is None or not date_range.start <= signed < date_range.end:
            continue
        if signed > now - retention_day * DAY:
            continue
        returns = [at for name, at in events if return_event in (None, name) and at >= signed]
        key = sum(
            1
            for name, at in events
            if name == "invite" and signed <= at <= signed + window_days * DAY
        )
        retained = any(at >= signed + retention_day * DAY for at in returns)
        days = {(at - signed) // DAY for at in returns if at < signed + (retention_day + 1) * DAY}
        rows.append((key, retained, days))
    retained_total = sum(1 for _, kept, _ in rows if kept)
    thresholds = [
        (t, sum(1 for k, _, _ in rows if k >= t), sum(1 for k, kept, _ in rows if k >= t and kept))
        for t in range(1, max_threshold + 1)
    ]
    overlaps = [
        (round(both / (met + retained_total - both), 4), -t)
        for t, met, both in thresholds
        if met + retained_total - both
    ]
    best = -max(overlaps)[1] if overlaps else None
    baseline: list[float | None] = []
    best_curve: list[float | None] = []
    best_group = [days for k, _, days in rows if k >= (best or 1)]
    for d in range(retention_day + 1):
        baseline.append(round(sum(d in days for *_, days in rows) / len(rows), 4) if rows else None)
        best_curve.append(
            round(sum(d in days for days in best_group) / len(best_group), 4)
            if best is not None and best_group
            else None
        )
    return len(rows), retained_total, thresholds, baseline, best_curve


@pytest.mark.parametrize("seed", range(4))
def test_store_pai_validation_equals_the_reference_on_random_people(
    workspace: Workspace, analytics_store: Callable[[], Any], seed: int
) -> None:
    rng = random.Random(seed)
    date_range = DateRange(date(2025, 3, 10), date(2025, 3, 25))
    now = ORIGIN + timedelta(days=rng.choice([40, 45]))
    window_days, retention_day = rng.choice([1, 2]), rng.choice([3, 7])
    return_event = rng.choice([None, "login"])
    people = []
    rows = []
    for n in range(40):
        # Signups before, in and after the range, and too recent to be observed.
        signed = rng.choice(
            [None, ORIGIN + timedelta(days=rng.randint(5, 30), hours=rng.randint(0, 23))] * 2
            + [ORIGIN + timedelta(days=rng.randint(9, 24), hours=rng.randint(0, 23))] * 3
        )
        user = EndUserFactory(workspace=workspace, external_id=f"p{n}", signed_up_at=signed)
        events = []
        for _ in range(rng.randint(0, 12)):
            base = signed or ORIGIN
            # Many on the window's and the retention day's edges, a millisecond either side.
            edge = rng.choice(
                [window_days * DAY, retention_day * DAY, (retention_day + 1) * DAY, DAY]
            )
            at = rng.choice(
                [
                    base + edge + timedelta(milliseconds=rng.choice([-1, 0, 1])),
                    base + timedelta(hours=rng.randint(-72, 24 * 12)),
                ]
            )
            events.append((rng.choice(NAMES), at))
        for name, at in events:
            rows.append(
                Event(
                    workspace=workspace,
                    end_user=user,
                    client_id=f"00000000-0000-4000-8000-{len(rows):012d}",
                    name=name,
                    timestamp=at,
                )
            )
        people.append((signed, events))
    Event.objects.bulk_create(rows)
    analytics_store()

    result = pai.pai_validation(
        workspace=workspace,
        key_event="invite",
        date_range=date_range,
        window_days=window_days,
        retention_day=retention_day,
        max_threshold=4,
        return_event=return_event,
        now=now,
    )

    signups, retained, thresholds, baseline, best_curve = _reference(
        people,
        date_range=date_range,
        now=now,
        window_days=window_days,
        retention_day=retention_day,
        max_threshold=4,
        return_event=return_event,
    )
    assert (result.signups, result.retained) == (signups, retained)
    assert [(t.threshold, t.met, t.met_and_retained) for t in result.thresholds] == thresholds
    assert list(result.baseline_curve) == baseline
    assert list(result.best_curve) == best_curve
    # The data can make the test fail: enough signups, some of them retained.
    assert signups > 5
    assert retained
