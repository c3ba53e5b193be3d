"""Peer comparison on the progress bar: "Faster than 70 % of people who started this week".

For one end user and one journey: their furthest milestone (the last one in journey order they
reached) and how long it took from their journey start. Their peers are the other people whose
journey started in the same week (Monday to Sunday in the workspace's time zone) and who
reached that milestone too; the share of those peers who took longer is the percentage. The
peers' durations come from the velocity rollups (analytics/velocity.py: grains of 3
significant digits, so a tie within 0.1 % counts as "not slower").

"Teams" are people here: the rollups count end users, and a workspace names no account trait
the widget could group by. The comparison is sent only with at least PEER_MINIMUM peers (fewer
would expose a handful of colleagues and mean little) and only when the user is at least as
fast as half of them (a progress bar congratulates; it does not shame). Each (journey, week)
cohort is read once per PEER_CACHE_SECONDS per process, so a welcome costs a dictionary look-up.
"""

from __future__ import annotations

import time
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from analytics.report.milestone_velocity import cohort_durations
from analytics.velocity import FROM_START, Durations, duration_grain, grains
from onboarding.models import EndUser, Journey

PEER_MINIMUM = 10
PEER_SHOW_FROM_PERCENT = 50
PEER_CACHE_SECONDS = 600.0


@dataclass(frozen=True)
class _Cohort:
    milestone_keys: tuple[str, ...]
    durations: Durations


_COHORTS: dict[tuple[int, date], tuple[float, _Cohort]] = {}


def _week_start(instant: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    local = instant.astimezone(zone)
    monday = local.date() - timedelta(days=local.weekday())
    return datetime.combine(monday, datetime.min.time(), tzinfo=zone)


def _cohort(journey_id: int, week_start: datetime) -> _Cohort | None:
    cache_key = (journey_id, week_start.date())
    cached = _COHORTS.get(cache_key)
    now = time.monotonic()
    if cached is not None and now - cached[0] < PEER_CACHE_SECONDS:
        return cached[1]
    journey = Journey.objects.filter(pk=journey_id).first()
    if journey is None:
        return None
    milestones, durations = cohort_durations(
        journey=journey, start=week_start, end=week_start + timedelta(days=7)
    )
    cohort = _Cohort(tuple(m.key for m in milestones), durations)
    _COHORTS[cache_key] = (now, cohort)
    return cohort


def _ms(instant: datetime) -> int:
    return int(instant.timestamp()) * 1000 + instant.microsecond // 1000


def cohorts_forget() -> None:
    """Drop this process's cohorts (tests, and after a bulk import of history)."""
    _COHORTS.clear()


def peer_comparison(
    *, entry: dict[str, Any], journey_id: int, zone: zoneinfo.ZoneInfo, now: datetime
) -> dict[str, Any] | None:
    """The `peers` of one journey entry of the welcome (recording._journey_entry), or None."""
    started_at = parse_datetime(entry.get("started_at") or "")
    reached = [m for m in entry["milestones"] if m["completed_at"]]
    if started_at is None or not reached:
        return None
    week_start = _week_start(started_at, zone)
    cohort = _cohort(journey_id, week_start)
    if cohort is None:
        return None
    furthest = reached[-1]
    if furthest["key"] not in cohort.milestone_keys:
        return None  # a milestone newer than the rollups' journey
    index = cohort.milestone_keys.index(furthest["key"])
    completed_at = parse_datetime(furthest["completed_at"])
    if completed_at is None:
        return None
    # As the rollups count it (analytics.sql.epoch_ms): each instant truncated to the
    # millisecond, then the difference; the difference truncated can be 1 ms less.
    took_ms = max(0, _ms(completed_at) - _ms(started_at))
    row = cohort.durations.counts[index, FROM_START]
    slot = int(np.searchsorted(grains(), duration_grain(took_ms)))
    # The user is one of the people who reached it, never slower than themselves.
    peers = int(row.sum()) - 1
    if peers < PEER_MINIMUM:
        return None
    # At most everyone else: a rollup not yet counting this user must not make it exceed 100 %.
    slower = min(peers, int(row[slot + 1 :].sum()))
    percent = 100 * slower // peers
    if percent < PEER_SHOW_FROM_PERCENT:
        return None
    this_week = week_start <= now.astimezone(zone) < week_start + timedelta(days=7)
    when = "this week" if this_week else "the same week"
    return {
        "percent": percent,
        "people": peers,
        "milestone": furthest["key"],
        "week_start": week_start.date().isoformat(),
        # The welcome writes `text` again in the person's language (onboarding/sdk_strings.py).
        "this_week": this_week,
        "text": (
            f"Faster than all {peers} people who started {when}"
            if percent == 100
            else f"Faster than {percent} % of people who started {when}"
        ),
    }


def annotate_journeys(
    end_users: Sequence[EndUser], journeys: Sequence[list[dict[str, Any]]]
) -> None:
    """Add `peers` to each journey entry of each user's welcome where a comparison holds
    (registered in onboarding.delivery.journey_annotators by analytics' AppConfig)."""
    now = timezone.now()
    keys = {
        (user.workspace_id, entry["journey"]["key"])
        for user, entries in zip(end_users, journeys, strict=True)
        for entry in entries
        if any(m["completed_at"] for m in entry["milestones"])
    }
    if not keys:
        return
    ids = {
        (workspace_id, key): pk
        for workspace_id, key, pk in Journey.objects.filter(
            workspace_id__in={w for w, _ in keys}, key__in={k for _, k in keys}
        ).values_list("workspace_id", "key", "pk")
    }
    for user, entries in zip(end_users, journeys, strict=True):
        zone = zoneinfo.ZoneInfo(user.workspace.time_zone or "UTC")
        for entry in entries:
            journey_id = ids.get((user.workspace_id, entry["journey"]["key"]))
            if journey_id is None:
                continue
            peers = peer_comparison(entry=entry, journey_id=journey_id, zone=zone, now=now)
            if peers is not None:
                entry["peers"] = peers
