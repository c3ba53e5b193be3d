"""Inaction and time triggers, with the clock passed in (no sleeping, no frozen globals)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from engagement import services
from engagement.models import Channel, Delivery, FrequencyCap, Rule, Trigger, Unsubscription
from onboarding.models import EndUser
from onboarding.services import content_publish
from tests.engagement.factories import RuleFactory
from tests.factories import (
    EndUserFactory,
    JourneyFactory,
    JourneyProgressFactory,
    MilestoneCompletionFactory,
    MilestoneFactory,
)

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


@pytest.fixture
def t0() -> datetime:
    return timezone.now().replace(microsecond=0) - timedelta(days=60)


def sweep(at: datetime, capture: Any) -> None:
    with capture(execute=True):
        services.rules_sweep(now=at)


def fired_for(rule: Rule) -> list[str]:
    return sorted(
        Delivery.objects.filter(rule=rule).values_list("end_user__external_id", flat=True)
    )


def test_it_reminds_a_trial_user_on_day_10_who_has_not_reached_the_milestone(
    t0: datetime, django_capture_on_commit_callbacks: Any
) -> None:
    journey = JourneyFactory()
    milestone = MilestoneFactory(journey=journey, key="initial-value")
    rule = RuleFactory(
        workspace=journey.workspace,
        trigger=Trigger.MILESTONE_NOT_REACHED,
        event_name="",
        milestone=milestone,
        delay=10 * DAY,
        created_at=t0,
    )
    stuck = EndUserFactory(workspace=journey.workspace, external_id="stuck")
    done = EndUserFactory(workspace=journey.workspace, external_id="done")
    late = EndUserFactory(workspace=journey.workspace, external_id="late")
    for end_user in (stuck, done):
        JourneyProgressFactory(end_user=end_user, journey=journey, started_at=t0 + DAY)
    JourneyProgressFactory(end_user=late, journey=journey, started_at=t0 + 5 * DAY)
    MilestoneCompletionFactory(end_user=done, milestone=milestone, completed_at=t0 + 3 * DAY)

    sweep(t0 + 10 * DAY, django_capture_on_commit_callbacks)
    assert fired_for(rule) == []

    sweep(t0 + 11 * DAY + timedelta(minutes=1), django_capture_on_commit_callbacks)
    assert fired_for(rule) == ["stuck"]

    sweep(t0 + 16 * DAY, django_capture_on_commit_callbacks)
    sweep(t0 + 17 * DAY, django_capture_on_commit_callbacks)
    assert fired_for(rule) == ["late", "stuck"]
    assert Delivery.objects.get(rule=rule, end_user=stuck).payload["facts"] == {
        "deadline": (t0 + 11 * DAY).isoformat(),
        "milestone": "initial-value",
    }


def test_it_counts_from_the_previous_milestone_when_asked(
    t0: datetime, django_capture_on_commit_callbacks: Any
) -> None:
    journey = JourneyFactory()
    first = MilestoneFactory(journey=journey, position=0)
    second = MilestoneFactory(journey=journey, position=1)
    rule = RuleFactory(
        workspace=journey.workspace,
        trigger=Trigger.MILESTONE_NOT_REACHED,
        event_name="",
        milestone=second,
        counted_from=Rule.CountedFrom.PREVIOUS_MILESTONE,
        delay=2 * DAY,
        created_at=t0,
    )
    quick = EndUserFactory(workspace=journey.workspace, external_id="quick")
    slow = EndUserFactory(workspace=journey.workspace, external_id="slow")
    MilestoneCompletionFactory(end_user=quick, milestone=first, completed_at=t0 + DAY)
    MilestoneCompletionFactory(end_user=quick, milestone=second, completed_at=t0 + 2 * DAY)
    MilestoneCompletionFactory(end_user=slow, milestone=first, completed_at=t0 + 5 * DAY)

    sweep(t0 + 6 * DAY, django_capture_on_commit_callbacks)
    assert fired_for(rule) == []

    sweep(t0 + 8 * DAY, django_capture_on_commit_callbacks)
    assert fired_for(rule) == ["slow"]


def test_it_nudges_a_user_who_went_quiet_again_after_each_quiet_spell(
    t0: datetime, django_capture_on_commit_callbacks: Any
) -> None:
    end_user = EndUserFactory(external_id="quiet", last_seen_at=t0 + DAY)
    EndUserFactory(workspace=end_user.workspace, external_id="busy", last_seen_at=t0 + 16 * DAY)
    rule = RuleFactory(
        workspace=end_user.workspace,
        trigger=Trigger.INACTIVE,
        event_name="",
        delay=7 * DAY,
        once_per_user=False,
        created_at=t0,
    )

    sweep(t0 + 9 * DAY, django_capture_on_commit_callbacks)
    assert fired_for(rule) == ["quiet"]

    end_user.last_seen_at = t0 + 10 * DAY
    end_user.save(update_fields=["last_seen_at"])
    sweep(t0 + 12 * DAY, django_capture_on_commit_callbacks)
    sweep(t0 + 18 * DAY, django_capture_on_commit_callbacks)

    assert fired_for(rule) == ["quiet", "quiet"]


def test_it_sends_a_message_a_fixed_time_after_signup(
    t0: datetime, django_capture_on_commit_callbacks: Any
) -> None:
    end_user = EndUserFactory(external_id="new", signed_up_at=t0 + DAY)
    rule = RuleFactory(
        workspace=end_user.workspace,
        trigger=Trigger.AFTER_SIGNUP,
        event_name="",
        delay=3 * DAY,
        created_at=t0,
    )

    sweep(t0 + 3 * DAY, django_capture_on_commit_callbacks)
    assert fired_for(rule) == []
    sweep(t0 + 4 * DAY, django_capture_on_commit_callbacks)
    sweep(t0 + 5 * DAY, django_capture_on_commit_callbacks)
    assert fired_for(rule) == ["new"]


def test_a_new_rule_does_not_reach_deadlines_that_passed_before_it_existed(
    t0: datetime, django_capture_on_commit_callbacks: Any
) -> None:
    rule = RuleFactory(
        trigger=Trigger.AFTER_SIGNUP, event_name="", delay=DAY, created_at=t0 + 10 * DAY
    )
    EndUserFactory(workspace=rule.workspace, external_id="old", signed_up_at=t0)

    sweep(t0 + 12 * DAY, django_capture_on_commit_callbacks)

    assert fired_for(rule) == []


def test_a_paused_rule_sends_no_backlog_when_resumed(
    t0: datetime, django_capture_on_commit_callbacks: Any
) -> None:
    rule = RuleFactory(
        trigger=Trigger.AFTER_SIGNUP, event_name="", delay=DAY, created_at=t0, is_paused=True
    )
    EndUserFactory(workspace=rule.workspace, external_id="during-pause", signed_up_at=t0 + DAY)
    EndUserFactory(workspace=rule.workspace, external_id="after-resume", signed_up_at=t0 + 5 * DAY)

    sweep(t0 + 4 * DAY, django_capture_on_commit_callbacks)
    Rule.objects.filter(pk=rule.pk).update(is_paused=False)
    sweep(t0 + 7 * DAY, django_capture_on_commit_callbacks)

    assert fired_for(rule) == ["after-resume"]


def test_a_trait_rule_is_also_caught_up_by_the_sweep(
    t0: datetime, django_capture_on_commit_callbacks: Any
) -> None:
    rule = RuleFactory(
        trigger=Trigger.TRAIT_THRESHOLD, event_name="", trait="seats", threshold=10, created_at=t0
    )
    EndUserFactory(workspace=rule.workspace, external_id="big", traits={"seats": 12})
    EndUserFactory(workspace=rule.workspace, external_id="small", traits={"seats": 3})

    sweep(t0 + DAY, django_capture_on_commit_callbacks)

    assert fired_for(rule) == ["big"]


def test_the_trait_sweep_compares_numbers_in_the_database_and_skips_other_types(
    t0: datetime, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rule = RuleFactory(
        trigger=Trigger.TRAIT_THRESHOLD, event_name="", trait="seats", threshold=10, created_at=t0
    )
    # Values the database lets through but that are not numbers come first (lower ids) and
    # fill whole batches: they must not hide the real ones behind them.
    monkeypatch.setattr(services, "SWEEP_BATCH", 2)
    odd = ["12", True, {"n": 12}, [12], "abc"]
    for n, value in enumerate(odd):
        EndUserFactory(workspace=rule.workspace, external_id=f"odd-{n}", traits={"seats": value})
    for name, value in [("int", 10), ("float", 10.5), ("below", 9.99), ("big", 10**9)]:
        EndUserFactory(workspace=rule.workspace, external_id=name, traits={"seats": value})
    EndUserFactory(workspace=rule.workspace, external_id="no-trait", traits={"plan": "pro"})

    sweep(t0 + DAY, django_capture_on_commit_callbacks)
    sweep(t0 + 2 * DAY, django_capture_on_commit_callbacks)

    assert fired_for(rule) == ["big", "float", "int"]


def test_after_its_first_pass_the_trait_sweep_looks_only_at_people_seen_since(
    t0: datetime, django_capture_on_commit_callbacks: Any
) -> None:
    rule = RuleFactory(
        trigger=Trigger.TRAIT_THRESHOLD, event_name="", trait="seats", threshold=10, created_at=t0
    )
    quiet = EndUserFactory(
        workspace=rule.workspace, external_id="quiet", traits={"seats": 3}, last_seen_at=t0
    )
    lost = EndUserFactory(
        workspace=rule.workspace, external_id="lost-signal", traits={"seats": 3}, last_seen_at=t0
    )
    sweep(t0 + DAY, django_capture_on_commit_callbacks)
    assert fired_for(rule) == []

    # Both grow past the threshold without engagement hearing of it; only one was seen since
    # the last pass (identify bumps last_seen_at), so only that one is read and fired.
    EndUser.objects.filter(pk=quiet.pk).update(traits={"seats": 30})
    EndUser.objects.filter(pk=lost.pk).update(traits={"seats": 30}, last_seen_at=t0 + 2 * DAY)
    sweep(t0 + 3 * DAY, django_capture_on_commit_callbacks)

    assert fired_for(rule) == ["lost-signal"]


def test_a_sweep_batch_holds_each_persons_frequency_cap_and_unsubscription(
    t0: datetime, django_capture_on_commit_callbacks: Any, smtp_server: Any
) -> None:
    journey = JourneyFactory()
    milestone = MilestoneFactory(journey=journey, key="initial-value")
    content_publish(obj=journey)
    rule = RuleFactory(
        workspace=journey.workspace, trigger=Trigger.MILESTONE_NOT_REACHED, event_name="",
        milestone=milestone, delay=10 * DAY, created_at=t0, send_email=True,
    )  # fmt: skip
    FrequencyCap.objects.create(
        workspace=journey.workspace, channel=Channel.IN_APP, limit=1, period=2 * DAY
    )
    names = ["fresh", "capped", "unsubscribed"]
    users = {
        name: EndUserFactory(
            workspace=journey.workspace, external_id=name, traits={"email": f"{name}@x.test"}
        )
        for name in names
    }
    for end_user in users.values():
        JourneyProgressFactory(end_user=end_user, journey=journey, started_at=t0 + DAY)
    other = RuleFactory(workspace=journey.workspace, trigger=Trigger.EVENT)
    services.rule_fire(
        rule=other, end_user_id=users["capped"].pk, occurrence="x", now=t0 + 11 * DAY
    )
    Unsubscription.objects.create(end_user=users["unsubscribed"])

    sweep(t0 + 12 * DAY, django_capture_on_commit_callbacks)

    outcome = {
        (d.end_user.external_id, d.channel): d.status if d.status == "sent" else d.reason
        for d in Delivery.objects.filter(rule=rule).select_related("end_user")
    }
    assert outcome == {
        ("fresh", "in_app"): "sent",
        ("fresh", "email"): "sent",
        ("capped", "in_app"): "frequency cap: At most 1 In-app message per 2 days, 0:00:00",
        ("capped", "email"): "sent",
        ("unsubscribed", "in_app"): "sent",
        ("unsubscribed", "email"): "the end user unsubscribed from e-mail",
    }
    assert sorted(m["X-Envelope-To"] for m in smtp_server.messages) == [
        "capped@x.test",
        "fresh@x.test",
    ]
