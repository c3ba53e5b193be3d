"""Typed results of the analytics reports, one per endpoint under /api/v1/analytics/ (the
numbers the dashboards show). Rates are fractions (0.5 is half) or None when nobody was in the
group; durations are seconds. `raw` on each object keeps the JSON it came from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from milepost_client.parsing import Result

# --- journey funnel (GET analytics/journey-funnel) ------------------------------------------


@dataclass(frozen=True)
class JourneyFunnelStep(Result):
    key: str  # "started" for the journey start, else the milestone's key
    name: str
    users: int  # reached this milestone and every earlier one (in any order)
    reached: int  # reached this milestone, whatever else they did
    conversion_from_previous: float | None
    conversion_from_start: float | None
    dropped: int  # reached the previous step but not this one


@dataclass(frozen=True)
class JourneyFunnelGroup(Result):
    value: str
    steps: tuple[JourneyFunnelStep, ...]


@dataclass(frozen=True)
class JourneyFunnel(Result):
    journey: str
    date_from: date
    date_to: date
    timezone: str
    steps: tuple[JourneyFunnelStep, ...]
    breakdown: str | None
    groups: tuple[JourneyFunnelGroup, ...]

    def step(self, key: str) -> JourneyFunnelStep:
        for step in self.steps:
            if step.key == key:
                return step
        raise KeyError(f"the funnel of {self.journey!r} has no step {key!r}")


# --- milestone velocity (GET analytics/velocity) --------------------------------------------


@dataclass(frozen=True)
class HistogramBucket(Result):
    label: str
    users: int


@dataclass(frozen=True)
class DurationStats(Result):
    """Seconds; None when nobody is in the group."""

    users: int
    median: float | None
    p75: float | None
    p90: float | None
    mean: float | None


@dataclass(frozen=True)
class VelocityWeek(Result):
    week_start: date
    started: int
    reached: int
    median_from_start: float | None


@dataclass(frozen=True)
class MilestoneVelocity(Result):
    key: str
    name: str
    started: int
    reached: int
    on_the_way: int  # not reached yet, still inside the milestone window / horizon
    not_reached: int  # the window / horizon passed without reaching it
    completion_rate: float | None  # reached / (started - on_the_way)
    from_start: DurationStats
    from_previous: DurationStats  # only people who reached the previous milestone first
    histogram_from_start: tuple[HistogramBucket, ...]
    histogram_from_previous: tuple[HistogramBucket, ...]
    weeks: tuple[VelocityWeek, ...]


@dataclass(frozen=True)
class Velocity(Result):
    journey: str
    date_from: date
    date_to: date
    timezone: str
    milestones: tuple[MilestoneVelocity, ...]

    def milestone(self, key: str) -> MilestoneVelocity:
        for milestone in self.milestones:
            if milestone.key == key:
                return milestone
        raise KeyError(f"the velocity of {self.journey!r} has no milestone {key!r}")


# --- walkthrough step funnel, step drop-off (GET analytics/walkthrough-funnel) -------------


@dataclass(frozen=True)
class WalkthroughStep(Result):
    index: int
    title: str
    viewed: int  # people who saw the step
    completed: int  # people who completed it
    dismissed: int  # people who dismissed the walkthrough on this step
    target_missing: int  # how many times the step's target was not found
    target_missing_users: int
    completion_rate: float | None


@dataclass(frozen=True)
class WalkthroughFunnel(Result):
    walkthrough: str
    date_from: date
    date_to: date
    started: int
    completed: int
    dismissed: int
    steps: tuple[WalkthroughStep, ...]


# --- event funnel (POST analytics/funnel) ---------------------------------------------------


@dataclass(frozen=True)
class EventFunnelStep(Result):
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
class EventFunnelGroup(Result):
    value: str
    counts: tuple[int, ...]
    conversion: float | None


@dataclass(frozen=True)
class EventFunnelPeriod(Result):
    period_start: date
    entered: int
    converted: int
    conversion: float | None


@dataclass(frozen=True)
class EventFunnel(Result):
    order: str
    window_seconds: int
    aggregate_by: str
    steps: tuple[EventFunnelStep, ...]
    excluded: int  # actors whose every attempt met an exclusion
    breakdown: tuple[EventFunnelGroup, ...]
    over_time: tuple[EventFunnelPeriod, ...]


# --- retention (GET analytics/retention) ----------------------------------------------------


@dataclass(frozen=True)
class RetentionCohort(Result):
    cohort_start: date
    size: int
    returned: tuple[int, ...]  # people returning in period 0, 1, … (per the mode)
    rates: tuple[float | None, ...]  # None: the period has not begun
    incomplete: tuple[bool, ...]  # the period has begun but not ended yet


@dataclass(frozen=True)
class Retention(Result):
    period: str
    mode: str
    cohort_type: str
    cohort_event: str | None
    return_event: str | None
    cohorts: tuple[RetentionCohort, ...]
    baseline: tuple[float | None, ...]  # returning / cohort size over cohorts old enough


# --- lifecycle (GET analytics/lifecycle) ----------------------------------------------------


@dataclass(frozen=True)
class LifecycleState(Result):
    stage: str
    label: str
    current: int  # people in this state now
    reached: int  # people who ever entered it
    conversion_to_next: float | None  # of those who entered it, the share who entered the next
    left: int  # people who moved on to a later-entered state
    mean_seconds_in_state: float | None  # among those who moved on
    median_seconds_in_state: float | None


@dataclass(frozen=True)
class Lifecycle(Result):
    states: tuple[LifecycleState, ...]
    rules: dict[str, Any]


# --- product qualified leads (GET analytics/pqls) -------------------------------------------


@dataclass(frozen=True)
class Pql(Result):
    external_id: str
    journey: str
    pql_at: datetime
    milestones_completed: int
    milestones_total: int
    progress_percent: int
    logins: int
    active_days: int
    core_actions: int  # milestones completed in the period
    features_used: int  # distinct product events (not starting with $) in the period
    message_engagement: int  # $message_clicked in the period
    score: int


@dataclass(frozen=True)
class PqlList(Result):
    period_days: int
    rows: tuple[Pql, ...]


# --- adoption matrix (GET analytics/adoption) -----------------------------------------------


@dataclass(frozen=True)
class AdoptionCell(Result):
    used: tuple[bool, ...]  # per feature, in the order asked
    users: int
    share: float | None


@dataclass(frozen=True)
class AdoptionMatrix(Result):
    features: tuple[str, ...]
    active_users: int
    cells: tuple[AdoptionCell, ...]  # all 2^n combinations, "used by none" first


# --- PAI validation (GET analytics/pai) -----------------------------------------------------


@dataclass(frozen=True)
class PaiThreshold(Result):
    threshold: int
    met: int  # did the key event at least `threshold` times in the window
    met_and_retained: int
    retained_total: int
    overlap: float | None  # met & retained / met | retained
    retention_of_met: float | None


@dataclass(frozen=True)
class PaiValidation(Result):
    key_event: str
    window_days: int
    retention_day: int
    signups: int
    retained: int
    thresholds: tuple[PaiThreshold, ...]
    best_threshold: int | None
    curve_days: tuple[int, ...]
    baseline_curve: tuple[float | None, ...]  # share of all signups active on day d
    best_curve: tuple[float | None, ...]  # same, among those who met the best threshold


AnyReport = (
    JourneyFunnel
    | Velocity
    | WalkthroughFunnel
    | EventFunnel
    | Retention
    | Lifecycle
    | PqlList
    | AdoptionMatrix
    | PaiValidation
)

# The result type of each report, by the slug of its endpoint.
BY_SLUG: dict[str, type[AnyReport]] = {
    "journey-funnel": JourneyFunnel,
    "velocity": Velocity,
    "walkthrough-funnel": WalkthroughFunnel,
    "funnel": EventFunnel,
    "retention": Retention,
    "lifecycle": Lifecycle,
    "pqls": PqlList,
    "adoption": AdoptionMatrix,
    "pai": PaiValidation,
}
