"""The journey rollups (analytics.models.JourneyDayRollup): read, recomputed where stale, and
added up for the journey funnel (analytics/report/journey_funnel.py) and milestone velocity
(analytics/report/milestone_velocity.py). The funnel's SQL is funnel_rows(); velocity's
durations SQL is in analytics/velocity.py."""

# SQL here is assembled from fixed fragments, table names and integer ids only; every value a
# caller supplies travels as a query parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.utils import timezone

from analytics import services, velocity
from analytics.models import JourneyDayRollup, JourneyStaleDay
from analytics.services import DayCounts
from analytics.sql import epoch_ms, fetch_all
from analytics.velocity import Durations
from onboarding.models import EndUser, Journey, JourneyProgress, Milestone, MilestoneCompletion

END_USER = EndUser._meta.db_table
PROGRESS = JourneyProgress._meta.db_table
COMPLETION = MilestoneCompletion._meta.db_table


def journey_milestones(journey: Journey) -> list[Milestone]:
    return list(journey.milestones.order_by("position", "id"))


def funnel_rows(
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


def day_counts(row: Sequence[Any], n: int) -> DayCounts:
    return DayCounts(
        started=int(row[1]),
        users=tuple(int(v or 0) for v in row[2 : 2 + n]),
        reached=tuple(int(v or 0) for v in row[2 + n : 2 + 2 * n]),
    )


def utc_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def runs(days: list[date], gap: int = 7) -> list[tuple[date, date]]:
    """Sorted days as (first, last) runs, joining runs fewer than `gap` days apart: one query
    per run recomputes them, re-reading a few fresh days rather than paying a round trip."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and (day - runs[-1][1]).days <= gap:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def hour_counts(hours: dict[str, Any], first_hour: int = 0, end_hour: int = 24) -> DayCounts:
    """Funnel counts of the people who started in these UTC hours of a rollup day."""
    return DayCounts(
        started=sum(hours["started"][first_hour:end_hour]),
        users=tuple(sum(by_hour[first_hour:end_hour]) for by_hour in hours["users"]),
        reached=tuple(sum(by_hour[first_hour:end_hour]) for by_hour in hours["reached"]),
    )


def rollup_days(
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
    for low, high in runs([day for day in days if day not in hours]):
        computed = dict.fromkeys(
            (low + timedelta(days=i) for i in range((high - low).days + 1)), empty
        )
        computed_hours = {day: services.empty_hours(len(ids)) for day in computed}
        for row in funnel_rows(
            journey,
            milestones,
            utc_midnight(low),
            utc_midnight(high + timedelta(days=1)),
            f"{epoch_ms('p.started_at')} / 3600000",
        ):
            day, hour = date(1970, 1, 1) + timedelta(days=int(row[0]) // 24), int(row[0]) % 24
            counts = day_counts(row, len(ids))
            day_hours = computed_hours[day]
            day_hours["started"][hour] = counts.started
            for index in range(len(ids)):
                day_hours["users"][index][hour] = counts.users[index]
                day_hours["reached"][index][hour] = counts.reached[index]
        for day, day_hours in computed_hours.items():
            computed[day] = hour_counts(day_hours)
        durations = (
            velocity.day_durations(
                journey_id=journey.pk, milestone_ids=ids, first=low, last=high, hours=computed_hours
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


def first_start(journey: Journey) -> datetime | None:
    return (
        JourneyProgress.objects.filter(journey=journey)
        .order_by("started_at")
        .values_list("started_at", flat=True)
        .first()
    )


def floor_hour(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def stored_days(
    journey: Journey, start: datetime, end: datetime
) -> tuple[datetime, tuple[date, date] | None]:
    """The first start that matters (nobody started before the journey's first start) and
    the UTC days of [start, end) the rollups answer: from the journey's first start day to the
    range's last day, at most yesterday (today keeps changing; it is counted live)."""
    first_started = first_start(journey)
    if first_started is None:
        return start, None
    start = max(start, first_started)
    first, last = start.astimezone(UTC).date(), last_stored_day(end)
    return start, ((first, last) if first <= last else None)


def last_stored_day(end: datetime) -> date:
    """The last UTC day a range ending at `end` reads from the rollups: its own last day, at
    most yesterday (today keeps changing; it is counted live)."""
    last_of_range = (end - timedelta(microseconds=1)).astimezone(UTC).date()
    return min(timezone.now().astimezone(UTC).date() - timedelta(days=1), last_of_range)


def funnel_totals(
    journey: Journey, milestones: list[Milestone], start: datetime, end: datetime, fresh: bool
) -> DayCounts:
    """Counts of everyone who started in [start, end): whole UTC days and the whole hours of
    partial days (a time zone's midnight is not UTC's) from the rollups; today and sub-hour
    edges (UTC+5:30) live."""
    n = len(milestones)
    stored = None
    if not fresh:
        start, stored = stored_days(journey, start, end)
    parts: list[DayCounts] = []
    live = [(start, end)]
    if stored is not None:
        first, last = stored
        live = [(max(start, utc_midnight(last + timedelta(days=1))), end)]
        for day, hours in rollup_days(journey, milestones, first, last).items():
            low = max(start, utc_midnight(day))
            high = min(end, utc_midnight(day + timedelta(days=1)))
            first_hour, end_hour = floor_hour(low), floor_hour(high)
            if first_hour < low:
                first_hour += timedelta(hours=1)
            if first_hour >= end_hour:
                live.append((low, high))
                continue
            parts.append(
                hour_counts(
                    hours,
                    (first_hour - utc_midnight(day)) // timedelta(hours=1),
                    (end_hour - utc_midnight(day)) // timedelta(hours=1),
                )
            )
            live += [(low, first_hour), (end_hour, high)]
    for low, high in live:
        if low < high:
            parts += [day_counts(row, n) for row in funnel_rows(journey, milestones, low, high)]
    return DayCounts(
        started=sum(p.started for p in parts),
        users=tuple(sum(p.users[i] for p in parts) for i in range(n)),
        reached=tuple(sum(p.reached[i] for p in parts) for i in range(n)),
    )


def duration_totals(
    journey: Journey, ids: list[int], first: date, last: date, wanted: set[date]
) -> dict[date, Durations]:
    """The running totals of durations (from `first`, the journey's first start day) of the
    wanted days, adding them up again from the days' own durations from the first day whose
    total was emptied (a day recomputed since) on. Should a stored total be emptied by another
    reader while this one reads, every total is added up from `first` instead."""
    n = len(ids)
    totals = duration_totals_add_up(journey, n, first, last, from_first=False)
    missing = [day for day in wanted if day not in totals]
    for day, data, summary in JourneyDayRollup.objects.filter(
        journey=journey, day__in=missing
    ).values_list("day", "durations_total", "durations_total_summary"):
        if data is not None:
            totals[day] = Durations.unpacked(data, summary, n)
    if not all(day in totals for day in wanted):
        totals = duration_totals_add_up(journey, n, first, last, from_first=True)
    return {day: totals[day] for day in wanted}


def duration_totals_add_up(
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
