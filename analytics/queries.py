"""The nine reports, one function each, every one returning frozen dataclasses.

Numbers are computed in the database (aggregates, window functions) through the portable
fragments of analytics/sql.py, or, for the ad-hoc event funnel, in one streaming pass over only
the events that match (analytics/funnel_engine.py). Durations are whole milliseconds reported
as seconds; percentiles are nearest-rank (the smallest value with at least p % of the values at
or below it), which is exact and identical on SQLite and PostgreSQL.
"""

# SQL here is assembled from fixed fragments, table names and integer ids only; every value a
# caller supplies travels as a query parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models import (
    BooleanField,
    Case,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    OuterRef,
    Q,
    QuerySet,
    TextField,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Lower
from django.db.models.lookups import (
    Contains,
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    IsNull,
    LessThan,
    LessThanOrEqual,
    Regex,
)
from django.utils import timezone

from analytics import funnel_engine, services, velocity
from analytics.inputs import (
    DateRange,
    EventFunnelSpec,
    PropertyFilter,
    ReportInputError,
    check_property_name,
    check_range,
)
from analytics.models import AnalyticsSettings, JourneyDayRollup, JourneyStaleDay
from analytics.services import DayCounts
from analytics.sql import (
    epoch_ms,
    fetch_all,
    json_text,
    json_text_params,
    local_bucket,
)
from analytics.velocity import FROM_PREVIOUS, FROM_START, HISTOGRAM_BOUNDS, Durations
from onboarding.models import (
    Condition,
    EndUser,
    Event,
    Journey,
    JourneyProgress,
    Milestone,
    MilestoneCompletion,
    Segment,
    Workspace,
)

EVENT = Event._meta.db_table
END_USER = EndUser._meta.db_table
PROGRESS = JourneyProgress._meta.db_table
COMPLETION = MilestoneCompletion._meta.db_table


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000


def _mean_seconds(total_ms: int | None, count: int) -> float | None:
    return round(int(total_ms) / count / 1000, 3) if count and total_ms is not None else None


def _nearest_rank(values_ms: Sequence[int], percent: int) -> int | None:
    if not values_ms:
        return None
    ordered = sorted(values_ms)
    return ordered[max(0, (len(ordered) * percent + 99) // 100 - 1)]


def _histogram_index(ms: int) -> int:
    for index, (_, bound) in enumerate(HISTOGRAM_BOUNDS):
        if bound is not None and ms < bound * 1000:
            return index
    return len(HISTOGRAM_BOUNDS) - 1


@dataclass(frozen=True)
class HistogramBucket:
    label: str
    users: int


@dataclass(frozen=True)
class DurationStats:
    """Seconds; None when nobody is in the group."""

    users: int
    median: float | None
    p75: float | None
    p90: float | None
    mean: float | None


def _histogram(counts: dict[int, int]) -> tuple[HistogramBucket, ...]:
    return tuple(
        HistogramBucket(label=label, users=counts.get(index, 0))
        for index, (label, _) in enumerate(HISTOGRAM_BOUNDS)
    )


# --- 1. Journey funnel -------------------------------------------------------------------


@dataclass(frozen=True)
class JourneyFunnelStep:
    key: str  # "started" for the journey start, else the milestone's key
    name: str
    users: int  # reached this milestone and every earlier one (in any order)
    reached: int  # reached this milestone, whatever else they did
    conversion_from_previous: float | None
    conversion_from_start: float | None
    dropped: int  # reached the previous step but not this one


@dataclass(frozen=True)
class JourneyFunnelGroup:
    value: str
    steps: tuple[JourneyFunnelStep, ...]


@dataclass(frozen=True)
class JourneyFunnel:
    journey: str
    date_from: date
    date_to: date
    timezone: str
    steps: tuple[JourneyFunnelStep, ...]
    breakdown: str | None
    groups: tuple[JourneyFunnelGroup, ...]


def _journey_milestones(journey: Journey) -> list[Milestone]:
    return list(journey.milestones.order_by("position", "id"))


def _funnel_steps(
    milestones: list[Milestone], started: int, chain: Sequence[int], reached: Sequence[int]
) -> tuple[JourneyFunnelStep, ...]:
    steps = [
        JourneyFunnelStep(
            key="started",
            name="Journey started",
            users=started,
            reached=started,
            conversion_from_previous=_rate(started, started) if started else None,
            conversion_from_start=_rate(started, started) if started else None,
            dropped=0,
        )
    ]
    previous = started
    for milestone, users, any_order in zip(milestones, chain, reached, strict=True):
        steps.append(
            JourneyFunnelStep(
                key=milestone.key,
                name=milestone.name,
                users=int(users or 0),
                reached=int(any_order or 0),
                conversion_from_previous=_rate(int(users or 0), previous),
                conversion_from_start=_rate(int(users or 0), started),
                dropped=previous - int(users or 0),
            )
        )
        previous = int(users or 0)
    return tuple(steps)


def _funnel_rows(
    journey: Journey,
    milestones: list[Milestone],
    start: datetime,
    end: datetime,
    group_sql: str = "''",
    group_params: Sequence[Any] = (),
) -> list[tuple[Any, ...]]:
    """(group, started, users at each milestone..., reached each milestone...) for people
    whose journey started in [start, end), one row per group value."""
    flags = "".join(
        f", MAX(CASE WHEN mc.milestone_id = {int(m.pk)} THEN 1 ELSE 0 END) AS f{i}"
        for i, m in enumerate(milestones)
    )
    n = len(milestones)
    chains = [" * ".join(f"f{j}" for j in range(i + 1)) for i in range(n)]
    sums = "".join(f", SUM({c})" for c in chains) + "".join(f", SUM(f{i})" for i in range(n))
    join_end_user = f"JOIN {END_USER} u ON u.id = p.end_user_id" if "u." in group_sql else ""
    return fetch_all(
        f"""
        SELECT grp, COUNT(*) {sums} FROM (
            SELECT p.end_user_id, MAX({group_sql}) AS grp {flags}
            FROM {PROGRESS} p
            {join_end_user}
            LEFT JOIN {COMPLETION} mc
              ON mc.end_user_id = p.end_user_id AND mc.journey_id = p.journey_id
            WHERE p.journey_id = %s AND p.started_at >= %s AND p.started_at < %s
            GROUP BY p.end_user_id
        ) per_user
        GROUP BY grp ORDER BY grp
        """,
        [*group_params, journey.pk, start, end],
    )


def _day_counts(row: Sequence[Any], n: int) -> DayCounts:
    return DayCounts(
        started=int(row[1]),
        users=tuple(int(v or 0) for v in row[2 : 2 + n]),
        reached=tuple(int(v or 0) for v in row[2 + n : 2 + 2 * n]),
    )


def _utc_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _runs(days: list[date], gap: int = 7) -> list[tuple[date, date]]:
    """Sorted days as (first, last) runs, joining runs fewer than `gap` days apart: one query
    per run recomputes them, re-reading a few fresh days rather than paying a round trip."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and (day - runs[-1][1]).days <= gap:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _hour_counts(hours: dict[str, Any], first_hour: int = 0, end_hour: int = 24) -> DayCounts:
    """Funnel counts of the people who started in these UTC hours of a rollup day."""
    return DayCounts(
        started=sum(hours["started"][first_hour:end_hour]),
        users=tuple(sum(by_hour[first_hour:end_hour]) for by_hour in hours["users"]),
        reached=tuple(sum(by_hour[first_hour:end_hour]) for by_hour in hours["reached"]),
    )


def _rollup_days(
    journey: Journey, milestones: list[Milestone], first: date, last: date
) -> dict[date, dict[str, Any]]:
    """Per-hour funnel counts (JourneyDayRollup.hours) of each UTC start day first..last from
    the rollups, recomputing (and saving) the days that are missing, marked stale, or kept for
    another milestone order."""
    ids = [int(m.pk) for m in milestones]
    # Marks are read before anything is computed, so only those marks are cleared after it.
    marks = dict(
        JourneyStaleDay.objects.filter(journey=journey, day__range=(first, last)).values_list(
            "day", "marked_at"
        )
    )
    hours: dict[date, dict[str, Any]] = {}
    for day, milestone_ids, day_hours, summary in JourneyDayRollup.objects.filter(
        journey=journey, day__range=(first, last)
    ).values_list("day", "milestone_ids", "hours", "durations_summary"):
        # A row from before hours were kept has none: it is recomputed.
        if day not in marks and milestone_ids == ids and day_hours and summary:
            hours[day] = day_hours
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    empty = DayCounts(started=0, users=(0,) * len(ids), reached=(0,) * len(ids))
    for low, high in _runs([day for day in days if day not in hours]):
        computed = dict.fromkeys(
            (low + timedelta(days=i) for i in range((high - low).days + 1)), empty
        )
        computed_hours = {day: services.empty_hours(len(ids)) for day in computed}
        for row in _funnel_rows(
            journey,
            milestones,
            _utc_midnight(low),
            _utc_midnight(high + timedelta(days=1)),
            f"{epoch_ms('p.started_at')} / 3600000",
        ):
            day, hour = date(1970, 1, 1) + timedelta(days=int(row[0]) // 24), int(row[0]) % 24
            counts = _day_counts(row, len(ids))
            day_hours = computed_hours[day]
            day_hours["started"][hour] = counts.started
            for index in range(len(ids)):
                day_hours["users"][index][hour] = counts.users[index]
                day_hours["reached"][index][hour] = counts.reached[index]
        for day, day_hours in computed_hours.items():
            computed[day] = _hour_counts(day_hours)
        durations = (
            velocity.day_durations(
                journey_id=journey.pk,
                milestone_ids=ids,
                first=low,
                last=high,
                hours=computed_hours,
            )
            if ids
            else {}
        )
        services.journey_rollups_store(
            journey=journey,
            milestone_ids=ids,
            counts=computed,
            marks_seen=marks,
            hours=computed_hours,
            durations=durations,
        )
        hours.update(computed_hours)
    return {day: hours[day] for day in days}


def _first_start(journey: Journey) -> datetime | None:
    return (
        JourneyProgress.objects.filter(journey=journey)
        .order_by("started_at")
        .values_list("started_at", flat=True)
        .first()
    )


def _floor_hour(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _stored_days(
    journey: Journey, start: datetime, end: datetime
) -> tuple[datetime, tuple[date, date] | None]:
    """The first start that matters (nobody started before the journey's first start) and
    the UTC days of [start, end) the rollups answer: from the journey's first start day to the
    range's last day, at most yesterday (today keeps changing; it is counted live)."""
    first_start = _first_start(journey)
    if first_start is None:
        return start, None
    start = max(start, first_start)
    first, last = start.astimezone(UTC).date(), _last_stored_day(end)
    return start, ((first, last) if first <= last else None)


def _last_stored_day(end: datetime) -> date:
    """The last UTC day a range ending at `end` reads from the rollups: its own last day, at
    most yesterday (today keeps changing; it is counted live)."""
    last_of_range = (end - timedelta(microseconds=1)).astimezone(UTC).date()
    return min(timezone.now().astimezone(UTC).date() - timedelta(days=1), last_of_range)


def _funnel_totals(
    journey: Journey, milestones: list[Milestone], start: datetime, end: datetime, fresh: bool
) -> DayCounts:
    """Counts of everyone who started in [start, end): whole UTC days and the whole hours of
    partial days (a time zone's midnight is not UTC's) from the rollups; today and sub-hour
    edges (UTC+5:30) live."""
    n = len(milestones)
    stored = None
    if not fresh:
        start, stored = _stored_days(journey, start, end)
    parts: list[DayCounts] = []
    live = [(start, end)]
    if stored is not None:
        first, last = stored
        live = [(max(start, _utc_midnight(last + timedelta(days=1))), end)]
        for day, hours in _rollup_days(journey, milestones, first, last).items():
            low = max(start, _utc_midnight(day))
            high = min(end, _utc_midnight(day + timedelta(days=1)))
            first_hour, end_hour = _floor_hour(low), _floor_hour(high)
            if first_hour < low:
                first_hour += timedelta(hours=1)
            if first_hour >= end_hour:
                live.append((low, high))
                continue
            parts.append(
                _hour_counts(
                    hours,
                    (first_hour - _utc_midnight(day)) // timedelta(hours=1),
                    (end_hour - _utc_midnight(day)) // timedelta(hours=1),
                )
            )
            live += [(low, first_hour), (end_hour, high)]
    for low, high in live:
        if low < high:
            parts += [_day_counts(row, n) for row in _funnel_rows(journey, milestones, low, high)]
    return DayCounts(
        started=sum(p.started for p in parts),
        users=tuple(sum(p.users[i] for p in parts) for i in range(n)),
        reached=tuple(sum(p.reached[i] for p in parts) for i in range(n)),
    )


def journey_funnel(
    *,
    journey: Journey,
    date_range: DateRange,
    breakdown: str | None = None,
    breakdown_value: str | None = None,
    fresh: bool = False,
) -> JourneyFunnel:
    """People whose journey started in the date range: how many reached each milestone.

    A person counts at a milestone when they reached it and every earlier milestone (milestones
    may be reached in any order). `breakdown` is "lifecycle", "trait" (trait name in
    breakdown_value) or "segment" (segment key in breakdown_value: members vs non-members,
    evaluated in the database by segment_members).

    Without a breakdown, whole UTC days come from the journey rollups (JourneyDayRollup, kept
    current by analytics/receivers.py) and the rest is read live: the same numbers as a full
    live count, which `fresh=True` forces.
    """
    milestones = _journey_milestones(journey)
    n = len(milestones)
    group_params: list[Any] = []
    labels: tuple[str, ...] = ()
    if breakdown is None:
        group_sql = ""
    elif breakdown == "lifecycle":
        group_sql = "u.lifecycle_stage"
    elif breakdown == "trait":
        if not breakdown_value:
            raise ReportInputError("breakdown_value", "Name the trait to break down by.")
        check_property_name(breakdown_value, "breakdown_value")
        group_sql = f"COALESCE({json_text('u.traits')}, '(none)')"
        group_params += json_text_params(breakdown_value)
    elif breakdown == "segment":
        segment = Segment.objects.filter(
            workspace_id=journey.workspace_id, key=breakdown_value
        ).first()
        if segment is None:
            raise ReportInputError("breakdown_value", "No segment with this key in the workspace.")
        members, member_params = (
            segment_members(segment=segment).values("id").query.sql_with_params()
        )
        labels = (f"in {segment.key}", f"not in {segment.key}")
        group_sql = f"CASE WHEN p.end_user_id IN ({members}) THEN %s ELSE %s END"
        group_params += [*member_params, *labels]
    else:
        raise ReportInputError("breakdown", "Choose lifecycle, trait or segment.")
    if breakdown is None:
        totals = _funnel_totals(journey, milestones, date_range.start, date_range.end, fresh)
        by_group = {"": totals} if totals.started else {}
    else:
        by_group = {
            str(row[0]): _day_counts(row, n)
            for row in _funnel_rows(
                journey, milestones, date_range.start, date_range.end, group_sql, group_params
            )
        }
        empty = DayCounts(started=0, users=(0,) * n, reached=(0,) * n)
        by_group.update({label: empty for label in labels if label not in by_group})
    groups = tuple(
        JourneyFunnelGroup(
            value=value,
            steps=_funnel_steps(milestones, counts.started, counts.users, counts.reached),
        )
        for value, counts in sorted(by_group.items())
    )
    started = sum(group.steps[0].users for group in groups)
    chain_totals = [sum(g.steps[i + 1].users for g in groups) for i in range(n)]
    reached_totals = [sum(g.steps[i + 1].reached for g in groups) for i in range(n)]
    return JourneyFunnel(
        journey=journey.key,
        date_from=date_range.date_from,
        date_to=date_range.date_to,
        timezone=date_range.timezone,
        steps=_funnel_steps(milestones, started, chain_totals, reached_totals),
        breakdown=breakdown,
        groups=groups if breakdown else (),
    )


# --- Segments in the database -----------------------------------------------------------

# What Python's float() reads in a trait, short of its oddities ("inf", "1_000"); a trait
# that is not a number fails every numeric comparison, as in onboarding.segments.
_NUMBER_PATTERN = r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$"


class TraitText(Func):
    """One trait of an end user as text (NULL when missing or JSON null), spelled the same on
    SQLite and PostgreSQL: booleans 'true' / 'false', numbers as JSON writes them."""

    output_field = TextField()

    def __init__(self, name: str) -> None:
        super().__init__(F("traits"))
        self.trait_name = name

    def as_sql(  # type: ignore[override]
        self, compiler: Any, connection: Any, **extra_context: Any
    ) -> tuple[str, list[Any]]:
        column, params = compiler.compile(self.get_source_expressions()[0])
        return json_text(column), [*params, *json_text_params(self.trait_name)]


_COMPARISONS: dict[str, type[Any]] = {
    "gt": GreaterThan,
    "gte": GreaterThanOrEqual,
    "lt": LessThan,
    "lte": LessThanOrEqual,
}


def _trait_q(condition: Condition) -> Q:
    text = TraitText(condition.trait)
    lowered = Lower(text)
    expected = condition.value.lower()
    missing = Q(IsNull(text, True))
    match condition.operator:
        case "exists":
            return Q(IsNull(text, False))
        case "not_exists":
            return missing
        case "eq":
            return Q(Exact(lowered, expected))
        case "neq":
            # A missing trait satisfies only the negative comparisons.
            return missing | ~Q(Exact(lowered, expected))
        case "contains":
            return Q(Contains(lowered, expected))
        case "not_contains":
            return missing | ~Q(Contains(lowered, expected))
        case "in":
            return Q(In(lowered, [item.strip().lower() for item in condition.value.split(",")]))
    if condition.operator not in _COMPARISONS:
        return Q(pk__isnull=True)
    try:
        bound = float(condition.value)
    except ValueError:
        return Q(pk__isnull=True)
    # CASE keeps PostgreSQL from casting text that is not a number.
    number = Case(
        When(Regex(text, _NUMBER_PATTERN), then=Cast(text, FloatField())),
        default=None,
        output_field=FloatField(),
    )
    return Q(_COMPARISONS[condition.operator](number, bound))


def _condition_q(condition: Condition) -> Q:
    match condition.kind:
        case Condition.Kind.TRAIT:
            return _trait_q(condition)
        case Condition.Kind.LIFECYCLE:
            same = Q(lifecycle_stage=condition.value)
            return same if condition.operator == "is" else ~same
        case Condition.Kind.MILESTONE:
            completions = MilestoneCompletion.objects.filter(end_user=OuterRef("pk"))
            done = Q(Exists(completions.filter(milestone=condition.milestone_id)))
            return done if condition.operator == "completed" else ~done
        case Condition.Kind.EVENT:
            performed = Q(
                Exists(Event.objects.filter(end_user=OuterRef("pk"), name=condition.event_name))
            )
            return performed if condition.operator == "performed" else ~performed
    return Q(pk__isnull=True)


def segment_members(*, segment: Segment) -> QuerySet[EndUser]:
    """The workspace's end users in the segment, decided in the database by the same rules as
    onboarding.segments.segment_matches (traits compared as lower-case text, numbers only when
    the trait reads as one, milestones and events over all time)."""
    people = EndUser.objects.filter(workspace_id=segment.workspace_id)
    conditions = list(segment.conditions.all())
    if not conditions:
        return people
    combined = Q()
    for condition in conditions:
        q = _condition_q(condition)
        combined = combined & q if segment.match == Segment.Match.ALL else combined | q
    return people.filter(combined)


# --- 2. Milestone velocity ---------------------------------------------------------------


@dataclass(frozen=True)
class VelocityWeek:
    week_start: date
    started: int
    reached: int
    median_from_start: float | None


@dataclass(frozen=True)
class MilestoneVelocity:
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
class Velocity:
    journey: str
    date_from: date
    date_to: date
    timezone: str
    milestones: tuple[MilestoneVelocity, ...]


def _duration_totals(
    journey: Journey, ids: list[int], first: date, last: date, wanted: set[date]
) -> dict[date, Durations]:
    """The running totals of durations (from `first`, the journey's first start day) of the
    wanted days, adding them up again from the days' own durations from the first day whose
    total was emptied (a day recomputed since) on. Should a stored total be emptied by another
    reader while this one reads, every total is added up from `first` instead."""
    n = len(ids)
    totals = _duration_totals_add_up(journey, n, first, last, from_first=False)
    missing = [day for day in wanted if day not in totals]
    for day, data, summary in JourneyDayRollup.objects.filter(
        journey=journey, day__in=missing
    ).values_list("day", "durations_total", "durations_total_summary"):
        if data is not None:
            totals[day] = Durations.unpacked(data, summary, n)
    if not all(day in totals for day in wanted):
        totals = _duration_totals_add_up(journey, n, first, last, from_first=True)
    return {day: totals[day] for day in wanted}


def _duration_totals_add_up(
    journey: Journey, n: int, first: date, last: date, *, from_first: bool
) -> dict[date, Durations]:
    """Add up and save the running totals from the first day whose total is empty (or from
    `first`) on; the totals computed, by day (none when every total is stored)."""
    empty_from: date | None = first
    if not from_first:
        empty_from = (
            JourneyDayRollup.objects.filter(
                journey=journey, day__range=(first, last), durations_total_summary__isnull=True
            )
            .order_by("day")
            .values_list("day", flat=True)
            .first()
        )
    if empty_from is None:
        return {}
    running = Durations.empty(n)
    if empty_from > first:
        before = (
            JourneyDayRollup.objects.filter(journey=journey, day=empty_from - timedelta(days=1))
            .values_list("durations_total", "durations_total_summary")
            .first()
        )
        if before is None or before[0] is None:  # emptied meanwhile: start from the beginning
            empty_from = first
        else:
            running = Durations.unpacked(before[0], before[1], n)
    totals, seen = {}, {}
    for day, refreshed_at, data, summary, hours in (
        JourneyDayRollup.objects.filter(journey=journey, day__range=(empty_from, last))
        .order_by("day")
        .values_list("day", "refreshed_at", "durations", "durations_summary", "hours")
    ):
        running = running + velocity.DayDurations.unpacked(data, summary, hours, n).part()
        totals[day] = running
        seen[day] = refreshed_at
    services.journey_duration_totals_store(journey=journey, totals=totals, seen=seen)
    return totals


@dataclass(frozen=True)
class _Term:
    """One signed part of a span of starts: a running total up to a day, some hours of one
    day's own durations, or a live count of [low, high)."""

    sign: int
    kind: str  # "total", "day" (its UTC hours first..end) or "live"
    day: date | None = None
    hours: tuple[int, int] = (0, 24)
    low: datetime | None = None
    high: datetime | None = None


class _VelocityPlan:
    """Splits spans of journey starts into terms that read the fewest rows and the smallest
    live counts (see analytics/velocity.py), then adds them up."""

    def __init__(self, journey: Journey, ids: list[int], stored: tuple[date, date] | None):
        self.journey, self.ids, self.stored = journey, ids, stored
        self.started_by_hour: dict[int, int] = {}
        self.reached_by_hour: list[dict[int, int]] = [{} for _ in ids]

    def terms(self, low: datetime, high: datetime) -> list[_Term]:
        if low >= high:
            return []
        if self.stored is None:
            return [_Term(1, "live", low=low, high=high)]
        first, last = self.stored
        stored_low, stored_high = _utc_midnight(first), _utc_midnight(last) + velocity.DAY
        terms = []
        if high > stored_high:
            terms.append(_Term(1, "live", low=max(low, stored_high), high=high))
        low, high = max(low, stored_low), min(high, stored_high)
        if low >= high:
            return terms
        whole_from = low.astimezone(UTC).date()
        if _utc_midnight(whole_from) < low:
            whole_from += velocity.DAY
        whole_to = high.astimezone(UTC).date() - velocity.DAY  # last day ending by `high`
        if whole_from <= whole_to:
            terms.append(_Term(1, "total", day=whole_to))
            if whole_from > first:
                terms.append(_Term(-1, "total", day=whole_from - velocity.DAY))
            terms += self._partial(low, _utc_midnight(whole_from))
            terms += self._partial(_utc_midnight(whole_to) + velocity.DAY, high)
        else:
            terms += self._partial(low, high)
        return terms

    def _partial(self, low: datetime, high: datetime) -> list[_Term]:
        """Terms of less than a whole stored day (or of the parts of two neighbouring days):
        its whole UTC hours from the day's per-hour durations, the rest counted live."""
        if low >= high:
            return []
        midnight = _utc_midnight(low.astimezone(UTC).date())
        if high > midnight + velocity.DAY:  # crosses a midnight: each side on its own
            return self._partial(low, midnight + velocity.DAY) + self._partial(
                midnight + velocity.DAY, high
            )
        # A boundary inside an hour (UTC+5:30) is always counted live from the start of its
        # hour: the span before it is that live count, the span after it the stored hour less
        # the same count, so both sides of a week boundary share one live count.
        first_hour, end_hour = _floor_hour(low), _floor_hour(high)
        if first_hour == end_hour:
            return [_Term(1, "live", low=low, high=high)]
        hour_of_day = (first_hour - midnight) // velocity.HOUR
        terms = [
            _Term(
                1,
                "day",
                day=midnight.date(),
                hours=(hour_of_day, hour_of_day + (end_hour - first_hour) // velocity.HOUR),
            )
        ]
        if first_hour < low:
            terms.append(_Term(-1, "live", low=first_hour, high=low))
        if end_hour < high:
            terms.append(_Term(1, "live", low=end_hour, high=high))
        return terms

    def add_up(self, spans: list[list[_Term]]) -> list[Durations]:
        """The durations of each span's terms, reading every stored day and live count once."""
        n = len(self.ids)
        everything = [term for terms in spans for term in terms]
        pieces: list[tuple[datetime, datetime]] = sorted(
            {(t.low, t.high) for t in everything if t.low is not None and t.high is not None}
        )
        live = dict(
            zip(
                pieces,
                velocity.live_durations(
                    journey_id=self.journey.pk, milestone_ids=self.ids, pieces=pieces
                ),
                strict=True,
            )
        )
        # Per-hour counts of the live pieces after the stored days (they never overlap), for
        # the people on the way.
        stored_high = (
            _utc_midnight(self.stored[1]) + velocity.DAY if self.stored is not None else None
        )
        for (low, _), counts in live.items():
            if stored_high is None or low >= stored_high:
                for hour, people in counts.started_by_hour.items():
                    self.started_by_hour[hour] = self.started_by_hour.get(hour, 0) + people
                for index, reached in enumerate(counts.reached_by_hour):
                    for hour, people in reached.items():
                        by_hour = self.reached_by_hour[index]
                        by_hour[hour] = by_hour.get(hour, 0) + people
        totals: dict[date, Durations] = {}
        wanted = {t.day for t in everything if t.kind == "total" and t.day is not None}
        if self.stored is not None and wanted:
            totals = _duration_totals(self.journey, self.ids, *self.stored, wanted)
        days = {
            day: velocity.DayDurations.unpacked(data, summary, hours, n)
            for day, data, summary, hours in JourneyDayRollup.objects.filter(
                journey=self.journey,
                day__in=[t.day for t in everything if t.kind == "day"],
            ).values_list("day", "durations", "durations_summary", "hours")
        }
        results = []
        for terms in spans:
            result = Durations.empty(n)
            for term in terms:
                if term.low is not None and term.high is not None:
                    part = live[(term.low, term.high)].durations
                elif term.kind == "total" and term.day is not None:
                    part = totals[term.day]
                elif term.day is not None:
                    part = days[term.day].part(*term.hours)
                result = result + part if term.sign > 0 else result - part
            results.append(result)
        return results


def _hour_number(instant: datetime) -> int:
    """Hours since the epoch, as velocity's per-hour counts number them."""
    return int(instant.timestamp()) // 3600


def _on_the_way(
    journey: Journey,
    milestones: list[Milestone],
    start: datetime,
    end: datetime,
    plan: _VelocityPlan,
    horizon: timedelta,
    now: datetime,
) -> list[int]:
    """Per milestone, people who started in [start, end), have not reached it and whose
    window (or `horizon`) since their start is still open, i.e. who started after now - window:
    whole hours of start from per-hour counts (the rollups' on stored days, the live counts'
    after them), the partial hours at either end counted live."""
    stored_high = _utc_midnight(plan.stored[1]) + velocity.DAY if plan.stored is not None else start
    spans: list[tuple[int, int]] = []
    partial: list[list[tuple[datetime, datetime, bool]]] = []
    for milestone in milestones:
        cut = now - (milestone.window or horizon)
        low, open_low = (cut, True) if cut >= start else (start, False)
        first_hour = _floor_hour(low)
        if open_low or first_hour < low:  # the cut's own hour is partly out: counted live
            first_hour += velocity.HOUR
        # Live counts hold exactly the starts before `end`; a stored day's hours are whole.
        hours_end = end if end > stored_high else _floor_hour(end)
        if low >= end or first_hour >= hours_end:
            spans.append((0, 0))
            partial.append([(low, end, open_low)] if low < end else [])
            continue
        spans.append(
            (_hour_number(first_hour), _hour_number(hours_end - timedelta(microseconds=1)) + 1)
        )
        pieces = [(low, first_hour, open_low), (hours_end, end, False)]
        partial.append([piece for piece in pieces if piece[0] < piece[1]])
    counts = velocity.not_reached_count(
        journey_id=journey.pk, milestone_ids=plan.ids, pieces=partial
    )
    stored_hours = _hour_number(stored_high)
    summaries: dict[date, Any] = {}
    stored_spans = [(a, min(b, stored_hours)) for a, b in spans if a < min(b, stored_hours)]
    if stored_spans:
        epoch = date(1970, 1, 1)
        summaries = dict(
            JourneyDayRollup.objects.filter(
                journey=journey,
                day__range=(
                    epoch + timedelta(days=min(a for a, _ in stored_spans) // 24),
                    epoch + timedelta(days=(max(b for _, b in stored_spans) - 1) // 24),
                ),
            ).values_list("day", "hours")
        )
    for index, (hour_from, hour_to) in enumerate(spans):
        for hour in range(hour_from, hour_to):
            if hour < stored_hours:
                day_hours = summaries.get(date(1970, 1, 1) + timedelta(days=hour // 24))
                if day_hours:
                    counts[index] += (
                        day_hours["started"][hour % 24] - day_hours["reached"][index][hour % 24]
                    )
            else:
                counts[index] += plan.started_by_hour.get(hour, 0) - plan.reached_by_hour[
                    index
                ].get(hour, 0)
    return counts


def _duration_stats(durations: Durations, milestone: int, basis: int) -> DurationStats:
    users = durations.reached(milestone, basis)
    return DurationStats(
        users=users,
        median=_seconds(durations.nearest_rank_ms(milestone, basis, 50)),
        p75=_seconds(durations.nearest_rank_ms(milestone, basis, 75)),
        p90=_seconds(durations.nearest_rank_ms(milestone, basis, 90)),
        mean=_mean_seconds(durations.total_ms(milestone, basis), users),
    )


def milestone_velocity(
    *,
    journey: Journey,
    date_range: DateRange,
    horizon: timedelta = timedelta(days=14),
    now: datetime | None = None,
    fresh: bool = False,
) -> Velocity:
    """How fast people whose journey started in the range reach each milestone.

    Times run from the journey start (negative ones, a milestone reached before the journey
    began, count as 0) and from the person's completion of the previous milestone (only for
    those who reached the previous one first). Someone who has not reached a milestone is "on
    the way" while the milestone's window (or `horizon` when it has none) since their start is
    still open; they are not counted as failures.

    Percentiles are nearest-rank over durations floored to 3 significant digits, counted in
    the journey rollups (analytics/velocity.py): whole past UTC days come from running totals,
    whole hours of partial days from the days' hours, today and sub-hour edges are counted
    live; `fresh=True` counts everything live, with the same answer.
    """
    now = now or timezone.now()
    milestones = _journey_milestones(journey)
    if not milestones:
        return Velocity(
            journey.key, date_range.date_from, date_range.date_to, date_range.timezone, ()
        )
    ids = [int(m.pk) for m in milestones]
    start, end = date_range.start, date_range.end
    first_start = None if fresh else _first_start(journey)
    stored = None
    if first_start is not None:
        first, last = first_start.astimezone(UTC).date(), _last_stored_day(end)
        if first <= last and _utc_midnight(last) + velocity.DAY > start:
            _rollup_days(journey, milestones, first, last)
            stored = (first, last)
        start = max(start, first_start)  # nobody started before the first start
    weeks = []
    week = date_range.date_from - timedelta(days=date_range.date_from.weekday())
    while week <= date_range.date_to:
        low = datetime.combine(week, datetime.min.time(), tzinfo=date_range.zone)
        weeks.append((week, max(low, start), min(low + timedelta(days=7), end)))
        week += timedelta(days=7)
    plan = _VelocityPlan(journey, ids, stored)
    by_week = plan.add_up([plan.terms(low, high) for _, low, high in weeks])
    overall = Durations.empty(len(ids))
    for part in by_week:
        overall = overall + part
    on_the_way = _on_the_way(
        journey, milestones, max(date_range.start, start), end, plan, horizon, now
    )
    results = []
    for index, m in enumerate(milestones):
        reached = overall.reached(index)
        histogram_start = overall.histogram(index, FROM_START)
        histogram_previous = overall.histogram(index, FROM_PREVIOUS)
        results.append(
            MilestoneVelocity(
                key=m.key,
                name=m.name,
                started=overall.started,
                reached=reached,
                on_the_way=on_the_way[index],
                not_reached=overall.started - reached - on_the_way[index],
                completion_rate=_rate(reached, overall.started - on_the_way[index]),
                from_start=_duration_stats(overall, index, FROM_START),
                from_previous=_duration_stats(overall, index, FROM_PREVIOUS),
                histogram_from_start=_histogram(histogram_start),
                histogram_from_previous=_histogram(histogram_previous),
                weeks=tuple(
                    VelocityWeek(
                        week_start=week,
                        started=part.started,
                        reached=part.reached(index),
                        median_from_start=_seconds(part.nearest_rank_ms(index, FROM_START, 50)),
                    )
                    for (week, _, _), part in zip(weeks, by_week, strict=True)
                    if part.started
                ),
            )
        )
    return Velocity(
        journey=journey.key,
        date_from=date_range.date_from,
        date_to=date_range.date_to,
        timezone=date_range.timezone,
        milestones=tuple(results),
    )


# --- 4. Ad-hoc event funnel --------------------------------------------------------------


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


def _property_q(prefix: str, property_filter: PropertyFilter) -> Q:
    path = f"{prefix}__{property_filter.key}"
    match property_filter.operator:
        case "eq":
            return Q(**{path: property_filter.value})
        case "neq":
            return ~Q(**{path: property_filter.value}) | ~Q(
                **{f"{prefix}__has_key": property_filter.key}
            )
        case "contains":
            return Q(**{f"{path}__icontains": property_filter.value})
        case "is_set":
            return Q(**{f"{prefix}__has_key": property_filter.key})
        case "is_not_set":
            return ~Q(**{f"{prefix}__has_key": property_filter.key})
    return Q(**{f"{path}__{property_filter.operator}": property_filter.value})


def _event_q(name: str, filters: Sequence[PropertyFilter]) -> Q:
    q = Q(name=name)
    for property_filter in filters:
        q &= _property_q("properties", property_filter)
    return q


def _json_label(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def event_funnel(
    *, workspace: Workspace, spec: EventFunnelSpec, date_range: DateRange
) -> EventFunnel:
    """An ad-hoc funnel over events, computed in the analytics store (analytics/store_funnel.py),
    also when counted by an account trait (`aggregate_by`). See analytics/funnel_engine.py for
    the exact semantics."""
    # Imported here: the store's funnel builds on this module's result types.
    from analytics import store_funnel

    return store_funnel.event_funnel(workspace=workspace, spec=spec, date_range=date_range)


def reference_event_funnel(
    *, workspace: Workspace, spec: EventFunnelSpec, date_range: DateRange
) -> EventFunnel:
    """The funnel by the reference engine (analytics/funnel_engine.py), streaming only the
    events that match a step or an exclusion from the primary database. Entries (step 1, or any
    step for unordered funnels) must fall in the date range; later steps may follow up to the
    conversion window after the range ends."""
    spec.check(workspace)
    n = len(spec.steps)
    window_ms = int(spec.window.total_seconds() * 1000)
    step_qs = [_event_q(step.event, step.filters) for step in spec.steps]
    exclusion_qs = [_event_q(e.event, e.filters) for e in spec.exclusions]
    wanted = Q()
    for q in [*step_qs, *exclusion_qs]:
        wanted |= q
    base = Event.objects.filter(
        workspace=workspace,
        timestamp__gte=date_range.start,
        timestamp__lte=date_range.end + spec.window,
    )
    events: QuerySet[Event] = base if spec.order == "strict" else base.filter(wanted)
    if spec.order == "strict":
        entries = base.filter(step_qs[0], timestamp__lt=date_range.end)
        events = events.filter(end_user_id__in=entries.values("end_user_id"))
    annotations: dict[str, Any] = {
        f"s{i}": ExpressionWrapper(q, output_field=BooleanField()) for i, q in enumerate(step_qs)
    }
    annotations |= {
        f"x{i}": ExpressionWrapper(q, output_field=BooleanField())
        for i, q in enumerate(exclusion_qs)
    }
    columns = ["id", "end_user_id", "timestamp", *annotations]
    if spec.aggregate_by:
        annotations["actor"] = KeyTextTransform(spec.aggregate_by, "end_user__traits")
        columns.append("actor")
        events = events.filter(**{"end_user__traits__has_key": spec.aggregate_by})
    want_properties = spec.breakdown is not None and spec.breakdown.kind == "event"
    if want_properties:
        columns.append("properties")
    order = ["actor"] if spec.aggregate_by else ["end_user_id"]
    rows = events.annotate(**annotations).order_by(*order, "timestamp", "id").values_list(*columns)

    def stream() -> Iterator[tuple[Any, funnel_engine.FunnelEvent]]:
        for row in rows.iterator(chunk_size=5000):
            record = dict(zip(columns, row, strict=True))
            yield (
                _json_label(record["actor"]) if spec.aggregate_by else record["end_user_id"],
                funnel_engine.FunnelEvent(
                    ms=int(record["timestamp"].timestamp() * 1000),
                    id=record["id"],
                    timestamp=record["timestamp"],
                    steps=frozenset(i for i in range(n) if record[f"s{i}"]),
                    exclusions=frozenset(i for i in range(len(exclusion_qs)) if record[f"x{i}"]),
                    properties=record.get("properties"),
                    end_user_id=record["end_user_id"],
                ),
            )

    entry_from = int(date_range.start.timestamp() * 1000)
    entry_to = int(date_range.end.timestamp() * 1000)
    exclusions = [(e.from_step, e.to_step) for e in spec.exclusions]
    results: list[tuple[Any, funnel_engine.Attempt]] = []
    excluded = 0
    for actor, actor_events in funnel_engine.by_actor(stream()):
        attempt, had_attempt = funnel_engine.best_attempt(
            actor_events,
            n=n,
            order=spec.order,
            window_ms=window_ms,
            entry_from_ms=entry_from,
            entry_to_ms=entry_to,
            exclusions=exclusions,
        )
        if attempt is not None:
            results.append((actor, attempt))
        elif had_attempt:
            excluded += 1
    return _event_funnel_result(spec, date_range, results, excluded)


def _event_funnel_result(
    spec: EventFunnelSpec,
    date_range: DateRange,
    results: list[tuple[Any, funnel_engine.Attempt]],
    excluded: int,
) -> EventFunnel:
    n = len(spec.steps)
    labels: dict[Any, str] = {}
    if spec.aggregate_by:
        labels = {actor: str(actor) for actor, _ in results}
    else:
        ids = [actor for actor, _ in results]
        for offset in range(0, len(ids), 5000):
            labels |= dict(
                EndUser.objects.filter(id__in=ids[offset : offset + 5000]).values_list(
                    "id", "external_id"
                )
            )
    counts = [sum(1 for _, a in results if a.level > k) for k in range(n)]
    steps = []
    for k in range(n):
        durations = [
            a.reached[k].ms - a.reached[k - 1].ms for _, a in results if k > 0 and a.level > k
        ]
        converted = sorted(labels[actor] for actor, a in results if a.level > k)
        dropped = sorted(labels[actor] for actor, a in results if a.level == k) if k else []
        histogram: dict[int, int] = defaultdict(int)
        for ms in durations:
            histogram[_histogram_index(ms)] += 1
        previous = counts[k - 1] if k else counts[0]
        steps.append(
            EventFunnelStep(
                index=k,
                event=spec.steps[k].event,
                count=counts[k],
                conversion_from_previous=_rate(counts[k], previous),
                conversion_from_start=_rate(counts[k], counts[0]),
                dropped=previous - counts[k],
                median_seconds_to_convert=_seconds(_nearest_rank(durations, 50)),
                mean_seconds_to_convert=_mean_seconds(sum(durations), len(durations)),
                histogram=_histogram(histogram) if k else (),
                converted_people=tuple(converted[: spec.people_limit]),
                dropped_people=tuple(dropped[: spec.people_limit]),
            )
        )
    breakdown: tuple[EventFunnelGroup, ...] = ()
    if spec.breakdown is not None:
        values = _breakdown_values(spec, results)
        grouped: dict[str, list[int]] = defaultdict(lambda: [0] * n)
        for (_, attempt), value in zip(results, values, strict=True):
            for k in range(attempt.level):
                grouped[value][k] += 1
        breakdown = tuple(
            EventFunnelGroup(value=value, counts=tuple(c), conversion=_rate(c[-1], c[0]))
            for value, c in sorted(grouped.items(), key=lambda item: (-item[1][0], item[0]))
        )
    periods: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    zone = date_range.zone
    for _, attempt in results:
        day = attempt.entry.timestamp.astimezone(zone).date()
        if spec.interval == "week":
            day -= timedelta(days=day.weekday())
        periods[day][0] += 1
        periods[day][1] += int(attempt.level == n)
    return EventFunnel(
        order=spec.order,
        window_seconds=int(spec.window.total_seconds()),
        aggregate_by=spec.aggregate_by or "end_user",
        steps=tuple(steps),
        excluded=excluded,
        breakdown=breakdown,
        over_time=tuple(
            EventFunnelPeriod(period_start=d, entered=e, converted=c, conversion=_rate(c, e))
            for d, (e, c) in sorted(periods.items())
        ),
    )


def _breakdown_values(
    spec: EventFunnelSpec, results: list[tuple[Any, funnel_engine.Attempt]]
) -> list[str]:
    breakdown = spec.breakdown
    assert breakdown is not None  # noqa: S101
    if breakdown.kind == "person":
        user_ids = [a.entry.end_user_id for _, a in results]
        traits: dict[int, dict[str, Any]] = {}
        for offset in range(0, len(user_ids), 5000):
            traits |= dict(
                EndUser.objects.filter(id__in=user_ids[offset : offset + 5000]).values_list(
                    "id", "traits"
                )
            )
        return [
            _json_label((traits.get(a.entry.end_user_id) or {}).get(breakdown.property))
            for _, a in results
        ]
    values = []
    for _, attempt in results:
        source = funnel_engine.attributed_event(attempt, breakdown)
        properties = (source.properties if source else None) or {}
        values.append(_json_label(properties.get(breakdown.property)))
    return values


# --- 7. PQLs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PqlRow:
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
class PqlList:
    period_days: int
    rows: tuple[PqlRow, ...]


def pqls(
    *,
    workspace: Workspace,
    journey: Journey | None = None,
    date_range: DateRange | None = None,
    period_days: int = 30,
    min_score: int = 0,
    search: str = "",
    now: datetime | None = None,
    limit: int = 1000,
) -> PqlList:
    """People who became PQLs (pql_at set), when, their journey progress and an engagement
    score over the last `period_days`: logins + active days + 3 x core actions + 2 x features
    used + 2 x in-app message clicks (the login event is set per workspace)."""
    check_range(period_days, 1, 365, "period_days")
    check_range(limit, 1, 100_000, "limit")
    now = now or timezone.now()
    login_event = AnalyticsSettings.for_workspace(workspace).login_event
    since = now - timedelta(days=period_days)
    filters = ["p.workspace_id = %s", "p.pql_at IS NOT NULL"]
    params: list[Any] = [workspace.pk]
    if journey is not None:
        filters.append("p.journey_id = %s")
        params.append(journey.pk)
    if date_range is not None:
        filters += ["p.pql_at >= %s", "p.pql_at < %s"]
        params += [date_range.start, date_range.end]
    if search:
        filters.append("LOWER(u.external_id) LIKE %s")
        params.append(f"%{search.lower()}%")
    day = local_bucket("e.timestamp", "day")
    # One grouped pass per table over the PQLs' rows, not one subquery per person and figure.
    sql = f"""
        WITH pql AS (
            SELECT p.end_user_id, p.journey_id, p.pql_at, u.external_id, j.key AS journey_key
            FROM {PROGRESS} p
            JOIN {END_USER} u ON u.id = p.end_user_id
            JOIN {Journey._meta.db_table} j ON j.id = p.journey_id
            WHERE {" AND ".join(filters)}
        ),
        activity AS (
            SELECT e.end_user_id,
                   SUM(CASE WHEN e.name = %s THEN 1 ELSE 0 END) AS logins,
                   COUNT(DISTINCT {day}) AS active_days,
                   COUNT(DISTINCT CASE WHEN e.name NOT LIKE '$%%' THEN e.name END) AS features,
                   SUM(CASE WHEN e.name = '$message_clicked' THEN 1 ELSE 0 END) AS messages
            FROM {EVENT} e
            WHERE e.end_user_id IN (SELECT end_user_id FROM pql)
              AND e.timestamp >= %s AND e.timestamp < %s
            GROUP BY e.end_user_id
        ),
        done AS (
            SELECT mc.end_user_id, mc.journey_id, COUNT(*) AS done FROM {COMPLETION} mc
            WHERE mc.end_user_id IN (SELECT end_user_id FROM pql)
            GROUP BY mc.end_user_id, mc.journey_id
        ),
        core AS (
            SELECT mc.end_user_id, COUNT(*) AS core FROM {COMPLETION} mc
            WHERE mc.end_user_id IN (SELECT end_user_id FROM pql)
              AND mc.completed_at >= %s AND mc.completed_at < %s
            GROUP BY mc.end_user_id
        ),
        total AS (
            SELECT m.journey_id, COUNT(*) AS total FROM {Milestone._meta.db_table} m
            WHERE m.workspace_id = %s GROUP BY m.journey_id
        ),
        figures AS (
            SELECT pql.external_id, pql.journey_key, pql.pql_at,
                   COALESCE(done.done, 0) AS done, COALESCE(total.total, 0) AS total,
                   COALESCE(a.logins, 0) AS logins, COALESCE(a.active_days, 0) AS active_days,
                   COALESCE(core.core, 0) AS core, COALESCE(a.features, 0) AS features,
                   COALESCE(a.messages, 0) AS messages
            FROM pql
            LEFT JOIN activity a ON a.end_user_id = pql.end_user_id
            LEFT JOIN done ON done.end_user_id = pql.end_user_id
              AND done.journey_id = pql.journey_id
            LEFT JOIN core ON core.end_user_id = pql.end_user_id
            LEFT JOIN total ON total.journey_id = pql.journey_id
        )
        SELECT * FROM (
            SELECT figures.*,
                   logins + active_days + 3 * core + 2 * features + 2 * messages AS score
            FROM figures
        ) scored WHERE score >= %s
        ORDER BY score DESC, pql_at, external_id
        LIMIT %s
    """
    all_params = [
        *params,
        login_event,
        "UTC",
        since,
        now,
        since,
        now,
        workspace.pk,
        min_score,
        limit,
    ]
    rows = []
    for (
        external_id,
        key,
        pql_at,
        done,
        total,
        logins,
        days,
        core,
        features,
        messages,
        score,
    ) in fetch_all(sql, all_params):
        if isinstance(pql_at, str):
            pql_at = datetime.fromisoformat(pql_at)
        if timezone.is_naive(pql_at):
            # SQLite hands raw datetimes back naive; they are stored in UTC.
            pql_at = pql_at.replace(tzinfo=UTC)
        rows.append(
            PqlRow(
                external_id=external_id,
                journey=key,
                pql_at=pql_at,
                milestones_completed=int(done),
                milestones_total=int(total),
                progress_percent=int(done) * 100 // int(total) if total else 0,
                logins=int(logins),
                active_days=int(days),
                core_actions=int(core),
                features_used=int(features),
                message_engagement=int(messages),
                score=int(score),
            )
        )
    return PqlList(period_days=period_days, rows=tuple(rows))
