"""`field__any` (onboarding/lookups.py), the write path's list membership: the same rows as
`__in` on both databases, nothing sent for an empty list, and on PostgreSQL one array parameter
whatever the number of values, so a batch of 500 people is one short statement psycopg parses
once, not a statement of 500 placeholders parsed again on every batch. A query whose list is
its only changing input is compiled once (`statement`) and answers like the queryset for any
list."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from onboarding.lookups import statement, values_rows
from onboarding.models import EndUser, JourneyProgress
from tests.factories import EndUserFactory, JourneyFactory, JourneyProgressFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_any_finds_the_rows_in_finds_by_text_by_id_and_by_foreign_key() -> None:
    workspace = WorkspaceFactory()
    people = [EndUserFactory(workspace=workspace, external_id=f"p{n}") for n in range(5)]
    journey = JourneyFactory(workspace=workspace)
    for person in people[:3]:
        JourneyProgressFactory(end_user=person, journey=journey)
    wanted = {"p1", "p3", "nobody"}
    ids = [people[0].pk, people[4].pk, 10**12]

    def external_ids(**lookup: Any) -> list[str]:
        return sorted(EndUser.objects.filter(**lookup).values_list("external_id", flat=True))

    assert external_ids(external_id__any=wanted) == external_ids(external_id__in=wanted)
    assert external_ids(external_id__any=wanted) == ["p1", "p3"]
    assert external_ids(pk__any=ids) == ["p0", "p4"]
    started = JourneyProgress.objects.filter(end_user_id__any=ids)
    assert [row.end_user_id for row in started] == [people[0].pk]


def test_an_empty_list_matches_nothing_without_a_query() -> None:
    EndUserFactory()

    with CaptureQueriesContext(connection) as captured:
        found = list(EndUser.objects.filter(pk__any=[]))

    assert found == []
    assert captured.captured_queries == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the array is PostgreSQL's")
def test_on_postgresql_500_values_are_one_parameter_of_one_short_statement() -> None:
    workspace = WorkspaceFactory()
    EndUserFactory(workspace=workspace, external_id="p7")
    sent: list[tuple[str, Any]] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        sent.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        found = list(
            EndUser.objects.filter(
                workspace=workspace, external_id__any=[f"p{n}" for n in range(500)]
            ).values_list("external_id", flat=True)
        )

    assert found == ["p7"]
    [(sql, params)] = sent
    assert len(params) == 2  # the workspace, and the 500 ids as one array
    assert len(sql) < 300


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the array is PostgreSQL's")
def test_a_statement_compiled_once_answers_like_its_queryset_for_any_list() -> None:
    workspace = WorkspaceFactory()
    people = [EndUserFactory(workspace=workspace, external_id=f"p{n}") for n in range(6)]
    other = EndUserFactory(external_id="p1")  # another workspace's p1

    def named(external_ids: list[Any]) -> Any:
        return EndUser.objects.filter(
            workspace=workspace, external_id__any=external_ids
        ).values_list("pk", "external_id")

    compiled = statement(named)
    for wanted in (["p1", "p4"], ["p0"], ["p5", "p2", "nobody"]):
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, compiled.with_list(wanted))
            rows = sorted(cursor.fetchall())
        assert rows == sorted(named(wanted))
    assert other.pk not in {pk for pk, _ in rows}
    assert {pk for pk, _ in rows} == {people[5].pk, people[2].pk}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the array is PostgreSQL's")
def test_a_statement_refuses_a_queryset_that_does_not_take_its_list_as_one_array() -> None:
    with pytest.raises(ValueError, match="__any"):
        statement(lambda external_ids: EndUser.objects.filter(external_id__in=["p1", "p2"]))


def test_values_rows_answer_like_the_queryset_each_time_its_key_is_reused() -> None:
    workspace = WorkspaceFactory()
    people = [EndUserFactory(workspace=workspace, external_id=f"p{n}") for n in range(4)]

    def named(ids: list[Any]) -> Any:
        return EndUser.objects.filter(pk__any=ids).values_list("pk", "external_id")

    for wanted in ([people[0].pk, people[2].pk], [people[3].pk], [people[1].pk, 10**12]):
        rows = values_rows("test: people by id", named, wanted)
        assert sorted(rows) == sorted(named(wanted))
    assert [name for _, name in rows] == ["p1"]
