"""The dashboards benchmark's data written by SQL in PostgreSQL (`bench/dashboards.py --sql`).

The same shape as `generate_demo_events` (people who sign up over `DAYS` days, start the
journey at signup, reach each milestone with a falling share and a growing delay, and do
events thinning out after signup, the milestones' own events among them), but made by the
database itself from `generate_series`: the people, their journey progress (PQL and completion
times), milestone completions naming the events that reached them, and the events, in a few
minutes for 1 M people / 10 M events where the Python generator took over 40 minutes on a
loaded machine. Hashes of (person, draw) stand in for random numbers, so a size always makes
the same data. The journey rollups are then counted by the product itself: every start day is
marked stale (`journey_day_mark_stale`) and `journey_rollups.refresh_stale()` counts them, as
the scheduler would after a bulk write.

`check()` compares, at a small size, what the pages read against the product's own live
counts and rules (see its docstring).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

DAYS = 60
# Of the people who reached milestone i - 1, the share who reach milestone i, and the mean
# delay after it (2, 4, 8 hours): generate_demo_events' REACH_SHARES and gaps.
REACH_SHARES = (0.85, 0.6, 0.5, 0.45, 0.4)
FIRST_GAP_SECONDS = 7200
PEOPLE_PER_STATEMENT = 100_000


@dataclass(frozen=True)
class Plan:
    """What one generation writes: `users` people, `events` events, over this journey."""

    workspace_id: int
    journey_id: int
    milestones: Sequence[Any]  # the journey's Milestones in order
    users: int
    events: int
    now: datetime

    @property
    def base(self) -> int:
        return self.events // self.users

    @property
    def extra(self) -> int:
        """The first `extra` people do one event more, so the total is exact."""
        return self.events % self.users


def uniform(person: str, draw: int) -> str:
    """SQL for a number in [0, 1) fixed by (person, draw)."""
    return f"((hashint8extended({person}, {draw}) & 2147483647)::float8 / 2147483648.0)"


def seconds(expression: str) -> str:
    return f"make_interval(secs => {expression})"


def moments_sql(plan: Plan) -> str:
    """One row per person: number `p`, signup `signed` and the moment each milestone was
    reached (NULL when not: a person reaches milestone i only after i - 1, and never after
    now), as `m0`, `m1`, ... Used inside a statement that binds %(now)s and %(low)s/%(high)s."""
    columns = ["s.p", "s.signed"]
    lateral = []
    previous = "s.signed"
    for position in range(len(plan.milestones)):
        share = REACH_SHARES[min(position, len(REACH_SHARES) - 1)]
        gap = seconds(
            f"-ln(1 - {uniform('s.p', 20 + position)}) * {FIRST_GAP_SECONDS * 2**position}"
        )
        moment = f"{previous} + {gap}"
        lateral.append(
            f"CROSS JOIN LATERAL (SELECT CASE WHEN {previous} IS NOT NULL"
            f" AND {uniform('s.p', 10 + position)} < {share}"
            f" AND {moment} <= %(now)s THEN {moment} END AS m{position}) l{position}"
        )
        columns.append(f"l{position}.m{position}")
        previous = f"l{position}.m{position}"
    return f"""
        SELECT {", ".join(columns)}
        FROM (SELECT p, %(now)s - {seconds(f"{uniform('p', 1)} * {DAYS * 86400}")} AS signed
              FROM generate_series(%(low)s::bigint, %(high)s::bigint) AS p) s
        {" ".join(lateral)}
    """


def event_milestones(plan: Plan) -> list[tuple[int, Any]]:
    """(position, milestone) of the milestones an event reaches; their events are each
    person's events 1, 2, ... (event 0 is the signup's $pageview)."""
    found = [(i, m) for i, m in enumerate(plan.milestones) if m.criterion == "event"]
    for _, milestone in found:
        if milestone.min_count != 1 or milestone.window is not None:
            raise SystemExit("the SQL generator makes one event per milestone, without windows")
    return found


def offset_sql(person: str) -> str:
    """Events before this person's: the earlier people's budgets."""
    return f"(({person} - 1) * %(base)s + least({person} - 1, %(extra)s))"


def budget_sql(person: str) -> str:
    return f"(%(base)s + CASE WHEN {person} <= %(extra)s THEN 1 ELSE 0 END)"


def activity_name_sql(event: str, activity: Sequence[str]) -> str:
    """generate_demo_events' activity: earlier names more often (an exponential draw)."""
    names = "ARRAY[" + ", ".join(f"'{name}'" for name in activity) + "]"
    draw = f"-ln(1 - {uniform(event, 3)}) / 0.8"
    return f"({names})[1 + least(floor({draw})::int, {len(activity) - 1})]"


class Writer:
    """Writes one plan's rows through one psycopg cursor (Django's connection)."""

    def __init__(self, cursor: Any, plan: Plan, tables: dict[str, str]):
        self.cursor, self.plan, self.tables = cursor, plan, tables

    def params(self, **more: Any) -> dict[str, Any]:
        return {
            "now": self.plan.now,
            "ws": self.plan.workspace_id,
            "journey": self.plan.journey_id,
            "base": self.plan.base,
            "extra": self.plan.extra,
            **more,
        }

    def reserve(self, table: str, count: int) -> int:
        """The first of `count` ids taken from the table's sequence at once."""
        self.cursor.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'id'),"
            " nextval(pg_get_serial_sequence(%s, 'id')) + %s - 1) - %s + 1",
            [table, table, count, count],
        )
        first: int = self.cursor.fetchone()[0]
        return first

    def write(self, activity: Sequence[str]) -> None:
        plan = self.plan
        first_user = self.reserve(self.tables["end_user"], plan.users)
        first_event = self.reserve(self.tables["event"], plan.events)
        started = time.perf_counter()
        self.cursor.execute(
            f"CREATE TEMPORARY TABLE bench_moments ON COMMIT DROP AS {moments_sql(plan)}",
            self.params(low=1, high=plan.users),
        )
        print(f"  moments: {time.perf_counter() - started:.0f} s", flush=True)
        self.people(first_user)
        self.progress(first_user)
        self.completions(first_user, first_event)
        for low in range(1, plan.users + 1, PEOPLE_PER_STATEMENT):
            high = min(low + PEOPLE_PER_STATEMENT - 1, plan.users)
            self.events(first_user, first_event, activity, low, high)
            print(
                f"  events of people {low}-{high}: {time.perf_counter() - started:.0f} s",
                flush=True,
            )

    def people(self, first_user: int) -> None:
        pql = self.pql_sql()
        self.cursor.execute(
            f"""
            INSERT INTO {self.tables["end_user"]} (id, workspace_id, external_id, traits,
                lifecycle_stage, signed_up_at, first_seen_at, last_seen_at, push_sequence)
            SELECT %(first)s + p - 1, %(ws)s, 'sql-' || p,
                   jsonb_build_object('plan', (ARRAY['trial', 'pro', 'free'])[1 + p %% 3]),
                   CASE WHEN {pql} IS NULL THEN 'trial' ELSE 'pql' END, signed, signed, signed, 0
            FROM bench_moments
            """,
            self.params(first=first_user),
        )

    def pql_sql(self) -> str:
        """When the person reached every PQL milestone (the product's rule: the last of them)."""
        ids = [i for i, m in enumerate(self.plan.milestones) if m.counts_toward_pql]
        if not ids:
            return "NULL::timestamptz"
        every = " AND ".join(f"m{i} IS NOT NULL" for i in ids)
        return f"(CASE WHEN {every} THEN greatest({', '.join(f'm{i}' for i in ids)}) END)"

    def progress(self, first_user: int) -> None:
        last = len(self.plan.milestones) - 1
        completed = f"m{last}" if last >= 0 else "NULL::timestamptz"
        self.cursor.execute(
            f"""
            INSERT INTO {self.tables["progress"]} (workspace_id, end_user_id, journey_id,
                started_at, completed_at, pql_at)
            SELECT %(ws)s, %(first)s + p - 1, %(journey)s, signed, {completed}, {self.pql_sql()}
            FROM bench_moments
            """,
            self.params(first=first_user),
        )

    def completions(self, first_user: int, first_event: int) -> None:
        reached = event_milestones(self.plan)
        by_position = {position: index for index, (position, _) in enumerate(reached, 1)}
        for position, milestone in enumerate(self.plan.milestones):
            index = by_position.get(position)
            event = (
                f"CASE WHEN {index} < {budget_sql('p')}"
                f" THEN %(first_event)s + {offset_sql('p')} + {index} END"
                if index is not None
                else "NULL"
            )
            self.cursor.execute(
                f"""
                INSERT INTO {self.tables["completion"]} (workspace_id, end_user_id, milestone_id,
                    journey_id, completed_at, event_id, source)
                SELECT %(ws)s, %(first)s + p - 1, %(milestone)s, %(journey)s, m{position},
                       {event}, 'server'
                FROM bench_moments WHERE m{position} IS NOT NULL
                """,
                self.params(first=first_user, first_event=first_event, milestone=milestone.pk),
            )

    def events(
        self, first_user: int, first_event: int, activity: Sequence[str], low: int, high: int
    ) -> None:
        reached = event_milestones(self.plan)
        cases = "".join(
            f" WHEN i = {index} AND m{position} IS NOT NULL THEN '{milestone.event_name}'"
            for index, (position, milestone) in enumerate(reached, 1)
        )
        moments = "".join(
            f" WHEN i = {index} AND m{position} IS NOT NULL THEN m{position}"
            for index, (position, _) in enumerate(reached, 1)
        )
        # Each event's draws are fixed by its number in the whole run.
        event = f"({offset_sql('p')} + i)"
        # Activity thins out after signup: more events early than late.
        later = f"signed + (%(now)s - signed) * power({uniform(event, 4)}, 2)"
        self.cursor.execute(
            f"""
            INSERT INTO {self.tables["event"]} (id, workspace_id, end_user_id, client_id, name,
                timestamp, received_at, properties, source, clock_skew_clamped)
            SELECT id, %(ws)s, %(first)s + p - 1, lpad(to_hex(id), 32, '0')::uuid, name, at, at,
                   (ARRAY['{{"source": "ads"}}', '{{"source": "email"}}', '{{"source": "direct"}}'])
                       [1 + (hashint8extended(id, 5) & 65535) %% 3]::jsonb,
                   'server', false
            FROM (
                SELECT p, %(first_event)s + {event} AS id,
                       CASE WHEN i = 0 THEN '$pageview'{cases}
                            ELSE {activity_name_sql(event, activity)} END AS name,
                       CASE WHEN i = 0 THEN signed{moments} ELSE {later} END AS at
                FROM bench_moments
                CROSS JOIN LATERAL generate_series(0, {budget_sql("p")} - 1) AS i
                WHERE p BETWEEN %(low)s AND %(high)s
            ) made
            -- In time order, as recorded events land: a person's events lie apart in the
            -- table (within the statement's people), not side by side.
            ORDER BY at
            """,
            self.params(first=first_user, first_event=first_event, low=low, high=high),
        )


def sql_dataset(users: int, events: int) -> Any:
    """The workspace of `users` people and `events` events written by SQL, made if missing:
    the same journey as bench/analytics.py's (installed JS by the server, then a first
    campaign and imported contacts by their events, both counting toward PQL)."""
    from django.db import connection, transaction
    from django.utils import timezone
    from trial_journey import trial_workspace

    from analytics import journey_rollups, services
    from analytics.management.commands.generate_demo_events import ACTIVITY
    from onboarding.models import EndUser, Event, JourneyProgress, MilestoneCompletion

    if users < 1 or events < users:
        raise SystemExit("--events must be at least --users, and --users at least 1")
    workspace, complete = trial_workspace(f"bench-sql-{users}u-{events}e", events)
    if complete:
        return workspace
    journey = workspace.journeys.get(key="trial")
    plan = Plan(
        workspace_id=workspace.pk,
        journey_id=journey.pk,
        milestones=list(journey.milestones.order_by("position", "id")),
        users=users,
        events=events,
        now=timezone.now(),
    )
    tables = {
        "end_user": EndUser._meta.db_table,
        "event": Event._meta.db_table,
        "progress": JourneyProgress._meta.db_table,
        "completion": MilestoneCompletion._meta.db_table,
    }
    print(f"writing {users} people / {events} events by SQL ...", flush=True)
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        Writer(cursor, plan, tables).write(ACTIVITY)
    written = time.perf_counter() - started
    print(f"written in {written:.0f} s", flush=True)
    # What autovacuum does to a table after a bulk insert (PostgreSQL 13+), done now: the
    # statistics, and the visibility map that index-only scans need.
    with connection.cursor() as cursor:
        for table in tables.values():
            cursor.execute(f"VACUUM ANALYZE {table}")
    print(f"vacuumed in {time.perf_counter() - started - written:.0f} s", flush=True)
    counted = time.perf_counter()
    first_day = (plan.now - timedelta(days=DAYS + 1)).astimezone(UTC).date()
    for offset in range(DAYS + 2):
        services.journey_day_mark_stale(journey_id=journey.pk, day=first_day + timedelta(offset))
    journey_rollups.refresh_stale()
    print(f"rollups counted in {time.perf_counter() - counted:.0f} s", flush=True)
    return workspace


def check(users: int = 2000, events: int = 20_000) -> list[str]:
    """At a small size, what the pages read from the SQL-made data against the product's own
    answers, returning the differences (none when it is right):

    - the journey funnel and milestone velocity read from the rollups (counted after the bulk
      write) against the same reports counted live from progress and completions (`fresh`);
    - each progress row's PQL and completion times against the product's rule
      (onboarding/recording.py: the last of the PQL milestones' completions, of all of them),
      and the lifecycle stage against the PQL time;
    - each event milestone's completion against the event it names (same person, name, time).
    """
    from django.db import connection
    from django.utils import timezone

    from analytics.inputs import DateRange
    from analytics.report import journey_funnel, milestone_velocity
    from onboarding.models import Journey

    workspace = sql_dataset(users, events)
    journey = Journey.objects.get(workspace=workspace, key="trial")
    milestones = list(journey.milestones.all())
    pql_count = sum(1 for m in milestones if m.counts_toward_pql)
    today = timezone.now().date()
    problems = []
    for days in (7, 30, DAYS + 1):
        for zone in ("UTC", "America/New_York"):
            span = DateRange(today - timedelta(days=days), today, zone)
            for report in (journey_funnel.journey_funnel, milestone_velocity.milestone_velocity):
                stored = report(journey=journey, date_range=span)
                live = report(journey=journey, date_range=span, fresh=True)
                if stored != live:
                    problems.append(f"{report.__name__} over {days} days ({zone}) differs")
    queries = {
        "progress times": """
            SELECT count(*) FROM onboarding_journeyprogress p
            LEFT JOIN (
                SELECT c.end_user_id,
                       max(c.completed_at) FILTER (WHERE m.counts_toward_pql) AS pql_at,
                       count(*) FILTER (WHERE m.counts_toward_pql) AS pql_done,
                       max(c.completed_at) AS last, count(*) AS done
                FROM onboarding_milestonecompletion c
                JOIN onboarding_milestone m ON m.id = c.milestone_id
                WHERE c.journey_id = %(journey)s GROUP BY c.end_user_id
            ) c ON c.end_user_id = p.end_user_id
            WHERE p.journey_id = %(journey)s AND (
                p.pql_at IS DISTINCT FROM CASE WHEN c.pql_done = %(pqls)s THEN c.pql_at END
                OR p.completed_at IS DISTINCT FROM CASE WHEN c.done = %(all)s THEN c.last END)
        """,
        "lifecycle stages": """
            SELECT count(*) FROM onboarding_enduser u
            JOIN onboarding_journeyprogress p ON p.end_user_id = u.id
            WHERE p.journey_id = %(journey)s
              AND (u.lifecycle_stage = 'pql') <> (p.pql_at IS NOT NULL)
        """,
        "completion events": """
            SELECT count(*) FROM onboarding_milestonecompletion c
            JOIN onboarding_milestone m ON m.id = c.milestone_id
            LEFT JOIN onboarding_event e ON e.id = c.event_id
            WHERE c.journey_id = %(journey)s AND m.criterion = 'event' AND (
                e.id IS NULL OR e.end_user_id <> c.end_user_id OR e.name <> m.event_name
                OR e.timestamp <> c.completed_at)
        """,
    }
    with connection.cursor() as cursor:
        for what, sql in queries.items():
            cursor.execute(sql, {"journey": journey.pk, "pqls": pql_count, "all": len(milestones)})
            wrong = cursor.fetchone()[0]
            if wrong:
                problems.append(f"{what}: {wrong} rows disagree")
    return problems
