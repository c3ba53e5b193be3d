"""Compatibility name for `milepost.settings` (see config/__init__.py)."""

from milepost.settings import *  # noqa: F403
