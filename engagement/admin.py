"""Engagement in Django admin, scoped: staff see and choose only their workspaces' rows."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import ForeignKey, QuerySet
from django.forms import ModelChoiceField
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from engagement import services
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


@admin.register(EngagementSettings)
class EngagementSettingsAdmin(WorkspaceScopedAdmin):
    list_display = ["workspace", "allow_private_webhook_addresses"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Private addresses reach the host's own network: a host-wide decision.
        user = request.user
        return [] if getattr(user, "is_superuser", False) else ["allow_private_webhook_addresses"]


@admin.register(FrequencyCap)
class FrequencyCapAdmin(WorkspaceScopedAdmin):
    list_display = ["workspace", "channel", "limit", "period"]


@admin.register(Message)
class MessageAdmin(WorkspaceScopedAdmin):
    list_display = ["name", "key", "workspace", "style", "title"]
    list_filter = ["style"]
    search_fields = ["name", "key", "title"]
    prepopulated_fields = {"key": ["name"]}


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
