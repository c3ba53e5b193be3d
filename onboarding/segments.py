"""Does an end user belong to a segment? Evaluated on the server, for targeting (the widget's
`welcome`) and for engagement rules.

Conditions are checked against the end user's traits, lifecycle stage, milestone completions
and events. `segment_matches` runs at most two small indexed queries per segment; callers that
check many segments for one user pass `completed_milestone_ids` and `performed_event_names`
once to avoid repeating them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from django.db.models import QuerySet
from django.db.models.fields.json import KeyTransform

from onboarding.models import Condition, EndUser, Event, MilestoneCompletion, Segment


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _trait_holds(condition: Condition, traits: dict[str, Any]) -> bool:
    present = condition.trait in traits and traits[condition.trait] is not None
    if condition.operator == "exists":
        return present
    if condition.operator == "not_exists":
        return not present
    if not present:
        # A missing trait satisfies only the negative comparisons.
        return condition.operator in {"neq", "not_contains"}
    actual = traits[condition.trait]
    text = str(actual).lower()
    expected = condition.value.lower()
    match condition.operator:
        case "eq":
            return text == expected
        case "neq":
            return text != expected
        case "contains":
            return expected in text
        case "not_contains":
            return expected not in text
        case "in":
            return text in {item.strip().lower() for item in condition.value.split(",")}
    left, right = _number(actual), _number(condition.value)
    if left is None or right is None:
        return False
    match condition.operator:
        case "gt":
            return left > right
        case "gte":
            return left >= right
        case "lt":
            return left < right
        case "lte":
            return left <= right
    return False


def event_fact(condition: Condition) -> str:
    """What an event condition asks about, as one entry of `performed_event_names`: the event's
    name, or with property filters the name and the filters (a condition on survey answers,
    e.g. `$survey_answered` with {"survey": "nps", "band": "promoter"})."""
    if not condition.event_properties:
        return condition.event_name
    return json.dumps([condition.event_name, condition.event_properties], sort_keys=True)


def events_with_properties(events: QuerySet[Event], properties: dict[str, Any]) -> QuerySet[Event]:
    """`events` that have every one of `properties` (equal JSON values)."""
    for index, (name, value) in enumerate(sorted(properties.items())):
        events = events.alias(**{f"property_{index}": KeyTransform(name, "properties")}).filter(
            **{f"property_{index}": value}
        )
    return events


def _performed(ids: set[int], conditions: list[Condition]) -> list[tuple[int, str]]:
    """(end user id, event fact) for each event condition the people meet."""
    plain = {c.event_name for c in conditions if not c.event_properties}
    found: list[tuple[int, str]] = []
    if plain:
        found += (
            Event.objects.filter(end_user_id__in=ids, name__in=plain)
            .values_list("end_user_id", "name")
            .distinct()
        )
    filtered = {event_fact(c): c for c in conditions if c.event_properties}
    for fact, condition in filtered.items():
        events = Event.objects.filter(end_user_id__in=ids, name=condition.event_name)
        found += (
            (end_user_id, fact)
            for end_user_id in events_with_properties(events, condition.event_properties)
            .values_list("end_user_id", flat=True)
            .distinct()
        )
    return found


def condition_holds(
    condition: Condition,
    *,
    end_user: EndUser,
    completed_milestone_ids: set[int],
    performed_event_names: set[str],
) -> bool:
    match condition.kind:
        case Condition.Kind.TRAIT:
            return _trait_holds(condition, end_user.traits or {})
        case Condition.Kind.LIFECYCLE:
            same = end_user.lifecycle_stage == condition.value
            return same if condition.operator == "is" else not same
        case Condition.Kind.MILESTONE:
            done = condition.milestone_id in completed_milestone_ids
            return done if condition.operator == "completed" else not done
        case Condition.Kind.EVENT:
            done = event_fact(condition) in performed_event_names
            return done if condition.operator == "performed" else not done
        case Condition.Kind.PEOPLE:
            listed = end_user.external_id in condition.people
            return listed if condition.operator == "is_one_of" else not listed
    return False


def facts_for(*, end_user: EndUser, segments: Iterable[Segment]) -> tuple[set[int], set[str]]:
    """The milestone ids and event names the given segments' conditions ask about."""
    conditions = [c for segment in segments for c in segment.conditions.all()]
    milestone_ids = {c.milestone_id for c in conditions if c.kind == Condition.Kind.MILESTONE}
    events = [c for c in conditions if c.kind == Condition.Kind.EVENT]
    completed: set[int] = set()
    performed: set[str] = set()
    if milestone_ids and end_user.pk:
        completed = set(
            MilestoneCompletion.objects.filter(
                end_user=end_user, milestone_id__in=milestone_ids
            ).values_list("milestone_id", flat=True)
        )
    if events and end_user.pk:
        performed = {fact for _, fact in _performed({end_user.pk}, events)}
    return completed, performed


def facts_for_many(
    *, end_users: Sequence[EndUser], segments: Iterable[Segment]
) -> dict[int, tuple[set[int], set[str]]]:
    """`facts_for` for many people: one query per kind of fact for all of them."""
    conditions = [c for segment in segments for c in segment.conditions.all()]
    milestone_ids = {c.milestone_id for c in conditions if c.kind == Condition.Kind.MILESTONE}
    events = [c for c in conditions if c.kind == Condition.Kind.EVENT]
    ids = {user.pk for user in end_users if user.pk}
    facts: dict[int, tuple[set[int], set[str]]] = {pk: (set(), set()) for pk in ids}
    if milestone_ids and ids:
        for end_user_id, milestone_id in MilestoneCompletion.objects.filter(
            end_user_id__in=ids, milestone_id__in=milestone_ids
        ).values_list("end_user_id", "milestone_id"):
            facts[end_user_id][0].add(milestone_id)
    if events and ids:
        for end_user_id, fact in _performed(ids, events):
            facts[end_user_id][1].add(fact)
    return facts


def segment_matches(
    *,
    segment: Segment | None,
    end_user: EndUser,
    completed_milestone_ids: set[int] | None = None,
    performed_event_names: set[str] | None = None,
) -> bool:
    """True when the end user is in the segment; content without a segment shows to everyone.
    A segment with no conditions matches everyone."""
    if segment is None:
        return True
    conditions = list(segment.conditions.all())
    if not conditions:
        return True
    if completed_milestone_ids is None or performed_event_names is None:
        completed_milestone_ids, performed_event_names = facts_for(
            end_user=end_user, segments=[segment]
        )
    results = (
        condition_holds(
            condition,
            end_user=end_user,
            completed_milestone_ids=completed_milestone_ids,
            performed_event_names=performed_event_names,
        )
        for condition in conditions
    )
    return all(results) if segment.match == Segment.Match.ALL else any(results)
