"""Engagement rules (who / when / what / where), their messages, webhook endpoints, frequency
caps and the delivery log.

A rule fires at most once per end user and occurrence: the delivery log's unique constraint
(rule, end user, occurrence, channel) is the guard, so a retried signal, a second sweep or two
workers racing can never send twice.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.db.models import Q
from django.utils import timezone

from engagement import personalisation, webhooks
from onboarding import validation
from onboarding.models import (
    ElementPresentTrigger,
    EndUser,
    Journey,
    Milestone,
    Segment,
    Workspace,
)


class Channel(models.TextChoices):
    IN_APP = "in_app", "In-app message"
    EMAIL = "email", "E-mail"
    WEBHOOK = "webhook", "Webhook"


class EngagementSettings(models.Model):
    """Per-workspace engagement policy. Only a superuser may allow private webhook addresses:
    on a shared host they would let a workspace reach the host's internal network."""

    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, related_name="engagement_settings"
    )
    allow_private_webhook_addresses = models.BooleanField(
        default=False,
        help_text="Allow webhooks to loopback, private and link-local addresses (self-hosted "
        "setups whose CRM runs on the same network).",
    )

    class Meta:
        verbose_name_plural = "engagement settings"

    def __str__(self) -> str:
        return f"Engagement settings of {self.workspace}"

    @classmethod
    def private_addresses_allowed(cls, workspace_id: int) -> bool:
        return cls.objects.filter(
            workspace_id=workspace_id, allow_private_webhook_addresses=True
        ).exists()


class FrequencyCap(models.Model):
    """At most `limit` deliveries of one channel to one end user within `period`."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    limit = models.PositiveIntegerField(help_text="Deliveries allowed per end user per period.")
    period = models.DurationField(help_text="e.g. 1 day (1 00:00:00) or 12:00:00.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "channel"], name="unique_frequency_cap")
        ]

    def __str__(self) -> str:
        return f"At most {self.limit} {self.get_channel_display()} per {self.period}"

    def clean(self) -> None:
        if self.period is not None and self.period.total_seconds() <= 0:
            raise ValidationError({"period": ["The period must be longer than zero."]})


class Message(ElementPresentTrigger):
    """What a rule says. Title, body, call to action and subject may use placeholders such as
    {{ first_name|default:"there" }} and {{ next_milestone }}; the body is Markdown. In the
    app it may wait for an element (`when_present`, README "Element present"); e-mail and
    webhooks ignore that."""

    class Style(models.TextChoices):
        MODAL = "modal", "Modal"
        BANNER = "banner", "Banner"
        TOAST = "toast", "Toast"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    key = models.SlugField(max_length=80)
    name = models.CharField(max_length=120)
    style = models.CharField(
        max_length=8, choices=Style.choices, default=Style.MODAL, help_text="In-app only."
    )
    title = models.CharField(max_length=200)
    body = models.TextField(help_text="Markdown with placeholders.")
    cta_label = models.CharField("call to action label", max_length=80, blank=True)
    cta_url = models.CharField("call to action URL", max_length=500, blank=True)
    email_subject = models.CharField(
        max_length=200, blank=True, help_text="Empty: the title is the subject."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["workspace", "name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="unique_message_key")
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        for field in ("title", "body", "cta_label", "email_subject", "cta_url"):
            try:
                personalisation.check_template(getattr(self, field))
            except ValidationError as error:
                errors[field] = error.messages
        if self.cta_url and "cta_url" not in errors:
            try:
                # Placeholders inside a URL are filled in as text; the rest must be a link.
                validation.check_link(personalisation.render_text(self.cta_url, {}) or "/")
            except ValidationError as error:
                errors["cta_url"] = error.messages
        if bool(self.cta_label) != bool(self.cta_url):
            errors["cta_label"] = ["Give the call to action both a label and a URL, or neither."]
        errors.update(self.trigger_errors())
        if errors:
            raise ValidationError(errors)


class WebhookEndpoint(models.Model):
    """Where webhook deliveries go. Each request is signed with the endpoint's secret:
    header `Milepost-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`."""

    class Format(models.TextChoices):
        MILEPOST = "milepost", "Milepost JSON"
        SLACK = "slack", "Slack-compatible ({text: ...})"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=120)
    url = models.CharField(max_length=500, help_text="http(s) URL that receives a POST.")
    payload_format = models.CharField(
        max_length=10, choices=Format.choices, default=Format.MILEPOST
    )
    secret = models.CharField(
        max_length=64, default=webhooks.new_secret, help_text="Verify signatures with this."
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["workspace", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if not self.workspace_id:
            return
        try:
            webhooks.check_url(
                self.url,
                allow_private=EngagementSettings.private_addresses_allowed(self.workspace_id),
            )
        except ValidationError as error:
            raise ValidationError({"url": error.messages}) from None


class Trigger(models.TextChoices):
    MILESTONE_COMPLETED = "milestone_completed", "Milestone completed"
    JOURNEY_STARTED = "journey_started", "Journey started"
    PQL_REACHED = "pql_reached", "PQL reached"
    EVENT = "event", "Event tracked"
    MILESTONE_NOT_REACHED = "milestone_not_reached", "Milestone not reached in time"
    INACTIVE = "inactive", "No activity for a while"
    TRAIT_THRESHOLD = "trait_threshold", "Numeric trait reached a threshold"
    AFTER_SIGNUP = "after_signup", "Time after signup"
    STEP_TARGET_MISSING = (
        "step_target_missing",
        "A walkthrough step's target is missing for too many people (alert your team)",
    )


TIME_TRIGGERS = {
    Trigger.MILESTONE_NOT_REACHED,
    Trigger.INACTIVE,
    Trigger.AFTER_SIGNUP,
    Trigger.TRAIT_THRESHOLD,
}
# Which optional fields each trigger needs.
_NEEDS: dict[str, set[str]] = {
    Trigger.MILESTONE_COMPLETED: {"milestone"},
    Trigger.JOURNEY_STARTED: {"journey"},
    Trigger.PQL_REACHED: {"journey"},
    Trigger.EVENT: {"event_name"},
    Trigger.MILESTONE_NOT_REACHED: {"milestone", "delay"},
    Trigger.INACTIVE: {"delay"},
    Trigger.TRAIT_THRESHOLD: {"trait", "threshold"},
    Trigger.AFTER_SIGNUP: {"delay"},
    Trigger.STEP_TARGET_MISSING: set(),
}
# Triggers about the workspace's content rather than an end user: they alert the team.
TEAM_ALERTS = {Trigger.STEP_TARGET_MISSING}
_ALL_TRIGGER_FIELDS = {"milestone", "journey", "event_name", "delay", "trait", "threshold"}


class Rule(models.Model):
    """Who (segment), when (trigger), what (message) and where (channels)."""

    class CountedFrom(models.TextChoices):
        JOURNEY_START = "journey_start", "Journey start"
        PREVIOUS_MILESTONE = "previous_milestone", "Previous milestone completed"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    key = models.SlugField(max_length=80)
    name = models.CharField(max_length=120)
    is_paused = models.BooleanField(default=False)
    segment = models.ForeignKey(
        Segment, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="Who. Empty: every end user.",
    )  # fmt: skip
    trigger = models.CharField(max_length=24, choices=Trigger.choices)
    journey = models.ForeignKey(
        Journey, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    milestone = models.ForeignKey(
        Milestone, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    event_name = models.CharField(max_length=200, blank=True)
    event_properties = models.JSONField(
        default=dict, blank=True,
        help_text='Event trigger only: properties the event must have, e.g. {"plan": "pro"}.',
    )  # fmt: skip
    delay = models.DurationField(
        null=True, blank=True,
        help_text="Inaction and time triggers: how long, e.g. 10 00:00:00 for 10 days.",
    )  # fmt: skip
    counted_from = models.CharField(
        max_length=20, choices=CountedFrom.choices, default=CountedFrom.JOURNEY_START,
        help_text="Milestone not reached: count the delay from here.",
    )  # fmt: skip
    trait = models.CharField(max_length=120, blank=True)
    threshold = models.FloatField(null=True, blank=True, help_text="Fires when trait ≥ this.")
    once_per_user = models.BooleanField(
        default=True,
        help_text="Fire once per end user. Off: an event rule fires for every matching event and "
        "an inactivity rule for every quiet spell (frequency caps still hold).",
    )
    message = models.ForeignKey(Message, on_delete=models.PROTECT, related_name="rules")
    send_in_app = models.BooleanField("in-app message", default=True)
    send_email = models.BooleanField("e-mail", default=False)
    email_to = models.CharField(
        max_length=500, blank=True,
        help_text="Empty: the end user's e-mail trait. Else fixed addresses, comma-separated "
        "(e.g. your sales team).",
    )  # fmt: skip
    webhook = models.ForeignKey(
        WebhookEndpoint, null=True, blank=True, on_delete=models.PROTECT, related_name="rules"
    )
    # The time sweep has looked at every deadline up to here (it starts at the rule's creation,
    # so a new rule does not flood users whose deadline passed long ago).
    swept_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["workspace", "name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "key"], name="unique_rule_key")]
        indexes = [models.Index(fields=["workspace", "trigger"], name="rule_workspace_trigger")]

    def __str__(self) -> str:
        return self.name

    def channels(self) -> list[str]:
        chosen: list[str] = []
        if self.send_in_app:
            chosen.append(Channel.IN_APP)
        if self.send_email:
            chosen.append(Channel.EMAIL)
        if self.webhook_id:
            chosen.append(Channel.WEBHOOK)
        return chosen

    def email_addresses(self) -> list[str]:
        return [a.strip() for a in self.email_to.split(",") if a.strip()]

    def subject_journey(self) -> Journey | None:
        if self.journey is not None:
            return self.journey
        return self.milestone.journey if self.milestone is not None else None

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        needs = _NEEDS.get(self.trigger, set())
        present = {
            "milestone": self.milestone_id is not None,
            "journey": self.journey_id is not None,
            "event_name": bool(self.event_name),
            "delay": self.delay is not None,
            "trait": bool(self.trait),
            "threshold": self.threshold is not None,
        }
        label = Trigger(self.trigger).label if self.trigger in Trigger.values else self.trigger
        for field in needs:
            if not present[field]:
                errors[field] = [f"A “{label}” rule needs this."]
        for field in _ALL_TRIGGER_FIELDS - needs:
            if present[field]:
                errors[field] = [f"A “{label}” rule does not use this; clear it."]
        if self.event_properties and self.trigger != Trigger.EVENT:
            errors["event_properties"] = ["Only an event rule filters on properties; clear it."]
        if not isinstance(self.event_properties, dict) or any(
            isinstance(v, dict | list) for v in self.event_properties.values()
        ):
            errors["event_properties"] = [
                'Write the filters as a flat JSON object: {"plan": "pro", "count": 3}.'
            ]
        if self.delay is not None and self.delay.total_seconds() <= 0:
            errors["delay"] = ["The delay must be longer than zero."]
        if self.delay is not None and self.delay > timedelta(days=3650):
            errors["delay"] = ["Keep the delay under ten years."]
        if not (self.send_in_app or self.send_email or self.webhook_id):
            errors["send_in_app"] = ["Choose at least one channel: in-app, e-mail or a webhook."]
        if self.email_to and not self.send_email:
            errors["email_to"] = ["Addresses are only used by the e-mail channel; tick it."]
        if self.trigger in TEAM_ALERTS:
            if self.send_in_app:
                errors["send_in_app"] = [
                    f"A “{label}” rule alerts your team, not end users: use e-mail or a webhook."
                ]
            if self.send_email and not self.email_to:
                errors["email_to"] = [f"A “{label}” rule e-mails your team: give the addresses."]
            if self.segment_id is not None:
                errors["segment"] = [f"A “{label}” rule is about content, not end users; clear it."]
        for address in self.email_addresses():
            try:
                validate_email(address)
            except ValidationError:
                errors["email_to"] = [f"{address!r} is not an e-mail address."]
        if (
            self.trigger == Trigger.MILESTONE_NOT_REACHED
            and self.counted_from == self.CountedFrom.PREVIOUS_MILESTONE
            and self.milestone is not None
            and previous_milestone(self.milestone) is None
        ):
            errors["counted_from"] = [
                f"{self.milestone} is the journey's first milestone; count from journey start."
            ]
        if errors:
            raise ValidationError(errors)
        validation.check_same_workspace(
            self,
            segment=self.segment,
            journey=self.journey,
            milestone=self.milestone,
            message=self.message if self.message_id else None,
            webhook=self.webhook,
        )

    def event_matches(self, name: str, properties: dict[str, Any]) -> bool:
        return name == self.event_name and properties_match(self.event_properties, properties)


def properties_match(expected: dict[str, Any] | None, properties: dict[str, Any]) -> bool:
    """Whether an event's properties have every value an event rule filters on."""
    return all(
        key in properties and _same(properties[key], value)
        for key, value in (expected or {}).items()
    )


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual is expected
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return float(actual) == float(expected)
    return str(actual) == str(expected)


def previous_milestone(milestone: Milestone) -> Milestone | None:
    """The milestone before this one in its journey (by position), if any."""
    return (
        Milestone.objects.filter(journey_id=milestone.journey_id)
        .filter(
            Q(position__lt=milestone.position) | Q(position=milestone.position, id__lt=milestone.pk)
        )
        .order_by("-position", "-id")
        .first()
    )


class Delivery(models.Model):
    """One message to one end user over one channel: the delivery log."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RETRYING = "retrying", "Waiting to retry"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="deliveries")
    end_user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    occurrence = models.CharField(max_length=120)
    is_test = models.BooleanField(default=False)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=300, blank=True, help_text="Why it was skipped/failed.")
    recipient = models.CharField(max_length=500, blank=True)
    payload = models.JSONField(default=dict)
    attempts = models.PositiveIntegerField(default=0)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    retry_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    shown_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    dismissed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "end_user", "occurrence", "channel"],
                condition=Q(is_test=False),
                name="unique_delivery_per_occurrence",
            )
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due"),
            models.Index(fields=["end_user", "channel", "created_at"], name="delivery_user_cap"),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} to {self.end_user} ({self.status})"


class DeliveryAttempt(models.Model):
    """One try at sending a delivery, as the delivery log shows it."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="log")
    number = models.PositiveIntegerField()
    at = models.DateTimeField(default=timezone.now)
    succeeded = models.BooleanField()
    response_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number}: {'ok' if self.succeeded else self.error}"


class Unsubscription(models.Model):
    """The end user asked for no more engagement e-mail (the unsubscribe link)."""

    end_user = models.OneToOneField(EndUser, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.end_user} unsubscribed"
