"""The workspace bench/realtime.py runs against, and what its figures leave in the database.

One published journey that starts when a person is first seen, nine event milestones, and the
event names each figure sends: which of them complete a milestone and which complete nothing.
Django is imported only inside the functions, so that the client processes of the closed loop
can import the names without setting Django up.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

# The workspace allows it; every socket of the bench sends it.
ORIGIN = "http://bench.localhost"
WINDOW = timedelta(days=7)
# key, event name, count; every one is reached within WINDOW of the journey's start (first seen).
EVENT_MILESTONES = [
    ("first-message", "message_sent", 1),
    ("three-messages", "message_sent", 3),
    ("campaign", "campaign_created", 1),
    ("contact", "contact_added", 1),
    ("report", "report_viewed", 1),
    ("invite", "teammate_invited", 1),
    ("integration", "integration_connected", 1),
    ("template", "template_saved", 1),
    ("domain", "domain_verified", 1),
]
# Figure 4: the message that completes each milestone for a person who has done none of these
# events before, taken in this order (after "first-message", two more messages make three).
COMPLETING = [
    ("first-message", ["message_sent"]),
    ("campaign", ["campaign_created"]),
    ("contact", ["contact_added"]),
    ("report", ["report_viewed"]),
    ("invite", ["teammate_invited"]),
    ("integration", ["integration_connected"]),
    ("template", ["template_saved"]),
    ("domain", ["domain_verified"]),
    ("three-messages", ["message_sent", "message_sent"]),
]
# Names that complete nothing.
FILLER_NAMES = ["page_viewed", "settings_opened", "search_used"]
# Figure 1: each socket walks this list from its own offset; the first lap completes
# first-message, campaign, contact and three-messages for its person.
LOOP_NAMES = [
    "message_sent",
    "page_viewed",
    "campaign_created",
    "message_sent",
    "contact_added",
    "settings_opened",
    "message_sent",
    "search_used",
]


def seed_workspace() -> tuple[Any, dict[str, str]]:
    from onboarding import services
    from onboarding.models import Criterion, Journey, JourneyStart, Milestone

    slug = f"bench-rt-{uuid.uuid4().hex[:8]}"
    workspace, keys = services.workspace_create(name=slug, slug=slug, origins=[ORIGIN])
    journey = Journey.objects.create(
        workspace=workspace, key="trial", name="Trial", starts_on=JourneyStart.FIRST_SEEN
    )
    for position, (key, event_name, count) in enumerate(EVENT_MILESTONES):
        Milestone.objects.create(
            workspace=workspace,
            journey=journey,
            key=key,
            name=key,
            position=position,
            criterion=Criterion.EVENT,
            event_name=event_name,
            min_count=count,
            window=WINDOW,
            counts_toward_pql=key in ("campaign", "contact"),
        )
    services.content_publish(obj=journey)
    return workspace, keys


@dataclass
class DatabaseMark:
    completion: int
    event: int


def database_mark() -> DatabaseMark:
    from django.db.models import Max

    from onboarding.models import Event, MilestoneCompletion

    return DatabaseMark(
        completion=MilestoneCompletion.objects.aggregate(m=Max("id"))["m"] or 0,
        event=Event.objects.aggregate(m=Max("id"))["m"] or 0,
    )


def caused_since(workspace: Any, mark: DatabaseMark) -> tuple[int, Counter[str], int]:
    """Events stored, and milestone completions by milestone, since `mark`."""
    from onboarding.models import Event, MilestoneCompletion

    completions = Counter(
        MilestoneCompletion.objects.filter(workspace=workspace, pk__gt=mark.completion)
        .values_list("milestone__key", flat=True)
        .iterator()
    )
    events = Event.objects.filter(workspace=workspace, pk__gt=mark.event).count()
    return events, completions, sum(completions.values())


def describe_completions(completions: Counter[str]) -> str:
    if not completions:
        return "none"
    return ", ".join(f"{key} {count}" for key, count in sorted(completions.items()))
