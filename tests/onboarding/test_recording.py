from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from onboarding import recording, services, signals
from onboarding.models import EndUser, ErasureRecord, Event, JourneyProgress, MilestoneCompletion
from tests.factories import EndUserFactory, JourneyFactory, MilestoneFactory, WorkspaceFactory
from tests.onboarding.conftest import TrialJourney

pytestmark = pytest.mark.django_db(transaction=True)

SIGNUP = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def event(name: str = "message_sent", user: str = "u1", at: datetime | None = None, **extra: Any):
    return {
        "id": str(uuid.uuid4()),
        "user_id": user,
        "name": name,
        "timestamp": (at or SIGNUP + timedelta(hours=1)).isoformat(),
        **extra,
    }


def signed_up(trial: TrialJourney, external_id: str = "u1") -> EndUser:
    return recording.end_user_identify(
        workspace=trial.workspace,
        external_id=external_id,
        traits={"signed_up_at": SIGNUP.isoformat(), "plan": "trial"},
    )


def test_a_batch_is_stored_once_however_often_it_is_sent(trial: TrialJourney) -> None:
    batch = [event(), event(), event("campaign_created")]

    first = recording.events_record(workspace=trial.workspace, events=batch, source="server")
    again = recording.events_record(workspace=trial.workspace, events=batch, source="server")

    assert sorted(first.accepted) == sorted(e["id"] for e in batch)
    assert first.duplicates == []
    assert first.rejected == []
    assert again.accepted == []
    assert sorted(again.duplicates) == sorted(e["id"] for e in batch)
    assert Event.objects.count() == 3


def test_the_same_id_twice_in_one_batch_is_stored_once(trial: TrialJourney) -> None:
    one = event()

    ack = recording.events_record(workspace=trial.workspace, events=[one, one], source="server")

    assert ack.accepted == [one["id"]]
    assert ack.duplicates == [one["id"]]
    assert Event.objects.count() == 1


def test_bad_events_are_named_and_the_good_ones_still_stored(trial: TrialJourney) -> None:
    good = event()
    deep: dict[str, Any] = {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}
    batch = [
        good,
        {"user_id": "u1", "name": "x"},
        {"id": "not-a-uuid", "user_id": "u1", "name": "x"},
        event(timestamp="yesterday-ish"),
        event(properties=deep),
        event(properties="flat"),
        event(name=""),
        event(user=""),
        event(properties={"blob": "x" * 40_000}),
        "not an object",
    ]

    ack = recording.events_record(workspace=trial.workspace, events=batch, source="server")

    reasons = {r["index"]: r["reason"] for r in ack.rejected}
    assert ack.accepted == [good["id"]]
    assert reasons == {
        1: "id is missing",
        2: "id 'not-a-uuid' is not a UUID",
        3: "timestamp 'yesterday-ish' is not an ISO 8601 date-time",
        4: "properties are nested 6 levels deep; the limit is 5",
        5: "properties must be a JSON object",
        6: "name is missing",
        7: "user id must not be empty",
        8: reasons[8],
        9: "an event must be a JSON object",
    }
    assert reasons[8].startswith("event is ")
    assert reasons[8].endswith("the limit is 32768")
    assert list(Event.objects.values_list("client_id", flat=True)) == [uuid.UUID(good["id"])]


def test_client_clock_skew_is_corrected_with_sent_at(trial: TrialJourney) -> None:
    received = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    # The client's clock is 2 hours fast: it says it sent at 14:00 something it did at 13:59.
    skewed = event(at=datetime(2026, 11, 22, 13, 59, tzinfo=UTC))

    recording.events_record(
        workspace=trial.workspace,
        events=[skewed],
        source="widget",
        sent_at="2026-11-22T14:00:00Z",
        received_at=received,
    )

    stored = Event.objects.get()
    assert stored.timestamp == datetime(2026, 11, 22, 11, 59, tzinfo=UTC)
    assert stored.clock_skew_clamped is False


def test_a_timestamp_far_in_the_future_is_clamped_and_flagged(trial: TrialJourney) -> None:
    received = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

    recording.events_record(
        workspace=trial.workspace,
        events=[event(at=received + timedelta(days=3))],
        source="server",
        received_at=received,
    )

    stored = Event.objects.get()
    assert stored.timestamp == received
    assert stored.clock_skew_clamped is True


def test_a_milestone_completes_on_the_event_that_first_meets_its_count(
    trial: TrialJourney,
) -> None:
    end_user = signed_up(trial)
    times = [SIGNUP + timedelta(hours=h) for h in (1, 2, 5)]

    recording.events_record(
        workspace=trial.workspace,
        events=[event(at=times[0]), event(at=times[1])],
        source="server",
    )
    assert not MilestoneCompletion.objects.exists()
    recording.events_record(workspace=trial.workspace, events=[event(at=times[2])], source="server")

    completion = MilestoneCompletion.objects.get()
    assert completion.milestone == trial.messages
    assert completion.end_user == end_user
    assert completion.completed_at == times[2]
    assert completion.event is not None
    assert completion.event.timestamp == times[2]


def test_events_outside_the_window_from_journey_start_do_not_count(trial: TrialJourney) -> None:
    signed_up(trial)
    late = [SIGNUP + timedelta(hours=h) for h in (1, 2, 25)]

    recording.events_record(
        workspace=trial.workspace, events=[event(at=t) for t in late], source="server"
    )

    assert not MilestoneCompletion.objects.exists()


def test_the_window_boundary_is_inclusive(trial: TrialJourney) -> None:
    signed_up(trial)
    times = [SIGNUP, SIGNUP + timedelta(hours=12), SIGNUP + timedelta(days=1)]

    recording.events_record(
        workspace=trial.workspace, events=[event(at=t) for t in times], source="server"
    )

    assert MilestoneCompletion.objects.get().completed_at == SIGNUP + timedelta(days=1)


def test_one_batch_reaching_several_milestones_completes_each_on_its_own_event(
    trial: TrialJourney,
) -> None:
    """The milestones a batch reaches are counted in one query for all of them: each still
    completes for the right people, on the event that met its own count and window."""
    first = MilestoneFactory(
        journey=trial.journey, key="first-message", event_name="message_sent", position=4
    )
    invited = MilestoneFactory(
        journey=trial.journey,
        key="invited-two",
        event_name="member_invited",
        min_count=2,
        window=timedelta(hours=3),
        position=5,
    )
    services.content_publish(obj=trial.journey)
    ann, bob = signed_up(trial, "ann"), signed_up(trial, "bob")
    hours = [SIGNUP + timedelta(hours=h) for h in range(1, 6)]

    recording.events_record(
        workspace=trial.workspace,
        events=[
            *(event(user="ann", at=t) for t in hours[:3]),  # 3 messages: first + three
            event(user="bob", at=hours[0]),  # 1 message: first only
            *(event("member_invited", user="ann", at=t) for t in hours[1:3]),  # in the window
            *(event("member_invited", user="bob", at=t) for t in hours[3:5]),  # 2nd too late
        ],
        source="server",
    )

    completed = {
        (c.end_user_id, c.milestone_id): c.completed_at for c in MilestoneCompletion.objects.all()
    }
    assert completed == {
        (ann.pk, first.pk): hours[0],
        (ann.pk, trial.messages.pk): hours[2],
        (ann.pk, invited.pk): hours[2],
        (bob.pk, first.pk): hours[0],
    }


def test_a_walkthrough_milestone_completes_when_its_walkthrough_is_completed(
    trial: TrialJourney,
) -> None:
    signed_up(trial)

    recording.events_record(
        workspace=trial.workspace,
        events=[
            event("$walkthrough_completed", properties={"walkthrough": "another-tour"}),
            event("$walkthrough_completed", properties={"walkthrough": "setup-tour"}),
        ],
        source="widget",
    )

    assert list(MilestoneCompletion.objects.values_list("milestone__key", flat=True)) == [
        "took-tour"
    ]


def test_reaching_every_pql_milestone_makes_a_pql_once(trial: TrialJourney) -> None:
    end_user = signed_up(trial)
    heard: list[dict[str, Any]] = []

    def hear(**kwargs: Any) -> None:
        heard.append(kwargs)

    signals.pql_reached.connect(hear)
    try:
        tour_at = SIGNUP + timedelta(hours=3)
        recording.events_record(
            workspace=trial.workspace,
            events=[event(at=SIGNUP + timedelta(minutes=m)) for m in (1, 2, 3)]
            + [
                event(
                    "$walkthrough_completed", at=tour_at, properties={"walkthrough": "setup-tour"}
                )
            ],
            source="server",
        )
        recording.events_record(workspace=trial.workspace, events=[event()], source="server")
    finally:
        signals.pql_reached.disconnect(hear)

    progress = JourneyProgress.objects.get(end_user=end_user)
    assert progress.pql_at == tour_at
    assert progress.completed_at is None  # installed-js is not reached yet
    assert [h["end_user_id"] for h in heard] == [end_user.pk]


def test_a_server_reported_milestone_completes_once(trial: TrialJourney) -> None:
    end_user = signed_up(trial)

    first = recording.milestone_complete(end_user=end_user, milestone=trial.installed)
    second = recording.milestone_complete(end_user=end_user, milestone=trial.installed)

    assert first is not None
    assert first.source == "server"
    assert second is None
    assert MilestoneCompletion.objects.filter(milestone=trial.installed).count() == 1


def test_journeys_start_at_signup_or_first_seen_as_the_journey_says(
    trial: TrialJourney,
) -> None:
    first_seen_journey = JourneyFactory(workspace=trial.workspace, starts_on="first_seen")
    MilestoneFactory(journey=first_seen_journey, event_name="x")
    from onboarding import services

    services.content_publish(obj=first_seen_journey)

    end_user = signed_up(trial)

    starts = dict(
        JourneyProgress.objects.filter(end_user=end_user).values_list("journey_id", "started_at")
    )
    assert starts[trial.journey.pk] == SIGNUP
    assert starts[first_seen_journey.pk] == end_user.first_seen_at
    assert end_user.first_seen_at > SIGNUP


def test_draft_milestones_do_not_complete_until_the_journey_is_published(
    workspace: Any,
) -> None:
    journey = JourneyFactory(workspace=workspace)
    MilestoneFactory(journey=journey, event_name="message_sent")

    recording.events_record(workspace=workspace, events=[event()], source="server")

    assert not MilestoneCompletion.objects.exists()


def test_erasing_an_end_user_removes_every_record_and_a_new_event_starts_afresh(
    trial: TrialJourney,
) -> None:
    end_user = signed_up(trial)
    recording.events_record(
        workspace=trial.workspace,
        events=[event(at=SIGNUP + timedelta(minutes=m)) for m in (1, 2, 3)],
        source="server",
    )
    assert MilestoneCompletion.objects.filter(end_user=end_user).exists()

    erased = recording.end_user_erase(
        end_user=end_user, requested_by=ErasureRecord.Requester.SECRET_KEY
    )
    recording.events_record(workspace=trial.workspace, events=[event()], source="server")

    assert erased == {"events": 3, "completions": 1, "journeys": 1}
    reborn = EndUser.objects.get(workspace=trial.workspace, external_id="u1")
    assert reborn.pk != end_user.pk
    assert Event.objects.filter(end_user=reborn).count() == 1
    assert not MilestoneCompletion.objects.exists()


def test_events_of_one_workspace_never_reach_another(trial: TrialJourney) -> None:
    other = WorkspaceFactory()
    shared_id = event()

    recording.events_record(workspace=trial.workspace, events=[shared_id], source="server")
    ack = recording.events_record(workspace=other, events=[shared_id], source="server")

    # Ids are unique per workspace: the other workspace stores its own copy for its own user.
    assert ack.accepted == [shared_id["id"]]
    assert EndUser.objects.filter(external_id="u1").count() == 2
    assert Event.objects.filter(workspace=other).count() == 1


def test_traits_merge_and_a_bad_signup_time_is_refused(trial: TrialJourney) -> None:
    EndUserFactory(workspace=trial.workspace, external_id="u9", traits={"plan": "trial"})

    merged = recording.end_user_identify(
        workspace=trial.workspace, external_id="u9", traits={"role": "admin"}
    )
    with pytest.raises(recording.EventRejected, match=r"traits\.signed_up_at 'soon'"):
        recording.end_user_identify(
            workspace=trial.workspace, external_id="u9", traits={"signed_up_at": "soon"}
        )

    assert merged.traits == {"plan": "trial", "role": "admin"}


def test_signals_announce_what_was_recorded_after_commit(trial: TrialJourney) -> None:
    heard: list[str] = []

    def on_recorded(**kwargs: Any) -> None:
        heard.append(f"events:{len(kwargs['event_ids'])}")

    def on_completed(**kwargs: Any) -> None:
        heard.append(f"milestone:{kwargs['milestone_id']}")

    signals.events_recorded.connect(on_recorded)
    signals.milestone_completed.connect(on_completed)
    try:
        signed_up(trial)
        recording.events_record(
            workspace=trial.workspace,
            events=[event(at=SIGNUP + timedelta(minutes=m)) for m in (1, 2, 3)],
            source="server",
        )
    finally:
        signals.events_recorded.disconnect(on_recorded)
        signals.milestone_completed.disconnect(on_completed)

    assert heard == [f"milestone:{trial.messages.pk}", "events:3"]


def test_journey_progress_reports_percent_and_pql(trial: TrialJourney) -> None:
    end_user = signed_up(trial)
    recording.milestone_complete(end_user=end_user, milestone=trial.installed, at=timezone.now())

    (progress,) = recording.journey_progress(end_user=end_user)

    assert progress["journey"] == {"key": "trial", "name": "Trial onboarding"}
    assert progress["completed"] == 1
    assert progress["total"] == 3
    assert progress["percent"] == 33
    assert progress["pql"] is False
    assert [m["key"] for m in progress["milestones"]] == [
        "installed-js",
        "sent-3-messages",
        "took-tour",
    ]
    assert progress["milestones"][0]["completed_at"] is not None


def test_changed_traits_are_announced_after_commit(trial: TrialJourney) -> None:
    heard: list[list[str]] = []

    def hear(**kwargs: Any) -> None:
        heard.append(kwargs["traits_changed"])

    signals.end_user_updated.connect(hear)
    try:
        recording.end_user_identify(workspace=trial.workspace, external_id="u5", traits={"a": 1})
        recording.end_user_identify(workspace=trial.workspace, external_id="u5", traits={"a": 1})
        recording.end_user_identify(
            workspace=trial.workspace, external_id="u5", traits={"a": 2, "b": "x"}
        )
    finally:
        signals.end_user_updated.disconnect(hear)

    assert heard == [["a"], ["a", "b"]]


def test_nul_characters_and_impossible_times_are_rejected_not_fatal(trial: TrialJourney) -> None:
    good = event()
    batch = [
        good,
        event(properties={"note": "a\x00b"}),
        event(name="sent\x00"),
        event(user="org/42"),
        event(timestamp="0001-01-01T00:00:00+05:00"),
        event(timestamp="1999-12-31T23:59:59Z"),
    ]

    ack = recording.events_record(
        workspace=trial.workspace, events=batch, source="server", sent_at="9999-12-31T00:00:00Z"
    )

    reasons = [r["reason"] for r in ack.rejected]
    assert ack.accepted == [good["id"]]
    assert reasons[0] == "properties.note must not contain NUL (U+0000) characters"
    assert reasons[1] == "name must not contain NUL (U+0000) characters"
    assert reasons[2] == "user id must not contain '/' or NUL characters"
    assert reasons[3].endswith("is outside 2000-01-01 … 9000-01-01")
    assert reasons[4].endswith("is outside 2000-01-01 … 9000-01-01")


def test_a_milestone_deleted_from_the_draft_does_not_break_recording(
    trial: TrialJourney,
) -> None:
    signed_up(trial)
    trial.messages.delete()  # still in the published snapshot until the next publish

    ack = recording.events_record(
        workspace=trial.workspace,
        events=[event(at=SIGNUP + timedelta(minutes=m)) for m in (1, 2, 3)],
        source="server",
    )

    assert len(ack.accepted) == 3
    assert not MilestoneCompletion.objects.exists()


def test_a_failing_receiver_does_not_silence_the_others(trial: TrialJourney) -> None:
    heard: list[str] = []

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("receiver down")

    def working(**kwargs: Any) -> None:
        from django.db import connection

        heard.append(f"in transaction: {connection.in_atomic_block}")

    signals.milestone_completed.connect(broken)
    signals.milestone_completed.connect(working)
    try:
        end_user = signed_up(trial)
        recording.milestone_complete(end_user=end_user, milestone=trial.installed)
    finally:
        signals.milestone_completed.disconnect(broken)
        signals.milestone_completed.disconnect(working)

    assert heard == ["in transaction: False"]
