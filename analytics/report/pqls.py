"""Product qualified leads: who became a PQL, when, their journey progress and an engagement
score; one SQL text over the primary database."""

# SQL here is assembled from fixed fragments, table names and integer ids only; every value a
# caller supplies travels as a query parameter.
# ruff: noqa: S608

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.utils import timezone

from analytics.inputs import DateRange, check_range
from analytics.models import AnalyticsSettings
from analytics.sql import fetch_all, local_bucket
from onboarding.models import (
    EndUser,
    Event,
    Journey,
    JourneyProgress,
    Milestone,
    MilestoneCompletion,
    Workspace,
)

EVENT = Event._meta.db_table
END_USER = EndUser._meta.db_table
PROGRESS = JourneyProgress._meta.db_table
COMPLETION = MilestoneCompletion._meta.db_table


@dataclass(frozen=True)
class PqlRow:
    external_id: str
    journey: str
    pql_at: datetime
    milestones_completed: int
    milestones_total: int
    progress_percent: int
    logins: int
    active_days: int
    core_actions: int  # milestones completed in the period
    features_used: int  # distinct product events (not starting with $) in the period
    message_engagement: int  # $message_clicked in the period
    score: int


@dataclass(frozen=True)
class PqlDay:
    day: date  # in the list's time zone
    pqls: int


@dataclass(frozen=True)
class PqlList:
    period_days: int
    rows: tuple[PqlRow, ...]  # the best scores first, at most `limit` of them
    total: int = 0  # every PQL the filters keep, beyond `limit` too
    per_day: tuple[PqlDay, ...] = ()  # the same people by the day they became PQLs
    timezone: str = "UTC"


def pqls(
    *,
    workspace: Workspace,
    journey: Journey | None = None,
    date_range: DateRange | None = None,
    period_days: int = 30,
    min_score: int = 0,
    search: str = "",
    now: datetime | None = None,
    limit: int = 1000,
) -> PqlList:
    """People who became PQLs (pql_at set), when, their journey progress and an engagement
    score over the last `period_days`: logins + active days + 3 x core actions + 2 x features
    used + 2 x in-app message clicks (the login event is set per workspace).

    `rows` holds the `limit` best scores; `total` and `per_day` count every PQL kept by the
    filters (the minimum score included), by day of pql_at in the date range's time zone."""
    check_range(period_days, 1, 365, "period_days")
    check_range(limit, 1, 100_000, "limit")
    now = now or timezone.now()
    zone = date_range.timezone if date_range is not None else "UTC"
    sql, params = _scored_sql(
        workspace=workspace,
        journey=journey,
        date_range=date_range,
        search=search,
        since=now - timedelta(days=period_days),
        now=now,
    )
    # The best rows (part 0: their figures), then one row per day counting every PQL kept
    # (part 1: the count in the score's place, and the day), in one pass over the scores.
    sql = f"""
        {sql}
        SELECT 0 AS part, top.*, NULL AS day FROM (
            SELECT * FROM scored WHERE score >= %s
            ORDER BY score DESC, pql_at, external_id LIMIT %s
        ) top
        UNION ALL
        SELECT 1, NULL, NULL, NULL, 0, 0, 0, 0, 0, 0, 0, COUNT(*), day FROM (
            SELECT {local_bucket("pql_at", "day")} AS day FROM scored WHERE score >= %s
        ) kept GROUP BY day
        ORDER BY part, score DESC, pql_at, external_id
    """
    rows: list[PqlRow] = []
    per_day: list[PqlDay] = []
    for part, *figures, day in fetch_all(sql, [*params, min_score, limit, zone, min_score]):
        if part:
            per_day.append(PqlDay(day=date.fromisoformat(day), pqls=int(figures[-1])))
        else:
            rows.append(_row(*figures))
    per_day.sort(key=lambda counted: counted.day)
    return PqlList(
        period_days=period_days,
        rows=tuple(rows),
        total=sum(counted.pqls for counted in per_day),
        per_day=tuple(per_day),
        timezone=zone,
    )


def _scored_sql(
    *,
    workspace: Workspace,
    journey: Journey | None,
    date_range: DateRange | None,
    search: str,
    since: datetime,
    now: datetime,
) -> tuple[str, list[Any]]:
    """`WITH ... scored AS (...)`: every PQL the filters keep with their figures and score."""
    login_event = AnalyticsSettings.for_workspace(workspace).login_event
    filters = ["p.workspace_id = %s", "p.pql_at IS NOT NULL"]
    params: list[Any] = [workspace.pk]
    if journey is not None:
        filters.append("p.journey_id = %s")
        params.append(journey.pk)
    if date_range is not None:
        filters += ["p.pql_at >= %s", "p.pql_at < %s"]
        params += [date_range.start, date_range.end]
    if search:
        filters.append("LOWER(u.external_id) LIKE %s")
        params.append(f"%{search.lower()}%")
    day = local_bucket("e.timestamp", "day")
    # Grouped passes over the PQLs' rows, not one subquery per person and figure, each table
    # read once: the events through the (end user, name, time) index alone, the completions
    # through the (end user, journey, time) one (migration 0008).
    sql = f"""
        WITH pql AS (
            SELECT p.end_user_id, p.journey_id, p.pql_at, u.external_id, j.key AS journey_key
            FROM {PROGRESS} p
            JOIN {END_USER} u ON u.id = p.end_user_id
            JOIN {Journey._meta.db_table} j ON j.id = p.journey_id
            WHERE {" AND ".join(filters)}
        ),
        people AS (SELECT DISTINCT end_user_id FROM pql),
        completed AS (
            -- Per person and journey: its milestones done, and those done in the period (the
            -- core actions, counted over every journey).
            SELECT mc.end_user_id, mc.journey_id, COUNT(*) AS done,
                   SUM(CASE WHEN mc.completed_at >= %s AND mc.completed_at < %s
                       THEN 1 ELSE 0 END) AS core
            FROM {COMPLETION} mc
            WHERE mc.end_user_id IN (SELECT end_user_id FROM people)
            GROUP BY mc.end_user_id, mc.journey_id
        ),
        core AS (SELECT end_user_id, SUM(core) AS core FROM completed GROUP BY end_user_id),
        activity AS (
            SELECT e.end_user_id,
                   SUM(CASE WHEN e.name = %s THEN 1 ELSE 0 END) AS logins,
                   COUNT(DISTINCT {day}) AS active_days,
                   COUNT(DISTINCT CASE WHEN e.name NOT LIKE '$%%' THEN e.name END) AS features,
                   SUM(CASE WHEN e.name = '$message_clicked' THEN 1 ELSE 0 END) AS messages
            FROM {EVENT} e
            WHERE e.end_user_id IN (SELECT end_user_id FROM people)
              AND e.timestamp >= %s AND e.timestamp < %s
            GROUP BY e.end_user_id
        ),
        total AS (
            SELECT m.journey_id, COUNT(*) AS total FROM {Milestone._meta.db_table} m
            WHERE m.workspace_id = %s GROUP BY m.journey_id
        ),
        figures AS (
            SELECT pql.external_id, pql.journey_key, pql.pql_at,
                   COALESCE(completed.done, 0) AS done, COALESCE(total.total, 0) AS total,
                   COALESCE(a.logins, 0) AS logins, COALESCE(a.active_days, 0) AS active_days,
                   COALESCE(core.core, 0) AS core, COALESCE(a.features, 0) AS features,
                   COALESCE(a.messages, 0) AS messages
            FROM pql
            LEFT JOIN activity a ON a.end_user_id = pql.end_user_id
            LEFT JOIN completed ON completed.end_user_id = pql.end_user_id
              AND completed.journey_id = pql.journey_id
            LEFT JOIN core ON core.end_user_id = pql.end_user_id
            LEFT JOIN total ON total.journey_id = pql.journey_id
        ),
        scored AS (
            SELECT figures.*,
                   logins + active_days + 3 * core + 2 * features + 2 * messages AS score
            FROM figures
        )
    """
    return sql, [*params, since, now, login_event, "UTC", since, now, workspace.pk]


def _row(
    external_id: str,
    key: str,
    pql_at: datetime | str,
    done: int,
    total: int,
    logins: int,
    days: int,
    core: int,
    features: int,
    messages: int,
    score: int,
) -> PqlRow:
    if isinstance(pql_at, str):
        pql_at = datetime.fromisoformat(pql_at)
    if timezone.is_naive(pql_at):
        # SQLite hands raw datetimes back naive; they are stored in UTC.
        pql_at = pql_at.replace(tzinfo=UTC)
    return PqlRow(
        external_id=external_id,
        journey=key,
        pql_at=pql_at,
        milestones_completed=int(done),
        milestones_total=int(total),
        progress_percent=int(done) * 100 // int(total) if total else 0,
        logins=int(logins),
        active_days=int(days),
        core_actions=int(core),
        features_used=int(features),
        message_engagement=int(messages),
        score=int(score),
    )
