"""Per end user state of each piece of content (seen, step, completed, dismissed), updated
from the widget's `$`-events so a walkthrough resumes from the server's state.

Owned by the widget work (issue 4); recording calls `content_states_record` inside its
transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from onboarding.models import Event


def content_states_record(*, events: Sequence[Event]) -> None:
    return None
