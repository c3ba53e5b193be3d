"""The database path of the ad-hoc event funnel (analytics/funnel_sql.py) gives exactly the
report of the streaming engine (analytics/funnel_engine.py) on random event sets: events at
the same instant, repeated and out-of-order steps, steps exactly at the window's edge and at
the date range's edges, several attempts per person, property filters, breakdowns by a person
trait."""

from __future__ import annotations

import os
import random
from datetime import UTC, date, datetime, timedelta

import pytest

from analytics import funnel_sql, queries
from analytics.inputs import (
    DateRange,
    EventFunnelSpec,
    FunnelBreakdown,
    FunnelStep,
    PropertyFilter,
)
from onboarding.models import Workspace
from tests.factories import EndUserFactory, EventFactory

STEPS = ("visit", "signup", "invite", "pay")
TRAIT_VALUES = ("pro", "free", 3, 2.5, True, None, {"tier": 1}, "3")
ORIGIN = datetime(2025, 3, 10, tzinfo=UTC)


def _random_workspace(workspace: Workspace, rng: random.Random) -> None:
    # Every step name is known to the workspace (a year before, outside every range).
    bystander = EndUserFactory(workspace=workspace, external_id="bystander")
    for name in STEPS:
        EventFactory(
            workspace=workspace, end_user=bystander, name=name, timestamp=ORIGIN - timedelta(365)
        )
    for person in range(rng.randint(3, 8)):
        traits = {} if rng.random() < 0.2 else {"plan": rng.choice(TRAIT_VALUES)}
        end_user = EndUserFactory(workspace=workspace, external_id=f"p{person:02d}", traits=traits)
        for _ in range(rng.randint(2, 20)):
            # A coarse grid of 30-minute slots over ~4 days makes equal instants and exact
            # window edges (the windows below are whole multiples of a slot) common.
            instant = ORIGIN + timedelta(minutes=30 * rng.randint(-8, 120))
            if rng.random() < 0.15:
                instant += timedelta(microseconds=rng.choice((1, 999, 1000, 1500)))
            name = rng.choice((*STEPS, "noise"))
            properties = {"size": rng.randint(1, 3)} if rng.random() < 0.7 else {}
            EventFactory(
                workspace=workspace,
                end_user=end_user,
                name=name,
                timestamp=instant,
                properties=properties,
            )


def _spec(rng: random.Random) -> EventFunnelSpec:
    size = rng.randint(2, 4)
    names = rng.sample(STEPS, size) if rng.random() < 0.3 else list(STEPS[:size])
    breakdown = FunnelBreakdown(kind="person", property="plan") if rng.random() < 0.5 else None
    return EventFunnelSpec(
        steps=tuple(
            # Property filters narrow a step (the database applies them, as for the engine).
            FunnelStep(name, (PropertyFilter("size", "gte", 2),) if rng.random() < 0.2 else ())
            for name in names
        ),
        window=timedelta(minutes=30 * rng.choice((1, 2, 5, 24, 400))),
        breakdown=breakdown,
        interval=rng.choice(("day", "week")),
        people_limit=rng.choice((1, 2, 100)),
    )


def _date_range(rng: random.Random) -> DateRange:
    first = date(2025, 3, 10) + timedelta(days=rng.choice((-1, 0, 1)))
    last = first + timedelta(days=rng.choice((0, 1, 3)))
    return DateRange(first, last, rng.choice(("UTC", "America/New_York", "Asia/Kolkata")))


@pytest.mark.parametrize("seed", range(int(os.environ.get("FUNNEL_SQL_SEEDS", "40"))))
def test_the_database_path_reports_exactly_what_the_engine_reports(
    workspace: Workspace, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    _random_workspace(workspace, rng)
    for _ in range(4):
        spec, date_range = _spec(rng), _date_range(rng)
        assert funnel_sql.supports(spec)
        from_database = queries.event_funnel(workspace=workspace, spec=spec, date_range=date_range)
        with monkeypatch.context() as patch:
            patch.setattr(funnel_sql, "supports", lambda spec: False)
            from_engine = queries.event_funnel(
                workspace=workspace, spec=spec, date_range=date_range
            )
        assert from_database == from_engine, (spec, date_range)


def test_it_counts_steps_done_at_the_entry_instant_and_at_the_window_edge(
    workspace: Workspace,
) -> None:
    ann = EndUserFactory(workspace=workspace, external_id="ann")
    for name, minutes in (("signup", 0), ("invite", 0), ("pay", 60), ("pay", 61)):
        EventFactory(
            workspace=workspace,
            end_user=ann,
            name=name,
            timestamp=ORIGIN + timedelta(minutes=minutes),
        )
    spec = EventFunnelSpec(
        steps=(FunnelStep("signup"), FunnelStep("invite"), FunnelStep("pay")),
        window=timedelta(hours=1),
    )

    result = queries.event_funnel(
        workspace=workspace, spec=spec, date_range=DateRange(date(2025, 3, 1), date(2025, 3, 31))
    )

    assert [step.count for step in result.steps] == [1, 1, 1]
    assert [step.median_seconds_to_convert for step in result.steps] == [None, 0.0, 3600.0]


def test_it_keeps_the_engine_for_funnels_the_database_path_does_not_cover() -> None:
    steps = (FunnelStep("signup"), FunnelStep("pay"))
    assert funnel_sql.supports(EventFunnelSpec(steps=steps))
    assert not funnel_sql.supports(EventFunnelSpec(steps=steps, order="strict"))
    assert not funnel_sql.supports(EventFunnelSpec(steps=steps, order="unordered"))
    assert not funnel_sql.supports(EventFunnelSpec(steps=steps, aggregate_by="company"))
    assert not funnel_sql.supports(
        EventFunnelSpec(steps=steps, breakdown=FunnelBreakdown(kind="event", property="plan"))
    )
    # Two steps on one event name: an event could count for either, which the engine decides.
    assert not funnel_sql.supports(EventFunnelSpec(steps=(FunnelStep("pay"), FunnelStep("pay"))))
