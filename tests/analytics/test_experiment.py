"""Experiment results: the store's numbers equal a plain Python reference person by person, and
the statistics detect a variant that truly speeds up a milestone while an A/A experiment stays
quiet (its false-positive rate checked over many seeded runs)."""

from __future__ import annotations

import random
import statistics
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from analytics.report import experiment as report
from analytics.report.experiment_stats import (
    ArmCounts,
    arm_statistics,
    beta_cdf,
    beta_quantile,
    chance_to_beat,
)
from onboarding.models import Event, Experiment, Milestone, MilestoneCompletion, Workspace
from tests.factories import EndUserFactory, JourneyFactory, MilestoneFactory

START = datetime(2025, 3, 1, tzinfo=UTC)
VARIANTS: list[dict[str, Any]] = [
    {"key": "control", "weight": 1, "content_key": "tour-a"},
    {"key": "fast", "weight": 1, "content_key": "tour-b"},
    {"key": "holdout", "weight": 1, "content_key": None},
]
DAY = timedelta(days=1)


def make_experiment(workspace: Workspace, milestone: Milestone | None = None) -> Experiment:
    return Experiment.objects.create(
        workspace=workspace,
        key="tour-test",
        name="Tour test",
        content_kind="walkthrough",
        content_key="tour-a",
        variants=VARIANTS,
        goal_milestone=milestone,
        minimum_sample=20,
        status=Experiment.Status.RUNNING,
    )


def _ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def reference(
    experiment: Experiment, goal: report.Goal
) -> dict[str, tuple[int, int, float | None]]:
    """variant -> (exposed, converted, median seconds to the milestone), read from the primary
    database one person at a time, by the definitions in analytics/report/experiment.py."""
    events = list(
        Event.objects.filter(workspace_id=experiment.workspace_id).order_by("timestamp", "pk")
    )
    first: dict[int, tuple[int, int, str]] = {}
    for event in events:
        if event.name == "$experiment_exposure" and (
            event.properties.get("experiment") == experiment.key
        ):
            key = (_ms(event.timestamp), event.pk)
            if event.end_user_id not in first or key < first[event.end_user_id][:2]:
                first[event.end_user_id] = (*key, event.properties["variant"])
    completions = {}
    if goal.milestone is not None:
        completions = {
            c.end_user_id: _ms(c.completed_at)
            for c in MilestoneCompletion.objects.filter(milestone=goal.milestone)
        }
    window = goal.window // timedelta(milliseconds=1)
    arms: dict[str, list[Any]] = defaultdict(lambda: [0, 0, []])
    for person, (exposed_ms, _, variant) in first.items():
        arm = arms[variant]
        arm[0] += 1
        mine = [
            (_ms(e.timestamp), e.pk, e.name)
            for e in events
            if e.end_user_id == person and _ms(e.timestamp) >= exposed_ms
        ]
        converted = False
        if goal.kind == "milestone":
            done = completions.get(person)
            converted = done is not None and 0 <= done - exposed_ms <= window
            if converted:
                assert done is not None
                arm[2].append(done - exposed_ms)
        elif goal.kind == "funnel":
            previous: tuple[int, int] | None = None
            for step in goal.steps:
                found = next(
                    (
                        (at, pk)
                        for at, pk, name in mine
                        if name == step and (previous is None or (at, pk) > previous)
                    ),
                    None,
                )
                if found is None:
                    break
                previous = found
            else:
                converted = previous is not None and previous[0] - exposed_ms <= window
        else:
            converted = any(
                name == goal.event and goal.day * 86_400_000 <= at - exposed_ms <= window
                for at, _, name in mine
            )
        arm[1] += converted
    return {
        variant: (exposed, converted, statistics.median(times) / 1000 if times else None)
        for variant, (exposed, converted, times) in arms.items()
    }


def seeded_activity(workspace: Workspace, milestone: Milestone, seed: int) -> None:
    """People exposed over two weeks; some reach the milestone (some before exposure, some
    long after), and do funnel and retention events at random, a few at the same instant."""
    rng = random.Random(seed)
    rows, completions = [], []
    for n in range(240):
        person: Any = EndUserFactory(workspace=workspace, external_id=f"p{n}")
        variant = rng.choice(VARIANTS)["key"]
        exposed = START + timedelta(seconds=rng.randrange(14 * 86_400), milliseconds=n)
        for again in range(rng.choice([1, 1, 1, 2])):  # a second exposure never counts
            rows.append(
                Event(
                    workspace=workspace,
                    end_user=person,
                    client_id=uuid.uuid4(),
                    name="$experiment_exposure",
                    timestamp=exposed + again * DAY,
                    properties={"experiment": "tour-test", "variant": variant},
                )
            )
        speed = 3 if variant == "fast" else 6
        if rng.random() < 0.7:
            completed = exposed + timedelta(days=rng.expovariate(1 / speed) - 0.5)
            completions.append((person, completed))
        for _ in range(rng.randrange(8)):
            at = exposed + timedelta(hours=rng.uniform(-48, 24 * 20))
            at = at.replace(microsecond=(at.microsecond // 1000) * 1000)
            rows.append(
                Event(
                    workspace=workspace,
                    end_user=person,
                    client_id=uuid.uuid4(),
                    name=rng.choice(["created", "invited", "login"]),
                    timestamp=at,
                )
            )
        if rng.random() < 0.2:  # two steps at the same instant
            for name in ("created", "invited"):
                rows.append(
                    Event(
                        workspace=workspace,
                        end_user=person,
                        client_id=uuid.uuid4(),
                        name=name,
                        timestamp=exposed + 2 * DAY,
                    )
                )
    Event.objects.bulk_create(rows)
    MilestoneCompletion.objects.bulk_create(
        MilestoneCompletion(
            workspace=workspace,
            end_user=person,
            milestone=milestone,
            journey=milestone.journey,
            completed_at=completed,
            source=Event.Source.SERVER,
        )
        for person, completed in completions
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_store_results_equal_the_python_reference_for_every_goal(
    workspace: Workspace, analytics_store: Callable[[], Any], seed: int
) -> None:
    milestone: Any = MilestoneFactory(journey=JourneyFactory(workspace=workspace), name="Activated")
    experiment = make_experiment(workspace, milestone)
    seeded_activity(workspace, milestone, seed)
    analytics_store()
    goals = [
        report.Goal("milestone", 7 * DAY, milestone=milestone),
        report.Goal("funnel", 10 * DAY, steps=("created", "invited", "created")),
        report.Goal("funnel", 3 * DAY, steps=("created", "invited")),
        report.Goal("retention", 14 * DAY, event="login", day=7),
    ]
    for goal in goals:
        results = report.experiment_results(experiment=experiment, goal=goal)
        expected = reference(experiment, goal)
        got = {
            v.variant: (v.statistics.exposed, v.statistics.converted, v.median_seconds)
            for v in results.variants
        }
        assert got == {v["key"]: expected.get(v["key"], (0, 0, None)) for v in VARIANTS}, goal
        assert sum(exposed for exposed, _, _ in got.values()) == 240
        assert any(converted for _, converted, _ in got.values()), goal
    milestone_results = report.experiment_results(experiment=experiment, goal=goals[0])
    fast, control = milestone_results.variants[1], milestone_results.variants[0]
    # The variant that is twice as fast is faster at the median and converts more.
    assert fast.median_seconds is not None
    assert control.median_seconds is not None
    assert fast.median_seconds < control.median_seconds
    assert (fast.statistics.rate or 0) > (control.statistics.rate or 0)
    assert (fast.statistics.chance_to_beat_control or 0) > 0.5


def test_no_verdict_before_the_minimum_sample(
    workspace: Workspace, analytics_store: Callable[[], Any]
) -> None:
    experiment = make_experiment(workspace)
    person: Any = EndUserFactory(workspace=workspace)
    Event.objects.create(
        workspace=workspace,
        end_user=person,
        client_id=uuid.uuid4(),
        name="$experiment_exposure",
        timestamp=START,
        properties={"experiment": "tour-test", "variant": "fast"},
    )
    analytics_store()
    results = report.experiment_results(
        experiment=experiment, goal=report.Goal("retention", 7 * DAY, event="login", day=1)
    )
    assert results.verdict == "Not enough data yet: every variant needs 20 people exposed."
    assert [v.statistics.exposed for v in results.variants] == [0, 1, 0]
    assert {v.statistics.verdict for v in results.variants[1:]} == {"not enough data"}


def test_a_bad_goal_is_refused_naming_the_field(workspace: Workspace) -> None:
    experiment = make_experiment(workspace)
    cases = {
        "steps": report.Goal("funnel", DAY, steps=("one",)),
        "window_days": report.Goal("retention", 100 * DAY, event="x"),
        "milestone": report.Goal("milestone", DAY),
        "day": report.Goal("retention", 7 * DAY, event="login", day=7),
    }
    for field, goal in cases.items():
        with pytest.raises(report.ReportInputError) as refused:
            report.experiment_results(experiment=experiment, goal=goal)
        assert refused.value.field == field


# Statistics on simulated experiments (pure Python: no store, fast) -------------------------


def simulate(rng: random.Random, *, people: int, days: tuple[float, float], window: float) -> Any:
    """People split 50/50 by the hash-like coin; each reaches the milestone after an
    exponential time with the arm's mean; conversion = reached within the window."""
    counts = {"control": [0, 0], "variant": [0, 0]}
    for _ in range(people):
        arm = "control" if rng.random() < 0.5 else "variant"
        mean = days[0] if arm == "control" else days[1]
        counts[arm][0] += 1
        counts[arm][1] += rng.expovariate(1 / mean) <= window
    return arm_statistics(
        [ArmCounts(arm, *counts[arm]) for arm in ("control", "variant")], minimum_sample=200
    )


def test_a_variant_that_truly_speeds_up_the_milestone_is_detected() -> None:
    # Mean time to the milestone 10 days for the control, 7 for the variant; 7-day window.
    detected = 0
    for seed in range(50):
        result = simulate(random.Random(seed), people=2_000, days=(10, 7), window=7)[1]
        detected += result.verdict == "better"
        assert result.verdict != "worse"
    assert detected >= 45  # power is about 99 % at this size


def test_an_a_a_experiment_declares_a_difference_about_five_percent_of_the_time() -> None:
    runs, false_alarms = 1_000, 0
    for seed in range(runs):
        result = simulate(random.Random(10_000 + seed), people=1_000, days=(8, 8), window=7)[1]
        assert result.verdict != "not enough data"
        false_alarms += result.verdict in {"better", "worse"}
    # The decision is two-sided at 2.5 % each: 5 % expected; over 1 000 runs the count is
    # binomial (sd about 7), so 20..80 holds unless the test itself is wrong.
    assert 20 <= false_alarms <= 80


def test_the_beta_functions_agree_with_known_values() -> None:
    # Beta(2, 3): CDF 1 - (1-x)^3 (1 + 3x) ... at 0.5 is 0.6875; Beta(1, 1) is uniform.
    assert beta_cdf(0.5, 2, 3) == pytest.approx(0.6875, abs=1e-12)
    assert beta_quantile(0.3, 1, 1) == pytest.approx(0.3, abs=1e-9)
    # Two identical posteriors: an even chance; a lot more conversions: nearly certain.
    assert chance_to_beat(40, 100, 40, 100) == pytest.approx(0.5, abs=1e-9)
    assert chance_to_beat(80, 100, 40, 100) > 0.999999
    # P(B > A) + P(A > B) = 1, exactly and in the normal approximation alike.
    assert chance_to_beat(7, 30, 12, 31) + chance_to_beat(12, 31, 7, 30) == pytest.approx(1)
    assert chance_to_beat(30_000, 60_000, 29_500, 60_000) + chance_to_beat(
        29_500, 60_000, 30_000, 60_000
    ) == pytest.approx(1)


# Admin: start, stop, ship, and the results as a dashboard -------------------------------


def test_an_editor_starts_stops_and_ships_from_admin_and_reads_the_results_dashboard(
    workspace: Workspace, analytics_store: Callable[[], Any]
) -> None:
    from onboarding import services
    from tests.analytics.test_admin import figure, logged_in
    from tests.factories import WalkthroughFactory

    for key in ("tour-a", "tour-b"):
        tour: Any = WalkthroughFactory(workspace=workspace, key=key)
        tour.steps.create(title="Hi", position=0)
        services.content_publish(obj=tour)
    milestone: Any = MilestoneFactory(journey=JourneyFactory(workspace=workspace), name="Done")
    experiment = make_experiment(workspace, milestone)
    experiment.status = Experiment.Status.DRAFT
    experiment.save(update_fields=["status"])
    seeded_activity(workspace, milestone, seed=3)
    analytics_store()
    client = logged_in(workspace)
    change = f"/admin/onboarding/experiment/{experiment.pk}/change/"

    page = client.get(change).content.decode()
    assert 'value="start">Start</button>' in page
    assert 'value="ship:fast">Ship fast</button>' in page
    started = client.post(change + "action/", {"_do": "start"}, follow=True)
    assert "Tour test: started." in started.content.decode()
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.RUNNING
    refused = client.post(change + "action/", {"_do": "ship:nope"}, follow=True)
    assert "No variant &#x27;nope&#x27;" in refused.content.decode()

    dashboard = client.get(
        "/admin/analytics/dashboard/experiment/", {"experiment": "tour-test", "window_days": 7}
    )
    assert dashboard.status_code == 200
    html = dashboard.content.decode()
    conversion = figure(html, "conversion")
    expected = reference(experiment, report.Goal("milestone", 7 * DAY, milestone=milestone))
    assert conversion["categories"] == ["control", "fast", "holdout"]
    assert conversion["series"][0]["values"] == [
        expected[v][1] / expected[v][0] for v in ("control", "fast", "holdout")
    ]
    assert "chance to beat control" in html
    assert figure(html, "velocity")["series"][0]["values"][1] == expected["fast"][2]

    shipped = client.post(change + "action/", {"_do": "ship:fast"}, follow=True)
    assert "Tour test: shipped fast." in shipped.content.decode()
    experiment.refresh_from_db()
    assert (experiment.status, experiment.shipped_variant) == ("shipped", "fast")
