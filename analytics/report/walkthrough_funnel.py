"""The walkthrough step funnel: per step, people who saw it, completed it, dismissed the tour
there, and how often its target was missing; from the widget's `$step_*` and `$walkthrough_*`
events in the range. Computed in the analytics store.

A step is flagged when its target was missing for more than the walkthrough's threshold
(`Walkthrough.missing_target_threshold()`, a share of the people who reached the step: had it
shown or missing) and at least ALERT_MIN_PEOPLE people reached it; `missing_target_flags` lists
the flagged steps of many walkthroughs at once (the admin list, engagement's alert rules)."""

# SQL here is assembled from fixed fragments; every value travels as a query parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from django.utils import timezone

from analytics import store
from analytics.inputs import DateRange
from analytics.report.common import json_text, rate
from onboarding.models import Walkthrough

NAMES = (
    "$walkthrough_started",
    "$walkthrough_completed",
    "$walkthrough_dismissed",
    "$step_viewed",
    "$step_completed",
    "$step_target_missing",
)


@dataclass(frozen=True)
class WalkthroughStepRow:
    index: int
    title: str
    viewed: int  # people who saw the step
    completed: int  # people who completed it
    dismissed: int  # people who dismissed the walkthrough on this step
    target_missing: int  # how many times the step's target was not found
    target_missing_users: int
    completion_rate: float | None
    reached: int = 0  # people for whom the step was shown or its target missing
    target_missing_share: float | None = None  # target_missing_users / reached
    flagged: bool = False  # the share is over the walkthrough's threshold (module docstring)


@dataclass(frozen=True)
class WalkthroughFunnel:
    walkthrough: str
    date_from: date
    date_to: date
    started: int
    completed: int
    dismissed: int
    steps: tuple[WalkthroughStepRow, ...]
    missing_target_threshold: int = 0  # percent


def walkthrough_step_funnel(
    *, walkthrough: Walkthrough, date_range: DateRange
) -> WalkthroughFunnel:
    # Per (event, step): distinct people and events; per event over all steps: distinct
    # people (a tour's started / completed / dismissed counts). One scan, two grouping sets.
    rows = store.rows(
        f"""
        SELECT name, step, grouping(step) = 1 AS whole_tour, uniqExact(person_id), count()
        FROM (
            SELECT name, person_id, {json_text("properties", "step_key")} AS step FROM events
            WHERE workspace_id = {{workspace:UInt64}} AND name IN {{names:Array(String)}}
              AND JSONExtractString(properties, 'walkthrough') = {{tour:String}}
              AND timestamp >= {{start:DateTime64(3, 'UTC')}}
              AND timestamp < {{end:DateTime64(3, 'UTC')}}
        ) GROUP BY GROUPING SETS ((name, step), (name))
        """,
        {
            "step_key": "step",
            "workspace": walkthrough.workspace_id,
            "names": list(NAMES),
            "tour": walkthrough.key,
            "start": date_range.start,
            "end": date_range.end,
        },
    )
    users: dict[tuple[str, str | None], int] = defaultdict(int)
    events: dict[tuple[str, str | None], int] = defaultdict(int)
    totals: dict[str, int] = {}
    for name, step, whole_tour, people, count in rows:
        if whole_tour:
            totals[name] = int(people)
        else:
            users[(name, step)] = int(people)
            events[(name, step)] = int(count)
    titles = list(walkthrough.steps.order_by("position", "id").values_list("title", flat=True))
    seen_steps = {
        int(step) for (_, step) in users if step is not None and step.lstrip("-").isdigit()
    }
    count = max([len(titles), *(s + 1 for s in seen_steps if s >= 0)])
    reach = _step_reach([walkthrough], date_range)
    threshold = walkthrough.missing_target_threshold()
    steps = []
    for index in range(count):
        key = str(index)
        viewed = users[("$step_viewed", key)]
        done = users[("$step_completed", key)]
        reached, missing = reach.get((walkthrough.workspace_id, walkthrough.key, index), (0, 0))
        steps.append(
            WalkthroughStepRow(
                index=index,
                title=titles[index] if index < len(titles) else f"Step {index + 1}",
                viewed=viewed,
                completed=done,
                dismissed=users[("$walkthrough_dismissed", key)],
                target_missing=events[("$step_target_missing", key)],
                target_missing_users=users[("$step_target_missing", key)],
                completion_rate=rate(done, viewed),
                reached=reached,
                target_missing_share=rate(missing, reached),
                flagged=_over(missing, reached, threshold),
            )
        )
    return WalkthroughFunnel(
        walkthrough=walkthrough.key,
        date_from=date_range.date_from,
        date_to=date_range.date_to,
        started=totals.get("$walkthrough_started", 0),
        completed=totals.get("$walkthrough_completed", 0),
        dismissed=totals.get("$walkthrough_dismissed", 0),
        steps=tuple(steps),
        missing_target_threshold=threshold,
    )


# Missing-target flags ----------------------------------------------------------------------

ALERT_MIN_PEOPLE = 10
ALERT_WINDOW_DAYS = 30


def _over(missing: int, reached: int, threshold: int) -> bool:
    return reached >= ALERT_MIN_PEOPLE and missing * 100 > threshold * reached


def _step_reach(
    walkthroughs: Sequence[Walkthrough], date_range: DateRange
) -> dict[tuple[int, str, int], tuple[int, int]]:
    """(workspace id, walkthrough key, step) -> (people who reached the step, people whose
    target was missing there), for the walkthroughs' events in the range: one scan."""
    if not walkthroughs:
        return {}
    rows = store.rows(
        f"""
        SELECT workspace_id, tour, step, uniqExact(person_id),
               uniqExactIf(person_id, name = '$step_target_missing')
        FROM (
            SELECT workspace_id, person_id, name,
                   JSONExtractString(properties, 'walkthrough') AS tour,
                   {json_text("properties", "step_key")} AS step
            FROM events
            WHERE workspace_id IN {{workspaces:Array(UInt64)}}
              AND name IN ('$step_viewed', '$step_target_missing')
              AND JSONExtractString(properties, 'walkthrough') IN {{tours:Array(String)}}
              AND timestamp >= {{start:DateTime64(3, 'UTC')}}
              AND timestamp < {{end:DateTime64(3, 'UTC')}}
        ) WHERE step IS NOT NULL GROUP BY workspace_id, tour, step
        """,
        {
            "step_key": "step",
            "workspaces": sorted({w.workspace_id for w in walkthroughs}),
            "tours": sorted({w.key for w in walkthroughs}),
            "start": date_range.start,
            "end": date_range.end,
        },
    )
    return {
        (int(workspace), str(tour), int(step)): (int(reached), int(missing))
        for workspace, tour, step, reached, missing in rows
        if str(step).isdigit()
    }


@dataclass(frozen=True)
class MissingTargetFlag:
    walkthrough: Walkthrough
    index: int
    title: str
    selector: str
    reached: int
    missing: int
    threshold: int  # percent

    @property
    def share(self) -> float:
        return self.missing / self.reached


def alert_range(today: date | None = None) -> DateRange:
    """The window flags are computed over: the last ALERT_WINDOW_DAYS days, today included."""
    today = today or timezone.localdate()
    return DateRange(today - timedelta(days=ALERT_WINDOW_DAYS - 1), today)


def missing_target_flags(
    *, walkthroughs: Sequence[Walkthrough], date_range: DateRange | None = None
) -> list[MissingTargetFlag]:
    """The flagged steps of `walkthroughs` (select_related their workspace), in the order
    given, step by step; over the last ALERT_WINDOW_DAYS days unless a range is given."""
    reach = _step_reach(walkthroughs, date_range or alert_range())
    flags = []
    for walkthrough in walkthroughs:
        steps = list(walkthrough.steps.order_by("position", "id"))
        threshold = walkthrough.missing_target_threshold()
        for index, step in enumerate(steps):
            reached, missing = reach.get((walkthrough.workspace_id, walkthrough.key, index), (0, 0))
            if _over(missing, reached, threshold):
                flags.append(
                    MissingTargetFlag(
                        walkthrough, index, step.title, step.selector, reached, missing, threshold
                    )
                )
    return flags
