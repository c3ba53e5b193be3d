"""The journey rollups (analytics.models.JourneyDayRollup): read, recomputed where stale, and
added up for the journey funnel (analytics/report/journey_funnel.py) and milestone velocity
(analytics/report/milestone_velocity.py). The funnel's SQL is funnel_rows(); velocity's
durations SQL is in analytics/velocity.py."""

# SQL here is assembled from fixed fragments, table names and integer ids only; every value a
# caller supplies travels as a query parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, Exists, OuterRef, When
from django.utils import timezone

from analytics import services, velocity
from analytics.models import JourneyDayRollup, JourneyDurationCut, JourneyStaleDay
from analytics.services import DayCounts
from analytics.sql import epoch_ms, fetch_all, is_postgresql
from analytics.velocity import DAY, SLICE, SLICES_PER_DAY, Durations
from onboarding.models import EndUser, Journey, JourneyProgress, Milestone, MilestoneCompletion

END_USER = EndUser._meta.db_table
PROGRESS = JourneyProgress._meta.db_table
COMPLETION = MilestoneCompletion._meta.db_table
# The first key of the advisory lock one journey's rollup refresh holds (PostgreSQL).
ROLLUP_LOCK = 0x4A52


def journey_milestones(journey: Journey) -> list[Milestone]:
    return list(journey.milestones.order_by("position", "id"))


def funnel_rows(
    journey: Journey,
    milestones: list[Milestone],
    spans: Sequence[tuple[datetime, datetime]],
    group_sql: str = "''",
    group_params: Sequence[Any] = (),
) -> list[tuple[Any, ...]]:
    """(group, started, users at each milestone..., reached each milestone...) for people
    whose journey started in one of the [start, end) spans, one row per group value."""
    flags = "".join(
        f", MAX(CASE WHEN mc.milestone_id = {int(m.pk)} THEN 1 ELSE 0 END) AS f{i}"
        for i, m in enumerate(milestones)
    )
    n = len(milestones)
    chains = [" * ".join(f"f{j}" for j in range(i + 1)) for i in range(n)]
    sums = "".join(f", SUM({c})" for c in chains) + "".join(f", SUM(f{i})" for i in range(n))
    join_end_user = f"JOIN {END_USER} u ON u.id = p.end_user_id" if "u." in group_sql else ""
    within = " OR ".join("(p.started_at >= %s AND p.started_at < %s)" for _ in spans)
    return fetch_all(
        f"""
        SELECT grp, COUNT(*) {sums} FROM (
            SELECT p.end_user_id, MAX({group_sql}) AS grp {flags}
            FROM {PROGRESS} p
            {join_end_user}
            LEFT JOIN {COMPLETION} mc
              ON mc.end_user_id = p.end_user_id AND mc.journey_id = p.journey_id
            WHERE p.journey_id = %s AND ({within})
            GROUP BY p.end_user_id
        ) per_user
        GROUP BY grp ORDER BY grp
        """,
        [*group_params, journey.pk, *(bound for span in spans for bound in span)],
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


def slice_counts(
    slices: dict[str, Any], first_slice: int = 0, end_slice: int = SLICES_PER_DAY
) -> DayCounts:
    """Funnel counts of the people who started in these slices of a rollup day."""
    return DayCounts(
        started=sum(slices["started"][first_slice:end_slice]),
        users=tuple(sum(per[first_slice:end_slice]) for per in slices["users"]),
        reached=tuple(sum(per[first_slice:end_slice]) for per in slices["reached"]),
    )


def slice_of(instant: datetime) -> tuple[date, int]:
    """The UTC day and the slice of that day (a quarter hour, 0-95) holding an instant."""
    utc = instant.astimezone(UTC)
    return utc.date(), (utc.hour * 60 + utc.minute) // 15


def floor_slice(instant: datetime) -> datetime:
    utc = instant.astimezone(UTC)
    return utc.replace(minute=utc.minute - utc.minute % 15, second=0, microsecond=0)


def _stale(
    journey: Journey, ids: list[int], first: date, last: date, marked_before: datetime | None
) -> tuple[set[date], dict[tuple[date, int], datetime], list[date], dict[date, set[int]]]:
    """The current rows' days of first..last, the stale marks (those first marked before
    `marked_before`, if given), the days to count whole and the slices of other days to count
    again. A row kept for another milestone order, or by hour before slices (its `slices`
    empty), is counted again whole."""
    marked = JourneyStaleDay.objects.filter(journey=journey, day__range=(first, last))
    if marked_before is not None:
        marked = marked.filter(first_marked_at__lt=marked_before)
    marks = {
        (day, number): marked_at
        for day, number, marked_at in marked.values_list("day", "slice", "marked_at")
    }
    current = {
        day
        for day, milestone_ids in JourneyDayRollup.objects.filter(
            journey=journey, day__range=(first, last), slices__isnull=False
        ).values_list("day", "milestone_ids")
        if milestone_ids == ids
    }
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    whole = [day for day in days if day not in current or (day, JourneyStaleDay.WHOLE_DAY) in marks]
    partial: dict[date, set[int]] = {}
    for day, number in marks:
        if day in current and day not in whole:
            partial.setdefault(day, set()).add(number)
    return current, marks, whole, partial


def rollup_days(
    journey: Journey,
    milestones: list[Milestone],
    first: date,
    last: date,
    *,
    every_mark: bool = False,
) -> None:
    """Make the rollups of each UTC start day first..last current, counting again (and saving)
    first what is stale: the slices marked after a commit changed them, and whole days that are
    missing or kept for another milestone order. Reads no counts when nothing is stale.

    A report (the default) leaves the slices first marked less than
    MILEPOST_ROLLUP_FRESH_SECONDS ago to the refresh that their commit woke, which counts them
    meanwhile (`every_mark`), and answers from the stored rows: exact up to that long ago."""
    ids = [int(m.pk) for m in milestones]
    marked_before = None if every_mark else report_marked_before()
    if _all_current(journey, ids, first, last, marked_before):
        return
    with transaction.atomic():
        _lock(journey)
        # Read under the lock: another refresh may have done the work meanwhile, and only the
        # marks read here, before counting, are cleared after it.
        counted_from = timezone.now()
        _, marks, whole, partial = _stale(journey, ids, first, last, marked_before)
        _count_whole_days(journey, milestones, whole, marks, counted_from)
        _count_slices(journey, milestones, partial, marks, counted_from)


def report_marked_before() -> datetime:
    """Marks first set before this a report counts itself; later ones are the refresh's."""
    return timezone.now() - timedelta(seconds=settings.MILEPOST_ROLLUP_FRESH_SECONDS)


def _all_current(
    journey: Journey, ids: list[int], first: date, last: date, marked_before: datetime | None
) -> bool:
    """Whether every day first..last has its rollup row, counted by quarter hour for these
    milestones and without a stale mark (first set before `marked_before`, if given): one
    query, a report's usual case."""
    marked = JourneyStaleDay.objects.filter(journey_id=OuterRef("journey_id"), day=OuterRef("day"))
    if marked_before is not None:
        marked = marked.filter(first_marked_at__lt=marked_before)
    rows = list(
        JourneyDayRollup.objects.filter(
            journey=journey, day__range=(first, last), slices__isnull=False
        )
        .annotate(marked=Exists(marked))
        .values_list("milestone_ids", "marked")
    )
    return len(rows) == (last - first).days + 1 and all(
        milestone_ids == ids and not is_marked for milestone_ids, is_marked in rows
    )


def _lock(journey: Journey) -> None:
    """Serialise the refreshes of one journey's rollups until the transaction ends, so an
    older count never overwrites a newer one. SQLite's transactions (IMMEDIATE) already hold
    the database's write lock."""
    if is_postgresql():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [ROLLUP_LOCK, journey.pk])


def _count_whole_days(
    journey: Journey,
    milestones: list[Milestone],
    whole: list[date],
    marks: dict[tuple[date, int], datetime],
    counted_from: datetime,
) -> dict[date, dict[str, Any]]:
    ids = [int(m.pk) for m in milestones]
    counted: dict[date, dict[str, Any]] = {}
    for low, high in runs(whole):
        days = [low + timedelta(days=i) for i in range((high - low).days + 1)]
        span = (utc_midnight(low), utc_midnight(high + timedelta(days=1)))
        day_slices = _slices_counted(journey, milestones, [span], days)
        durations = (
            velocity.day_durations(
                journey_id=journey.pk,
                milestone_ids=ids,
                spans=[span],
                starts={day: slices["started"] for day, slices in day_slices.items()},
            )
            if ids
            else {}
        )
        services.journey_rollups_store(
            journey=journey,
            milestone_ids=ids,
            slices=day_slices,
            durations=durations,
            marks_seen={key: at for key, at in marks.items() if key[0] in day_slices},
            counted_from=counted_from,
        )
        counted |= day_slices
    return counted


def _count_slices(
    journey: Journey,
    milestones: list[Milestone],
    partial: dict[date, set[int]],
    marks: dict[tuple[date, int], datetime],
    counted_from: datetime,
) -> dict[date, dict[str, Any]]:
    """Count the marked slices of stored days again and patch them into their rows."""
    if not partial:
        return {}
    ids = [int(m.pk) for m in milestones]
    spans = [
        (utc_midnight(day) + number * SLICE, utc_midnight(day) + (number + 1) * SLICE)
        for day, numbers in sorted(partial.items())
        for number in sorted(numbers)
        if number != JourneyStaleDay.WHOLE_DAY
    ]
    fresh = _slices_counted(journey, milestones, spans, list(partial))
    rows: dict[date, tuple[Any, Any, Any]] = {
        day: (slices, data, summary)
        for day, slices, data, summary in JourneyDayRollup.objects.filter(
            journey=journey, day__in=list(partial)
        ).values_list("day", "slices", "durations", "durations_summary")
    }
    patched: dict[date, dict[str, Any]] = {}
    for day, numbers in partial.items():
        slices = rows[day][0]
        for number in numbers:
            slices["started"][number] = fresh[day]["started"][number]
            for index in range(len(ids)):
                slices["users"][index][number] = fresh[day]["users"][index][number]
                slices["reached"][index][number] = fresh[day]["reached"][index][number]
        patched[day] = slices
    counted = (
        velocity.day_durations(
            journey_id=journey.pk,
            milestone_ids=ids,
            spans=spans,
            starts={day: slices["started"] for day, slices in patched.items()},
        )
        if ids and spans
        else {}
    )
    durations = {}
    for day, numbers in partial.items():
        stored = velocity.DayDurations.unpacked(rows[day][1], rows[day][2], patched[day], len(ids))
        fresh_day = counted.get(day) or velocity.DayDurations.empty(len(ids))
        fresh_day.started_by_slice = patched[day]["started"]
        durations[day] = stored.patched(fresh_day, sorted(numbers))
    services.journey_rollups_store(
        journey=journey,
        milestone_ids=ids,
        slices=patched,
        durations=durations,
        marks_seen={key: at for key, at in marks.items() if key[0] in patched},
        counted_from=counted_from,
    )
    return patched


def _slices_counted(
    journey: Journey,
    milestones: list[Milestone],
    spans: Sequence[tuple[datetime, datetime]],
    days: Sequence[date],
) -> dict[date, dict[str, Any]]:
    """Per-slice funnel counts of the people who started in the spans, for these days (slices
    outside the spans stay 0)."""
    n = len(milestones)
    counted = {day: services.empty_slices(n) for day in days}
    group = f"{epoch_ms('p.started_at')} / {velocity.SLICE_MS}"
    for row in funnel_rows(journey, milestones, spans, group):
        number = int(row[0])
        day = date(1970, 1, 1) + timedelta(days=number // SLICES_PER_DAY)
        number %= SLICES_PER_DAY
        counts = day_counts(row, n)
        slices = counted[day]
        slices["started"][number] = counts.started
        for index in range(n):
            slices["users"][index][number] = counts.users[index]
            slices["reached"][index][number] = counts.reached[index]
    return counted


def refresh_stale(*, limit: int = 50, journey_ids: Collection[int] | None = None) -> int:
    """Count again what commits marked stale, journey by journey (up to `limit` journeys, or
    these journeys), and add up their running totals of durations, so a report finds its
    rollups current and reads only stored rows. Run right after the commits that mark them
    (analytics/rollup_refresh.py) and every MILEPOST_ROLLUP_REFRESH_SECONDS; a report counts
    itself what was marked longer than MILEPOST_ROLLUP_FRESH_SECONDS ago. Returns the journeys
    refreshed."""
    marked_journeys = JourneyStaleDay.objects.values_list("journey_id", flat=True)
    if journey_ids is not None:
        marked_journeys = marked_journeys.filter(journey_id__in=list(journey_ids))
    journey_ids = list(marked_journeys.distinct().order_by("journey_id")[:limit])
    for journey in Journey.objects.filter(pk__in=journey_ids):
        marked = JourneyStaleDay.objects.filter(journey=journey).order_by("day")
        first_marked = marked.values_list("day", flat=True).first()
        last_marked = marked.reverse().values_list("day", flat=True).first()
        # A mark is written after its commit: one set by now belongs to a change that the
        # first start read next already sees.
        checked = timezone.now()
        first_started = first_start(journey)
        if first_marked is None or last_marked is None or first_started is None:
            # Nobody left to count.
            JourneyStaleDay.objects.filter(journey=journey, marked_at__lte=checked).delete()
            continue
        milestones = journey_milestones(journey)
        first = max(first_marked, first_started.astimezone(UTC).date())
        if first <= last_marked:
            rollup_days(journey, milestones, first, last_marked, every_mark=True)
        if milestones:
            last = max(last_marked, timezone.now().astimezone(UTC).date())
            stored_last = (
                JourneyDayRollup.objects.filter(journey=journey, day__lte=last)
                .order_by("-day")
                .values_list("day", flat=True)
                .first()
            )
            if stored_last is not None:
                duration_totals_add_up(
                    journey,
                    len(milestones),
                    first_started.astimezone(UTC).date(),
                    stored_last,
                    from_first=False,
                )
            duration_cuts_add_up(
                journey,
                len(milestones),
                first_started.astimezone(UTC).date(),
                JourneyDurationCut.objects.filter(
                    rollup__journey=journey, durations__isnull=True
                ).values_list("rollup__day", "slice"),
            )
        # Days before the first start are never read: their marks go.
        JourneyStaleDay.objects.filter(
            journey=journey, day__lt=first_started.astimezone(UTC).date(), marked_at__lte=checked
        ).delete()
    return len(journey_ids)


def first_start(journey: Journey) -> datetime | None:
    return (
        JourneyProgress.objects.filter(journey=journey)
        .order_by("started_at")
        .values_list("started_at", flat=True)
        .first()
    )


def stored_days(
    journey: Journey, start: datetime, end: datetime
) -> tuple[datetime, tuple[date, date] | None]:
    """The first start that matters (nobody started before the journey's first start) and
    the UTC days of [start, end) the rollups answer: from the journey's first start day to the
    range's last day, at most today."""
    first_started = first_start(journey)
    if first_started is None:
        return start, None
    # Nobody started before the first start: from the start of its slice is the same span.
    start = max(start, floor_slice(first_started))
    first, last = start.astimezone(UTC).date(), last_stored_day(end)
    return start, ((first, last) if first <= last else None)


def last_stored_day(end: datetime) -> date:
    """The last UTC day a range ending at `end` reads from the rollups: its own last day, at
    most today (later days have nobody in them yet)."""
    last_of_range = (end - timedelta(microseconds=1)).astimezone(UTC).date()
    return min(timezone.now().astimezone(UTC).date(), last_of_range)


def funnel_totals(
    journey: Journey, milestones: list[Milestone], start: datetime, end: datetime, fresh: bool
) -> DayCounts:
    """Counts of everyone who started in [start, end): whole UTC days from their rollup rows'
    totals, the whole slices of partial days (a time zone's midnight is not UTC's) from the
    days' slices; only an edge inside a quarter hour (no zone in use has one) is counted live."""
    n = len(milestones)
    stored = None
    if not fresh:
        start, stored = stored_days(journey, start, end)
    parts: list[DayCounts] = []
    live = [(start, end)]
    if stored is not None:
        first, last = stored
        rollup_days(journey, milestones, first, last)
        live = [(max(start, utc_midnight(last + timedelta(days=1))), end)]
        partial = {}
        for day in (first, last):
            low = max(start, utc_midnight(day))
            high = min(end, utc_midnight(day + timedelta(days=1)))
            if (low, high) != (utc_midnight(day), utc_midnight(day + timedelta(days=1))):
                partial[day] = (low, high)
        ids = [str(m.pk) for m in milestones]
        for day, started, per_milestone, slices in JourneyDayRollup.objects.filter(
            journey=journey, day__range=(first, last)
        ).values_list(
            "day",
            "started",
            "milestones",
            Case(When(day__in=list(partial), then="slices"), default=None),
        ):
            if day not in partial:
                parts.append(
                    DayCounts(
                        started=started,
                        users=tuple(per_milestone[i][0] for i in ids),
                        reached=tuple(per_milestone[i][1] for i in ids),
                    )
                )
                continue
            low, high = partial[day]
            first_slice, end_slice = floor_slice(low), floor_slice(high)
            if first_slice < low:
                first_slice += SLICE
            if first_slice >= end_slice:
                live.append((low, high))
                continue
            parts.append(
                slice_counts(
                    slices,
                    (first_slice - utc_midnight(day)) // SLICE,
                    (end_slice - utc_midnight(day)) // SLICE,
                )
            )
            live += [(low, first_slice), (end_slice, high)]
    now = timezone.now()
    # Nobody has started after now: a span wholly in the future needs no query.
    spans = [(low, high) for low, high in live if low < high and (fresh or low <= now)]
    if spans:
        parts += [day_counts(row, n) for row in funnel_rows(journey, milestones, spans)]
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
    # A total is only ever stored valid (counting a day again empties it and every later one),
    # so the wanted ones are read first and the days added up only when one of them is empty.
    totals = {
        day: Durations.unpacked(data, summary, n)
        for day, data, summary in JourneyDayRollup.objects.filter(
            journey=journey, day__in=wanted, durations_total__isnull=False
        ).values_list("day", "durations_total", "durations_total_summary")
    }
    if all(day in totals for day in wanted):
        return totals
    totals |= duration_totals_add_up(journey, n, first, last, from_first=False)
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
    for day, refreshed_at, data, summary, slices in (
        JourneyDayRollup.objects.filter(journey=journey, day__range=(empty_from, last))
        .order_by("day")
        .values_list("day", "refreshed_at", "durations", "durations_summary", "slices")
    ):
        running = running + velocity.DayDurations.unpacked(data, summary, slices, n).part()
        totals[day] = running
        seen[day] = refreshed_at
    services.journey_duration_totals_store(journey=journey, totals=totals, seen=seen)
    return totals


def duration_cuts(
    journey: Journey, n: int, first: date, wanted: set[tuple[date, int]]
) -> dict[tuple[date, int], Durations]:
    """The running totals of durations (from `first`, the journey's first start day) up to
    quarter hours inside stored days, by (day, slice): read where stored, added up and saved
    where missing or emptied (JourneyDurationCut)."""
    if not wanted:
        return {}
    # Days and slices are asked for apart (one lookup each, cheaper to build than one per cut);
    # a cut of the same slices on another of these days is rare and skipped.
    cuts = {
        (day, number): Durations.unpacked(data, summary, n)
        for day, number, data, summary in JourneyDurationCut.objects.filter(
            rollup__journey=journey,
            rollup__day__in={day for day, _ in wanted},
            slice__in={number for _, number in wanted},
            durations__isnull=False,
        ).values_list("rollup__day", "slice", "durations", "summary")
        if (day, number) in wanted
    }
    missing = wanted - cuts.keys()
    if missing:
        cuts |= duration_cuts_add_up(journey, n, first, missing)
    return cuts


def duration_cuts_add_up(
    journey: Journey, n: int, first: date, wanted: Iterable[tuple[date, int]]
) -> dict[tuple[date, int], Durations]:
    """Add up and save these cuts (day, slice): the running total of the day before plus the
    day's own durations of the slices before the cut. Under the journey's rollup lock, which
    every count of a day holds, so nothing they are added up from changes before they are
    saved; the running totals they start from are made current first."""
    wanted = sorted(set(wanted))
    if not wanted:
        return {}
    days = sorted({day for day, _ in wanted})
    with transaction.atomic():
        _lock(journey)
        duration_totals_add_up(journey, n, first, days[-1], from_first=False)
        before = {
            day + DAY: Durations.unpacked(data, summary, n)
            for day, data, summary in JourneyDayRollup.objects.filter(
                journey=journey, day__in=[day - DAY for day in days if day > first]
            ).values_list("day", "durations_total", "durations_total_summary")
        }
        rows = {
            day: (pk, velocity.DayDurations.unpacked(data, summary, slices, n))
            for pk, day, data, summary, slices in JourneyDayRollup.objects.filter(
                journey=journey, day__in=days
            ).values_list("pk", "day", "durations", "durations_summary", "slices")
        }
        cuts = {
            (day, number): (before[day] if day > first else Durations.empty(n))
            + rows[day][1].part(0, number)
            for day, number in wanted
            if day in rows
        }
        services.journey_duration_cuts_store(
            cuts=cuts, rollup_ids={day: pk for day, (pk, _) in rows.items()}
        )
    return cuts
