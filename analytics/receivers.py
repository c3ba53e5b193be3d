"""Keep the journey rollups current from what onboarding/ recorded.

A receiver marks the (journey, UTC start day, quarter hour of start) stale after commit with one
indexed upsert and never scans, and wakes the refresh (analytics/rollup_refresh.py), which
counts the marked slices again, usually within a second; a report counts a mark itself only
once it is older than MILEPOST_ROLLUP_FRESH_SECONDS (analytics/journey_rollups.py). onboarding's
domain signals
cover new starts and completions. Erasures, deleted completions and a journey start moved to
a signup time learnt later send none, so Django's model signals on JourneyProgress and
MilestoneCompletion cover those (marked after commit, when a cascade has finished).

`pql_reached` and `events_recorded` change no rollup number (PQL and event reports read the
recorded rows), so nothing listens to them here.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, pre_save
from django.dispatch import receiver

from analytics import services
from analytics.models import StorePurge
from onboarding.models import EndUser, JourneyProgress, MilestoneCompletion
from onboarding.signals import events_purged, journey_started, milestone_completed


@receiver(journey_started, dispatch_uid="analytics.journey_started")
def on_journey_started(
    sender: Any, *, journey_id: int, started_at: datetime, **kwargs: Any
) -> None:
    services.journey_slice_mark_stale(journey_id=journey_id, started_at=started_at)


@receiver(milestone_completed, dispatch_uid="analytics.milestone_completed")
def on_milestone_completed(
    sender: Any,
    *,
    end_user_id: int,
    journey_id: int,
    journey_started_at: datetime | None = None,
    **kwargs: Any,
) -> None:
    if journey_started_at is not None:  # the write path knows it: no lookup
        services.journey_slice_mark_stale(journey_id=journey_id, started_at=journey_started_at)
    else:
        services.journey_progress_mark_stale(end_user_id=end_user_id, journey_id=journey_id)


@receiver(pre_save, sender=JourneyProgress, dispatch_uid="analytics.progress_moved")
def on_progress_saving(
    sender: Any, instance: JourneyProgress, update_fields: Any = None, **kwargs: Any
) -> None:
    # Only an existing row whose start may move matters; pql_at / completed_at saves skip.
    if instance.pk is None or (update_fields is not None and "started_at" not in update_fields):
        return
    before = (
        JourneyProgress.objects.filter(pk=instance.pk).values_list("started_at", flat=True).first()
    )
    if before is None or before == instance.started_at:
        return
    for started_at in (before, instance.started_at):
        transaction.on_commit(
            partial(
                services.journey_slice_mark_stale,
                journey_id=instance.journey_id,
                started_at=started_at,
            )
        )


@receiver(post_delete, sender=JourneyProgress, dispatch_uid="analytics.progress_deleted")
def on_progress_deleted(sender: Any, instance: JourneyProgress, **kwargs: Any) -> None:
    transaction.on_commit(
        partial(
            services.journey_slice_mark_stale,
            journey_id=instance.journey_id,
            started_at=instance.started_at,
        )
    )


@receiver(post_delete, sender=MilestoneCompletion, dispatch_uid="analytics.completion_deleted")
def on_completion_deleted(sender: Any, instance: MilestoneCompletion, **kwargs: Any) -> None:
    transaction.on_commit(
        partial(
            services.journey_progress_mark_stale,
            end_user_id=instance.end_user_id,
            journey_id=instance.journey_id,
        )
    )


@receiver(post_delete, sender=EndUser, dispatch_uid="analytics.end_user_deleted")
def on_end_user_deleted(sender: Any, instance: EndUser, **kwargs: Any) -> None:
    # In the erasure's own transaction: the store forgets the person whenever it can.
    StorePurge.objects.create(workspace_id=instance.workspace_id, end_user_id=instance.pk)


@receiver(events_purged, dispatch_uid="analytics.events_purged")
def on_events_purged(sender: Any, *, workspace_id: int, before: datetime, **kwargs: Any) -> None:
    # Sent after every retention pass: one waiting request per workspace, moved to the latest
    # instant, so the store deletes what the primary database no longer keeps.
    waiting = StorePurge.objects.filter(
        workspace_id=workspace_id, end_user_id=None, before__isnull=False
    )
    if not waiting.update(before=before):
        StorePurge.objects.create(workspace_id=workspace_id, before=before)
