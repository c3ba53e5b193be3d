"""Who sees what: the published content one end user may see, for `welcome` and `content`.

Owned by the widget work (issue 4); this first version sends nothing until it lands.
"""

from __future__ import annotations

from typing import Any

from onboarding.models import EndUser


def content_for(*, end_user: EndUser, session: str | None = None) -> dict[str, Any]:
    return {"walkthroughs": [], "tooltips": [], "progress_bars": []}
