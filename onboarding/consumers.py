"""The widget's WebSocket endpoint, `/ws/widget/?key=pk_…`.

The key and the page's Origin are checked in connect(), before the socket is accepted (a
refusal is an HTTP 403 to the handshake). Then one `hello` identifies the end user; after that
`events` are recorded and acknowledged, and pushes for the user or the workspace arrive
through the channel layer groups. Handlers are named after message types.

A consumer never stops reading its socket: `receive()` only checks a frame (size, rates, JSON,
type) and puts it on the connection's inbox, which a task of that connection works through in
order (started when a message arrives, gone when the inbox is empty: an idle connection costs
no task). So pings are answered and pushes delivered while a message waits for the database,
and an inbox past `MILEPOST_SOCKET_BACKLOG` messages answers `backlog_full` instead of growing.
Database work goes through `onboarding.batching`: `hello`s and `events` of all the connections
of a process are committed together (group commit) on a pool of database threads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import IntegrityError
from uvicorn.protocols.utils import ClientDisconnected

from onboarding import (
    delivery,
    dependencies,
    experiments,
    json_values,
    metrics,
    rate_limits,
    realtime,
    translations,
)
from onboarding.batching import database_work, group_commit
from onboarding.models import EndUser, Workspace

logger = logging.getLogger(__name__)

# A frame larger than a full batch plus its envelope is refused without parsing it.
MAX_FRAME_BYTES_OVER_BATCH = 16 * 1024
CLOSE_TOO_BIG = 1009
# "Try again later": a database or Redis is unreachable; the SDK reconnects with its backoff.
CLOSE_TRY_AGAIN_LATER = 1013
# `backlog_full` and `internal`: nothing of the message was handled; the SDK holds its events
# and resends them no sooner than this (jittered, and longer after repeated refusals).
RESEND_AFTER_SECONDS = 1
# Closes that say nothing went wrong: normal, going away (navigation), no status.
ORDINARY_CLOSES = {1000, 1001, 1005}
# What one group commit takes at most: hellos, and events (a socket's batch counts its events).
HELLOS_PER_COMMIT = 200
EVENTS_PER_COMMIT = 2000
# The message types a page may send; others are refused as unknown.
CLIENT_MESSAGE_TYPES = ("hello", "events", "page")
HANDLERS = {
    "hello": "on_hello",
    "events": "on_events",
    "page": "on_page",
    # Not from the client: a publish changed what this connection's user may see.
    "content_changed": "on_content_changed",
}

key_rates = rate_limits.SharedKeyRate()
# Tasks nobody awaits, kept referenced until done (the event loop holds only weak references).
background_tasks: set[asyncio.Task[None]] = set()


async def _stopped(task: asyncio.Task[None]) -> None:
    """Cancel the channel-read task and wait until it is done. Cancelled, channels_redis's
    `receive` unsubscribes the connection's channel from Redis; left running after the consumer
    returns, that unsubscribe could be cancelled again half-way by a worker stopping (asyncio
    cancels every task left at shutdown), which channels_redis logs as an ERROR for what was a
    normal close. Channels' own consumer loop waits the same way."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # this consumer itself is being cancelled: let that go on


class WidgetConsumer(AsyncWebsocketConsumer):
    workspace: Workspace
    end_user: EndUser | None = None
    # Pushes that arrive while a hello is between joining its groups and sending its welcome:
    # sent after the welcome. Any push the welcome already counts (seq <= welcome_seq) is
    # dropped, also one that a channel layer delivers only after the welcome went out.
    held_pushes: list[dict[str, Any]] | None = None
    welcome_seq = 0
    session: str | None = None
    page: str | None = None  # the URL of the page the last hello or page message named
    inbox: deque[dict[str, Any]]
    worker: asyncio.Task[None] | None = None
    # Done once the after-commit work of this connection's last `events` commit has run.
    settling: asyncio.Future[None] | None = None
    closing = False  # closed by the server; frames still in flight are ignored
    counted_open = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Channels' loop waits on the socket and the channel layer with `asyncio.wait` and a new
        task per message; here each is read by a plain loop of its own (the channel layer's in a
        task), which costs a fraction per frame. Same dispatch, same handlers."""
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.base_send = send
        pushes: asyncio.Task[None] | None = None
        if self.channel_layer is not None:
            try:
                self.channel_name = await self.channel_layer.new_channel()
            except Exception as error:
                if not dependencies.unavailable(error):
                    raise
                # No pushes without the channel layer: answer the handshake only to say so.
                if (await receive())["type"] == "websocket.connect":
                    await self.accept()
                    await self._unavailable(error, close=True)
                return
            pushes = asyncio.get_running_loop().create_task(self._read_pushes())
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.receive":  # most of what a socket does
                    await self.receive(message.get("text"), message.get("bytes"))
                else:
                    await self.dispatch(message)
        except StopConsumer:
            pass
        finally:
            if pushes is not None:
                await _stopped(pushes)

    async def _read_pushes(self) -> None:
        while True:
            try:
                message = await self.channel_layer.receive(self.channel_name)
            except Exception as error:
                # Without its pushes the tab would go stale unnoticed: close, so the SDK
                # reconnects and its welcome brings it up to date.
                metrics.ERRORS.labels("socket").inc()
                if dependencies.unavailable(error):
                    await self._unavailable(error, close=True)
                else:
                    logger.exception("widget socket lost its channel layer; closing it")
                    await self.close(code=1011)
                return
            try:
                await self.dispatch(message)
            except ClientDisconnected:
                return
            except Exception:
                logger.exception("widget push %r failed", message.get("type"))

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels would first hop to its single database thread to close old connections, for
        # every frame and every push; database work here runs on the pool, which does that.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        query = parse_qs(self.scope.get("query_string", b"").decode())
        key = (query.get("key") or [""])[0]
        origin = None
        for name, value in self.scope.get("headers", []):
            if name == b"origin":
                origin = value.decode("latin-1")
        try:
            self.workspace = await database_work(delivery.widget_workspace, key=key, origin=origin)
        except delivery.ProtocolError as refusal:
            logger.info("widget socket refused: %s", refusal.code)
            await self.close()
            return
        except Exception as error:
            if not dependencies.unavailable(error):
                raise
            # Accepted only to say why and when to come back, then closed.
            await self.accept()
            await self._unavailable(error, close=True)
            return
        self.rate = delivery.ConnectionRate(settings.MILEPOST_MAX_SOCKET_MESSAGES_PER_MINUTE)
        self.frame_limit = settings.MILEPOST_MAX_BATCH_BYTES + MAX_FRAME_BYTES_OVER_BATCH
        self.backlog = settings.MILEPOST_SOCKET_BACKLOG
        self.groups_joined: list[str] = []
        self.inbox = deque()
        await self.accept()
        self.counted_open = True
        metrics.OPEN_SOCKETS.inc()

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        code = message.get("code", 1005)
        if code not in ORDINARY_CLOSES:
            logger.warning(
                "widget socket of workspace %s, end user %s closed with %s%s",
                getattr(getattr(self, "workspace", None), "pk", None),
                getattr(self.end_user, "pk", None),
                code,
                f" ({message['reason']})" if message.get("reason") else "",
            )
        # Not Channels' own: it would then hop to its single database thread to close old
        # connections, once per closing socket (thousands at once when a load balancer
        # restarts), for a thread this consumer never uses (database work runs on the pool).
        await self.disconnect(code)
        raise StopConsumer()

    async def disconnect(self, code: int) -> None:
        if self.counted_open:
            self.counted_open = False
            metrics.OPEN_SOCKETS.dec()
        if self.worker is not None:
            self.worker.cancel()
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing:
            return
        raw = text_data if text_data is not None else (bytes_data or b"").decode("utf-8", "replace")
        limit = self.frame_limit
        # A character is at most 4 bytes: most frames need no encoding to be measured.
        if len(raw) * 4 > limit and len(raw.encode()) > limit:
            await self._error("frame_too_large", f"A message may be at most {limit} bytes.")
            await self.close(code=CLOSE_TOO_BIG)
            return
        if not self.rate.allows():
            await self.send_json(
                delivery.ProtocolError(
                    "rate_limited",
                    f"More than {self.rate.limit} messages a minute on this connection; "
                    "slow down and resend (unacknowledged events are kept by the SDK).",
                    retry_after=self.rate.seconds_to_next_token(),
                ).as_message()
            )
            return
        if not key_rates.allows(self.workspace.pk):
            await self.send_json(delivery.rate_limited().as_message())
            return
        if key_rates.sync_due(self.workspace.pk):
            name, count = key_rates.sync_start(self.workspace.pk)
            syncing = asyncio.get_running_loop().create_task(self._sync_key_rate(name, count))
            background_tasks.add(syncing)
            syncing.add_done_callback(background_tasks.discard)
        try:
            message = json_values.loads(raw)
        except json_values.JsonRefused as refusal:
            answer = {"type": "error", "code": refusal.code, "message": refusal.message}
            if refusal.field:
                answer["field"] = refusal.field
            await self.send_json(answer)
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self._error("missing_type", "Every message is a JSON object with a `type`.")
            return
        if message["type"] not in CLIENT_MESSAGE_TYPES:
            await self._error("unknown_type", f"Unknown message type {message['type']!r}.")
            return
        if len(self.inbox) >= self.backlog:
            await self._error(
                "backlog_full",
                f"{len(self.inbox)} messages of this connection are still waiting; this "
                f"{message['type']!r} was not handled. Wait for their answers and resend it.",
                retry_after=RESEND_AFTER_SECONDS,
            )
            return
        self._enqueue(message)

    def _enqueue(self, message: dict[str, Any]) -> None:
        self.inbox.append(message)
        if self.worker is None or self.worker.done():
            self.worker = asyncio.get_running_loop().create_task(self._work())

    async def _sync_key_rate(self, name: str, count: int) -> None:
        total = await database_work(rate_limits.SharedKeyRate.add_shared, name, count)
        key_rates.sync_end(self.workspace.pk, name, total)

    async def _work(self) -> None:
        while self.inbox:
            message = self.inbox.popleft()
            if self.settling is not None:
                # The last `events` may have completed milestones: their pushes are numbered
                # before anything this message does.
                await self.settling
                self.settling = None
            try:
                await getattr(self, HANDLERS[message["type"]])(message)
            except delivery.ProtocolError as error:
                await self.send_json(error.as_message())
            except ClientDisconnected:
                # The tab went away (navigation, close) before its answer: the SDK resends what
                # was not acknowledged from the next page.
                logger.debug("widget socket closed before its %r answer", message.get("type"))
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if dependencies.unavailable(error):
                    await self._unavailable(error)
                    continue
                # The socket stays up and the SDK keeps its unacknowledged events to resend.
                metrics.ERRORS.labels("socket").inc()
                logger.exception("widget message %r failed", message.get("type"))
                await self._error(
                    "internal",
                    "The server could not handle this message; retry.",
                    retry_after=RESEND_AFTER_SECONDS,
                )
        # Done: an idle connection keeps no finished task (a new one starts with the next
        # message; nothing was awaited since the inbox was found empty).
        self.worker = None

    async def _unavailable(self, error: Exception, *, close: bool = False) -> None:
        """A database or Redis is down: nothing of this message was acknowledged, so the SDK
        keeps its events. Say when to try again (and, before a workspace is known, close:
        the SDK reconnects with its backoff)."""
        logger.warning("widget socket: a dependency is unreachable: %r", error)
        await self.send_json(
            delivery.ProtocolError(
                "unavailable",
                "A service Milepost depends on is unreachable; nothing was stored. Retry.",
                retry_after=dependencies.RETRY_AFTER_SECONDS,
            ).as_message()
        )
        if close:
            self.closing = True
            await self.close(code=CLOSE_TRY_AGAIN_LATER)

    async def on_hello(self, message: dict[str, Any]) -> None:
        session = message.get("session")
        self.session = session if isinstance(session, str) else None
        self.page = delivery.page_url(message)
        end_user = await group_commit(
            "hello", delivery.sessions_open_many, max_weight=HELLOS_PER_COMMIT
        ).submit(delivery.Hello(self.workspace, message))
        if self.end_user is not None and self.end_user.pk != end_user.pk:
            group = realtime.end_user_group(self.end_user.pk)
            await self.channel_layer.group_discard(group, self.channel_name)
            self.groups_joined.remove(group)
        self.end_user = end_user
        # Joined before the welcome is read, so a push from now on reaches this socket and
        # the welcome's `seq` tells the SDK which pushes it already has; pushes that come
        # before the welcome is sent wait for it (a push numbered after the welcome's read
        # but sent ahead of the welcome looked like a gap to the SDK).
        self.held_pushes = []
        for group in (
            realtime.end_user_group(end_user.pk),
            realtime.workspace_group(self.workspace.pk),
        ):
            if group not in self.groups_joined:
                await self.channel_layer.group_add(group, self.channel_name)
                self.groups_joined.append(group)
        user = message.get("user")
        traits = user.get("traits") if isinstance(user, dict) else None
        try:
            welcome = await group_commit(
                "welcome", delivery.welcomes_many, max_weight=HELLOS_PER_COMMIT
            ).submit(
                delivery.WelcomeRequest(
                    end_user,
                    self.session,
                    traits,
                    page=delivery.page_url(message),
                    browser_locale=message.get("locale") or self._accepted(),
                )
            )
            await self.send_json(welcome)
        finally:
            held, self.held_pushes = self.held_pushes or [], None
        self.welcome_seq = int(welcome.get("seq") or 0)
        for message in held:
            if not self._covered_by_welcome(message):
                await self.send_json(message)

    def _accepted(self) -> str | None:
        """The browser's language from the handshake's Accept-Language (hello.locale wins)."""
        for name, value in self.scope.get("headers", []):
            if name == b"accept-language":
                return translations.first_accepted(value.decode("latin-1"))
        return None

    def _covered_by_welcome(self, message: dict[str, Any]) -> bool:
        return "seq" in message and int(message["seq"]) <= self.welcome_seq

    async def on_events(self, message: dict[str, Any]) -> None:
        if self.end_user is None:
            raise delivery.ProtocolError("hello_first", "Send `hello` before `events`.")
        events = delivery.events_checked(message)
        try:
            ack, settled = await group_commit(
                "events",
                delivery.events_receive_many,
                max_weight=max(EVENTS_PER_COMMIT, settings.MILEPOST_MAX_EVENTS_PER_BATCH),
            ).submit_settling(
                delivery.EventsSubmission(self.end_user, events, message.get("sent_at")),
                weight=len(events),
            )
        except IntegrityError as error:
            # Alone in its commit (a failed group is retried item by item): if the person is
            # gone, they were erased while the tab stayed open; otherwise it is another fault.
            raise await database_work(delivery.user_erased_or, error, self.end_user) from None
        await self.send_json(ack)
        # Awaited before the next message (which may complete more milestones, its pushes
        # numbered after these), not now: an idle connection's task ends with its ack.
        self.settling = settled

    async def on_page(self, message: dict[str, Any]) -> None:
        if self.end_user is None:
            raise delivery.ProtocolError("hello_first", "Send `hello` before `page`.")
        # URL rules are applied by the SDK, which also records the `$pageview`; the server only
        # checks the message's shape.
        page = message.get("url")
        if not isinstance(page, str):
            raise delivery.ProtocolError("invalid_page", "page.url must be a string.")
        self.page = page
        # Experiments whose content lives on this page expose the person now.
        if experiments.may_be_running(self.workspace.pk):
            await database_work(
                delivery.page_seen, end_user=self.end_user, session=self.session, page=page
            )

    async def on_content_changed(self, message: dict[str, Any]) -> None:
        if self.end_user is not None:
            await self.send_json(
                await database_work(
                    delivery.content_message,
                    end_user=self.end_user,
                    session=self.session,
                    page=self.page,
                )
            )

    # Channel layer handlers --------------------------------------------------------------

    async def push_to_client(self, event: dict[str, Any]) -> None:
        if self.held_pushes is not None:
            self.held_pushes.append(event["message"])
            return
        if self._covered_by_welcome(event["message"]):
            return
        await self.send_json(event["message"])
        if "sent_at" in event:
            metrics.PUSH_LAG.observe(max(0.0, time.time() - event["sent_at"]))

    async def workspace_notice(self, event: dict[str, Any]) -> None:
        if event["message"].get("type") == "content_changed":
            # Through the inbox, after what this connection is already doing.
            self._enqueue({"type": "content_changed"})

    async def send_json(self, content: dict[str, Any]) -> None:
        # What Channels' send() does for a text frame, without its two calls in between.
        text = json_values.dumps(content).decode()
        await self.base_send({"type": "websocket.send", "text": text})

    async def _error(self, code: str, message: str, **fields: Any) -> None:
        await self.send_json({"type": "error", "code": code, "message": message, **fields})
