"""An experiment's results per variant: people exposed, how many reached the goal, and the
statistics of the difference against the control (analytics/report/experiment_stats.py).
Computed in the analytics store from the `$experiment_exposure` events (onboarding/experiments.py)
and the goal's own facts.

A person belongs to the variant of their first exposure event (exposures are recorded once per
person and experiment; should two arrive, the earliest counts). Goals, each counted from that
first exposure:
- milestone: the milestone was completed at or after the exposure and within `window`; its
  velocity is the median time from exposure to completion among those who reached it
  (completions live in the primary database and travel to the store as two arrays, as
  journey starts do for retention);
- funnel: the steps' events were done in order (each event after the previous step's, one
  event never counting for two steps) at or after the exposure, the last within `window`;
- retention: the event was done at least `day` days after the exposure and within `window`.
"""

# SQL here is assembled from fixed fragments; every value travels as a query parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from analytics import store
from analytics.inputs import MAX_CONVERSION_WINDOW, ReportInputError
from analytics.report.experiment_stats import ArmCounts, ArmStatistics, arm_statistics
from onboarding.models import Experiment, Milestone, MilestoneCompletion

EXPOSURE_EVENT = "$experiment_exposure"
GOALS = ("milestone", "funnel", "retention")
MAX_FUNNEL_STEPS = 10


@dataclass(frozen=True)
class Goal:
    kind: str  # milestone, funnel, retention
    window: timedelta
    milestone: Milestone | None = None
    steps: tuple[str, ...] = ()  # funnel: event names in order
    event: str = ""  # retention: the returning event
    day: int = 1  # retention: counted from this many days after exposure

    def label(self) -> str:
        days = f"{self.window.total_seconds() / 86400:g} days"
        if self.kind == "milestone" and self.milestone is not None:
            return f"reached {self.milestone.name} within {days} of exposure"
        if self.kind == "funnel":
            return f"did {' → '.join(self.steps)} within {days} of exposure"
        return f"did {self.event} from day {self.day} to {days} after exposure"


@dataclass(frozen=True)
class VariantResult:
    statistics: ArmStatistics
    median_seconds: float | None  # milestone goal: velocity among those who reached it

    @property
    def variant(self) -> str:
        return self.statistics.variant


@dataclass(frozen=True)
class ExperimentResults:
    experiment: str
    name: str
    status: str
    goal: str
    minimum_sample: int
    enough_data: bool
    variants: tuple[VariantResult, ...]
    verdict: str


def check_goal(goal: Goal) -> None:
    if goal.kind not in GOALS:
        raise ReportInputError("goal", "Choose milestone, funnel or retention.")
    if not timedelta(0) < goal.window <= MAX_CONVERSION_WINDOW:
        raise ReportInputError("window_days", "The window must be from 1 to 90 days.")
    if goal.kind == "milestone" and goal.milestone is None:
        raise ReportInputError("milestone", "Choose the milestone to reach.")
    if goal.kind == "funnel" and not 2 <= len(goal.steps) <= MAX_FUNNEL_STEPS:
        raise ReportInputError("steps", f"Give 2 to {MAX_FUNNEL_STEPS} events in order.")
    if goal.kind == "retention":
        if not goal.event:
            raise ReportInputError("event", "Name the event that counts as a return.")
        if not 0 <= goal.day < goal.window.days:
            raise ReportInputError("day", "The day must be within the window.")


_EXPOSED = """
    SELECT person_id,
           toUnixTimestamp64Milli(min(timestamp)) AS exposed_ms,
           argMin(JSONExtractString(properties, 'variant'), (timestamp, id)) AS variant
    FROM events
    WHERE workspace_id = {workspace:UInt64} AND name = {exposure:String}
      AND JSONExtractString(properties, 'experiment') = {experiment:String}
    GROUP BY person_id
"""


def _milestone_sql(goal: Goal, parameters: dict[str, Any]) -> str:
    assert goal.milestone is not None  # noqa: S101 - check_goal refused it
    people, instants = [], []
    completions = MilestoneCompletion.objects.filter(milestone=goal.milestone).values_list(
        "end_user_id", "completed_at"
    )
    for person, completed_at in completions.iterator(chunk_size=10_000):
        people.append(person)
        instants.append(_ms(completed_at))
    parameters.update(people=people, instants=instants)
    return f"""
        SELECT x.variant, x.person_id,
               c.completed_ms >= x.exposed_ms AND c.completed_ms - x.exposed_ms <= {{window:Int64}}
                   AS hit,
               c.completed_ms - x.exposed_ms AS took
        FROM ({_EXPOSED}) AS x
        LEFT JOIN (
            SELECT pair.1 AS person_id, pair.2 AS completed_ms
            FROM (SELECT arrayJoin(arrayZip({{people:Array(UInt64)}},
                                            {{instants:Array(Int64)}})) AS pair)
        ) AS c ON c.person_id = x.person_id
    """


def _ms(moment: datetime) -> int:
    """Milliseconds since the epoch, truncated as the store's DateTime64(3) keeps them."""
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def _events_sql(goal: Goal, parameters: dict[str, Any]) -> str:
    """Per exposed person, their events of the goal at or after exposure and within the window
    (sorted), then whether they converted."""
    names = list(goal.steps) if goal.kind == "funnel" else [goal.event]
    parameters["names"] = names
    if goal.kind == "funnel":
        found = []
        for index in range(len(goal.steps)):
            parameters[f"step{index}"] = goal.steps[index]
            after = (
                "x.1 >= exposed_ms"
                if index == 0
                else f"(x.1, x.2) > (t{index - 1}.1, t{index - 1}.2)"
            )
            found.append(
                f"arrayFirst(x -> x.3 = {{step{index}:String}} AND {after}, evs) AS t{index}"
            )
        last = len(goal.steps) - 1
        reached = " AND ".join(f"t{i}.1 != 0" for i in range(len(goal.steps)))
        converted = f"{reached} AND t{last}.1 - exposed_ms <= {{window:Int64}}"
        computed = ", ".join(found) + f", ({converted}) AS hit"
    else:
        parameters["day_ms"] = goal.day * 86_400_000
        computed = (
            "arrayExists(x -> x.1 >= exposed_ms + {day_ms:Int64} "
            "AND x.1 - exposed_ms <= {window:Int64}, evs) AS hit"
        )
    return f"""
        SELECT variant, person_id, {computed}, toInt64(0) AS took
        FROM (
            SELECT x.variant AS variant, x.person_id AS person_id, x.exposed_ms AS exposed_ms,
                   arraySort(arrayFilter(
                       v -> v.1 >= x.exposed_ms, e.evs)) AS evs
            FROM ({_EXPOSED}) AS x
            LEFT JOIN (
                SELECT person_id,
                       groupArray((toUnixTimestamp64Milli(timestamp), id, name)) AS evs
                FROM events
                WHERE workspace_id = {{workspace:UInt64}} AND name IN {{names:Array(String)}}
                  AND person_id IN (
                      SELECT person_id FROM events
                      WHERE workspace_id = {{workspace:UInt64}} AND name = {{exposure:String}}
                        AND JSONExtractString(properties, 'experiment') = {{experiment:String}})
                GROUP BY person_id
            ) AS e ON e.person_id = x.person_id
        )
    """


def _arm_rows(experiment: Experiment, goal: Goal) -> dict[str, tuple[int, int, list[int]]]:
    """variant -> (exposed, converted, sorted elapsed ms of those converted), from the store."""
    parameters: dict[str, Any] = {
        "workspace": experiment.workspace_id,
        "exposure": EXPOSURE_EVENT,
        "experiment": experiment.key,
        "window": int(goal.window // timedelta(milliseconds=1)),
    }
    inner = (
        _milestone_sql(goal, parameters)
        if goal.kind == "milestone"
        else _events_sql(goal, parameters)
    )
    sql = f"""
        SELECT variant, count() AS exposed, countIf(hit) AS converted,
               arraySort(groupArrayIf(took, hit)) AS elapsed
        FROM ({inner})
        GROUP BY variant
    """
    return {
        str(variant): (int(exposed), int(converted), [int(v) for v in elapsed])
        for variant, exposed, converted, elapsed in store.rows(sql, parameters)
    }


def _median_ms(values: Sequence[int]) -> float | None:
    n = len(values)
    if not n:
        return None
    if n % 2:
        return values[n // 2] / 1000
    return (values[n // 2 - 1] + values[n // 2]) / 2 / 1000


def experiment_results(*, experiment: Experiment, goal: Goal) -> ExperimentResults:
    check_goal(goal)
    rows = _arm_rows(experiment, goal)
    arms = [
        ArmCounts(variant["key"], *rows.get(variant["key"], (0, 0, []))[:2])
        for variant in experiment.variants
    ]
    statistics = arm_statistics(arms, minimum_sample=experiment.minimum_sample)
    enough = all(arm.exposed >= experiment.minimum_sample for arm in arms)
    variants = tuple(
        VariantResult(
            statistics=stats,
            median_seconds=_median_ms(rows.get(stats.variant, (0, 0, []))[2])
            if goal.kind == "milestone"
            else None,
        )
        for stats in statistics
    )
    return ExperimentResults(
        experiment=experiment.key,
        name=experiment.name,
        status=experiment.status,
        goal=goal.label(),
        minimum_sample=experiment.minimum_sample,
        enough_data=enough,
        variants=variants,
        verdict=_verdict(statistics, enough, experiment.minimum_sample),
    )


def _verdict(statistics: Sequence[ArmStatistics], enough: bool, minimum: int) -> str:
    if not enough:
        return f"Not enough data yet: every variant needs {minimum:,} people exposed."
    better = [s for s in statistics if s.verdict == "better"]
    if better:
        best = max(better, key=lambda s: s.chance_to_beat_control or 0)
        return (
            f"{best.variant} beats the control ({(best.chance_to_beat_control or 0):.1%} chance)."
        )
    worse = [s.variant for s in statistics if s.verdict == "worse"]
    if worse:
        return f"The control beats {', '.join(worse)}; no variant beats it."
    return "No clear difference between the variants and the control."
