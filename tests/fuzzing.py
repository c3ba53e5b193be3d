"""The budget of the fuzz tests: a few seconds of derandomized cases in the suite (CI replays
the same ones), or a longer randomised hunt with MILEPOST_FUZZ_EXAMPLES=<cases>."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings


def bounded(default_examples: int) -> settings:
    examples = int(os.environ.get("MILEPOST_FUZZ_EXAMPLES", default_examples))
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=examples == default_examples,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
