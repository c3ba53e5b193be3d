"""Each workspace's rules, indexed by what triggers them and kept in this process, so that the
receivers of onboarding's signals (which run on the socket's write path) learn without a query
whether any rule can match.

The index holds only ids and the plain values matching needs, never a Rule, Message, Segment
or webhook endpoint: editing those cannot make it stale, and firing loads the full rule
(`services.rule_fire_by_id`). A rule saved, deleted, paused or resumed in this process clears
its workspace's index at once (and again after the commit); other processes rebuild theirs
after INDEX_TTL seconds, so they see the change within that time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from django.db import transaction

from engagement.models import Rule, Trigger, properties_match

INDEX_TTL = 5.0


@dataclass(frozen=True)
class IndexedRule:
    """What the write path needs to match an event or trait rule without loading it."""

    id: int
    event_name: str = ""
    event_properties: dict[str, Any] = field(default_factory=dict)
    once_per_user: bool = True
    trait: str = ""
    threshold: float | None = None

    def event_matches(self, name: str, properties: dict[str, Any]) -> bool:
        return name == self.event_name and properties_match(self.event_properties, properties)


@dataclass(frozen=True)
class RuleIndex:
    """A workspace's live (unpaused) rules by trigger and target, each list in name order."""

    # (Trigger.JOURNEY_STARTED or Trigger.PQL_REACHED, journey id) → rule ids
    journey_rules: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    milestone_rules: dict[int, list[int]] = field(default_factory=dict)
    event_rules: dict[str, list[IndexedRule]] = field(default_factory=dict)
    trait_rules: list[IndexedRule] = field(default_factory=list)
    # Paused rules count for these two: their in-app messages still wait for the next visit.
    sends_in_app: bool = False
    last_rule_change: datetime | None = None

    def in_app_possible_since(self, since: datetime) -> bool:
        """Could the workspace hold an in-app delivery created at `since` or later? Only if one
        of its rules (paused or not) sends in-app, or was saved since then: its in-app channel
        may have been switched off after it fired. A deleted rule takes its deliveries along."""
        return self.sends_in_app or (
            self.last_rule_change is not None and self.last_rule_change >= since
        )


_lock = threading.Lock()
_indexes: dict[int, tuple[float, RuleIndex]] = {}
# Bumped by every forget, so that a read which began before a change is not kept after it.
_generations: dict[int, int] = {}


def for_workspace(workspace_id: int) -> RuleIndex:
    """The workspace's rule index: one query when this process has none younger than
    INDEX_TTL, else none."""
    cached = _indexes.get(workspace_id)
    if cached is not None and time.monotonic() - cached[0] < INDEX_TTL:
        return cached[1]
    generation = _generations.get(workspace_id, 0)
    read_at = time.monotonic()
    index = _read(workspace_id)
    with _lock:
        if _generations.get(workspace_id, 0) == generation:
            _indexes[workspace_id] = (read_at, index)
    return index


def forget(*, workspace_id: int) -> None:
    """Drop the workspace's index now and again when the current transaction commits: a read
    in between would still see the rules as they were before the change."""
    _drop(workspace_id)
    transaction.on_commit(partial(_drop, workspace_id))


def forget_all() -> None:
    """Drop every workspace's index (the tests start each case with none)."""
    with _lock:
        for workspace_id in set(_indexes) | set(_generations):
            _generations[workspace_id] = _generations.get(workspace_id, 0) + 1
        _indexes.clear()


def _drop(workspace_id: int) -> None:
    with _lock:
        _generations[workspace_id] = _generations.get(workspace_id, 0) + 1
        _indexes.pop(workspace_id, None)


def _read(workspace_id: int) -> RuleIndex:
    journey_rules: dict[tuple[str, int], list[int]] = {}
    milestone_rules: dict[int, list[int]] = {}
    event_rules: dict[str, list[IndexedRule]] = {}
    trait_rules: list[IndexedRule] = []
    sends_in_app = False
    last_rule_change: datetime | None = None
    rows = (
        Rule.objects.filter(workspace_id=workspace_id)
        .order_by("name", "id")
        .values(
            "id", "trigger", "is_paused", "journey_id", "milestone_id", "event_name",
            "event_properties", "once_per_user", "trait", "threshold", "send_in_app",
            "updated_at",
        )
    )  # fmt: skip
    for row in rows:
        sends_in_app = sends_in_app or row["send_in_app"]
        if last_rule_change is None or row["updated_at"] > last_rule_change:
            last_rule_change = row["updated_at"]
        if row["is_paused"]:
            continue
        trigger, rule_id = row["trigger"], row["id"]
        if trigger in (Trigger.JOURNEY_STARTED, Trigger.PQL_REACHED) and row["journey_id"]:
            journey_rules.setdefault((trigger, row["journey_id"]), []).append(rule_id)
        elif trigger == Trigger.MILESTONE_COMPLETED and row["milestone_id"]:
            milestone_rules.setdefault(row["milestone_id"], []).append(rule_id)
        elif trigger == Trigger.EVENT:
            properties = row["event_properties"]
            event_rules.setdefault(row["event_name"], []).append(
                IndexedRule(
                    rule_id,
                    event_name=row["event_name"],
                    event_properties=properties if isinstance(properties, dict) else {},
                    once_per_user=row["once_per_user"],
                )
            )
        elif trigger == Trigger.TRAIT_THRESHOLD:
            trait_rules.append(IndexedRule(rule_id, trait=row["trait"], threshold=row["threshold"]))
    return RuleIndex(
        journey_rules=journey_rules,
        milestone_rules=milestone_rules,
        event_rules=event_rules,
        trait_rules=trait_rules,
        sends_in_app=sends_in_app,
        last_rule_change=last_rule_change,
    )
