"""Celery tasks: thin, id in, one service call. Retries are rows the sweep picks up (no long
ETAs, which a Redis broker would redeliver after its visibility timeout)."""

from __future__ import annotations

from celery import shared_task

from engagement import services


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver(delivery_id: int) -> None:
    """Idempotent by delivery id: a second run finds the delivery sent and does nothing."""
    services.delivery_send(delivery_id=delivery_id)


@shared_task(acks_late=True, ignore_result=True)
def sweep() -> None:
    services.rules_sweep()
