"""Lifecycle: seven states and how people move through them, and over time, who was new,
returning, resurrecting or dormant in each period. Computed in the analytics store.

A person enters: visitor when first seen; signup / trial at signed_up_at; PQL at their first
pql_at; customer, renewed / retained and churned at their first configured event; active
customer at their first active event at or after becoming a customer, and only while they did
it within the last `active_days` (else they are counted as a customer). Their state is the one
entered last (ties go to the later state); time in a state runs until the next state they
entered. Medians are nearest-rank (the lower middle value for an even count).

Over time (PostHog's lifecycle, on the person's activity): a person is active in a period when
they did the activity event (any event when none is named) in it. Of the people active in a
period, "new" did it for the first time ever then, "returning" were active in the period
before too, "resurrecting" were not but had been active at some time earlier; "dormant" are
the people active in the period before and not in this one (drawn below the axis). Periods
are days, Monday weeks or months in the report's time zone; those touching the date range
are shown, and a period cut by the range's end counts only up to it.
"""

# SQL here is assembled from fixed fragments; every value travels as a query parameter.
# ruff: noqa: S608

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.utils import timezone

from analytics import store
from analytics.inputs import DateRange, ReportInputError, check_known_event
from analytics.models import AnalyticsSettings
from analytics.report.common import bucket, period_start, rate
from onboarding.models import LifecycleStage, Workspace

LIFECYCLE_ORDER = [stage.value for stage in LifecycleStage]
DAY_MS = 86_400_000


@dataclass(frozen=True)
class LifecycleState:
    stage: str
    label: str
    current: int  # people in this state now
    reached: int  # people who ever entered it
    conversion_to_next: float | None  # of those who entered it, share who entered the next one
    left: int  # people who moved on to a later-entered state
    mean_seconds_in_state: float | None  # among those who moved on
    median_seconds_in_state: float | None


@dataclass(frozen=True)
class LifecyclePeriod:
    period_start: date
    new: int
    returning: int
    resurrecting: int
    dormant: int  # active in the period before, not in this one (a positive count)


@dataclass(frozen=True)
class Lifecycle:
    states: tuple[LifecycleState, ...]
    rules: dict[str, Any]
    period: str = "day"
    activity_event: str | None = None
    over_time: tuple[LifecyclePeriod, ...] = ()


# Per person: the instant (ms) they entered each state, in LIFECYCLE_ORDER, NULL if never.
_ENTRIES = """
    SELECT p.person_id AS person_id,
           [toUnixTimestamp64Milli(p.first_seen_at),
            toUnixTimestamp64Milli(p.signed_up_at),
            toUnixTimestamp64Milli(p.pql_at),
            e.customer,
            if(e.active_last >= {active_from:Int64}, a.active_first, NULL),
            e.retained,
            e.churned] AS entered
    FROM (SELECT person_id, first_seen_at, signed_up_at, pql_at FROM people FINAL
          WHERE workspace_id = {workspace:UInt64}) AS p
    LEFT JOIN (
        SELECT person_id,
               minOrNullIf(toUnixTimestamp64Milli(timestamp), name = {customer:String}) AS customer,
               minOrNullIf(toUnixTimestamp64Milli(timestamp), name = {retained:String}) AS retained,
               minOrNullIf(toUnixTimestamp64Milli(timestamp), name = {churned:String}) AS churned,
               maxOrNullIf(toUnixTimestamp64Milli(timestamp), name = {active:String}) AS active_last
        FROM events
        WHERE workspace_id = {workspace:UInt64}
          AND name IN ({customer:String}, {retained:String}, {churned:String}, {active:String})
        GROUP BY person_id
    ) AS e ON e.person_id = p.person_id
    LEFT JOIN (
        -- The first active event at or after becoming a customer.
        SELECT ev.person_id AS person_id, min(toUnixTimestamp64Milli(ev.timestamp)) AS active_first
        FROM events AS ev
        INNER JOIN (
            SELECT person_id, min(timestamp) AS became FROM events
            WHERE workspace_id = {workspace:UInt64} AND name = {customer:String}
            GROUP BY person_id
        ) AS c ON c.person_id = ev.person_id
        WHERE ev.workspace_id = {workspace:UInt64} AND ev.name = {active:String}
          AND ev.timestamp >= c.became
        GROUP BY ev.person_id
    ) AS a ON a.person_id = p.person_id
"""

# No next state: a sentinel above any instant, so arrayMin of an empty choice has a value.
_NEVER = 2 * 10**18

# Per person and state: when they entered it, how long they stayed (until the next state they
# entered; NULL if none), whether they also entered the following state in the order, and
# whether it is their current state (the one entered last, the later one among ties).
_PER_STATE = f"""
    SELECT i, t, if(t IS NULL OR next_at >= {_NEVER}, NULL, next_at - t) AS stay, has_next,
           current = i AS is_current
    FROM (
        SELECT entered,
               arrayMap(x -> ifNull(x, -1), entered) AS known,
               length(entered) + 1 - indexOf(arrayReverse(known), arrayMax(known)) AS current
        FROM ({_ENTRIES})
    )
    ARRAY JOIN
        arrayEnumerate(entered) AS i,
        entered AS t,
        arrayMap(x -> arrayMin(arrayPushBack(arrayFilter(o -> o > ifNull(x, 0), known),
                                             toInt64({_NEVER}))), entered) AS next_at,
        arrayMap(k -> k < length(entered) AND entered[k + 1] IS NOT NULL,
                 arrayEnumerate(entered)) AS has_next
"""

_TOTALS = f"""
    SELECT i, countIf(t IS NOT NULL), countIf(t IS NOT NULL AND has_next), count(stay),
           sum(stay), quantileExactLow(0.5)(stay), countIf(is_current)
    FROM ({_PER_STATE})
    GROUP BY i ORDER BY i
    SETTINGS join_use_nulls = 1
"""


_CURRENT = f"""
    SELECT person_id, length(entered) + 1 - indexOf(arrayReverse(known), arrayMax(known))
    FROM (SELECT person_id, entered, arrayMap(x -> ifNull(x, -1), entered) AS known
          FROM ({_ENTRIES}))
    SETTINGS join_use_nulls = 1
"""


def _parameters(workspace: Workspace, now: datetime) -> dict[str, Any]:
    rules = AnalyticsSettings.for_workspace(workspace).lifecycle_rules()
    return {
        "workspace": workspace.pk,
        "active_from": int(now.timestamp() * 1000) - int(rules["active_days"]) * DAY_MS,
        "customer": rules["customer_event"],
        "retained": rules["retained_event"],
        "churned": rules["churned_event"],
        "active": rules["active_event"],
    }


def current_stages(*, workspace: Workspace, now: datetime | None = None) -> dict[int, str]:
    """Each person's state now, as the report counts them: person id -> LifecycleStage value."""
    rows = store.rows(_CURRENT, _parameters(workspace, now or timezone.now()))
    return {int(person): LIFECYCLE_ORDER[int(index) - 1] for person, index in rows}


def lifecycle(
    *,
    workspace: Workspace,
    now: datetime | None = None,
    date_range: DateRange | None = None,
    period: str = "day",
    activity_event: str | None = None,
) -> Lifecycle:
    """The states now; with a date range, also who was new / returning / resurrecting /
    dormant in each period of it."""
    now = now or timezone.now()
    over_time: tuple[LifecyclePeriod, ...] = ()
    if date_range is not None:
        over_time = lifecycle_over_time(
            workspace=workspace, date_range=date_range, period=period, activity_event=activity_event
        )
    rules = AnalyticsSettings.for_workspace(workspace).lifecycle_rules()
    rows = {int(row[0]): row for row in store.rows(_TOTALS, _parameters(workspace, now))}
    labels = dict(LifecycleStage.choices)
    states = []
    for index, stage in enumerate(LIFECYCLE_ORDER):
        _, reached, to_next, left, total_ms, median_ms, current = rows.get(
            index + 1, (index + 1, 0, 0, 0, None, None, 0)
        )
        states.append(
            LifecycleState(
                stage=stage,
                label=str(labels[stage]),
                current=int(current),
                reached=int(reached),
                conversion_to_next=(
                    rate(int(to_next), int(reached)) if index < len(LIFECYCLE_ORDER) - 1 else None
                ),
                left=int(left),
                mean_seconds_in_state=(
                    round(int(total_ms) / int(left) / 1000, 3) if left and total_ms else None
                ),
                median_seconds_in_state=None if not left else int(median_ms) / 1000,
            )
        )
    return Lifecycle(
        states=tuple(states),
        rules=rules,
        period=period,
        activity_event=activity_event,
        over_time=over_time,
    )


MAX_LIFECYCLE_PERIODS = 400
PERIODS = ("day", "week", "month")


def lifecycle_periods(date_range: DateRange, period: str) -> list[date]:
    """The starts of the periods that touch the range (the first may begin before it)."""
    first = {
        "day": date_range.date_from,
        "week": date_range.date_from.fromordinal(
            date_range.date_from.toordinal() - date_range.date_from.weekday()
        ),
        "month": date_range.date_from.replace(day=1),
    }[period]
    starts = []
    offset = 0
    while (start := period_start(first, offset, period)) <= date_range.date_to:
        starts.append(start)
        offset += 1
    return starts


# Per person: the periods they were active in (from the one before the first shown on) and
# the period of their first activity ever; then per shown period, who is in which state.
_OVER_TIME = """
    SELECT p, countIf(has(active, p) AND first = p),
           countIf(has(active, p) AND first < p AND has(active, before)),
           countIf(has(active, p) AND first < p AND NOT has(active, before)),
           countIf(NOT has(active, p) AND has(active, before))
    FROM (
        SELECT person_id, {first} AS first,
               groupUniqArrayIf({period}, timestamp >= {{since:DateTime64(3, 'UTC')}}) AS active
        FROM events
        WHERE workspace_id = {{workspace:UInt64}} AND {activity}
          AND timestamp < {{end:DateTime64(3, 'UTC')}}
        GROUP BY person_id
        HAVING length(active) > 0
    )
    ARRAY JOIN {{periods:Array(Date)}} AS p, {{befores:Array(Date)}} AS before
    GROUP BY p ORDER BY p
"""


def lifecycle_over_time(
    *,
    workspace: Workspace,
    date_range: DateRange,
    period: str = "day",
    activity_event: str | None = None,
) -> tuple[LifecyclePeriod, ...]:
    if period not in PERIODS:
        raise ReportInputError("period", "Choose day, week or month.")
    check_known_event(workspace, activity_event, "activity_event")
    starts = lifecycle_periods(date_range, period)
    if len(starts) > MAX_LIFECYCLE_PERIODS:
        raise ReportInputError(
            "date_from",
            f"At most {MAX_LIFECYCLE_PERIODS} {period}s: shorten the range or use longer periods.",
        )
    befores = [period_start(start, -1, period) for start in starts]
    sql = _OVER_TIME.format(
        first=bucket("min(timestamp)", period),
        period=bucket("timestamp", period),
        activity="name = {activity:String}" if activity_event else "1",
    )
    since = DateRange(befores[0], befores[0], date_range.timezone).start
    counts = {
        row[0]: row[1:]
        for row in store.rows(
            sql,
            {
                "workspace": workspace.pk,
                "tz": date_range.timezone,
                "since": since,
                "end": date_range.end,
                "activity": activity_event or "",
                "periods": starts,
                "befores": befores,
            },
        )
    }
    return tuple(
        LifecyclePeriod(start, *(int(n) for n in counts.get(start, (0, 0, 0, 0))))
        for start in starts
    )
