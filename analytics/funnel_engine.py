"""The ad-hoc event funnel's matching, in plain Python: the reference every engine is compared
against (analytics/store_funnel.py computes the same in ClickHouse; tests/analytics/
test_store_funnel.py checks them person by person).

Semantics follow PostHog's funnels, made exact:
- a person's events are read in order of time; events that share a timestamp happen together
  and are read in step order (the first step an event can count for, then its id; events that
  match no step last), so steps done at one instant count in order;
- ordered: steps in order, other events may happen in between;
- strict: steps in order; any other event of that person read before the last step reached
  ends the attempt there;
- unordered ("any order"): every step within the window, in any order; the events are matched
  to steps by the best assignment (a maximum bipartite matching, each event one step, each step
  one event), grown in reading order: an event counts when it lets one more step be done, even
  if that means moving an earlier event to another of its steps, and the k-th step is reached
  at the k-th event that counts (an event that can only be "visit" does not block a later one
  that can be "visit" or "signup": both count);
- an event counts for one step at most; an attempt reads the events after its entry;
- the conversion window runs from the entry (step 1; any step for unordered) and is inclusive:
  a step exactly `window` after the entry counts;
- every entry in the date range starts an attempt; a person counts once, at the furthest step
  any attempt reached, with the latest attempt that got that far and was not excluded (the
  latest is what a one-pass engine keeps, as PostHog's does: a later entry that gets as far
  has as much of its window left, so it dominates; its times are those of the try that
  converted, not of an abandoned first one);
- an attempt is excluded when an exclusion event (one the attempt did not use as a step)
  happens strictly after it reached from_step and strictly before it reached to_step (up to
  and including the end of the window when it never reached to_step): an exclusion at the same
  instant as the steps around it does not exclude;
- when every attempt that got furthest is excluded, the person leaves the funnel and is counted
  as excluded, even if a cleaner attempt reached fewer steps;
- breakdown by an event property, attribution "all steps": the funnel is computed once per
  value, as if only the events with that value matched steps (exclusions match whatever their
  value); a person counts in each value they entered with, so the groups can add up to more
  people than the funnel has.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from analytics.inputs import FunnelBreakdown, PropertyFilter

NO_STEP = 255  # the reading-order rank of an event that matches no step


@dataclass(frozen=True)
class FunnelEvent:
    ms: int
    id: int
    timestamp: datetime
    steps: frozenset[int]
    exclusions: frozenset[int]
    properties: dict[str, Any] | None
    end_user_id: int

    @property
    def reading_order(self) -> tuple[int, int, int]:
        return (self.ms, min(self.steps, default=NO_STEP), self.id)


@dataclass
class Attempt:
    entry: FunnelEvent
    reached: list[FunnelEvent] = field(default_factory=list)
    excluded: bool = False

    @property
    def level(self) -> int:
        return len(self.reached)


def _augment(
    holder: dict[int, int], steps: list[frozenset[int]], event: int, seen: set[int]
) -> bool:
    """Kuhn's augmenting path: give `event` a step, moving the events that hold steps to other
    steps of theirs where needed; False when no assignment with one more event exists."""
    for step in sorted(steps[event]):
        if step in seen:
            continue
        seen.add(step)
        if step not in holder or _augment(holder, steps, holder[step], seen):
            holder[step] = event
            return True
    return False


def _attempt(events: list[FunnelEvent], entry: int, n: int, order: str, window_ms: int) -> Attempt:
    attempt = Attempt(entry=events[entry], reached=[events[entry]])
    limit = events[entry].ms + window_ms
    holder: dict[int, int] = {}  # unordered: step -> index (in `events`) of the event doing it
    steps = [event.steps for event in events]
    if order == "unordered":
        _augment(holder, steps, entry, set())
    for index in range(entry + 1, len(events)):
        event = events[index]
        if event.ms > limit or attempt.level == n:
            break
        if order == "unordered":
            if event.steps and _augment(holder, steps, index, set()):
                attempt.reached.append(event)
        elif attempt.level in event.steps:
            attempt.reached.append(event)
        elif order == "strict":
            break
    return attempt


def _excluded(
    attempt: Attempt,
    events: list[FunnelEvent],
    exclusions: list[tuple[int, int]],
    window_ms: int,
) -> bool:
    used = {event.id for event in attempt.reached}
    for exclusion, (from_step, to_step) in enumerate(exclusions):
        if attempt.level <= from_step:
            continue
        low = attempt.reached[from_step].ms
        if attempt.level > to_step:
            high, closed = attempt.reached[to_step].ms, False
        else:
            high, closed = attempt.entry.ms + window_ms, True
        for event in events:
            if (
                exclusion in event.exclusions
                and event.id not in used
                and low < event.ms
                and (event.ms <= high if closed else event.ms < high)
            ):
                return True
    return False


def best_attempt(
    events: list[FunnelEvent],
    *,
    n: int,
    order: str,
    window_ms: int,
    entry_from_ms: int,
    entry_to_ms: int,
    exclusions: list[tuple[int, int]],
) -> tuple[Attempt | None, bool]:
    """The person's attempt that counts (None when they had none, or when every attempt that
    got furthest was excluded), and whether they had any attempt at all."""
    events = sorted(events, key=lambda event: event.reading_order)
    attempts = []
    for index, event in enumerate(events):
        if not entry_from_ms <= event.ms < entry_to_ms:
            continue
        if (order == "unordered" and event.steps) or 0 in event.steps:
            attempts.append(_attempt(events, index, n, order, window_ms))
    if not attempts:
        return None, False
    furthest = max(attempt.level for attempt in attempts)
    for attempt in reversed(attempts):
        if attempt.level == furthest:
            attempt.excluded = bool(exclusions) and _excluded(
                attempt, events, exclusions, window_ms
            )
            if not attempt.excluded:
                return attempt, True
    return None, True


def best_attempts_by_value(
    events: list[FunnelEvent], value: Callable[[FunnelEvent], str], **options: Any
) -> dict[str, tuple[Attempt | None, bool]]:
    """Attribution "all steps": best_attempt once per value of the events that match a step, as
    if only the events with that value matched steps. Only values with an attempt are kept."""
    answers: dict[str, tuple[Attempt | None, bool]] = {}
    for wanted in sorted({value(event) for event in events if event.steps}):
        kept = [
            event if value(event) == wanted else replace(event, steps=frozenset())
            for event in events
        ]
        attempt, had_attempt = best_attempt(kept, **options)
        if had_attempt:
            answers[wanted] = (attempt, had_attempt)
    return answers


def attributed_event(attempt: Attempt, breakdown: FunnelBreakdown) -> FunnelEvent | None:
    """The event whose property an event breakdown reads: the entry (first touch), the last
    step reached (last touch) or the given step (None when the attempt did not reach it)."""
    if breakdown.attribution == "first_touch":
        return attempt.reached[0]
    if breakdown.attribution == "last_touch":
        return attempt.reached[-1]
    step = breakdown.step or 0
    return attempt.reached[step] if attempt.level > step else None


def by_actor(rows: Iterable[tuple[Any, FunnelEvent]]) -> Iterator[tuple[Any, list[FunnelEvent]]]:
    """Consecutive rows of one actor, each actor's events in reading order."""
    actor: Any = object()
    batch: list[FunnelEvent] = []
    for key, event in rows:
        if key != actor:
            if batch:
                yield actor, sorted(batch, key=lambda e: e.reading_order)
            actor, batch = key, []
        batch.append(event)
    if batch:
        yield actor, sorted(batch, key=lambda e: e.reading_order)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(found: Any, wanted: Any) -> bool:
    if isinstance(wanted, bool) or isinstance(found, bool):
        return isinstance(wanted, bool) and isinstance(found, bool) and found == wanted
    if _is_number(wanted):
        return _is_number(found) and float(found) == float(wanted)
    return isinstance(found, str) and found == wanted


def property_matches(properties: dict[str, Any] | None, condition: PropertyFilter) -> bool:
    """Whether an event's properties pass a step's or an exclusion's filter. Values compare
    within their JSON type (the text "3" is not the number 3, true is not 1); `contains`
    looks into text, case-insensitively; gt/gte/lt/lte compare numbers; a missing key is not
    equal to anything."""
    properties = properties or {}
    present = condition.key in properties
    found: Any = properties.get(condition.key)
    match condition.operator:
        case "is_set":
            return present
        case "is_not_set":
            return not present
        case "eq":
            return present and _equal(found, condition.value)
        case "neq":
            return not (present and _equal(found, condition.value))
        case "contains":
            return isinstance(found, str) and str(condition.value).lower() in found.lower()
    if not _is_number(found):
        return False
    wanted = float(condition.value)
    return {
        "gt": float(found) > wanted,
        "gte": float(found) >= wanted,
        "lt": float(found) < wanted,
        "lte": float(found) <= wanted,
    }[condition.operator]


def breakdown_label(value: Any) -> str:
    """How a breakdown shows a property value: text as is, "(none)" when missing or null,
    true/false, numbers without a trailing ".0", objects and lists as compact JSON."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | str):
        return str(value)
    return json.dumps(value, separators=(",", ":"))
