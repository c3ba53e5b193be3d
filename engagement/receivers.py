"""Hears onboarding's signals (sent after commit, carrying ids) and calls one service each."""

from __future__ import annotations

from typing import Any

from engagement import rule_index, services
from engagement.models import Rule, Trigger


def on_events_recorded(
    *,
    workspace_id: int,
    end_user_ids: list[int],
    event_ids: list[int],
    event_names: list[str] | None = None,
    **_: Any,
) -> None:
    services.rules_fire_for_events(
        workspace_id=workspace_id,
        end_user_ids=end_user_ids,
        event_ids=event_ids,
        event_names=event_names,
    )


def on_milestone_completed(
    *, workspace_id: int, end_user_id: int, milestone_id: int, **_: Any
) -> None:
    services.rules_fire_for_milestone(
        workspace_id=workspace_id, end_user_id=end_user_id, milestone_id=milestone_id
    )


def on_journey_started(*, workspace_id: int, end_user_id: int, journey_id: int, **_: Any) -> None:
    services.rules_fire_for_journey(
        workspace_id=workspace_id,
        end_user_id=end_user_id,
        journey_id=journey_id,
        trigger=Trigger.JOURNEY_STARTED,
    )


def on_pql_reached(*, workspace_id: int, end_user_id: int, journey_id: int, **_: Any) -> None:
    services.rules_fire_for_journey(
        workspace_id=workspace_id,
        end_user_id=end_user_id,
        journey_id=journey_id,
        trigger=Trigger.PQL_REACHED,
    )


def on_end_user_connected(*, workspace_id: int, end_user_id: int, **_: Any) -> None:
    services.end_user_connected(workspace_id=workspace_id, end_user_id=end_user_id)


def on_end_user_updated(
    *, workspace_id: int, end_user_id: int, traits_changed: list[str], **_: Any
) -> None:
    services.rules_fire_for_traits(
        workspace_id=workspace_id, end_user_id=end_user_id, traits_changed=traits_changed
    )


def on_rule_changed(*, instance: Rule, **_: Any) -> None:
    rule_index.forget(workspace_id=instance.workspace_id)
