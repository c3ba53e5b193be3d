"""Peer comparison in the welcome: "Faster than N % of people who started this week", from
the velocity rollups, never with too few peers and never to say someone is slow."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from analytics import peer_comparison
from onboarding import delivery, services, translation_files
from onboarding.models import Journey, Workspace
from tests.factories import (
    EndUserFactory,
    JourneyFactory,
    JourneyProgressFactory,
    MilestoneCompletionFactory,
    MilestoneFactory,
    ProgressBarFactory,
    ResourceItemFactory,
    ResourceSectionFactory,
    WorkspaceFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cohorts() -> Any:
    peer_comparison.cohorts_forget()
    yield
    peer_comparison.cohorts_forget()


@pytest.fixture
def workspace() -> Workspace:
    return WorkspaceFactory()


@pytest.fixture
def journey(workspace: Workspace) -> Journey:
    journey = JourneyFactory(workspace=workspace, key="setup", name="Set up")
    MilestoneFactory(journey=journey, key="invited", position=0)
    MilestoneFactory(journey=journey, key="launched", position=1)
    services.content_publish(obj=journey)
    return journey


# Everyone starts at the same instant, so everyone is in the same week whatever today is.
START = timezone.now() - timedelta(hours=6)


def person(journey: Journey, name: str, *minutes: int) -> Any:
    """Someone who started the journey at START and reached its milestones after `minutes`."""
    end_user = EndUserFactory(workspace=journey.workspace, external_id=name)
    JourneyProgressFactory(end_user=end_user, journey=journey, started_at=START)
    for milestone, after in zip(journey.milestones.order_by("position"), minutes, strict=False):
        MilestoneCompletionFactory(
            end_user=end_user, milestone=milestone, completed_at=START + timedelta(minutes=after)
        )
    return end_user


def peers_of(end_user: Any) -> dict[str, Any] | None:
    [entry] = delivery.welcome(end_user=end_user, session="s")["journeys"]
    return entry.get("peers")


def test_it_says_how_many_peers_of_the_same_week_were_slower(journey: Journey) -> None:
    # 12 peers reached "invited"; 9 of them took longer than the user's 15 minutes.
    for index, minutes in enumerate([5, 10, 12, 20, 25, 30, 40, 50, 60, 70, 80, 90]):
        person(journey, f"peer-{index}", minutes)
    user = person(journey, "me", 15)

    peers = peers_of(user)

    assert peers is not None
    assert (peers["percent"], peers["people"], peers["milestone"]) == (75, 12, "invited")
    assert peers["text"].startswith("Faster than 75 % of people who started")


def test_it_compares_on_the_furthest_milestone_reached(journey: Journey) -> None:
    for index in range(12):
        person(journey, f"peer-{index}", 5, 100 + index)
    user = person(journey, "me", 30, 60)
    # Slower than everyone at "invited", faster than all 12 at "launched".
    peers = peers_of(user)
    assert peers is not None
    assert (peers["percent"], peers["people"], peers["milestone"]) == (100, 12, "launched")
    assert peers["text"].startswith("Faster than all 12 people who started")


def test_the_users_time_is_counted_to_the_millisecond_as_the_rollups_count_it(
    journey: Journey,
) -> None:
    # Started at .0009 s, done 3.4505 s later: 3 450 ms as the rollups see it (each instant
    # truncated), 3 449 ms as a truncated difference (grain 3 440 ms: then the six who took
    # 3 450 ms too would count as slower).
    start = START.replace(microsecond=900)
    for index in range(12):
        peer = person(journey, f"peer-{index}")
        peer.progress.update(started_at=start)
        MilestoneCompletionFactory(
            end_user=peer,
            milestone=journey.milestones.get(key="invited"),
            completed_at=start + timedelta(microseconds=3_450_500 + 10_000 * (index >= 6)),
        )
    user = person(journey, "me")
    user.progress.update(started_at=start)
    MilestoneCompletionFactory(
        end_user=user,
        milestone=journey.milestones.get(key="invited"),
        completed_at=start + timedelta(microseconds=3_450_500),
    )
    peers = peers_of(user)
    # Six took 3 460 ms: slower. Six tied at 3 450 ms: not slower.
    assert peers is not None
    assert peers["percent"] == 50


def test_it_says_nothing_with_fewer_peers_than_the_minimum(journey: Journey) -> None:
    for index in range(peer_comparison.PEER_MINIMUM - 1):
        person(journey, f"peer-{index}", 60)
    assert peers_of(person(journey, "me", 1)) is None


def test_it_says_nothing_to_someone_slower_than_most(journey: Journey) -> None:
    for index in range(12):
        person(journey, f"peer-{index}", 5 + index)
    assert peers_of(person(journey, "me", 60)) is None


def test_it_says_nothing_before_the_first_milestone(journey: Journey) -> None:
    for index in range(12):
        person(journey, f"peer-{index}", 60)
    assert peers_of(person(journey, "me")) is None


def test_people_of_another_week_are_not_peers(journey: Journey) -> None:
    for index in range(12):
        end_user = person(journey, f"peer-{index}", 60)
        end_user.progress.update(started_at=START - timedelta(days=7))
    assert peers_of(person(journey, "me", 1)) is None


def test_a_resource_center_checklist_carries_the_comparison(journey: Journey) -> None:
    workspace = journey.workspace
    bar = ProgressBarFactory(workspace=workspace, journey=journey, key="setup-bar")
    services.content_publish(obj=bar)
    section = ResourceSectionFactory(workspace=workspace, key="help")
    ResourceItemFactory(section=section, kind="checklist", title="", url="", progress_bar=bar)
    services.content_publish(obj=section)
    for index in range(12):
        person(journey, f"peer-{index}", 60)
    welcome = delivery.welcome(end_user=person(journey, "me", 1), session="s")
    [section_sent] = welcome["content"]["surfaces"]["resource_centers"]
    assert section_sent["items"][0]["peers"]["percent"] == 100


def test_the_comparison_is_written_in_the_persons_language(journey: Journey) -> None:
    translation_files.translation_set(
        workspace=journey.workspace, kind="journey", key="setup", locale="fr",
        texts=[("name", "Installation")],
    )  # fmt: skip
    services.content_publish(obj=journey)
    for index, minutes in enumerate([5, 10, 12, 20, 25, 30, 40, 50, 60, 70, 80, 90]):
        person(journey, f"peer-{index}", minutes)
    french = person(journey, "me", 15)
    french.locale = "fr-FR"
    french.save(update_fields=["locale"])

    peers = peers_of(french)

    assert peers is not None
    # "cette semaine", or "la même semaine" when START fell in last week (Monday small hours).
    assert peers["text"].startswith("Plus rapide que 75 % des personnes qui ont commencé ")
    english = peers_of(person(journey, "you", 15))
    assert english is not None
    assert english["text"].startswith("Faster than 75 % of people who started ")
