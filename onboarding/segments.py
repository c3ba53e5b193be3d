"""Does an end user belong to a segment? Evaluated on the server, for targeting (the widget's
`welcome`) and for engagement rules.

Conditions are checked against the end user's traits, lifecycle stage, milestone completions
and events. `segment_matches` runs at most two small indexed queries per segment; callers that
check many segments for one user pass `completed_milestone_ids` and `performed_event_names`
once to avoid repeating them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

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
            done = condition.event_name in performed_event_names
            return done if condition.operator == "performed" else not done
        case Condition.Kind.PEOPLE:
            listed = end_user.external_id in condition.people
            return listed if condition.operator == "is_one_of" else not listed
    return False


def facts_for(*, end_user: EndUser, segments: Iterable[Segment]) -> tuple[set[int], set[str]]:
    """The milestone ids and event names the given segments' conditions ask about."""
    conditions = [c for segment in segments for c in segment.conditions.all()]
    milestone_ids = {c.milestone_id for c in conditions if c.kind == Condition.Kind.MILESTONE}
    event_names = {c.event_name for c in conditions if c.kind == Condition.Kind.EVENT}
    completed: set[int] = set()
    performed: set[str] = set()
    if milestone_ids and end_user.pk:
        completed = set(
            MilestoneCompletion.objects.filter(
                end_user=end_user, milestone_id__in=milestone_ids
            ).values_list("milestone_id", flat=True)
        )
    if event_names and end_user.pk:
        performed = set(
            Event.objects.filter(end_user=end_user, name__in=event_names)
            .values_list("name", flat=True)
            .distinct()
        )
    return completed, performed


def facts_for_many(
    *, end_users: Sequence[EndUser], segments: Iterable[Segment]
) -> dict[int, tuple[set[int], set[str]]]:
    """`facts_for` for many people: one query per kind of fact for all of them."""
    conditions = [c for segment in segments for c in segment.conditions.all()]
    milestone_ids = {c.milestone_id for c in conditions if c.kind == Condition.Kind.MILESTONE}
    event_names = {c.event_name for c in conditions if c.kind == Condition.Kind.EVENT}
    ids = {user.pk for user in end_users if user.pk}
    facts: dict[int, tuple[set[int], set[str]]] = {pk: (set(), set()) for pk in ids}
    if milestone_ids and ids:
        for end_user_id, milestone_id in MilestoneCompletion.objects.filter(
            end_user_id__in=ids, milestone_id__in=milestone_ids
        ).values_list("end_user_id", "milestone_id"):
            facts[end_user_id][0].add(milestone_id)
    if event_names and ids:
        for end_user_id, name in (
            Event.objects.filter(end_user_id__in=ids, name__in=event_names)
            .values_list("end_user_id", "name")
            .distinct()
        ):
            facts[end_user_id][1].add(name)
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
