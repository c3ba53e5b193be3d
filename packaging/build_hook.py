"""Refuse to build a Milepost wheel without the browser SDK: `static/milepost/` is build output
(not committed), and a wheel without it would serve a 404 where every host page loads
milepost.js. Run `make widget` first (`make wheel` does)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class SdkBuiltHook(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version == "editable":
            return
        bundle = Path(self.root) / "static" / "milepost" / "milepost.js"
        if not bundle.is_file():
            raise RuntimeError(f"{bundle} is missing: build the SDK first (make widget).")
