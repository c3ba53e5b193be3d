"""Engagement in Django admin, scoped: staff see and choose only their workspaces' rows."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import ForeignKey, QuerySet
from django.forms import ModelChoiceField
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.utils.html import escape, format_html

from engagement import personalisation, services
from engagement.admin_forms import DurationWidget, FrequencyCapForm, RuleForm
from engagement.models import (
    Delivery,
    DeliveryAttempt,
    EngagementSettings,
    FrequencyCap,
    Message,
    Rule,
    WebhookEndpoint,
)
from onboarding.models import EndUser
from onboarding.queries import workspaces_for_user


class WorkspaceScopedAdmin(admin.ModelAdmin):
    """Rows and foreign-key choices limited to the workspaces the admin user may see."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return (
            super()
            .get_queryset(request)
            .filter(workspace__in=workspaces_for_user(user=request.user))
        )

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField[Any] | None:
        workspaces = workspaces_for_user(user=request.user)
        model = db_field.related_model
        if db_field.name == "workspace":
            kwargs["queryset"] = workspaces
        elif isinstance(model, type) and hasattr(model, "workspace"):
            kwargs["queryset"] = model._default_manager.filter(workspace__in=workspaces)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        # As onboarding's add forms do: someone in one workspace has nothing to choose.
        initial: dict[str, Any] = dict(super().get_changeform_initial_data(request))
        workspaces = list(workspaces_for_user(user=request.user).values_list("pk", flat=True)[:2])
        if len(workspaces) == 1:
            initial.setdefault("workspace", workspaces[0])
        return initial


@admin.register(EngagementSettings)
class EngagementSettingsAdmin(WorkspaceScopedAdmin):
    list_display = ["workspace", "allow_private_webhook_addresses"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Private addresses reach the host's own network: a host-wide decision.
        user = request.user
        return [] if getattr(user, "is_superuser", False) else ["allow_private_webhook_addresses"]


@admin.register(FrequencyCap)
class FrequencyCapAdmin(WorkspaceScopedAdmin):
    form = FrequencyCapForm
    list_display = ["workspace", "channel", "limit", "per"]

    @admin.display(description="per", ordering="period")
    def per(self, cap: FrequencyCap) -> str:
        number, unit = DurationWidget().decompress(cap.period)
        return f"{number} {unit[:-1] if number == 1 else unit}"


# Placeholders filled with these in a preview, so a person sees a message as it will read.
PREVIEW_PERSON = {
    "traits": {"first_name": "Alex", "name": "Alex Kim", "plan": "trial"},
    "first_name": "Alex",
    "last_name": "Kim",
    "name": "Alex Kim",
    "email": "alex@example.com",
    "company": "Acme",
    "plan": "trial",
    "user_id": "user-42",
    "journey_name": "Trial onboarding",
    "milestone_name": "Created a campaign",
    "next_milestone": "Imported contacts",
    "progress_percent": 50,
    "event_name": "campaign_created",
}
PREVIEW_THEME = {
    "primary_color": "#4f46e5",
    "text_color": "#18181b",
    "background_color": "#ffffff",
    "font_family": "-apple-system, Segoe UI, Roboto, sans-serif",
    "radius_px": 10,
}


def message_preview(message: Message) -> dict[str, str]:
    """The message filled in for a sample person: the in-app card in the workspace's theme
    (drawn like the widget's card) and the e-mail exactly as it is sent."""
    context = {**PREVIEW_PERSON, "workspace_name": message.workspace.name}
    body = personalisation.render_markdown_body(message.body, context)
    title = personalisation.render_text(message.title, context)
    cta = None
    if message.cta_label and message.cta_url:
        cta = {
            "label": personalisation.render_text(message.cta_label, context),
            "url": personalisation.render_text(message.cta_url, context),
        }
    theme = {**PREVIEW_THEME, **(message.workspace.theme or {})}
    parts = {"title": title, "body_html": body.html, "cta": cta}
    return {
        "in_app": render_to_string(
            "engagement/admin/message_preview.html",
            {**parts, "style": message.style, "theme": theme},
        ),
        "email": render_to_string(
            "engagement/email.html",
            {**parts, "workspace_name": message.workspace.name, "unsubscribe_url": "#"},
        ),
        "subject": personalisation.render_text(message.email_subject or message.title, context),
    }


MESSAGE_FIELDS = (
    "workspace", "key", "name", "style", "title", "body", "cta_label", "cta_url", "email_subject",
)  # fmt: skip


@admin.register(Message)
class MessageAdmin(WorkspaceScopedAdmin):
    list_display = ["name", "key", "workspace", "style", "title"]
    list_filter = ["style"]
    search_fields = ["name", "key", "title"]
    prepopulated_fields = {"key": ["name"]}
    readonly_fields = ["preview"]
    fieldsets = [
        (None, {"fields": MESSAGE_FIELDS}),
        (
            "In the app: wait for an element",
            {
                "fields": ["when_present", "wait_timeout_ms"],
                "description": "The in-app message shows once an element matching the selector "
                "is on the page; after the wait it is recorded as missing and not shown. "
                "E-mail and webhooks ignore this.",
            },
        ),
        (None, {"fields": ["preview"]}),
    ]

    @admin.display(description="Preview (as Alex Kim, a sample person, will see it)")
    def preview(self, message: Message) -> str:
        if message.pk is None:
            return "Shown once the message is saved."
        shown = message_preview(message)
        return format_html(
            '<div class="message-preview"><p><strong>In the app ({})</strong></p>'
            '<iframe title="In-app preview" sandbox srcdoc="{}" width="560" height="280" '
            'style="border:1px solid #ccc;border-radius:6px"></iframe>'
            "<p><strong>E-mail</strong> · subject: {}</p>"
            '<iframe title="E-mail preview" sandbox srcdoc="{}" width="560" height="320" '
            'style="border:1px solid #ccc;border-radius:6px"></iframe></div>',
            message.get_style_display(),
            # Whole documents inside an attribute: escaped even though they are safe HTML.
            escape(shown["in_app"]),
            shown["subject"],
            escape(shown["email"]),
        )


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(WorkspaceScopedAdmin):
    list_display = ["name", "workspace", "url", "payload_format", "is_active"]
    readonly_fields = ["secret"]


class SendTestForm(forms.Form):
    end_user = forms.CharField(
        label="End user id", help_text="The id in your app of the end user to send to."
    )
    email = forms.EmailField(
        required=False, help_text="Optional: send the e-mail here instead of to the end user."
    )


WHEN_FIELDS: list[str | list[str] | tuple[str, ...] | tuple[()]] = [
    "trigger", "journey", "milestone", "event_name", "event_properties",
    "delay", "counted_from", "trait", "threshold", "once_per_user",
]  # fmt: skip


@admin.register(Rule)
class RuleAdmin(WorkspaceScopedAdmin):
    form = RuleForm
    list_display = ["name", "key", "workspace", "trigger", "is_paused", "channel_list"]
    list_filter = ["trigger", "is_paused"]
    search_fields = ["name", "key"]
    prepopulated_fields = {"key": ["name"]}
    actions = ["send_test", "pause", "resume"]
    fieldsets = [
        (None, {"fields": ["workspace", "name", "key", "is_paused"]}),
        ("Who", {"fields": ["segment"]}),
        ("When", {"fields": WHEN_FIELDS}),
        ("What", {"fields": ["message"]}),
        ("Where", {"fields": ["send_in_app", "send_email", "email_to", "webhook"]}),
    ]

    @admin.display(description="channels")
    def channel_list(self, rule: Rule) -> str:
        return ", ".join(rule.channels())

    @admin.action(description="Pause the selected rules")
    def pause(self, request: HttpRequest, queryset: QuerySet[Rule]) -> None:
        services.rules_set_paused(rules=queryset, paused=True)

    @admin.action(description="Resume the selected rules")
    def resume(self, request: HttpRequest, queryset: QuerySet[Rule]) -> None:
        services.rules_set_paused(rules=queryset, paused=False)

    @admin.action(description="Send a test of the selected rule")
    def send_test(self, request: HttpRequest, queryset: QuerySet[Rule]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one rule to test.", messages.ERROR)
            return None
        rule = queryset.get()
        form = SendTestForm(request.POST if "end_user" in request.POST else None)
        if form.is_bound and form.is_valid():
            end_user = EndUser.objects.filter(
                workspace_id=rule.workspace_id, external_id=form.cleaned_data["end_user"]
            ).first()
            if end_user is None:
                form.add_error("end_user", f"{rule.workspace} has no end user with this id.")
            else:
                deliveries = services.rule_send_test(
                    rule=rule, end_user=end_user, email_override=form.cleaned_data["email"]
                )
                summary = ", ".join(f"{d.channel}: {d.status}" for d in deliveries)
                self.message_user(request, f"Test of “{rule}” sent ({summary}).")
                return None
        context = {
            **self.admin_site.each_context(request),
            "title": f"Send a test of “{rule}”",
            "rule": rule,
            "form": form,
            "opts": self.model._meta,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "engagement/admin/send_test.html", context)


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ["number", "at", "succeeded", "response_code", "error"]
    readonly_fields = ["number", "at", "succeeded", "response_code", "error"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(WorkspaceScopedAdmin):
    """The delivery log: every attempt, read-only, with a re-send action."""

    list_display = [
        "created_at", "rule", "end_user", "channel", "status", "attempts", "response_code",
        "reason", "is_test",
    ]  # fmt: skip
    list_filter = ["channel", "status", "is_test"]
    search_fields = ["end_user__external_id", "rule__key", "recipient"]
    list_select_related = ["rule", "end_user"]
    inlines = [DeliveryAttemptInline]
    actions = ["resend"]
    readonly_fields = [
        "uid", "workspace", "rule", "end_user", "channel", "occurrence", "is_test", "status",
        "reason", "recipient", "payload", "attempts", "response_code", "created_at",
        "next_attempt_at", "retry_until", "sent_at", "shown_at", "clicked_at", "dismissed_at",
    ]  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("engagement.change_rule")

    @admin.action(description="Re-send the selected deliveries", permissions=["resend"])
    def resend(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        for delivery in queryset:
            services.delivery_resend(delivery=delivery)
        self.message_user(request, f"{queryset.count()} deliveries queued to send again.")
