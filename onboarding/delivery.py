"""The widget protocol's logic, shared by the WebSocket consumer and its HTTP fallback: who is
asking (key, Origin, identity), what they get back (`welcome`, `ack`, progress), and the
limits that keep one connection or one key from swamping the server.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from onboarding import (
    content_state,
    experiments,
    queries,
    rate_limits,
    recording,
    sdk_strings,
    signals,
    targeting,
    translations,
)
from onboarding.auth import KeyRefused, check_widget_origin, workspace_for_widget
from onboarding.lookups import values_rows
from onboarding.models import ContentState, EndUser, PublishedVersion, Workspace

SDK_EVENT_SOURCE = "widget"
logger = logging.getLogger(__name__)


class ProtocolError(Exception):
    """A message or request the widget must be told about: `error {code, message}`."""

    def __init__(
        self, code: str, message: str, *, status: int = 400, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after  # seconds, for rate limits and outages

    def as_message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"type": "error", "code": self.code, "message": self.message}
        if self.retry_after is not None:
            message["retry_after"] = self.retry_after
        return message


KEY_REFUSAL_STATUS = {
    "invalid_key": 400,
    "missing_key": 401,
    "unknown_key": 401,
    "secret_key_in_browser": 401,
    "origin_not_allowed": 403,
}


# The workspace of each publishable key, kept per process for a second: a crowd of sockets
# reconnecting at once (a deploy, a load balancer restart) would otherwise read the same row
# once per handshake. Every connection of a key then shares one Workspace object too. Saving or
# deleting a workspace (key rotation, allowed origins, identity verification) forgets it in this
# process at once; other processes read it again within the second.
_WIDGET_WORKSPACES: dict[str, tuple[float, Workspace]] = {}
WIDGET_WORKSPACE_RECHECK_SECONDS = 1.0


def widget_workspace(*, key: Any, origin: str | None) -> Workspace:
    cached = _WIDGET_WORKSPACES.get(key) if isinstance(key, str) else None
    now = time.monotonic()
    try:
        if cached is not None and now - cached[0] < WIDGET_WORKSPACE_RECHECK_SECONDS:
            workspace = cached[1]
            check_widget_origin(workspace, origin)
            return workspace
        workspace = workspace_for_widget(key=key, origin=origin)
    except KeyRefused as refusal:
        raise ProtocolError(
            refusal.code, refusal.message, status=KEY_REFUSAL_STATUS.get(refusal.code, 401)
        ) from None
    _WIDGET_WORKSPACES[key] = (now, workspace)
    return workspace


@receiver(post_save, sender=Workspace)
@receiver(post_delete, sender=Workspace)
def _forget_widget_workspaces(sender: Any, **kwargs: Any) -> None:
    # All of them: a rotated key is no longer the key the copy is filed under.
    _WIDGET_WORKSPACES.clear()


def _user_id(user: Any) -> str:
    if not isinstance(user, dict):
        raise ProtocolError("missing_user", "Identify the user: user must be {id, traits}.")
    if user.get("id") in (None, ""):
        raise ProtocolError("missing_user", "user.id is missing; call Milepost.identify(id).")
    try:
        return recording.clean_external_id(user["id"])
    except recording.EventRejected as error:
        raise ProtocolError("invalid_user", f"user.{error}") from None


def check_identity(workspace: Workspace, external_id: str, user_hash: Any) -> None:
    if not workspace.enforce_identity_verification:
        return
    if not workspace.user_hash_matches(external_id, user_hash):
        raise ProtocolError(
            "invalid_user_hash",
            "This workspace verifies identities: user_hash must be the hex HMAC-SHA256 of the "
            "user id with the workspace's identity secret.",
            status=403,
        )


def _identity(workspace: Workspace, hello: dict[str, Any]) -> recording.Identity:
    """Who a `hello` (or an HTTP bootstrap) says this is, checked before anything is written."""
    user = hello.get("user")
    external_id = _user_id(user)
    check_identity(workspace, external_id, hello.get("user_hash"))
    traits = user.get("traits") if isinstance(user, dict) else None
    locale = hello.get("locale")
    if locale is not None and translations.normalise(locale) is None:
        raise ProtocolError(
            "invalid_locale", "locale must be a BCP 47 language tag such as fr or pt-BR."
        )
    try:
        return recording.Identity(workspace, external_id, recording.clean_traits(traits))
    except recording.EventRejected as error:
        raise ProtocolError("invalid_traits", str(error)) from None


def session_open(*, workspace: Workspace, hello: dict[str, Any]) -> EndUser:
    """Identify the end user of a `hello` (or an HTTP bootstrap) and start their journeys."""
    answer = sessions_open_many([Hello(workspace, hello)])[0]
    if isinstance(answer, ProtocolError):
        raise answer
    return answer


@dataclass(frozen=True)
class Hello:
    """One connection's `hello` waiting for the next group commit."""

    workspace: Workspace
    message: dict[str, Any]


def sessions_open_many(hellos: Sequence[Hello]) -> list[EndUser | ProtocolError]:
    """`session_open` for the hellos of many connections, written together. A hello that is
    refused (bad id, traits or user_hash) is refused before anything is written."""
    checked: list[recording.Identity | ProtocolError] = []
    for hello in hellos:
        try:
            checked.append(_identity(hello.workspace, hello.message))
        except ProtocolError as refusal:
            checked.append(refusal)
    identities = [one for one in checked if isinstance(one, recording.Identity)]
    people = iter(recording.end_users_identify_many(identities=identities))
    return [next(people) if isinstance(one, recording.Identity) else one for one in checked]


def end_user_for(*, workspace: Workspace, user_id: Any, user_hash: Any) -> EndUser:
    """The already identified end user of an HTTP call that names them."""
    external_id = _user_id({"id": user_id})
    check_identity(workspace, external_id, user_hash)
    end_user = EndUser.objects.filter(workspace=workspace, external_id=external_id).first()
    if end_user is None:
        raise ProtocolError(
            "unknown_user", "This user has not been identified yet; bootstrap first.", status=404
        )
    return end_user


def welcome(
    *,
    end_user: EndUser,
    session: str | None,
    traits: Any = None,
    page: str | None = None,
    browser_locale: Any = None,
) -> dict[str, Any]:
    """What this user sees. `user.traits` echoes only what the page itself sent: traits set by
    the SaaS backend with its secret key (e-mail, revenue, internal flags) never reach a
    browser, which holds only the publishable key."""
    return _welcomes(
        [WelcomeRequest(end_user, session, traits, page=page, browser_locale=browser_locale)]
    )[0]


@dataclass(frozen=True)
class WelcomeRequest:
    end_user: EndUser
    session: str | None
    traits: Any
    page: str | None = None  # the URL the hello names: experiment exposures are judged on it
    # The browser's language (`hello.locale`, navigator.language), checked by the hello.
    browser_locale: Any = None


def page_url(message: Any) -> str | None:
    """The page URL a `hello` or bootstrap body names (`page: {url}`), if it names one."""
    page = message.get("page") if isinstance(message, dict) else None
    url = page.get("url") if isinstance(page, dict) else None
    return url if isinstance(url, str) else None


# Apps onboarding does not import add fields to the journeys of a welcome (analytics adds peer
# comparison, analytics/peer_comparison.py): each annotator gets the end users and their
# journey entries, in the same order, and adds to the entries in place.
journey_annotators: list[Callable[[Sequence[EndUser], Sequence[list[dict[str, Any]]]], None]] = []


def _remember_locales(requests: Sequence[WelcomeRequest]) -> None:
    """Keep the language each person asks for (locale trait, else browser), so pushes and
    e-mails sent without a page at hand are in it too. Written only when it changed, with one
    UPDATE per language for all the hellos of a group commit."""
    changed: dict[str, set[int]] = defaultdict(set)
    for request in requests:
        end_user = request.end_user
        stored = end_user.traits if isinstance(end_user.traits, dict) else {}
        page = request.traits if isinstance(request.traits, dict) else {}
        asked = translations.requested_locale(
            workspace=end_user.workspace, traits={**stored, **page}, browser=request.browser_locale
        )
        if asked and asked != end_user.locale:
            end_user.locale = asked
            changed[asked].add(end_user.pk)
    for asked, ids in sorted(changed.items()):
        EndUser.objects.filter(pk__in=sorted(ids)).update(locale=asked)


def _welcomes(requests: Sequence[WelcomeRequest]) -> list[dict[str, Any]]:
    end_users = [r.end_user for r in requests]
    _remember_locales(requests)
    sequences = dict(
        values_rows(
            "welcome: push sequences",
            lambda ids: EndUser.objects.filter(pk__any=ids).values_list("pk", "push_sequence"),
            {u.pk for u in end_users},
        )
    )
    contents, exposures = targeting.targeted_many(
        end_users=end_users, sessions=[r.session for r in requests]
    )
    _expose(exposures, pages={r.end_user.pk: r.page for r in requests})
    journeys = recording.journey_progress_many(end_users=end_users)
    for annotate in journey_annotators:
        try:
            annotate(end_users, journeys)
        except Exception:
            # An extra must never cost anyone their welcome.
            logger.exception("journey annotator %r failed", annotate)
    answers = []
    published = {
        workspace_id: queries.live_content(workspace_id=workspace_id)[1]
        for workspace_id in {user.workspace_id for user in end_users}
    }
    for request, content, journey_list in zip(requests, contents, journeys, strict=True):
        resolved = targeting.locale_for(
            end_user=request.end_user, published=published[request.end_user.workspace_id]
        )
        sdk_strings.localise_peers(journey_list, resolved.tag)
        _resource_center_peers(content, journey_list)
        answers.append(
            {
                "type": "welcome",
                "user": {
                    "id": request.end_user.external_id,
                    "traits": request.traits if isinstance(request.traits, dict) else {},
                },
                "content": content,
                "journeys": translations.localise_journeys(
                    journey_list, published[request.end_user.workspace_id], resolved.chain
                ),
                "theme": request.end_user.workspace.theme,
                "locale": sdk_strings.sdk_locale(resolved.tag),
                "seq": sequences.get(request.end_user.pk, 0),
            }
        )
    return answers


def _resource_center_peers(content: dict[str, Any], journeys: list[dict[str, Any]]) -> None:
    """A resource center checklist shows its journey's peer comparison too."""
    peers = {entry["journey"]["key"]: entry["peers"] for entry in journeys if "peers" in entry}
    for section in content.get("surfaces", {}).get("resource_centers", []) if peers else []:
        for item in section["items"]:
            if item["kind"] == "checklist" and item["journey"] in peers:
                item["peers"] = peers[item["journey"]]


def welcomes_many(requests: Sequence[WelcomeRequest]) -> list[dict[str, Any]]:
    """`welcome` for many connections at once (read with a few queries for all), each then
    announced as connected after commit: the group commit answers the welcomes first, so
    in-app messages waiting for these people reach their tabs after the welcome."""
    answers = _welcomes(requests)
    for request in requests:
        announce_connected(end_user=request.end_user)
    return answers


def _expose(exposures: Sequence[experiments.Exposure], pages: dict[int, str | None]) -> None:
    """Record the experiment exposures of the people whose page matches (experiments.py)."""
    experiments.exposures_record(exposures=exposures, pages=pages)


def content_message(
    *, end_user: EndUser, session: str | None, page: str | None = None
) -> dict[str, Any]:
    contents, exposures = targeting.targeted_many(
        end_users=[end_user], sessions=[session], recheck=True
    )
    _expose(exposures, pages={end_user.pk: page})
    return {"type": "content", "content": contents[0]}


def page_seen(*, end_user: EndUser, session: str | None, page: str) -> None:
    """A tab moved to another page: the experiments whose content rule matches it now expose
    this person. Nothing is read when the workspace has no running experiment."""
    if not experiments.any_running(end_user.workspace_id):
        return
    _, exposures = targeting.targeted_many(end_users=[end_user], sessions=[session])
    _expose(exposures, pages={end_user.pk: page})


def progress_snapshot(*, end_user: EndUser) -> dict[str, Any]:
    """What a tab re-fetches after a gap in its pushes: its journeys and its walkthroughs'
    states (both are pushed). The sequence number is read first, so what follows is at least
    as new as the pushes it covers; a push numbered later repeats what may already be here."""
    end_user.refresh_from_db(fields=["push_sequence"])
    _, published = queries.live_content(workspace_id=end_user.workspace_id)
    chain = targeting.locale_for(end_user=end_user, published=published).chain
    return {
        "seq": end_user.push_sequence,
        "journeys": translations.localise_journeys(
            recording.journey_progress(end_user=end_user), published, chain
        ),
        "walkthroughs": {
            state.key: content_state.walkthrough_state(state)
            for state in ContentState.objects.filter(
                end_user=end_user, kind=PublishedVersion.Kind.WALKTHROUGH
            ).order_by("key")
        },
    }


def events_checked(payload: dict[str, Any]) -> list[Any]:
    """The events of an `events` message or body, refused whole if it is not a list or is
    longer than the batch limit (no database work)."""
    events = payload.get("events")
    if not isinstance(events, list):
        raise ProtocolError("invalid_events", "events must be a list of events.")
    if len(events) > settings.MILEPOST_MAX_EVENTS_PER_BATCH:
        raise ProtocolError(
            "batch_too_large",
            f"{len(events)} events in one batch; the limit is "
            f"{settings.MILEPOST_MAX_EVENTS_PER_BATCH}.",
            status=413,
        )
    return events


def user_erased() -> ProtocolError:
    """The answer to events whose person was erased (DELETE /users/{id}) while their tab stayed
    open: the foreign key refused them."""
    return ProtocolError("unknown_user", "This user no longer exists; identify again.", status=404)


def user_erased_or(error: IntegrityError, end_user: EndUser) -> Exception:
    """What an IntegrityError on a person's events means: if the person is gone, they were
    erased (`unknown_user`, the SDK identifies again); otherwise it is another fault, kept as
    it is (an `internal` answer and a logged traceback, never a re-identify loop)."""
    if EndUser.objects.filter(pk=end_user.pk).exists():
        return error
    return user_erased()


@dataclass(frozen=True)
class EventsSubmission:
    """One connection's `events` message waiting for the next group commit."""

    end_user: EndUser
    events: list[Any]
    sent_at: Any


def events_receive_many(
    submissions: Sequence[EventsSubmission], *, savepoint: bool = False
) -> list[dict[str, Any] | Exception]:
    """Store the `events` of many connections in one transaction; one `ack` (or error) each.

    A failure fails them all (the group commit answers each submission alone next, and the
    socket tells an erased person from another fault). With `savepoint`, a single submission
    whose person was erased is answered `unknown_user` here instead, at the cost of a savepoint
    (two round trips)."""
    try:
        acks = recording.events_record_many(
            batches=[
                recording.EventBatch(
                    workspace=submission.end_user.workspace,
                    events=submission.events,
                    source=SDK_EVENT_SOURCE,
                    sent_at=submission.sent_at,
                    end_user=submission.end_user,
                )
                for submission in submissions
            ],
            savepoint=savepoint,
        )
    except IntegrityError as error:
        if not savepoint or len(submissions) > 1:
            raise
        # events_record_many rolled back its savepoint, so the check can still read.
        return [user_erased_or(error, submissions[0].end_user)]
    return [{"type": "ack", **ack.as_dict()} for ack in acks]


def events_receive(*, end_user: EndUser, payload: dict[str, Any]) -> dict[str, Any]:
    submission = EventsSubmission(end_user, events_checked(payload), payload.get("sent_at"))
    answer = events_receive_many([submission], savepoint=True)[0]
    if isinstance(answer, Exception):
        raise answer
    return answer


def announce_connected(*, end_user: EndUser) -> None:
    """After commit: one failing receiver (engagement's waiting messages) is logged and costs
    nobody their welcome."""
    transaction.on_commit(
        partial(
            recording.announce_robustly,
            signals.end_user_connected,
            sender=EndUser,
            workspace_id=end_user.workspace_id,
            end_user_id=end_user.pk,
        )
    )


# Widget keys count under this kind of counter (secret keys under "api:").
WIDGET_KEY_RATE = ""


def key_rate_allows(workspace_id: int) -> bool:
    """A fixed one-minute window per publishable key, shared by every server process through
    the cache (Redis in production). The HTTP fallback counts here on every call; when the
    cache is down, calls go through (logged)."""
    return rate_limits.allows(
        WIDGET_KEY_RATE, workspace_id, settings.MILEPOST_MAX_MESSAGES_PER_KEY_PER_MINUTE
    )


def rate_limited() -> ProtocolError:
    """The answer to a key over its budget, saying when the next window opens."""
    retry_after = rate_limits.seconds_to_next_window()
    return ProtocolError(
        "rate_limited",
        f"This key sends too many messages a minute; retry in {retry_after} s.",
        status=429,
        retry_after=retry_after,
    )


@dataclass
class ConnectionRate:
    """A token bucket per socket: `limit` messages a minute, refilled continuously."""

    limit: int
    tokens: float = -1.0
    updated: float = 0.0

    def seconds_to_next_token(self) -> int:
        return max(1, int((1 - self.tokens) * 60 / self.limit + 0.999))

    def allows(self) -> bool:
        now = time.monotonic()
        if self.tokens < 0:
            self.tokens, self.updated = float(self.limit), now
        self.tokens = min(self.limit, self.tokens + (now - self.updated) * self.limit / 60)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
