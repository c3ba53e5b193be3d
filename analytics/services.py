"""Writes of the analytics app."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q
from django.http import QueryDict
from django.utils.text import slugify
from django.utils.timezone import now as timezone_now

from analytics import rollup_refresh
from analytics.inputs import MAX_ADOPTION_FEATURES, ReportInputError, check_known_event
from analytics.models import JourneyDayRollup, JourneyDurationCut, JourneyStaleDay, SavedReport
from analytics.report import lifecycle
from analytics.velocity import SLICES_PER_DAY, DayDurations, Durations
from onboarding import batching
from onboarding.models import Condition, Journey, JourneyProgress, Segment, Workspace
from onboarding.services import end_user_lifecycle_stages_set
from onboarding.validation import MAX_SEGMENT_PEOPLE

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


@transaction.atomic
def segment_create_from_people(
    *, workspace: Workspace, external_ids: Sequence[str], name: str
) -> Segment:
    """Save a list of people (a funnel step's, a retention cell's) as a segment: one "is one of
    them" condition holding their external ids. Its key is the name's slug, made unique."""
    people = list(dict.fromkeys(external_ids))
    if not people:
        raise ReportInputError("people", "There is nobody to make a segment of.")
    if len(people) > MAX_SEGMENT_PEOPLE:
        raise ReportInputError(
            "people",
            f"A segment holds a list of at most {MAX_SEGMENT_PEOPLE:,} people; "
            f"this one has {len(people):,}.",
        )
    name = name.strip()
    if not name or len(name) > Segment._meta.get_field("name").max_length:  # type: ignore[operator]
        raise ReportInputError("name", "Name the segment in 1 to 120 characters.")
    base = slugify(name)[:70] or "people"
    key, number = base, 1
    while Segment.objects.filter(workspace=workspace, key=key).exists():
        number += 1
        key = f"{base}-{number}"
    segment = Segment.objects.create(
        workspace=workspace, key=key, name=name, match=Segment.Match.ALL
    )
    Condition.objects.create(
        segment=segment, kind=Condition.Kind.PEOPLE, operator="is_one_of", people=people
    )
    return segment


MAX_SAVED_REPORTS = 12  # tiles pinned to one workspace's analytics home
MAX_SAVED_QUERY = 4000  # characters of a saved report's query string
# Not part of a report's state: who looks, and what the page was asked to download.
_NOT_SAVED = {"workspace", "export", "download", "csrfmiddlewaretoken", "name", "rolling"}


def saved_report_pin(
    *,
    workspace: Workspace,
    report: str,
    name: str,
    query: QueryDict,
    rolling: bool,
    today: date,
    user: Any = None,
) -> SavedReport:
    """Pin a report's state (its dashboard's query string) to the workspace's analytics home.
    `rolling` keeps its date range as the last N days up to the day it is opened."""
    from analytics.reports import REPORTS  # the table of reports; it never imports services

    if report not in REPORTS:
        raise ReportInputError("report", f"No report {report!r}.")
    name = name.strip()
    if not 1 <= len(name) <= SavedReport._meta.get_field("name").max_length:  # type: ignore[operator]
        raise ReportInputError("name", "Name the report in 1 to 120 characters.")
    if SavedReport.objects.filter(workspace=workspace, name=name).exists():
        raise ReportInputError("name", f"A report named “{name}” is pinned already.")
    if SavedReport.objects.filter(workspace=workspace).count() >= MAX_SAVED_REPORTS:
        raise ReportInputError(
            "name", f"The home holds {MAX_SAVED_REPORTS} pinned reports: unpin one first."
        )
    kept = QueryDict(mutable=True)
    for key in query:
        if key not in _NOT_SAVED:
            kept.setlist(key, query.getlist(key))
    if rolling and kept.get("date_from") and kept.get("date_to"):
        try:
            first = date.fromisoformat(str(kept["date_from"]))
            last = date.fromisoformat(str(kept["date_to"]))
        except ValueError:
            raise ReportInputError("date_from", "Dates are YYYY-MM-DD.") from None
        del kept["date_from"], kept["date_to"]
        # Counted back from the last day: "the last N days" up to today, or ending N days ago.
        kept["days"] = str((last - first).days + 1)
        kept["days_before_today"] = str(max(0, (today - last).days))
    text = kept.urlencode()
    if len(text) > MAX_SAVED_QUERY:
        raise ReportInputError("query", f"A saved report's inputs are at most {MAX_SAVED_QUERY}.")
    return SavedReport.objects.create(
        workspace=workspace, name=name, report=report, query=text, created_by=user
    )


def saved_report_query(saved: SavedReport, today: date) -> QueryDict:
    """The saved report's query string as its dashboard reads it today."""
    query = QueryDict(saved.query, mutable=True)
    days = query.pop("days", None)
    before = query.pop("days_before_today", None)
    if days and days[0].isdigit():
        last = today - timedelta(days=int(before[0]) if before and before[0].isdigit() else 0)
        query["date_to"] = last.isoformat()
        query["date_from"] = (last - timedelta(days=int(days[0]) - 1)).isoformat()
    query["workspace"] = str(saved.workspace_id)
    return query


def saved_report_unpin(*, workspace: Workspace, saved_report_id: int) -> None:
    deleted, _ = SavedReport.objects.filter(workspace=workspace, pk=saved_report_id).delete()
    if not deleted:
        raise ReportInputError("saved_report", "No such pinned report in this workspace.")


def lifecycle_stages_refresh(*, workspace: Workspace, now: datetime | None = None) -> int:
    """Write each end user's current lifecycle state, as the lifecycle report counts it, into
    their lifecycle stage (admin's column, segments and breakdowns read it). Returns how many
    changed."""
    stages = lifecycle.current_stages(workspace=workspace, now=now)
    return end_user_lifecycle_stages_set(workspace=workspace, stages=stages)


_LIFECYCLE_REFRESH_LOCK = "analytics:lifecycle-refresh"


def lifecycle_stages_refresh_due() -> int:
    """After an export: refresh every workspace's stages, at most once per
    ANALYTICS_LIFECYCLE_REFRESH_SECONDS across processes (a cache key is the clock)."""
    if not cache.add(_LIFECYCLE_REFRESH_LOCK, "1", settings.ANALYTICS_LIFECYCLE_REFRESH_SECONDS):
        return 0
    return sum(
        lifecycle_stages_refresh(workspace=workspace) for workspace in Workspace.objects.all()
    )


# --- Journey rollups ---------------------------------------------------------------------


def journey_slice_mark_stale(*, journey_id: int, started_at: datetime) -> None:
    """Mark the rollup slice (UTC day and quarter hour) of people whose journey started at
    `started_at` as out of date, after the commit that changed it. The refresh it wakes
    (analytics/rollup_refresh.py) counts the slice again, usually within a second; a report
    that reads it first counts it itself only once MILEPOST_ROLLUP_FRESH_SECONDS have passed."""
    instant = started_at.astimezone(UTC)
    _mark_stale(journey_id, instant.date(), (instant.hour * 60 + instant.minute) // 15)


def journey_day_mark_stale(*, journey_id: int, day: date) -> None:
    """Mark a whole UTC day of starts as out of date (bulk writes such as demo data)."""
    _mark_stale(journey_id, day, JourneyStaleDay.WHOLE_DAY)


def _mark_stale(journey_id: int, day: date, number: int) -> None:
    # In a group commit's after-commit work, once per slice for the whole batch (its
    # completions mostly share a few slices), after the batch's other announcements.
    batching.once_per_batch(_mark_stale_many, (journey_id, day, number))


def _mark_stale_many(slices: Sequence[tuple[int, date, int]]) -> None:
    # One upsert per slice on the (journey, day, slice) unique index, which writes nothing
    # when the journey is gone (its rollups went with it); one commit for all (a lone upsert
    # is its own transaction: no BEGIN and COMMIT round trips around it). `first_marked_at`
    # stays as it was on a slice marked already: its oldest change not counted yet.
    marked_at = connection.ops.adapt_datetimefield_value(timezone_now())
    together = transaction.atomic(savepoint=False) if len(slices) > 1 else nullcontext()
    with together, connection.cursor() as cursor:
        for journey_id, day, number in slices:
            cursor.execute(  # table names only are interpolated; values are parameters
                f"""
                INSERT INTO {STALE_DAY} (journey_id, day, slice, marked_at, first_marked_at)
                SELECT id, %s, %s, %s, %s FROM {JOURNEY} WHERE id = %s
                ON CONFLICT (journey_id, day, slice) DO UPDATE SET marked_at = excluded.marked_at
                """,  # noqa: S608
                [day, number, marked_at, marked_at, journey_id],
            )
    rollup_refresh.refresh_soon({journey_id for journey_id, _, _ in slices})


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
    counted_from: datetime | None = None,
) -> None:
    """Save freshly counted days (whole, or with some slices counted again) and clear the stale
    marks that were read before counting them; a mark set while the count ran has a later
    `marked_at` and stays, its changes not counted since `counted_from` (when the marks were
    read: what committed before, the count saw).

    The days' durations are saved beside their counts (an empty day has none), and the running
    totals of durations from the first saved day on are emptied, those inside days
    (JourneyDurationCut) too: they are added up again from the days' own durations
    (journey_duration_totals_store, journey_duration_cuts_store)."""
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
            JourneyDurationCut.objects.filter(
                rollup__journey=journey, rollup__day__gte=min(slices)
            ).exclude(durations=None).update(durations=None, summary=None)
        seen = list(marks_seen.items())
        for offset in range(0, len(seen), 200):
            clear, counted = Q(), Q()
            for (day, number), marked_at in seen[offset : offset + 200]:
                clear |= Q(day=day, slice=number, marked_at__lte=marked_at)
                counted |= Q(day=day, slice=number)
            JourneyStaleDay.objects.filter(clear, journey=journey).delete()
            if counted_from is not None:
                # A mark that moved on while the count ran waits for the next count with
                # changes from after the count began only: not yet a reader's work.
                JourneyStaleDay.objects.filter(
                    counted, journey=journey, first_marked_at__lt=counted_from
                ).update(first_marked_at=counted_from)


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


def journey_duration_cuts_store(
    *, cuts: dict[tuple[date, int], Durations], rollup_ids: dict[date, int]
) -> None:
    """Save running totals of durations up to quarter hours inside rollup days (`cuts` by day
    and slice; `rollup_ids` the days' JourneyDayRollup ids). The caller holds the journey's
    rollup lock (journey_rollups.duration_cuts_add_up) and counted them from rows read under
    it, so no count of a day up to a cut can have emptied it meanwhile."""
    JourneyDurationCut.objects.bulk_create(
        [
            JourneyDurationCut(
                rollup_id=rollup_ids[day],
                slice=number,
                durations=total.packed(),
                summary=total.summary(),
            )
            for (day, number), total in cuts.items()
        ],
        update_conflicts=True,
        unique_fields=["rollup", "slice"],
        update_fields=["durations", "summary"],
    )
