"""Recording: every thing an end user does becomes an event exactly once, milestones complete
the moment their criterion first holds, and every open tab of that user hears of it.

`events_record` validates a batch, stores the new events in one INSERT … ON CONFLICT DO
NOTHING RETURNING (so a retry, even a concurrent one, stores nothing twice and the ack says
exactly which ids were new), evaluates only the milestones whose event the batch contains, and
after commit sends the domain signals and pushes progress.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, models, transaction
from django.db.models import ExpressionWrapper, F, FilteredRelation, Q, QuerySet, Value, Window
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import RowNumber
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from onboarding import (
    content_state,
    json_values,
    metrics,
    queries,
    realtime,
    signals,
    surveys,
    translations,
)
from onboarding.lookups import any_of, compiled, values_rows
from onboarding.models import (
    Banner,
    Criterion,
    EndUser,
    ErasureRecord,
    Event,
    Guide,
    Journey,
    JourneyProgress,
    JourneyStart,
    Milestone,
    MilestoneCompletion,
    ProgressBar,
    PublishedVersion,
    ResourceSection,
    Survey,
    Tooltip,
    Walkthrough,
    Workspace,
)

logger = logging.getLogger(__name__)

# A client clock may run ahead; past this, a timestamp is clamped to the receive time and flagged.
MAX_FUTURE_SKEW = timedelta(hours=23)
# Nothing a person did in a product happened before this; earlier values are clock garbage.
EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
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


@dataclass(slots=True)
class RecordedEvent:
    """A stored event as the write path hands it on to milestone evaluation and content state:
    the columns of an Event row without the cost of a model instance per event."""

    pk: int | None
    workspace_id: int
    end_user_id: int
    client_id: uuid.UUID
    name: str
    timestamp: datetime
    received_at: datetime
    properties: dict[str, Any]
    source: str
    clock_skew_clamped: bool


def announce_robustly(signal: Any, **kwargs: Any) -> None:
    """Send a domain signal after commit. One failing receiver (analytics, engagement) must not
    keep the others from hearing what was recorded; its error is logged with its traceback."""
    for receiver_function, result in signal.send_robust(**kwargs):
        if isinstance(result, Exception):
            logger.error(
                "receiver %r of %s failed",
                receiver_function,
                kwargs.get("sender"),
                exc_info=result,
            )


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
    try:
        too_early = parsed < EARLIEST_TIMESTAMP
    except OverflowError:
        too_early = True
    if too_early or parsed.year > 9000:
        raise EventRejected(f"{field_name} {value!r} is outside 2000-01-01 … 9000-01-01")
    return parsed


def _refuse_unstorable(found: json_values.Shape, value: dict[str, Any], prefix: str) -> None:
    """Refuse what no database column stores, naming the field that holds it."""
    if not found.unstorable:
        return
    field = f"{prefix}{json_values.shape(value, locate=True).where}"
    if found.nul:
        raise EventRejected(f"{field} must not contain NUL (U+0000) characters")
    if found.surrogate:
        raise EventRejected(f"{field} must not contain unpaired surrogates (U+D800-U+DFFF)")
    raise EventRejected(f"{field} must be a finite number")


def clean_external_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise EventRejected("user id must be a string")
    text = str(value).strip()
    if not text:
        raise EventRejected("user id must not be empty")
    if "/" in text or "\x00" in text:
        raise EventRejected("user id must not contain '/' or NUL characters")
    if json_values.UNSTORABLE_CHARACTERS.search(text):
        raise EventRejected("user id must not contain unpaired surrogates (U+D800-U+DFFF)")
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
    size = len(json_values.dumps(raw))
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
    shape = json_values.shape(properties) if properties else json_values.shape(name)
    depth = shape.depth if properties else 0
    if depth > settings.MILEPOST_MAX_PROPERTY_DEPTH:
        raise EventRejected(
            f"properties are nested {depth} levels deep; "
            f"the limit is {settings.MILEPOST_MAX_PROPERTY_DEPTH}"
        )
    if shape.unstorable or json_values.UNSTORABLE_CHARACTERS.search(name):
        # Walked again around the name, so that the answer names the field (a rare path).
        event = {"name": name, "properties": properties}
        _refuse_unstorable(json_values.shape(event), event, "")
    if "timestamp" in raw and raw["timestamp"] is not None:
        timestamp = parse_timestamp(raw["timestamp"])
        if sent_at is not None:
            # The client's clock may be wrong; the gap between its timestamp and its sent_at is
            # still right, so anchor that gap to our receive time.
            try:
                corrected = received_at - (sent_at - timestamp)
            except OverflowError:
                corrected = timestamp
            if corrected >= EARLIEST_TIMESTAMP:
                timestamp = corrected
    else:
        timestamp = received_at
    clamped = timestamp > received_at + MAX_FUTURE_SKEW
    if clamped:
        timestamp = received_at
    return _Candidate(
        client_id, str(raw_id), external_id, name.strip(), timestamp, properties, clamped
    )


# Storage ---------------------------------------------------------------------------------


def _end_users_create(workspace: Workspace, external_ids: set[str], *, at: datetime) -> None:
    """Create the people not stored yet; one another transaction just created is skipped.
    Inserted in external id order, so two processes creating the same people cannot deadlock."""
    EndUser.objects.bulk_create(
        [
            EndUser(workspace=workspace, external_id=external_id, first_seen_at=at, last_seen_at=at)
            for external_id in sorted(external_ids)
        ],
        ignore_conflicts=True,
    )


# What the write path reads of a person who reaches a milestone: journey starts, completions
# and their pushes' language. Decoding every person's traits would be the costliest part of the
# read and nothing here reads them; a field left out and read later costs a query per person.
_PERSON_FIELDS = ("id", "workspace_id", "external_id", "signed_up_at", "first_seen_at", "locale")


class _People:
    """The people of a workspace's batches: each external id's row id, and an EndUser only for
    those who reach a milestone. Most of a batch's people reach none: their ids are all that is
    read of them (a model instance each, or even their datetimes decoded, cost more than the
    rest of reading them)."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.ids: dict[str, int] = {}  # external id -> end user id
        self._end_users: dict[int, EndUser] = {}

    def add_end_user(self, end_user: EndUser) -> None:
        self.ids[end_user.external_id] = end_user.pk
        self._end_users[end_user.pk] = end_user

    def read(self, external_ids: set[str], *, seen_at: datetime) -> None:
        """Add the people of these ids, created where missing."""
        people = EndUser.objects.filter(workspace=self.workspace).values_list("external_id", "id")
        self.ids.update(people.filter(external_id__any=external_ids))
        missing = external_ids - self.ids.keys()
        if missing:
            _end_users_create(self.workspace, missing, at=seen_at)
            self.ids.update(people.filter(external_id__any=missing))

    def end_users(self, ids: Iterable[int]) -> dict[int, EndUser]:
        """These people as EndUsers, those not held yet read in one query."""
        ids = list(ids)
        unread = [pk for pk in ids if pk not in self._end_users]
        if unread:
            # As a queryset with only() would make them: the other fields load if read.
            for end_user in EndUser.objects.filter(pk__any=unread).only(*_PERSON_FIELDS):
                end_user.workspace = self.workspace  # their pushes' default language
                self._end_users[end_user.pk] = end_user
        return {pk: self._end_users[pk] for pk in ids}


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
_COMPLETION_COLUMNS = (
    "workspace",
    "end_user",
    "milestone",
    "journey",
    "completed_at",
    "event",
    "source",
)


def _fields(model: type[models.Model], names: Sequence[str]) -> list[models.Field[Any, Any]]:
    return [
        field for name in names if isinstance(field := model._meta.get_field(name), models.Field)
    ]


@functools.lru_cache(maxsize=64)
def _insert_parts(
    model: type[models.Model],
    columns: tuple[str, ...],
    unique: tuple[str, ...],
    returning: tuple[str, ...],
) -> tuple[list[models.Field[Any, Any]], str, str, str, str]:
    """What an insert_new_rows statement is made of (the same for every batch): its fields, the
    column list, the table, the conflict and returning clause, and json_to_recordset's record
    type (each column's database type: a foreign key's took a dozen lookups to work out)."""
    fields = _fields(model, columns)
    quote = connection.ops.quote_name
    names = ", ".join(quote(f.column) for f in fields)
    table = quote(model._meta.db_table)
    tail = (
        f"ON CONFLICT ({', '.join(quote(c) for c in unique)}) DO NOTHING "
        f"RETURNING {', '.join(quote(c) for c in returning)}"
    )
    record = ", ".join(f"{quote(f.column)} {f.db_type(connection)}" for f in fields)
    return fields, names, table, tail, record


def insert_new_rows(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Any],
    *,
    unique: Sequence[str],
    returning: Sequence[str],
) -> list[tuple[Any, ...]]:
    """INSERT … ON CONFLICT (unique) DO NOTHING RETURNING: the `returning` columns of the rows
    that were new. `rows` are objects with the fields' attnames (a model or a slotted record).

    Django's bulk_create(ignore_conflicts=True) cannot say which rows it skipped; this can, on
    PostgreSQL and on SQLite ≥ 3.35 alike. PostgreSQL gets one statement whose one parameter is
    every row as one JSON document (json_to_recordset), which it parses once whatever the number
    of rows; a second row with the same key in one statement is skipped like any conflict."""
    if not rows:
        return []
    fields, names, table, tail, record = _insert_parts(
        model, tuple(columns), tuple(unique), tuple(returning)
    )

    def value(row: Any, f: models.Field[Any, Any]) -> Any:
        raw = getattr(row, f.attname)
        return json.dumps(raw) if isinstance(f, models.JSONField) else raw

    statements: list[tuple[str, list[Any]]] = []
    if connection.vendor == "postgresql":
        # Not one array per column (unnest): psycopg writes an array's text element by element
        # in Python, with a regex per element to quote it, which cost more than the insert.
        # The whole document is encoded in native code (json_values.dumps); datetimes and UUIDs
        # go as their text.
        document = json_values.dumps(
            [{f.column: getattr(row, f.attname) for f in fields} for row in rows]
        ).decode()
        statements.append(
            (
                f"INSERT INTO {table} ({names}) SELECT {names} "  # noqa: S608
                f"FROM json_to_recordset(%s::json) AS rows({record}) {tail}",
                [document],
            )
        )
    else:
        placeholders = ", ".join("%s" for _ in fields)
        # Stay well under SQLite's bound-parameter limit.
        for start in range(0, len(rows), 100):
            part = rows[start : start + 100]
            params = [
                value(row, f)
                if isinstance(f, models.JSONField)
                else f.get_db_prep_save(getattr(row, f.attname), connection)
                for row in part
                for f in fields
            ]
            values = ", ".join(f"({placeholders})" for _ in part)
            statements.append((f"INSERT INTO {table} ({names}) VALUES {values} {tail}", params))  # noqa: S608
    inserted: list[tuple[Any, ...]] = []
    with connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)
            inserted.extend(cursor.fetchall())
    return inserted


def _insert_new_events(rows: list[RecordedEvent]) -> dict[tuple[int, uuid.UUID], int]:
    """The (workspace, id) pairs of the events that were new, with their pk."""
    returned = insert_new_rows(
        Event,
        _EVENT_COLUMNS,
        rows,
        unique=("workspace_id", "client_id"),
        returning=("id", "workspace_id", "client_id"),
    )
    return {
        (workspace_id, client_id if isinstance(client_id, uuid.UUID) else uuid.UUID(client_id)): pk
        for pk, workspace_id, client_id in returned
    }


@dataclass(frozen=True)
class EventBatch:
    """One caller's batch: a socket's `events` message, or an HTTP body. With `end_user` (a
    widget connection) every event is that person's; without, each names its `user_id`."""

    workspace: Workspace
    events: Sequence[Any]
    source: str
    sent_at: Any = None
    end_user: EndUser | None = None


# `last_seen_at` is written at most this often per person: a busy user's every batch would
# otherwise rewrite their row. Each process remembers whom it wrote lately, so most batches
# skip the statement altogether.
LAST_SEEN_GRANULARITY = timedelta(minutes=1)
_last_seen_written: dict[int, float] = {}
_LAST_SEEN_REMEMBERED = 100_000


def _last_seen_write(end_user_ids: set[int], at: datetime) -> None:
    EndUser.objects.filter(
        pk__any=end_user_ids, last_seen_at__lt=at - LAST_SEEN_GRANULARITY
    ).update(last_seen_at=at)


def _last_seen_due(end_user_ids: set[int]) -> set[int]:
    """The people this process has not marked as seen within LAST_SEEN_GRANULARITY."""
    now = time.monotonic()
    horizon = now - LAST_SEEN_GRANULARITY.total_seconds()
    due = {pk for pk in end_user_ids if _last_seen_written.get(pk, horizon) <= horizon}
    if len(_last_seen_written) > _LAST_SEEN_REMEMBERED:
        _last_seen_written.clear()
    _last_seen_written.update(dict.fromkeys(due, now))
    return due


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
    batch = EventBatch(workspace, events, source, sent_at, end_user)
    return events_record_many(batches=[batch], received_at=received_at)[0]


def _validated(
    batch: EventBatch, received_at: datetime
) -> tuple[list[_Candidate], list[str], list[dict[str, Any]]]:
    """The batch's valid events (first of each id), the ids repeated inside it, the rejections."""
    rejected: list[dict[str, Any]] = []
    sent: datetime | None = None
    if batch.sent_at is not None:
        try:
            sent = parse_timestamp(batch.sent_at, field_name="sent_at")
        except EventRejected:
            sent = None  # a bad sent_at only disables skew correction, it loses no event
    candidates: list[_Candidate] = []
    seen_in_batch: set[uuid.UUID] = set()
    duplicates: list[str] = []
    live_surveys: dict[str, list[dict[str, Any]]] | None = None
    for index, raw in enumerate(batch.events):
        try:
            candidate = _candidate(
                raw, end_user=batch.end_user, received_at=received_at, sent_at=sent
            )
            if candidate.name == surveys.ANSWERED:
                if live_surveys is None:
                    live_surveys = _live_surveys(batch.workspace.pk)
                try:
                    candidate.properties = surveys.check_answer(
                        properties=candidate.properties, surveys=live_surveys
                    )
                except surveys.AnswerRejected as error:
                    raise EventRejected(str(error)) from None
        except EventRejected as error:
            raw_id = raw.get("id") if isinstance(raw, dict) else None
            rejected.append({"index": index, "id": raw_id, "reason": str(error)})
            continue
        if candidate.client_id in seen_in_batch:
            duplicates.append(candidate.raw_id)
            continue
        seen_in_batch.add(candidate.client_id)
        candidates.append(candidate)
    return candidates, duplicates, rejected


def _live_surveys(workspace_id: int) -> dict[str, list[dict[str, Any]]]:
    """The questions of each live survey of the workspace, by survey key."""
    _, versions = queries.live_content(workspace_id=workspace_id)
    return {
        version.key: version.snapshot["questions"]
        for version in versions
        if version.kind == PublishedVersion.Kind.SURVEY
    }


def events_record_many(
    *,
    batches: Sequence[EventBatch],
    received_at: datetime | None = None,
    savepoint: bool = True,
) -> list[Ack]:
    """Store the batches of many callers in one transaction (the socket path's group commit):
    one insert for all their events, one milestone evaluation per workspace, one commit. Each
    batch gets its own Ack.

    An id sent by two batches of the same workspace is stored once: the first batch gets it
    as accepted, the other as a duplicate, exactly as if they had come one after the other.

    Inside a caller's transaction this is a savepoint (two more round trips), so the caller can
    still read after a failure; `savepoint=False` when a failure ends the caller's transaction
    anyway (a group commit of several batches, retried one by one)."""
    with transaction.atomic(savepoint=savepoint):
        return _events_record_many(batches, received_at)


def _events_record_many(batches: Sequence[EventBatch], received_at: datetime | None) -> list[Ack]:
    received_at = received_at or timezone.now()
    validated = [_validated(batch, received_at) for batch in batches]
    answers: list[Ack] = []
    people: dict[int, _People] = {}  # by workspace id
    workspaces: dict[int, Workspace] = {}
    rows: list[list[RecordedEvent]] = []
    for batch, (candidates, _, _) in zip(batches, validated, strict=True):
        workspace = workspaces.setdefault(batch.workspace.pk, batch.workspace)
        known = people.setdefault(workspace.pk, _People(workspace))
        if batch.end_user is not None:
            # A person erased meanwhile fails the insert (the foreign key): the caller answers
            # that batch on its own.
            known.add_end_user(batch.end_user)
        else:
            known.read({c.external_id for c in candidates}, seen_at=received_at)
        ids = known.ids
        rows.append(
            [
                RecordedEvent(
                    pk=None,
                    workspace_id=workspace.pk,
                    end_user_id=ids[c.external_id],
                    client_id=c.client_id,
                    name=c.name,
                    timestamp=c.timestamp,
                    received_at=received_at,
                    properties=c.properties,
                    source=batch.source,
                    clock_skew_clamped=c.clamped,
                )
                for c in candidates
            ]
        )
    inserted = _insert_new_events([row for batch_rows in rows for row in batch_rows])
    stored: dict[int, list[RecordedEvent]] = defaultdict(list)  # by workspace id
    for batch_rows, (candidates, duplicates, rejected) in zip(rows, validated, strict=True):
        accepted: list[str] = []
        duplicates = list(duplicates)
        for candidate, row in zip(candidates, batch_rows, strict=True):
            # pop: a second batch with the same id finds it taken.
            pk = inserted.pop((row.workspace_id, candidate.client_id), None)
            if pk is None:
                duplicates.append(candidate.raw_id)
                continue
            row.pk = pk
            accepted.append(candidate.raw_id)
            stored[row.workspace_id].append(row)
        answers.append(Ack(accepted=accepted, duplicates=duplicates, rejected=rejected))
    everything = [row for workspace_rows in stored.values() for row in workspace_rows]
    refused: set[int] = set()
    if everything:
        refused = content_state.content_states_record(events=everything)
    # A walkthrough transition the person's state refused (a stale tab's Done after a
    # dismissal elsewhere) is kept as an event but completes no walkthrough milestone.
    reachable = [
        found
        for workspace_id, workspace_rows in stored.items()
        if (
            found := _milestones_reachable(
                workspaces[workspace_id], [row for row in workspace_rows if row.pk not in refused]
            )
        )
    ]
    if reachable:
        # Every workspace's people at once, so that they are locked in one id order.
        standing = _people_lock(
            set().union(*(r.people() for r in reachable)),
            milestones=set().union(*(r.milestone_ids() for r in reachable)),
            journeys={j.id for r in reachable for j in r.journeys},
        )
        for found in reachable:
            _evaluate_milestones(found, people=people[found.workspace.pk], standing=standing)
    for workspace_id, workspace_rows in stored.items():
        transaction.on_commit(
            partial(
                announce_robustly,
                signals.events_recorded,
                sender=Event,
                workspace_id=workspace_id,
                end_user_ids=sorted({row.end_user_id for row in workspace_rows}),
                event_ids=[row.pk for row in workspace_rows],
                event_names=sorted({row.name for row in workspace_rows}),
            )
        )
    if everything:
        seen = _last_seen_due({row.end_user_id for row in everything})
        if seen:
            # After commit, on its own: a timestamp need not hold these people's rows locked
            # while the rest of the batch is written; after the pushes and signals above too,
            # so that no tab waits for it.
            transaction.on_commit(partial(_last_seen_write, seen, received_at), robust=True)
    # Last after commit: the pushes and signals above go first.
    transaction.on_commit(partial(metrics.events_counted, answers))
    return answers


# End users -------------------------------------------------------------------------------


def clean_traits(traits: Any) -> dict[str, Any]:
    if traits is None:
        return {}
    if not isinstance(traits, dict):
        raise EventRejected("traits must be a JSON object")
    shape = json_values.shape(traits)
    if shape.depth > settings.MILEPOST_MAX_PROPERTY_DEPTH:
        raise EventRejected(
            f"traits are nested {shape.depth} levels deep; "
            f"the limit is {settings.MILEPOST_MAX_PROPERTY_DEPTH}"
        )
    _refuse_unstorable(shape, traits, "traits.")
    if "signed_up_at" in traits and traits["signed_up_at"] not in (None, ""):
        parse_timestamp(traits["signed_up_at"], field_name="traits.signed_up_at")
    return traits


def _traits_apply(end_user: EndUser, traits: dict[str, Any], *, replace: bool = False) -> bool:
    """Merge `traits` into the person's (or replace them), re-derive the signup time from them,
    and announce `end_user_updated` after commit with the keys that changed. Returns whether
    anything to save changed (the traits, or a signup time out of step with them)."""
    before = end_user.traits or {}
    after = traits if replace else {**before, **traits}
    changed = sorted(key for key in {*before, *after} if before.get(key) != after.get(key))
    end_user.traits = after
    signed_up = after.get("signed_up_at")
    signed_up_at = (
        parse_timestamp(signed_up, field_name="traits.signed_up_at") if signed_up else None
    )
    moved = signed_up_at != end_user.signed_up_at
    end_user.signed_up_at = signed_up_at
    if changed:
        transaction.on_commit(
            partial(
                announce_robustly,
                signals.end_user_updated,
                sender=EndUser,
                workspace_id=end_user.workspace_id,
                end_user_id=end_user.pk,
                traits_changed=changed,
            )
        )
    return bool(changed) or moved


@transaction.atomic
def end_user_identify(
    *, workspace: Workspace, external_id: Any, traits: Any = None, replace: bool = False
) -> EndUser:
    """Create or update an end user. Traits are merged into the stored ones (or replace them
    when `replace`); `signed_up_at` also sets the signup time journeys can start from.

    Raises EventRejected with a message naming the problem on a bad id or traits."""
    external_id = clean_external_id(external_id)
    traits = clean_traits(traits)
    now = timezone.now()
    end_user, created = EndUser.objects.select_for_update().get_or_create(
        workspace=workspace,
        external_id=external_id,
        defaults={"traits": traits, "first_seen_at": now, "last_seen_at": now},
    )
    if created:
        end_user.traits = {}  # so the traits it was created with count as changed
    else:
        end_user.last_seen_at = now
    _traits_apply(end_user, traits, replace=replace)
    end_user.save(update_fields=["traits", "last_seen_at", "signed_up_at"])
    journeys_start(end_user=end_user)
    return end_user


@dataclass(frozen=True)
class Identity:
    """What a `hello` says about its person, already checked (`clean_external_id`,
    `clean_traits`)."""

    workspace: Workspace
    external_id: str
    traits: dict[str, Any]


_END_USER_COLUMNS = (
    "workspace",
    "external_id",
    "traits",
    "lifecycle_stage",
    "signed_up_at",
    "first_seen_at",
    "last_seen_at",
    "push_sequence",
    "locale",
)
_PROGRESS_COLUMNS = ("workspace", "end_user", "journey", "started_at", "completed_at", "pql_at")


def _stored(row: models.Model, pk: int) -> None:
    # What Django's own insert does to an instance it has written.
    row.pk = pk
    row._state.adding = False
    row._state.db = connection.alias


def _end_users_insert(
    workspace: Workspace, external_ids: set[str], *, at: datetime
) -> dict[str, EndUser]:
    """Create the people not stored yet with one INSERT … RETURNING and return those this
    transaction created, by external id (one another transaction just created is skipped and
    left out). A row this transaction inserted is its own until it commits, so unlike the
    people found it needs no lock and no second read. In external id order, so that two
    transactions creating the same people cannot deadlock."""
    people = {
        external_id: EndUser(
            workspace=workspace, external_id=external_id, first_seen_at=at, last_seen_at=at
        )
        for external_id in sorted(external_ids)
    }
    for pk, external_id in insert_new_rows(
        EndUser,
        _END_USER_COLUMNS,
        list(people.values()),
        unique=("workspace_id", "external_id"),
        returning=("id", "external_id"),
    ):
        _stored(people[external_id], pk)
    return {external_id: user for external_id, user in people.items() if user.pk is not None}


def _progress_row_new(user: EndUser, journey: LiveJourney) -> JourneyProgress:
    return JourneyProgress(
        workspace_id=user.workspace_id,
        end_user_id=user.pk,
        journey_id=journey.id,
        started_at=_journey_start_time(user, journey.starts_on),
    )


def _progress_rows_insert(
    users: Sequence[EndUser], journeys: list[LiveJourney]
) -> dict[tuple[int, int], JourneyProgress]:
    """The progress rows of people this transaction created, written with one INSERT …
    RETURNING: no other transaction sees these people yet, so none of their rows can exist
    (`_progress_rows` would look for them first, then read them back)."""
    rows = [_progress_row_new(user, journey) for user in users for journey in journeys]
    ids = {
        (end_user_id, journey_id): pk
        for pk, end_user_id, journey_id in insert_new_rows(
            JourneyProgress,
            _PROGRESS_COLUMNS,
            rows,
            unique=("end_user_id", "journey_id"),
            returning=("id", "end_user_id", "journey_id"),
        )
    }
    for row in rows:
        _stored(row, ids[(row.end_user_id, row.journey_id)])
        transaction.on_commit(partial(_announce_journey_started, row), robust=True)
    return {(row.end_user_id, row.journey_id): row for row in rows}


# No savepoint inside a caller's transaction (two round trips less per group of hellos): nothing
# catches its errors to go on in the same transaction.
@transaction.atomic(savepoint=False)
def end_users_identify_many(*, identities: Sequence[Identity]) -> list[EndUser]:
    """`end_user_identify` (traits merged) for the hellos of many connections at once: the
    people locked, created where missing, written and started on their journeys with a few
    statements for all of them. A person seen in the last minute whose traits did not change
    writes nothing. Returns one EndUser per identity, in order."""
    now = timezone.now()
    people: dict[tuple[int, str], EndUser] = {}
    created: set[int] = set()
    workspaces: dict[int, Workspace] = {}
    for identity in identities:
        workspaces.setdefault(identity.workspace.pk, identity.workspace)
    for workspace_id, workspace in workspaces.items():
        wanted = {i.external_id for i in identities if i.workspace.pk == workspace_id}

        def lock(external_ids: set[str], workspace: Workspace = workspace) -> dict[str, EndUser]:
            # In id order, so two transactions locking the same people cannot deadlock.
            # NO KEY UPDATE: events being committed for these people (their foreign keys take
            # KEY SHARE locks at commit) are not held up by it, nor it by them.
            found = EndUser.objects.select_for_update(no_key=True).filter(
                workspace=workspace, external_id__any=external_ids
            )
            return {user.external_id: user for user in found.order_by("pk")}

        found = lock(wanted)
        missing = wanted - found.keys()
        if missing:
            new = _end_users_insert(workspace, missing, at=now)
            created |= {user.pk for user in new.values()}
            if missing - new.keys():  # another transaction created them meanwhile
                found.update(lock(missing - new.keys()))
            found.update(new)
        for external_id, user in found.items():
            user.workspace = workspace
            people[(workspace_id, external_id)] = user
    dirty: dict[int, EndUser] = {}
    for identity in identities:
        user = people[(identity.workspace.pk, identity.external_id)]
        if _traits_apply(user, identity.traits):
            dirty[user.pk] = user
        if user.pk not in created and user.last_seen_at < now - LAST_SEEN_GRANULARITY:
            user.last_seen_at = now
            dirty[user.pk] = user
    if dirty:
        EndUser.objects.bulk_update(
            list(dirty.values()), ["traits", "last_seen_at", "signed_up_at"]
        )
    for workspace_id, workspace in workspaces.items():
        journeys = live_journeys(workspace)
        users = [user for (owner, _), user in people.items() if owner == workspace_id]
        rows = _progress_rows(
            users=[user for user in users if user.pk not in created], journeys=journeys
        )
        rows.update(_progress_rows_insert([u for u in users if u.pk in created], journeys))
        for user in users:
            for journey in journeys:
                _move_signup_start(user, journey, rows[(user.pk, journey.id)])
    return [people[(i.workspace.pk, i.external_id)] for i in identities]


@transaction.atomic
def end_user_erase(
    *,
    end_user: EndUser,
    requested_by: ErasureRecord.Requester,
    admin_user: User | None = None,
) -> dict[str, int]:
    """Erase every record of one person (events, completions, progress, content state, the end
    user) and leave an ErasureRecord saying who asked and how much went, without the person's
    id in clear. Later events for the same id start a new person."""
    counts = {
        "events": Event.objects.filter(end_user=end_user).count(),
        "completions": MilestoneCompletion.objects.filter(end_user=end_user).count(),
        "journeys": JourneyProgress.objects.filter(end_user=end_user).count(),
    }
    erased_id = end_user.pk
    end_user.delete()
    ErasureRecord.objects.create(
        workspace_id=end_user.workspace_id,
        subject_hash=ErasureRecord.subject_hash_for(
            workspace_id=end_user.workspace_id, external_id=end_user.external_id
        ),
        requested_by=requested_by,
        secret_key_hint=(
            end_user.workspace.secret_key_hint
            if requested_by == ErasureRecord.Requester.SECRET_KEY
            else ""
        ),
        admin_user=admin_user,
        erased=counts,
    )
    transaction.on_commit(
        partial(
            announce_robustly,
            signals.end_user_erased,
            sender=EndUser,
            workspace_id=end_user.workspace_id,
            end_user_id=erased_id,
        )
    )
    return counts


# Journeys and milestones -----------------------------------------------------------------


@dataclass(frozen=True)
class LiveMilestone:
    id: int
    key: str
    name: str
    phase: str
    journey_id: int
    criterion: str
    event_name: str
    min_count: int
    window: timedelta | None
    walkthrough: str | None
    counts_toward_pql: bool
    # (property, value) pairs a counted event must have (equal values), e.g. an NPS band.
    event_properties: tuple[tuple[str, Any], ...] = ()

    def counts(self, properties: dict[str, Any]) -> bool:
        return all(
            name in properties and _same_value(properties[name], value)
            for name, value in self.event_properties
        )


def _same_value(actual: Any, expected: Any) -> bool:
    # As the database compares JSON: a number equals a number, text equals text.
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual is expected
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return float(actual) == float(expected)
    return type(actual) is type(expected) and actual == expected


@dataclass(frozen=True)
class LiveJourney:
    id: int
    key: str
    name: str
    starts_on: str
    milestones: tuple[LiveMilestone, ...]


# Parsed live journeys per workspace, with the list of published versions they were parsed
# from (queries.live_content hands out the same list until what is published changes).
_LIVE_JOURNEYS: dict[int, tuple[list[PublishedVersion], list[LiveJourney]]] = {}


@receiver(post_save, sender=PublishedVersion)
@receiver(post_delete, sender=Journey)
@receiver(post_delete, sender=Walkthrough)
@receiver(post_delete, sender=Tooltip)
@receiver(post_delete, sender=ProgressBar)
@receiver(post_delete, sender=ResourceSection)
@receiver(post_delete, sender=Survey)
@receiver(post_delete, sender=Banner)
@receiver(post_delete, sender=Guide)
def _forget_live_content(sender: Any, instance: Any, **kwargs: Any) -> None:
    # A read before the publish commits may keep the old content for up to a second; the
    # `content` push that answers the publish rechecks (targeting.content_for).
    queries.live_content_forget(workspace_id=instance.workspace_id)


def live_journeys(workspace: Workspace) -> list[LiveJourney]:
    """The current published version of each journey (drafts never drive the engine)."""
    _, versions = queries.live_content(workspace_id=workspace.pk)
    cached = _LIVE_JOURNEYS.get(workspace.pk)
    if cached is not None and cached[0] is versions:
        return cached[1]
    journeys = []
    for version in versions:
        if version.kind != PublishedVersion.Kind.JOURNEY:
            continue
        snapshot = version.snapshot
        milestones = tuple(
            LiveMilestone(
                id=m["id"],
                key=m["key"],
                name=m.get("name") or m["key"],
                phase=m.get("phase") or "",
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
                event_properties=tuple(sorted((m.get("event_properties") or {}).items())),
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
    journeys.sort(key=lambda j: j.id)
    _LIVE_JOURNEYS[workspace.pk] = (versions, journeys)
    return journeys


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
    rows = _progress_rows(users=[end_user], journeys=journeys)
    progress = {journey_id: row for (_, journey_id), row in rows.items()}
    for journey in journeys:
        _move_signup_start(end_user, journey, progress[journey.id])
    return progress


def _move_signup_start(end_user: EndUser, journey: LiveJourney, row: JourneyProgress) -> None:
    """A signup time learnt later moves a signup-based journey's start to it (saved on its own,
    so analytics hears that the start day moved)."""
    start = _journey_start_time(end_user, journey.starts_on)
    if journey.starts_on == JourneyStart.SIGNUP and start != row.started_at:
        row.started_at = start
        row.save(update_fields=["started_at"])


def _announce_journey_started(row: JourneyProgress) -> None:
    announce_robustly(
        signals.journey_started,
        sender=JourneyProgress,
        workspace_id=row.workspace_id,
        end_user_id=row.end_user_id,
        journey_id=row.journey_id,
        started_at=row.started_at,
    )


def _progress_rows(
    *, users: Iterable[EndUser], journeys: list[LiveJourney], load: bool = True
) -> dict[tuple[int, int], JourneyProgress]:
    """Every (end user, journey) progress row, created in bulk where missing: two queries and
    one insert for a whole batch instead of a round trip per person. With `load=False` only the
    missing rows are made (and returned): the existing ones are looked up, not loaded."""
    users = list(users)
    journey_ids = [j.id for j in journeys]
    existing = JourneyProgress.objects.filter(
        end_user_id__any=[u.pk for u in users], journey_id__in=journey_ids
    )
    rows: dict[tuple[int, int], JourneyProgress] = {}
    if load:
        rows = {(p.end_user_id, p.journey_id): p for p in existing}
        present = set(rows)
    else:
        present = set(existing.values_list("end_user_id", "journey_id"))
    missing = [
        _progress_row_new(user, journey)
        for user in users
        for journey in journeys
        if (user.pk, journey.id) not in present
    ]
    if missing:
        JourneyProgress.objects.bulk_create(missing, ignore_conflicts=True)
        for row in JourneyProgress.objects.filter(
            end_user_id__any={m.end_user_id for m in missing}, journey_id__in=journey_ids
        ):
            if (row.end_user_id, row.journey_id) not in present:
                rows[(row.end_user_id, row.journey_id)] = row
                transaction.on_commit(partial(_announce_journey_started, row), robust=True)
    return rows


def _reached_by_count(
    open_ids: dict[LiveMilestone, set[int]],
) -> dict[LiveMilestone, dict[int, tuple[int, datetime]]]:
    """For each milestone, each end user whose events now meet its count (inside its window
    from their journey start), with the event with which it first held: one query for the
    whole batch and all its milestones (one ranked select per milestone, UNION ALL), the
    min_count-th matching event per person by a window function. On PostgreSQL each
    published milestone's select is compiled once (`lookups.compiled`; each publish makes new
    LiveMilestones)."""
    by_id = {milestone.id: milestone for milestone in open_ids}
    reached: dict[LiveMilestone, dict[int, tuple[int, datetime]]] = defaultdict(dict)
    if not open_ids:
        return reached
    if connection.vendor == "postgresql":
        statements = [
            (
                compiled(("count milestone", milestone), partial(_count_ranked, milestone)),
                sorted(user_ids),
            )
            for milestone, user_ids in open_ids.items()
        ]
        sql = " UNION ALL ".join(f"({statement.sql})" for statement, _ in statements)
        params = [p for statement, ids in statements for p in statement.with_list(ids)]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows: Iterable[tuple[int, int, int, datetime]] = cursor.fetchall()
    else:
        selects = [_count_ranked(milestone, user_ids) for milestone, user_ids in open_ids.items()]
        rows = selects[0].union(*selects[1:], all=True) if len(selects) > 1 else selects[0]
    for milestone_id, end_user_id, event_id, timestamp in rows:
        reached[by_id[milestone_id]][end_user_id] = (event_id, timestamp)
    return reached


def _count_ranked(milestone: LiveMilestone, user_ids: Collection[int]) -> QuerySet[Event, Any]:
    """(milestone, person, event, time) of each person's min_count-th counted event."""
    events = Event.objects.filter(end_user_id__any=user_ids, name=milestone.event_name)
    for index, (name, value) in enumerate(milestone.event_properties):
        events = events.alias(**{f"property_{index}": KeyTransform(name, "properties")}).filter(
            **{f"property_{index}": value}
        )
    if milestone.window is not None:
        start = F("end_user__progress__started_at")
        events = events.filter(
            end_user__progress__journey_id=milestone.journey_id,
            timestamp__gte=start,
            timestamp__lte=ExpressionWrapper(
                start + milestone.window, output_field=models.DateTimeField()
            ),
        )
    ranked = events.annotate(
        rank=Window(
            RowNumber(), partition_by=[F("end_user_id")], order_by=[F("timestamp"), F("id")]
        ),
        milestone=Value(milestone.id, output_field=models.BigIntegerField()),
    ).filter(rank=milestone.min_count)
    return ranked.values_list("milestone", "end_user_id", "id", "timestamp")


@dataclass(frozen=True)
class _Reachable:
    """What one workspace's stored events may reach, found in Python before anything is read:
    the people whose events count toward each count milestone, and each walkthrough milestone's
    earliest completion event per person."""

    workspace: Workspace
    journeys: list[LiveJourney]
    counted: dict[LiveMilestone, set[int]]
    walked: dict[tuple[int, LiveMilestone], RecordedEvent]
    source: str

    def people(self) -> set[int]:
        return {u for ids in self.counted.values() for u in ids} | {u for u, _ in self.walked}

    def milestone_ids(self) -> set[int]:
        return {m.id for m in self.counted} | {m.id for _, m in self.walked}


def _milestones_reachable(workspace: Workspace, events: list[RecordedEvent]) -> _Reachable | None:
    journeys = live_journeys(workspace)
    by_event: dict[str, list[LiveMilestone]] = defaultdict(list)
    by_walkthrough: dict[str, list[LiveMilestone]] = defaultdict(list)
    for journey in journeys:
        for milestone in journey.milestones:
            if milestone.criterion == Criterion.EVENT and milestone.event_name:
                by_event[milestone.event_name].append(milestone)
            elif milestone.criterion == Criterion.WALKTHROUGH and milestone.walkthrough:
                by_walkthrough[milestone.walkthrough].append(milestone)
    counted: dict[LiveMilestone, set[int]] = defaultdict(set)
    # A walkthrough milestone is reached by its earliest completion event in the batch.
    walked: dict[tuple[int, LiveMilestone], RecordedEvent] = {}
    for event in sorted(events, key=lambda e: (e.timestamp, e.pk)):
        for milestone in by_event.get(event.name, ()):
            if milestone.counts(event.properties or {}):
                counted[milestone].add(event.end_user_id)
        if event.name == WALKTHROUGH_COMPLETED:
            walkthrough = str((event.properties or {}).get("walkthrough"))
            for milestone in by_walkthrough.get(walkthrough, ()):
                walked.setdefault((event.end_user_id, milestone), event)
    if not counted and not walked:
        return None
    return _Reachable(workspace, journeys, dict(counted), walked, events[0].source)


@dataclass(frozen=True)
class _Standing:
    """What `_people_lock` read of the people it locked."""

    # (person, milestone) pairs that may still be reached: the milestone exists and the person
    # had not completed it when the lock was asked for. A transaction the lock then waited for
    # may have completed it: such a pair is counted again and its completion skipped by the
    # unique constraint, never stored twice.
    open: set[tuple[int, int]]
    journeys_started: dict[int, int]  # person -> in how many of the journeys asked about


def _people_lock(
    people: Collection[int], *, milestones: Collection[int], journeys: Collection[int] = ()
) -> _Standing:
    """Lock the rows of the people who may still reach one of `milestones` (in id order, so two
    transactions locking several people cannot deadlock) and read, with the same statement,
    which of those milestones each may reach and in how many of `journeys` each has a progress
    row. People with nothing left to reach are neither locked nor returned.

    Every writer of a person's completions and progress locks the person's row first, so what a
    transaction reads or counts after this statement includes everything the transactions
    before it wrote: on PostgreSQL (READ COMMITTED) two transactions that each store one of a
    person's events would otherwise count without the other's, and both miss the milestone the
    two events reach together. SQLite serialises writers and takes no row locks. A milestone
    deleted from the draft may still be in the published snapshot: it can no longer be reached
    (its row is gone) until the journey is published again."""
    standing = _Standing(set(), {})
    if not people or not milestones:
        return standing
    quote = connection.ops.quote_name
    ordered = sorted(people)
    in_journeys, journey_params = any_of("progress.journey_id", sorted(journeys))
    is_milestone, milestone_params = any_of("milestone.id", sorted(milestones))
    is_person, person_params = any_of("person.id", ordered)
    lock = ""
    if connection.features.has_select_for_update:
        # NO KEY UPDATE: events being stored for these people (their foreign keys take KEY
        # SHARE locks) are not held up by it, nor it by them.
        lock = f"FOR NO KEY UPDATE OF {quote('person')}"
    sql = (
        f"SELECT person.id, milestone.id, "  # noqa: S608 - our names
        f"(SELECT COUNT(*) FROM {quote(JourneyProgress._meta.db_table)} progress "
        f"WHERE progress.end_user_id = person.id AND {in_journeys}) "
        f"FROM {quote(EndUser._meta.db_table)} person "
        f"JOIN {quote(Milestone._meta.db_table)} milestone ON {is_milestone} "
        f"WHERE {is_person} AND ("
        # A scalar subquery, looked up per (person, milestone) in the unique index: as a join
        # the planner hashed every completion of every workspace (a scan that grows with
        # the table: 13 of a 29 ms batch at 130 k completions).
        f"SELECT completion.id FROM {quote(MilestoneCompletion._meta.db_table)} completion "
        f"WHERE completion.end_user_id = person.id AND completion.milestone_id = milestone.id"
        f") IS NULL "
        f"ORDER BY person.id {lock}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*journey_params, *milestone_params, *person_params])
        for person, milestone, started in cursor.fetchall():
            standing.open.add((person, milestone))
            standing.journeys_started[person] = started
    return standing


def _evaluate_milestones(reachable: _Reachable, *, people: _People, standing: _Standing) -> None:
    """Complete every milestone the batch reaches, its people locked (`_people_lock`). Work is
    per (milestone, batch), not per event: one query finds, for all people at once, the event
    that met each count."""

    def still_open(user_id: int, milestone: LiveMilestone) -> bool:
        return (user_id, milestone.id) in standing.open

    counted = {
        milestone: still_counting
        for milestone, user_ids in reachable.counted.items()
        if (still_counting := {u for u in user_ids if still_open(u, milestone)})
    }
    walked = {pair: e for pair, e in reachable.walked.items() if still_open(*pair)}
    involved = {u for ids in counted.values() for u in ids} | {u for u, _ in walked}
    if not involved:
        return
    users_by_pk = people.end_users(involved)
    journeys = reachable.journeys
    # Windows count from each person's journey start, so every row must exist before counting;
    # only the people who reach something need theirs made, and most have them already.
    unstarted = [u for u in involved if standing.journeys_started[u] < len(journeys)]
    if unstarted:
        _progress_rows(users=[users_by_pk[u] for u in unstarted], journeys=journeys, load=False)
    reached: list[tuple[int, LiveMilestone, int | None, datetime, str]] = []
    for milestone, reachers in _reached_by_count(counted).items():
        for user_id, (reaching_id, at) in reachers.items():
            reached.append((user_id, milestone, reaching_id, at, reachable.source))
    for (user_id, milestone), event in walked.items():
        reached.append((user_id, milestone, event.pk, event.timestamp, event.source))
    _completions_store(
        reaches=[
            Reach(users_by_pk[user_id], milestone.id, milestone.journey_id, at, event_id, source)
            for user_id, milestone, event_id, at, source in reached
        ],
        journeys=journeys,
    )


@dataclass(frozen=True)
class Reach:
    """An end user reaching a milestone, about to be stored."""

    end_user: EndUser
    milestone_id: int
    journey_id: int
    at: datetime
    event_id: int | None
    source: str


def _completions_store(
    *,
    reaches: Sequence[Reach],
    journeys: list[LiveJourney],
) -> list[Reach]:
    """Store the completions that are new (one insert for all; a completion that exists already,
    even one another transaction just stored, is skipped by the unique constraint), move each
    affected journey's PQL and completion times, and after commit push `progress` to each
    person's tabs in completion order and announce the domain signals. Returns the new ones.

    Everyone in `reaches` has a progress row in the journey, and their rows are locked
    (`_people_lock`): the callers made sure."""
    new_pairs = {
        (end_user_id, milestone_id)
        for end_user_id, milestone_id in insert_new_rows(
            MilestoneCompletion,
            _COMPLETION_COLUMNS,
            [
                MilestoneCompletion(
                    workspace_id=r.end_user.workspace_id,
                    end_user_id=r.end_user.pk,
                    milestone_id=r.milestone_id,
                    journey_id=r.journey_id,
                    completed_at=r.at,
                    event_id=r.event_id,
                    source=r.source,
                )
                for r in reaches
            ],
            unique=("end_user_id", "milestone_id"),
            returning=("end_user_id", "milestone_id"),
        )
    }
    new = sorted(
        (r for r in reaches if (r.end_user.pk, r.milestone_id) in new_pairs),
        key=lambda r: (r.at, r.end_user.pk, r.milestone_id),
    )
    if not new:
        return []
    live = {journey.id: journey for journey in journeys}
    # The progress pushes are numbered now, so that they number in the order the completions
    # commit and leave the moment this transaction does.
    seq = realtime.sequences_take(Counter(r.end_user.pk for r in new if r.journey_id in live))
    # Read after the people's rows were locked (by the callers): two transactions completing
    # two PQL milestones of one person at once do so one after the other, and the second
    # reads the first's completion here.
    rows, completed = _progress_with_completions({(r.end_user.pk, r.journey_id) for r in new})
    pql_reached: list[JourneyProgress] = []
    changed: list[JourneyProgress] = []
    for (end_user_id, journey_id), row in rows.items():
        if journey_id not in live:
            continue  # not published yet: recorded, nothing to compute or show
        journey, done = live[journey_id], completed[end_user_id]
        pql_ids = [m.id for m in journey.milestones if m.counts_toward_pql]
        before = (row.pql_at, row.completed_at)
        if row.pql_at is None and pql_ids and all(m in done for m in pql_ids):
            row.pql_at = max(done[m] for m in pql_ids)
            pql_reached.append(row)
        if row.completed_at is None and all(m.id in done for m in journey.milestones):
            row.completed_at = max(done[m.id] for m in journey.milestones)
        if (row.pql_at, row.completed_at) != before:
            changed.append(row)
    if changed:
        _progress_times_write(changed)
    # Each push shows the journey as it stood right after that completion (what was stored
    # before, and this batch's completions up to it), built now from what this transaction
    # knows, so after commit the pushes cost only their sequence numbers.
    shown_so_far: dict[int, dict[int, datetime]] = {
        end_user_id: {m: at for m, at in done.items() if (end_user_id, m) not in new_pairs}
        for end_user_id, done in completed.items()
    }
    pushes: list[tuple[int, dict[str, Any]]] = []
    for r in new:
        so_far = shown_so_far.setdefault(r.end_user.pk, {})
        so_far[r.milestone_id] = r.at
        shown = live.get(r.journey_id)
        state = rows.get((r.end_user.pk, r.journey_id))
        if shown is None or state is None:
            continue
        entry = _journey_entry(shown, state, so_far)
        pql_ids = [m.id for m in shown.milestones if m.counts_toward_pql]
        entry["pql"] = bool(state.pql_at and all(m in so_far for m in pql_ids))
        entry["pql_at"] = _iso(state.pql_at) if entry["pql"] else None
        finished = all(m.id in so_far for m in shown.milestones)
        entry["completed_at"] = _iso(state.completed_at) if finished else None
        # None when the milestone is newer than the journey's published version.
        key = next((m.key for m in shown.milestones if m.id == r.milestone_id), None)
        entry = _in_their_language(entry, r.end_user)
        number = seq.get(r.end_user.pk, 0)  # 0: erased meanwhile, sent nothing
        if number:
            seq[r.end_user.pk] += 1
        pushes.append(
            (r.end_user.pk, {"type": "progress", **entry, "completed": key, "seq": number})
        )
    # The people's open tabs first, after commit: the receivers below may do slower work.
    realtime.send_after_commit(pushes)

    def announce() -> None:
        for r in new:
            started = rows.get((r.end_user.pk, r.journey_id))
            announce_robustly(
                signals.milestone_completed,
                sender=MilestoneCompletion,
                workspace_id=r.end_user.workspace_id,
                end_user_id=r.end_user.pk,
                milestone_id=r.milestone_id,
                journey_id=r.journey_id,
                completed_at=r.at,
                journey_started_at=started.started_at if started is not None else None,
            )
        for reached in pql_reached:
            announce_robustly(
                signals.pql_reached,
                sender=JourneyProgress,
                workspace_id=reached.workspace_id,
                end_user_id=reached.end_user_id,
                journey_id=reached.journey_id,
                pql_at=reached.pql_at,
            )

    transaction.on_commit(announce, robust=True)
    return new


def _progress_with_completions(
    pairs: set[tuple[int, int]],
) -> tuple[dict[tuple[int, int], JourneyProgress], dict[int, dict[int, datetime]]]:
    """The progress rows of these (end user, journey) pairs, and each person's completions in
    those journeys (milestone id -> completion time), read together in one statement."""
    people = sorted({user for user, _ in pairs})
    journeys = tuple(sorted({journey for _, journey in pairs}))
    found = values_rows(
        ("progress with completions", journeys), partial(_progress_read, journeys), people
    )
    rows: dict[tuple[int, int], JourneyProgress] = {}
    completed: dict[int, dict[int, datetime]] = defaultdict(dict)
    for *values, milestone_id, completed_at in found:
        row = JourneyProgress.from_db(connection.alias, _PROGRESS_FIELDS, values)
        if (row.end_user_id, row.journey_id) not in pairs:
            continue
        row = rows.setdefault((row.end_user_id, row.journey_id), row)
        if milestone_id is not None:
            completed[row.end_user_id][milestone_id] = completed_at
    return rows, completed


_PROGRESS_FIELDS = [f.attname for f in JourneyProgress._meta.concrete_fields]


def _progress_read(journeys: Collection[int], people: Collection[int]) -> QuerySet[Any, Any]:
    done = FilteredRelation(
        "journey__completions", condition=Q(journey__completions__end_user_id=F("end_user_id"))
    )
    return (
        JourneyProgress.objects.filter(end_user_id__any=people, journey_id__in=journeys)
        .annotate(done=done)
        .order_by()
        .values_list(*_PROGRESS_FIELDS, "done__milestone_id", "done__completed_at")
    )


def _progress_times_write(rows: Sequence[JourneyProgress]) -> None:
    """Save the rows' `pql_at` and `completed_at`. On PostgreSQL one UPDATE joined to arrays of
    the values: `bulk_update` builds a CASE per field and row, whose Python cost was a fifth of
    a busy group commit's."""
    if connection.vendor != "postgresql":
        JourneyProgress.objects.bulk_update(rows, ["pql_at", "completed_at"])
        return
    table = connection.ops.quote_name(JourneyProgress._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS p SET pql_at = v.pql_at, completed_at = v.completed_at "  # noqa: S608 - our names
            "FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) "
            "AS v(id, pql_at, completed_at) WHERE p.id = v.id",
            [[r.pk for r in rows], [r.pql_at for r in rows], [r.completed_at for r in rows]],
        )


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
    # The person's row first, as every writer of their completions and progress takes it
    # (unless the milestone is reached already: then nothing is written).
    _people_lock({end_user.pk}, milestones={milestone.pk})
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
    reach = Reach(
        end_user,
        milestone.pk,
        milestone.journey_id,
        at or timezone.now(),
        event.pk if event else None,
        source,
    )
    stored = _completions_store(reaches=[reach], journeys=journeys)
    if not stored:
        return None
    return MilestoneCompletion.objects.get(end_user=end_user, milestone=milestone)


# Progress --------------------------------------------------------------------------------


def _journey_entry(
    journey: LiveJourney, row: JourneyProgress | None, completed: dict[int, datetime]
) -> dict[str, Any]:
    done = sum(1 for m in journey.milestones if m.id in completed)
    total = len(journey.milestones)
    return {
        "journey": {"key": journey.key, "name": journey.name},
        "started_at": _iso(row.started_at if row else None),
        "completed_at": _iso(row.completed_at if row else None),
        "milestones": [
            {
                "key": m.key,
                "name": m.name,
                "phase": m.phase,
                "completed_at": _iso(completed.get(m.id)),
                "counts_toward_pql": m.counts_toward_pql,
            }
            for m in journey.milestones
        ],
        "completed": done,
        "total": total,
        "percent": round(100 * done / total) if total else 0,
        "pql": bool(row and row.pql_at),
        "pql_at": _iso(row.pql_at if row else None),
    }


def _in_their_language(entry: dict[str, Any], end_user: EndUser) -> dict[str, Any]:
    """A journey entry with its names in the language this person last asked for."""
    if not end_user.locale:
        return entry
    _, published = queries.live_content(workspace_id=end_user.workspace_id)
    resolved = translations.resolve(
        requested=end_user.locale,
        offered=translations.offered_locales(published),
        default=end_user.workspace.default_locale,
    )
    return translations.localise_journeys([entry], published, resolved.chain)[0]


def journey_progress(*, end_user: EndUser) -> list[dict[str, Any]]:
    """Every live journey of the end user: start, each milestone with its completion time,
    percent done, PQL and when."""
    return journey_progress_many(end_users=[end_user])[0]


def journey_progress_many(*, end_users: Sequence[EndUser]) -> list[list[dict[str, Any]]]:
    """`journey_progress` for many people with two queries for all of them."""
    ids = {user.pk for user in end_users}
    rows = {
        (p.end_user_id, p.journey_id): p
        for p in (
            JourneyProgress.from_db(connection.alias, _PROGRESS_FIELDS, values)
            for values in values_rows(
                "journey progress: rows",
                lambda ids: JourneyProgress.objects.filter(end_user_id__any=ids).values_list(
                    *_PROGRESS_FIELDS
                ),
                ids,
            )
        )
    }
    completed: dict[int, dict[int, datetime]] = defaultdict(dict)
    for end_user_id, milestone_id, at in values_rows(
        "journey progress: completions",
        lambda ids: MilestoneCompletion.objects.filter(end_user_id__any=ids).values_list(
            "end_user_id", "milestone_id", "completed_at"
        ),
        ids,
    ):
        completed[end_user_id][milestone_id] = at
    return [
        [
            _journey_entry(journey, rows.get((user.pk, journey.id)), completed[user.pk])
            for journey in live_journeys(user.workspace)
        ]
        for user in end_users
    ]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
