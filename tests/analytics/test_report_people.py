"""The people behind a report's numbers: a retention cell lists exactly the people it counts
(as many as the report shows, and the right ones), and a segment made from them holds them."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from analytics import services
from analytics.inputs import DateRange, ReportInputError
from analytics.report import people, retention
from analytics.report.segment_members import segment_members
from onboarding.content_io import content_export, content_import
from onboarding.models import Event, Workspace
from onboarding.segments import segment_matches
from tests.factories import EndUserFactory, WorkspaceFactory

ORIGIN = datetime(2025, 3, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cohort_type", "mode", "cohort_event", "return_event"),
    [
        ("first_time", "on", None, None),
        ("first_time", "on_or_after", "signup", "login"),
        ("recurring", "on", "login", None),
        ("recurring", "on_or_after", None, "login"),
    ],
)
def test_each_retention_cell_lists_as_many_people_as_it_counts(
    workspace: Workspace,
    analytics_store: Callable[[], Any],
    cohort_type: str,
    mode: str,
    cohort_event: str | None,
    return_event: str | None,
) -> None:
    rng = random.Random(7)
    rows = []
    for n in range(40):
        person = EndUserFactory(workspace=workspace, external_id=f"person-{n:02d}")
        for _ in range(rng.randint(1, 8)):
            rows.append(
                Event(
                    workspace=workspace,
                    end_user=person,
                    client_id=f"00000000-0000-4000-8000-{len(rows):012d}",
                    name=rng.choice(("signup", "login", "report")),
                    timestamp=ORIGIN + timedelta(days=rng.randint(0, 34), hours=rng.randint(0, 23)),
                )
            )
    Event.objects.bulk_create(rows)
    analytics_store()
    date_range = DateRange(date(2025, 3, 3), date(2025, 3, 30), "Europe/Paris")
    options = {
        "period": "week",
        "mode": mode,
        "cohort_type": cohort_type,
        "cohort_event": cohort_event,
        "return_event": return_event,
    }
    report = retention.retention(
        workspace=workspace,
        date_range=date_range,
        periods=5,
        now=ORIGIN + timedelta(days=60),
        **options,
    )
    checked = 0
    for cohort in report.cohorts:
        for offset, count in enumerate(cohort.returned):
            cell = people.retention_cell_people(
                workspace=workspace,
                date_range=date_range,
                cohort_start=cohort.cohort_start,
                offset=offset,
                **options,
            )
            assert cell.total == count
            assert len(cell.external_ids) == count
            assert len(set(cell.external_ids)) == count
            checked += count
    assert checked > 40
    small = people.retention_cell_people(
        workspace=workspace,
        date_range=date_range,
        cohort_start=report.cohorts[0].cohort_start,
        offset=0,
        limit=3,
        **options,
    )
    assert small.total == report.cohorts[0].returned[0]
    assert small.external_ids == tuple(sorted(small.external_ids))[:3]
    assert len(small.external_ids) == 3


def test_a_segment_made_from_a_list_of_people_holds_exactly_them(workspace: Workspace) -> None:
    everyone = [EndUserFactory(workspace=workspace, external_id=f"u{n}") for n in range(6)]
    chosen = ["u1", "u3", "u4"]

    segment = services.segment_create_from_people(
        workspace=workspace, external_ids=chosen, name="Dropped at step 2"
    )

    assert segment.key == "dropped-at-step-2"
    members = segment_members(segment=segment)
    assert sorted(members.values_list("external_id", flat=True)) == chosen
    # Targeting (in Python) agrees with the database.
    assert [p.external_id for p in everyone if segment_matches(segment=segment, end_user=p)] == (
        chosen
    )
    again = services.segment_create_from_people(
        workspace=workspace, external_ids=["u0"], name="Dropped at step 2"
    )
    assert again.key == "dropped-at-step-2-2"


def test_a_segment_from_people_refuses_an_empty_or_too_long_list(workspace: Workspace) -> None:
    with pytest.raises(ReportInputError) as empty:
        services.segment_create_from_people(workspace=workspace, external_ids=[], name="None")
    assert empty.value.field == "people"
    with pytest.raises(ReportInputError) as long:
        services.segment_create_from_people(
            workspace=workspace, external_ids=[f"u{n}" for n in range(10_001)], name="Many"
        )
    assert "at most 10,000" in long.value.message


def test_a_segment_of_people_travels_in_a_content_file(workspace: Workspace) -> None:
    for n in range(3):
        EndUserFactory(workspace=workspace, external_id=f"u{n}")
    services.segment_create_from_people(
        workspace=workspace, external_ids=["u0", "u2"], name="Picked"
    )
    other = WorkspaceFactory()

    exported = content_export(workspace=workspace)
    content_import(workspace=other, data=exported)

    [condition] = exported["segments"][0]["conditions"]
    assert condition["people"] == ["u0", "u2"]
    assert content_export(workspace=other) == exported


def test_a_segment_saved_in_admin_without_people_keeps_an_empty_list(workspace: Workspace) -> None:
    from onboarding.admin import ConditionForm

    form = ConditionForm(
        data={"position": 0, "kind": "trait", "trait": "plan", "operator": "eq", "value": "pro"}
    )

    assert form.is_valid(), form.errors
    assert form.cleaned_data["people"] == []
