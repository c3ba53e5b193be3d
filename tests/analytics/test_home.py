"""The analytics home: what its tiles say and how many queries a render costs."""

from __future__ import annotations

import re
from datetime import timedelta

from django.db import connection
from django.test import Client
from django.utils import timezone

from onboarding.models import EndUser, JourneyProgress
from tests.factories import (
    JourneyFactory,
    JourneyProgressFactory,
    MilestoneCompletionFactory,
    MilestoneFactory,
    UserFactory,
)

HOME = "/admin/analytics/dashboard/"


def journey_with_people(workspace, person, key, people):
    journey = JourneyFactory(workspace=workspace, key=key, name=key.title())
    first = MilestoneFactory(journey=journey, key=f"{key}-first", position=0)
    MilestoneFactory(journey=journey, key=f"{key}-second", position=1, counts_toward_pql=True)
    now = timezone.now()
    for index in range(people):
        someone = person(f"{key}-{index}")
        JourneyProgressFactory(
            end_user=someone, journey=journey, started_at=now - timedelta(days=2 + index)
        )
        MilestoneCompletionFactory(
            end_user=someone,
            workspace=workspace,
            milestone=first,
            journey=journey,
            completed_at=now - timedelta(days=1 + index),
        )
    return journey


def admin_client():
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_the_home_s_queries_grow_by_a_few_per_journey_not_with_its_people(
    workspace, person, django_assert_max_num_queries
):
    journey_with_people(workspace, person, "trial", 3)
    client = admin_client()
    address = f"{HOME}?workspace={workspace.pk}"
    client.get(address)  # the first render counts the rollups of the new days
    # On PostgreSQL a report query comes with its transaction and settings (BEGIN, set_config,
    # COMMIT): the PQLs' once; a journey's tile (funnel, velocity) makes the same on both.
    postgresql = connection.vendor == "postgresql"
    per_journey = 10

    with django_assert_max_num_queries(13 + per_journey + (3 if postgresql else 0)) as one:
        assert client.get(address).status_code == 200
    # Read now: the next request empties the connection's query log.
    one_journey = len(one)
    journey_with_people(workspace, person, "team", 30)
    client.get(address)
    with django_assert_max_num_queries(one_journey + per_journey) as two:
        assert client.get(address).status_code == 200
    two_journeys = len(two)

    # A journey's tile (its funnel and velocity) costs the same reads however many started it.
    assert two_journeys - one_journey == per_journey


def test_the_pqls_tile_counts_every_pql_of_the_week_and_lists_the_best_scores(
    workspace, person, track
):
    journey = journey_with_people(workspace, person, "trial", 0)
    now = timezone.now()
    for index in range(7):
        someone = person(f"pql-{index}")
        JourneyProgressFactory(
            end_user=someone, journey=journey, started_at=now - timedelta(days=1), pql_at=now
        )
        for _ in range(index):
            track(someone, "login", now - timedelta(minutes=1))
    # More PQLs than the report lists at once (1 000), none of them engaged.
    quiet = EndUser.objects.bulk_create(
        EndUser(workspace=workspace, external_id=f"quiet-{index}") for index in range(1000)
    )
    JourneyProgress.objects.bulk_create(
        JourneyProgress(
            workspace=workspace, end_user=someone, journey=journey, started_at=now, pql_at=now
        )
        for someone in quiet
    )

    html = admin_client().get(f"{HOME}?workspace={workspace.pk}").content.decode()

    assert "1,007 new since Monday" in html
    listed = re.findall(r"(pql-\d): score \d+", html)
    assert listed == ["pql-6", "pql-5", "pql-4", "pql-3", "pql-2"]
