"""Milepost's runtime data: authoring (workspaces, journeys, content, segments, published
versions) and recording (end users, events, completions, progress).

Rules about one row live here as model methods; workflows across rows live in services.py.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac

from onboarding import validation
from onboarding.markdown import render_markdown

_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def _token(prefix: str, nbytes: int = 24) -> str:
    return f"{prefix}{secrets.token_urlsafe(nbytes)}"


def hash_secret_key(secret_key: str) -> str:
    return hashlib.sha256(secret_key.encode()).hexdigest()


class Workspace(models.Model):
    """One SaaS team (tenant). Owns every other row."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    publishable_key = models.CharField(max_length=64, unique=True, editable=False)
    # Only the SHA-256 of the secret key is stored; the key itself is shown once.
    secret_key_hash = models.CharField(max_length=64, unique=True, editable=False)
    secret_key_hint = models.CharField(max_length=12, editable=False)
    identity_secret = models.CharField(max_length=64, editable=False)
    enforce_identity_verification = models.BooleanField(
        default=False,
        help_text="Refuse widget calls whose user_hash is not the HMAC-SHA256 of the user id.",
    )
    allowed_origins = models.JSONField(
        default=list,
        blank=True,
        help_text="Origins allowed to load the widget, e.g. https://app.example.com.",
    )
    theme = models.JSONField(default=dict, blank=True)
    retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Delete events older than this many days (checked every hour). "
        "Empty keeps events for ever.",
    )
    missing_target_alert_percent = models.PositiveSmallIntegerField(
        "flag a step when its target is missing for more than (%)",
        default=20,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Share of the people who reached a step in the last 30 days (at least "
        "10 of them) for whom its target was missing. A walkthrough may set its own.",
    )
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validation.check_time_zone],
        help_text="IANA time zone (e.g. Europe/Paris) the analytics reports count days in "
        "by default.",
    )
    default_locale = models.CharField(
        max_length=35,
        default="en",
        db_default="en",  # rows written by SQL (COPY in generate_demo_events, benches) too
        validators=[validation.check_locale],
        help_text="The language content is written in (e.g. en, fr, pt-BR): what people get "
        "when their language has no translation.",
    )
    locale_trait = models.CharField(
        max_length=120,
        default="locale",
        db_default="locale",
        help_text="The trait (sent with identify or by your server) that names a person's "
        "language; without it the browser's language is used.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            self.allowed_origins = validation.clean_origins(self.allowed_origins)
        except ValidationError as error:
            raise ValidationError({"allowed_origins": error.messages}) from None
        try:
            self.theme = validation.clean_theme(self.theme)
        except ValidationError as error:
            raise ValidationError({"theme": error.messages}) from None

    def issue_keys(self) -> dict[str, str]:
        """Give the workspace new keys; returns them in clear text, the only time they exist."""
        secret_key = _token("sk_")
        self.publishable_key = _token("pk_", 18)
        self.secret_key_hash = hash_secret_key(secret_key)
        self.secret_key_hint = secret_key[:7]
        self.identity_secret = secrets.token_hex(32)
        return {
            "publishable_key": self.publishable_key,
            "secret_key": secret_key,
            "identity_secret": self.identity_secret,
        }

    def secret_key_matches(self, secret_key: str) -> bool:
        return hmac.compare_digest(self.secret_key_hash, hash_secret_key(secret_key))

    def user_hash_for(self, external_id: str) -> str:
        return hmac.new(
            self.identity_secret.encode(), external_id.encode(), hashlib.sha256
        ).hexdigest()

    def user_hash_matches(self, external_id: str, user_hash: str | None) -> bool:
        if not isinstance(user_hash, str) or not _HEX_SHA256.fullmatch(user_hash):
            return False
        return hmac.compare_digest(self.user_hash_for(external_id), user_hash.lower())

    def allows_origin(self, origin: str | None) -> bool:
        if not origin:
            return False
        return origin.rstrip("/").lower() in {o.lower() for o in self.allowed_origins}


class WorkspaceMember(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        EDITOR = "editor", "Editor"
        VIEWER = "viewer", "Viewer"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workspace_memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.EDITOR)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="unique_workspace_member")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"


class LifecycleStage(models.TextChoices):
    VISITOR = "visitor", "Visitor"
    TRIAL = "trial", "Signup / trial"
    PQL = "pql", "PQL"
    CUSTOMER = "customer", "Customer"
    ACTIVE_CUSTOMER = "active_customer", "Active customer"
    RETAINED = "retained", "Renewed / retained"
    CHURNED = "churned", "Churned"


class EndUser(models.Model):
    """A person using the SaaS app, known by the workspace's own external id."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="end_users")
    external_id = models.CharField(max_length=255)
    traits = models.JSONField(default=dict, blank=True)
    lifecycle_stage = models.CharField(
        max_length=20, choices=LifecycleStage.choices, default=LifecycleStage.TRIAL
    )
    signed_up_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    # Every push to this person's sockets carries the next number, so a tab can see a gap.
    push_sequence = models.BigIntegerField(default=0)
    # The language this person last asked for (their locale trait, else their browser's), as
    # asked: pushes and e-mails resolve it against the translations published at the time.
    # A database default: generate_demo_events and the benches write people with COPY.
    locale = models.CharField(max_length=35, blank=True, default="", db_default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "external_id"], name="unique_end_user_external_id"
            )
        ]
        indexes = [
            # Engagement's sweeps: "no activity for N days" and "N days after signup".
            models.Index(fields=["workspace", "last_seen_at"], name="end_user_ws_last_seen"),
            models.Index(fields=["workspace", "signed_up_at"], name="end_user_ws_signup"),
        ]

    def __str__(self) -> str:
        return self.external_id


class JourneyStart(models.TextChoices):
    SIGNUP = "signup", "Signup time (trait signed_up_at)"
    FIRST_SEEN = "first_seen", "First seen"


class Journey(models.Model):
    """An ordered path of milestones."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="journeys")
    key = models.SlugField(max_length=80)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    starts_on = models.CharField(
        max_length=12, choices=JourneyStart.choices, default=JourneyStart.SIGNUP
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["workspace", "name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="unique_journey_key")
        ]

    def __str__(self) -> str:
        return self.name


class Phase(models.TextChoices):
    SETUP = "setup", "Setup"
    DISCOVERY = "discovery", "Discovery"
    ACTIVATION = "activation", "Activation"


class Criterion(models.TextChoices):
    EVENT = "event", "Event done N times (within a window from journey start)"
    WALKTHROUGH = "walkthrough", "Walkthrough completed"
    SERVER = "server", "Reported by the server"


class ElementPresentTrigger(models.Model):
    """The "element present" trigger any content kind can use (issue 16): the content waits,
    on a page its URL rule matches, until an element matching `when_present` is there (SPA
    navigation included), at most `wait_timeout_ms`; then the SDK reports
    `$content_target_missing` {kind, key, selector}, as a tour reports a missing step target.
    A walkthrough's trigger gates only its starting by itself (a tour in progress resumes, a
    checklist or `Milepost.start` starts it at once)."""

    when_present = models.CharField(
        "show when this element is present",
        max_length=500,
        blank=True,
        help_text="A CSS selector: wait until an element matching it is on the page. "
        "Empty: no condition.",
    )
    wait_timeout_ms = models.PositiveIntegerField(
        default=5000, help_text="How long to wait for the element before reporting it missing."
    )

    class Meta:
        abstract = True

    def trigger_errors(self) -> dict[str, list[str]]:
        errors: dict[str, list[str]] = {}
        try:
            validation.check_selector(self.when_present)
        except ValidationError as error:
            errors["when_present"] = error.messages
        if not 0 < self.wait_timeout_ms <= validation.MAX_PRESENT_WAIT_MS:
            errors["wait_timeout_ms"] = ["Wait between 1 and 60 000 ms."]
        return errors


class Walkthrough(ElementPresentTrigger):
    """A multi-step product tour."""

    class Frequency(models.TextChoices):
        ONCE = "once", "Once"
        UNTIL_COMPLETED = "until_completed", "Until completed"
        EVERY_SESSION = "every_session", "Every session"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="walkthroughs")
    key = models.SlugField(max_length=80)
    name = models.CharField(max_length=120)
    segment = models.ForeignKey(
        "Segment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    frequency = models.CharField(
        max_length=20, choices=Frequency.choices, default=Frequency.UNTIL_COMPLETED
    )
    priority = models.IntegerField(default=0, help_text="Higher shows first.")
    auto_start = models.BooleanField(
        default=True, help_text="Start by itself when the first step's page matches."
    )
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    missing_target_alert_percent = models.PositiveSmallIntegerField(
        "flag a step when its target is missing for more than (%)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Empty: the workspace's setting.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["workspace", "-priority", "name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="unique_walkthrough_key")
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = self.trigger_errors()
        if errors:
            raise ValidationError(errors)
        validation.check_schedule(self.starts_at, self.ends_at)
        validation.check_same_workspace(self, segment=self.segment)

    def missing_target_threshold(self) -> int:
        """The share (%) of a step's viewers with a missing target above which it is flagged."""
        own = self.missing_target_alert_percent
        return own if own is not None else self.workspace.missing_target_alert_percent


class Step(models.Model):
    class Placement(models.TextChoices):
        AUTO = "auto", "Auto"
        TOP = "top", "Top"
        BOTTOM = "bottom", "Bottom"
        LEFT = "left", "Left"
        RIGHT = "right", "Right"

    class Advance(models.TextChoices):
        NEXT = "next", "Next button"
        TARGET_CLICK = "target_click", "Click on the target"
        EVENT = "event", "A tracked event"

    class TargetMissing(models.TextChoices):
        MODAL = "modal", "Show the step as a centred modal"
        SKIP = "skip", "Skip to the next step"
        END = "end", "End the tour"

    walkthrough = models.ForeignKey(Walkthrough, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField(default=0)
    page_url_pattern = models.CharField(
        max_length=500,
        blank=True,
        help_text="Path pattern such as /campaigns/* ; empty means any page.",
    )
    selector = models.CharField(
        max_length=500, blank=True, help_text="CSS selector; empty shows a centred modal."
    )
    title = models.CharField(max_length=200)
    body_markdown = models.TextField(blank=True)
    body_html = models.TextField(blank=True, editable=False)
    placement = models.CharField(max_length=10, choices=Placement.choices, default=Placement.AUTO)
    advance_on = models.CharField(max_length=14, choices=Advance.choices, default=Advance.NEXT)
    advance_event = models.CharField(max_length=200, blank=True)
    spotlight = models.BooleanField(default=False)
    wait_timeout_ms = models.PositiveIntegerField(
        default=5000, help_text="How long to wait for the target before reporting it missing."
    )
    on_target_missing = models.CharField(
        "if the target is missing",
        max_length=5,
        choices=TargetMissing.choices,
        default=TargetMissing.MODAL,
        help_text="What end users get when the target has not appeared after the wait. "
        "Skipping the last step ends the tour.",
    )

    class Meta:
        ordering = ["walkthrough", "position", "id"]

    def __str__(self) -> str:
        return self.title

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.body_html = render_markdown(self.body_markdown)
        if kwargs.get("update_fields") is not None and "body_markdown" in kwargs["update_fields"]:
            kwargs["update_fields"] = {*kwargs["update_fields"], "body_html"}
        super().save(*args, **kwargs)

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        try:
            validation.check_selector(self.selector)
        except ValidationError as error:
            errors["selector"] = [f"Step “{self.title}”: {m}" for m in error.messages]
        try:
            validation.check_url_pattern(self.page_url_pattern)
        except ValidationError as error:
            errors["page_url_pattern"] = error.messages
        if self.advance_on == self.Advance.EVENT and not self.advance_event:
            errors["advance_event"] = ["Name the event that advances this step."]
        if self.advance_on == self.Advance.TARGET_CLICK and not self.selector:
            errors["advance_on"] = ["A centred step has no target to click; choose another way."]
        if errors:
            raise ValidationError(errors)


class Milestone(models.Model):
    """A success moment in a journey, reached by its criterion."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="milestones")
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="milestones")
    key = models.SlugField(max_length=80, help_text="Unique in the workspace; used by the API.")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    phase = models.CharField(max_length=12, choices=Phase.choices, default=Phase.SETUP)
    position = models.PositiveIntegerField(default=0)
    criterion = models.CharField(max_length=12, choices=Criterion.choices, default=Criterion.EVENT)
    event_name = models.CharField(max_length=200, blank=True)
    min_count = models.PositiveIntegerField(default=1)
    window = models.DurationField(
        null=True, blank=True, help_text="Counted from journey start, e.g. 1 day. Empty: no limit."
    )
    walkthrough = models.ForeignKey(
        Walkthrough, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    counts_toward_pql = models.BooleanField(default=False)
    event_properties = models.JSONField(
        default=dict,
        blank=True,
        help_text="Event milestone only: properties a counted event must have (equal values), "
        'e.g. {"survey": "nps", "band": "promoter"} for an NPS answer of 9-10.',
    )

    class Meta:
        ordering = ["journey", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="unique_milestone_key"),
            models.CheckConstraint(condition=Q(min_count__gte=1), name="milestone_min_count_gte_1"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.journey_id and not self.workspace_id:
            self.workspace_id = self.journey.workspace_id
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if self.journey_id and not self.workspace_id:
            self.workspace_id = self.journey.workspace_id
        errors: dict[str, list[str]] = {}
        if self.criterion == Criterion.EVENT and not self.event_name:
            errors["event_name"] = ["An event milestone needs the event name it counts."]
        if self.window is not None and self.criterion != Criterion.EVENT:
            errors["window"] = ["A window applies only to an event milestone; clear it."]
        if self.window is not None and not self.event_name:
            errors.setdefault("event_name", []).append("A milestone with a window needs an event.")
        if self.window is not None and self.window.total_seconds() <= 0:
            errors["window"] = ["The window must be longer than zero."]
        if self.event_properties and self.criterion != Criterion.EVENT:
            errors["event_properties"] = ["Only an event milestone filters on properties."]
        problem = validation.event_properties_problem(self.event_properties)
        if problem:
            errors["event_properties"] = [problem]
        if self.criterion == Criterion.WALKTHROUGH and self.walkthrough_id is None:
            errors["walkthrough"] = ["Choose the walkthrough whose completion reaches it."]
        if self.criterion != Criterion.WALKTHROUGH and self.walkthrough_id is not None:
            errors["walkthrough"] = ["Only a walkthrough milestone names a walkthrough."]
        if errors:
            raise ValidationError(errors)
        validation.check_same_workspace(self, walkthrough=self.walkthrough)


class Tooltip(ElementPresentTrigger):
    class Trigger(models.TextChoices):
        HOTSPOT = "hotspot", "Hotspot beacon (click)"
        HOVER = "hover", "Hover"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="tooltips")
    key = models.SlugField(max_length=80)
    name = models.CharField(max_length=120)
    page_url_pattern = models.CharField(max_length=500, blank=True)
    selector = models.CharField(max_length=500)
    body_markdown = models.TextField()
    body_html = models.TextField(blank=True, editable=False)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.HOTSPOT)
    placement = models.CharField(
        max_length=10, choices=Step.Placement.choices, default=Step.Placement.AUTO
    )
    segment = models.ForeignKey(
        "Segment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    frequency = models.CharField(
        max_length=20,
        choices=Walkthrough.Frequency.choices,
        default=Walkthrough.Frequency.UNTIL_COMPLETED,
    )
    priority = models.IntegerField(default=0)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["workspace", "-priority", "name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="unique_tooltip_key")
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.body_html = render_markdown(self.body_markdown)
        if kwargs.get("update_fields") is not None and "body_markdown" in kwargs["update_fields"]:
            kwargs["update_fields"] = {*kwargs["update_fields"], "body_html"}
        super().save(*args, **kwargs)

    def clean(self) -> None:
        errors = self.trigger_errors()
        try:
            validation.check_selector(self.selector, required=True)
        except ValidationError as error:
            errors["selector"] = error.messages
        try:
            validation.check_url_pattern(self.page_url_pattern)
        except ValidationError as error:
            errors["page_url_pattern"] = error.messages
        if errors:
            raise ValidationError(errors)
        validation.check_schedule(self.starts_at, self.ends_at)
        validation.check_same_workspace(self, segment=self.segment)


# Surveys (issue 16) -----------------------------------------------------------------------


class Survey(ElementPresentTrigger):
    """Questions asked of end users (NPS, rating, choices, free text); answers are events.
    The questions' JSON shape and every limit are in onboarding/surveys.py."""

    class Display(models.TextChoices):
        POPOVER = "popover", "Popover (bottom corner card)"
        INLINE = "inline", "Inline (inside a host element)"

    class Position(models.TextChoices):
        BOTTOM_RIGHT = "bottom-right", "Bottom right"
        BOTTOM_LEFT = "bottom-left", "Bottom left"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="surveys")
    key = models.SlugField(max_length=80)
    name = models.CharField(max_length=120)
    questions = models.JSONField(
        default=list,
        help_text='A list of questions, e.g. [{"key": "score", "type": "nps", "prompt": "How '
        'likely are you to recommend us?", "follow_up": {"detractor": "why"}}, {"key": "why", '
        '"type": "text", "prompt": "What should we fix?"}]. Types: nps, rating, single_choice, '
        "multiple_choice, text (see the README, Surveys).",
    )
    thank_you = models.CharField(max_length=200, blank=True, default="Thank you!")
    display = models.CharField(max_length=10, choices=Display.choices, default=Display.POPOVER)
    position = models.CharField(
        max_length=12, choices=Position.choices, default=Position.BOTTOM_RIGHT
    )
    selector = models.CharField(
        max_length=500, blank=True, help_text="Inline only: the host element it goes inside."
    )
    page_url_pattern = models.CharField(max_length=500, blank=True)
    segment = models.ForeignKey(
        "Segment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    frequency = models.CharField(
        max_length=20,
        choices=Walkthrough.Frequency.choices,
        default=Walkthrough.Frequency.UNTIL_COMPLETED,
        help_text="Once: until shown once. Until completed: until answered or dismissed. "
        "Every session: until answered, or dismissed in this session.",
    )
    priority = models.IntegerField(default=0)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["workspace", "-priority", "name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="unique_survey_key")
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from onboarding.surveys import question_problems

        errors = self.trigger_errors()
        problems = question_problems(self.questions)
        if problems:
            errors["questions"] = problems
        try:
            validation.check_selector(self.selector, required=self.display == self.Display.INLINE)
        except ValidationError as error:
            errors["selector"] = error.messages
        if self.display == self.Display.POPOVER and self.selector:
            errors["selector"] = ["Only an inline survey goes inside an element; clear it."]
        try:
            validation.check_url_pattern(self.page_url_pattern)
        except ValidationError as error:
            errors["page_url_pattern"] = error.messages
        if errors:
            raise ValidationError(errors)
        validation.check_schedule(self.starts_at, self.ends_at)
        validation.check_same_workspace(self, segment=self.segment)


class ProgressBar(models.Model):
    """A journey shown to the end user as a bar or a checklist of its milestones."""

    class Style(models.TextChoices):
        BAR = "bar", "Bar"
        CHECKLIST = "checklist", "Checklist"

    class Position(models.TextChoices):
        BOTTOM_RIGHT = "bottom-right", "Bottom right"
        BOTTOM_LEFT = "bottom-left", "Bottom left"
        TOP = "top", "Top banner"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="progress_bars")
    key = models.SlugField(max_length=80)
    name = models.CharField(max_length=120)
    title = models.CharField(max_length=120, blank=True)
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="progress_bars")
    style = models.CharField(max_length=10, choices=Style.choices, default=Style.CHECKLIST)
    position = models.CharField(
        max_length=14, choices=Position.choices, default=Position.BOTTOM_RIGHT
    )
    segment = models.ForeignKey(
        "Segment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    hide_when_complete = models.BooleanField(default=True)
    priority = models.IntegerField(default=0)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["workspace", "-priority", "name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="unique_progress_bar_key")
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        validation.check_schedule(self.starts_at, self.ends_at)
        validation.check_same_workspace(self, journey=self.journey, segment=self.segment)


class ProgressBarItem(models.Model):
    """One milestone's call to action in a progress bar."""

    class Action(models.TextChoices):
        NONE = "none", "None"
        START_WALKTHROUGH = "start_walkthrough", "Start a walkthrough"
        OPEN_URL = "open_url", "Open a URL"

    progress_bar = models.ForeignKey(ProgressBar, on_delete=models.CASCADE, related_name="items")
    milestone = models.ForeignKey(Milestone, on_delete=models.CASCADE, related_name="+")
    label = models.CharField(max_length=120, blank=True)
    action = models.CharField(max_length=20, choices=Action.choices, default=Action.NONE)
    walkthrough = models.ForeignKey(
        Walkthrough, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    url = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["progress_bar", "milestone"], name="unique_progress_bar_milestone"
            )
        ]

    def __str__(self) -> str:
        return self.label or str(self.milestone)

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if self.action == self.Action.START_WALKTHROUGH and self.walkthrough_id is None:
            errors["walkthrough"] = ["Choose the walkthrough this call to action starts."]
        if self.action == self.Action.OPEN_URL:
            try:
                validation.check_link(self.url)
            except ValidationError as error:
                errors["url"] = error.messages
        if errors:
            raise ValidationError(errors)
        if self.progress_bar_id and self.milestone_id:
            if self.milestone.journey_id != self.progress_bar.journey_id:
                raise ValidationError({"milestone": ["Choose a milestone of the bar's journey."]})
            validation.check_same_workspace(self.progress_bar, walkthrough=self.walkthrough)


class Segment(models.Model):
    """An audience: every (or any) condition must hold."""

    class Match(models.TextChoices):
        ALL = "all", "All conditions"
        ANY = "any", "Any condition"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="segments")
    key = models.SlugField(max_length=80)
    name = models.CharField(max_length=120)
    match = models.CharField(max_length=3, choices=Match.choices, default=Match.ALL)

    class Meta:
        ordering = ["workspace", "name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="unique_segment_key")
        ]

    def __str__(self) -> str:
        return self.name


class Condition(models.Model):
    class Kind(models.TextChoices):
        TRAIT = "trait", "Trait"
        MILESTONE = "milestone", "Milestone state"
        LIFECYCLE = "lifecycle", "Lifecycle stage"
        EVENT = "event", "Event performed"
        PEOPLE = "people", "One of a list of people"

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="conditions")
    position = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.TRAIT)
    trait = models.CharField(max_length=120, blank=True, help_text="Trait name, for trait rules.")
    milestone = models.ForeignKey(
        Milestone, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    event_name = models.CharField(
        max_length=200, blank=True, help_text="Event name, for event rules."
    )
    event_properties = models.JSONField(
        default=dict,
        blank=True,
        help_text="Event rules only: properties the event must have (equal values), e.g. "
        '{"survey": "nps", "band": "promoter"} with $survey_answered for an NPS of 9-10.',
    )
    operator = models.CharField(max_length=20)
    value = models.CharField(max_length=500, blank=True)
    people = models.JSONField(
        default=list,
        blank=True,
        help_text="External ids of the people, for a list-of-people rule "
        f"(at most {validation.MAX_SEGMENT_PEOPLE:,}), e.g. made from a funnel step.",
    )

    class Meta:
        ordering = ["segment", "position", "id"]

    def __str__(self) -> str:
        if self.kind == self.Kind.PEOPLE:
            return f"{self.operator.replace('_', ' ')} {len(self.people):,} people"
        subject = self.trait or self.event_name or (self.milestone and self.milestone.key)
        subject = subject or "stage"
        return f"{subject} {self.operator} {self.value}".strip()

    def clean(self) -> None:
        validation.check_condition(self)
        if self.segment_id and self.milestone_id:
            validation.check_same_workspace(self.segment, milestone=self.milestone)


# --- Surfaces: banners and empty-state guides (issue 16, branch `surfaces`) -------------------


class SurfaceContent(models.Model):
    """What banners and empty-state guides share: words with an optional call to action,
    shown on the pages of `page_url_pattern` once `when_present` (a selector) is on the page,
    targeted, scheduled and capped like a tooltip (once: until first viewed; until_completed:
    until dismissed; every_session: until dismissed in the current session)."""

    key = models.SlugField(max_length=80, help_text="Unique in the workspace; used by the API.")
    name = models.CharField(max_length=120)
    page_url_pattern = models.CharField(max_length=500, blank=True)
    when_present = models.CharField(
        max_length=500,
        blank=True,
        help_text="Show only once an element matching this selector is on the page.",
    )
    wait_timeout_ms = models.PositiveIntegerField(
        default=5000, help_text="How long to wait for the element before reporting it missing."
    )
    title = models.CharField(max_length=200, blank=True)
    body_markdown = models.TextField()
    body_html = models.TextField(blank=True, editable=False)
    cta_label = models.CharField(max_length=60, blank=True, help_text="Call-to-action button.")
    cta_url = models.CharField(max_length=500, blank=True)
    dismissible = models.BooleanField(default=True)
    segment = models.ForeignKey(
        "Segment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    frequency = models.CharField(
        max_length=20,
        choices=Walkthrough.Frequency.choices,
        default=Walkthrough.Frequency.UNTIL_COMPLETED,
    )
    priority = models.IntegerField(
        default=0, help_text="Higher shows first when several qualify (one thing at a time)."
    )
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["workspace", "-priority", "name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.body_html = render_markdown(self.body_markdown)
        if kwargs.get("update_fields") is not None and "body_markdown" in kwargs["update_fields"]:
            kwargs["update_fields"] = {*kwargs["update_fields"], "body_html"}
        super().save(*args, **kwargs)

    def _errors(self) -> dict[str, list[str]]:
        errors: dict[str, list[str]] = {}
        checks = (
            ("page_url_pattern", lambda: validation.check_url_pattern(self.page_url_pattern)),
            ("when_present", lambda: validation.check_selector(self.when_present)),
            ("cta_url", lambda: validation.check_link(self.cta_url) if self.cta_url else None),
        )
        for field, check in checks:
            try:
                check()
            except ValidationError as error:
                errors[field] = error.messages
        if self.cta_url and not self.cta_label:
            errors["cta_label"] = ["A call to action with a link needs a label."]
        if not 0 < self.wait_timeout_ms <= validation.MAX_PRESENT_WAIT_MS:
            errors["wait_timeout_ms"] = ["Wait between 1 and 60 000 ms."]
        return errors

    def clean(self) -> None:
        errors = self._errors()
        if errors:
            raise ValidationError(errors)
        validation.check_schedule(self.starts_at, self.ends_at)
        validation.check_same_workspace(self, segment=self.segment)


class Banner(SurfaceContent):
    """A bar across the top or bottom of the page that pushes the host's content (or overlays
    it), with an optional call to action; the host's sticky header stays usable."""

    class Position(models.TextChoices):
        TOP = "top", "Top of the page"
        BOTTOM = "bottom", "Bottom of the page"

    class Mode(models.TextChoices):
        PUSH = "push", "Push the page's content"
        OVERLAY = "overlay", "Overlay the page's content"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="banners")
    position = models.CharField(max_length=6, choices=Position.choices, default=Position.TOP)
    mode = models.CharField(max_length=7, choices=Mode.choices, default=Mode.PUSH)

    class Meta(SurfaceContent.Meta):
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="unique_banner_key")
        ]


class Guide(SurfaceContent):
    """An empty-state guide: content placed inside a host element (no overlay) when that
    element is on the page, e.g. an empty table's placeholder."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="guides")
    selector = models.CharField(
        max_length=500, help_text="The host element the guide is placed inside."
    )

    class Meta(SurfaceContent.Meta):
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="unique_guide_key")
        ]

    def _errors(self) -> dict[str, list[str]]:
        errors = super()._errors()
        try:
            validation.check_selector(self.selector, required=True)
        except ValidationError as error:
            errors["selector"] = error.messages
        return errors


# --- end of surfaces ------------------------------------------------------------------------


# Resource center (issue 16) ----------------------------------------------------------------


class ResourceSection(models.Model):
    """One section of the resource center: the launcher at the bottom of the page opens a panel
    listing every published section this end user may see (segment, URL rule, schedule),
    highest priority first; the highest-priority section's position and launcher label win."""

    class Position(models.TextChoices):
        BOTTOM_RIGHT = "bottom-right", "Bottom right"
        BOTTOM_LEFT = "bottom-left", "Bottom left"

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="resource_sections"
    )
    key = models.SlugField(max_length=80)
    name = models.CharField(max_length=120)
    title = models.CharField(max_length=120, help_text="The heading end users see.")
    launcher_label = models.CharField(
        max_length=40, default="Help", help_text="The launcher button's text."
    )
    position = models.CharField(
        max_length=14, choices=Position.choices, default=Position.BOTTOM_RIGHT
    )
    page_url_pattern = models.CharField(
        max_length=500, blank=True, help_text="Only on these pages, e.g. /campaigns/*."
    )
    segment = models.ForeignKey(
        "Segment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    priority = models.IntegerField(default=0)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["workspace", "-priority", "name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="unique_resource_section_key")
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            validation.check_url_pattern(self.page_url_pattern)
        except ValidationError as error:
            raise ValidationError({"page_url_pattern": error.messages}) from None
        validation.check_schedule(self.starts_at, self.ends_at)
        validation.check_same_workspace(self, segment=self.segment)


class ResourceItem(models.Model):
    """One entry of a resource section: a checklist (a progress bar with its progress), a tour
    to replay, a link, an article (a short markdown body) or a dated announcement."""

    class Kind(models.TextChoices):
        CHECKLIST = "checklist", "Checklist (a progress bar)"
        TOUR = "tour", "Tour to replay (a walkthrough)"
        LINK = "link", "Link"
        ARTICLE = "article", "Article"
        ANNOUNCEMENT = "announcement", "Announcement"

    section = models.ForeignKey(ResourceSection, on_delete=models.CASCADE, related_name="items")
    key = models.SlugField(
        max_length=80, help_text="Unique in its section; names the item in analytics."
    )
    position = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.LINK)
    title = models.CharField(
        max_length=120, blank=True, help_text="Empty: the checklist's or tour's name."
    )
    url = models.CharField(max_length=500, blank=True)
    body_markdown = models.TextField(
        blank=True,
        max_length=validation.MAX_RESOURCE_BODY,
        help_text="Markdown, shown below the title.",
    )
    body_html = models.TextField(blank=True, editable=False)
    progress_bar = models.ForeignKey(
        ProgressBar, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    walkthrough = models.ForeignKey(
        Walkthrough, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    published_on = models.DateField(null=True, blank=True, help_text="An announcement's date.")

    class Meta:
        ordering = ["section", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["section", "key"], name="unique_resource_item_key")
        ]

    def __str__(self) -> str:
        return self.title or self.key

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.body_html = render_markdown(self.body_markdown)
        if kwargs.get("update_fields") is not None and "body_markdown" in kwargs["update_fields"]:
            kwargs["update_fields"] = {*kwargs["update_fields"], "body_html"}
        super().save(*args, **kwargs)

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        kind = self.Kind
        if self.kind == kind.CHECKLIST and self.progress_bar_id is None:
            errors["progress_bar"] = ["Choose the progress bar this checklist shows."]
        if self.kind != kind.CHECKLIST and self.progress_bar_id is not None:
            errors["progress_bar"] = ["Only a checklist item names a progress bar."]
        if self.kind == kind.TOUR and self.walkthrough_id is None:
            errors["walkthrough"] = ["Choose the walkthrough this item replays."]
        if self.kind != kind.TOUR and self.walkthrough_id is not None:
            errors["walkthrough"] = ["Only a tour item names a walkthrough."]
        if self.kind in {kind.LINK, kind.ARTICLE, kind.ANNOUNCEMENT} and not self.title:
            errors["title"] = [f"A {self.kind} needs a title."]
        if self.kind == kind.LINK and not self.url:
            errors["url"] = ["A link needs its URL."]
        if self.url:
            try:
                validation.check_link(self.url)
            except ValidationError as error:
                errors["url"] = error.messages
        if self.kind == kind.ANNOUNCEMENT and self.published_on is None:
            errors["published_on"] = ["An announcement needs its date."]
        if len(self.body_markdown) > validation.MAX_RESOURCE_BODY:
            errors["body_markdown"] = [
                f"At most {validation.MAX_RESOURCE_BODY:,} characters; link to a longer article."
            ]
        if errors:
            raise ValidationError(errors)
        if self.section_id:
            validation.check_same_workspace(
                self.section, progress_bar=self.progress_bar, walkthrough=self.walkthrough
            )


class PublishedVersion(models.Model):
    """An immutable snapshot of one piece of content. Live users only ever see these."""

    class Kind(models.TextChoices):
        JOURNEY = "journey", "Journey"
        WALKTHROUGH = "walkthrough", "Walkthrough"
        TOOLTIP = "tooltip", "Tooltip"
        PROGRESS_BAR = "progress_bar", "Progress bar"
        SURVEY = "survey", "Survey"
        BANNER = "banner", "Banner"
        GUIDE = "guide", "Empty-state guide"
        RESOURCE_SECTION = "resource_section", "Resource center section"

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="published_versions"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    object_id = models.BigIntegerField()
    key = models.SlugField(max_length=80)
    version = models.PositiveIntegerField()
    snapshot = models.JSONField()
    published_at = models.DateTimeField(default=timezone.now)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    restored_from = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["workspace", "kind", "object_id", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "kind", "object_id", "version"],
                name="unique_published_version",
            )
        ]
        indexes = [models.Index(fields=["workspace", "kind", "object_id", "-version"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} v{self.version}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValidationError("A published version is immutable; publish a new one instead.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ValidationError("A published version is immutable and cannot be deleted.")


class Translation(models.Model):
    """One translated text field of one piece of content, in one language (a draft: live users
    get it when the content is next published; onboarding/translations.py).

    `path` names the field inside the content's snapshot, list items by a stable id, e.g.
    `steps.12.title` or `items.created-campaign.label`. `source_text` is the text it was
    translated from, so a translation whose source changed since shows as outdated."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=30)
    key = models.SlugField(max_length=80)
    path = models.CharField(max_length=200)
    locale = models.CharField(max_length=35, validators=[validation.check_locale])
    text = models.TextField()
    source_text = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["workspace", "kind", "key", "locale", "path"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "kind", "key", "path", "locale"], name="unique_translation"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} {self.path} [{self.locale}]"


class Event(models.Model):
    """One thing an end user did. The client's id makes every retry safe."""

    class Source(models.TextChoices):
        WIDGET = "widget", "Widget"
        SERVER = "server", "Server API"
        ADMIN = "admin", "Admin"
        SYSTEM = "system", "System"

    # No index of their own: each is the first column of an index below (the unique
    # constraint's included), and every stored event would pay for two more.
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    end_user = models.ForeignKey(
        EndUser, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    client_id = models.UUIDField()
    name = models.CharField(max_length=200)
    timestamp = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    properties = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.SERVER)
    clock_skew_clamped = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "client_id"], name="unique_event_id")
        ]
        indexes = [
            models.Index(fields=["end_user", "name", "timestamp"], name="event_user_name_time"),
            models.Index(fields=["workspace", "name", "timestamp"], name="event_ws_name_time"),
            models.Index(fields=["workspace", "timestamp"], name="event_ws_time"),
            # The analytics export's search for events still settling (received_at recent,
            # above its watermark) reads only those instead of every event not yet exported.
            models.Index(fields=["received_at"], name="event_received_at"),
        ]

    def __str__(self) -> str:
        return f"{self.name} by {self.end_user_id} at {self.timestamp:%Y-%m-%d %H:%M:%S}"


class JourneyProgress(models.Model):
    """Where one end user stands in one journey."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    end_user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="progress")
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="progress")
    started_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    pql_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["end_user", "journey"], name="unique_journey_progress")
        ]
        indexes = [models.Index(fields=["journey", "started_at"], name="progress_journey_start")]
        verbose_name_plural = "journey progress"

    def __str__(self) -> str:
        return f"{self.end_user} in {self.journey}"


class MilestoneCompletion(models.Model):
    """Recorded once per end user and milestone, with what completed it."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    end_user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="completions")
    milestone = models.ForeignKey(Milestone, on_delete=models.CASCADE, related_name="completions")
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="completions")
    completed_at = models.DateTimeField()
    event = models.ForeignKey(
        Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(max_length=8, choices=Event.Source.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["end_user", "milestone"], name="unique_milestone_completion"
            )
        ]
        indexes = [
            models.Index(fields=["milestone", "completed_at"], name="completion_milestone_time")
        ]

    def __str__(self) -> str:
        return f"{self.end_user} reached {self.milestone}"


class ContentState(models.Model):
    """What one end user did with one piece of content (seen, current step, done, dismissed),
    so a walkthrough resumes across pages and reloads from the server's state."""

    class Status(models.TextChoices):
        SEEN = "seen", "Seen"
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"
        DISMISSED = "dismissed", "Dismissed"

    end_user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="content_states")
    kind = models.CharField(max_length=20, choices=PublishedVersion.Kind.choices)
    key = models.SlugField(max_length=80)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SEEN)
    step_index = models.PositiveIntegerField(default=0)
    times_seen = models.PositiveIntegerField(default=0)
    last_session = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["end_user", "kind", "key"], name="unique_content_state")
        ]

    def __str__(self) -> str:
        return f"{self.end_user} {self.kind}:{self.key} {self.status}"


class ErasureRecord(models.Model):
    """The audit trail of an erasure (`DELETE /api/v1/users/{id}` or the admin): who asked, when,
    and how many rows went. The person's external id is kept only as a keyed hash, so the record
    can answer "was this person erased?" (`subject_hash_for`) without holding personal data."""

    class Requester(models.TextChoices):
        SECRET_KEY = "secret_key", "Secret key (API)"
        ADMIN = "admin", "Admin user"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    subject_hash = models.CharField(max_length=64, db_index=True, editable=False)
    requested_by = models.CharField(max_length=10, choices=Requester.choices, editable=False)
    # Which secret key (its hint, as the admin shows it) or which admin user asked.
    secret_key_hint = models.CharField(max_length=12, blank=True, editable=False)
    admin_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    requested_at = models.DateTimeField(default=timezone.now, editable=False)
    erased = models.JSONField(default=dict, editable=False)

    class Meta:
        ordering = ["-requested_at"]
        indexes = [models.Index(fields=["workspace", "-requested_at"], name="erasure_ws_time")]

    def __str__(self) -> str:
        return f"Erasure {self.subject_hash[:12]} at {self.requested_at:%Y-%m-%d %H:%M:%S}"

    @staticmethod
    def subject_hash_for(*, workspace_id: int, external_id: str) -> str:
        """HMAC-SHA256 of the workspace and external id, keyed with SECRET_KEY: the same person
        always gives the same hash, and nobody without the key can reverse or test it."""
        return salted_hmac(
            "milepost.erasure-record", f"{workspace_id}:{external_id}", algorithm="sha256"
        ).hexdigest()


class BuilderSession(models.Model):
    """An editor's visual builder on one of the workspace's own pages (one origin).

    Admin grants it with a one-time token (only its SHA-256 is stored) that the page's snippet
    exchanges within `GRANT_SECONDS` for the session token the builder then sends with every
    call (again only its hash is stored). The session is bound to its user, workspace and
    origin, ends `SESSION_SECONDS` after the exchange, and dies as soon as its user loses the
    role it was granted with (see onboarding/builder.py)."""

    GRANT_SECONDS = 60
    SESSION_SECONDS = 3600

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # The role when granted: an editor's (or owner's) session may save, a viewer's only looks.
    role = models.CharField(max_length=10, choices=WorkspaceMember.Role.choices)
    origin = models.CharField(max_length=200)
    kind = models.CharField(max_length=20)
    content_key = models.SlugField(max_length=80)
    grant_hash = models.CharField(max_length=64, unique=True)
    granted_at = models.DateTimeField(default=timezone.now)
    session_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    exchanged_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"builder of {self.kind} {self.content_key} on {self.origin} for {self.user}"

    @property
    def may_save(self) -> bool:
        return self.role in {WorkspaceMember.Role.OWNER, WorkspaceMember.Role.EDITOR}


# Experiments -----------------------------------------------------------------------------


class Experiment(models.Model):
    """A piece of content run as an experiment: each end user of the audience sees one variant
    (another published piece of content of the same kind, or nothing: a holdout), picked by a
    hash of the workspace, their external id and the experiment's key (onboarding/experiments.py).
    The content is named generically by its kind and key, so any kind can be one."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        RUNNING = "running", "Running"
        STOPPED = "stopped", "Stopped"
        SHIPPED = "shipped", "Shipped"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="experiments")
    key = models.SlugField(max_length=80)
    name = models.CharField(max_length=120)
    content_kind = models.CharField(
        max_length=20,
        help_text="walkthrough, tooltip, progress_bar, message, survey, banner or guide",
    )
    content_key = models.SlugField(
        max_length=80, help_text="The content under test: what the control variant shows."
    )
    variants = models.JSONField(
        default=list,
        help_text='[{"key": "control", "weight": 50, "content_key": "…"}, '
        '{"key": "holdout", "weight": 50, "content_key": null}]; the first is the control, '
        "a null content_key shows nothing.",
    )
    segment = models.ForeignKey(
        Segment, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    shipped_variant = models.CharField(max_length=40, blank=True, editable=False)
    goal_milestone = models.ForeignKey(
        Milestone, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    goal_window = models.DurationField(
        default=timedelta(days=14),
        help_text="A milestone counts when reached within this long from exposure.",
    )
    minimum_sample = models.PositiveIntegerField(
        default=100,
        validators=[MinValueValidator(1)],
        help_text="People exposed per variant before the results give a verdict.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["workspace", "name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="unique_experiment_key")
        ]

    def __str__(self) -> str:
        return self.name

    # The kinds of content an experiment may name, each with the list of the widget's content
    # it lives in ("" for content pushed on its own, such as engagement's in-app messages).
    # A new kind of content adds itself here.
    CONTENT_LISTS: dict[str, str] = {
        "walkthrough": "walkthroughs",
        "tooltip": "tooltips",
        "progress_bar": "progress_bars",
        "message": "",
        # Issue 16's kinds arrive in `content.surfaces` (onboarding/surfaces.py).
        "survey": "surfaces.surveys",
        "banner": "surfaces.banners",
        "guide": "surfaces.guides",
    }
    MAX_VARIANTS = 8

    def clean(self) -> None:
        validation.check_schedule(self.starts_at, self.ends_at)
        validation.check_same_workspace(self, segment=self.segment)
        if self.goal_milestone_id is not None:
            validation.check_same_workspace(self, goal_milestone=self.goal_milestone)
        errors: dict[str, list[str]] = {}
        if self.content_kind not in self.CONTENT_LISTS:
            errors["content_kind"] = [
                f"{self.content_kind!r} is not a kind of content; choose one of "
                + ", ".join(self.CONTENT_LISTS)
                + "."
            ]
        problems = self.variant_problems()
        if problems:
            errors["variants"] = problems
        if errors:
            raise ValidationError(errors)

    def variant_problems(self) -> list[str]:
        """What is wrong with `variants` (empty when they are right)."""
        variants = self.variants
        if not isinstance(variants, list) or not 2 <= len(variants) <= self.MAX_VARIANTS:
            return [f"Give between 2 and {self.MAX_VARIANTS} variants as a list."]
        problems, keys = [], set()
        for index, variant in enumerate(variants):
            where = f"variants[{index}]"
            if not isinstance(variant, dict) or set(variant) - {"key", "weight", "content_key"}:
                problems.append(f"{where} must be {{key, weight, content_key}}.")
                continue
            key, weight, content_key = (
                variant.get("key"),
                variant.get("weight"),
                variant.get("content_key"),
            )
            if not isinstance(key, str) or not re.fullmatch(r"[a-z0-9_-]{1,40}", key):
                problems.append(f"{where}.key must be 1-40 lowercase letters, digits, - or _.")
            elif key in keys:
                problems.append(f"{where}.key {key!r} is used twice.")
            keys.add(key)
            if isinstance(weight, bool) or not isinstance(weight, int) or not 0 < weight <= 1000:
                problems.append(f"{where}.weight must be a whole number from 1 to 1000.")
            if content_key is not None and (
                not isinstance(content_key, str)
                or not re.fullmatch(r"[-a-zA-Z0-9_]{1,80}", content_key)
            ):
                problems.append(f"{where}.content_key must be a content key, or null (holdout).")
        if not problems and variants[0].get("content_key") != self.content_key:
            problems.append("variants[0] is the control: its content_key must be content_key.")
        return problems

    @property
    def control(self) -> str:
        return str(self.variants[0]["key"])

    def variant(self, key: str) -> dict[str, Any] | None:
        return next((v for v in self.variants if v["key"] == key), None)
