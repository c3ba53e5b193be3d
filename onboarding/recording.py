"""Recording: every thing an end user does becomes an event exactly once, milestones complete
the moment their criterion first holds, and every open tab of that user hears of it.

`events_record` validates a batch, stores the new events in one INSERT … ON CONFLICT DO
NOTHING RETURNING (so a retry, even a concurrent one, stores nothing twice and the ack says
exactly which ids were new), evaluates only the milestones whose event the batch contains, and
after commit sends the domain signals and pushes progress.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from onboarding import content_state, queries, realtime, signals
from onboarding.models import (
    Criterion,
    EndUser,
    Event,
    Journey,
    JourneyProgress,
    JourneyStart,
    Milestone,
    MilestoneCompletion,
    Workspace,
)

# A client clock may run ahead; past this, a timestamp is clamped to the receive time and flagged.
MAX_FUTURE_SKEW = timedelta(hours=23)
MAX_NAME_LENGTH = 200
MAX_EXTERNAL_ID_LENGTH = 255
WALKTHROUGH_COMPLETED = "$walkthrough_completed"


@dataclass(frozen=True)
class Ack:
    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


class EventRejected(ValueError):
    """One event of a batch is invalid; the others are still recorded."""


@dataclass
class _Candidate:
    client_id: uuid.UUID
    raw_id: str
    external_id: str
    name: str
    timestamp: datetime
    properties: dict[str, Any]
    clamped: bool


# Parsing and validation ------------------------------------------------------------------


def parse_timestamp(value: Any, *, field_name: str = "timestamp") -> datetime:
    if not isinstance(value, str) or not value:
        raise EventRejected(f"{field_name} must be an ISO 8601 string")
    try:
        parsed = parse_datetime(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        parsed = None
    if parsed is None:
        raise EventRejected(f"{field_name} {value!r} is not an ISO 8601 date-time")
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _depth(value: Any, level: int = 1) -> int:
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level - 1


def clean_external_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise EventRejected("user id must be a string")
    text = str(value).strip()
    if not text:
        raise EventRejected("user id must not be empty")
    if len(text) > MAX_EXTERNAL_ID_LENGTH:
        raise EventRejected(f"user id is longer than {MAX_EXTERNAL_ID_LENGTH} characters")
    return text


def _candidate(
    raw: Any,
    *,
    end_user: EndUser | None,
    received_at: datetime,
    sent_at: datetime | None,
) -> _Candidate:
    if not isinstance(raw, dict):
        raise EventRejected("an event must be a JSON object")
    raw_id = raw.get("id")
    if raw_id is None:
        raise EventRejected("id is missing")
    try:
        client_id = uuid.UUID(str(raw_id))
    except ValueError:
        raise EventRejected(f"id {raw_id!r} is not a UUID") from None
    size = len(json.dumps(raw, separators=(",", ":"), default=str).encode())
    if size > settings.MILEPOST_MAX_EVENT_BYTES:
        raise EventRejected(
            f"event is {size} bytes; the limit is {settings.MILEPOST_MAX_EVENT_BYTES}"
        )
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise EventRejected("name is missing")
    if len(name) > MAX_NAME_LENGTH:
        raise EventRejected(f"name is longer than {MAX_NAME_LENGTH} characters")
    if end_user is not None:
        if "user_id" in raw and str(raw["user_id"]) != end_user.external_id:
            raise EventRejected("user_id differs from the identified user of this connection")
        external_id = end_user.external_id
    else:
        external_id = clean_external_id(raw.get("user_id"))
    properties = raw.get("properties", {})
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raise EventRejected("properties must be a JSON object")
    depth = _depth(properties)
    if depth > settings.MILEPOST_MAX_PROPERTY_DEPTH:
        raise EventRejected(
            f"properties are nested {depth} levels deep; "
            f"the limit is {settings.MILEPOST_MAX_PROPERTY_DEPTH}"
        )
    if "timestamp" in raw and raw["timestamp"] is not None:
        timestamp = parse_timestamp(raw["timestamp"])
        if sent_at is not None:
            # The client's clock may be wrong; the gap between its timestamp and its sent_at is
            # still right, so anchor that gap to our receive time.
            timestamp = received_at - (sent_at - timestamp)
    else:
        timestamp = received_at
    clamped = timestamp > received_at + MAX_FUTURE_SKEW
    if clamped:
        timestamp = received_at
    return _Candidate(
        client_id, str(raw_id), external_id, name.strip(), timestamp, properties, clamped
    )


# Storage ---------------------------------------------------------------------------------


def _end_users_by_external_id(
    workspace: Workspace, external_ids: set[str], *, seen_at: datetime
) -> dict[str, EndUser]:
    existing = {
        user.external_id: user
        for user in EndUser.objects.filter(workspace=workspace, external_id__in=external_ids)
    }
    missing = external_ids - existing.keys()
    if missing:
        EndUser.objects.bulk_create(
            [
                EndUser(
                    workspace=workspace,
                    external_id=external_id,
                    first_seen_at=seen_at,
                    last_seen_at=seen_at,
                )
                for external_id in missing
            ],
            ignore_conflicts=True,
        )
        existing.update(
            {
                user.external_id: user
                for user in EndUser.objects.filter(workspace=workspace, external_id__in=missing)
            }
        )
    return existing


_EVENT_COLUMNS = (
    "workspace",
    "end_user",
    "client_id",
    "name",
    "timestamp",
    "received_at",
    "properties",
    "source",
    "clock_skew_clamped",
)


def _insert_new_events(rows: list[Event]) -> dict[uuid.UUID, int]:
    """INSERT … ON CONFLICT DO NOTHING RETURNING: the ids that were new, with their pk.

    Django's bulk_create(ignore_conflicts=True) cannot say which rows it skipped; this can, on
    PostgreSQL and on SQLite ≥ 3.35 alike."""
    if not rows:
        return {}
    fields: list[models.Field[Any, Any]] = [
        field
        for name in _EVENT_COLUMNS
        if isinstance(field := Event._meta.get_field(name), models.Field)
    ]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    json_cast = "::jsonb" if connection.vendor == "postgresql" else ""
    placeholders = ", ".join(f"%s{json_cast}" if f.name == "properties" else "%s" for f in fields)
    inserted: dict[uuid.UUID, int] = {}
    table = connection.ops.quote_name(Event._meta.db_table)
    # Stay under SQLite's bound-parameter limit; a batch is at most 500 events anyway.
    chunk = 100
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        params: list[Any] = []
        for row in part:
            for f in fields:
                value = getattr(row, f.attname)
                if f.name == "properties":
                    params.append(json.dumps(value))
                else:
                    params.append(f.get_db_prep_save(value, connection))
        values = ", ".join(f"({placeholders})" for _ in part)
        sql = (
            f"INSERT INTO {table} ({columns}) VALUES {values} "  # noqa: S608 - names are ours
            "ON CONFLICT (workspace_id, client_id) DO NOTHING RETURNING id, client_id"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for pk, client_id in cursor.fetchall():
                key = client_id if isinstance(client_id, uuid.UUID) else uuid.UUID(client_id)
                inserted[key] = pk
    return inserted


def events_record(
    *,
    workspace: Workspace,
    events: Sequence[Any],
    source: str,
    sent_at: Any = None,
    end_user: EndUser | None = None,
    received_at: datetime | None = None,
) -> Ack:
    """Validate, de-duplicate and store a batch; complete the milestones it reaches.

    Good events are stored even when others in the batch are rejected; each rejection names the
    event's id (or its index when it has no usable id) and the reason."""
    received_at = received_at or timezone.now()
    rejected: list[dict[str, Any]] = []
    sent: datetime | None = None
    if sent_at is not None:
        try:
            sent = parse_timestamp(sent_at, field_name="sent_at")
        except EventRejected:
            sent = None  # a bad sent_at only disables skew correction, it loses no event
    candidates: list[_Candidate] = []
    seen_in_batch: set[uuid.UUID] = set()
    duplicates: list[str] = []
    for index, raw in enumerate(events):
        try:
            candidate = _candidate(raw, end_user=end_user, received_at=received_at, sent_at=sent)
        except EventRejected as error:
            raw_id = raw.get("id") if isinstance(raw, dict) else None
            rejected.append({"index": index, "id": raw_id, "reason": str(error)})
            continue
        if candidate.client_id in seen_in_batch:
            duplicates.append(candidate.raw_id)
            continue
        seen_in_batch.add(candidate.client_id)
        candidates.append(candidate)

    accepted: list[str] = []
    stored: list[Event] = []
    with transaction.atomic():
        if end_user is not None:
            users = {end_user.external_id: end_user}
        else:
            users = _end_users_by_external_id(
                workspace, {c.external_id for c in candidates}, seen_at=received_at
            )
        rows = [
            Event(
                workspace=workspace,
                end_user=users[c.external_id],
                client_id=c.client_id,
                name=c.name,
                timestamp=c.timestamp,
                received_at=received_at,
                properties=c.properties,
                source=source,
                clock_skew_clamped=c.clamped,
            )
            for c in candidates
        ]
        inserted = _insert_new_events(rows)
        for candidate, row in zip(candidates, rows, strict=True):
            if candidate.client_id in inserted:
                row.pk = inserted[candidate.client_id]
                row._state.adding = False
                accepted.append(candidate.raw_id)
                stored.append(row)
            else:
                duplicates.append(candidate.raw_id)
        if stored:
            touched = {row.end_user_id for row in stored}
            EndUser.objects.filter(pk__in=touched, last_seen_at__lt=received_at).update(
                last_seen_at=received_at
            )
            content_state.content_states_record(events=stored)
            _evaluate_milestones(workspace=workspace, events=stored, users=users)
            event_ids = [row.pk for row in stored]
            transaction.on_commit(
                lambda: signals.events_recorded.send(
                    sender=Event,
                    workspace_id=workspace.pk,
                    end_user_ids=sorted(touched),
                    event_ids=event_ids,
                )
            )
    return Ack(accepted=accepted, duplicates=duplicates, rejected=rejected)


# End users -------------------------------------------------------------------------------


def _clean_traits(traits: Any) -> dict[str, Any]:
    if traits is None:
        return {}
    if not isinstance(traits, dict):
        raise EventRejected("traits must be a JSON object")
    depth = _depth(traits)
    if depth > settings.MILEPOST_MAX_PROPERTY_DEPTH:
        raise EventRejected(
            f"traits are nested {depth} levels deep; "
            f"the limit is {settings.MILEPOST_MAX_PROPERTY_DEPTH}"
        )
    if "signed_up_at" in traits and traits["signed_up_at"] not in (None, ""):
        parse_timestamp(traits["signed_up_at"], field_name="traits.signed_up_at")
    return traits


@transaction.atomic
def end_user_identify(
    *, workspace: Workspace, external_id: Any, traits: Any = None, replace: bool = False
) -> EndUser:
    """Create or update an end user. Traits are merged into the stored ones (or replace them
    when `replace`); `signed_up_at` also sets the signup time journeys can start from.

    Raises EventRejected with a message naming the problem on a bad id or traits."""
    external_id = clean_external_id(external_id)
    traits = _clean_traits(traits)
    now = timezone.now()
    end_user, created = EndUser.objects.select_for_update().get_or_create(
        workspace=workspace,
        external_id=external_id,
        defaults={"traits": traits, "first_seen_at": now, "last_seen_at": now},
    )
    if not created:
        end_user.traits = traits if replace else {**end_user.traits, **traits}
        end_user.last_seen_at = now
    signed_up = end_user.traits.get("signed_up_at")
    end_user.signed_up_at = (
        parse_timestamp(signed_up, field_name="traits.signed_up_at") if signed_up else None
    )
    end_user.save(update_fields=["traits", "last_seen_at", "signed_up_at"])
    journeys_start(end_user=end_user)
    return end_user


@transaction.atomic
def end_user_erase(*, end_user: EndUser) -> dict[str, int]:
    """Erase every record of one person (events, completions, progress, content state, the end
    user). Later events for the same id start a new person."""
    counts = {
        "events": Event.objects.filter(end_user=end_user).count(),
        "completions": MilestoneCompletion.objects.filter(end_user=end_user).count(),
        "journeys": JourneyProgress.objects.filter(end_user=end_user).count(),
    }
    end_user.delete()
    return counts


# Journeys and milestones -----------------------------------------------------------------


@dataclass(frozen=True)
class LiveMilestone:
    id: int
    key: str
    journey_id: int
    criterion: str
    event_name: str
    min_count: int
    window: timedelta | None
    walkthrough: str | None
    counts_toward_pql: bool


@dataclass(frozen=True)
class LiveJourney:
    id: int
    key: str
    name: str
    starts_on: str
    milestones: tuple[LiveMilestone, ...]


def live_journeys(workspace: Workspace) -> list[LiveJourney]:
    """The current published version of each journey (drafts never drive the engine)."""
    journeys = []
    for snapshot in queries.published_journeys(workspace=workspace):
        milestones = tuple(
            LiveMilestone(
                id=m["id"],
                key=m["key"],
                journey_id=snapshot["id"],
                criterion=m["criterion"],
                event_name=m.get("event_name") or "",
                min_count=max(1, int(m.get("min_count") or 1)),
                window=(
                    timedelta(seconds=m["window_seconds"])
                    if m.get("window_seconds") is not None
                    else None
                ),
                walkthrough=m.get("walkthrough"),
                counts_toward_pql=bool(m.get("counts_toward_pql")),
            )
            for m in snapshot.get("milestones", [])
        )
        journeys.append(
            LiveJourney(
                id=snapshot["id"],
                key=snapshot["key"],
                name=snapshot["name"],
                starts_on=snapshot.get("starts_on", JourneyStart.SIGNUP),
                milestones=milestones,
            )
        )
    return sorted(journeys, key=lambda j: j.id)


def _journey_start_time(end_user: EndUser, starts_on: str) -> datetime:
    if starts_on == JourneyStart.SIGNUP and end_user.signed_up_at is not None:
        return end_user.signed_up_at
    return end_user.first_seen_at


def journeys_start(
    *, end_user: EndUser, journeys: Iterable[LiveJourney] | None = None
) -> dict[int, JourneyProgress]:
    """Make sure the end user has a progress row in every live journey; returns them by
    journey id. New rows announce `journey_started` after commit."""
    journeys = list(journeys if journeys is not None else live_journeys(end_user.workspace))
    progress = {
        p.journey_id: p
        for p in JourneyProgress.objects.filter(
            end_user=end_user, journey_id__in=[j.id for j in journeys]
        )
    }
    for journey in journeys:
        if journey.id in progress:
            row = progress[journey.id]
            # A signup time learnt later moves a signup-based journey's start to it.
            start = _journey_start_time(end_user, journey.starts_on)
            if start != row.started_at and journey.starts_on == JourneyStart.SIGNUP:
                row.started_at = start
                row.save(update_fields=["started_at"])
            continue
        row, created = JourneyProgress.objects.get_or_create(
            end_user=end_user,
            journey_id=journey.id,
            defaults={
                "workspace_id": end_user.workspace_id,
                "started_at": _journey_start_time(end_user, journey.starts_on),
            },
        )
        progress[journey.id] = row
        if created:
            transaction.on_commit(partial(_announce_journey_started, row))
    return progress


def _announce_journey_started(row: JourneyProgress) -> None:
    signals.journey_started.send(
        sender=JourneyProgress,
        workspace_id=row.workspace_id,
        end_user_id=row.end_user_id,
        journey_id=row.journey_id,
        started_at=row.started_at,
    )


def _reaching_event(
    milestone: LiveMilestone, *, end_user_id: int, started_at: datetime, trigger: Event
) -> Event | None:
    """The event with which the criterion first held, or None if it does not hold yet."""
    if milestone.criterion == Criterion.WALKTHROUGH:
        return trigger
    window = Q()
    if milestone.window is not None:
        window = Q(timestamp__gte=started_at, timestamp__lte=started_at + milestone.window)
    # One indexed query (end_user, name, timestamp): the min_count-th matching event in time.
    return (
        Event.objects.filter(window, end_user_id=end_user_id, name=milestone.event_name)
        .order_by("timestamp", "id")
        .only("id", "timestamp", "end_user_id")[milestone.min_count - 1 : milestone.min_count]
        .first()
    )


def _evaluate_milestones(
    *, workspace: Workspace, events: list[Event], users: dict[str, EndUser]
) -> None:
    journeys = live_journeys(workspace)
    by_event: dict[str, list[LiveMilestone]] = defaultdict(list)
    by_walkthrough: dict[str, list[LiveMilestone]] = defaultdict(list)
    for journey in journeys:
        for milestone in journey.milestones:
            if milestone.criterion == Criterion.EVENT and milestone.event_name:
                by_event[milestone.event_name].append(milestone)
            elif milestone.criterion == Criterion.WALKTHROUGH and milestone.walkthrough:
                by_walkthrough[milestone.walkthrough].append(milestone)
    relevant: dict[int, list[tuple[Event, LiveMilestone]]] = defaultdict(list)
    for event in sorted(events, key=lambda e: (e.timestamp, e.pk)):
        candidates = list(by_event.get(event.name, ()))
        if event.name == WALKTHROUGH_COMPLETED:
            walkthrough = (event.properties or {}).get("walkthrough")
            candidates += by_walkthrough.get(str(walkthrough), [])
        for milestone in candidates:
            relevant[event.end_user_id].append((event, milestone))
    if not relevant:
        return
    users_by_pk = {user.pk: user for user in users.values()}
    done = set(
        MilestoneCompletion.objects.filter(end_user_id__in=relevant.keys()).values_list(
            "end_user_id", "milestone_id"
        )
    )
    for end_user_id, pairs in relevant.items():
        end_user = users_by_pk[end_user_id]
        progress = journeys_start(end_user=end_user, journeys=journeys)
        for event, milestone in pairs:
            if (end_user_id, milestone.id) in done:
                continue
            started_at = progress[milestone.journey_id].started_at
            reaching = _reaching_event(
                milestone, end_user_id=end_user_id, started_at=started_at, trigger=event
            )
            if reaching is None:
                continue
            completion = _completion_store(
                end_user=end_user,
                milestone_id=milestone.id,
                journey_id=milestone.journey_id,
                at=reaching.timestamp,
                event_id=reaching.pk,
                source=event.source,
                journeys=journeys,
                progress=progress,
            )
            if completion is not None:
                done.add((end_user_id, milestone.id))


def _completion_store(
    *,
    end_user: EndUser,
    milestone_id: int,
    journey_id: int,
    at: datetime,
    event_id: int | None,
    source: str,
    journeys: list[LiveJourney],
    progress: dict[int, JourneyProgress],
) -> MilestoneCompletion | None:
    completion, created = MilestoneCompletion.objects.get_or_create(
        end_user=end_user,
        milestone_id=milestone_id,
        defaults={
            "workspace_id": end_user.workspace_id,
            "journey_id": journey_id,
            "completed_at": at,
            "event_id": event_id,
            "source": source,
        },
    )
    if not created:
        return None
    journey = next((j for j in journeys if j.id == journey_id), None)
    row = progress.get(journey_id)
    pql_now = False
    if journey is not None and row is not None:
        completed = dict(
            MilestoneCompletion.objects.filter(
                end_user=end_user, milestone_id__in=[m.id for m in journey.milestones]
            ).values_list("milestone_id", "completed_at")
        )
        update: list[str] = []
        pql_ids = [m.id for m in journey.milestones if m.counts_toward_pql]
        if row.pql_at is None and pql_ids and all(m in completed for m in pql_ids):
            row.pql_at = max(completed[m] for m in pql_ids)
            update.append("pql_at")
            pql_now = True
        if row.completed_at is None and all(m.id in completed for m in journey.milestones):
            row.completed_at = max(completed.values())
            update.append("completed_at")
        if update:
            row.save(update_fields=update)

    def announce() -> None:
        signals.milestone_completed.send(
            sender=MilestoneCompletion,
            workspace_id=end_user.workspace_id,
            end_user_id=end_user.pk,
            milestone_id=milestone_id,
            journey_id=journey_id,
            completed_at=at,
        )
        if pql_now and row is not None:
            signals.pql_reached.send(
                sender=JourneyProgress,
                workspace_id=end_user.workspace_id,
                end_user_id=end_user.pk,
                journey_id=journey_id,
                pql_at=row.pql_at,
            )
        progress_push(end_user=end_user, journey_id=journey_id, completed_milestone_id=milestone_id)

    transaction.on_commit(announce)
    return completion


@transaction.atomic
def milestone_complete(
    *,
    end_user: EndUser,
    milestone: Milestone,
    at: datetime | None = None,
    source: str = Event.Source.SERVER,
    event: Event | None = None,
) -> MilestoneCompletion | None:
    """Record that the end user reached a milestone (reported by the SaaS backend or an admin).
    Returns the new completion, or None when it had been reached already."""
    journeys = live_journeys(end_user.workspace)
    live = [j for j in journeys if j.id == milestone.journey_id]
    progress = journeys_start(end_user=end_user, journeys=live or journeys)
    if milestone.journey_id not in progress:
        # A journey not published yet still records what the server reports.
        progress[milestone.journey_id], _ = JourneyProgress.objects.get_or_create(
            end_user=end_user,
            journey_id=milestone.journey_id,
            defaults={
                "workspace_id": end_user.workspace_id,
                "started_at": _journey_start_time(end_user, milestone.journey.starts_on),
            },
        )
    return _completion_store(
        end_user=end_user,
        milestone_id=milestone.pk,
        journey_id=milestone.journey_id,
        at=at or timezone.now(),
        event_id=event.pk if event else None,
        source=source,
        journeys=journeys,
        progress=progress,
    )


# Progress --------------------------------------------------------------------------------


def journey_progress(*, end_user: EndUser) -> list[dict[str, Any]]:
    """Every live journey of the end user: start, each milestone with its completion time,
    percent done, PQL and when."""
    journeys = live_journeys(end_user.workspace)
    rows = {p.journey_id: p for p in JourneyProgress.objects.filter(end_user=end_user)}
    completed = dict(
        MilestoneCompletion.objects.filter(end_user=end_user).values_list(
            "milestone_id", "completed_at"
        )
    )
    names = dict(
        Milestone.objects.filter(pk__in=[m.id for j in journeys for m in j.milestones]).values_list(
            "pk", "name"
        )
    )
    answer = []
    for journey in journeys:
        row = rows.get(journey.id)
        milestones = [
            {
                "key": m.key,
                "name": names.get(m.id, m.key),
                "completed_at": _iso(completed.get(m.id)),
                "counts_toward_pql": m.counts_toward_pql,
            }
            for m in journey.milestones
        ]
        done = sum(1 for m in journey.milestones if m.id in completed)
        total = len(journey.milestones)
        answer.append(
            {
                "journey": {"key": journey.key, "name": journey.name},
                "started_at": _iso(row.started_at if row else None),
                "completed_at": _iso(row.completed_at if row else None),
                "milestones": milestones,
                "completed": done,
                "total": total,
                "percent": round(100 * done / total) if total else 0,
                "pql": bool(row and row.pql_at),
                "pql_at": _iso(row.pql_at if row else None),
            }
        )
    return answer


def progress_push(*, end_user: EndUser, journey_id: int, completed_milestone_id: int) -> None:
    """Push the journey's new progress to every open tab of the end user (after commit)."""
    journeys = journey_progress(end_user=end_user)
    key = Journey.objects.filter(pk=journey_id).values_list("key", flat=True).first()
    milestone_key = (
        Milestone.objects.filter(pk=completed_milestone_id).values_list("key", flat=True).first()
    )
    for entry in journeys:
        if entry["journey"]["key"] == key:
            realtime.push_to_end_user(
                end_user_id=end_user.pk,
                message={"type": "progress", **entry, "completed": milestone_key},
            )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
