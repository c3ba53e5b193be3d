"""Typed results of the API, built from its JSON answers (frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _required_time(value: Any) -> datetime:
    parsed = _time(value)
    if parsed is None:
        raise ValueError(f"expected an ISO 8601 time, got {value!r}")
    return parsed


@dataclass(frozen=True)
class EndUser:
    id: str
    traits: dict[str, Any]
    signed_up_at: datetime | None
    first_seen_at: datetime
    last_seen_at: datetime
    lifecycle_stage: str
    created: bool  # the call created this end user (201) rather than updating one (200)

    @classmethod
    def from_json(cls, data: dict[str, Any], *, created: bool) -> EndUser:
        return cls(
            id=data["id"],
            traits=data["traits"],
            signed_up_at=_time(data.get("signed_up_at")),
            first_seen_at=_required_time(data["first_seen_at"]),
            last_seen_at=_required_time(data["last_seen_at"]),
            lifecycle_stage=data["lifecycle_stage"],
            created=created,
        )


@dataclass(frozen=True)
class Rejection:
    index: int
    id: str | None
    reason: str


@dataclass(frozen=True)
class EventAck:
    """Which events of a batch were stored now, which had been stored before (a retry), and
    which were refused and why (the others are stored all the same)."""

    accepted: tuple[str, ...]
    duplicates: tuple[str, ...]
    rejected: tuple[Rejection, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EventAck:
        return cls(
            accepted=tuple(data["accepted"]),
            duplicates=tuple(data["duplicates"]),
            rejected=tuple(
                Rejection(
                    index=item["index"],
                    id=None if item.get("id") is None else str(item["id"]),
                    reason=item["reason"],
                )
                for item in data["rejected"]
            ),
        )


@dataclass(frozen=True)
class MilestoneCompletion:
    milestone: str
    completed: bool  # False: it had been reached before, at `completed_at`
    completed_at: datetime

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MilestoneCompletion:
        return cls(data["milestone"], data["completed"], _required_time(data["completed_at"]))


@dataclass(frozen=True)
class MilestoneProgress:
    key: str
    name: str
    completed_at: datetime | None
    counts_toward_pql: bool


@dataclass(frozen=True)
class JourneyProgress:
    key: str
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
    def from_json(cls, data: dict[str, Any]) -> JourneyProgress:
        return cls(
            key=data["journey"]["key"],
            name=data["journey"]["name"],
            started_at=_time(data.get("started_at")),
            completed_at=_time(data.get("completed_at")),
            milestones=tuple(
                MilestoneProgress(
                    key=item["key"],
                    name=item["name"],
                    completed_at=_time(item.get("completed_at")),
                    counts_toward_pql=item["counts_toward_pql"],
                )
                for item in data["milestones"]
            ),
            completed=data["completed"],
            total=data["total"],
            percent=data["percent"],
            pql=data["pql"],
            pql_at=_time(data.get("pql_at")),
        )


@dataclass(frozen=True)
class Progress:
    user: str
    journeys: tuple[JourneyProgress, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Progress:
        return cls(data["user"], tuple(JourneyProgress.from_json(j) for j in data["journeys"]))

    def journey(self, key: str) -> JourneyProgress:
        for journey in self.journeys:
            if journey.key == key:
                return journey
        raise KeyError(f"{self.user!r} has no progress in a journey {key!r}")


@dataclass(frozen=True)
class Erased:
    user: str
    erased: dict[str, int]  # rows removed, by kind (events, completions, …)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Erased:
        return cls(data["user"], dict(data["erased"]))


@dataclass(frozen=True)
class ContentChanges:
    changes: tuple[str, ...]  # e.g. "walkthrough tour: created", "… published v2"
    dry_run: bool

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContentChanges:
        return cls(tuple(data["changes"]), data["dry_run"])


@dataclass(frozen=True)
class PublishedVersion:
    kind: str
    key: str
    version: int
    published_at: datetime

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PublishedVersion:
        return cls(data["kind"], data["key"], data["version"], _required_time(data["published_at"]))
