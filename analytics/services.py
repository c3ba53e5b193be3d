"""Writes of the analytics app."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils.timezone import now as timezone_now

from analytics.inputs import MAX_ADOPTION_FEATURES, ReportInputError, check_known_event
from analytics.models import JourneyDayRollup, JourneyStaleDay
from analytics.velocity import SLICES_PER_DAY, DayDurations, Durations
from onboarding.models import Condition, Journey, JourneyProgress, Segment, Workspace

STALE_DAY = JourneyStaleDay._meta.db_table
JOURNEY = Journey._meta.db_table


@transaction.atomic
def segment_create_from_adoption_cell(
    *, workspace: Workspace, features: Sequence[str], used: Sequence[bool], key: str, name: str
) -> Segment:
    """Save one cell of the adoption matrix as a segment for targeting: "performed" /
    "never performed" each feature (over all time, as onboarding's event conditions read)."""
    if not 1 <= len(features) <= MAX_ADOPTION_FEATURES:
        raise ReportInputError("features", f"Choose 1 to {MAX_ADOPTION_FEATURES} features.")
    if len(used) != len(features):
        raise ReportInputError("used", "Give one used / not used flag per feature.")
    for index, feature in enumerate(features):
        check_known_event(workspace, feature, f"features[{index}]")
    if Segment.objects.filter(workspace=workspace, key=key).exists():
        raise ReportInputError("key", "A segment with this key already exists.")
    segment = Segment.objects.create(
        workspace=workspace, key=key, name=name, match=Segment.Match.ALL
    )
    Condition.objects.bulk_create(
        Condition(
            segment=segment,
            position=position,
            kind=Condition.Kind.EVENT,
            event_name=feature,
            operator="performed" if was_used else "not_performed",
        )
        for position, (feature, was_used) in enumerate(zip(features, used, strict=True))
    )
    return segment


# --- Journey rollups ---------------------------------------------------------------------


def journey_slice_mark_stale(*, journey_id: int, started_at: datetime) -> None:
    """Mark the rollup slice (UTC day and quarter hour) of people whose journey started at
    `started_at` as out of date, after the commit that changed it. The scheduler counts the
    slice again within seconds; a report that reads it first does so itself."""
    instant = started_at.astimezone(UTC)
    _mark_stale(journey_id, instant.date(), (instant.hour * 60 + instant.minute) // 15)


def journey_day_mark_stale(*, journey_id: int, day: date) -> None:
    """Mark a whole UTC day of starts as out of date (bulk writes such as demo data)."""
    _mark_stale(journey_id, day, JourneyStaleDay.WHOLE_DAY)


def _mark_stale(journey_id: int, day: date, number: int) -> None:
    # One upsert on the (journey, day, slice) unique index, which writes nothing when the
    # journey is gone (its rollups went with it).
    with connection.cursor() as cursor:
        cursor.execute(  # table names only are interpolated; values are parameters
            f"""
            INSERT INTO {STALE_DAY} (journey_id, day, slice, marked_at)
            SELECT id, %s, %s, %s FROM {JOURNEY} WHERE id = %s
            ON CONFLICT (journey_id, day, slice) DO UPDATE SET marked_at = excluded.marked_at
            """,  # noqa: S608
            [
                day,
                number,
                connection.ops.adapt_datetimefield_value(timezone_now()),
                journey_id,
            ],
        )


def journey_progress_mark_stale(*, end_user_id: int, journey_id: int) -> None:
    """Mark stale the start slice of one person's journey: one lookup on the (end user,
    journey) unique index and one upsert. Signals carry ids only, so the row may be gone by now
    (the person erased); then its own deletion marked the slice."""
    started_at = (
        JourneyProgress.objects.filter(end_user_id=end_user_id, journey_id=journey_id)
        .values_list("started_at", flat=True)
        .first()
    )
    if started_at is not None:
        journey_slice_mark_stale(journey_id=journey_id, started_at=started_at)


@dataclass(frozen=True)
class DayCounts:
    """Funnel counts of the people whose journey started on one day (see JourneyDayRollup)."""

    started: int
    users: tuple[int, ...]
    reached: tuple[int, ...]


def empty_slices(milestones: int) -> dict[str, Any]:
    """JourneyDayRollup.slices of a day nobody started."""
    return {
        "started": [0] * SLICES_PER_DAY,
        "users": [[0] * SLICES_PER_DAY for _ in range(milestones)],
        "reached": [[0] * SLICES_PER_DAY for _ in range(milestones)],
    }


def journey_rollups_store(
    *,
    journey: Journey,
    milestone_ids: Sequence[int],
    slices: dict[date, dict[str, Any]],
    durations: dict[date, DayDurations],
    marks_seen: dict[tuple[date, int], datetime],
) -> None:
    """Save freshly counted days (whole, or with some slices counted again) and clear the stale
    marks that were read before counting them; a mark set while the count ran has a later
    `marked_at` and stays.

    The days' durations are saved beside their counts (an empty day has none), and the running
    totals of durations from the first saved day on are emptied: they are added up again from
    the days' own durations (journey_duration_totals_store)."""
    rows = []
    for day, day_slices in slices.items():
        day_durations = durations.get(day) or DayDurations.empty(len(milestone_ids))
        rows.append(
            JourneyDayRollup(
                journey=journey,
                day=day,
                started=sum(day_slices["started"]),
                milestones={
                    str(milestone_id): [sum(users), sum(reached)]
                    for milestone_id, users, reached in zip(
                        milestone_ids, day_slices["users"], day_slices["reached"], strict=True
                    )
                },
                milestone_ids=list(milestone_ids),
                slices=day_slices,
                durations=day_durations.packed(),
                durations_summary=day_durations.summary(),
                durations_total=None,
                durations_total_summary=None,
                refreshed_at=timezone_now(),
            )
        )
    with transaction.atomic():
        JourneyDayRollup.objects.bulk_create(
            rows,
            batch_size=500,
            update_conflicts=True,
            unique_fields=["journey", "day"],
            update_fields=[
                "started",
                "milestones",
                "milestone_ids",
                "slices",
                "durations",
                "durations_summary",
                "durations_total",
                "durations_total_summary",
                "refreshed_at",
            ],
        )
        if slices:
            JourneyDayRollup.objects.filter(journey=journey, day__gt=min(slices)).exclude(
                durations_total=None
            ).update(
                durations_total=None, durations_total_summary=None, refreshed_at=timezone_now()
            )
        seen = list(marks_seen.items())
        for offset in range(0, len(seen), 200):
            clear = Q()
            for (day, number), marked_at in seen[offset : offset + 200]:
                clear |= Q(day=day, slice=number, marked_at__lte=marked_at)
            JourneyStaleDay.objects.filter(clear, journey=journey).delete()


def journey_duration_totals_store(
    *, journey: Journey, totals: dict[date, Durations], seen: dict[date, datetime]
) -> None:
    """Save the running totals of durations of these days (JourneyDayRollup.durations_total),
    each only if its row is still as read (`refreshed_at` as seen): a day recomputed meanwhile
    emptied the totals from that day on, and they stay empty until summed again."""
    with transaction.atomic():
        for day, total in totals.items():
            JourneyDayRollup.objects.filter(
                journey=journey, day=day, refreshed_at=seen[day]
            ).update(durations_total=total.packed(), durations_total_summary=total.summary())
