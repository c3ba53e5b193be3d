"""Per end user state of each piece of content (seen, step, completed, dismissed), updated
from the widget's `$`-events so a walkthrough resumes from the server's state.

Recording calls `content_states_record` inside its transaction with the newly stored events.
Events apply in timestamp order, and an event older than the state's last change is ignored,
so a batch that arrives late (queued offline) never moves a finished tour back to a step.
Events whose properties do not name the content (or name a step that is not a whole number)
are stored as events but change no state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.db.models import Q

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
    "$walkthrough_completed": (Kind.WALKTHROUGH, "walkthrough", Status.COMPLETED),
    "$walkthrough_dismissed": (Kind.WALKTHROUGH, "walkthrough", Status.DISMISSED),
    "$tooltip_viewed": (Kind.TOOLTIP, "tooltip", Status.SEEN),
    "$tooltip_dismissed": (Kind.TOOLTIP, "tooltip", Status.DISMISSED),
}
KEY_MAX_LENGTH = 80
SESSION_MAX_LENGTH = 64


def _step(properties: dict[str, Any]) -> int | None:
    value = properties.get("step")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


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
        case "$step_completed" if step is not None:
            state.step_index = step + 1
        case "$walkthrough_dismissed" if step is not None:
            state.step_index = step
        case "$tooltip_viewed":
            state.times_seen += 1
    # A tooltip viewed again after its dismissal stays dismissed.
    if not (status == Status.SEEN and state.status == Status.DISMISSED):
        state.status = status
    if isinstance(session, str) and session:
        state.last_session = session[:SESSION_MAX_LENGTH]
    state.updated_at = event.timestamp


def content_states_record(*, events: Sequence[RecordedEvent]) -> None:
    relevant = []
    for event in events:
        transition = TRANSITIONS.get(event.name)
        properties = event.properties if isinstance(event.properties, dict) else {}
        key = properties.get(transition[1]) if transition else None
        if transition is None or not isinstance(key, str) or not 0 < len(key) <= KEY_MAX_LENGTH:
            continue
        if event.name in {"$step_viewed", "$step_completed"} and _step(properties) is None:
            continue
        relevant.append((event, transition[0], key, transition[2]))
    if not relevant:
        return
    lookup = Q()
    for event, kind, key, _ in relevant:
        lookup |= Q(end_user_id=event.end_user_id, kind=kind, key=key)
    # Lock the rows this batch changes, so two batches of one user apply one after the other.
    states = {
        (state.end_user_id, state.kind, state.key): state
        for state in ContentState.objects.select_for_update().filter(lookup)
    }
    changed: dict[tuple[int, str, str], ContentState] = {}
    for event, kind, key, status in sorted(relevant, key=lambda item: item[0].timestamp):
        identity = (event.end_user_id, kind, key)
        state = states.get(identity)
        if state is None:
            state = ContentState(end_user_id=event.end_user_id, kind=kind, key=key)
            state.updated_at = event.timestamp
            states[identity] = state
        elif state.pk is not None and event.timestamp < state.updated_at:
            continue
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
