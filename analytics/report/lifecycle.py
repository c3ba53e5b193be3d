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
from analytics.report.common import period_start, rate
from analytics.report.local_periods import EPOCH_MS, period_number, period_number_sql, utc_offsets
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


# Per person: the instant (ms) they entered each state, in LIFECYCLE_ORDER, NULL if never. The
# events are read once: each configured event's first time, the last active event, and the
# first active event at or after becoming a customer, from the person's active instants (a
# second read of the active events joined with the customers cost half as much again).
_ENTRIES = """
    SELECT p.person_id AS person_id,
           [toUnixTimestamp64Milli(p.first_seen_at),
            toUnixTimestamp64Milli(p.signed_up_at),
            toUnixTimestamp64Milli(p.pql_at),
            e.customer,
            if(e.active_last >= {active_from:Int64}, e.active_first, NULL),
            e.retained,
            e.churned] AS entered
    FROM (SELECT person_id, first_seen_at, signed_up_at, pql_at FROM people FINAL
          WHERE workspace_id = {workspace:UInt64}) AS p
    LEFT JOIN (
        SELECT person_id, customer, retained, churned, active_last,
               if(active_last >= customer, arrayMin(arrayFilter(x -> x >= customer, actives)),
                  NULL) AS active_first
        FROM (
            SELECT person_id,
                   minOrNullIf(ms, name = {customer:String}) AS customer,
                   minOrNullIf(ms, name = {retained:String}) AS retained,
                   minOrNullIf(ms, name = {churned:String}) AS churned,
                   maxOrNullIf(ms, name = {active:String}) AS active_last,
                   groupArrayIf(ms, name = {active:String}) AS actives
            FROM (
                SELECT person_id, name, toUnixTimestamp64Milli(timestamp) AS ms FROM events
                WHERE workspace_id = {workspace:UInt64}
                  AND name IN ({customer:String}, {retained:String}, {churned:String},
                               {active:String})
            )
            GROUP BY person_id
        )
    ) AS e ON e.person_id = p.person_id
"""

# No next state: a sentinel above any instant, so arrayMin of an empty choice has a value.
_NEVER = 2 * 10**18


def _totals_sql(states: int) -> str:
    """Per state i (its position in LIFECYCLE_ORDER, from 1): people who entered it, who also
    entered the following state in the order, who moved on to a later-entered one (with the sum
    and the median of how long they stayed: until the next state they entered), and whose
    current state it is (the one entered last, the later one among ties): one row of six
    arrays, one position per state. Per person the states are plain columns, the next instant
    after each found by its place among the person's sorted instants, and aggregated position
    by position (-ForEach): one row per person and state with a lambda per state cost half the
    report at 10 M events, and a comparison of every state with every other one tripled the
    planning of the query (all its time on small data)."""
    positions = range(1, states + 1)
    known = [f"k{i}" for i in positions]
    columns = [f"entered[{i}] AS e{i}, ifNull(e{i}, -1) AS k{i}" for i in positions]
    latest = f"greatest({', '.join(known)})"
    current = " ".join(f"k{i} = latest, {i}," for i in reversed(positions[1:]))
    columns.append(f"{latest} AS latest, multiIf({current} 1) AS current")
    # The next state entered after one is the next larger instant among the person's.
    columns.append(f"arraySort(arrayDistinct([{', '.join(known)}])) AS instants")
    for i in positions:
        columns.append(
            f"indexOf(instants, k{i}) AS at{i}, if(e{i} IS NULL OR at{i} >= length(instants),"
            f" NULL, instants[at{i} + 1] - e{i}) AS stay{i}"
        )
    stays = ", ".join(f"stay{i}" for i in positions)
    entered = ", ".join(f"e{i}" for i in positions)
    to_next = ", ".join(
        f"toUInt8(e{i} IS NOT NULL AND e{i + 1} IS NOT NULL)" for i in positions[:-1]
    )
    currents = ", ".join(f"toUInt8(current = {i})" for i in positions)
    totals = [
        f"countForEach([{entered}])",
        f"sumForEach([{to_next}, 0])",
        f"countForEach([{stays}])",
        f"sumForEach([{stays}])",
        f"quantileExactLowForEach(0.5)([{stays}])",
        f"sumForEach([{currents}])",
    ]
    return f"""
        SELECT {", ".join(totals)}
        FROM (SELECT {", ".join(columns)} FROM ({_ENTRIES}))
        SETTINGS join_use_nulls = 1
    """


_TOTALS = _totals_sql(len(LIFECYCLE_ORDER))


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
    totals = store.rows(_TOTALS, _parameters(workspace, now))[0]
    labels = dict(LifecycleStage.choices)
    states = []
    for index, stage in enumerate(LIFECYCLE_ORDER):
        reached, to_next, left, total_ms, median_ms, current = (
            figure[index] if figure else None for figure in totals
        )
        reached, to_next, left, current = (int(n or 0) for n in (reached, to_next, left, current))
        states.append(
            LifecycleState(
                stage=stage,
                label=str(labels[stage]),
                current=current,
                reached=reached,
                conversion_to_next=(
                    rate(to_next, reached) if index < len(LIFECYCLE_ORDER) - 1 else None
                ),
                left=left,
                mean_seconds_in_state=(
                    round(int(total_ms) / left / 1000, 3) if left and total_ms else None
                ),
                median_seconds_in_state=None if not left else int(median_ms or 0) / 1000,
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


# Per person: the period of their first activity ever and the periods they were active in,
# from the one before the first shown on, in order (periods as numbers, local_periods.py). Each
# active period says what the person was in it (new: their first; returning: the period before
# was active too; resurrecting: it was not) and, when the next period is not active, that they
# are dormant in it; then people per (period, state). One row per active period, where asking
# each person about every shown period cost periods x people.
_OVER_TIME = """
    SELECT row.1 AS shown, countIf(row.2 = 0), countIf(row.2 = 1), countIf(row.2 = 2),
           countIf(row.2 = 3)
    FROM (
        SELECT arrayJoin(arrayConcat(
                   arrayMap((a, previous) -> (a, multiIf(a = first, 0, previous = a - 1, 1, 2)),
                            active, arrayPopBack(arrayPushFront(active, toInt64(-2)))),
                   arrayMap(a -> (a + 1, 3),
                            arrayFilter((a, next) -> next != a + 1, active,
                                        arraySlice(arrayPushBack(active, toInt64(-2)), 2)))
               )) AS row
        FROM (
            SELECT toInt64({first}) AS first,
                   arraySort(groupUniqArrayIf(toInt64({period}), ms >= {{since_ms:Int64}}))
                     AS active
            FROM (
                SELECT person_id, toUnixTimestamp64Milli(timestamp) - ({epoch}) AS ms
                FROM events
                WHERE workspace_id = {{workspace:UInt64}} AND {activity}
                  AND timestamp < {{end:DateTime64(3, 'UTC')}}
            )
            GROUP BY person_id
            HAVING length(active) > 0
        )
    )
    WHERE shown BETWEEN {{first_shown:Int64}} AND {{last_shown:Int64}}
    GROUP BY shown
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
    before = period_start(starts[0], -1, period)  # who was active then decides the first
    since = DateRange(before, before, date_range.timezone).start
    offsets = utc_offsets(date_range.timezone, since, date_range.end)
    sql = _OVER_TIME.format(
        first=period_number_sql("min(ms)", period, offsets),
        period=period_number_sql("ms", period, offsets),
        epoch=EPOCH_MS,
        activity="name = {activity:String}" if activity_event else "1",
    )
    numbers = {period_number(start, period): start for start in starts}
    rows = store.rows(
        sql,
        {
            "workspace": workspace.pk,
            "tz": date_range.timezone,
            "since_ms": int(since.timestamp() * 1000) - EPOCH_MS,
            "end": date_range.end,
            "activity": activity_event or "",
            "first_shown": min(numbers),
            "last_shown": max(numbers),
        },
    )
    counts = {numbers[int(row[0])]: row[1:] for row in rows}
    return tuple(
        LifecyclePeriod(start, *(int(n) for n in counts.get(start, (0, 0, 0, 0))))
        for start in starts
    )
