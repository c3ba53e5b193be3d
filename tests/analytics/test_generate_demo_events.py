from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count
from django.utils import timezone

from analytics import tasks
from analytics.inputs import DateRange
from analytics.models import JourneyDayRollup, JourneyStaleDay
from analytics.report import journey_funnel, milestone_velocity
from onboarding.models import EndUser, Event, JourneyProgress, MilestoneCompletion
from tests.factories import JourneyFactory, MilestoneFactory


@pytest.fixture
def journey(workspace):
    journey = JourneyFactory(workspace=workspace, key="trial")
    MilestoneFactory(journey=journey, key="installed", criterion="server", event_name="")
    MilestoneFactory(journey=journey, key="campaign", event_name="campaign_created")
    MilestoneFactory(journey=journey, key="contacts", event_name="contacts_imported")
    return journey


def rollup_days(journey):
    return JourneyDayRollup.objects.filter(journey=journey).count()


def generate(workspace, *args):
    call_command("generate_demo_events", "--workspace", workspace.slug, "--quiet", *map(str, args))


def test_it_generates_people_and_events_for_the_workspace(workspace):
    generate(workspace, "--users", 50, "--days", 10)

    assert EndUser.objects.filter(workspace=workspace).count() == 50
    assert Event.objects.filter(workspace=workspace).count() == 500
    assert Event.objects.filter(workspace=workspace, name="$pageview").count() >= 50


def test_it_makes_exactly_the_number_of_events_asked_for(workspace, journey):
    generate(workspace, "--users", 7, "--events", 100)

    per_person = sorted(
        EndUser.objects.filter(workspace=workspace)
        .annotate(n=Count("events"))
        .values_list("n", flat=True)
    )
    assert per_person == [14] * 5 + [15] * 2


def test_every_person_starts_the_journey_and_fewer_reach_each_later_milestone(workspace, journey):
    generate(workspace, "--users", 600, "--days", 60, "--seed", 7)

    assert JourneyProgress.objects.filter(journey=journey).count() == 600
    reached = [
        MilestoneCompletion.objects.filter(milestone=m).count()
        for m in journey.milestones.order_by("position")
    ]
    assert 600 > reached[0] > reached[1] > reached[2] > 0


def test_later_milestones_take_longer_to_reach(workspace, journey):
    generate(workspace, "--users", 600, "--days", 60, "--seed", 3)

    velocity = milestone_velocity.milestone_velocity(
        journey=journey,
        date_range=DateRange(date(2000, 1, 1), timezone.now().date()),
        now=timezone.now(),
    )

    medians = [m.from_start.median for m in velocity.milestones]
    assert medians[0] < medians[1] < medians[2]


def test_an_event_milestone_is_reached_by_its_own_recorded_event(workspace, journey):
    generate(workspace, "--users", 100, "--days", 30)

    completion = MilestoneCompletion.objects.filter(milestone__key="campaign").first()
    assert completion is not None
    assert completion.event is not None
    assert completion.event.name == "campaign_created"
    assert completion.event.timestamp == completion.completed_at
    assert completion.event.end_user_id == completion.end_user_id


def test_the_journey_funnel_of_generated_people_matches_the_live_count(workspace, journey):
    days = DateRange(timezone.now().date() - timedelta(days=40), timezone.now().date())
    generate(workspace, "--users", 50, "--days", 30)
    before = journey_funnel.journey_funnel(journey=journey, date_range=days)  # fills the rollups
    assert rollup_days(journey) > 20

    generate(workspace, "--users", 300, "--days", 30)

    assert JourneyStaleDay.objects.filter(journey=journey).exists()
    tasks.refresh_journey_rollups()  # the server's refresh, every few seconds
    after = journey_funnel.journey_funnel(journey=journey, date_range=days)
    assert after.steps[0].users == before.steps[0].users + 300
    assert after == journey_funnel.journey_funnel(journey=journey, date_range=days, fresh=True)


def test_two_runs_add_people_without_colliding(workspace, journey):
    generate(workspace, "--users", 20, "--seed", 1)
    generate(workspace, "--users", 20, "--seed", 1)

    assert EndUser.objects.filter(workspace=workspace).count() == 40


def test_it_refuses_an_unknown_workspace_and_bad_counts(workspace):
    with pytest.raises(CommandError, match="--users"):
        generate(workspace, "--users", 0)
    with pytest.raises(CommandError, match="--events"):
        generate(workspace, "--users", 10, "--events", 5)
    with pytest.raises(CommandError, match="--events-per-user"):
        generate(workspace, "--users", 10, "--events-per-user", 0)
    with pytest.raises(CommandError, match="No workspace"):
        call_command("generate_demo_events", "--workspace", "nope")
    assert not EndUser.objects.exists()
