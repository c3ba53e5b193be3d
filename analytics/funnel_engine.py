"""The ad-hoc event funnel's matching, done in one streaming pass over only the events that
match a step or an exclusion (or, for strict order, every event of the people who entered).

Semantics follow PostHog's funnels:
- ordered: steps in order, other events may happen in between;
- strict: steps in order with no other event of that actor in between;
- unordered ("any order"): every step within the window, in any order; the k-th step is
  reached when k distinct steps have been done;
- the conversion window runs from the entry (step 1) and is inclusive: a step exactly
  `window` after the entry counts;
- an event counts for one step at most; events with the same timestamp count in whichever
  order completes the most steps;
- every occurrence of step 1 in the date range starts an attempt; an actor counts once, at the
  furthest step of their best attempt (the earliest, among equals);
- an attempt in which an exclusion event happens between reaching its from_step and its to_step
  (inclusive; up to the end of the window when to_step was never reached) is dropped; an actor
  whose every attempt is dropped is left out of the funnel and counted as excluded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class FunnelEvent:
    ms: int
    id: int
    timestamp: datetime
    steps: frozenset[int]
    exclusions: frozenset[int]
    properties: dict[str, Any] | None
    end_user_id: int


@dataclass
class Attempt:
    entry: FunnelEvent
    reached: list[FunnelEvent] = field(default_factory=list)
    excluded: bool = False

    @property
    def level(self) -> int:
        return len(self.reached)


def _groups(events: list[FunnelEvent], start: int) -> Iterator[list[int]]:
    """Indices of events from `start` on, grouped by equal timestamps."""
    index = start
    while index < len(events):
        ms = events[index].ms
        group = []
        while index < len(events) and events[index].ms == ms:
            group.append(index)
            index += 1
        yield group


def _ordered_attempt(
    events: list[FunnelEvent], entry: int, group_start: int, n: int, window_ms: int, strict: bool
) -> Attempt:
    attempt = Attempt(entry=events[entry], reached=[events[entry]])
    used = {entry}
    limit = events[entry].ms + window_ms
    for group in _groups(events, group_start):
        if events[group[0]].ms > limit or attempt.level == n:
            break
        progress = True
        while progress and attempt.level < n:
            progress = False
            for index in group:
                if index not in used and attempt.level in events[index].steps:
                    used.add(index)
                    attempt.reached.append(events[index])
                    progress = True
        if strict and any(index not in used for index in group):
            # Another event of this actor came between two steps: the strict chain ends here.
            break
    return attempt


def _augment(
    step: int, candidates: dict[int, list[int]], owner: dict[int, int], seen: set[int]
) -> bool:
    for index in candidates[step]:
        if index in seen:
            continue
        seen.add(index)
        if index not in owner or _augment(owner[index], candidates, owner, seen):
            owner[index] = step
            return True
    return False


def _unordered_attempt(
    events: list[FunnelEvent], entry: int, group_start: int, n: int, window_ms: int
) -> Attempt:
    """Most distinct steps done by distinct events within the window (bipartite matching),
    and the event at which each count was first reached."""
    attempt = Attempt(entry=events[entry], reached=[events[entry]])
    limit = events[entry].ms + window_ms
    candidates: dict[int, list[int]] = {step: [] for step in range(n)}
    owner: dict[int, int] = {}
    matched: set[int] = set()
    # The entry event goes first so that it is always part of the attempt.
    order = [entry] + [
        index for group in _groups(events, group_start) for index in group if index != entry
    ]
    for index in order:
        event = events[index]
        if event.ms > limit:
            break
        if not event.steps:
            continue
        for step in event.steps:
            candidates[step].append(index)
        for step in sorted(set(range(n)) - matched):
            if _augment(step, candidates, owner, set()):
                matched.add(step)
                if index != entry:
                    attempt.reached.append(event)
                break
        if len(matched) == n:
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
        high = (
            attempt.reached[to_step].ms if attempt.level > to_step else attempt.entry.ms + window_ms
        )
        for event in events:
            if exclusion in event.exclusions and event.id not in used and low <= event.ms <= high:
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
    """The actor's furthest non-excluded attempt, and whether they had any attempt at all.
    `events` is the actor's events sorted by (timestamp, id)."""
    best: Attempt | None = None
    had_attempt = False
    group_start = 0
    for index, event in enumerate(events):
        if index == 0 or event.ms != events[index - 1].ms:
            group_start = index
        if not entry_from_ms <= event.ms < entry_to_ms:
            continue
        if order == "unordered":
            if not event.steps:
                continue
            attempt = _unordered_attempt(events, index, group_start, n, window_ms)
        else:
            if 0 not in event.steps:
                continue
            attempt = _ordered_attempt(
                events, index, group_start, n, window_ms, strict=order == "strict"
            )
        had_attempt = True
        if exclusions and _excluded(attempt, events, exclusions, window_ms):
            continue
        if best is None or attempt.level > best.level:
            best = attempt
            if best.level == n:
                break
    return best, had_attempt


def by_actor(rows: Iterable[tuple[Any, FunnelEvent]]) -> Iterator[tuple[Any, list[FunnelEvent]]]:
    """Consecutive rows of one actor, each actor's events sorted by (timestamp, id)."""
    actor: Any = object()
    batch: list[FunnelEvent] = []
    for key, event in rows:
        if key != actor:
            if batch:
                yield actor, sorted(batch, key=lambda e: (e.ms, e.id))
            actor, batch = key, []
        batch.append(event)
    if batch:
        yield actor, sorted(batch, key=lambda e: (e.ms, e.id))
