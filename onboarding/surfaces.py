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

from collections.abc import Callable, Mapping
from typing import Any

from onboarding.models import ContentState, PublishedVersion, Walkthrough

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


def present_trigger(
    kind: str, base: dict[str, Any], snapshot: dict[str, Any], page_url_pattern: str
) -> dict[str, Any]:
    """An item of `surfaces.present`: a walkthrough or tooltip (core kinds) that waits for an
    element (widget/src/surfaces/present.ts); `kind` says which."""
    return {
        **base,
        "kind": kind,
        "page_url_pattern": page_url_pattern,
        "when_present": snapshot["when_present"],
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

_SURVEY_ITEM_FIELDS = ("name", "questions", "thank_you", "display", "position", "selector")


def survey_shows(frequency: str, state: ContentState | None, session: str | None) -> bool:
    """once = until first shown; until_completed = until answered to the end or dismissed;
    every_session = until answered, or dismissed in the current session."""
    if state is None:
        return True
    status = ContentState.Status
    match frequency:
        case "once":
            return False
        case "every_session":
            return state.status != status.COMPLETED and not (
                state.status == status.DISMISSED and state.last_session == session
            )
    return state.status not in (status.COMPLETED, status.DISMISSED)


def _survey(
    base: dict[str, Any], snapshot: dict[str, Any], state: ContentState | None, session: str | None
) -> dict[str, Any] | None:
    if not survey_shows(snapshot["frequency"], state, session):
        return None
    return {**common(base, snapshot), **{field: snapshot[field] for field in _SURVEY_ITEM_FIELDS}}


SURVEYS_PAYLOAD_KEY = "surveys"
SURFACES["survey"] = (SURVEYS_PAYLOAD_KEY, _survey)

# --- resource center (branch `rc`) ------------------------------------------------------------
# A resource section is always available (no frequency cap): sent when its segment and schedule
# match, as one item of `surfaces.resource_centers`; the SDK shows one launcher listing every
# section. Only the items this user can use stay (resource_centers_usable, after the loop, as
# it needs the rest of the user's content): a tour whose walkthrough is sent to them (so
# `Milepost.start` can replay it), a checklist whose progress bar they may see (also once its
# journey is complete and the bar itself hides).

RESOURCE_SECTION_FIELDS = ("title", "launcher_label", "position")
RESOURCE_ITEM_FIELDS = ("key", "kind", "title", "url", "body_html", "published_on")


def resource_center(
    base: dict[str, Any], snapshot: dict[str, Any], state: ContentState | None, session: str | None
) -> dict[str, Any]:
    items = []
    for item in snapshot["items"]:
        entry = {f: item[f] for f in RESOURCE_ITEM_FIELDS}
        # A tour or checklist without a title of its own takes its walkthrough's or progress
        # bar's, in the person's language (resource_centers_usable).
        if item["kind"] == "tour":
            entry |= {"walkthrough": item["walkthrough"]}
        elif item["kind"] == "checklist":
            entry |= {"progress_bar": item["progress_bar"], "journey": item["journey"]}
        items.append(entry)
    return {
        **common(base, snapshot),
        **{f: snapshot[f] for f in RESOURCE_SECTION_FIELDS},
        "items": items,
    }


def resource_centers_usable(
    sections: list[dict[str, Any]], *, tours: Mapping[str, str], checklists: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The sections with only the tours and checklists this user can use (`tours` and
    `checklists`: each one's key and title in the person's language, for an item without a
    title); empty sections left out."""
    usable = []
    for section in sections:
        items = []
        for item in section["items"]:
            if item["kind"] == "tour" and item["walkthrough"] in tours:
                items.append({**item, "title": item["title"] or tours[item["walkthrough"]]})
            elif item["kind"] == "checklist" and item["progress_bar"] in checklists:
                items.append({**item, "title": item["title"] or checklists[item["progress_bar"]]})
            elif item["kind"] not in ("tour", "checklist"):
                items.append(item)
        if items:
            usable.append({**section, "items": items})
    return usable


SURFACES[PublishedVersion.Kind.RESOURCE_SECTION] = ("resource_centers", resource_center)
