"""A segment's members decided in the database (the journey funnel's segment breakdown), by the
same rules as onboarding.segments.segment_matches."""

from __future__ import annotations

from typing import Any

from django.db.models import (
    Case,
    Exists,
    F,
    FloatField,
    Func,
    OuterRef,
    Q,
    QuerySet,
    TextField,
    When,
)
from django.db.models.functions import Cast, Lower
from django.db.models.lookups import (
    Contains,
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    IsNull,
    LessThan,
    LessThanOrEqual,
    Regex,
)

from analytics.sql import json_text, json_text_params
from onboarding.models import Condition, EndUser, Event, MilestoneCompletion, Segment
from onboarding.segments import events_with_properties

EVENT = Event._meta.db_table


# What Python's float() reads in a trait, short of its oddities ("inf", "1_000"); a trait
# that is not a number fails every numeric comparison, as in onboarding.segments.
_NUMBER_PATTERN = r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$"


class TraitText(Func):
    """One trait of an end user as text (NULL when missing or JSON null), spelled the same on
    SQLite and PostgreSQL: booleans 'true' / 'false', numbers as JSON writes them."""

    output_field = TextField()

    def __init__(self, name: str) -> None:
        super().__init__(F("traits"))
        self.trait_name = name

    def as_sql(  # type: ignore[override]
        self, compiler: Any, connection: Any, **extra_context: Any
    ) -> tuple[str, list[Any]]:
        column, params = compiler.compile(self.get_source_expressions()[0])
        return json_text(column), [*params, *json_text_params(self.trait_name)]


_COMPARISONS: dict[str, type[Any]] = {
    "gt": GreaterThan,
    "gte": GreaterThanOrEqual,
    "lt": LessThan,
    "lte": LessThanOrEqual,
}


def _trait_q(condition: Condition) -> Q:
    text = TraitText(condition.trait)
    lowered = Lower(text)
    expected = condition.value.lower()
    missing = Q(IsNull(text, True))
    match condition.operator:
        case "exists":
            return Q(IsNull(text, False))
        case "not_exists":
            return missing
        case "eq":
            return Q(Exact(lowered, expected))
        case "neq":
            # A missing trait satisfies only the negative comparisons.
            return missing | ~Q(Exact(lowered, expected))
        case "contains":
            return Q(Contains(lowered, expected))
        case "not_contains":
            return missing | ~Q(Contains(lowered, expected))
        case "in":
            return Q(In(lowered, [item.strip().lower() for item in condition.value.split(",")]))
    if condition.operator not in _COMPARISONS:
        return Q(pk__isnull=True)
    try:
        bound = float(condition.value)
    except ValueError:
        return Q(pk__isnull=True)
    # CASE keeps PostgreSQL from casting text that is not a number.
    number = Case(
        When(Regex(text, _NUMBER_PATTERN), then=Cast(text, FloatField())),
        default=None,
        output_field=FloatField(),
    )
    return Q(_COMPARISONS[condition.operator](number, bound))


def _condition_q(condition: Condition) -> Q:
    match condition.kind:
        case Condition.Kind.TRAIT:
            return _trait_q(condition)
        case Condition.Kind.LIFECYCLE:
            same = Q(lifecycle_stage=condition.value)
            return same if condition.operator == "is" else ~same
        case Condition.Kind.MILESTONE:
            completions = MilestoneCompletion.objects.filter(end_user=OuterRef("pk"))
            done = Q(Exists(completions.filter(milestone=condition.milestone_id)))
            return done if condition.operator == "completed" else ~done
        case Condition.Kind.EVENT:
            events = Event.objects.filter(end_user=OuterRef("pk"), name=condition.event_name)
            performed = Q(Exists(events_with_properties(events, condition.event_properties)))
            return performed if condition.operator == "performed" else ~performed
        case Condition.Kind.PEOPLE:
            listed = Q(external_id__in=condition.people)
            return listed if condition.operator == "is_one_of" else ~listed
    return Q(pk__isnull=True)


def segment_members(*, segment: Segment) -> QuerySet[EndUser]:
    """The workspace's end users in the segment, decided in the database by the same rules as
    onboarding.segments.segment_matches (traits compared as lower-case text, numbers only when
    the trait reads as one, milestones and events over all time)."""
    people = EndUser.objects.filter(workspace_id=segment.workspace_id)
    conditions = list(segment.conditions.all())
    if not conditions:
        return people
    combined = Q()
    for condition in conditions:
        q = _condition_q(condition)
        combined = combined & q if segment.match == Segment.Match.ALL else combined | q
    return people.filter(combined)
