"""`field__any=values`: membership in a list, the way the write path asks it.

Django writes `field IN (%s, %s, …)`, one placeholder per value, and prepares each value in
Python. psycopg caches the parsing of a statement only up to 50 parameters, so a batch's 500
people or ids made it re-parse a long statement every time, and that plus the per-value work
was most of reading a batch's people (7-9 ms of CPU for 500 external ids, 0.8 ms as below).
On PostgreSQL this lookup is `field = ANY(%s)` with the values as one array parameter, a short
statement whatever their number; other databases get the ordinary IN. The values must already
be what the column holds (ids as int, text as str): they are not prepared one by one.

Since the values are then one parameter, a query whose only other inputs are fixed (a published
milestone's) can be compiled once and sent again with the next batch's list: `Statement`.
Compiling a window query through the ORM cost more than running it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable
from typing import Any, NamedTuple

from django.core.exceptions import EmptyResultSet
from django.db import connection, models
from django.db.models import QuerySet
from django.db.models.lookups import In


class AnyOf(In):
    lookup_name = "any"

    def get_prep_lookup(self) -> Any:
        # As given (a set is fine): only IN below needs them one by one.
        return list(self.rhs)

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        if not self.rhs:
            raise EmptyResultSet  # as IN does: a query that matches nothing is not sent
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", [*lhs_params, list(self.rhs)]


# Foreign keys (`end_user_id__any`, given ids) keep lookups of their own.
models.Field.register_lookup(AnyOf)
models.ForeignObject.register_lookup(AnyOf)


def any_of(column: str, values: Collection[Any]) -> tuple[str, list[Any]]:
    """The same test for raw SQL: the condition on `column` and its parameters."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", [list(values)]
    return f"{column} IN ({', '.join('%s' for _ in values) or 'NULL'})", list(values)


# What a Statement is compiled with in place of its list, and where that list then goes.
_STAND_IN = object()
_LIST = object()


class Statement(NamedTuple):
    """A query's SQL and parameters, compiled once, with a place for a list of values."""

    sql: str
    params: tuple[Any, ...]

    def with_list(self, values: Collection[Any]) -> list[Any]:
        """The parameters with `values` in the list's place(s)."""
        listed = list(values)
        return [listed if param is _LIST else param for param in self.params]


def statement(queryset_for: Callable[[list[Any]], QuerySet[Any]]) -> Statement:
    """PostgreSQL: `queryset_for(values)` compiled once, for any `values`; it must use them only
    in `__any` lookups (each one array parameter) and not depend on them otherwise."""
    if connection.vendor != "postgresql":
        raise ValueError("elsewhere a list is one parameter per value: compile it each time")
    queryset = queryset_for([_STAND_IN])
    sql, params = queryset.query.get_compiler(connection=connection).as_sql()
    placed = tuple(
        _LIST if isinstance(param, list) and param == [_STAND_IN] else param for param in params
    )
    if _LIST not in placed:
        raise ValueError("the queryset does not use its values in an `__any` lookup")
    return Statement(sql, placed)


_compiled: dict[Hashable, Statement] = {}
_COMPILED_KEPT = 1024


def compiled(key: Hashable, queryset_for: Callable[[list[Any]], QuerySet[Any]]) -> Statement:
    """PostgreSQL: `statement(queryset_for)`, compiled on the first call with this `key`, which
    must name everything the queryset depends on but its values (one process's cache)."""
    found = _compiled.get(key)
    if found is None:
        if len(_compiled) >= _COMPILED_KEPT:
            _compiled.clear()
        found = _compiled[key] = statement(queryset_for)
    return found


def values_rows(
    key: Hashable, queryset_for: Callable[[list[Any]], QuerySet[Any]], values: Collection[Any]
) -> list[tuple[Any, ...]]:
    """The rows of `queryset_for(values)`, a `values_list` of plain columns (ids, text, times:
    on PostgreSQL no converter is applied to them), compiled once per `key` there (`compiled`)
    and each time elsewhere."""
    if connection.vendor != "postgresql":
        return list(queryset_for(list(values)))
    query = compiled(key, queryset_for)
    with connection.cursor() as cursor:
        cursor.execute(query.sql, query.with_list(values))
        return cursor.fetchall()
