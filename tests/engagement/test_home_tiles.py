"""Engagement's tile on the analytics home: the last 7 days' deliveries and clicks."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from engagement.home_tiles import deliveries_tile
from engagement.models import Channel, Delivery
from tests.engagement.factories import RuleFactory
from tests.factories import EndUserFactory, WorkspaceFactory


def deliver(rule, person, channel, status, *, clicked=False, days_ago=0, is_test=False):
    now = timezone.now()
    return Delivery.objects.create(
        workspace=rule.workspace,
        rule=rule,
        end_user=person,
        channel=channel,
        occurrence=f"{channel}-{status}-{Delivery.objects.count()}",
        status=status,
        is_test=is_test,
        created_at=now - timedelta(days=days_ago),
        clicked_at=now if clicked else None,
    )


def test_the_deliveries_tile_counts_the_week_s_sends_failures_and_clicks_in_one_query(
    db, django_assert_num_queries
):
    workspace = WorkspaceFactory()
    rule = RuleFactory(workspace=workspace)
    person = EndUserFactory(workspace=workspace)
    sent, failed, pending = Delivery.Status.SENT, Delivery.Status.FAILED, Delivery.Status.PENDING
    deliver(rule, person, Channel.IN_APP, sent, clicked=True)
    deliver(rule, person, Channel.IN_APP, sent, clicked=True)
    deliver(rule, person, Channel.IN_APP, sent)
    deliver(rule, person, Channel.EMAIL, failed)
    deliver(rule, person, Channel.EMAIL, pending)
    deliver(rule, person, Channel.IN_APP, sent, clicked=True, days_ago=8)  # before the week
    deliver(rule, person, Channel.IN_APP, sent, clicked=True, is_test=True)

    with django_assert_num_queries(1):
        [tile] = deliveries_tile(workspace, timezone.now().date())

    assert tile.headline == "3 sent · 2 clicked"
    lines = [text for text, _ in tile.lines]
    assert f"{Channel.IN_APP.label}: 3 sent, 0 failed, 0 waiting" in lines
    assert f"{Channel.EMAIL.label}: 0 sent, 1 failed, 1 waiting" in lines
