"""Who sees what: the published content one end user may see, for `welcome` and `content`.

The server decides everything it can know: the segment (traits, milestone state, lifecycle
stage, events), the schedule (starts_at / ends_at), frequency (from ContentState) and priority
order. The widget decides what only the browser knows: whether the page's URL matches and
whether the target element is there.

Frequency, for a walkthrough (its per-user state comes from `$walkthrough_*` events):
- a walkthrough is sent with this user's `state` (status, step, attempt), so a tour in progress
  resumes where it stopped, across pages and reloads, whatever its frequency, and a tab knows
  which attempt its next start must claim (onboarding/content_state.py);
- once: starts by itself only if this user never started it;
- until_completed: starts by itself until completed; dismissed, it stays away for the rest of
  that session and comes back in the next one;
- every_session: starts by itself once in each session, completed or not.
A walkthrough that may not start by itself is still sent (with `auto_start: false`) so a
checklist item or `Milepost.start(key)` can start it on request.

The element-present trigger (`when_present`, models.ElementPresentTrigger) costs the core
bundle nothing: a walkthrough that would start by itself and has one is sent with
`auto_start: false` plus an item in `surfaces.present`, and the surfaces bundle starts it once
the element is on the page; a tooltip with one is sent only inside its `surfaces.present` item,
and the surfaces bundle hands it to the core while the element is there. Surveys, banners and
guides carry `when_present` in their own items.

For a tooltip: once = until first viewed; until_completed = until dismissed ("Got it");
every_session = until dismissed in the current session. A progress bar whose journey this user
completed is not sent when it hides when complete.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from onboarding import experiments as experiments_module
from onboarding import translations
from onboarding.content_state import walkthrough_state
from onboarding.lookups import values_rows
from onboarding.models import (
    ContentState,
    EndUser,
    Experiment,
    JourneyProgress,
    PublishedVersion,
    Segment,
    Walkthrough,
)
from onboarding.queries import live_content
from onboarding.segments import facts_for_many, segment_matches
from onboarding.surfaces import (
    SURFACES,
    present_trigger,
    resource_centers_usable,
    tooltip_shows,
)

Kind = PublishedVersion.Kind
Status = ContentState.Status
Frequency = Walkthrough.Frequency

STEP_FIELDS = (
    "id",
    "page_url_pattern",
    "selector",
    "title",
    "body_html",
    "placement",
    "advance_on",
    "advance_event",
    "spotlight",
    "wait_timeout_ms",
    "on_target_missing",
)
TOOLTIP_FIELDS = ("key", "page_url_pattern", "selector", "body_html", "trigger", "placement")
PROGRESS_BAR_FIELDS = ("key", "name", "title", "journey", "style", "position", "hide_when_complete")
ITEM_FIELDS = ("milestone", "label", "action", "walkthrough", "url")


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return parse_datetime(value)


def is_scheduled(snapshot: dict[str, Any], now: datetime) -> bool:
    starts_at, ends_at = _moment(snapshot.get("starts_at")), _moment(snapshot.get("ends_at"))
    return (starts_at is None or starts_at <= now) and (ends_at is None or now < ends_at)


def walkthrough_may_auto_start(
    frequency: str, state: ContentState | None, session: str | None
) -> bool:
    if state is None:
        return True
    new_session = not session or state.last_session != session
    match frequency:
        case Frequency.ONCE:
            return False
        case Frequency.EVERY_SESSION:
            return new_session
    # until_completed
    return state.status != Status.COMPLETED and new_session


def _ordered(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda item: (-item["priority"], item["key"]))


# The languages of each workspace's live content, kept with the list of versions they were read
# from (queries.live_content hands out the same list until the next publish).
_OFFERED: dict[int, tuple[Sequence[PublishedVersion], set[str]]] = {}
_STATE_FIELDS = [f.attname for f in ContentState._meta.concrete_fields]


def _offered(workspace_id: int, published: Sequence[PublishedVersion]) -> set[str]:
    cached = _OFFERED.get(workspace_id)
    if cached is not None and cached[0] is published:
        return cached[1]
    offered = translations.offered_locales(published)
    _OFFERED[workspace_id] = (published, offered)
    return offered


def locale_for(
    *, end_user: EndUser, published: Sequence[PublishedVersion] | None = None
) -> translations.Resolved:
    """The language this person gets, from the language they asked for (EndUser.locale) and
    the languages the workspace's live content is translated into."""
    if published is None:
        _, published = live_content(workspace_id=end_user.workspace_id)
    return translations.resolve(
        requested=end_user.locale,
        offered=_offered(end_user.workspace_id, published),
        default=end_user.workspace.default_locale,
    )


def content_for(
    *, end_user: EndUser, session: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Everything this end user may see now, highest priority first. `session` is the
    widget's session id (from `hello`); `now` is for tests. Read with the published content
    rechecked (this answers publishes and single requests, not the hello path)."""
    return content_for_many(end_users=[end_user], sessions=[session], now=now, recheck=True)[0]


def content_for_many(
    *,
    end_users: Sequence[EndUser],
    sessions: Sequence[str | None],
    now: datetime | None = None,
    recheck: bool = False,
) -> list[dict[str, Any]]:
    """`content_for` for many people (the hellos of one group commit): the published content
    comes from the process's copy (queries.live_content), and the people's own state with one
    query per kind of fact for all of them."""
    return targeted_many(end_users=end_users, sessions=sessions, now=now, recheck=recheck)[0]


def targeted_many(
    *,
    end_users: Sequence[EndUser],
    sessions: Sequence[str | None],
    now: datetime | None = None,
    recheck: bool = False,
) -> tuple[list[dict[str, Any]], list[experiments_module.Exposure]]:
    """`content_for_many` and the experiment exposures its answers make possible."""
    now = now or timezone.now()
    ids = {user.pk for user in end_users}
    versions: dict[int, list[PublishedVersion]] = {}
    offered: dict[int, set[str]] = {}
    segments: dict[int, Segment] = {}
    experiments: dict[int, list[Experiment]] = {}
    for workspace_id in {user.workspace_id for user in end_users}:
        _, published = live_content(workspace_id=workspace_id, recheck=recheck)
        offered[workspace_id] = _offered(workspace_id, published)
        versions[workspace_id] = [
            version
            for version in published
            if version.kind != Kind.JOURNEY and is_scheduled(version.snapshot, now)
        ]
        segment_ids = {v.snapshot.get("segment_id") for v in versions[workspace_id]} - {None}
        # Experiments: their audiences are segments too.
        experiments[workspace_id] = experiments_module.workspace_experiments(workspace_id)
        segment_ids |= {e.segment_id for e in experiments[workspace_id]} - {None}
        if segment_ids:
            segments.update(
                (segment.pk, segment)
                for segment in Segment.objects.filter(
                    workspace_id=workspace_id, pk__in=segment_ids
                ).prefetch_related("conditions")
            )
    facts = facts_for_many(end_users=end_users, segments=segments.values())
    states: dict[int, dict[tuple[str, str], ContentState]] = defaultdict(dict)
    for values in values_rows(
        "targeting: content states",
        lambda ids: ContentState.objects.filter(end_user_id__any=ids).values_list(*_STATE_FIELDS),
        ids,
    ):
        state = ContentState.from_db(connection.alias, _STATE_FIELDS, values)
        states[state.end_user_id][(state.kind, state.key)] = state
    finished_journeys: dict[int, set[int]] = defaultdict(set)
    for end_user_id, journey_id in values_rows(
        "targeting: finished journeys",
        lambda ids: JourneyProgress.objects.filter(
            end_user_id__any=ids, completed_at__isnull=False
        ).values_list("end_user_id", "journey_id"),
        ids,
    ):
        finished_journeys[end_user_id].add(journey_id)
    answers, exposures = [], []
    for user, session in zip(end_users, sessions, strict=True):
        matches = {
            pk: segment_matches(
                segment=segment,
                end_user=user,
                completed_milestone_ids=facts[user.pk][0],
                performed_event_names=facts[user.pk][1],
            )
            for pk, segment in segments.items()
            if segment.workspace_id == user.workspace_id
        }
        content = _content(
            versions=versions[user.workspace_id],
            matches=matches,
            states=states[user.pk],
            finished_journeys=finished_journeys[user.pk],
            session=session,
            chain=translations.resolve(
                requested=user.locale,
                offered=offered[user.workspace_id],
                default=user.workspace.default_locale,
            ).chain,
        )
        if experiments[user.workspace_id]:
            content, exposed = experiments_module.content_apply(
                content=content,
                experiments=experiments[user.workspace_id],
                end_user=user,
                matches=matches,
                now=now,
            )
            exposures.extend(exposed)
        answers.append(_element_present(content))
    return answers, exposures


TRIGGER = "__trigger"  # an item's snapshot while its element-present trigger is pending


def _element_present(content: dict[str, Any]) -> dict[str, Any]:
    """The element-present triggers of the core's kinds, after experiments chose a variant: a
    walkthrough with one is sent with `auto_start: false`, a tooltip only inside its item, and
    each trigger as an item of `surfaces.present` (widget/src/surfaces/present.ts)."""
    present = []
    for walkthrough in content["walkthroughs"]:
        snapshot = walkthrough.pop(TRIGGER, None)
        if snapshot is not None:
            # The surfaces bundle starts it once the element is there.
            walkthrough["auto_start"] = False
            first_page = walkthrough["steps"][0]["page_url_pattern"]
            base = {f: walkthrough[f] for f in ("key", "version", "priority")}
            present.append(present_trigger("walkthrough", base, snapshot, first_page))
    tooltips = []
    for tooltip in content["tooltips"]:
        snapshot = tooltip.pop(TRIGGER, None)
        if snapshot is None:
            tooltips.append(tooltip)
            continue
        # Handed to the core by the surfaces bundle while the element is there.
        base = {f: tooltip[f] for f in ("key", "version", "priority")}
        item = present_trigger("tooltip", base, snapshot, tooltip["page_url_pattern"])
        present.append(item | {"tooltip": tooltip})
    if present:
        content["tooltips"] = tooltips
        content.setdefault("surfaces", {})["present"] = _ordered(present)
    return content


def _content(
    *,
    versions: list[PublishedVersion],
    matches: dict[int, bool],
    states: dict[tuple[str, str], ContentState],
    finished_journeys: set[int],
    session: str | None,
    chain: tuple[str, ...] = (),
) -> dict[str, Any]:
    walkthroughs, tooltips, progress_bars = [], [], []
    surfaces: dict[str, list[dict[str, Any]]] = defaultdict(list)
    # The progress bars this user may see, with their titles (resource center checklists).
    checklists: dict[str, str] = {}
    for version in versions:
        snapshot = translations.localised_version(version, chain)
        segment_id = snapshot.get("segment_id")
        # A segment deleted since publishing cannot be evaluated: show to no one.
        if segment_id is not None and not matches.get(segment_id, False):
            continue
        state = states.get((version.kind, version.key))
        frequency = snapshot.get("frequency", Frequency.UNTIL_COMPLETED)
        base = {"key": version.key, "version": version.version, "priority": snapshot["priority"]}
        if version.kind == Kind.WALKTHROUGH:
            if not snapshot["steps"]:
                continue
            steps = [{f: step.get(f) for f in STEP_FIELDS} for step in snapshot["steps"]]
            auto_start = bool(snapshot["auto_start"]) and walkthrough_may_auto_start(
                frequency, state, session
            )
            walkthroughs.append(
                {
                    **base,
                    "name": snapshot["name"],
                    "auto_start": auto_start,
                    "steps": steps,
                    "state": walkthrough_state(state),
                    # Taken out by _element_present once experiments have chosen.
                    **({TRIGGER: snapshot} if auto_start and snapshot.get("when_present") else {}),
                }
            )
        elif version.kind == Kind.TOOLTIP:
            if tooltip_shows(frequency, state, session):
                tooltip = {**base, **{f: snapshot[f] for f in TOOLTIP_FIELDS}}
                if snapshot.get("when_present"):
                    tooltip[TRIGGER] = snapshot
                tooltips.append(tooltip)
        elif version.kind == Kind.PROGRESS_BAR:
            checklists[version.key] = snapshot["title"] or snapshot["name"]
            if snapshot["hide_when_complete"] and snapshot["journey_id"] in finished_journeys:
                continue
            progress_bars.append(
                {
                    **base,
                    **{f: snapshot[f] for f in PROGRESS_BAR_FIELDS},
                    "items": [{f: item[f] for f in ITEM_FIELDS} for item in snapshot["items"]],
                }
            )
        elif version.kind in SURFACES:
            payload_key, build = SURFACES[version.kind]
            surface = build(base, snapshot, state, session)
            if surface is not None:
                surfaces[payload_key].append(surface)
    # --- resource center (branch `rc`): only the tours and checklists this user can use
    if "resource_centers" in surfaces:
        tours = {walkthrough["key"]: walkthrough["name"] for walkthrough in walkthroughs}
        surfaces["resource_centers"] = resource_centers_usable(
            surfaces["resource_centers"], tours=tours, checklists=checklists
        )
        if not surfaces["resource_centers"]:
            del surfaces["resource_centers"]
    content: dict[str, Any] = {
        "walkthroughs": _ordered(walkthroughs),
        "tooltips": _ordered(tooltips),
        "progress_bars": _ordered(progress_bars),
    }
    # Only when there is something: the SDK loads its surfaces bundle for it.
    if surfaces:
        content["surfaces"] = {key: _ordered(items) for key, items in surfaces.items()}
    return content
