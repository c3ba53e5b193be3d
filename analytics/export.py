"""Every report as CSV rows: a header row, then one row per line of the dashboard's table."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

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


def _rows(result: Any) -> Iterable[list[Any]]:
    match result:
        case journey_funnel.JourneyFunnel():
            yield ["group", "step", "name", "users", "reached_any_order",
                   "conversion_from_previous", "conversion_from_start", "dropped"]  # fmt: skip
            groups = [("all", result.steps)] + [(g.value, g.steps) for g in result.groups]
            for value, steps in groups:
                for s in steps:
                    yield [value, s.key, s.name, s.users, s.reached, s.conversion_from_previous,
                           s.conversion_from_start, s.dropped]  # fmt: skip
        case milestone_velocity.Velocity():
            yield ["milestone", "started", "reached", "on_the_way", "not_reached",
                   "completion_rate", "median_s", "p75_s", "p90_s", "mean_s",
                   "median_from_previous_s", "mean_from_previous_s"]  # fmt: skip
            for m in result.milestones:
                yield [m.key, m.started, m.reached, m.on_the_way, m.not_reached,
                       m.completion_rate, m.from_start.median, m.from_start.p75,
                       m.from_start.p90, m.from_start.mean, m.from_previous.median,
                       m.from_previous.mean]  # fmt: skip
        case walkthrough_funnel.WalkthroughFunnel():
            yield ["step", "title", "viewed", "completed", "dismissed", "target_missing",
                   "completion_rate"]  # fmt: skip
            for st in result.steps:
                yield [st.index, st.title, st.viewed, st.completed, st.dismissed,
                       st.target_missing, st.completion_rate]  # fmt: skip
        case event_funnel.EventFunnel():
            yield ["step", "event", "count", "conversion_from_previous", "conversion_from_start",
                   "dropped", "median_seconds_to_convert", "mean_seconds_to_convert"]  # fmt: skip
            for f in result.steps:
                yield [f.index, f.event, f.count, f.conversion_from_previous,
                       f.conversion_from_start, f.dropped, f.median_seconds_to_convert,
                       f.mean_seconds_to_convert]  # fmt: skip
        case retention.Retention():
            periods = len(result.baseline)
            yield ["cohort_start", "size", *(f"period_{i}" for i in range(periods))]
            for c in result.cohorts:
                yield [c.cohort_start.isoformat(), c.size, *c.returned]
            yield ["baseline", "", *result.baseline]
        case lifecycle.Lifecycle():
            yield ["stage", "current", "reached", "conversion_to_next", "left",
                   "mean_seconds_in_state", "median_seconds_in_state"]  # fmt: skip
            for ls in result.states:
                yield [ls.stage, ls.current, ls.reached, ls.conversion_to_next, ls.left,
                       ls.mean_seconds_in_state, ls.median_seconds_in_state]  # fmt: skip
            if result.over_time:
                yield ["period_start", "new", "returning", "resurrecting", "dormant"]
                for lp in result.over_time:
                    yield [lp.period_start.isoformat(), lp.new, lp.returning, lp.resurrecting,
                           lp.dormant]  # fmt: skip
        case pqls.PqlList():
            yield ["external_id", "journey", "pql_at", "milestones_completed",
                   "milestones_total", "progress_percent", "logins", "active_days",
                   "core_actions", "features_used", "message_engagement", "score"]  # fmt: skip
            for p in result.rows:
                yield [p.external_id, p.journey, p.pql_at.isoformat(), p.milestones_completed,
                       p.milestones_total, p.progress_percent, p.logins, p.active_days,
                       p.core_actions, p.features_used, p.message_engagement, p.score]  # fmt: skip
        case adoption.AdoptionMatrix():
            yield [*result.features, "users", "share"]
            for cell in result.cells:
                yield [*("used" if u else "not used" for u in cell.used), cell.users, cell.share]
        case pai.PaiValidation():
            yield ["threshold", "met", "met_and_retained", "retained_total", "overlap",
                   "retention_of_met", "best"]  # fmt: skip
            for t in result.thresholds:
                yield [t.threshold, t.met, t.met_and_retained, t.retained_total, t.overlap,
                       t.retention_of_met, t.threshold == result.best_threshold]  # fmt: skip
        case experiment.ExperimentResults():
            yield ["variant", "exposed", "converted", "rate", "interval_low", "interval_high",
                   "difference", "chance_to_beat_control", "median_seconds", "verdict"]  # fmt: skip
            for arm in result.variants:
                stats = arm.statistics
                yield [
                    stats.variant,
                    stats.exposed,
                    stats.converted,
                    stats.rate,
                    *stats.interval,
                    stats.difference,
                    stats.chance_to_beat_control,
                    arm.median_seconds,
                    stats.verdict,
                ]
        case _:
            raise TypeError(f"No CSV layout for {type(result).__name__}")


def report_csv(result: Any) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in _rows(result):
        writer.writerow(["" if value is None else value for value in row])
    return buffer.getvalue()
