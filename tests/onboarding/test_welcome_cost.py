"""What a welcome costs the database: the hellos of one group commit are read with a fixed number
of statements, however many people say hello together and however much content and how many
journeys the workspace publishes. A welcome that read per person or per piece of content would
slow every hello of a busy workspace (the socket's group commit runs these same functions)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from onboarding import batching, delivery, experiments, queries, services
from onboarding.models import (
    Criterion,
    EndUser,
    Event,
    Experiment,
    JourneyProgress,
    JourneyStart,
    Workspace,
)
from tests.factories import (
    ConditionFactory,
    JourneyFactory,
    MilestoneFactory,
    SegmentFactory,
    StepFactory,
    TooltipFactory,
    WalkthroughFactory,
    WorkspaceFactory,
)

PAGE = "https://app.example.com/campaigns/new"


def published(workspace: Workspace, pieces: int) -> None:
    """`pieces` journeys (each with milestones this workspace's people reach), walkthroughs
    and tooltips behind a segment, and an experiment running on the first tooltip."""
    segment = SegmentFactory(workspace=workspace)
    ConditionFactory(segment=segment, value="pro")
    for n in range(pieces):
        journey = JourneyFactory(
            workspace=workspace, key=f"journey-{n}", starts_on=JourneyStart.FIRST_SEEN
        )
        for position, name in enumerate(("signed_in", "message_sent")):
            MilestoneFactory(
                journey=journey,
                key=f"{name}-{n}",
                event_name=name,
                criterion=Criterion.EVENT,
                window=timedelta(days=7),
                position=position,
            )
        services.content_publish(obj=journey)
        walkthrough = WalkthroughFactory(workspace=workspace, key=f"tour-{n}", segment=segment)
        StepFactory(walkthrough=walkthrough, position=0, title="Hello", selector="")
        services.content_publish(obj=walkthrough)
        services.content_publish(
            obj=TooltipFactory(
                workspace=workspace, key=f"tip-{n}", segment=segment, page_url_pattern="/*"
            )
        )
    services.content_publish(
        obj=TooltipFactory(workspace=workspace, key="tip-variant", page_url_pattern="/*")
    )
    experiment = Experiment.objects.create(
        workspace=workspace,
        key="tips",
        name="Tips",
        content_kind="tooltip",
        content_key="tip-0",
        variants=[
            {"key": "control", "weight": 1, "content_key": "tip-0"},
            {"key": "variant", "weight": 1, "content_key": "tip-variant"},
        ],
    )
    experiments.experiment_start(experiment=experiment)


def hellos(workspace: Workspace, people: list[str]) -> list[dict[str, Any]]:
    """What the socket's two group commits do for these hellos, as they do it."""
    messages = [
        {
            "type": "hello",
            "user": {"id": person, "traits": {"plan": "pro", "locale": "fr"}},
            "page": {"url": PAGE},
        }
        for person in people
    ]
    with batching.batch_of_after_commit_work(), transaction.atomic():
        users = delivery.sessions_open_many([delivery.Hello(workspace, m) for m in messages])
    assert all(isinstance(user, EndUser) for user in users)
    requests = [
        delivery.WelcomeRequest(user, "session-1", {"plan": "pro"}, page=PAGE)  # type: ignore[arg-type]
        for user in users
    ]
    with batching.batch_of_after_commit_work(), transaction.atomic():
        return delivery.welcomes_many(requests)


def statements(workspace: Workspace, people: list[str]) -> int:
    with CaptureQueriesContext(connection) as captured:
        welcomes = hellos(workspace, people)
    assert len(welcomes) == len(people)
    return len(captured.captured_queries)


def reached_milestones(workspace: Workspace, people: list[str]) -> None:
    from onboarding import recording

    now = timezone.now()
    for person in people:
        ack = recording.events_record(
            workspace=workspace,
            events=[
                {"id": str(uuid.uuid4()), "name": name, "timestamp": now.isoformat()}
                for name in ("signed_in", "message_sent")
            ],
            source="server",
            end_user=EndUser.objects.get(workspace=workspace, external_id=person),
        )
        assert len(ack.accepted) == 2, ack


@pytest.fixture(autouse=True)
def copies_kept_while_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    # The process rechecks its copies of the live content and the experiments once a second,
    # whoever says hello: on a slow database such a recheck would land in one count only.
    monkeypatch.setattr(queries, "LIVE_CONTENT_RECHECK_SECONDS", 3600.0)
    monkeypatch.setattr(experiments, "LIVE_RECHECK_SECONDS", 3600.0)


@pytest.mark.django_db(transaction=True)
def test_a_welcome_reads_the_same_number_of_statements_for_more_people_and_more_content() -> None:
    counts = {}
    for pieces in (1, 4):
        workspace = WorkspaceFactory(allowed_origins=["https://app.example.com"])
        published(workspace, pieces)
        for size in (1, 12):
            people = [f"w{pieces}-{size}-{n}" for n in range(size)]
            hellos(workspace, people)  # first hello: identified, journeys started
            reached_milestones(workspace, people)
            hellos(workspace, people)  # the process's caches are warm from here on
            counts[(pieces, size)] = statements(workspace, people)
            welcome = hellos(workspace, people[:1])[0]
            # The welcome really carries what was counted: journeys reached, content shown in
            # the person's language, the experiment's arm.
            assert len(welcome["journeys"]) == pieces
            assert all(
                all(m["completed_at"] for m in entry["milestones"]) for entry in welcome["journeys"]
            )
            assert len(welcome["content"]["walkthroughs"]) == pieces
            assert len(welcome["content"]["tooltips"]) == pieces
            assert welcome["locale"]["tag"] == workspace.default_locale
    assert len(set(counts.values())) == 1, counts


@pytest.mark.django_db(transaction=True)
def test_a_crowd_of_new_people_is_written_with_as_many_statements_as_two() -> None:
    workspace = WorkspaceFactory(allowed_origins=["https://app.example.com"])
    published(workspace, 1)
    hellos(workspace, ["first"])  # the process's caches are warm from here on
    few, many = [f"few-{n}" for n in range(2)], [f"many-{n}" for n in range(20)]
    assert statements(workspace, few) == statements(workspace, many)
    # What those statements wrote: each person's language, and each one's exposure.
    assert set(EndUser.objects.filter(workspace=workspace).values_list("locale", flat=True)) == {
        "fr"
    }
    exposed = Event.objects.filter(workspace=workspace, name=experiments.EXPOSURE_EVENT)
    assert exposed.values("end_user_id").distinct().count() == 1 + len(few) + len(many)


@pytest.mark.django_db(transaction=True)
def test_new_people_are_identified_with_one_read_one_insert_and_one_for_their_journeys() -> None:
    """Identifying is most of what a new person's hello writes: the people looked up (and
    locked), the missing ones inserted, their journeys started, each with one statement for the
    whole group commit; rows this transaction inserted are not read back."""
    workspace = WorkspaceFactory(allowed_origins=["https://app.example.com"])
    published(workspace, 2)
    hellos(workspace, ["first"])  # the process's caches are warm from here on
    people = [f"new-{n}" for n in range(20)]
    said = [delivery.Hello(workspace, {"type": "hello", "user": {"id": p}}) for p in people]

    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        users = delivery.sessions_open_many(said)
    with transaction.atomic(), CaptureQueriesContext(connection) as again:
        returning = delivery.sessions_open_many(said)

    assert len(captured.captured_queries) == 3, [q["sql"][:60] for q in captured]
    assert [user.external_id for user in users] == people  # type: ignore[union-attr]
    assert [user.pk for user in returning] == [user.pk for user in users]  # type: ignore[union-attr]
    assert len(again.captured_queries) == 2  # the people locked, their journeys' rows read
    started = JourneyProgress.objects.filter(end_user__external_id__in=people)
    assert started.count() == len(people) * 2
    first_seen = dict(
        EndUser.objects.filter(external_id__in=people).values_list("pk", "first_seen_at")
    )
    assert all(row.started_at == first_seen[row.end_user_id] for row in started)
