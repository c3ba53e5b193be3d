"""Celery tasks: thin, id in, one service call. Retries are rows the sweep picks up (no long
ETAs, which a Redis broker would redeliver after its visibility timeout)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from engagement import services


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver(delivery_id: int) -> None:
    """Idempotent by delivery id: a second run finds the delivery sent and does nothing."""
    services.delivery_send(delivery_id=delivery_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def fire_rule(rule_id: int, end_user_id: int, occurrence: str, facts: dict[str, Any]) -> None:
    """Idempotent: a rule fires at most once per end user and occurrence."""
    services.rule_fire_by_id(
        rule_id=rule_id, end_user_id=end_user_id, occurrence=occurrence, facts=facts
    )


@shared_task(acks_late=True, ignore_result=True)
def sweep() -> None:
    services.rules_sweep()
