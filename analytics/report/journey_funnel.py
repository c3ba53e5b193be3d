"""The journey funnel: people whose journey started in a date range, and how many reached each
milestone (and every earlier one). Whole days come from the journey rollups
(analytics/journey_rollups.py, whose funnel_rows() is the SQL), breakdowns are counted live."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from analytics import journey_rollups
from analytics.inputs import DateRange, ReportInputError, check_property_name
from analytics.report.common import rate
from analytics.report.segment_members import segment_members
from analytics.services import DayCounts
from analytics.sql import json_text, json_text_params
from onboarding.models import Journey, Milestone, Segment


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


def _funnel_steps(
    milestones: list[Milestone], started: int, chain: Sequence[int], reached: Sequence[int]
) -> tuple[JourneyFunnelStep, ...]:
    steps = [
        JourneyFunnelStep(
            key="started",
            name="Journey started",
            users=started,
            reached=started,
            conversion_from_previous=rate(started, started) if started else None,
            conversion_from_start=rate(started, started) if started else None,
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
                conversion_from_previous=rate(int(users or 0), previous),
                conversion_from_start=rate(int(users or 0), started),
                dropped=previous - int(users or 0),
            )
        )
        previous = int(users or 0)
    return tuple(steps)


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

    Without a breakdown, whole UTC days and quarter hours come from the journey rollups
    (JourneyDayRollup, counted again right after each commit: analytics/journey_rollups.py):
    the same numbers as a full live count, which `fresh=True` forces, once the refresh a
    commit woke has landed (within about a second; a read counts itself a change left longer
    than MILEPOST_ROLLUP_FRESH_SECONDS).
    """
    milestones = journey_rollups.journey_milestones(journey)
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
        totals = journey_rollups.funnel_totals(
            journey, milestones, date_range.start, date_range.end, fresh
        )
        by_group = {"": totals} if totals.started else {}
    else:
        by_group = {
            str(row[0]): journey_rollups.day_counts(row, n)
            for row in journey_rollups.funnel_rows(
                journey, milestones, [(date_range.start, date_range.end)], group_sql, group_params
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
