"""Per end user state of each piece of content (seen, step, completed, dismissed), updated
from the widget's `$`-events: one truth per person, which every open tab of theirs follows.

Recording calls `content_states_record` inside its transaction with the newly stored events,
applied in timestamp order. A walkthrough's transitions (`$walkthrough_started`,
`$step_completed`, `$step_skipped`, `$step_back`, `$walkthrough_completed`,
`$walkthrough_dismissed`) carry the `attempt` they belong to (the n-th start of that
walkthrough by this person, `times_seen`) and the `step` they came from, and apply only to
that state:
- a start opens attempt n + 1 and must claim exactly that number (two tabs starting at once
  open one attempt; a tab that has not heard of attempt n cannot start it again);
- advance and back need the attempt in progress at that step; complete needs it at the last
  step or just past it; dismiss needs the attempt in progress;
- a finished (completed or dismissed) attempt never changes again, so a stale tab's Next
  cannot bring back a tour that was dismissed elsewhere.
Every such transition, applied or refused, is answered with a `walkthrough` push of the state
that now holds, numbered in this transaction (so pushes number in the order the states were
written) and sent to every open tab of the person after commit; a tab whose step was refused
follows it.

Events without an `attempt` (older SDKs, the server API) apply as before: an event older than
the state's last change is ignored, and a finished walkthrough changes only by a new start.
Events whose properties do not name the content (or name a step that is not a whole number)
are stored as events but change no state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.db.models import Q

from onboarding import realtime
from onboarding.models import ContentState, PublishedVersion

if TYPE_CHECKING:
    from onboarding.recording import RecordedEvent

Kind = PublishedVersion.Kind
Status = ContentState.Status

# event name -> (kind, property naming the content's key, status it leads to)
TRANSITIONS: dict[str, tuple[str, str, str]] = {
    "$walkthrough_started": (Kind.WALKTHROUGH, "walkthrough", Status.IN_PROGRESS),
    "$step_viewed": (Kind.WALKTHROUGH, "walkthrough", Status.IN_PROGRESS),
    "$step_completed": (Kind.WALKTHROUGH, "walkthrough", Status.IN_PROGRESS),
    "$step_back": (Kind.WALKTHROUGH, "walkthrough", Status.IN_PROGRESS),
    # The step's target was missing and the step says to skip it.
    "$step_skipped": (Kind.WALKTHROUGH, "walkthrough", Status.IN_PROGRESS),
    "$walkthrough_completed": (Kind.WALKTHROUGH, "walkthrough", Status.COMPLETED),
    "$walkthrough_dismissed": (Kind.WALKTHROUGH, "walkthrough", Status.DISMISSED),
    "$tooltip_viewed": (Kind.TOOLTIP, "tooltip", Status.SEEN),
    "$tooltip_dismissed": (Kind.TOOLTIP, "tooltip", Status.DISMISSED),
    "$survey_shown": (Kind.SURVEY, "survey", Status.SEEN),
    "$survey_completed": (Kind.SURVEY, "survey", Status.COMPLETED),
    "$survey_dismissed": (Kind.SURVEY, "survey", Status.DISMISSED),
    # Banners and empty-state guides (surfaces.js): capped like a tooltip.
    "$banner_viewed": (Kind.BANNER, "banner", Status.SEEN),
    "$banner_dismissed": (Kind.BANNER, "banner", Status.DISMISSED),
    "$guide_viewed": (Kind.GUIDE, "guide", Status.SEEN),
    "$guide_dismissed": (Kind.GUIDE, "guide", Status.DISMISSED),
}
KEY_MAX_LENGTH = 80
SESSION_MAX_LENGTH = 64
FINISHED = {Status.COMPLETED, Status.DISMISSED}
STARTED = "$walkthrough_started"


def _whole(properties: dict[str, Any], name: str) -> int | None:
    value = properties.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _step(properties: dict[str, Any]) -> int | None:
    return _whole(properties, "step")


def walkthrough_state(state: ContentState | None) -> dict[str, Any] | None:
    """A walkthrough's state as the widget sees it (in `welcome`, `walkthrough` pushes and the
    progress snapshot)."""
    if state is None:
        return None
    return {"status": state.status, "step": state.step_index, "attempt": state.times_seen}


def _allows(state: ContentState, name: str, attempt: int, step: int | None) -> bool:
    """Whether a transition of `attempt` that came from `step` applies to `state`."""
    if name == STARTED:
        return attempt == state.times_seen + 1
    if state.status != Status.IN_PROGRESS or attempt != state.times_seen:
        return False
    match name:
        case "$step_completed" | "$step_skipped":
            return step == state.step_index
        case "$step_back":
            return step == state.step_index and step > 0
        case "$walkthrough_completed":
            return step is not None and state.step_index in (step, step + 1)
    return name == "$walkthrough_dismissed"


def _apply(state: ContentState, event: RecordedEvent, status: str) -> None:
    properties = event.properties
    step = _step(properties)
    session = properties.get("session")
    match event.name:
        case "$walkthrough_started":
            state.step_index = 0
            state.times_seen += 1
        case "$step_viewed" if step is not None:
            state.step_index = step
        case "$step_completed" | "$step_skipped" if step is not None:
            state.step_index = step + 1
        case "$step_back" if step is not None:
            state.step_index = step - 1
        case "$walkthrough_dismissed" if step is not None:
            state.step_index = step
        case "$tooltip_viewed" | "$survey_shown" | "$banner_viewed" | "$guide_viewed":
            state.times_seen += 1
    # A tooltip or survey seen again after it was dismissed (or answered) stays so.
    if not (status == Status.SEEN and state.status in FINISHED):
        state.status = status
    if isinstance(session, str) and session:
        state.last_session = session[:SESSION_MAX_LENGTH]
    state.updated_at = event.timestamp


def content_states_record(*, events: Sequence[RecordedEvent]) -> set[int]:
    """Apply the events' transitions; returns the primary keys of the walkthrough transitions
    that were refused (a stale tab's Done is stored as an event, but completes nothing)."""
    relevant = []
    for event in events:
        transition = TRANSITIONS.get(event.name)
        properties = event.properties if isinstance(event.properties, dict) else {}
        key = properties.get(transition[1]) if transition else None
        if transition is None or not isinstance(key, str) or not 0 < len(key) <= KEY_MAX_LENGTH:
            continue
        attempt = _whole(properties, "attempt") if transition[0] == Kind.WALKTHROUGH else None
        if event.name in {"$step_viewed", "$step_completed", "$step_skipped", "$step_back"} and (
            _step(properties) is None or (event.name == "$step_viewed" and attempt is not None)
        ):
            continue  # a view of an attempt is a record, not a transition
        relevant.append((event, transition[0], key, transition[2], attempt))
    if not relevant:
        return set()
    lookup = Q()
    for event, kind, key, *_ in relevant:
        lookup |= Q(end_user_id=event.end_user_id, kind=kind, key=key)
    # Lock the rows this batch changes, so two batches of one user apply one after the other.
    states = {
        (state.end_user_id, state.kind, state.key): state
        for state in ContentState.objects.select_for_update().filter(lookup)
    }
    changed: dict[tuple[int, str, str], ContentState] = {}
    answers: list[tuple[int, dict[str, Any]]] = []
    refused: set[int] = set()
    for event, kind, key, status, attempt in sorted(relevant, key=lambda item: item[0].timestamp):
        identity = (event.end_user_id, kind, key)
        state = states.get(identity)
        if state is None:
            state = ContentState(end_user_id=event.end_user_id, kind=kind, key=key)
            state.updated_at = event.timestamp
            states[identity] = state
        if attempt is not None:
            applies = _allows(state, event.name, attempt, _step(event.properties))
            if applies:
                _apply(state, event, status)
                state.updated_at = max(state.updated_at, event.timestamp)
                changed[identity] = state
            elif event.pk is not None:
                refused.add(event.pk)
            shown = state if state.pk is not None or identity in changed else None
            answers.append(
                (
                    event.end_user_id,
                    {
                        "type": "walkthrough",
                        "walkthrough": key,
                        "state": walkthrough_state(shown),
                        "event": str(event.client_id),
                    },
                )
            )
            continue
        if state.pk is not None and event.timestamp < state.updated_at:
            continue
        if kind == Kind.WALKTHROUGH and state.status in FINISHED and event.name != STARTED:
            continue  # a finished tour never resumes
        _apply(state, event, status)
        changed[identity] = state
    fields = ["status", "step_index", "times_seen", "last_session", "updated_at"]
    ContentState.objects.bulk_update([s for s in changed.values() if s.pk is not None], fields)
    # A row another transaction created meanwhile is updated rather than duplicated.
    ContentState.objects.bulk_create(
        [s for s in changed.values() if s.pk is None],
        update_conflicts=True,
        unique_fields=["end_user", "kind", "key"],
        update_fields=fields,
    )
    if answers:
        realtime.push_to_end_users_after_commit(answers)
    return refused
