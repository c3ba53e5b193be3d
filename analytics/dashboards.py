"""What the admin dashboards draw: each report's result turned into figures (a chart's numbers,
its text alternative and the table beside it), and the analytics home's tiles.

Every number here is the report's own (analytics/reports.py runs them); this module only
arranges them for a chart. Where a chart needs a view the report does not give, it is derived
from the report's result and the derivation is written down next to it (a journey funnel's
conversion per week runs the journey funnel once per week, from its rollups)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import pairwise
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from analytics import journey_rollups
from analytics.inputs import DateRange
from analytics.models import JourneyDayRollup
from analytics.report import (
    adoption,
    event_funnel,
    experiment,
    journey_funnel,
    lifecycle,
    milestone_velocity,
    pai,
    pqls,
    retention,
    walkthrough_funnel,
)
from analytics.report.common import rate
from analytics.velocity import HISTOGRAM_BOUNDS
from onboarding.models import Journey


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | int | None]


@dataclass(frozen=True)
class Mark:
    """A vertical line at `position` on the x axis: a category's index, fractions between."""

    label: str
    position: float


@dataclass(frozen=True)
class Figure:
    """One chart and its table. `format` says how values read: count, percent (a fraction
    0..1), seconds. A heat map's cells are (x, y, value); a None value is drawn blank."""

    id: str
    kind: str  # funnel, histogram, line, bars, stacked, heatmap
    title: str
    description: str
    header: Sequence[str]
    rows: Sequence[Sequence[Any]]
    x_label: str = ""
    y_label: str = ""
    format: str = "count"
    categories: Sequence[str] = ()
    series: Sequence[Series] = ()
    heat_rows: Sequence[str] = ()
    cells: Sequence[tuple[int, int, float | None]] = ()
    labels: Sequence[str] = ()
    marks: Sequence[Mark] = ()
    # Where a data point leads ("x,y" of a heat map cell, or a category's index), and, shaped
    # as `rows`, where each table cell leads ("" for none): the people behind the number.
    links: Mapping[str, str] = field(default_factory=dict)
    row_links: Sequence[Sequence[str]] = ()

    @property
    def table(self) -> list[list[tuple[Any, str]]]:
        """The rows as (value, link) pairs."""
        return [
            [
                (value, self.row_links[i][j] if i < len(self.row_links) else "")
                for j, value in enumerate(row)
            ]
            for i, row in enumerate(self.rows)
        ]

    def table_html(self) -> SafeString:
        """The table beside the chart. Written here rather than by the template: Django's
        template engine spent ~1 ms per few cells (a retention grid has hundreds), most of a
        dashboard's render time."""
        head = "".join(f'<th scope="col">{escape(h)}</th>' for h in self.header)
        body = []
        for row in self.table:
            cells = []
            for index, (value, link) in enumerate(row):
                text = escape(value)
                if index == 0:
                    cells.append(f'<th scope="row">{text}</th>')
                elif link:
                    link = escape(link)
                    cells.append(f'<td><a href="{link}" title="Who they are">{text}</a></td>')
                else:
                    cells.append(f"<td>{text}</td>")
            body.append(f"<tr>{''.join(cells)}</tr>")
        return mark_safe(  # noqa: S308 - every value and link is escaped above
            f'<table class="data"><caption class="visually-hidden">{escape(self.title)}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        )

    def chart(self) -> dict[str, Any]:
        """The chart's part, as the browser bundle (charts/src/figure.ts) reads it."""
        return {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "description": self.description,
            "x_label": self.x_label,
            "y_label": self.y_label,
            "format": self.format,
            "categories": list(self.categories),
            "series": [{"name": s.name, "values": list(s.values)} for s in self.series],
            "rows": list(self.heat_rows),
            "cells": [list(cell) for cell in self.cells],
            "labels": list(self.labels),
            "marks": [{"label": m.label, "position": m.position} for m in self.marks],
            "links": dict(self.links),
        }

    @property
    def is_empty(self) -> bool:
        """Nothing to draw: every value is zero or missing."""
        values = [v for series in self.series for v in series.values] + [
            cell[2] for cell in self.cells
        ]
        return not any(values)

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(self.header)
        writer.writerows(self.rows)
        return out.getvalue()


def percent(rate: float | None) -> str:
    return "" if rate is None else f"{rate * 100:.1f} %"


def duration(seconds: float | None) -> str:
    """A duration in the largest unit that keeps it readable: 90 s, 2.5 h, 3.1 d."""
    if seconds is None:
        return ""
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{round(seconds * 1000)} ms"


def histogram_position(seconds: float) -> float:
    """Where a duration stands on the velocity histogram's axis: its bucket's index, moved
    inside the bucket on a log scale (the buckets grow about geometrically), so that a median
    and a p75 in the same bucket are told apart."""
    low = 0.0
    for index, (_, bound) in enumerate(HISTOGRAM_BOUNDS):
        if bound is None or seconds < bound:
            if bound is None or low <= 0:
                return float(index)
            share = math.log(seconds / low) / math.log(bound / low)
            return index - 0.5 + share
        low = float(bound)
    return float(len(HISTOGRAM_BOUNDS) - 1)


def _funnel_labels(
    from_start: Sequence[float | None],
    from_previous: Sequence[float | None],
    times: Sequence[float | None] = (),
) -> list[str]:
    labels = []
    for index, (start, previous) in enumerate(zip(from_start, from_previous, strict=True)):
        if index == 0:
            labels.append("")
            continue
        time = times[index] if index < len(times) else None
        if start is None:
            labels.append("")
            continue
        parts = [f"{percent(start)} of start", f"{percent(previous)} of previous"]
        if time is not None:
            parts.append(f"median {duration(time)}")
        labels.append("\n".join(parts))
    return labels


def _funnel_bars(
    names: Sequence[str],
    steps: Sequence[journey_funnel.JourneyFunnelStep] | Sequence[event_funnel.EventFunnelStep],
    converted: str,
    times: Sequence[float | None],
) -> dict[str, Any]:
    """A funnel chart's bars and labels: people converted, and above them those who dropped
    off at each step; over each, % of start, % of previous and the median time to convert."""
    return {
        "categories": names,
        "series": [
            Series(
                converted,
                [
                    s.users if isinstance(s, journey_funnel.JourneyFunnelStep) else s.count
                    for s in steps
                ],
            ),
            Series("Dropped off here", [s.dropped for s in steps]),
        ],
        "labels": _funnel_labels(
            [s.conversion_from_start for s in steps],
            [s.conversion_from_previous for s in steps],
            times,
        ),
    }


def _funnel_description(names: Sequence[str], counts: Sequence[int]) -> str:
    if not counts or not counts[0]:
        return "Nobody entered the funnel in this range."
    steps = ", ".join(f"{name}: {count:,}" for name, count in zip(names, counts, strict=True))
    return f"Funnel of {counts[0]:,} people. {steps}. {percent(counts[-1] / counts[0])} converted."


# --- Journey funnel ----------------------------------------------------------------------


def journey_funnel_figures(
    result: journey_funnel.JourneyFunnel,
    *,
    velocity: milestone_velocity.Velocity | None = None,
    weekly: Sequence[WeekConversion] = (),
) -> list[Figure]:
    steps = result.steps
    times: list[float | None] = [None]
    if velocity is not None:
        # The first milestone's previous step is the journey's start.
        medians = {
            m.key: (m.from_start if index == 0 else m.from_previous).median
            for index, m in enumerate(velocity.milestones)
        }
        times += [medians.get(step.key) for step in steps[1:]]
    names = [step.name for step in steps]
    figures = [
        Figure(
            id="funnel",
            kind="funnel",
            title="Journey funnel",
            description=_funnel_description(names, [s.users for s in steps]),
            header=[
                "step",
                "people",
                "reached",
                "conversion from start",
                "conversion from previous",
                "dropped off",
                "median time from previous",
            ],
            rows=[
                [
                    s.name,
                    s.users,
                    s.reached,
                    percent(s.conversion_from_start),
                    percent(s.conversion_from_previous),
                    s.dropped,
                    duration(times[i] if i < len(times) else None),
                ]
                for i, s in enumerate(steps)
            ],
            x_label="Milestone",
            y_label="People",
            **_funnel_bars(names, steps, "Reached (with every earlier milestone)", times),
        )
    ]
    if result.groups:
        figures.append(
            Figure(
                id="breakdown",
                kind="bars",
                title=f"By {result.breakdown}",
                description=f"People at each milestone, one bar per {result.breakdown} value.",
                header=["value", *names],
                rows=[[g.value, *(s.users for s in g.steps)] for g in result.groups],
                x_label="Milestone",
                y_label="People",
                categories=names,
                series=[Series(g.value, [s.users for s in g.steps]) for g in result.groups],
            )
        )
    if weekly and len(steps) > 1:
        figures.append(
            Figure(
                id="over-time",
                kind="line",
                title="Conversion over time (by week of journey start)",
                description="Share of each week's starters who reached each milestone.",
                header=["week starting", "started", *(f"{n} (conversion)" for n in names[1:])],
                rows=[
                    [
                        week.week.isoformat(),
                        week.started,
                        *(percent(r) for r in week.conversion_from_start),
                    ]
                    for week in weekly
                ],
                x_label="Week of journey start",
                y_label="Conversion from start",
                format="percent",
                categories=[week.week.isoformat() for week in weekly],
                series=[
                    Series(name, [week.conversion_from_start[i] for week in weekly])
                    for i, name in enumerate(names[1:])
                ],
            )
        )
    return figures


def weeks_of(date_range: DateRange) -> list[DateRange]:
    """The range cut into weeks starting on Monday (the first and last may be shorter)."""
    weeks = []
    start = date_range.date_from
    while start <= date_range.date_to:
        end = min(start + timedelta(days=6 - start.weekday()), date_range.date_to)
        weeks.append(DateRange(start, end, date_range.timezone))
        start = end + timedelta(days=1)
    return weeks


@dataclass(frozen=True)
class WeekConversion:
    """The people whose journey started in one week, and how many of them reached each
    milestone (and every earlier one), in the milestones' order."""

    week: date
    started: int
    users: tuple[int, ...]

    @property
    def conversion_from_start(self) -> list[float | None]:
        return [rate(users, self.started) for users in self.users]


def journey_funnel_weekly(journey: Journey, date_range: DateRange) -> list[WeekConversion]:
    """Conversion per week of journey start. In UTC every week is whole UTC days, so the
    weeks are summed from one read of the day rollups (made current first, as the journey
    funnel does): the same counts as a journey funnel per week, in 5 queries instead of ~5 per
    week. A week of another time zone starts inside a UTC day: a journey funnel per week."""
    weeks = weeks_of(date_range)
    if date_range.timezone != "UTC":
        return [
            _week_conversion(
                week.date_from, journey_funnel.journey_funnel(journey=journey, date_range=week)
            )
            for week in weeks
        ]
    milestones = journey_rollups.journey_milestones(journey)
    ids = [str(m.pk) for m in milestones]
    started = dict.fromkeys((week.date_from for week in weeks), 0)
    users = {week.date_from: [0] * len(ids) for week in weeks}
    _, stored = journey_rollups.stored_days(journey, date_range.start, date_range.end)
    if stored is not None:
        # Later days than `stored` have nobody in them yet; earlier ones nobody at all.
        first, last = stored
        journey_rollups.rollup_days(journey, milestones, first, last)
        for day, day_started, per_milestone in JourneyDayRollup.objects.filter(
            journey=journey, day__range=(first, last)
        ).values_list("day", "started", "milestones"):
            week = max(start for start in started if start <= day)
            started[week] += day_started
            for i, key in enumerate(ids):
                users[week][i] += per_milestone[key][0]
    return [WeekConversion(week, started[week], tuple(users[week])) for week in started]


def _week_conversion(week: date, funnel: journey_funnel.JourneyFunnel) -> WeekConversion:
    return WeekConversion(week, funnel.steps[0].users, tuple(s.users for s in funnel.steps[1:]))


# --- Velocity ----------------------------------------------------------------------------


def velocity_figures(result: milestone_velocity.Velocity) -> list[Figure]:
    bucket_labels = [label for label, _ in HISTOGRAM_BOUNDS]
    figures = []
    for index, m in enumerate(result.milestones):
        stats = m.from_start
        marks = [
            Mark(f"{name} {duration(value)}", histogram_position(value))
            for name, value in (("median", stats.median), ("p75", stats.p75), ("p90", stats.p90))
            if value is not None
        ]
        counts = [bucket.users for bucket in m.histogram_from_start]
        figures.append(
            Figure(
                id=f"histogram-{index}",
                kind="histogram",
                title=f"Time to “{m.name}” from journey start",
                description=(
                    f"{m.reached:,} of {m.started:,} people reached {m.name}"
                    + (
                        f"; median {duration(stats.median)}, p75 {duration(stats.p75)}, "
                        f"p90 {duration(stats.p90)}."
                        if stats.median is not None
                        else "."
                    )
                ),
                header=["time from journey start", "people"],
                rows=[[b.label, b.users] for b in m.histogram_from_start],
                x_label="Time from journey start",
                y_label="People",
                categories=bucket_labels,
                series=[Series("People", counts)],
                marks=marks,
            )
        )
    figures.append(
        Figure(
            id="summary",
            kind="bars",
            title="Median time to each milestone",
            description="Median time from journey start and from the previous milestone. "
            + " ".join(
                f"{m.name}: {duration(m.from_start.median) or 'nobody yet'}."
                for m in result.milestones
            ),
            header=[
                "milestone",
                "started",
                "reached",
                "on the way",
                "not reached",
                "completion rate",
                "median from start",
                "p75 from start",
                "p90 from start",
                "median from previous",
            ],
            rows=[
                [
                    m.name,
                    m.started,
                    m.reached,
                    m.on_the_way,
                    m.not_reached,
                    percent(m.completion_rate),
                    duration(m.from_start.median),
                    duration(m.from_start.p75),
                    duration(m.from_start.p90),
                    duration(m.from_previous.median),
                ]
                for m in result.milestones
            ],
            x_label="Milestone",
            y_label="Time",
            format="seconds",
            categories=[m.name for m in result.milestones],
            series=[
                Series(
                    "Median from journey start", [m.from_start.median for m in result.milestones]
                ),
                Series(
                    "Median from previous milestone",
                    [m.from_previous.median for m in result.milestones],
                ),
            ],
        )
    )
    weeks = sorted({w.week_start for m in result.milestones for w in m.weeks})
    if weeks:
        by_week = [{w.week_start: w for w in m.weeks} for m in result.milestones]
        figures.append(
            Figure(
                id="over-time",
                kind="line",
                title="Velocity over time (median from start, by week of journey start)",
                description="Median time from journey start to each milestone, per week.",
                header=["week starting", *(m.name for m in result.milestones)],
                rows=[
                    [
                        week.isoformat(),
                        *(
                            duration(weeks_of_m[week].median_from_start)
                            if week in weeks_of_m
                            else ""
                            for weeks_of_m in by_week
                        ),
                    ]
                    for week in weeks
                ],
                x_label="Week of journey start",
                y_label="Median time",
                format="seconds",
                categories=[week.isoformat() for week in weeks],
                series=[
                    Series(
                        m.name,
                        [
                            by_week[i][week].median_from_start if week in by_week[i] else None
                            for week in weeks
                        ],
                    )
                    for i, m in enumerate(result.milestones)
                ],
            )
        )
    return figures


# --- Walkthrough step funnel -------------------------------------------------------------


def walkthrough_figures(result: walkthrough_funnel.WalkthroughFunnel) -> list[Figure]:
    steps = result.steps
    names = [f"{s.index + 1}. {s.title}" for s in steps]
    viewed = [s.viewed for s in steps]
    lost = [0, *(max(0, before - after) for before, after in pairwise(viewed))]
    first = viewed[0] if viewed else 0
    return [
        Figure(
            id="funnel",
            kind="funnel",
            title="People at each step",
            description=_funnel_description(names, viewed),
            header=[
                "step",
                "viewed",
                "completed",
                "dismissed here",
                "target missing (times)",
                "target missing (people)",
                "completion rate",
            ],
            rows=[
                [
                    name,
                    s.viewed,
                    s.completed,
                    s.dismissed,
                    s.target_missing,
                    s.target_missing_users,
                    percent(s.completion_rate),
                ]
                for name, s in zip(names, steps, strict=True)
            ],
            x_label="Step",
            y_label="People",
            categories=names,
            series=[Series("Viewed", viewed), Series("Lost since the previous step", lost)],
            labels=_funnel_labels(
                [queries_rate(v, first) for v in viewed],
                [None, *(queries_rate(a, b) for b, a in pairwise(viewed))],
            ),
        ),
        Figure(
            id="outcomes",
            kind="stacked",
            title="What people did at each step",
            description="People who completed, dismissed the walkthrough, or could not see "
            "the step because its target was missing. A step is flagged when its target was "
            f"missing for more than {result.missing_target_threshold} % of the people who "
            "reached it (at least 10 of them).",
            header=[
                "step",
                "completed",
                "dismissed here",
                "target missing (people)",
                "target missing (share of people who reached it)",
                f"flag (over {result.missing_target_threshold} %)",
            ],
            rows=[
                [
                    name,
                    s.completed,
                    s.dismissed,
                    s.target_missing_users,
                    percent(s.target_missing_share),
                    "⚠ target missing too often" if s.flagged else "",
                ]
                for name, s in zip(names, steps, strict=True)
            ],
            x_label="Step",
            y_label="People",
            categories=names,
            series=[
                Series("Completed", [s.completed for s in steps]),
                Series("Dismissed here", [s.dismissed for s in steps]),
                Series("Target missing", [s.target_missing_users for s in steps]),
            ],
        ),
    ]


def queries_rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# --- Event funnel ------------------------------------------------------------------------


def event_funnel_figures(result: event_funnel.EventFunnel) -> list[Figure]:
    steps = result.steps
    names = [f"{s.index + 1}. {s.event}" for s in steps]
    figures = [
        Figure(
            id="funnel",
            kind="funnel",
            title="Funnel",
            description=_funnel_description(names, [s.count for s in steps])
            + (f" {result.excluded:,} left out by the exclusion." if result.excluded else ""),
            header=[
                "step",
                "people",
                "conversion from start",
                "conversion from previous",
                "dropped off",
                "median time to convert",
                "mean time to convert",
            ],
            rows=[
                [
                    name,
                    s.count,
                    percent(s.conversion_from_start),
                    percent(s.conversion_from_previous),
                    s.dropped,
                    duration(s.median_seconds_to_convert),
                    duration(s.mean_seconds_to_convert),
                ]
                for name, s in zip(names, steps, strict=True)
            ],
            x_label="Step",
            y_label="People"
            if result.aggregate_by in ("person", "end_user")
            else f"Accounts ({result.aggregate_by})",
            **_funnel_bars(names, steps, "Converted", [s.median_seconds_to_convert for s in steps]),
        )
    ]
    if result.breakdown:
        figures.append(
            Figure(
                id="breakdown",
                kind="bars",
                title="Breakdown",
                description="People at each step, one bar per breakdown value. "
                + " ".join(f"{g.value}: {percent(g.conversion)}." for g in result.breakdown),
                header=["value", *names, "conversion"],
                rows=[[g.value, *g.counts, percent(g.conversion)] for g in result.breakdown],
                x_label="Step",
                y_label="People",
                categories=names,
                series=[Series(g.value, g.counts) for g in result.breakdown],
            )
        )
    if result.over_time:
        figures.append(
            Figure(
                id="over-time",
                kind="line",
                title="Conversion over time",
                description="Share of the people entering in each period who converted.",
                header=["period starting", "entered", "converted", "conversion"],
                rows=[
                    [p.period_start.isoformat(), p.entered, p.converted, percent(p.conversion)]
                    for p in result.over_time
                ],
                x_label="Entered on",
                y_label="Conversion",
                format="percent",
                categories=[p.period_start.isoformat() for p in result.over_time],
                series=[Series("Conversion", [p.conversion for p in result.over_time])],
            )
        )
    return figures


# --- Retention ---------------------------------------------------------------------------


def retention_figures(result: retention.Retention) -> list[Figure]:
    periods = len(result.baseline)
    columns = [f"{result.period.title()} {i}" for i in range(periods)]
    cohorts = [f"{c.cohort_start.isoformat()} ({c.size:,})" for c in result.cohorts]
    cells = [(x, y, rate) for y, c in enumerate(result.cohorts) for x, rate in enumerate(c.rates)]
    return [
        Figure(
            id="cohorts",
            kind="heatmap",
            title="Retention by cohort",
            description=f"{len(result.cohorts)} cohorts by {result.period}; the share of each "
            "cohort that came back in each period. Periods that have not begun are blank.",
            header=["cohort", "people", *columns],
            rows=[
                [
                    c.cohort_start.isoformat(),
                    c.size,
                    *(
                        "" if rate is None else f"{percent(rate)} ({returned:,})"
                        for rate, returned in zip(c.rates, c.returned, strict=True)
                    ),
                ]
                for c in result.cohorts
            ],
            x_label=f"{result.period.title()}s since the cohort's first",
            y_label="Cohort (people)",
            format="percent",
            categories=columns,
            heat_rows=cohorts,
            cells=cells,
        ),
        Figure(
            id="baseline",
            kind="line",
            title="Retention curve (all cohorts)",
            description="Share of people coming back in each period, over the cohorts old "
            "enough to have reached it. "
            + " ".join(
                f"{col}: {percent(r) or 'not begun'}."
                for col, r in zip(columns, result.baseline, strict=True)
            ),
            header=["period", "retained"],
            rows=[[col, percent(r)] for col, r in zip(columns, result.baseline, strict=True)],
            x_label="Period",
            y_label="Retained",
            format="percent",
            categories=columns,
            series=[Series("Retained", list(result.baseline))],
        ),
    ]


# --- Lifecycle ---------------------------------------------------------------------------


def lifecycle_figures(result: lifecycle.Lifecycle) -> list[Figure]:
    states = result.states
    figures = [
        Figure(
            id="states",
            kind="bars",
            title="People per lifecycle state",
            description=" ".join(
                f"{s.label}: {s.current:,} now, {s.reached:,} ever." for s in states
            ),
            header=[
                "state",
                "now",
                "ever entered",
                "went on to the next",
                "moved on",
                "median time in state",
            ],
            rows=[
                [
                    s.label,
                    s.current,
                    s.reached,
                    percent(s.conversion_to_next),
                    s.left,
                    duration(s.median_seconds_in_state),
                ]
                for s in states
            ],
            x_label="State",
            y_label="People",
            categories=[s.label for s in states],
            series=[
                Series("In this state now", [s.current for s in states]),
                Series("Ever entered", [s.reached for s in states]),
            ],
        )
    ]
    periods = result.over_time
    if periods:
        name = result.activity_event or "any event"
        # Over time first: the chart a person opens lifecycle for (and a pinned tile's).
        figures.insert(
            0,
            Figure(
                id="over-time",
                kind="stacked",
                title=f"Active people per {result.period} ({name})",
                description=f"Per {result.period}: people new (active for the first time), "
                f"returning (active the {result.period} before too), resurrecting (back after "
                "a gap), and, below the line, dormant (active the period before, not in this "
                "one). "
                + " ".join(
                    f"{p.period_start}: {p.new} new, {p.returning} returning, "
                    f"{p.resurrecting} resurrecting, {p.dormant} dormant."
                    for p in periods[-3:]
                ),
                header=[f"{result.period} starting", "new", "returning", "resurrecting", "dormant"],
                rows=[
                    [p.period_start.isoformat(), p.new, p.returning, p.resurrecting, p.dormant]
                    for p in periods
                ],
                x_label=f"{result.period.title()} starting",
                y_label="People",
                categories=[p.period_start.isoformat() for p in periods],
                series=[
                    Series("New", [p.new for p in periods]),
                    Series("Returning", [p.returning for p in periods]),
                    Series("Resurrecting", [p.resurrecting for p in periods]),
                    # Below the axis, as PostHog draws it: people lost this period.
                    Series("Dormant", [-p.dormant for p in periods]),
                ],
            ),
        )
    return figures


# --- PQLs --------------------------------------------------------------------------------


def pql_figures(result: pqls.PqlList, date_range: DateRange | None) -> list[Figure]:
    """New PQLs per day: every PQL the filters keep (the report counts them all, not only the
    rows it lists), each day of the range drawn, empty ones as 0."""
    per_day = {counted.day: counted.pqls for counted in result.per_day}
    if date_range is not None:
        days = [
            date_range.date_from + timedelta(days=i)
            for i in range((date_range.date_to - date_range.date_from).days + 1)
        ]
    else:
        days = sorted(per_day)
    return [
        Figure(
            id="per-day",
            kind="bars",
            title="New PQLs per day",
            description=f"{result.total:,} people became PQLs"
            + (f" from {days[0]} to {days[-1]}." if days else "."),
            header=["day", "new PQLs"],
            rows=[[day.isoformat(), per_day.get(day, 0)] for day in days],
            x_label=f"Day ({result.timezone})",
            y_label="People",
            categories=[day.isoformat() for day in days],
            series=[Series("New PQLs", [per_day.get(day, 0) for day in days])],
        )
    ]


# --- Adoption ----------------------------------------------------------------------------


def adoption_figures(result: adoption.AdoptionMatrix) -> list[Figure]:
    """The matrix as a feature x feature heat map: the share of active people who used both
    (the diagonal: who used it at all), summed from the report's 2^n cells."""
    features = result.features
    n = len(features)
    both = [[0] * n for _ in range(n)]
    for cell in result.cells:
        for i in range(n):
            for j in range(n):
                if cell.used[i] and cell.used[j]:
                    both[i][j] += cell.users
    active = result.active_users
    share = [[queries_rate(both[i][j], active) for j in range(n)] for i in range(n)]

    def combination(used: Sequence[bool]) -> str:
        names = [f for f, u in zip(features, used, strict=True) if u]
        return " + ".join(names) if names else "none of them"

    return [
        Figure(
            id="matrix",
            kind="heatmap",
            title="Used together",
            description=f"Of {active:,} active people, the share who used both features; "
            "the diagonal is the share who used each one.",
            header=["feature", *features],
            rows=[
                [f, *(f"{percent(share[i][j])} ({both[i][j]:,})" for j in range(n))]
                for i, f in enumerate(features)
            ],
            x_label="Feature",
            y_label="Feature",
            format="percent",
            categories=list(features),
            heat_rows=list(features),
            cells=[(j, i, share[i][j]) for i in range(n) for j in range(n)],
        ),
        Figure(
            id="combinations",
            kind="bars",
            title="People per combination of features",
            description=" ".join(
                f"{combination(c.used)}: {c.users:,}." for c in result.cells if c.users
            ),
            header=["used", "people", "share of active"],
            rows=[[combination(c.used), c.users, percent(c.share)] for c in result.cells],
            x_label="Features used",
            y_label="People",
            categories=[combination(c.used) for c in result.cells],
            series=[Series("People", [c.users for c in result.cells])],
        ),
    ]


# --- PAI ---------------------------------------------------------------------------------


def pai_figures(result: pai.PaiValidation) -> list[Figure]:
    thresholds = result.thresholds
    marks = (
        [Mark(f"best: ≥ {result.best_threshold}", float(result.best_threshold - 1))]
        if result.best_threshold is not None
        else []
    )
    figures = [
        Figure(
            id="sweep",
            kind="line",
            title=f"Doing “{result.key_event}” N times within {result.window_days} days",
            description=f"Of {result.signups:,} signups, {result.retained:,} were retained on "
            f"day {result.retention_day} or later. The overlap of meeting the threshold and "
            "being retained is highest at "
            + (f"≥ {result.best_threshold}." if result.best_threshold else "no threshold."),
            header=[
                "threshold",
                "met",
                "met and retained",
                "overlap (Jaccard)",
                "retention of those who met it",
            ],
            rows=[
                [
                    t.threshold,
                    t.met,
                    t.met_and_retained,
                    percent(t.overlap),
                    percent(t.retention_of_met),
                ]
                for t in thresholds
            ],
            x_label="Threshold (times)",
            y_label="Share",
            format="percent",
            categories=[f"≥ {t.threshold}" for t in thresholds],
            series=[
                Series("Overlap with retained (Jaccard)", [t.overlap for t in thresholds]),
                Series("Retention of those who met it", [t.retention_of_met for t in thresholds]),
            ],
            marks=marks,
        )
    ]
    if result.curve_days:
        figures.append(
            Figure(
                id="curves",
                kind="line",
                title="Active on each day after signup",
                description="Everyone who signed up, against those who met the best threshold.",
                header=["day", "all signups", "met the best threshold"],
                rows=[
                    [d, percent(a), percent(b)]
                    for d, a, b in zip(
                        result.curve_days, result.baseline_curve, result.best_curve, strict=True
                    )
                ],
                x_label="Day after signup",
                y_label="Active",
                format="percent",
                categories=[str(d) for d in result.curve_days],
                series=[
                    Series("All signups", list(result.baseline_curve)),
                    Series("Met the best threshold", list(result.best_curve)),
                ],
            )
        )
    return figures


# --- Experiments -------------------------------------------------------------------------


def _interval(low: float, high: float) -> str:
    return f"{percent(low)} to {percent(high)}"


def _signed(value: float | None) -> str:
    return "" if value is None else f"{value * 100:+.1f} pts"


def experiment_figures(result: experiment.ExperimentResults) -> list[Figure]:
    names = [v.variant for v in result.variants]
    rows = []
    for v in result.variants:
        s = v.statistics
        rows.append(
            [
                s.variant + (" (control)" if s.is_control else ""),
                s.exposed,
                s.converted,
                percent(s.rate),
                _interval(*s.interval),
                _signed(s.difference),
                _interval(*s.difference_interval) if s.difference_interval else "",
                percent(s.chance_to_beat_control),
                duration(v.median_seconds),
                s.verdict,
            ]
        )
    figures = [
        Figure(
            id="conversion",
            kind="bars",
            title=f"{result.name}: who {result.goal}",
            description=f"{result.verdict} Conversion per variant with its 95 % credible "
            f"interval; a verdict needs {result.minimum_sample:,} people exposed per variant.",
            header=[
                "variant",
                "exposed",
                "converted",
                "rate",
                "95 % interval",
                "difference",
                "difference 95 %",
                "chance to beat control",
                "median time to goal",
                "verdict",
            ],
            rows=rows,
            x_label="Variant",
            y_label="Converted",
            format="percent",
            categories=names,
            series=[Series("Conversion", [v.statistics.rate for v in result.variants])],
        )
    ]
    if any(v.median_seconds is not None for v in result.variants):
        figures.append(
            Figure(
                id="velocity",
                kind="bars",
                title="Median time from exposure to the milestone",
                description="Among the people of each variant who reached it. "
                + " ".join(
                    f"{v.variant}: {duration(v.median_seconds) or 'nobody yet'}."
                    for v in result.variants
                ),
                header=["variant", "reached", "median time"],
                rows=[
                    [v.variant, v.statistics.converted, duration(v.median_seconds)]
                    for v in result.variants
                ],
                x_label="Variant",
                y_label="Time",
                format="seconds",
                categories=names,
                series=[Series("Median", [v.median_seconds for v in result.variants])],
            )
        )
    return figures
