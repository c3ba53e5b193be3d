"""segment_members decides membership in the database exactly as onboarding's
segment_matches does person by person."""

from __future__ import annotations

import pytest

from analytics.report.segment_members import segment_members
from onboarding.models import Condition, LifecycleStage, Segment
from onboarding.segments import segment_matches
from tests.analytics.conftest import at
from tests.factories import (
    ConditionFactory,
    JourneyFactory,
    MilestoneCompletionFactory,
    MilestoneFactory,
    SegmentFactory,
)

TRAITS = [
    {"plan": "Pro", "seats": 12, "score": "7.5", "beta": True},
    {"plan": "pro", "seats": 3, "score": "abc", "beta": False},
    {"plan": "free", "seats": 12.0, "score": " 10 ", "company": "Acme Corp"},
    {"plan": None, "seats": "12", "company": "acme"},
    {"seats": -4, "score": "1e2", "company": "50% off_shop"},
    {},
]


@pytest.fixture
def people(workspace, person, track):
    journey = JourneyFactory(workspace=workspace)
    milestone = MilestoneFactory(journey=journey, key="installed")
    crowd = []
    for index, traits in enumerate(TRAITS):
        who = person(
            f"p{index}",
            traits=traits,
            lifecycle_stage=LifecycleStage.PQL if index % 2 else LifecycleStage.TRIAL,
        )
        if index % 3 == 0:
            MilestoneCompletionFactory(
                end_user=who, workspace=workspace, milestone=milestone, journey=journey
            )
        if index % 2 == 0:
            track(who, "campaign_created", at(3))
        crowd.append(who)
    return crowd, milestone


CASES = [
    ("trait", "plan", "eq", "PRO"),
    ("trait", "plan", "neq", "pro"),
    ("trait", "plan", "exists", ""),
    ("trait", "plan", "not_exists", ""),
    ("trait", "company", "contains", "ACME"),
    ("trait", "company", "contains", "50%"),
    ("trait", "company", "contains", "_"),
    ("trait", "company", "not_contains", "acme"),
    ("trait", "plan", "in", "free, PRO"),
    ("trait", "beta", "eq", "true"),
    ("trait", "beta", "eq", "false"),
    ("trait", "seats", "gt", "5"),
    ("trait", "seats", "gte", "12"),
    ("trait", "seats", "lt", "0"),
    ("trait", "seats", "lte", "3"),
    ("trait", "seats", "eq", "12"),
    ("trait", "score", "gt", "7"),
    ("trait", "score", "lte", "100"),
    ("trait", "beta", "gt", "0"),
    ("lifecycle", "", "is", LifecycleStage.PQL),
    ("lifecycle", "", "is_not", LifecycleStage.PQL),
    ("milestone", "", "completed", ""),
    ("milestone", "", "not_completed", ""),
    ("event", "", "performed", ""),
    ("event", "", "not_performed", ""),
]


def make_condition(segment, milestone, kind, trait, operator, value, position=0):
    return ConditionFactory(
        segment=segment,
        position=position,
        kind=kind,
        trait=trait,
        operator=operator,
        value=value,
        milestone=milestone if kind == Condition.Kind.MILESTONE else None,
        event_name="campaign_created" if kind == Condition.Kind.EVENT else "",
    )


def python_members(segment, crowd):
    segment = Segment.objects.prefetch_related("conditions").get(pk=segment.pk)
    return {p.external_id for p in crowd if segment_matches(segment=segment, end_user=p)}


def database_members(segment):
    return set(segment_members(segment=segment).values_list("external_id", flat=True))


@pytest.mark.parametrize(("kind", "trait", "operator", "value"), CASES)
def test_each_condition_selects_the_people_segment_matches_selects(
    workspace, people, kind, trait, operator, value
):
    crowd, milestone = people
    segment = SegmentFactory(workspace=workspace)
    make_condition(segment, milestone, kind, trait, operator, value)

    assert database_members(segment) == python_members(segment, crowd)


@pytest.mark.parametrize("match", [Segment.Match.ALL, Segment.Match.ANY])
def test_conditions_combine_by_all_or_any_as_segment_matches_does(workspace, people, match):
    crowd, milestone = people
    segment = SegmentFactory(workspace=workspace, match=match)
    make_condition(segment, milestone, "trait", "seats", "gte", "12", position=0)
    make_condition(segment, milestone, "event", "", "performed", "", position=1)
    make_condition(segment, milestone, "lifecycle", "", "is_not", LifecycleStage.PQL, position=2)

    members = database_members(segment)

    assert members == python_members(segment, crowd)
    assert members == ({"p0", "p2"} if match == Segment.Match.ALL else {"p0", "p2", "p3", "p4"})


def test_a_segment_without_conditions_holds_the_whole_workspace_only(workspace, people):
    crowd, _ = people
    segment = SegmentFactory(workspace=workspace)
    SegmentFactory()  # another workspace's people never count

    assert database_members(segment) == {p.external_id for p in crowd}
