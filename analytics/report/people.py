"""The people behind one number of a report: a retention cell's (a cohort and a period after
it). Computed in the analytics store by the same rules as analytics/report/retention.py's
event cohorts, so a cell's list is exactly as long as the number the report shows in it (a test
holds the two together). An event funnel's step lists its own people (its `people_limit`).

Lists are of external ids, ordered by when the person was first known to Milepost, at most
`limit` long (a segment made from them holds at most onboarding's MAX_SEGMENT_PEOPLE); `total`
is the cell's whole count.
"""

# SQL here is assembled from fixed fragments; every value travels as a query parameter.
# ruff: noqa: S608

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from analytics import store
from analytics.inputs import MAX_RETENTION_PERIODS, DateRange, ReportInputError, check_range
from analytics.report.common import bucket
from analytics.report.retention import COHORT_TYPES, MODES, PERIODS
from onboarding.models import EndUser, Workspace
from onboarding.validation import MAX_SEGMENT_PEOPLE


@dataclass(frozen=True)
class People:
    total: int  # everyone in the cell
    external_ids: tuple[str, ...]  # the first `limit` of them, by id


def external_ids(person_ids: list[int]) -> tuple[str, ...]:
    """The people's external ids in the order of their ids (people erased since the store last
    heard of it are left out)."""
    found = dict(
        EndUser.objects.filter(pk__in=person_ids).values_list("pk", "external_id").iterator()
    )
    return tuple(found[pk] for pk in sorted(found))


def retention_cell_people(
    *,
    workspace: Workspace,
    date_range: DateRange,
    period: str,
    mode: str,
    cohort_type: str,
    cohort_event: str | None,
    return_event: str | None,
    cohort_start: date,
    offset: int,
    limit: int = MAX_SEGMENT_PEOPLE,
) -> People:
    """Who, of the cohort starting on `cohort_start`, came back in period `offset` (or in it or
    later, mode on_or_after)."""
    if period not in PERIODS:
        raise ReportInputError("period", "Choose day, week or month.")
    if mode not in MODES:
        raise ReportInputError("mode", "Choose on or on_or_after.")
    if cohort_type not in COHORT_TYPES:
        raise ReportInputError("cohort_type", "Choose first_time or recurring.")
    check_range(offset, 0, MAX_RETENTION_PERIODS - 1, "period_offset")
    cohort_if = "name = {cohort_event:String}" if cohort_event else "1"
    return_if = "name = {return_event:String}" if return_event else "1"
    if cohort_type == "recurring":
        cohort_if += (
            " AND timestamp >= {start:DateTime64(3, 'UTC')}"
            " AND timestamp < {end:DateTime64(3, 'UTC')}"
        )
    index = {
        "day": "dateDiff('day', c.1, x.1)",
        "week": "intDiv(dateDiff('day', c.1, x.1), 7)",
        "month": "dateDiff('month', c.1, x.1)",
    }[period]
    returned = (
        f"arrayDistinct(arrayMap(x -> {index}, arrayFilter(x -> x.3 IS NOT NULL AND x.3 >= c.2,"
        " periods)))"
    )
    came_back = (
        "has(returned, {offset:Int64})"
        if mode == "on"
        else "arrayMax(arrayPushBack(returned, -1)) >= {offset:Int64}"
    )
    if cohort_type == "first_time":
        entries = (
            "arraySlice(arraySort(x -> x.2, arrayFilter(x -> x.2 IS NOT NULL, periods)), 1, 1)"
        )
    else:
        entries = "arrayFilter(x -> x.2 IS NOT NULL, periods)"
    sql = f"""
        SELECT count(), arraySort(groupArraySorted({{limit:UInt64}})(person_id)) FROM (
            SELECT person_id, {returned} AS returned
            FROM (
                SELECT person_id, groupArray((period, first_entry, last_return)) AS periods
                FROM (
                    SELECT person_id, {bucket("timestamp", period)} AS period,
                           minOrNullIf(timestamp, {cohort_if}) AS first_entry,
                           maxOrNullIf(timestamp, {return_if}) AS last_return
                    FROM events WHERE workspace_id = {{workspace:UInt64}}
                    GROUP BY person_id, period
                ) GROUP BY person_id
            ) ARRAY JOIN {entries} AS c
            WHERE c.2 >= {{start:DateTime64(3, 'UTC')}} AND c.2 < {{end:DateTime64(3, 'UTC')}}
              AND c.1 = {{cohort:Date}}
        ) WHERE {came_back}
    """
    [(total, person_ids)] = store.rows(
        sql,
        {
            "workspace": workspace.pk,
            "tz": date_range.timezone,
            "start": date_range.start,
            "end": date_range.end,
            "cohort_event": cohort_event or "",
            "return_event": return_event or "",
            "cohort": cohort_start,
            "offset": offset,
            "limit": limit,
        },
    )
    return People(total=int(total), external_ids=external_ids([int(p) for p in person_ids]))
