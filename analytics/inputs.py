"""The parameters the reports accept, checked once for every entry point (API, admin, CSV).

Every problem raises ReportInputError naming the offending field, so an API answers 400 with
that field and an admin form shows it next to the input; nothing reaches the database first.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, Literal

from onboarding.models import Event, Workspace

MAX_FUNNEL_STEPS = 20
MAX_FUNNEL_EXCLUSIONS = 20
MIN_FUNNEL_STEPS = 2
MAX_CONVERSION_WINDOW = timedelta(days=90)
DEFAULT_CONVERSION_WINDOW = timedelta(days=14)
MAX_ADOPTION_FEATURES = 6
MAX_PAI_THRESHOLD = 30
MAX_RETENTION_PERIODS = 90
PROPERTY_OPERATORS = ("eq", "neq", "contains", "gt", "gte", "lt", "lte", "is_set", "is_not_set")
_PROPERTY_NAME = re.compile(r"^[A-Za-z0-9_$][A-Za-z0-9_$\-]{0,99}$")

OrderMode = Literal["ordered", "strict", "unordered"]
Attribution = Literal["first_touch", "last_touch", "all_steps", "step"]


class ReportInputError(ValueError):
    """A report parameter is wrong; `field` names it as the API and the forms spell it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


# The days the analytics store can hold (ClickHouse's DateTime64), a day of margin each side.
EARLIEST_DAY = date(1900, 1, 2)
LATEST_DAY = date(2299, 12, 30)


@dataclass(frozen=True)
class DateRange:
    """Calendar days date_from..date_to (both inclusive) in a time zone."""

    date_from: date
    date_to: date
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if self.timezone not in _time_zones():
            raise ReportInputError("timezone", f"Unknown time zone {self.timezone!r}.")
        if self.date_from > self.date_to:
            raise ReportInputError(
                "date_from", "The date range is the wrong way round: date_from is after date_to."
            )
        for field_name, day in (("date_from", self.date_from), ("date_to", self.date_to)):
            if not EARLIEST_DAY <= day <= LATEST_DAY:
                raise ReportInputError(
                    field_name,
                    f"Between {EARLIEST_DAY} and {LATEST_DAY} (the analytics store's range).",
                )

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.date_from, time.min, tzinfo=self.zone)

    @property
    def end(self) -> datetime:
        """The first instant after the range (exclusive bound)."""
        return datetime.combine(self.date_to + timedelta(days=1), time.min, tzinfo=self.zone)


def check_property_name(name: object, field_name: str) -> None:
    if not isinstance(name, str) or not _PROPERTY_NAME.match(name) or "__" in name:
        raise ReportInputError(
            field_name, "A property name is 1-100 letters, digits, '_', '-' or '$' (no '__')."
        )


@dataclass(frozen=True)
class PropertyFilter:
    key: str
    operator: str = "eq"
    value: Any = None

    def check(self, field_name: str) -> None:
        check_property_name(self.key, f"{field_name}.key")
        if self.operator not in PROPERTY_OPERATORS:
            raise ReportInputError(
                f"{field_name}.operator", f"Choose one of {', '.join(PROPERTY_OPERATORS)}."
            )
        if self.operator in {"gt", "gte", "lt", "lte"} and (
            isinstance(self.value, bool) or not isinstance(self.value, int | float)
        ):
            raise ReportInputError(f"{field_name}.value", "Compare with a number.")
        if self.operator == "contains" and not isinstance(self.value, str):
            raise ReportInputError(f"{field_name}.value", "'contains' needs text.")
        if self.operator in {"eq", "neq"} and not isinstance(self.value, str | int | float | bool):
            raise ReportInputError(
                f"{field_name}.value", "Compare with text, a number or a boolean."
            )


@dataclass(frozen=True)
class FunnelStep:
    event: str
    filters: tuple[PropertyFilter, ...] = ()


@dataclass(frozen=True)
class FunnelExclusion:
    """Drop an attempt in which `event` happens between reaching from_step and to_step."""

    event: str
    from_step: int
    to_step: int
    filters: tuple[PropertyFilter, ...] = ()


@dataclass(frozen=True)
class FunnelBreakdown:
    """Split a funnel by an event property (with an attribution) or a person trait."""

    kind: Literal["event", "person"]
    property: str
    attribution: Attribution = "first_touch"
    step: int | None = None


@dataclass(frozen=True)
class EventFunnelSpec:
    steps: tuple[FunnelStep, ...]
    order: OrderMode = "ordered"
    window: timedelta = DEFAULT_CONVERSION_WINDOW
    exclusions: tuple[FunnelExclusion, ...] = ()
    breakdown: FunnelBreakdown | None = None
    interval: Literal["day", "week"] = "day"
    aggregate_by: str | None = None  # a trait naming the account; None = by end user
    people_limit: int = 100

    def check(self, workspace: Workspace) -> None:
        if not MIN_FUNNEL_STEPS <= len(self.steps) <= MAX_FUNNEL_STEPS:
            raise ReportInputError(
                "steps", f"A funnel has {MIN_FUNNEL_STEPS} to {MAX_FUNNEL_STEPS} steps."
            )
        if self.order not in ("ordered", "strict", "unordered"):
            raise ReportInputError("order", "Choose ordered, strict or unordered.")
        if self.window <= timedelta(0):
            raise ReportInputError("window", "The conversion window must be at least 1 second.")
        if self.window > MAX_CONVERSION_WINDOW:
            raise ReportInputError("window", "The conversion window is at most 90 days.")
        if self.interval not in ("day", "week"):
            raise ReportInputError("interval", "Choose day or week.")
        if not 0 <= self.people_limit <= 10_000:
            raise ReportInputError("people_limit", "Between 0 and 10000.")
        if self.aggregate_by is not None:
            check_property_name(self.aggregate_by, "aggregate_by")
        for index, step in enumerate(self.steps):
            for position, property_filter in enumerate(step.filters):
                property_filter.check(f"steps[{index}].filters[{position}]")
        n = len(self.steps)
        if len(self.exclusions) > MAX_FUNNEL_EXCLUSIONS:
            raise ReportInputError(
                "exclusions", f"A funnel has at most {MAX_FUNNEL_EXCLUSIONS} exclusions."
            )
        for index, exclusion in enumerate(self.exclusions):
            if not (0 <= exclusion.from_step < exclusion.to_step <= n - 1):
                raise ReportInputError(
                    f"exclusions[{index}].from_step",
                    f"An exclusion lies between two steps: 0 <= from_step < to_step <= {n - 1}.",
                )
            for position, property_filter in enumerate(exclusion.filters):
                property_filter.check(f"exclusions[{index}].filters[{position}]")
        if self.breakdown is not None:
            breakdown = self.breakdown
            if breakdown.kind not in ("event", "person"):
                raise ReportInputError("breakdown.kind", "Choose event or person.")
            check_property_name(breakdown.property, "breakdown.property")
            if breakdown.attribution not in ("first_touch", "last_touch", "all_steps", "step"):
                raise ReportInputError(
                    "breakdown.attribution", "Choose first_touch, last_touch, all_steps or step."
                )

            if breakdown.attribution == "step" and (
                breakdown.step is None or not 0 <= breakdown.step < n
            ):
                raise ReportInputError("breakdown.step", f"Name a step from 0 to {n - 1}.")

    def unknown_events(self, workspace: Workspace) -> list[str]:
        """The step and exclusion event names this workspace never recorded. A funnel counts
        them as done by nobody and warns about them (a typo shows, but is not fatal)."""
        names = {step.event for step in self.steps} | {e.event for e in self.exclusions}
        return sorted(names - known_event_names(workspace, names))


def known_event_names(workspace: Workspace, names: set[str]) -> set[str]:
    """Which of the names this workspace has recorded at least once (one indexed probe each)."""
    return {
        name
        for name in names
        if isinstance(name, str) and Event.objects.filter(workspace=workspace, name=name).exists()
    }


def check_known_event(workspace: Workspace, name: str | None, field_name: str) -> None:
    if name is None:
        return
    if not isinstance(name, str) or not name or not known_event_names(workspace, {name}):
        raise ReportInputError(
            field_name, f"No event named {name!r} was ever recorded in this workspace."
        )


def check_range(value: int, low: int, high: int, field_name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ReportInputError(field_name, f"Between {low} and {high}.")
