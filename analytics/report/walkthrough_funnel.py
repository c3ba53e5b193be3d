"""The walkthrough step funnel: per step, people who saw it, completed it, dismissed the tour
there, and how often its target was missing; from the widget's `$step_*` and `$walkthrough_*`
events in the range. Computed in the analytics store."""

# SQL here is assembled from fixed fragments; every value travels as a query parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

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


@dataclass(frozen=True)
class WalkthroughFunnel:
    walkthrough: str
    date_from: date
    date_to: date
    started: int
    completed: int
    dismissed: int
    steps: tuple[WalkthroughStepRow, ...]


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
    steps = []
    for index in range(count):
        key = str(index)
        viewed = users[("$step_viewed", key)]
        done = users[("$step_completed", key)]
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
    )
