"""The adoption matrix: people active in the range (any event), split by every used / not-used
combination of up to six features (event names done in the range). Computed in the analytics
store."""

# SQL here is assembled from fixed fragments; every value travels as a query parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from analytics import store
from analytics.inputs import MAX_ADOPTION_FEATURES, DateRange, ReportInputError, check_known_event
from analytics.report.common import rate
from onboarding.models import Workspace


@dataclass(frozen=True)
class AdoptionCell:
    used: tuple[bool, ...]  # per feature, in the order asked
    users: int
    share: float | None


@dataclass(frozen=True)
class AdoptionMatrix:
    features: tuple[str, ...]
    active_users: int
    cells: tuple[AdoptionCell, ...]  # all 2^n combinations, "used by none" first


def adoption_matrix(
    *, workspace: Workspace, features: Sequence[str], date_range: DateRange
) -> AdoptionMatrix:
    features = list(features)
    if not 1 <= len(features) <= MAX_ADOPTION_FEATURES:
        raise ReportInputError("features", f"Choose 1 to {MAX_ADOPTION_FEATURES} features.")
    if len(set(features)) != len(features):
        raise ReportInputError("features", "Each feature may appear once.")
    for index, name in enumerate(features):
        check_known_event(workspace, name, f"features[{index}]")
    n = len(features)
    # Per person a bit mask of the features used, the first feature as the highest bit (the
    # order of the cells); then people per mask. The events are stored in person order, so the
    # people are aggregated as they are read, one after the other, instead of in a hash table
    # of every person active in the range.
    bits = " + ".join(
        f"bitShiftLeft(toUInt8(max(name = {{f{i}:String}})), {n - 1 - i})" for i in range(n)
    )
    rows = store.rows(
        f"""SELECT mask, count() FROM (
                SELECT person_id, {bits} AS mask FROM events
                WHERE workspace_id = {{workspace:UInt64}}
                  AND timestamp >= {{start:DateTime64(3, 'UTC')}}
                  AND timestamp < {{end:DateTime64(3, 'UTC')}}
                GROUP BY person_id
            ) GROUP BY mask
            SETTINGS optimize_aggregation_in_order = 1""",
        {
            **{f"f{i}": name for i, name in enumerate(features)},
            "workspace": workspace.pk,
            "start": date_range.start,
            "end": date_range.end,
        },
    )
    counts = {int(mask): int(people) for mask, people in rows}
    active = sum(counts.values())
    cells = []
    for mask in range(2**n):
        used = tuple(bool(mask >> (n - 1 - i) & 1) for i in range(n))
        cells.append(
            AdoptionCell(
                used=used, users=counts.get(mask, 0), share=rate(counts.get(mask, 0), active)
            )
        )
    return AdoptionMatrix(features=tuple(features), active_users=active, cells=tuple(cells))
