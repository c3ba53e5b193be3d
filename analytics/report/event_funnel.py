"""The ad-hoc event funnel: its result types and its entry point, computed in the analytics
store (analytics/store_funnel.py). analytics/funnel_engine.py is the reference the randomised
tests compare the store against, person by person."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from analytics.inputs import DateRange, EventFunnelSpec
from analytics.report.time_to_convert import (
    HistogramBucket,
)
from onboarding.models import Workspace


@dataclass(frozen=True)
class EventFunnelStep:
    index: int
    event: str
    count: int
    conversion_from_previous: float | None
    conversion_from_start: float | None
    dropped: int
    median_seconds_to_convert: float | None  # from the previous step
    mean_seconds_to_convert: float | None
    histogram: tuple[HistogramBucket, ...]
    converted_people: tuple[str, ...]  # reached this step (up to people_limit)
    dropped_people: tuple[str, ...]  # reached the previous step but not this one


@dataclass(frozen=True)
class EventFunnelGroup:
    value: str
    counts: tuple[int, ...]
    conversion: float | None


@dataclass(frozen=True)
class EventFunnelPeriod:
    period_start: date
    entered: int
    converted: int
    conversion: float | None


@dataclass(frozen=True)
class EventFunnel:
    order: str
    window_seconds: int
    aggregate_by: str
    steps: tuple[EventFunnelStep, ...]
    excluded: int  # actors whose every attempt met an exclusion
    breakdown: tuple[EventFunnelGroup, ...]
    over_time: tuple[EventFunnelPeriod, ...]


def event_funnel(
    *, workspace: Workspace, spec: EventFunnelSpec, date_range: DateRange
) -> EventFunnel:
    """An ad-hoc funnel over events, computed in the analytics store (analytics/store_funnel.py),
    also when counted by an account trait (`aggregate_by`). See analytics/funnel_engine.py for
    the exact semantics."""
    # Imported here: the store's funnel builds on this module's result types.
    from analytics import store_funnel

    return store_funnel.event_funnel(workspace=workspace, spec=spec, date_range=date_range)
