"""Domain signals that onboarding/ sends after commit, so analytics/ and engagement/ can react
without onboarding/ importing them. Each carries ids and plain values, never model instances
that a receiver might mutate.

- events_recorded(workspace_id, end_user_ids, event_ids, event_names)
- journey_started(workspace_id, end_user_id, journey_id, started_at)
- milestone_completed(workspace_id, end_user_id, milestone_id, journey_id, completed_at,
  journey_started_at)
- pql_reached(workspace_id, end_user_id, journey_id, pql_at)
- end_user_connected(workspace_id, end_user_id)
- end_user_updated(workspace_id, end_user_id, traits_changed: list[str]) — traits set through
  identify or the server API (e.g. a usage counter crossing a threshold)
- end_user_erased(workspace_id, end_user_id) — every record of the person was deleted
  (`DELETE /api/v1/users/{id}` or the admin); copies elsewhere must delete theirs
- events_purged(workspace_id, before: datetime) — the workspace's retention deleted its events
  whose timestamp is earlier than `before`; copies elsewhere (the analytics store) must delete
  the same range. Sent on every retention pass for each workspace that has a retention, also
  when nothing was deleted, so a receiver that missed one catches up on the next: it must be
  idempotent.
"""

from __future__ import annotations

from django.dispatch import Signal

events_recorded = Signal()
journey_started = Signal()
milestone_completed = Signal()
pql_reached = Signal()
end_user_connected = Signal()
end_user_updated = Signal()
end_user_erased = Signal()
events_purged = Signal()
