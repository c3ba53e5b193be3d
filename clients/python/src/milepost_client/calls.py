"""Each API call as data (method, path, body, how to read the answer, when a retry is safe),
shared by the sync and the async client so both send exactly the same requests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

from milepost_client import models, reports
from milepost_client.parsing import R, parse

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


def _parsed(cls: type[R]) -> Callable[[int, Any], R]:
    return lambda status, body: parse(cls, body)


def identify(
    user_id: str, traits: Mapping[str, Any] | None, *, replace: bool
) -> Call[models.EndUser]:
    return Call(
        "PUT",
        f"users/{_segment(user_id)}",
        lambda status, body: parse(models.EndUser, body, created=status == 201),
        json={"traits": dict(traits or {}), "replace": replace},
    )


def send_events(events: list[dict[str, Any]], *, sent_at: datetime) -> Call[models.EventAck]:
    return Call(
        "POST",
        "events",
        _parsed(models.EventAck),
        json={"events": events, "sent_at": sent_at.isoformat()},
    )


def complete_milestone(
    user_id: str, milestone: str, *, at: datetime | None
) -> Call[models.MilestoneCompletion]:
    return Call(
        "POST",
        f"users/{_segment(user_id)}/milestones/{_segment(milestone)}",
        _parsed(models.MilestoneCompletion),
        json={"at": at.isoformat()} if at is not None else {},
    )


def progress(user_id: str) -> Call[models.Progress]:
    return Call(
        "GET",
        f"users/{_segment(user_id)}/progress",
        _parsed(models.Progress),
    )


def erase(user_id: str) -> Call[models.Erased]:
    return Call("DELETE", f"users/{_segment(user_id)}", _parsed(models.Erased))


def export_content() -> Call[dict[str, Any]]:
    return Call("GET", "content", _body)


def import_content(
    document: Mapping[str, Any], *, dry_run: bool, publish: bool
) -> Call[models.ContentChanges]:
    params = {"dry_run": "1" if dry_run else "0", "publish": "1" if publish else "0"}
    return Call(
        "PUT",
        "content",
        _parsed(models.ContentChanges),
        json=dict(document),
        params=params,
    )


def publish(kind: str, key: str) -> Call[models.PublishedVersion]:
    return Call(
        "POST",
        f"content/{_segment(kind)}/{_segment(key)}/publish",
        _parsed(models.PublishedVersion),
        retry="unsent",
    )


def report(slug: str, result: type[R], params: Mapping[str, Any]) -> Call[R]:
    """A GET report by the slug of its endpoint; parameters left None are left out (the
    server's defaults apply)."""
    query = {name: _query_value(value) for name, value in params.items() if value is not None}
    return Call("GET", f"analytics/{_segment(slug)}", _parsed(result), params=query)


def report_by_name(slug: str, params: Mapping[str, Any]) -> Call[reports.AnyReport]:
    result = reports.BY_SLUG.get(slug)
    if result is None or slug == "funnel":
        names = ", ".join(name for name in reports.BY_SLUG if name != "funnel")
        raise ValueError(f"unknown report {slug!r}; one of: {names} (or event_funnel)")
    return report(slug, result, params)


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)


def event_funnel(spec: Mapping[str, Any]) -> Call[reports.EventFunnel]:
    return Call(
        "POST", "analytics/funnel", _parsed(reports.EventFunnel), json=_jsonable(dict(spec))
    )


def _jsonable(spec: dict[str, Any]) -> dict[str, Any]:
    # Dates are the one non-JSON value a caller naturally passes (date_from, date_to).
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in spec.items()}
