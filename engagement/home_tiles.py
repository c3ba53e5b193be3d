"""Engagement's tile on the analytics home: what was delivered in the last 7 days, per channel
and status, and how many in-app messages were clicked. Registered with analytics in
EngagementConfig.ready(): analytics never imports engagement."""

from __future__ import annotations

from datetime import date, timedelta

from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from analytics.home import Tile
from engagement.models import Channel, Delivery
from onboarding.models import Workspace

DAYS = 7


def deliveries_tile(workspace: Workspace, today: date) -> list[Tile]:
    since = timezone.now() - timedelta(days=DAYS)
    recent = Delivery.objects.filter(workspace=workspace, is_test=False, created_at__gte=since)
    # One grouped read gives both the counts per channel and status and the clicks.
    grouped = recent.values("channel", "status").annotate(
        n=Count("id"), clicked=Count("id", filter=Q(clicked_at__isnull=False))
    )
    counts: dict[tuple[str, str], int] = {}
    clicked = 0
    for row in grouped:
        counts[(row["channel"], row["status"])] = row["n"]
        clicked += row["clicked"]
    changelist = reverse("admin:engagement_delivery_changelist")
    lines = []
    for channel in Channel:
        sent = counts.get((channel.value, Delivery.Status.SENT), 0)
        failed = counts.get((channel.value, Delivery.Status.FAILED), 0)
        waiting = counts.get((channel.value, Delivery.Status.PENDING), 0) + counts.get(
            (channel.value, Delivery.Status.RETRYING), 0
        )
        if sent or failed or waiting:
            lines.append(
                (
                    f"{channel.label}: {sent:,} sent, {failed:,} failed, {waiting:,} waiting",
                    f"{changelist}?{urlencode({'channel__exact': channel.value})}",
                )
            )
    total = sum(n for (_, status), n in counts.items() if status == Delivery.Status.SENT)
    return [
        Tile(
            title=f"Engagement deliveries: last {DAYS} days",
            link=changelist,
            headline=f"{total:,} sent · {clicked:,} clicked" if counts else "",
            lines=lines,
            empty=f"No message was delivered in the last {DAYS} days.",
        )
    ]
