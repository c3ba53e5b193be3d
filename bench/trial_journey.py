"""The benchmark workspace with its trial journey, shared by bench/analytics.py and
bench/dashboards_data.py: installed JS (by the server), then a first campaign and imported
contacts (by their events, both counting toward PQL)."""

from __future__ import annotations

from typing import Any

MILESTONES = [
    # key, criterion (Criterion's value), event name, counts toward PQL
    ("installed-js", "server", "", False),
    ("first-campaign", "event", "campaign_created", True),
    ("imported-contacts", "event", "contacts_imported", True),
]


def trial_workspace(slug: str, events: int) -> tuple[Any, bool]:
    """The workspace named `slug` and whether it is complete (holds `events` events). One left
    incomplete by an interrupted run is deleted and made again, with its journey and no data."""
    from onboarding.models import Event, Journey, Milestone, Workspace

    workspace = Workspace.objects.filter(slug=slug).first()
    if workspace is not None:
        if Event.objects.filter(workspace=workspace).count() == events:
            return workspace, True
        workspace.delete()
    workspace = Workspace(name=slug, slug=slug)
    workspace.issue_keys()
    workspace.save()
    journey = Journey.objects.create(workspace=workspace, key="trial", name="Trial")
    for position, (key, criterion, event_name, pql) in enumerate(MILESTONES):
        Milestone.objects.create(
            workspace=workspace,
            journey=journey,
            key=key,
            name=key,
            position=position,
            criterion=criterion,
            event_name=event_name,
            counts_toward_pql=pql,
        )
    return workspace, False
