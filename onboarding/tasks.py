"""Celery tasks of the runtime: thin, one service call each."""

from __future__ import annotations

from celery import shared_task

from onboarding import retention


@shared_task(acks_late=True, ignore_result=True)
def purge_expired_events() -> None:
    """Idempotent: a second run finds nothing older than each workspace's retention."""
    retention.events_purge_expired()
