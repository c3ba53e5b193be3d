"""Each API call as data (method, path, body, how to read the answer, when a retry is safe),
shared by the sync and the async client so both send exactly the same requests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

from milepost_client import models

T = TypeVar("T")

# "always": the call is idempotent (reads, PUTs, events carrying their ids, a milestone
# report, which answers completed=false the second time). "unsent": it is retried only when
# the request cannot have reached Milepost (no connection), because repeating it would act
# twice (a publish makes a new version each time).
RetrySafety = Literal["always", "unsent"]


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    read: Callable[[int, Any], T]  # (status, JSON body) -> result
    json: Any = None
    params: Mapping[str, str] | None = None
    retry: RetrySafety = "always"


def _segment(value: str) -> str:
    return quote(value, safe="")


def _body(status: int, body: Any) -> Any:
    return body


def identify(
    user_id: str, traits: Mapping[str, Any] | None, *, replace: bool
) -> Call[models.EndUser]:
    return Call(
        "PUT",
        f"users/{_segment(user_id)}",
        lambda status, body: models.EndUser.from_json(body, created=status == 201),
        json={"traits": dict(traits or {}), "replace": replace},
    )


def send_events(events: list[dict[str, Any]], *, sent_at: datetime) -> Call[models.EventAck]:
    return Call(
        "POST",
        "events",
        lambda status, body: models.EventAck.from_json(body),
        json={"events": events, "sent_at": sent_at.isoformat()},
    )


def complete_milestone(
    user_id: str, milestone: str, *, at: datetime | None
) -> Call[models.MilestoneCompletion]:
    return Call(
        "POST",
        f"users/{_segment(user_id)}/milestones/{_segment(milestone)}",
        lambda status, body: models.MilestoneCompletion.from_json(body),
        json={"at": at.isoformat()} if at is not None else {},
    )


def progress(user_id: str) -> Call[models.Progress]:
    return Call(
        "GET",
        f"users/{_segment(user_id)}/progress",
        lambda status, body: models.Progress.from_json(body),
    )


def erase(user_id: str) -> Call[models.Erased]:
    return Call(
        "DELETE", f"users/{_segment(user_id)}", lambda status, body: models.Erased.from_json(body)
    )


def export_content() -> Call[dict[str, Any]]:
    return Call("GET", "content", _body)


def import_content(
    document: Mapping[str, Any], *, dry_run: bool, publish: bool
) -> Call[models.ContentChanges]:
    params = {"dry_run": "1" if dry_run else "0", "publish": "1" if publish else "0"}
    return Call(
        "PUT",
        "content",
        lambda status, body: models.ContentChanges.from_json(body),
        json=dict(document),
        params=params,
    )


def publish(kind: str, key: str) -> Call[models.PublishedVersion]:
    return Call(
        "POST",
        f"content/{_segment(kind)}/{_segment(key)}/publish",
        lambda status, body: models.PublishedVersion.from_json(body),
        retry="unsent",
    )


def report(slug: str, params: Mapping[str, Any]) -> Call[dict[str, Any]]:
    query = {name: str(value) for name, value in params.items() if value is not None}
    return Call("GET", f"analytics/{_segment(slug)}", _body, params=query)


def event_funnel(spec: Mapping[str, Any]) -> Call[dict[str, Any]]:
    return Call("POST", "analytics/funnel", _body, json=dict(spec))
