"""The one place that pushes to sockets (and to the socket-less push channel).

Only services call these. Delivery over the channel layer is at most once, so every push to
an end user carries that person's next sequence number (`seq`); a tab that sees a gap
re-fetches its progress over HTTP.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection

from onboarding.models import EndUser


def end_user_group(end_user_id: int) -> str:
    return f"milepost.end-user.{end_user_id}"


def workspace_group(workspace_id: int) -> str:
    return f"milepost.workspace.{workspace_id}"


def next_sequence(end_user_id: int) -> int:
    """Atomically take the end user's next push number (one UPDATE … RETURNING)."""
    table = connection.ops.quote_name(EndUser._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET push_sequence = push_sequence + 1 "  # noqa: S608 - our names
            "WHERE id = %s RETURNING push_sequence",
            [end_user_id],
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def push_to_end_user(*, end_user_id: int, message: dict[str, Any]) -> int:
    """Send `message` (a widget protocol message with its `type`) to every open tab of the end
    user. Returns the sequence number it carried. Call after commit."""
    seq = next_sequence(end_user_id)
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(
            end_user_group(end_user_id),
            {"type": "push.to.client", "message": {**message, "seq": seq}},
        )
    return seq


def push_to_workspace(*, workspace_id: int, message: dict[str, Any]) -> None:
    """Tell every connected widget of a workspace something (e.g. that content was published;
    each connection then works out what its own user now sees)."""
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(
            workspace_group(workspace_id), {"type": "workspace.notice", "message": message}
        )
