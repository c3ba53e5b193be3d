"""Compatibility name for `milepost.asgi` (see config/__init__.py)."""

from __future__ import annotations

from milepost.asgi import application

__all__ = ["application"]
