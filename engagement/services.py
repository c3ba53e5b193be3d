"""Engagement's writes: evaluate triggers, fire rules into deliveries, send deliveries.

Flow: onboarding's signals (after commit) → `rules_fire_for_*`, which match against the
process's `rule_index` (no query when no rule can match) and enqueue `tasks.fire_rule` →
`rule_fire` (one transaction: the end user's row is locked so frequency caps and "once per
occurrence" hold under concurrent events; one Delivery row per channel) → `tasks.deliver`
enqueued on commit → `delivery_send` (locks the delivery row while it sends, so a duplicate
task waits and then finds it sent, and a worker killed mid-send rolls back to pending and the
broker hands the task to another).
Retries are rows with `next_attempt_at`, picked up by the periodic sweep: no long Celery ETAs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import smtplib
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, prefetch_related_objects
from django.db.models.fields.json import KeyTransform
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from analytics.report import walkthrough_funnel
from engagement import personalisation, rule_index, webhooks
from engagement.models import (
    TEAM_ALERTS,
    TIME_TRIGGERS,
    Channel,
    Delivery,
    DeliveryAttempt,
    EngagementSettings,
    FrequencyCap,
    Message,
    Rule,
    Trigger,
    Unsubscription,
    WebhookEndpoint,
    previous_milestone,
)
from engagement.rule_index import IndexedRule
from onboarding import experiments, queries, translations, validation
from onboarding.models import (
    EndUser,
    Event,
    JourneyProgress,
    MilestoneCompletion,
    PublishedVersion,
    Walkthrough,
)
from onboarding.realtime import push_to_end_user
from onboarding.segments import segment_matches

logger = logging.getLogger(__name__)

RETRY_FIRST_DELAY = timedelta(seconds=30)
RETRY_WINDOW = timedelta(hours=24)
# A pending delivery whose task never ran (the process died between commit and enqueue) is
# enqueued again by the sweep after this long.
STALE_PENDING_AFTER = timedelta(minutes=2)
# An in-app message the user has not seen yet waits this long for their next visit.
IN_APP_KEPT_FOR = timedelta(days=30)
# A firing that loaded a rule just before its in-app channel was switched off may date its
# delivery a little after the rule's updated_at, on another machine's clock.
RULE_CLOCK_MARGIN = timedelta(hours=1)
SWEEP_BATCH = 5000
TRIGGER_FIELDS = ("when_present", "wait_timeout_ms")
MESSAGE_EVENTS = {"$message_shown", "$message_clicked", "$message_dismissed"}
UNSUBSCRIBE_SALT = "engagement.unsubscribe"
ONCE = "once"

_LIVE_STATUSES = [Delivery.Status.PENDING, Delivery.Status.RETRYING, Delivery.Status.SENT]


# --- firing -----------------------------------------------------------------------------------


def _published_journey(*, workspace_id: int, journey_id: int) -> dict[str, Any] | None:
    """The journey as live users see it (its latest published snapshot), or None if it was
    never published. Drafts never reach a message."""
    version = (
        queries.version_history(kind=PublishedVersion.Kind.JOURNEY, object_id=journey_id)
        .filter(workspace_id=workspace_id)
        .only("snapshot")
        .first()
    )
    return version.snapshot if version is not None else None


def next_milestone(milestones: list[dict[str, Any]], completed: set[int]) -> dict[str, Any] | None:
    """The first milestone not reached after the furthest one reached (someone who skipped a
    step is pointed forward, not back), else the first not reached at all."""
    ordered = sorted(milestones, key=lambda m: (m.get("position") or 0, m["id"]))
    reached = [i for i, m in enumerate(ordered) if m["id"] in completed]
    furthest = reached[-1] if reached else -1
    for milestone in [*ordered[furthest + 1 :], *ordered[: furthest + 1]]:
        if milestone["id"] not in completed:
            return milestone
    return None


def _context_journeys(rule: Rule, end_user_ids: list[int]) -> dict[int, int | None]:
    """The journey each end user's message is about: the rule's, else the user's earliest
    journey in progress."""
    journey_id = rule.journey_id or (rule.milestone.journey_id if rule.milestone else None)
    if journey_id is not None:
        return dict.fromkeys(end_user_ids, journey_id)
    found: dict[int, int | None] = dict.fromkeys(end_user_ids)
    rows = (
        JourneyProgress.objects.filter(end_user_id__in=end_user_ids, completed_at__isnull=True)
        .order_by("end_user_id", "started_at", "id")
        .values_list("end_user_id", "journey_id")
    )
    for end_user_id, progress_journey_id in rows:
        if found[end_user_id] is None:
            found[end_user_id] = progress_journey_id
    return found


def personalisation_contexts(
    *, rule: Rule, end_users: list[EndUser], facts: dict[int, dict[str, Any]]
) -> dict[int, dict[str, Any]]:
    """The values a message's placeholders may use (see personalisation.FIELDS), by end user
    id, for several end users at once (one query for their journeys' published snapshots and
    one for their completions). Journey and milestone names come from the published journey,
    never from drafts."""
    journeys = _context_journeys(rule, [end_user.pk for end_user in end_users])
    snapshots = {
        journey_id: _published_journey(workspace_id=rule.workspace_id, journey_id=journey_id)
        for journey_id in {j for j in journeys.values() if j is not None}
    }
    published_ids = {
        m["id"] for snapshot in snapshots.values() for m in (snapshot or {}).get("milestones", [])
    }
    completed: dict[int, set[int]] = defaultdict(set)
    if published_ids:
        for end_user_id, milestone_id in MilestoneCompletion.objects.filter(
            end_user_id__in=[end_user.pk for end_user in end_users],
            milestone_id__in=list(published_ids),
        ).values_list("end_user_id", "milestone_id"):
            completed[end_user_id].add(milestone_id)
    contexts: dict[int, dict[str, Any]] = {}
    for end_user in end_users:
        its_facts = facts.get(end_user.pk, {})
        journey_id = journeys[end_user.pk]
        snapshot = snapshots.get(journey_id) if journey_id is not None else None
        contexts[end_user.pk] = _context(
            rule=rule,
            end_user=end_user,
            facts=its_facts,
            snapshot=snapshot,
            completed=completed[end_user.pk],
        )
    return contexts


def _context(
    *,
    rule: Rule,
    end_user: EndUser,
    facts: dict[str, Any],
    snapshot: dict[str, Any] | None,
    completed: set[int],
) -> dict[str, Any]:
    traits = end_user.traits if isinstance(end_user.traits, dict) else {}
    name = str(traits.get("name") or "")
    milestones: list[dict[str, Any]] = (snapshot or {}).get("milestones") or []
    published_names = {m["id"]: m.get("name") or m["key"] for m in milestones}
    milestone_id = rule.milestone_id or facts.get("milestone_id")
    context: dict[str, Any] = {
        "traits": traits,
        "first_name": traits.get("first_name") or (name.split() or [""])[0],
        "last_name": traits.get("last_name"),
        "name": name,
        "email": traits.get("email"),
        "company": traits.get("company"),
        "plan": traits.get("plan"),
        "user_id": end_user.external_id,
        "workspace_name": rule.workspace.name,
        "milestone_name": published_names.get(milestone_id, "") if milestone_id else "",
        "event_name": facts.get("event", ""),
    }
    for fact in ("walkthrough_name", "step_title", "step_number", "selector", "missing_percent"):
        context[fact] = facts.get(fact, "")
    if snapshot is not None:
        upcoming = next_milestone(milestones, completed)
        context["journey_name"] = snapshot.get("name") or ""
        context["next_milestone"] = (upcoming.get("name") or upcoming["key"]) if upcoming else ""
        context["progress_percent"] = (
            round(100 * len(completed) / len(milestones)) if milestones else 0
        )
    return context


def personalisation_context(
    *, rule: Rule, end_user: EndUser, facts: dict[str, Any]
) -> dict[str, Any]:
    """`personalisation_contexts` for one end user."""
    return personalisation_contexts(rule=rule, end_users=[end_user], facts={end_user.pk: facts})[
        end_user.pk
    ]


MESSAGE_TEXT_FIELDS = ("title", "body", "cta_label", "email_subject")


def message_document(message: Message) -> dict[str, Any]:
    """A message's translatable texts (onboarding/translations.py registers them)."""
    return {name: getattr(message, name) for name in MESSAGE_TEXT_FIELDS}


def _in_their_language(rule: Rule, message: Message, end_user: EndUser | None) -> Any:
    """`message` (the rule's, or an experiment's variant of it) with its texts in the language
    the person last asked for."""
    if end_user is None or not end_user.locale:
        return message
    texts = translations.draft_translations(
        workspace_id=rule.workspace_id, kind="message", key=message.key
    )
    if not texts:
        return message
    localised = translations.localise_for_person(
        kind="message",
        document=message_document(message),
        texts=texts,
        requested=end_user.locale,
        default=rule.workspace.default_locale,
    )
    copy = Message(
        **{f.attname: getattr(message, f.attname) for f in Message._meta.concrete_fields}
    )
    for name in MESSAGE_TEXT_FIELDS:
        setattr(copy, name, localised[name])
    return copy


def _render(
    *,
    rule: Rule,
    context: dict[str, Any],
    facts: dict[str, Any],
    now: datetime,
    message: Message | None = None,
    end_user: EndUser | None = None,
) -> dict:
    message = _in_their_language(rule, message or rule.message, end_user)
    body = personalisation.render_markdown_body(message.body, context)
    title = personalisation.render_text(message.title, context)
    cta = None
    if message.cta_label:
        url = personalisation.render_text(message.cta_url, context)
        try:
            # Checked again once filled in: a trait (which a page may set when identity
            # verification is off) must not turn the link into `javascript:` or another site.
            validation.check_link(url)
        except ValidationError:
            logger.warning("rule %s: its call to action became %r; sent without it", rule.pk, url)
        else:
            cta = {"label": personalisation.render_text(message.cta_label, context), "url": url}
    subject = personalisation.render_text(message.email_subject or message.title, context)
    return {
        "style": message.style,
        "title": title,
        "body_html": body.html,
        "body_text": body.text,
        "cta": cta,
        "subject": subject,
        "facts": {k: v for k, v in facts.items() if not k.endswith("_id")},
        "occurred_at": now.isoformat(),
        **queries.trigger_fields(message),
    }


def _webhook_body(
    *, rule: Rule, endpoint: WebhookEndpoint, end_user: EndUser, payload: dict, uid: str, test: bool
) -> dict:
    if endpoint.payload_format == WebhookEndpoint.Format.SLACK:
        lines = [f"*{payload['title']}*", payload["body_text"], f"End user: {end_user.external_id}"]
        return {"text": "\n".join(line for line in lines if line)}
    return {
        "id": uid,
        "type": "rule.fired",
        "test": test,
        "created_at": payload["occurred_at"],
        "workspace": rule.workspace.slug,
        "rule": {"key": rule.key, "name": rule.name, "trigger": rule.trigger},
        "end_user": {
            "id": end_user.external_id,
            "traits": end_user.traits,
            "lifecycle_stage": end_user.lifecycle_stage,
        },
        "facts": payload["facts"],
        "message": {"title": payload["title"], "text": payload["body_text"], "cta": payload["cta"]},
    }


@dataclass
class _Caps:
    """Frequency caps of a workspace and what each end user already received within them
    (one count query per capped channel for a whole batch; the batch's own deliveries are
    added as they are made)."""

    caps: dict[str, FrequencyCap]
    used: dict[tuple[int, str], int]

    @classmethod
    def load(cls, *, workspace_id: int, end_user_ids: list[int], now: datetime) -> _Caps:
        caps = {c.channel: c for c in FrequencyCap.objects.filter(workspace=workspace_id)}
        used: dict[tuple[int, str], int] = defaultdict(int)
        for channel, cap in caps.items():
            counts = (
                Delivery.objects.filter(
                    end_user_id__in=end_user_ids,
                    channel=channel,
                    is_test=False,
                    status__in=_LIVE_STATUSES,
                    created_at__gt=now - cap.period,
                )
                .values("end_user_id")
                .annotate(n=Count("id"))
                .values_list("end_user_id", "n")
            )
            for end_user_id, n in counts:
                used[(end_user_id, channel)] = n
        return cls(caps=caps, used=used)

    def reason(self, end_user_id: int, channel: str) -> str:
        cap = self.caps.get(channel)
        if cap is None or self.used[(end_user_id, channel)] < cap.limit:
            return ""
        return f"frequency cap: {cap}"

    def count(self, delivery: Delivery) -> None:
        if delivery.status != Delivery.Status.SKIPPED:
            self.used[(delivery.end_user_id, delivery.channel)] += 1


def _new_delivery(
    *,
    rule: Rule,
    end_user: EndUser,
    channel: str,
    occurrence: str,
    payload: dict,
    now: datetime,
    cap_reason: str = "",
    unsubscribed: bool = False,
    is_test: bool = False,
    email_override: str = "",
) -> Delivery:
    delivery = Delivery(
        workspace_id=rule.workspace_id,
        rule=rule,
        end_user=end_user,
        channel=channel,
        occurrence=occurrence,
        is_test=is_test,
        payload=payload,
        created_at=now,
        next_attempt_at=now,
        retry_until=now + RETRY_WINDOW,
    )
    reason = cap_reason
    if channel == Channel.EMAIL:
        to_end_user = not rule.email_addresses() and not email_override
        traits = end_user.traits if isinstance(end_user.traits, dict) else {}
        recipients = [email_override] if email_override else rule.email_addresses()
        if to_end_user and traits.get("email"):
            recipients = [str(traits["email"])]
        delivery.recipient = ", ".join(recipients)
        delivery.payload = {**payload, "to_end_user": to_end_user}
        if not recipients:
            reason = reason or "no e-mail address: the end user has no email trait"
        elif to_end_user and unsubscribed:
            reason = reason or "the end user unsubscribed from e-mail"
    elif channel == Channel.WEBHOOK and rule.webhook is not None:
        endpoint = rule.webhook
        delivery.recipient = endpoint.url
        body = _webhook_body(
            rule=rule,
            endpoint=endpoint,
            end_user=end_user,
            payload=payload,
            uid=str(delivery.uid),
            test=is_test,
        )
        delivery.payload = {**payload, "webhook_body": body}
        if not endpoint.is_active:
            reason = reason or "the webhook endpoint is switched off"
    if reason:
        delivery.status = Delivery.Status.SKIPPED
        delivery.reason = reason
        delivery.next_attempt_at = None
    elif channel == Channel.IN_APP:
        # Recorded as sent in the firing's own transaction and pushed right after its commit
        # (no second transaction, no task): the channel layer is at most once anyway, and a
        # message the user has not shown is pushed again when they next connect.
        delivery.status, delivery.sent_at, delivery.attempts = Delivery.Status.SENT, now, 1
        delivery.next_attempt_at = None
    return delivery


def _enqueue(delivery_ids: Iterable[int]) -> None:
    from engagement import tasks

    for delivery_id in delivery_ids:
        transaction.on_commit(partial(tasks.deliver.delay, delivery_id))


def _save_deliveries(deliveries: list[Delivery], now: datetime) -> None:
    """Insert the deliveries (one statement), log the in-app ones' attempt, and arrange what
    happens after commit: in-app pushes, and a `deliver` task per pending e-mail or webhook."""
    Delivery.objects.bulk_create(deliveries)
    pushed = [d for d in deliveries if d.channel == Channel.IN_APP and d.sent_at is not None]
    DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(delivery=d, number=1, at=now, succeeded=True) for d in pushed
    )
    if pushed:
        transaction.on_commit(partial(_push_in_app, pushed))
    _enqueue(d.pk for d in deliveries if d.status == Delivery.Status.PENDING)


def _push_in_app(deliveries: list[Delivery]) -> None:
    # One transaction for the batch's sequence numbers instead of a commit per push.
    with transaction.atomic():
        for delivery in deliveries:
            push_to_end_user(end_user_id=delivery.end_user_id, message=_in_app_message(delivery))


@dataclass(frozen=True)
class Firing:
    """One end user and occurrence to fire a rule for, and the facts the message may show."""

    end_user_id: int
    occurrence: str = "once"
    facts: dict[str, Any] = field(default_factory=dict)


# How many firings share one transaction in a sweep: fewer commits, short enough row locks.
FIRE_CHUNK = 100


def rule_fire(
    *,
    rule: Rule,
    end_user_id: int,
    occurrence: str,
    facts: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> list[Delivery]:
    """Fire `rule` for one end user and occurrence: one delivery per channel (some may be
    skipped, e.g. by a frequency cap), at most once per occurrence. Returns the new deliveries
    ([] when the rule had fired already or the user is not in the rule's segment)."""
    return rule_fire_many(
        rule=rule, firings=[Firing(end_user_id, occurrence, facts or {})], now=now
    )


def rule_fire_many(
    *, rule: Rule, firings: Sequence[Firing], now: datetime | None = None
) -> list[Delivery]:
    """`rule_fire` for several end users, FIRE_CHUNK of them per transaction (the sweep)."""
    now = now or timezone.now()
    deliveries: list[Delivery] = []
    for start in range(0, len(firings), FIRE_CHUNK):
        chunk = firings[start : start + FIRE_CHUNK]
        try:
            deliveries += _fire_chunk(rule, chunk, now)
        except IntegrityError:
            # Another process fired one of these first; that one stands. Fire the others
            # one by one so they still go.
            if len(chunk) > 1:
                for firing in chunk:
                    deliveries += rule_fire_many(rule=rule, firings=[firing], now=now)
    return deliveries


def _fire_chunk(rule: Rule, firings: Sequence[Firing], now: datetime) -> list[Delivery]:
    with transaction.atomic():
        # Row locks (in id order, so two batches cannot deadlock) serialise every firing for
        # these people: caps count what is there, and "once per occurrence" holds.
        end_users = {
            end_user.pk: end_user
            for end_user in EndUser.objects.select_for_update()
            .filter(pk__in={f.end_user_id for f in firings}, workspace_id=rule.workspace_id)
            .order_by("pk")
        }
        done = set(
            Delivery.objects.filter(
                rule=rule,
                end_user_id__in=list(end_users),
                occurrence__in={f.occurrence for f in firings},
                is_test=False,
            ).values_list("end_user_id", "occurrence")
        )
        if rule.segment is not None:
            prefetch_related_objects([rule.segment], "conditions")
        todo: list[Firing] = []
        for firing in firings:
            key = (firing.end_user_id, firing.occurrence)
            end_user = end_users.get(firing.end_user_id)
            if end_user is None or key in done:
                continue
            done.add(key)
            if segment_matches(segment=rule.segment, end_user=end_user):
                todo.append(firing)
        if not todo:
            return []
        ids = sorted({f.end_user_id for f in todo})
        caps = _Caps.load(workspace_id=rule.workspace_id, end_user_ids=ids, now=now)
        unsubscribed: set[int] = set()
        if rule.send_email and not rule.email_addresses():
            unsubscribed = set(
                Unsubscription.objects.filter(end_user_id__in=ids).values_list(
                    "end_user_id", flat=True
                )
            )
        contexts = personalisation_contexts(
            rule=rule,
            end_users=[end_users[i] for i in ids],
            facts={f.end_user_id: f.facts for f in todo},
        )
        deliveries: list[Delivery] = []
        for firing in todo:
            end_user = end_users[firing.end_user_id]
            message, experiment_reason = _experiment_message(rule, end_user, now)
            payload = _render(
                rule=rule,
                context=contexts[end_user.pk],
                facts=firing.facts,
                now=now,
                message=message,
                end_user=end_user,
            )
            for channel in rule.channels():
                delivery = _new_delivery(
                    rule=rule,
                    end_user=end_user,
                    channel=channel,
                    occurrence=firing.occurrence,
                    payload=payload,
                    now=now,
                    cap_reason=experiment_reason or caps.reason(end_user.pk, channel),
                    unsubscribed=end_user.pk in unsubscribed,
                )
                caps.count(delivery)
                deliveries.append(delivery)
        _save_deliveries(deliveries, now)
    return deliveries


def _experiment_message(rule: Rule, end_user: EndUser, now: datetime) -> tuple[Message, str]:
    """The message this person gets from the rule when its message runs as an experiment
    (onboarding/experiments.py): their variant's, or the rule's own with a reason to skip it
    (a holdout); the exposure is recorded in the firing's transaction."""
    key, exposure = experiments.message_for(
        end_user=end_user, message_key=rule.message.key, now=now
    )
    if exposure is not None:
        experiments.exposures_record(exposures=[exposure], page_url="", at=now)
    if key is None:
        return rule.message, "experiment: this person sees no message (holdout or variant)"
    if key == rule.message.key:
        return rule.message, ""
    variant = Message.objects.filter(workspace_id=rule.workspace_id, key=key).first()
    if variant is None:
        return rule.message, f"experiment: the variant's message {key!r} no longer exists"
    return variant, ""


def rule_send_test(*, rule: Rule, end_user: EndUser, email_override: str = "") -> list[Delivery]:
    """Send the rule's message to one end user now over all its channels, marked as a test:
    no segment, cap or once-per-occurrence check, and the webhook body says "test": true."""
    now = timezone.now()
    facts = {"test": True}
    with transaction.atomic():
        context = personalisation_context(rule=rule, end_user=end_user, facts=facts)
        payload = _render(rule=rule, context=context, facts=facts, now=now, end_user=end_user)
        unsubscribed = Unsubscription.objects.filter(end_user=end_user).exists()
        deliveries = [
            _new_delivery(
                rule=rule,
                end_user=end_user,
                channel=channel,
                occurrence=f"test:{uuid.uuid4()}",
                payload=payload,
                now=now,
                unsubscribed=unsubscribed,
                is_test=True,
                email_override=email_override,
            )
            for channel in rule.channels()
        ]
        _save_deliveries(deliveries, now)
    return deliveries


def _live_rules_query() -> QuerySet[Rule]:
    return Rule.objects.select_related(
        "workspace", "message", "webhook", "segment", "journey", "milestone"
    )


def rules_fire_for_milestone(*, workspace_id: int, end_user_id: int, milestone_id: int) -> int:
    """Enqueue `fire_rule` for each live rule on this milestone. No query when none is (the
    rule index); the firing itself happens off the write path. Returns how many."""
    rule_ids = rule_index.for_workspace(workspace_id).milestone_rules.get(milestone_id, [])
    for rule_id in rule_ids:
        _enqueue_firing(rule_id, end_user_id, ONCE, {"milestone_id": milestone_id})
    return len(rule_ids)


def rules_fire_for_journey(
    *, workspace_id: int, end_user_id: int, journey_id: int, trigger: str
) -> int:
    """`rules_fire_for_milestone` for Trigger.JOURNEY_STARTED or Trigger.PQL_REACHED."""
    journey_rules = rule_index.for_workspace(workspace_id).journey_rules
    rule_ids = journey_rules.get((trigger, journey_id), [])
    for rule_id in rule_ids:
        _enqueue_firing(rule_id, end_user_id, ONCE, {})
    return len(rule_ids)


def rules_fire_for_events(
    *,
    workspace_id: int,
    end_user_ids: Iterable[int],
    event_ids: Iterable[int],
    event_names: Iterable[str] | None = None,
) -> int:
    """Event rules for a batch of recorded events and in-app message feedback ($message_*).
    (Trait thresholds are heard through end_user_updated.) This runs on the write path, so it only
    matches (the rules from the rule index, one query for the events whose names a rule watches
    or that are feedback, one for what already fired) and enqueues a `fire_rule` task per new
    match. Returns how many. `event_names`, the batch's names when the caller knows them, spares
    the query when none is watched (most batches)."""
    by_name = rule_index.for_workspace(workspace_id).event_rules
    if event_names is not None and not {*by_name, *MESSAGE_EVENTS}.intersection(event_names):
        return 0
    matches: dict[tuple[int, int, str], dict[str, Any]] = {}
    events = Event.objects.filter(
        pk__in=list(event_ids), name__in=[*by_name, *MESSAGE_EVENTS]
    ).order_by("timestamp", "id")
    for event in events:
        if event.name in MESSAGE_EVENTS:
            _message_feedback(event)
            continue
        properties = event.properties if isinstance(event.properties, dict) else {}
        for rule in by_name.get(event.name, []):
            if rule.event_matches(event.name, properties):
                occurrence = ONCE if rule.once_per_user else f"event:{event.client_id}"
                facts = {"event": event.name, "event_id": str(event.client_id)}
                matches.setdefault((rule.id, event.end_user_id, occurrence), facts)
    if matches:
        fired = Delivery.objects.filter(
            rule_id__in={rule_id for rule_id, _, _ in matches},
            end_user_id__in={user_id for _, user_id, _ in matches},
            occurrence__in={occurrence for _, _, occurrence in matches},
            is_test=False,
        ).values_list("rule_id", "end_user_id", "occurrence")
        for key in set(fired):
            matches.pop(key, None)
    for (rule_id, end_user_id, occurrence), facts in matches.items():
        _enqueue_firing(rule_id, end_user_id, occurrence, facts)
    return len(matches)


def _threshold_facts(rule: Rule | IndexedRule, traits: Any) -> dict[str, Any] | None:
    """The facts of a trait rule whose threshold this end user's traits reach, else None."""
    value = traits.get(rule.trait) if isinstance(traits, dict) else None
    # JSON comparison across types is loose in both databases; insist on a number.
    if isinstance(value, bool) or not isinstance(value, int | float) or rule.threshold is None:
        return None
    if value < rule.threshold:
        return None
    return {"trait": rule.trait, "value": value, "threshold": rule.threshold}


def rules_fire_for_traits(
    *, workspace_id: int, end_user_id: int, traits_changed: Iterable[str] | None = None
) -> int:
    """Trait threshold rules for one end user whose traits changed (`traits_changed`; None:
    any): enqueue `fire_rule` for each rule whose threshold the new value reaches and that has
    not fired for this person yet. Two small queries, and none when no rule watches the traits
    that changed. Returns how many firings were enqueued."""
    rules = rule_index.for_workspace(workspace_id).trait_rules
    if traits_changed is not None:
        changed = set(traits_changed)
        rules = [rule for rule in rules if rule.trait in changed]
    if not rules:
        return 0
    traits = (
        EndUser.objects.filter(pk=end_user_id, workspace_id=workspace_id)
        .values_list("traits", flat=True)
        .first()
    )
    crossed = {
        rule.id: facts for rule in rules if (facts := _threshold_facts(rule, traits)) is not None
    }
    if not crossed:
        return 0
    fired = set(
        Delivery.objects.filter(
            rule_id__in=list(crossed), end_user_id=end_user_id, occurrence=ONCE, is_test=False
        ).values_list("rule_id", flat=True)
    )
    for rule_id, facts in crossed.items():
        if rule_id not in fired:
            _enqueue_firing(rule_id, end_user_id, ONCE, facts)
    return len(crossed) - len(fired)


def _enqueue_firing(rule_id: int, end_user_id: int, occurrence: str, facts: dict) -> None:
    from engagement import tasks

    transaction.on_commit(partial(tasks.fire_rule.delay, rule_id, end_user_id, occurrence, facts))


def rule_fire_by_id(
    *, rule_id: int, end_user_id: int, occurrence: str, facts: dict[str, Any]
) -> list[Delivery]:
    """`rule_fire` for a task: the rule may have been paused or deleted since it matched."""
    rule = _live_rules_query().filter(pk=rule_id, is_paused=False).first()
    if rule is None:
        return []
    facts = {**facts, **_trigger_facts(rule)}
    return rule_fire(rule=rule, end_user_id=end_user_id, occurrence=occurrence, facts=facts)


def _trigger_facts(rule: Rule) -> dict[str, Any]:
    """The key of the journey or milestone a rule fired on, for its message and webhook; read
    when it fires so that matching it on the write path needs no query."""
    if rule.trigger == Trigger.MILESTONE_COMPLETED and rule.milestone is not None:
        return {"milestone": rule.milestone.key}
    if rule.trigger in (Trigger.JOURNEY_STARTED, Trigger.PQL_REACHED):
        return {"journey": rule.journey.key if rule.journey is not None else ""}
    return {}


def rules_set_paused(*, rules: QuerySet[Rule], paused: bool) -> int:
    """Pause or resume rules (an admin action) in one statement; returns how many. An update
    sends no post_save, so the rule indexes of their workspaces are forgotten here."""
    workspace_ids = set(rules.values_list("workspace_id", flat=True))
    count = rules.update(is_paused=paused)
    for workspace_id in workspace_ids:
        rule_index.forget(workspace_id=workspace_id)
    return count


def _message_feedback(event: Event) -> None:
    """$message_shown / _clicked / _dismissed mark the in-app delivery they name."""
    try:
        uid = uuid.UUID(str((event.properties or {}).get("message", "")))
    except ValueError:
        return
    column = {
        "$message_shown": "shown_at",
        "$message_clicked": "clicked_at",
        "$message_dismissed": "dismissed_at",
    }[event.name]
    unmarked = {f"{column}__isnull": True}
    Delivery.objects.filter(
        uid=uid, end_user_id=event.end_user_id, channel=Channel.IN_APP, **unmarked
    ).update(**{column: event.timestamp})


def end_user_connected(*, workspace_id: int, end_user_id: int) -> int:
    """The end user opened the app: push the in-app messages they have not seen yet, and check
    trait thresholds. Returns how many messages were pushed. No query when the workspace has
    no trait rule and no rule that sends in-app or did so within IN_APP_KEPT_FOR."""
    # `hello` carries traits (heard through end_user_updated); this also catches a change made
    # where no signal is sent, such as an admin editing the traits.
    rules_fire_for_traits(workspace_id=workspace_id, end_user_id=end_user_id)
    kept_since = timezone.now() - IN_APP_KEPT_FOR
    index = rule_index.for_workspace(workspace_id)
    if not index.in_app_possible_since(kept_since - RULE_CLOCK_MARGIN):
        return 0
    waiting = Delivery.objects.filter(
        end_user_id=end_user_id,
        channel=Channel.IN_APP,
        status=Delivery.Status.SENT,
        shown_at__isnull=True,
        dismissed_at__isnull=True,
        created_at__gte=kept_since,
    ).select_related("rule")
    pushed = 0
    for delivery in waiting.order_by("created_at"):
        push_to_end_user(end_user_id=end_user_id, message=_in_app_message(delivery))
        pushed += 1
    return pushed


def end_user_unsubscribe(*, token: str) -> EndUser | None:
    """Honour an e-mail's unsubscribe link. Raises signing.BadSignature for a forged token;
    returns None when the end user has been erased meanwhile (nothing left to mail)."""
    end_user = EndUser.objects.filter(pk=signing.loads(token, salt=UNSUBSCRIBE_SALT)).first()
    if end_user is not None:
        Unsubscription.objects.get_or_create(end_user=end_user)
    return end_user


def unsubscribe_url(end_user: EndUser) -> str:
    token = signing.dumps(end_user.pk, salt=UNSUBSCRIBE_SALT)
    return settings.PUBLIC_URL.rstrip("/") + reverse("engagement:unsubscribe", args=[token])


# --- the time sweep ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepResult:
    rules: int
    fired: int
    enqueued: int


# A trait sweep after the first looks only at end users seen (identify bumps last_seen_at)
# since its previous pass, less this margin for transactions that committed late.
TRAIT_SWEEP_OVERLAP = timedelta(minutes=5)


def _trait_candidates(rule: Rule, *, seen_since: datetime | None) -> QuerySet[EndUser]:
    """End users whose trait reaches the rule's threshold and for whom it has not fired, by id.
    The comparison runs in the database (a JSON key transform: numbers compare as numbers on
    both backends; other JSON types compare loosely and are dropped by `_threshold_facts`)."""
    fired = Delivery.objects.filter(rule=rule, end_user=OuterRef("pk"), is_test=False)
    candidates = (
        EndUser.objects.filter(workspace_id=rule.workspace_id)
        .alias(trait_value=KeyTransform(rule.trait, "traits"))
        .filter(trait_value__gte=rule.threshold)
        .filter(~Exists(fired))
    )
    if seen_since is not None:
        candidates = candidates.filter(last_seen_at__gte=seen_since)
    return candidates.order_by("pk")


def _count_fired(deliveries: list[Delivery]) -> int:
    return len({(d.end_user_id, d.occurrence) for d in deliveries})


def _fire_trait_rule(rule: Rule, *, seen_since: datetime | None) -> int:
    """Fire `rule` for at most SWEEP_BATCH end users, walking the candidates by id so values
    that are not numbers (which the database lets through) never block the ones behind."""
    fired = 0
    after = 0
    while fired < SWEEP_BATCH:
        rows = list(
            _trait_candidates(rule, seen_since=seen_since)
            .filter(pk__gt=after)
            .values_list("pk", "traits")[:SWEEP_BATCH]
        )
        firings = [
            Firing(end_user_id, ONCE, facts)
            for end_user_id, traits in rows
            if (facts := _threshold_facts(rule, traits)) is not None
        ]
        fired += _count_fired(rule_fire_many(rule=rule, firings=firings))
        if len(rows) < SWEEP_BATCH:
            break
        after = rows[-1][0]
    return fired


def _deadline_candidates(rule: Rule, low: datetime, high: datetime) -> QuerySet:
    """(end_user_id, moment) pairs whose deadline (moment + delay) fell in [low, high], in
    moment order; each is one range scan on an index over the moment column."""
    if rule.delay is None:
        raise ValueError(f"rule {rule.pk} has no delay")
    start, end = low - rule.delay, high - rule.delay
    if rule.trigger == Trigger.MILESTONE_NOT_REACHED:
        if rule.milestone is None:
            raise ValueError(f"rule {rule.pk} has no milestone")
        reached = MilestoneCompletion.objects.filter(
            end_user_id=OuterRef("end_user_id"), milestone_id=rule.milestone.pk
        )
        if rule.counted_from == Rule.CountedFrom.PREVIOUS_MILESTONE:
            previous = previous_milestone(rule.milestone)
            return (
                MilestoneCompletion.objects.filter(
                    milestone=previous, completed_at__gte=start, completed_at__lte=end
                )
                .filter(~Exists(reached))
                .order_by("completed_at", "id")
                .values_list("end_user_id", "completed_at")
            )
        return (
            JourneyProgress.objects.filter(
                journey_id=rule.milestone.journey_id, started_at__gte=start, started_at__lte=end
            )
            .filter(~Exists(reached))
            .order_by("started_at", "id")
            .values_list("end_user_id", "started_at")
        )
    column = "last_seen_at" if rule.trigger == Trigger.INACTIVE else "signed_up_at"
    return (
        EndUser.objects.filter(
            workspace_id=rule.workspace_id, **{f"{column}__gte": start, f"{column}__lte": end}
        )
        .order_by(column, "id")
        .values_list("id", column)
    )


def _sweep_rule(rule: Rule, now: datetime) -> int:
    low = rule.swept_until or rule.created_at
    if rule.is_paused or low >= now:
        # A paused rule lets its deadlines pass; resuming it does not send a backlog.
        Rule.objects.filter(pk=rule.pk).update(swept_until=now)
        return 0
    if rule.trigger == Trigger.TRAIT_THRESHOLD:
        # The first pass catches up everyone already over the threshold; later passes only
        # people seen since (end_user_updated fires the rule at once; this is the safety net).
        seen_since = rule.swept_until - TRAIT_SWEEP_OVERLAP if rule.swept_until else None
        fired = _fire_trait_rule(rule, seen_since=seen_since)
        if fired < SWEEP_BATCH:
            Rule.objects.filter(pk=rule.pk).update(swept_until=now)
        return fired
    rows = list(_deadline_candidates(rule, low, now)[:SWEEP_BATCH])
    delay = rule.delay or timedelta(0)
    quiet = rule.trigger == Trigger.INACTIVE and not rule.once_per_user
    firings = []
    for end_user_id, moment in rows:
        occurrence = f"quiet-since:{moment.isoformat()}" if quiet else ONCE
        facts: dict[str, Any] = {"deadline": (moment + delay).isoformat()}
        if rule.milestone is not None:
            facts["milestone"] = rule.milestone.key
        firings.append(Firing(end_user_id, occurrence, facts))
    fired = _count_fired(rule_fire_many(rule=rule, firings=firings, now=now))
    # A full batch may have left deadlines for the next pass; resume from the last one seen
    # (inclusive; firing is idempotent, so a boundary row seen twice sends nothing twice).
    reached = rows[-1][1] + delay if len(rows) == SWEEP_BATCH else now
    Rule.objects.filter(pk=rule.pk).update(swept_until=reached)
    return fired


def deliveries_enqueue_due(*, now: datetime | None = None) -> int:
    """Enqueue retries that are due and pending deliveries whose task never ran."""
    now = now or timezone.now()
    due = Delivery.objects.filter(
        Q(status=Delivery.Status.RETRYING, next_attempt_at__lte=now)
        | Q(status=Delivery.Status.PENDING, next_attempt_at__lte=now - STALE_PENDING_AFTER)
    ).values_list("pk", flat=True)[:SWEEP_BATCH]
    ids = list(due)
    with transaction.atomic():
        _enqueue(ids)
    return len(ids)


def _alert_missing_targets(rule: Rule, now: datetime) -> int:
    """Fire a team alert rule once per flagged step and missing selector (as end users' widgets
    reported it): a step stays flagged until fixed, and a published new selector that goes
    missing too (a fix that did not work) alerts again. The delivery names the latest person
    whose target was missing (a delivery is always about someone)."""
    if rule.is_paused:
        return 0
    fired = 0
    walkthroughs = Walkthrough.objects.filter(workspace_id=rule.workspace_id).select_related(
        "workspace"
    )
    for flag in walkthrough_funnel.missing_target_flags(walkthroughs=list(walkthroughs)):
        latest = (
            Event.objects.filter(
                workspace_id=rule.workspace_id,
                name="$step_target_missing",
                properties__walkthrough=flag.walkthrough.key,
                properties__step=flag.index,
            )
            .order_by("-timestamp")
            .values_list("end_user_id", "properties__selector")
            .first()
        )
        if latest is None:
            continue
        end_user_id, selector = latest[0], str(latest[1] or flag.selector)
        digest = hashlib.sha256(selector.encode()).hexdigest()[:16]
        occurrence = f"missing-target:{flag.walkthrough.pk}:{flag.index}:{digest}"
        if Delivery.objects.filter(rule=rule, occurrence=occurrence, is_test=False).exists():
            continue
        facts = {
            "walkthrough": flag.walkthrough.key,
            "walkthrough_name": flag.walkthrough.name,
            "step_number": flag.index + 1,
            "step_title": flag.title,
            "selector": selector,
            "people_reached": flag.reached,
            "people_missing": flag.missing,
            "missing_percent": round(100 * flag.share),
            "threshold_percent": flag.threshold,
        }
        fired += _count_fired(
            rule_fire(
                rule=rule, end_user_id=end_user_id, occurrence=occurrence, facts=facts, now=now
            )
        )
    return fired


def rules_sweep(*, now: datetime | None = None) -> SweepResult:
    """The periodic pass (Celery beat in production, engagement.scheduler embedded): fire the
    inaction and time rules whose deadlines passed since the last pass and the team alerts on
    steps whose target is missing too often, then enqueue due retries."""
    now = now or timezone.now()
    rules = Rule.objects.filter(trigger__in=TIME_TRIGGERS).select_related(
        "workspace", "message", "webhook", "segment", "journey", "milestone"
    )
    fired = 0
    count = 0
    for rule in rules:
        count += 1
        try:
            fired += _sweep_rule(rule, now)
        except Exception:
            # One broken rule must not stop the others; the next pass tries it again.
            logger.exception("engagement sweep failed for rule %s", rule.pk)
    for rule in Rule.objects.filter(trigger__in=TEAM_ALERTS).select_related(
        "workspace", "message", "webhook"
    ):
        count += 1
        try:
            fired += _alert_missing_targets(rule, now)
        except Exception:
            logger.exception("engagement sweep failed for alert rule %s", rule.pk)
    return SweepResult(rules=count, fired=fired, enqueued=deliveries_enqueue_due(now=now))


# --- sending ----------------------------------------------------------------------------------


def _in_app_message(delivery: Delivery) -> dict[str, Any]:
    payload = delivery.payload
    return {
        "type": "message",
        "id": str(delivery.uid),
        "rule": delivery.rule.key,
        "style": payload["style"],
        "title": payload["title"],
        "body_html": payload["body_html"],
        "cta": payload["cta"],
        # Only when the message has a trigger (deliveries made before it existed have none).
        **{name: payload[name] for name in TRIGGER_FIELDS if name in payload},
    }


def _send_email(delivery: Delivery) -> webhooks.Outcome:
    payload = delivery.payload
    to_end_user = payload.get("to_end_user", False)
    if to_end_user and Unsubscription.objects.filter(end_user_id=delivery.end_user_id).exists():
        return webhooks.Outcome(False, None, "skip: the end user unsubscribed from e-mail")
    context = {**payload, "workspace_name": delivery.rule.workspace.name, "unsubscribe_url": ""}
    headers = {"X-Milepost-Delivery": str(delivery.uid)}
    if to_end_user:
        context["unsubscribe_url"] = unsubscribe_url(delivery.end_user)
        headers["List-Unsubscribe"] = f"<{context['unsubscribe_url']}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email = EmailMultiAlternatives(
        subject=payload["subject"],
        body=render_to_string("engagement/email.txt", context),
        to=[address.strip() for address in delivery.recipient.split(",")],
        headers=headers,
    )
    email.attach_alternative(render_to_string("engagement/email.html", context), "text/html")
    try:
        email.send()
    except (smtplib.SMTPException, OSError) as error:
        return webhooks.Outcome(False, None, f"{type(error).__name__}: {error}"[:500])
    return webhooks.Outcome(True, None, "")


def _send_webhook(delivery: Delivery, now: datetime) -> webhooks.Outcome:
    endpoint = delivery.rule.webhook
    if endpoint is None:
        return webhooks.Outcome(False, None, "skip: the rule no longer has a webhook")
    body = json.dumps(delivery.payload["webhook_body"], separators=(",", ":")).encode()
    return webhooks.post(
        url=delivery.recipient,
        secret=endpoint.secret,
        body=body,
        delivery_id=str(delivery.uid),
        timestamp=int(now.timestamp()),
        allow_private=EngagementSettings.private_addresses_allowed(delivery.workspace_id),
    )


def _retry_at(delivery: Delivery, now: datetime) -> datetime | None:
    """Exponential backoff (30 s, 1 min, 2 min, …) with a last try at the window's end."""
    delay = RETRY_FIRST_DELAY * (2 ** max(delivery.attempts - 1, 0))
    until = delivery.retry_until or delivery.created_at + RETRY_WINDOW
    if now + delay <= until:
        return now + delay
    return until if now < until - RETRY_FIRST_DELAY else None


def delivery_send(*, delivery_id: int, now: datetime | None = None) -> Delivery | None:
    """Send one delivery if it is due; idempotent (a sent delivery is never sent again)."""
    now = now or timezone.now()
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(of=("self",))
            .select_related("rule__workspace", "rule__webhook", "end_user")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.status not in (
            Delivery.Status.PENDING,
            Delivery.Status.RETRYING,
        ):
            return delivery
        if delivery.status == Delivery.Status.RETRYING and (delivery.next_attempt_at or now) > now:
            return delivery
        if delivery.channel == Channel.IN_APP:
            push_to_end_user(end_user_id=delivery.end_user_id, message=_in_app_message(delivery))
            outcome = webhooks.Outcome(True, None, "")
        elif delivery.channel == Channel.EMAIL:
            outcome = _send_email(delivery)
        else:
            outcome = _send_webhook(delivery, now)
        delivery.attempts += 1
        DeliveryAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            at=now,
            succeeded=outcome.succeeded,
            response_code=outcome.response_code,
            error=outcome.error,
        )
        delivery.response_code = outcome.response_code
        if outcome.succeeded:
            delivery.status, delivery.sent_at, delivery.reason = Delivery.Status.SENT, now, ""
            delivery.next_attempt_at = None
        elif outcome.error.startswith("skip: "):
            delivery.status, delivery.reason = Delivery.Status.SKIPPED, outcome.error[6:]
            delivery.next_attempt_at = None
        else:
            delivery.reason = outcome.error
            delivery.next_attempt_at = _retry_at(delivery, now)
            delivery.status = (
                Delivery.Status.RETRYING if delivery.next_attempt_at else Delivery.Status.FAILED
            )
        delivery.save(
            update_fields=[
                "attempts", "response_code", "status", "sent_at", "reason", "next_attempt_at",
            ]
        )  # fmt: skip
    return delivery


def delivery_resend(*, delivery: Delivery) -> Delivery:
    """Send a delivery again now (admin "re-send"), with a fresh 24-hour retry window."""
    now = timezone.now()
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk).update(
            status=Delivery.Status.PENDING,
            reason="",
            next_attempt_at=now,
            retry_until=now + RETRY_WINDOW,
        )
        _enqueue([delivery.pk])
    delivery.refresh_from_db()
    return delivery
