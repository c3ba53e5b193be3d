"""The one place that pushes to sockets (and to the socket-less push channel).

Only services call these. Delivery over the channel layer is at most once, so every push to
an end user carries that person's next sequence number (`seq`); a tab that sees a gap
re-fetches its progress over HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from functools import partial
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection, transaction

from onboarding import batching, dependencies
from onboarding.models import EndUser

logger = logging.getLogger(__name__)

# How long a pool thread waits for its event loop to send a commit's pushes. A loop that has
# stopped (a worker shutting down) never will: the pushes are lost, logged, and tabs resync.
PUSH_SEND_TIMEOUT_SECONDS = 10.0


def end_user_group(end_user_id: int) -> str:
    return f"milepost.end-user.{end_user_id}"


def workspace_group(workspace_id: int) -> str:
    return f"milepost.workspace.{workspace_id}"


def _take_sequences(counts: dict[int, int]) -> dict[int, int]:
    """Atomically take `counts[end_user_id]` push numbers for each end user in one UPDATE …
    RETURNING; returns the last number taken for each (people erased meanwhile are absent)."""
    if not counts:
        return {}
    table = connection.ops.quote_name(EndUser._meta.db_table)
    ids = sorted(counts)
    if connection.vendor == "postgresql":
        # The counts as two arrays: a short statement whatever the number of people (psycopg
        # parses a statement of more than 50 parameters again every time).
        sql = (
            f"UPDATE {table} AS person SET push_sequence = person.push_sequence + taken.n "  # noqa: S608 - our names
            "FROM unnest(%s::bigint[], %s::bigint[]) AS taken(id, n) WHERE person.id = taken.id "
            "RETURNING person.id, person.push_sequence"
        )
        params: list[Any] = [ids, [counts[end_user_id] for end_user_id in ids]]
    else:
        cases = " ".join("WHEN %s THEN %s" for _ in ids)
        sql = (
            f"UPDATE {table} SET push_sequence = push_sequence + CASE id {cases} END "  # noqa: S608 - our names
            f"WHERE id IN ({', '.join('%s' for _ in ids)}) RETURNING id, push_sequence"
        )
        params = [value for end_user_id in ids for value in (end_user_id, counts[end_user_id])]
        params += ids
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {int(end_user_id): int(last) for end_user_id, last in cursor.fetchall()}


def push_to_end_user(*, end_user_id: int, message: dict[str, Any]) -> int:
    """Send `message` (a widget protocol message with its `type`) to every open tab of the end
    user. Returns the sequence number it carried. Call after commit."""
    return push_to_end_users([(end_user_id, message)])[0]


def push_to_end_users(pushes: Sequence[tuple[int, dict[str, Any]]]) -> list[int]:
    """`push_to_end_user` for many (end user id, message) pairs with one sequence UPDATE and one
    hop to the event loop; each person's messages carry consecutive numbers in the order given.
    Returns the numbers (0 for a person erased meanwhile, who is sent nothing)."""
    numbers, per_person = _numbered(pushes)
    _send(per_person)
    return numbers


def push_to_end_users_after_commit(pushes: Sequence[tuple[int, dict[str, Any]]]) -> None:
    """`push_to_end_users` for pushes that must number in the order of the caller's writes: the
    numbers are taken now, inside the caller's transaction (which holds the people's rows until
    it commits, so a later transaction's pushes number after these), and the messages are sent
    after commit. A tab that receives them out of order sees a gap and resyncs."""
    _, per_person = _numbered(pushes)
    transaction.on_commit(partial(_send, per_person), robust=True)


def sequences_take(counts: dict[int, int]) -> dict[int, int]:
    """Take `counts[end_user_id]` push numbers for each person inside the caller's transaction;
    returns the first number taken for each (people erased meanwhile are absent). The people's
    rows stay locked until that transaction ends, so another transaction's pushes to them
    number after these. Take them before locking any other row of these people (their
    progress), as every writer does, so that two transactions never wait for each other."""
    last = _take_sequences(counts)
    return {person: last[person] - counts[person] + 1 for person in last}


def send_after_commit(pushes: Sequence[tuple[int, dict[str, Any]]]) -> None:
    """Send messages numbered with `sequences_take` (each carries its `seq`; 0 for a person
    erased meanwhile, who is sent nothing) to their people's tabs after commit, each person's
    in the order given. Nothing to number after commit: the pushes leave at once."""
    transaction.on_commit(partial(_send_numbered, list(pushes)), robust=True)


def _send_numbered(pushes: Sequence[tuple[int, dict[str, Any]]]) -> None:
    sent_at = time.time()
    per_person: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for end_user_id, message in pushes:
        if message.get("seq"):
            per_person[end_user_id].append(
                {"type": "push.to.client", "message": message, "sent_at": sent_at}
            )
    _send(per_person)


def _numbered(
    pushes: Sequence[tuple[int, dict[str, Any]]],
) -> tuple[list[int], dict[int, list[dict[str, Any]]]]:
    counts = Counter(end_user_id for end_user_id, _ in pushes)
    next_number = sequences_take(dict(counts))
    numbers: list[int] = []
    sent_at = time.time()
    per_person: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for end_user_id, message in pushes:
        seq = next_number.get(end_user_id, 0)
        numbers.append(seq)
        if seq:
            next_number[end_user_id] += 1
            per_person[end_user_id].append(
                # `sent_at` (this process's clock) measures the push lag where it is delivered.
                {"type": "push.to.client", "message": {**message, "seq": seq}, "sent_at": sent_at}
            )
    return numbers, per_person


def _send(per_person: dict[int, list[dict[str, Any]]]) -> None:
    layer = get_channel_layer()
    if layer is not None and per_person:
        _send_or_log(_send_in_order, layer, per_person)


def _send_or_log(send: Any, *args: Any) -> None:
    """Pushes are sent after commit and at most once: if the channel layer is unreachable
    they are lost (logged), never an error for what was already committed. Tabs catch up by
    the gap in `seq`, or by their next welcome."""
    loop = batching.calling_loop()
    try:
        if loop is None:
            async_to_sync(send)(*args)
        else:
            _send_on(loop, send(*args))
    except Exception as error:
        if not dependencies.unavailable(error):
            raise
        logger.warning("pushes lost: the channel layer is unreachable (%r)", error)


def _send_on(loop: asyncio.AbstractEventLoop, sending: Any) -> None:
    """Run `sending` on the socket's event loop, with a bound: asgiref's async_to_sync would
    wait for ever on a loop that stopped after the call was queued."""
    try:
        future = asyncio.run_coroutine_threadsafe(sending, loop)
    except RuntimeError:  # the loop is closed
        sending.close()
        logger.warning("pushes lost: the event loop of this process has stopped")
        return
    try:
        future.result(timeout=PUSH_SEND_TIMEOUT_SECONDS)
    except TimeoutError:
        future.cancel()
        logger.warning("pushes lost: not sent within %s s", PUSH_SEND_TIMEOUT_SECONDS)


async def _send_in_order(layer: Any, per_person: dict[int, list[dict[str, Any]]]) -> None:
    """Each person's messages one after the other (their order is their `seq`), people side by
    side."""

    async def send(end_user_id: int, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            await layer.group_send(end_user_group(end_user_id), message)

    await asyncio.gather(*(send(person, messages) for person, messages in per_person.items()))


def push_to_workspace(*, workspace_id: int, message: dict[str, Any]) -> None:
    """Tell every connected widget of a workspace something (e.g. that content was published;
    each connection then works out what its own user now sees)."""
    layer = get_channel_layer()
    if layer is not None:
        _send_or_log(
            layer.group_send,
            workspace_group(workspace_id),
            {"type": "workspace.notice", "message": message},
        )
