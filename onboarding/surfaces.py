"""The server side of the surfaces contract (widget/src/surfaces/contract.ts): how published
content of the kinds the surfaces bundle renders (banners, guides, surveys, resource centers)
becomes `content.surfaces` in `welcome` and `content` pushes.

Each kind adds ONE entry to `SURFACES`, in its own block (three branches merge here):
`PublishedVersion.Kind` value -> (payload key, builder). The builder gets the common item
(`key`, `version`, `priority`) and the version's snapshot, the user's ContentState for it (or
None) and the widget's session id, and answers the item to send, or None to leave it out
(frequency caps). Segment and schedule are checked before (onboarding/targeting.py); the URL
rule and `when_present` are the browser's. Every item carries the common fields
`page_url_pattern`, `when_present` and `wait_timeout_ms` (see `common`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from onboarding.models import ContentState, Walkthrough

Builder = Callable[
    [dict[str, Any], dict[str, Any], ContentState | None, str | None], dict[str, Any] | None
]

COMMON_FIELDS = ("page_url_pattern", "when_present", "wait_timeout_ms")


def common(base: dict[str, Any], snapshot: dict[str, Any]) -> dict[str, Any]:
    """The fields every surfaces item has (contract.ts `Common`)."""
    return {
        **base,
        "page_url_pattern": snapshot.get("page_url_pattern", ""),
        "when_present": snapshot.get("when_present", ""),
        "wait_timeout_ms": snapshot.get("wait_timeout_ms", 5000),
    }


SURFACES: dict[str, tuple[str, Builder]] = {}

Frequency = Walkthrough.Frequency
Status = ContentState.Status


def tooltip_shows(frequency: str, state: ContentState | None, session: str | None) -> bool:
    """Tooltip frequency (onboarding/targeting.py), which banners and guides share too."""
    if state is None:
        return True
    match frequency:
        case Frequency.ONCE:
            return False
        case Frequency.EVERY_SESSION:
            return not (state.status == Status.DISMISSED and state.last_session == session)
    return state.status != Status.DISMISSED


# --- banners and guides (branch `surfaces`) ---------------------------------------------------

_SURFACE_ITEM_FIELDS = ("title", "body_html", "cta_label", "cta_url", "dismissible")


def _capped(frequency: str, state: ContentState | None, session: str | None) -> bool:
    """Banners and guides are capped like a tooltip."""
    return tooltip_shows(frequency, state, session)


def _banner(
    base: dict[str, Any], snapshot: dict[str, Any], state: ContentState | None, session: str | None
) -> dict[str, Any] | None:
    if not _capped(snapshot["frequency"], state, session):
        return None
    return {
        **common(base, snapshot),
        **{field: snapshot[field] for field in (*_SURFACE_ITEM_FIELDS, "position", "mode")},
    }


def _guide(
    base: dict[str, Any], snapshot: dict[str, Any], state: ContentState | None, session: str | None
) -> dict[str, Any] | None:
    if not _capped(snapshot["frequency"], state, session):
        return None
    return {
        **common(base, snapshot),
        **{field: snapshot[field] for field in (*_SURFACE_ITEM_FIELDS, "selector")},
    }


SURFACES["banner"] = ("banners", _banner)
SURFACES["guide"] = ("guides", _guide)

# --- surveys (branch `surveys`) ---------------------------------------------------------------

# --- resource center (branch `rc`) ------------------------------------------------------------
