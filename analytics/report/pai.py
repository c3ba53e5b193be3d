"""PAI validation: is "did `key_event` N times within `window_days` of signup" a predictor of
retention? Computed in the analytics store.

People: signed up in the range and at least `retention_day` days ago. Retained: did
`return_event` (any event when None) on or after day `retention_day` since signup (day d =
[signup + d days, signup + d + 1 days)). For each threshold 1..max_threshold the overlap is the
Jaccard index of "met the threshold" and "retained"; the best threshold maximises it (the
smallest, among equals).
"""

# SQL here is assembled from fixed fragments and integers; every value a caller supplies
# travels as a query parameter.
# ruff: noqa: S608

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from analytics import store
from analytics.inputs import MAX_PAI_THRESHOLD, DateRange, check_known_event, check_range
from analytics.report.common import rate
from onboarding.models import Workspace

DAY_MS = 86_400_000


@dataclass(frozen=True)
class PaiThreshold:
    threshold: int
    met: int  # did the key event at least `threshold` times in the window
    met_and_retained: int
    retained_total: int
    overlap: float | None  # met & retained / met | retained
    retention_of_met: float | None


@dataclass(frozen=True)
class PaiValidation:
    key_event: str
    window_days: int
    retention_day: int
    signups: int
    retained: int
    thresholds: tuple[PaiThreshold, ...]
    best_threshold: int | None
    curve_days: tuple[int, ...]
    baseline_curve: tuple[float | None, ...]  # share of all signups active on day d
    best_curve: tuple[float | None, ...]  # same, among those who met the best threshold


# Per person who signed up in the range (and long enough ago): how often they did the key
# event within the window, whether they came back on or after the retention day, and the days
# since signup on which they were active up to that day. People with no events at all count
# too (the RIGHT JOIN keeps them). The people are the join's right side, the one ClickHouse
# holds in memory: with the events there, it built a table of every event of the workspace
# (17 s at 10 M events). No event before the range can count: every one is compared with a
# signup in it.
_PEOPLE = """
    SELECT s.person_id AS person_id,
           countIf(e.name = {key:String} AND e.ms >= s.signed AND e.ms <= s.signed + {window:Int64})
             AS key_count,
           ifNull(max(e.returning AND e.ms >= s.signed + {retention:Int64}), 0) AS retained,
           groupUniqArrayIf(intDiv(e.ms - s.signed, 86400000),
                            e.returning AND e.ms >= s.signed AND e.ms < s.signed + {curve:Int64})
             AS days
    FROM (
        SELECT person_id, name, toUnixTimestamp64Milli(timestamp) AS ms,
               {returning} AS returning
        FROM events WHERE workspace_id = {workspace:UInt64}
          AND timestamp >= {start:DateTime64(3, 'UTC')}
    ) AS e
    RIGHT JOIN (
        SELECT person_id, toUnixTimestamp64Milli(signed_up_at) AS signed FROM people FINAL
        WHERE workspace_id = {workspace:UInt64} AND signed_up_at IS NOT NULL
          AND signed_up_at >= {start:DateTime64(3, 'UTC')}
          AND signed_up_at < {end:DateTime64(3, 'UTC')}
          AND signed_up_at <= {observable:DateTime64(3, 'UTC')}
    ) AS s ON e.person_id = s.person_id
    GROUP BY s.person_id
    SETTINGS join_use_nulls = 1
"""


def pai_validation(
    *,
    workspace: Workspace,
    key_event: str,
    date_range: DateRange,
    window_days: int = 1,
    retention_day: int = 21,
    max_threshold: int = 10,
    return_event: str | None = None,
    now: datetime | None = None,
) -> PaiValidation:
    check_known_event(workspace, key_event, "key_event")
    check_known_event(workspace, return_event, "return_event")
    check_range(window_days, 1, 90, "window_days")
    check_range(retention_day, 1, 365, "retention_day")
    check_range(max_threshold, 1, MAX_PAI_THRESHOLD, "max_threshold")
    now = now or timezone.now()
    people = _PEOPLE.replace("{returning}", "name = {return_event:String}" if return_event else "1")
    parameters: dict[str, Any] = {
        "workspace": workspace.pk,
        "key": key_event,
        "return_event": return_event or "",
        "window": window_days * DAY_MS,
        "retention": retention_day * DAY_MS,
        "curve": (retention_day + 1) * DAY_MS,
        "start": date_range.start,
        "end": date_range.end,
        "observable": now - timedelta(days=retention_day),
        "cap": max_threshold,
    }
    # One pass over the people (the join of their events is most of the work, and a UNION of
    # two reads of it did it twice): day -1 of each person gives people per (capped key count,
    # retained); the days they were active give, per (day, capped key count), how many were.
    rows = store.rows(
        f"""SELECT day, least(key_count, {{cap:UInt32}}) AS k, retained, count()
            FROM ({people}) ARRAY JOIN arrayPushFront(days, -1) AS day
            GROUP BY day, k, retained""",
        parameters,
    )
    distribution = [(int(k), int(r), int(n)) for day, k, r, n in rows if day == -1]
    activity = [(int(k), int(day), int(n)) for day, k, _, n in rows if day != -1]
    signups = sum(n for _, _, n in distribution)
    retained_total = sum(n for _, r, n in distribution if r)
    thresholds = []
    for threshold in range(1, max_threshold + 1):
        met = sum(n for k, _, n in distribution if k >= threshold)
        both = sum(n for k, r, n in distribution if k >= threshold and r)
        thresholds.append(
            PaiThreshold(
                threshold=threshold,
                met=met,
                met_and_retained=both,
                retained_total=retained_total,
                overlap=rate(both, met + retained_total - both),
                retention_of_met=rate(both, met),
            )
        )
    scored = [t for t in thresholds if t.overlap is not None]
    best = max(scored, key=lambda t: (t.overlap, -t.threshold)).threshold if scored else None
    days = tuple(range(retention_day + 1))
    best_size = next((t.met for t in thresholds if t.threshold == best), 0)
    baseline: list[float | None] = [None] * len(days)
    best_curve: list[float | None] = [None] * len(days)
    if signups:
        for d in days:
            everyone = sum(n for _, day, n in activity if day == d)
            met = sum(n for k, day, n in activity if day == d and k >= (best or 1))
            baseline[d] = rate(everyone, signups)
            best_curve[d] = rate(met, best_size)
    return PaiValidation(
        key_event=key_event,
        window_days=window_days,
        retention_day=retention_day,
        signups=signups,
        retained=retained_total,
        thresholds=tuple(thresholds),
        best_threshold=best,
        curve_days=days,
        baseline_curve=tuple(baseline),
        best_curve=tuple(best_curve),
    )
