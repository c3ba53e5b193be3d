"""Compatibility name for `milepost.celery` (see config/__init__.py); `celery -A config` finds
the app here."""

from __future__ import annotations

from milepost.celery import app

__all__ = ["app"]
