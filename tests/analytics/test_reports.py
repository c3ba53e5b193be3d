from __future__ import annotations

from datetime import date, timedelta

import pytest

from analytics.inputs import DateRange, ReportInputError
from analytics.models import AnalyticsSettings
from analytics.report import (
    adoption,
    journey_funnel,
    lifecycle,
    milestone_velocity,
    pai,
    pqls,
    retention,
    walkthrough_funnel,
)
from onboarding.models import LifecycleStage
from tests.analytics.conftest import at
from tests.factories import (
    ConditionFactory,
    JourneyFactory,
    JourneyProgressFactory,
    MilestoneCompletionFactory,
    MilestoneFactory,
    SegmentFactory,
    StepFactory,
    WalkthroughFactory,
)

MARCH = DateRange(date(2025, 3, 1), date(2025, 3, 31))


@pytest.fixture
def journey(workspace):
    journey = JourneyFactory(workspace=workspace, key="trial")
    MilestoneFactory(journey=journey, key="installed", position=0)
    MilestoneFactory(journey=journey, key="campaign", position=1)
    MilestoneFactory(journey=journey, key="contacts", position=2, window=timedelta(days=7))
    return journey


def start(journey, end_user, started_at, **fields):
    return JourneyProgressFactory(
        end_user=end_user,
        journey=journey,
        workspace=journey.workspace,
        started_at=started_at,
        **fields,
    )


def reach(journey, end_user, key, completed_at):
    return MilestoneCompletionFactory(
        end_user=end_user,
        workspace=journey.workspace,
        milestone=journey.milestones.get(key=key),
        journey=journey,
        completed_at=completed_at,
    )


def test_journey_funnel_counts_people_at_each_milestone_in_any_order(journey, person):
    ann, bob, cy, dee = (person(name) for name in ("ann", "bob", "cy", "dee"))
    for who in (ann, bob, cy, dee):
        start(journey, who, at(2))
    reach(journey, ann, "installed", at(2, 1))
    reach(journey, ann, "campaign", at(2, 2))
    reach(journey, bob, "campaign", at(2, 1))  # reached step 2 before step 1
    reach(journey, bob, "installed", at(2, 3))
    reach(journey, cy, "campaign", at(2, 1))  # never installed
    start(journey, person("late"), at(1, month=4))  # outside the range

    result = journey_funnel.journey_funnel(journey=journey, date_range=MARCH)

    assert [(s.key, s.users, s.reached, s.dropped) for s in result.steps] == [
        ("started", 4, 4, 0),
        ("installed", 2, 2, 2),
        ("campaign", 2, 3, 0),
        ("contacts", 0, 0, 2),
    ]
    assert [s.conversion_from_previous for s in result.steps] == [1.0, 0.5, 1.0, 0.0]


def test_journey_funnel_breaks_down_by_lifecycle_trait_and_segment(journey, person):
    ann = person("ann", traits={"plan": "pro"}, lifecycle_stage=LifecycleStage.PQL)
    bob = person("bob", traits={"plan": "free"})
    cy = person("cy", traits={})
    for who in (ann, bob, cy):
        start(journey, who, at(2))
    reach(journey, ann, "installed", at(2, 1))
    segment = SegmentFactory(workspace=journey.workspace, key="pros")
    ConditionFactory(segment=segment, trait="plan", operator="eq", value="pro")

    def firsts(**breakdown):
        result = journey_funnel.journey_funnel(journey=journey, date_range=MARCH, **breakdown)
        return {g.value: (g.steps[0].users, g.steps[1].users) for g in result.groups}

    assert firsts(breakdown="trait", breakdown_value="plan") == {
        "(none)": (1, 0),
        "free": (1, 0),
        "pro": (1, 1),
    }
    assert firsts(breakdown="lifecycle") == {"pql": (1, 1), "trial": (2, 0)}
    assert firsts(breakdown="segment", breakdown_value="pros") == {
        "in pros": (1, 1),
        "not in pros": (2, 0),
    }
    with pytest.raises(ReportInputError) as error:
        firsts(breakdown="segment", breakdown_value="nope")
    assert error.value.field == "breakdown_value"


def test_journey_funnel_reads_start_days_in_the_time_zone(journey, person):
    start(journey, person("ann"), at(1, 3))  # 22:00 on Feb 28th in New York
    tokyo = journey_funnel.journey_funnel(
        journey=journey, date_range=DateRange(date(2025, 3, 1), date(2025, 3, 1), "Asia/Tokyo")
    )
    new_york = journey_funnel.journey_funnel(
        journey=journey,
        date_range=DateRange(date(2025, 3, 1), date(2025, 3, 1), "America/New_York"),
    )

    assert tokyo.steps[0].users == 1
    assert new_york.steps[0].users == 0


def test_milestone_velocity_gives_nearest_rank_percentiles_and_separates_people_on_the_way(
    journey, person
):
    hours = {"a": 1, "b": 2, "c": 3, "d": 10}
    for name, h in hours.items():
        who = person(name)
        start(journey, who, at(2))
        reach(journey, who, "installed", at(2, h))
    reach(journey, journey.workspace.end_users.get(external_id="a"), "campaign", at(2, 5))
    start(journey, person("early"), at(2))  # reached nothing; windows still open on the 5th
    start(journey, person("old"), at(1, month=3) - timedelta(days=0))

    result = milestone_velocity.milestone_velocity(journey=journey, date_range=MARCH, now=at(5))
    installed, campaign, _ = result.milestones

    assert (installed.started, installed.reached) == (6, 4)
    assert installed.from_start.median == 2 * 3600
    assert installed.from_start.p75 == 3 * 3600
    assert installed.from_start.p90 == 10 * 3600
    assert installed.from_start.mean == 4 * 3600
    assert installed.on_the_way == 2
    assert installed.completion_rate == 1.0
    assert [b.users for b in installed.histogram_from_start][3:5] == [3, 1]
    assert campaign.from_previous.users == 1
    assert campaign.from_previous.median == 4 * 3600
    assert campaign.weeks[0].week_start == date(2025, 2, 24)
    assert (campaign.weeks[0].started, campaign.weeks[0].reached) == (6, 1)

    later = milestone_velocity.milestone_velocity(journey=journey, date_range=MARCH, now=at(20))
    # The 7-day window of "contacts" and the 14-day horizon of the others have passed.
    assert [m.on_the_way for m in later.milestones] == [0, 0, 0]
    assert later.milestones[0].completion_rate == round(4 / 6, 4)
    assert later.milestones[2].not_reached == 6


def test_walkthrough_step_funnel_counts_views_completions_dismissals_and_missing_targets(
    workspace, person, track, analytics_store
):
    tour = WalkthroughFactory(workspace=workspace, key="tour")
    for position in range(3):
        StepFactory(walkthrough=tour, position=position, title=f"S{position}")
    ann, bob = person("ann"), person("bob")
    for who in (ann, bob):
        track(who, "$walkthrough_started", at(2), walkthrough="tour")
        track(who, "$step_viewed", at(2), walkthrough="tour", step=0, step_id=1)
        track(who, "$step_completed", at(2), walkthrough="tour", step=0, step_id=1)
        track(who, "$step_viewed", at(2), walkthrough="tour", step=1, step_id=2)
    track(ann, "$step_target_missing", at(2), walkthrough="tour", step=1, selector="#x")
    track(ann, "$step_target_missing", at(2, 1), walkthrough="tour", step=1, selector="#x")
    track(ann, "$step_completed", at(2), walkthrough="tour", step=1)
    track(ann, "$step_viewed", at(2), walkthrough="tour", step=2)
    track(ann, "$step_completed", at(2), walkthrough="tour", step=2)
    track(ann, "$walkthrough_completed", at(2), walkthrough="tour")
    track(bob, "$walkthrough_dismissed", at(2), walkthrough="tour", step=1)
    track(bob, "$step_viewed", at(2), walkthrough="other", step=2)

    analytics_store()
    result = walkthrough_funnel.walkthrough_step_funnel(walkthrough=tour, date_range=MARCH)

    assert (result.started, result.completed, result.dismissed) == (2, 1, 1)
    assert [
        (s.title, s.viewed, s.completed, s.dismissed, s.target_missing, s.target_missing_users)
        for s in result.steps
    ] == [("S0", 2, 2, 0, 0, 0), ("S1", 2, 1, 1, 2, 1), ("S2", 1, 1, 0, 0, 0)]


def test_retention_grid_on_day_n_and_on_or_after(workspace, person, track, analytics_store):
    ann, bob, cy = person("ann"), person("bob"), person("cy")
    track(ann, "login", at(2, 9))
    track(ann, "login", at(3, 9))
    track(ann, "login", at(5, 9))
    track(bob, "login", at(2, 18))
    track(bob, "login", at(5, 1))
    track(cy, "login", at(3, 12))
    track(cy, "report", at(4, 12))

    analytics_store()
    on = retention.retention(workspace=workspace, date_range=MARCH, periods=4, now=at(4, 12))
    assert [(c.cohort_start, c.size, c.returned) for c in on.cohorts] == [
        (date(2025, 3, 2), 2, (2, 1, 0, 2)),
        (date(2025, 3, 3), 1, (1, 1, 0, 0)),
    ]
    # Day 3 of the March 3rd cohort lies in the future (now = March 4th): no rate, no baseline.
    assert on.cohorts[1].rates == (1.0, 1.0, None, None)
    assert on.baseline == (1.0, 0.6667, 0.0, None)

    after = retention.retention(
        workspace=workspace,
        date_range=MARCH,
        periods=4,
        mode="on_or_after",
        return_event="login",
        now=at(30),
    )
    assert [c.returned for c in after.cohorts] == [(2, 2, 2, 2), (1, 0, 0, 0)]


def test_retention_buckets_follow_the_time_zone_and_weeks(
    workspace, person, track, analytics_store
):
    ann = person("ann")
    track(ann, "login", at(3, 2))  # Sunday March 2nd, 21:00 in New York; Monday in UTC
    track(ann, "login", at(4, 2))
    new_york = DateRange(date(2025, 2, 1), date(2025, 3, 31), "America/New_York")
    analytics_store()

    weekly = retention.retention(
        workspace=workspace, date_range=new_york, period="week", periods=2, now=at(30)
    )
    assert [(c.cohort_start, c.returned) for c in weekly.cohorts] == [(date(2025, 2, 24), (1, 1))]
    utc = retention.retention(
        workspace=workspace, date_range=MARCH, period="week", periods=2, now=at(30)
    )
    assert [(c.cohort_start, c.returned) for c in utc.cohorts] == [(date(2025, 3, 3), (1, 0))]


def test_retention_by_journey_start_and_empty_ranges(
    journey, workspace, person, track, analytics_store
):
    ann = person("ann")
    start(journey, ann, at(2, 12))
    track(ann, "login", at(2, 9))  # before the journey began: not a return
    track(ann, "login", at(3, 9))
    analytics_store()
    by_journey = retention.retention(
        workspace=workspace, date_range=MARCH, journey=journey, periods=2, now=at(30)
    )
    assert [c.returned for c in by_journey.cohorts] == [(0, 1)]
    empty = retention.retention(
        workspace=workspace, date_range=DateRange(date(2024, 1, 1), date(2024, 1, 2)), now=at(30)
    )
    assert empty.cohorts == ()
    assert empty.baseline[0] is None


def test_lifecycle_counts_states_conversions_and_time_in_state(
    workspace, person, track, analytics_store
):
    AnalyticsSettings.objects.create(workspace=workspace, active_event="report", active_days=7)
    person("visitor", signed_up_at=None)
    person("trialist", signed_up_at=at(2))
    pql = person("pql", signed_up_at=at(2))
    start(JourneyFactory(workspace=workspace), pql, at(2), pql_at=at(4))
    customer = person("customer", signed_up_at=at(3))
    track(customer, "subscription_started", at(5))
    active = person("active", signed_up_at=at(3))
    track(active, "subscription_started", at(5))
    track(active, "report", at(9))
    churned = person("churned", signed_up_at=at(3))
    track(churned, "subscription_started", at(5))
    track(churned, "subscription_cancelled", at(7))

    analytics_store()
    result = lifecycle.lifecycle(workspace=workspace, now=at(10))
    by_stage = {s.stage: s for s in result.states}

    assert {s.stage: s.current for s in result.states} == {
        "visitor": 1,
        "trial": 1,
        "pql": 1,
        "customer": 1,
        "active_customer": 1,
        "retained": 0,
        "churned": 1,
    }
    assert by_stage["trial"].reached == 5
    assert by_stage["trial"].conversion_to_next == 0.2  # only one trialist became a PQL
    assert by_stage["customer"].reached == 3
    assert by_stage["customer"].left == 2
    assert by_stage["customer"].mean_seconds_in_state == 3 * 86400  # 4 days and 2 days
    assert by_stage["customer"].median_seconds_in_state == 2 * 86400
    assert by_stage["pql"].median_seconds_in_state is None

    stale = lifecycle.lifecycle(workspace=workspace, now=at(20))
    # The active customer's last "report" is now 11 days old: a customer again.
    assert {s.stage: s.current for s in stale.states}["active_customer"] == 0


def test_pql_list_scores_engagement_over_the_period(journey, workspace, person, track):
    ann, bob = person("ann"), person("bob")
    start(journey, ann, at(2), pql_at=at(3))
    start(journey, bob, at(2))
    reach(journey, ann, "installed", at(2, 1))
    reach(journey, ann, "campaign", at(3))
    track(ann, "login", at(8))
    track(ann, "login", at(9))
    track(ann, "campaign_created", at(9))
    track(ann, "$message_clicked", at(9), message="m", rule="r")
    track(ann, "login", at(1, month=1))  # outside the 30-day period

    result = pqls.pqls(workspace=workspace, now=at(10))

    assert len(result.rows) == 1
    row = result.rows[0]
    assert (row.external_id, row.journey, row.pql_at) == ("ann", "trial", at(3))
    assert (row.milestones_completed, row.milestones_total, row.progress_percent) == (2, 3, 66)
    assert (row.logins, row.active_days, row.core_actions, row.features_used) == (2, 2, 2, 2)
    assert row.message_engagement == 1
    assert row.score == 2 + 2 + 3 * 2 + 2 * 2 + 2 * 1
    assert pqls.pqls(workspace=workspace, now=at(10), min_score=17).rows == ()
    assert pqls.pqls(workspace=workspace, now=at(10), search="AN").rows == result.rows


def test_adoption_matrix_counts_every_combination(workspace, person, track, analytics_store):
    both, only_a, only_b, none_ = (person(n) for n in ("both", "a", "b", "none"))
    track(both, "export", at(2))
    track(both, "share", at(3))
    track(only_a, "export", at(2))
    track(only_a, "export", at(4))
    track(only_b, "share", at(2))
    track(none_, "$pageview", at(2))
    track(person("outside"), "export", at(1, month=4))
    analytics_store()

    result = adoption.adoption_matrix(
        workspace=workspace, features=["export", "share"], date_range=MARCH
    )

    assert result.active_users == 4
    assert [(c.used, c.users) for c in result.cells] == [
        ((False, False), 1),
        ((False, True), 1),
        ((True, False), 1),
        ((True, True), 1),
    ]
    with pytest.raises(ReportInputError) as error:
        adoption.adoption_matrix(workspace=workspace, features=["x"] * 7, date_range=MARCH)
    assert error.value.field == "features"
    with pytest.raises(ReportInputError) as error:
        adoption.adoption_matrix(workspace=workspace, features=["nope"], date_range=MARCH)
    assert error.value.field == "features[0]"


def test_pai_validation_finds_the_threshold_that_best_overlaps_retention(
    workspace, person, track, analytics_store
):
    # Retained people did "invite" twice on day 0; the others once or never.
    for index in range(3):
        retained = person(f"kept{index}", signed_up_at=at(1))
        track(retained, "invite", at(1, 1))
        track(retained, "invite", at(2))  # exactly 1 day after signup: inside the window
        track(retained, "login", at(22))  # day 21
    once = person("once", signed_up_at=at(1))
    track(once, "invite", at(1, 2))
    track(once, "login", at(21, 23))  # day 20: not retained
    person("never", signed_up_at=at(1))
    late = person("late-invite", signed_up_at=at(1))
    track(late, "invite", at(2, 0, 0, 1))  # one second outside the window
    track(late, "login", at(25))
    analytics_store()

    result = pai.pai_validation(
        workspace=workspace,
        key_event="invite",
        date_range=MARCH,
        window_days=1,
        retention_day=21,
        max_threshold=3,
        now=at(30),
    )

    assert (result.signups, result.retained) == (6, 4)
    assert [(t.threshold, t.met, t.met_and_retained, t.overlap) for t in result.thresholds] == [
        (1, 4, 3, 0.6),
        (2, 3, 3, 0.75),
        (3, 0, 0, 0.0),
    ]
    assert result.best_threshold == 2
    assert result.curve_days[0] == 0
    assert result.best_curve[21] == 1.0
    assert result.baseline_curve[21] == 0.5
    assert result.best_curve[0] == 1.0
    assert result.baseline_curve[0] == round(4 / 6, 4)


def test_report_parameters_are_checked(workspace, journey):
    with pytest.raises(ReportInputError) as error:
        DateRange(date(2025, 3, 2), date(2025, 3, 1))
    assert error.value.field == "date_from"
    with pytest.raises(ReportInputError) as error:
        DateRange(date(2025, 3, 2), date(2025, 3, 3), "Mars/Olympus")
    assert error.value.field == "timezone"
    with pytest.raises(ReportInputError) as error:
        retention.retention(workspace=workspace, date_range=MARCH, return_event="ghost")
    assert error.value.field == "return_event"
    with pytest.raises(ReportInputError) as error:
        pai.pai_validation(workspace=workspace, key_event="ghost", date_range=MARCH)
    assert error.value.field == "key_event"


def test_a_date_the_analytics_store_cannot_hold_is_refused_by_name():
    with pytest.raises(ReportInputError) as error:
        DateRange(date(559, 6, 8), date(2025, 3, 1))
    assert error.value.field == "date_from"
    assert "1900-01-02" in error.value.message
    with pytest.raises(ReportInputError) as error:
        DateRange(date(2025, 3, 1), date(9999, 12, 31))
    assert error.value.field == "date_to"
