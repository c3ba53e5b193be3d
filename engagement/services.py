"""Engagement's writes: evaluate triggers, fire rules into deliveries, send deliveries.

Flow: onboarding's signals (after commit) → `rules_fire_for_*` → `rule_fire` (one transaction:
the end user's row is locked so frequency caps and "once per occurrence" hold under concurrent
events; one Delivery row per channel) → `tasks.deliver` enqueued on commit → `delivery_send`
(locks the delivery row while it sends, so a duplicate task waits and then finds it sent, and
a worker killed mid-send rolls back to pending and the broker hands the task to another).
Retries are rows with `next_attempt_at`, picked up by the periodic sweep: no long Celery ETAs.
"""

from __future__ import annotations

import json
import logging
import smtplib
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.fields.json import KeyTransform
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from engagement import personalisation, webhooks
from engagement.models import (
    TIME_TRIGGERS,
    Channel,
    Delivery,
    DeliveryAttempt,
    EngagementSettings,
    FrequencyCap,
    Rule,
    Trigger,
    Unsubscription,
    WebhookEndpoint,
    previous_milestone,
)
from onboarding import queries
from onboarding.models import (
    EndUser,
    Event,
    JourneyProgress,
    MilestoneCompletion,
    PublishedVersion,
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
SWEEP_BATCH = 5000
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


def personalisation_context(
    *, rule: Rule, end_user: EndUser, facts: dict[str, Any]
) -> dict[str, Any]:
    """The values a message's placeholders may use (see personalisation.FIELDS). Journey and
    milestone names come from the published journey, never from drafts."""
    traits = end_user.traits if isinstance(end_user.traits, dict) else {}
    name = str(traits.get("name") or "")
    milestone_id = rule.milestone_id or facts.get("milestone_id")
    journey_id = rule.journey_id or (rule.milestone.journey_id if rule.milestone else None)
    if journey_id is None:
        journey_id = (
            JourneyProgress.objects.filter(end_user=end_user, completed_at__isnull=True)
            .order_by("started_at", "id")
            .values_list("journey_id", flat=True)
            .first()
        )
    snapshot = (
        _published_journey(workspace_id=rule.workspace_id, journey_id=journey_id)
        if journey_id is not None
        else None
    )
    milestones: list[dict[str, Any]] = (snapshot or {}).get("milestones") or []
    published_names = {m["id"]: m.get("name") or m["key"] for m in milestones}
    milestone_name = published_names.get(milestone_id, "") if milestone_id else ""
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
        "milestone_name": milestone_name,
        "event_name": facts.get("event", ""),
    }
    if snapshot is not None:
        completed = set(
            MilestoneCompletion.objects.filter(
                end_user=end_user, milestone_id__in=list(published_names)
            ).values_list("milestone_id", flat=True)
        )
        upcoming = next_milestone(milestones, completed)
        context["journey_name"] = snapshot.get("name") or ""
        context["next_milestone"] = (upcoming.get("name") or upcoming["key"]) if upcoming else ""
        context["progress_percent"] = (
            round(100 * len(completed) / len(milestones)) if milestones else 0
        )
    return context


def _render(*, rule: Rule, end_user: EndUser, facts: dict[str, Any], now: datetime) -> dict:
    message = rule.message
    context = personalisation_context(rule=rule, end_user=end_user, facts=facts)
    body = personalisation.render_markdown_body(message.body, context)
    title = personalisation.render_text(message.title, context)
    cta = None
    if message.cta_label:
        cta = {
            "label": personalisation.render_text(message.cta_label, context),
            "url": personalisation.render_text(message.cta_url, context),
        }
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


def _capped(
    *, end_user: EndUser, channel: str, caps: dict[str, FrequencyCap], now: datetime
) -> str:
    cap = caps.get(channel)
    if cap is None:
        return ""
    sent = Delivery.objects.filter(
        end_user=end_user,
        channel=channel,
        is_test=False,
        status__in=_LIVE_STATUSES,
        created_at__gt=now - cap.period,
    ).count()
    return f"frequency cap: {cap}" if sent >= cap.limit else ""


def _new_delivery(
    *,
    rule: Rule,
    end_user: EndUser,
    channel: str,
    occurrence: str,
    payload: dict,
    now: datetime,
    caps: dict[str, FrequencyCap],
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
    reason = "" if is_test else _capped(end_user=end_user, channel=channel, caps=caps, now=now)
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
        elif to_end_user and Unsubscription.objects.filter(end_user=end_user).exists():
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
    return delivery


def _enqueue(delivery_ids: Iterable[int]) -> None:
    from engagement import tasks

    for delivery_id in delivery_ids:
        transaction.on_commit(partial(tasks.deliver.delay, delivery_id))


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
    now = now or timezone.now()
    try:
        with transaction.atomic():
            # The row lock serialises every firing for this person: caps count what is there.
            end_user = (
                EndUser.objects.select_for_update()
                .filter(pk=end_user_id, workspace_id=rule.workspace_id)
                .first()
            )
            if end_user is None:
                return []
            already = Delivery.objects.filter(
                rule=rule, end_user=end_user, occurrence=occurrence, is_test=False
            )
            if already.exists() or not segment_matches(segment=rule.segment, end_user=end_user):
                return []
            caps = {c.channel: c for c in FrequencyCap.objects.filter(workspace=rule.workspace_id)}
            payload = _render(rule=rule, end_user=end_user, facts=facts or {}, now=now)
            deliveries = [
                _new_delivery(
                    rule=rule,
                    end_user=end_user,
                    channel=channel,
                    occurrence=occurrence,
                    payload=payload,
                    now=now,
                    caps=caps,
                )
                for channel in rule.channels()
            ]
            for delivery in deliveries:
                delivery.save()
            _enqueue(d.pk for d in deliveries if d.status == Delivery.Status.PENDING)
    except IntegrityError:
        # Another process fired the same occurrence first; that one stands.
        return []
    return deliveries


def rule_send_test(*, rule: Rule, end_user: EndUser, email_override: str = "") -> list[Delivery]:
    """Send the rule's message to one end user now over all its channels, marked as a test:
    no segment, cap or once-per-occurrence check, and the webhook body says "test": true."""
    now = timezone.now()
    with transaction.atomic():
        payload = _render(rule=rule, end_user=end_user, facts={"test": True}, now=now)
        deliveries = [
            _new_delivery(
                rule=rule,
                end_user=end_user,
                channel=channel,
                occurrence=f"test:{uuid.uuid4()}",
                payload=payload,
                now=now,
                caps={},
                is_test=True,
                email_override=email_override,
            )
            for channel in rule.channels()
        ]
        for delivery in deliveries:
            delivery.save()
        _enqueue(d.pk for d in deliveries if d.status == Delivery.Status.PENDING)
    return deliveries


def _live_rules_query() -> QuerySet[Rule]:
    return Rule.objects.select_related(
        "workspace", "message", "webhook", "segment", "journey", "milestone"
    )


def _live_rules(workspace_id: int, triggers: Iterable[str]) -> QuerySet[Rule]:
    return _live_rules_query().filter(
        workspace_id=workspace_id, is_paused=False, trigger__in=list(triggers)
    )


def rules_fire_for_milestone(
    *, workspace_id: int, end_user_id: int, milestone_id: int
) -> list[Delivery]:
    rules = _live_rules(workspace_id, [Trigger.MILESTONE_COMPLETED]).filter(
        milestone_id=milestone_id
    )
    facts: dict[str, Any] = {"milestone_id": milestone_id}
    fired: list[Delivery] = []
    for rule in rules:
        if rule.milestone is not None:
            facts["milestone"] = rule.milestone.key
        fired += rule_fire(rule=rule, end_user_id=end_user_id, occurrence=ONCE, facts=facts)
    return fired


def rules_fire_for_journey(
    *, workspace_id: int, end_user_id: int, journey_id: int, trigger: str
) -> list[Delivery]:
    """`trigger` is Trigger.JOURNEY_STARTED or Trigger.PQL_REACHED."""
    fired: list[Delivery] = []
    for rule in _live_rules(workspace_id, [trigger]).filter(journey_id=journey_id):
        facts = {"journey": rule.journey.key if rule.journey else ""}
        fired += rule_fire(rule=rule, end_user_id=end_user_id, occurrence=ONCE, facts=facts)
    return fired


# The write path asks for a workspace's event and trait rules on every batch; each process
# keeps them for a few seconds (a saved or deleted rule clears its own process's copy at once,
# other processes see the change within the TTL).
WRITE_PATH_RULES_TTL = 5.0
_write_path_cache: dict[int, tuple[float, list[Rule]]] = {}


def _write_path_rules(workspace_id: int) -> list[Rule]:
    cached = _write_path_cache.get(workspace_id)
    if cached is not None and time.monotonic() - cached[0] < WRITE_PATH_RULES_TTL:
        return cached[1]
    rules = list(
        Rule.objects.filter(
            workspace_id=workspace_id,
            is_paused=False,
            trigger__in=[Trigger.EVENT, Trigger.TRAIT_THRESHOLD],
        )
    )
    _write_path_cache[workspace_id] = (time.monotonic(), rules)
    return rules


def write_path_rules_forget(*, workspace_id: int) -> None:
    _write_path_cache.pop(workspace_id, None)


def rules_fire_for_events(
    *, workspace_id: int, end_user_ids: Iterable[int], event_ids: Iterable[int]
) -> int:
    """Event rules for a batch of recorded events and in-app message feedback ($message_*).
    (Trait thresholds are heard through end_user_updated.) This runs on the write path, so it only
    matches (one query for the rules, one for the events whose names a rule watches, one for
    what already fired) and enqueues a `fire_rule` task per new match. Returns how many."""
    rules = _write_path_rules(workspace_id)
    by_name: dict[str, list[Rule]] = defaultdict(list)
    for rule in rules:
        if rule.trigger == Trigger.EVENT:
            by_name[rule.event_name].append(rule)
    matches: dict[tuple[int, int, str], dict[str, Any]] = {}
    events = Event.objects.filter(
        pk__in=list(event_ids), name__in=[*by_name, *MESSAGE_EVENTS]
    ).order_by("timestamp", "id")
    for event in events:
        if event.name in MESSAGE_EVENTS:
            _message_feedback(event)
            continue
        properties = event.properties if isinstance(event.properties, dict) else {}
        for rule in by_name[event.name]:
            if rule.event_matches(event.name, properties):
                occurrence = ONCE if rule.once_per_user else f"event:{event.client_id}"
                facts = {"event": event.name, "event_id": str(event.client_id)}
                matches.setdefault((rule.pk, event.end_user_id, occurrence), facts)
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


def _threshold_facts(rule: Rule, traits: Any) -> dict[str, Any] | None:
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
    rules = [r for r in _write_path_rules(workspace_id) if r.trigger == Trigger.TRAIT_THRESHOLD]
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
        rule.pk: facts for rule in rules if (facts := _threshold_facts(rule, traits)) is not None
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
    return rule_fire(rule=rule, end_user_id=end_user_id, occurrence=occurrence, facts=facts)


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
    trait thresholds. Returns how many messages were pushed."""
    # `hello` carries traits (heard through end_user_updated); this also catches a change made
    # where no signal is sent, such as an admin editing the traits.
    rules_fire_for_traits(workspace_id=workspace_id, end_user_id=end_user_id)
    waiting = Delivery.objects.filter(
        end_user_id=end_user_id,
        channel=Channel.IN_APP,
        status=Delivery.Status.SENT,
        shown_at__isnull=True,
        dismissed_at__isnull=True,
        created_at__gte=timezone.now() - IN_APP_KEPT_FOR,
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
        for end_user_id, traits in rows:
            facts = _threshold_facts(rule, traits)
            if facts is not None:
                new = rule_fire(rule=rule, end_user_id=end_user_id, occurrence=ONCE, facts=facts)
                fired += bool(new)
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
    fired = 0
    for end_user_id, moment in rows:
        quiet = rule.trigger == Trigger.INACTIVE and not rule.once_per_user
        occurrence = f"quiet-since:{moment.isoformat()}" if quiet else ONCE
        facts: dict[str, Any] = {"deadline": (moment + delay).isoformat()}
        if rule.milestone is not None:
            facts["milestone"] = rule.milestone.key
        new = rule_fire(
            rule=rule, end_user_id=end_user_id, occurrence=occurrence, facts=facts, now=now
        )
        fired += bool(new)
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


def rules_sweep(*, now: datetime | None = None) -> SweepResult:
    """The periodic pass (Celery beat in production, engagement.scheduler embedded): fire the
    inaction and time rules whose deadlines passed since the last pass, then enqueue due
    retries."""
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
