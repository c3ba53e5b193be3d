"""Typed results of the end-user and content calls (frozen dataclasses built from the API's JSON;
`raw` on each keeps the JSON object as it came). The reports' results are in `reports`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from milepost_client.parsing import Result, parse


@dataclass(frozen=True)
class EndUser(Result):
    id: str
    traits: dict[str, Any]
    signed_up_at: datetime | None
    first_seen_at: datetime
    last_seen_at: datetime
    lifecycle_stage: str
    created: bool  # the call created this end user (201) rather than updating one (200)


@dataclass(frozen=True)
class Rejection(Result):
    index: int
    id: str | None  # the event's id as sent (made a string), None when it had none
    reason: str

    @classmethod
    def _derived(cls, data: dict[str, Any], path: str) -> dict[str, Any]:
        sent_id = data.get("id")  # any JSON value the sender put there
        return {"id": None if sent_id is None else str(sent_id)}


@dataclass(frozen=True)
class EventAck(Result):
    """Which events of a batch were stored now, which had been stored before (a retry), and
    which were refused and why (the others are stored all the same)."""

    accepted: tuple[str, ...]
    duplicates: tuple[str, ...]
    rejected: tuple[Rejection, ...]


@dataclass(frozen=True)
class MilestoneCompletion(Result):
    milestone: str
    completed: bool  # False: it had been reached before, at `completed_at`
    completed_at: datetime


@dataclass(frozen=True)
class MilestoneProgress(Result):
    key: str
    name: str
    completed_at: datetime | None
    counts_toward_pql: bool


@dataclass(frozen=True)
class JourneyProgress(Result):
    key: str  # the journey's, from the answer's `journey: {key, name}`
    name: str
    started_at: datetime | None
    completed_at: datetime | None
    milestones: tuple[MilestoneProgress, ...]
    completed: int
    total: int
    percent: int
    pql: bool
    pql_at: datetime | None

    @classmethod
    def _derived(cls, data: dict[str, Any], path: str) -> dict[str, Any]:
        journey = parse(_JourneyRef, data.get("journey"), f"{path}.journey")
        return {"key": journey.key, "name": journey.name}


@dataclass(frozen=True)
class _JourneyRef(Result):
    key: str
    name: str


@dataclass(frozen=True)
class Progress(Result):
    user: str
    journeys: tuple[JourneyProgress, ...]

    def journey(self, key: str) -> JourneyProgress:
        for journey in self.journeys:
            if journey.key == key:
                return journey
        raise KeyError(f"{self.user!r} has no progress in a journey {key!r}")


@dataclass(frozen=True)
class Erased(Result):
    user: str
    erased: dict[str, int]  # rows removed, by kind (events, completions, …)


@dataclass(frozen=True)
class ContentChanges(Result):
    changes: tuple[str, ...]  # e.g. "walkthrough tour: created", "… published v2"
    dry_run: bool


@dataclass(frozen=True)
class PublishedVersion(Result):
    kind: str
    key: str
    version: int
    published_at: datetime
