"""Django admin for authoring, scoped to the workspaces a staff user is a member of.

Membership is the permission: a workspace's viewers see its rows, editors and owners author
them, owners also edit the workspace and rotate its keys. Superusers see and do everything and
alone create or delete workspaces. Every queryset, foreign-key choice, inline and action is
limited to the user's workspaces; another workspace's row answers 404.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Subquery
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from onboarding import experiments, queries, services, translations, validation
from onboarding.admin_builder import BuilderAdminMixin
from onboarding.admin_preview import SurfacePreviewMixin
from onboarding.admin_surveys import QuestionsField, friendly_problem
from onboarding.models import (
    Banner,
    Condition,
    EndUser,
    ErasureRecord,
    Event,
    Experiment,
    Guide,
    Journey,
    JourneyProgress,
    Milestone,
    MilestoneCompletion,
    ProgressBar,
    ProgressBarItem,
    PublishedVersion,
    ResourceItem,
    ResourceSection,
    Segment,
    Step,
    Survey,
    Tooltip,
    Walkthrough,
    Workspace,
    WorkspaceMember,
)

EDITOR_ROLES = {WorkspaceMember.Role.OWNER, WorkspaceMember.Role.EDITOR}
ERASED_KINDS = ("events", "completions", "journeys")
WORKSPACE_OWNED = (
    Segment, Journey, Walkthrough, Milestone, Tooltip, ProgressBar, Survey, Banner, Guide,
    ResourceSection,
)  # fmt: skip


# Roles and scope -------------------------------------------------------------------------


def roles_of(request: HttpRequest) -> dict[int, str]:
    """workspace id -> the user's role there (cached on the request)."""
    cached: dict[int, str] | None = getattr(request, "_milepost_roles", None)
    if cached is None:
        user = request.user
        if not (user.is_active and user.is_staff):
            cached = {}
        elif user.is_superuser:
            cached = dict.fromkeys(
                Workspace.objects.values_list("pk", flat=True), WorkspaceMember.Role.OWNER
            )
        else:
            cached = dict(
                WorkspaceMember.objects.filter(
                    workspace__in=queries.workspaces_for_user(user=user)
                ).values_list("workspace_id", "role")
            )
        request._milepost_roles = cached  # type: ignore[attr-defined]
    return cached


def editable_workspace_ids(request: HttpRequest) -> set[int]:
    return {pk for pk, role in roles_of(request).items() if role in EDITOR_ROLES}


def _may(request: HttpRequest, workspace_id: int | None, roles: set[str]) -> bool:
    if request.user.is_active and request.user.is_superuser:
        return True
    mine = roles_of(request)
    if workspace_id is None:
        return any(role in roles for role in mine.values())
    return mine.get(workspace_id) in roles


ALL_ROLES = set(WorkspaceMember.Role.values)


def _choice_workspace_ids(request: HttpRequest) -> set[int]:
    """The workspaces whose rows a form may offer: the edited object's own when known."""
    current: int | None = getattr(request, "_milepost_workspace_id", None)
    if current is not None:
        return {current}
    return editable_workspace_ids(request)


def _scope_choices(request: HttpRequest, db_field: Any, kwargs: dict[str, Any]) -> None:
    model = db_field.related_model
    ids = _choice_workspace_ids(request)
    if model is Workspace:
        kwargs["queryset"] = Workspace.objects.filter(pk__in=ids)
    elif model in WORKSPACE_OWNED:
        queryset = kwargs.get("queryset", model._default_manager.all())
        kwargs["queryset"] = queryset.filter(workspace_id__in=ids)


class WorkspaceScopedAdmin(admin.ModelAdmin):
    """Rows reachable through `workspace_path` from the model are scoped to the user's
    workspaces; permissions follow the user's role in the row's workspace."""

    workspace_path = "workspace"
    view_roles = ALL_ROLES
    edit_roles: set[str] = set(EDITOR_ROLES)

    def workspace_id_of(self, obj: Any) -> int | None:
        for part in self.workspace_path.split("__")[:-1]:
            obj = getattr(obj, part)
        return getattr(obj, f"{self.workspace_path.split('__')[-1]}_id", None)

    def get_queryset(self, request: HttpRequest) -> Any:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.workspace_path}__in": list(roles_of(request))})

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(roles_of(request)) or request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        workspace_id = None if obj is None else self.workspace_id_of(obj)
        return request.user.is_staff and _may(request, workspace_id, self.view_roles)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_staff and _may(request, None, self.edit_roles)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        workspace_id = None if obj is None else self.workspace_id_of(obj)
        return request.user.is_staff and _may(request, workspace_id, self.edit_roles)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_change_permission(request, obj)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        request._milepost_workspace_id = (  # type: ignore[attr-defined]
            self.workspace_id_of(obj) if obj is not None else None
        )
        return super().get_form(request, obj, change, **kwargs)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        _scope_choices(request, db_field, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial: dict[str, Any] = dict(super().get_changeform_initial_data(request))
        editable = editable_workspace_ids(request)
        if self.workspace_path == "workspace" and len(editable) == 1:
            initial.setdefault("workspace", next(iter(editable)))
        return initial

    def _in_scope(self, request: HttpRequest, object_id: str | None) -> None:
        if object_id is not None and self.get_object(request, object_id) is None:
            raise Http404("No such object in your workspaces.")

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        self._in_scope(request, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        self._in_scope(request, object_id)
        return super().delete_view(request, object_id, extra_context)

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        self._in_scope(request, object_id)
        return super().history_view(request, object_id, extra_context)


class ScopedInlineMixin:
    """An inline whose permissions follow the role in the parent's workspace and whose
    choices are the parent's workspace's rows."""

    extra = 0

    def _parent_workspace_id(self, obj: Any) -> int | None:
        if obj is None:
            return None
        return obj.pk if isinstance(obj, Workspace) else obj.workspace_id

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _may(request, self._parent_workspace_id(obj), ALL_ROLES)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _may(request, self._parent_workspace_id(obj), set(EDITOR_ROLES))

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _may(request, self._parent_workspace_id(obj), set(EDITOR_ROLES))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_change_permission(request, obj)

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        request._milepost_workspace_id = self._parent_workspace_id(obj)  # type: ignore[attr-defined]
        request._milepost_parent = obj  # type: ignore[attr-defined]
        return super().get_formset(request, obj, **kwargs)  # type: ignore[misc]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        _scope_choices(request, db_field, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]


class ScopedInline(ScopedInlineMixin, admin.TabularInline):
    pass


class ReadOnlyScopedAdmin(WorkspaceScopedAdmin):
    """Recorded data: members look, nobody edits here (recording owns these rows)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Only so a superuser can delete a journey or workspace that has recorded rows.
        return request.user.is_superuser


# Publishing ------------------------------------------------------------------------------


class PublishableAdmin(WorkspaceScopedAdmin):
    """Content edited as a draft; "Publish" stores an immutable version live users see."""

    change_form_template = "admin/onboarding/publishable_change_form.html"
    actions = ["publish"]
    readonly_fields = ("publication", "version_history_link")
    list_filter = (("workspace", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("key", "name")

    def get_queryset(self, request: HttpRequest) -> Any:
        latest = PublishedVersion.objects.filter(
            kind=queries.KIND_OF_MODEL[self.model], object_id=OuterRef("pk")
        ).order_by("-version")
        return (
            super()
            .get_queryset(request)
            .select_related("workspace")
            .annotate(
                latest_version=Subquery(latest.values("version")[:1]),
                latest_published_at=Subquery(latest.values("published_at")[:1]),
            )
        )

    @admin.display(description="Published")
    def publication(self, obj: Any) -> str:
        version = getattr(obj, "latest_version", None)
        if obj.pk is None or version is None:
            return "Not published (draft only)"
        if obj.updated_at > obj.latest_published_at:
            return f"v{version}, draft edited since"
        return f"v{version}"

    @admin.display(description="Versions")
    def version_history_link(self, obj: Any) -> str:
        if obj.pk is None:
            return "-"
        url = reverse("admin:onboarding_publishedversion_changelist")
        query = urlencode({"kind": queries.KIND_OF_MODEL[self.model], "object_id": obj.pk})
        return format_html('<a href="{}?{}">Version history</a>', url, query)

    def _publish_one(self, request: HttpRequest, obj: Any) -> bool:
        warnings = queries.publish_warnings(obj=obj)
        try:
            version = services.content_publish(obj=obj, user=request.user)
        except ValidationError as error:
            self.message_user(
                request,
                f"{obj} was not published: {' '.join(error.messages)}",
                messages.ERROR,
            )
            return False
        self.message_user(request, f"Published {obj} as version {version.version}.")
        for warning in warnings:
            self.message_user(request, f"{obj}: {warning}", messages.WARNING)
        return True

    @admin.action(description="Publish selected (make the drafts live)", permissions=["change"])
    def publish(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            self._publish_one(request, obj)

    def response_add(self, request: HttpRequest, obj: Any, post_url_continue: Any = None) -> Any:
        if "_publish" in request.POST:
            self._publish_one(request, obj)
            opts = self.model._meta
            return HttpResponseRedirect(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
            )
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request: HttpRequest, obj: Any) -> Any:
        if "_publish" in request.POST:
            self._publish_one(request, obj)
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.content_unpublish(obj=obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            services.content_unpublish(obj=obj)


# Workspaces ------------------------------------------------------------------------------


class OriginsField(forms.CharField):
    """Allowed origins typed one per line rather than as raw JSON."""

    widget = forms.Textarea(attrs={"rows": 3})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return "\n".join(value)
        return value

    def clean(self, value: Any) -> Any:
        text = super().clean(value) or ""
        try:
            return validation.clean_origins([line.strip() for line in text.split() if line])
        except ValidationError as error:
            raise forms.ValidationError(error.messages) from None


class WorkspaceForm(forms.ModelForm):
    allowed_origins = OriginsField(
        required=False,
        help_text="One origin per line, e.g. https://app.example.com (scheme://host[:port]).",
    )
    default_locale = forms.CharField(
        required=False,
        max_length=35,
        help_text="The language content is written in, e.g. en, fr or pt-BR (empty: en). "
        "People whose language has no translation get it.",
    )
    locale_trait = forms.CharField(
        required=False,
        max_length=120,
        help_text="The trait that names a person's language (empty: locale); without it the "
        "browser's language is used.",
    )

    def clean_default_locale(self) -> str:
        tag = self.cleaned_data.get("default_locale") or "en"
        normalised = translations.normalise(tag)
        if normalised is None:
            raise forms.ValidationError(f"{tag!r} is not a language tag, e.g. en, fr or pt-BR.")
        return normalised

    def clean_locale_trait(self) -> str:
        return (self.cleaned_data.get("locale_trait") or "").strip() or "locale"

    class Meta:
        model = Workspace
        fields = (
            "name",
            "slug",
            "allowed_origins",
            "enforce_identity_verification",
            "retention_days",
            "missing_target_alert_percent",
            "theme",
            "default_locale",
            "locale_trait",
        )


class WorkspaceMemberInline(ScopedInline):
    model = WorkspaceMember
    fields = ("user", "role")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser


@admin.register(Workspace)
class WorkspaceAdmin(WorkspaceScopedAdmin):
    workspace_path = "pk"
    form = WorkspaceForm
    edit_roles = {WorkspaceMember.Role.OWNER}
    list_display = ("name", "slug", "publishable_key", "secret_key_hint", "origins")
    search_fields = ("name", "slug")
    readonly_fields = ("publishable_key", "secret_key_hint", "snippet", "created_at")
    inlines = [WorkspaceMemberInline]
    actions = ["rotate_keys"]
    prepopulated_fields = {"slug": ("name",)}

    def workspace_id_of(self, obj: Any) -> int | None:
        return obj.pk

    def get_queryset(self, request: HttpRequest) -> Any:
        return queries.workspaces_for_user(user=request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return dict(admin.ModelAdmin.get_changeform_initial_data(self, request))

    @admin.display(description="Allowed origins")
    def origins(self, obj: Workspace) -> str:
        return ", ".join(obj.allowed_origins) or "(none: the widget is refused everywhere)"

    @admin.display(description="Embed snippet")
    def snippet(self, obj: Workspace) -> str:
        if obj.pk is None:
            return "Shown after saving."
        return format_html("<pre>{}</pre>", _snippet(obj))

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            request._milepost_keys = obj.issue_keys()  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)

    def response_add(self, request: HttpRequest, obj: Any, post_url_continue: Any = None) -> Any:
        keys = getattr(request, "_milepost_keys", None)
        if keys is None or "_popup" in request.POST:
            return super().response_add(request, obj, post_url_continue)
        return self._keys_page(request, [(obj, keys)], "Workspace created")

    def _keys_page(
        self, request: HttpRequest, issued: Iterable[tuple[Workspace, dict[str, str]]], title: str
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "issued": [
                {"workspace": workspace, "keys": keys, "snippet": _snippet(workspace)}
                for workspace, keys in issued
            ],
        }
        response = TemplateResponse(request, "admin/onboarding/workspace/keys.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Rotate keys (the old keys stop working)", permissions=["change"])
    def rotate_keys(self, request: HttpRequest, queryset: Any) -> Any:
        workspaces = [w for w in queryset if self.has_change_permission(request, w)]
        if request.POST.get("confirm") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": "Rotate keys?",
                "opts": self.model._meta,
                "workspaces": workspaces,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(
                request, "admin/onboarding/workspace/rotate_keys_confirm.html", context
            )
        issued = [(w, services.workspace_rotate_keys(workspace=w)) for w in workspaces]
        return self._keys_page(request, issued, "New keys issued")


def _snippet(workspace: Workspace) -> str:
    from django.conf import settings

    return (
        f'<script async src="{settings.PUBLIC_URL}/static/milepost/milepost.js" '
        f'data-key="{workspace.publishable_key}"></script>'
    )


# Authoring -------------------------------------------------------------------------------


class MilestoneForm(forms.ModelForm):
    class Meta:
        model = Milestone
        fields = (
            "position", "key", "name", "phase", "criterion", "event_name", "min_count", "window",
            "walkthrough", "counts_toward_pql", "event_properties",
        )  # fmt: skip

    def clean_event_properties(self) -> Any:
        return self.cleaned_data.get("event_properties") or {}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        key = cleaned.get("key")
        workspace_id = self.instance.workspace_id
        if key and workspace_id:
            taken = Milestone.objects.filter(workspace_id=workspace_id, key=key)
            if self.instance.pk:
                taken = taken.exclude(pk=self.instance.pk)
            if taken.exists():
                self.add_error("key", f"Another milestone of this workspace uses the key {key!r}.")
        return cleaned


class MilestoneFormSet(BaseInlineFormSet):
    """Milestones belong to the journey's workspace (their unique keys are per workspace)."""

    def add_fields(self, form: Any, index: Any) -> None:
        super().add_fields(form, index)
        form.instance.workspace_id = self.instance.workspace_id

    def clean(self) -> None:
        super().clean()
        seen: set[str] = set()
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if data.get("DELETE") or not data.get("key"):
                continue
            if data["key"] in seen:
                form.add_error("key", f"Two milestones here use the key {data['key']!r}.")
            seen.add(data["key"])


class MilestoneInline(ScopedInline):
    model = Milestone
    form = MilestoneForm
    formset = MilestoneFormSet
    fk_name = "journey"
    ordering = ("position", "id")


@admin.register(Journey)
class JourneyAdmin(PublishableAdmin):
    list_display = ("name", "key", "workspace", "starts_on", "publication")
    fields = (
        "workspace",
        "key",
        "name",
        "description",
        "starts_on",
        *PublishableAdmin.readonly_fields,
    )
    inlines = [MilestoneInline]


class StepInline(ScopedInlineMixin, admin.StackedInline):
    model = Step
    ordering = ("position", "id")
    fields = (
        "preview", "position", "title", "page_url_pattern", "selector", "body_markdown",
        "placement", "advance_on", "advance_event", "spotlight", "wait_timeout_ms",
        "on_target_missing",
    )  # fmt: skip
    readonly_fields = ("preview",)

    class Media:
        # The widget's renderer, bundled on its own for admin (widget/src/preview.ts).
        js = ("milepost/preview.js",)

    @admin.display(description="Preview")
    def preview(self, obj: Step) -> str:
        """The step drawn by the widget's own renderer (static/milepost/preview.js)."""
        if obj.pk is None:
            return "Save to see the step as end users will."
        order = list(obj.walkthrough.steps.order_by("position", "id").values_list("pk", flat=True))
        step = {
            "title": obj.title,
            "body_html": obj.body_html,
            "advance_on": obj.advance_on,
            "index": order.index(obj.pk),
            "count": len(order),
            "walkthrough": obj.walkthrough.name,
        }
        return format_html(
            '<div data-milepost-step-preview data-step="{}" data-theme="{}">'
            "Loading the preview…</div>",
            json.dumps(step),
            json.dumps(obj.walkthrough.workspace.theme or {}),
        )


# Notes on the walkthrough list from apps onboarding does not import (analytics flags the
# steps whose target is missing for too many people): each provider maps walkthroughs to a
# note by primary key, for one page of the list at a time.
walkthrough_list_notes: list[Callable[[list[Walkthrough]], dict[int, str]]] = []


@admin.register(Walkthrough)
class WalkthroughAdmin(BuilderAdminMixin, PublishableAdmin):
    builder_kind = "walkthrough"
    list_display = ("name", "key", "workspace", "segment", "priority", "publication", "health")
    fields = (
        "workspace", "key", "name", "segment", "frequency", "priority", "auto_start",
        "when_present", "wait_timeout_ms", "starts_at", "ends_at", "missing_target_alert_percent",
        *PublishableAdmin.readonly_fields,
    )  # fmt: skip
    inlines = [StepInline]

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)
        notes: dict[int, list[str]] = {}
        for provider in walkthrough_list_notes:
            for pk, note in provider(rows).items():
                notes.setdefault(pk, []).append(note)
        for row in rows:
            row.health_notes = notes.get(row.pk, [])
        return changelist

    @admin.display(description="Step health")
    def health(self, obj: Walkthrough) -> str:
        return " ".join(getattr(obj, "health_notes", [])) or "—"


@admin.register(Tooltip)
class TooltipAdmin(BuilderAdminMixin, PublishableAdmin):
    builder_kind = "tooltip"
    list_display = ("name", "key", "workspace", "trigger", "page_url_pattern", "publication")
    fields = (
        "workspace", "key", "name", "page_url_pattern", "when_present", "wait_timeout_ms",
        "selector", "body_markdown", "trigger", "placement", "segment", "frequency", "priority",
        "starts_at", "ends_at", *PublishableAdmin.readonly_fields,
    )  # fmt: skip


# Surveys (issue 16) -----------------------------------------------------------------------


class SurveyForm(forms.ModelForm):
    questions = QuestionsField(
        help_text="Ask one to ten questions; end users see them in this order."
    )

    class Meta:
        model = Survey
        fields = (
            "workspace", "key", "name", "questions", "thank_you", "display", "position",
            "selector", "page_url_pattern", "when_present", "wait_timeout_ms", "segment",
            "frequency", "priority", "starts_at", "ends_at",
        )  # fmt: skip

    def _post_clean(self) -> None:
        # Django's hook after the model's own validation (not in django-stubs).
        super()._post_clean()  # type: ignore[misc]
        # The model names problems by path; the form names the question and the field.
        if "questions" in self.errors:
            self.errors["questions"] = self.error_class(
                [
                    friendly_problem(str(message), self.instance.questions)
                    for message in self.errors["questions"]
                ]
            )


@admin.register(Survey)
class SurveyAdmin(SurfacePreviewMixin, BuilderAdminMixin, PublishableAdmin):
    builder_kind = "survey"
    form = SurveyForm

    class Media:
        css = {"all": ("onboarding/survey-questions.css",)}
        js = ("milepost/preview.js",)

    list_display = ("name", "key", "workspace", "display", "publication", "results_link")
    # The preview row first: in view as the page opens, with a top banner right above it.
    fields = (
        "surface_preview", "workspace", "key", "name", "questions", "thank_you", "display",
        "position", "selector", "page_url_pattern", "when_present", "wait_timeout_ms", "segment",
        "frequency", "priority", "starts_at", "ends_at", *PublishableAdmin.readonly_fields,
        "results_link",
    )  # fmt: skip
    readonly_fields = (  # type: ignore[assignment]
        "publication", "version_history_link", "results_link", "surface_preview",
    )  # fmt: skip

    @admin.display(description="Results")
    def results_link(self, obj: Survey) -> str:
        if obj.pk is None:
            return "-"
        url = reverse("admin:onboarding_survey_results", args=[obj.pk])
        return format_html('<a href="{}">Results</a>', url)

    def get_urls(self) -> list[Any]:
        from django.urls import path

        return [
            path(
                "<path:object_id>/results/",
                self.admin_site.admin_view(self.results_view),
                name="onboarding_survey_results",
            ),
            *super().get_urls(),
        ]

    def results_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        from onboarding.survey_results import survey_results, survey_text_answers

        survey = self.get_object(request, object_id)
        if survey is None:
            raise Http404("No such survey in your workspaces.")
        try:
            page = max(1, int(request.GET.get("page", "1")))
        except ValueError:
            page = 1
        results = survey_results(survey=survey)
        rows = []
        for question in results.questions:
            texts, more = (
                survey_text_answers(survey=survey, question=question.key, page=page)
                if question.type == "text"
                else ([], False)
            )
            rows.append({"question": question, "texts": texts, "more": more})
        context = {
            **self.admin_site.each_context(request),
            "title": f"Results: {survey.name}",
            "opts": self.model._meta,
            "survey": survey,
            "results": results,
            "rows": rows,
            "page": page,
            "previous_page": page - 1,
            "next_page": page + 1,
        }
        return TemplateResponse(request, "admin/onboarding/survey/results.html", context)


class ProgressBarItemInline(ScopedInline):
    model = ProgressBarItem
    fields = ("milestone", "label", "action", "walkthrough", "url")
    verbose_name = "call to action"
    verbose_name_plural = "calls to action (one per milestone)"

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        parent = getattr(request, "_milepost_parent", None)
        if db_field.name == "milestone" and isinstance(parent, ProgressBar):
            kwargs["queryset"] = Milestone.objects.filter(journey_id=parent.journey_id)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(ProgressBar)
class ProgressBarAdmin(BuilderAdminMixin, PublishableAdmin):
    builder_kind = "progress_bar"
    list_display = ("name", "key", "workspace", "journey", "style", "publication")
    fields = (
        "workspace", "key", "name", "title", "journey", "style", "position", "segment",
        "hide_when_complete", "priority", "starts_at", "ends_at",
        *PublishableAdmin.readonly_fields,
    )  # fmt: skip
    inlines = [ProgressBarItemInline]


# Resource center ---------------------------------------------------------------------------


class ResourceItemInline(ScopedInline):
    model = ResourceItem
    fields = (
        "position", "key", "kind", "title", "url", "body_markdown", "progress_bar", "walkthrough",
        "published_on",
    )  # fmt: skip
    ordering = ("position", "id")
    verbose_name = "item"
    verbose_name_plural = "items (checklists, tours, links, articles, announcements)"


@admin.register(ResourceSection)
class ResourceSectionAdmin(PublishableAdmin):
    list_display = ("name", "key", "workspace", "title", "position", "priority", "publication")
    fields = (
        "workspace", "key", "name", "title", "launcher_label", "position", "page_url_pattern",
        "segment", "priority", "starts_at", "ends_at", *PublishableAdmin.readonly_fields,
        "usage",
    )  # fmt: skip
    inlines = [ResourceItemInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return (*super().get_readonly_fields(request, obj), "usage")

    @admin.display(description=f"Usage (last {queries.RESOURCE_USAGE_DAYS} days)")
    def usage(self, obj: ResourceSection) -> str:
        if obj.pk is None:
            return "—"
        usage = queries.resource_section_usage(section=obj)
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (item.key, item.title, item.kind, f"{item.clicks:,}", f"{item.people:,}")
                for item in usage.items
            ),
        )
        return format_html(
            "<p>The resource center (every section) was opened {} times by {} people and "
            "searched {} times. Top searches: {}</p>"
            '<table class="milepost-usage"><thead><tr><th>Item</th><th>Title</th><th>Kind</th>'
            "<th>Clicks</th><th>People</th></tr></thead><tbody>{}</tbody></table>",
            f"{usage.opens:,}",
            f"{usage.openers:,}",
            f"{usage.searches:,}",
            ", ".join(f"“{query}” ({count})" for query, count in usage.top_searches) or "none",
            rows,
        )


# --- Banners and empty-state guides (issue 16, branch `surfaces`) ----------------------------

_SURFACE_FIELDS = (
    "workspace", "key", "name", "page_url_pattern", "when_present", "wait_timeout_ms", "title",
    "body_markdown", "cta_label", "cta_url", "dismissible",
)  # fmt: skip
_SURFACE_TARGETING = ("segment", "frequency", "priority", "starts_at", "ends_at")


class SurfaceAdmin(PublishableAdmin):
    readonly_fields = (*PublishableAdmin.readonly_fields, "engagement")  # type: ignore[assignment]

    @admin.display(description="Engagement (all versions)")
    def engagement(self, obj: Any) -> str:
        if obj.pk is None:
            return "-"
        figures = queries.surface_engagement(obj)
        rate = (
            f" ({100 * figures['clicks'] / figures['views']:.0f} % of views)"
            if figures["views"]
            else ""
        )
        return (
            f"{figures['views']} views by {figures['viewers']} "
            f"{'person' if figures['viewers'] == 1 else 'people'} · "
            f"{figures['dismissals']} dismissed · {figures['clicks']} call-to-action clicks{rate}"
        )


@admin.register(Banner)
class BannerAdmin(SurfacePreviewMixin, BuilderAdminMixin, SurfaceAdmin):
    builder_kind = "banner"
    list_display = ("name", "key", "workspace", "position", "mode", "publication", "engagement")
    fields = (
        "surface_preview",
        *_SURFACE_FIELDS,
        "position",
        "mode",
        *_SURFACE_TARGETING,
        *SurfaceAdmin.readonly_fields,
    )
    readonly_fields = (*SurfaceAdmin.readonly_fields, "surface_preview")  # type: ignore[assignment]

    class Media:
        js = ("milepost/preview.js",)


@admin.register(Guide)
class GuideAdmin(BuilderAdminMixin, SurfaceAdmin):
    builder_kind = "guide"
    list_display = (
        "name",
        "key",
        "workspace",
        "selector",
        "page_url_pattern",
        "publication",
        "engagement",
    )
    fields = (
        *_SURFACE_FIELDS[:3],
        "selector",
        *_SURFACE_FIELDS[3:],
        *_SURFACE_TARGETING,
        *SurfaceAdmin.readonly_fields,
    )


def _operator_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    return [
        (kind.capitalize(), [(op, f"{op} ({label})") for op, label in operators.items()])
        for kind, operators in validation.OPERATORS_BY_KIND.items()
    ]


class ConditionForm(forms.ModelForm):
    operator = forms.ChoiceField(
        choices=_operator_choices,
        error_messages={
            "invalid_choice": "Unknown operator %(value)s; choose one from the list "
            "(each kind of condition has its own operators)."
        },
    )

    def clean_people(self) -> Any:
        # An empty box is no list (the column holds [], never null).
        return self.cleaned_data.get("people") or []

    def clean_event_properties(self) -> Any:
        return self.cleaned_data.get("event_properties") or {}

    class Meta:
        model = Condition
        fields = (
            "position", "kind", "trait", "milestone", "event_name", "event_properties", "operator",
            "value", "people",
        )  # fmt: skip


class ConditionInline(ScopedInline):
    model = Condition
    form = ConditionForm
    ordering = ("position", "id")


@admin.register(Segment)
class SegmentAdmin(WorkspaceScopedAdmin):
    list_display = ("name", "key", "workspace", "match")
    list_filter = (("workspace", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("key", "name")
    fields = ("workspace", "key", "name", "match")
    inlines = [ConditionInline]


# Published versions ----------------------------------------------------------------------


@admin.register(PublishedVersion)
class PublishedVersionAdmin(WorkspaceScopedAdmin):
    list_display = ("key", "kind", "version", "published_at", "published_by", "restored_from")
    list_filter = ("kind", ("workspace", admin.RelatedOnlyFieldListFilter))
    search_fields = ("key",)
    list_select_related = ("published_by",)
    fields = (
        "workspace", "kind", "key", "object_id", "version", "published_at", "published_by",
        "restored_from", "pretty_snapshot",
    )  # fmt: skip
    readonly_fields = fields
    actions = ["restore"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_restore_permission(self, request: HttpRequest) -> bool:
        return _may(request, None, set(EDITOR_ROLES))

    @admin.display(description="Snapshot")
    def pretty_snapshot(self, obj: PublishedVersion) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.snapshot, indent=2, sort_keys=True))

    @admin.action(description="Restore this version (publishes it again)", permissions=["restore"])
    def restore(self, request: HttpRequest, queryset: Any) -> None:
        versions = list(queryset[:2])
        if len(versions) != 1:
            self.message_user(request, "Select exactly one version to restore.", messages.ERROR)
            return
        version = versions[0]
        if not _may(request, version.workspace_id, set(EDITOR_ROLES)):
            self.message_user(request, "You may not edit this workspace.", messages.ERROR)
            return
        try:
            restored = services.content_restore(version=version, user=request.user)
        except ValidationError as error:
            self.message_user(request, f"Not restored: {' '.join(error.messages)}", messages.ERROR)
            return
        self.message_user(
            request,
            f"Restored {version.key} v{version.version} as version {restored.version}.",
        )


# Recorded data (read-only) ---------------------------------------------------------------


class MilestoneChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.journey.name}: {obj.name} ({obj.key})"


class CompleteMilestoneForm(forms.Form):
    milestone = MilestoneChoiceField(
        queryset=Milestone.objects.none(),
        help_text="Recorded as reported from admin, now, for each selected end user.",
    )

    def __init__(self, *args: Any, workspace_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["milestone"]
        assert isinstance(field, forms.ModelChoiceField)  # noqa: S101 (narrowing for mypy)
        field.queryset = Milestone.objects.filter(workspace_id=workspace_id).select_related(
            "journey"
        )


@admin.register(EndUser)
class EndUserAdmin(ReadOnlyScopedAdmin):
    list_display = ("external_id", "workspace", "lifecycle_stage", "first_seen_at", "last_seen_at")
    list_filter = ("lifecycle_stage", ("workspace", admin.RelatedOnlyFieldListFilter))
    search_fields = ("external_id",)
    list_select_related = ("workspace",)
    show_full_result_count = False
    actions = ["complete_milestone"]

    # Deleting an end user here is an erasure like DELETE /api/v1/users/{id}: every record of
    # the person goes, and the audit trail says which admin user asked.
    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        from onboarding.recording import end_user_erase

        assert isinstance(request.user, User)  # noqa: S101 - the admin needs a signed-in user
        end_user_erase(
            end_user=obj, requested_by=ErasureRecord.Requester.ADMIN, admin_user=request.user
        )

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for end_user in queryset.select_related("workspace"):
            self.delete_model(request, end_user)

    def has_complete_milestone_permission(self, request: HttpRequest) -> bool:
        return _may(request, None, set(EDITOR_ROLES))

    @admin.action(
        description="Complete a milestone (server-side)", permissions=["complete_milestone"]
    )
    def complete_milestone(self, request: HttpRequest, queryset: Any) -> Any:
        from onboarding.recording import milestone_complete

        end_users = list(queryset.select_related("workspace"))
        workspace_ids = {end_user.workspace_id for end_user in end_users}
        if len(workspace_ids) != 1:
            self.message_user(
                request, "Select end users of one workspace at a time.", messages.ERROR
            )
            return None
        workspace_id = workspace_ids.pop()
        if not _may(request, workspace_id, set(EDITOR_ROLES)):
            self.message_user(request, "You may not edit this workspace.", messages.ERROR)
            return None
        form = CompleteMilestoneForm(
            request.POST if "apply" in request.POST else None, workspace_id=workspace_id
        )
        if form.is_valid():
            milestone = form.cleaned_data["milestone"]
            completed = sum(
                milestone_complete(end_user=end_user, milestone=milestone, source="admin")
                is not None
                for end_user in end_users
            )
            self.message_user(
                request,
                f"{milestone.name}: completed for {completed} end user(s); "
                f"{len(end_users) - completed} had reached it already.",
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Complete a milestone",
            "opts": self.model._meta,
            "form": form,
            "end_users": end_users,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(
            request, "admin/onboarding/enduser/complete_milestone.html", context
        )


@admin.register(Event)
class EventAdmin(ReadOnlyScopedAdmin):
    list_display = ("name", "end_user", "timestamp", "source", "workspace")
    list_filter = ("source", ("workspace", admin.RelatedOnlyFieldListFilter))
    search_fields = ("name", "end_user__external_id")
    list_select_related = ("end_user", "workspace")
    show_full_result_count = False


@admin.register(JourneyProgress)
class JourneyProgressAdmin(ReadOnlyScopedAdmin):
    list_display = ("end_user", "journey", "started_at", "completed_at", "pql_at")
    list_filter = (("journey", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("end_user__external_id",)
    list_select_related = ("end_user", "journey")
    show_full_result_count = False


@admin.register(MilestoneCompletion)
class MilestoneCompletionAdmin(ReadOnlyScopedAdmin):
    list_display = ("end_user", "milestone", "journey", "completed_at", "source")
    list_filter = ("source", ("milestone", admin.RelatedOnlyFieldListFilter))
    search_fields = ("end_user__external_id", "milestone__key")
    list_select_related = ("end_user", "milestone", "journey")
    show_full_result_count = False


@admin.register(ErasureRecord)
class ErasureRecordAdmin(ReadOnlyScopedAdmin):
    """The erasure audit trail: read-only for everyone, superusers included. Searching for an
    external id finds its erasures through the same keyed hash, never the id in clear."""

    list_display = ("requested_at", "workspace", "requester", "erased_counts", "subject_hash")
    list_filter = ("requested_by", ("workspace", admin.RelatedOnlyFieldListFilter))
    search_fields = ("subject_hash",)
    search_help_text = "Search by the person's external id (compared through its hash)."
    list_select_related = ("workspace", "admin_user")
    readonly_fields = (
        "workspace",
        "requested_at",
        "requester",
        "erased_counts",
        "subject_hash",
    )
    fields = readonly_fields

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_search_results(
        self, request: HttpRequest, queryset: Any, search_term: str
    ) -> tuple[Any, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        hashes = [
            ErasureRecord.subject_hash_for(workspace_id=workspace_id, external_id=term)
            for workspace_id in queryset.values_list("workspace_id", flat=True).distinct()
        ]
        return queryset.filter(subject_hash__in=hashes), False

    @admin.display(description="Requested by")
    def requester(self, obj: ErasureRecord) -> str:
        if obj.requested_by == ErasureRecord.Requester.ADMIN:
            who = obj.admin_user.get_username() if obj.admin_user else "a deleted user"
            return f"Admin user {who}"
        return f"Secret key {obj.secret_key_hint}…"

    @admin.display(description="Erased")
    def erased_counts(self, obj: ErasureRecord) -> str:
        # In the order erasure counts them (PostgreSQL's jsonb keeps keys in its own order).
        order = {what: position for position, what in enumerate(ERASED_KINDS)}
        counts = sorted(obj.erased.items(), key=lambda item: order.get(item[0], len(order)))
        return ", ".join(f"{count} {what}" for what, count in counts)


# Experiments -----------------------------------------------------------------------------


class ExperimentForm(forms.ModelForm):
    variants = forms.JSONField(
        help_text='A JSON list, the control first: [{"key": "control", "weight": 50, '
        '"content_key": "…"}, …]; "content_key": null is a holdout (shows nothing). Fixed once '
        "the experiment has started.",
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
    )

    class Meta:
        model = Experiment
        fields = (
            "workspace", "key", "name", "content_kind", "content_key", "variants", "segment",
            "starts_at", "ends_at", "goal_milestone", "goal_window", "minimum_sample",
        )  # fmt: skip

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        running = self.instance.pk is not None and self.instance.status != Experiment.Status.DRAFT
        fixed = ("content_kind", "content_key", "variants")
        if running and any(name in self.changed_data for name in fixed):
            raise ValidationError(
                f"This experiment is {self.instance.status}: its content and variants are fixed "
                "once started (changing them would move people between variants)."
            )
        return data


@admin.register(Experiment)
class ExperimentAdmin(WorkspaceScopedAdmin):
    form = ExperimentForm
    list_display = ("name", "key", "workspace", "content", "status", "shipped_variant", "results")
    list_filter = ("status",)
    readonly_fields = ("status", "shipped_variant", "controls")
    actions = ("start_selected", "stop_selected")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(ExperimentForm.Meta.fields)
        return [*fields, *self.readonly_fields] if obj is not None else fields

    @admin.display(description="content")
    def content(self, experiment: Experiment) -> str:
        return f"{experiment.content_kind} {experiment.content_key}"

    @admin.display(description="results")
    def results(self, experiment: Experiment) -> str:
        link = reverse("admin:analytics_dashboard", args=["experiment"])
        return format_html(
            '<a href="{}?{}">Results</a>', link, urlencode({"experiment": experiment.key})
        )

    @admin.display(description="start, stop, ship")
    def controls(self, experiment: Experiment) -> str:
        """Buttons that post the change form to the experiment's own action URLs."""
        buttons: list[tuple[str, str]] = []
        if experiment.status in {Experiment.Status.DRAFT, Experiment.Status.STOPPED}:
            buttons.append(("start", "Start"))
        if experiment.status == Experiment.Status.RUNNING:
            buttons.append(("stop", "Stop"))
        if experiment.status != Experiment.Status.SHIPPED and isinstance(experiment.variants, list):
            buttons += [
                (f"ship:{v.get('key')}", f"Ship {v.get('key')}")
                for v in experiment.variants
                if isinstance(v, dict)
            ]
        html = format_html_join(
            " ",
            '<button type="submit" formaction="action/" name="_do" value="{}">{}</button>',
            buttons,
        )
        return format_html("{} {}", html, self.results(experiment))

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<path:object_id>/change/action/",
                self.admin_site.admin_view(self.action_view),
                name="onboarding_experiment_action",
            ),
            *super().get_urls(),
        ]

    def action_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        experiment = self.get_object(request, object_id)
        if experiment is None or not self.has_change_permission(request, experiment):
            raise Http404("No such experiment in your workspaces.")
        back = reverse("admin:onboarding_experiment_change", args=[experiment.pk])
        if request.method != "POST":
            return HttpResponseRedirect(back)
        do = request.POST.get("_do", "")
        try:
            if do == "start":
                experiments.experiment_start(experiment=experiment)
            elif do == "stop":
                experiments.experiment_stop(experiment=experiment)
            elif do.startswith("ship:"):
                experiments.experiment_ship(experiment=experiment, variant=do.removeprefix("ship:"))
            else:
                raise ValidationError(f"Unknown action {do!r}.")
        except ValidationError as error:
            self.message_user(request, " ".join(error.messages), messages.ERROR)
        else:
            verb = {"start": "started", "stop": "stopped"}.get(do, f"shipped {do[5:]}")
            self.message_user(request, f"{experiment.name}: {verb}.", messages.SUCCESS)
        return HttpResponseRedirect(back)

    def _each(
        self, request: HttpRequest, queryset: Any, run: Callable[..., Any], verb: str
    ) -> None:
        for experiment in queryset:
            try:
                run(experiment=experiment)
            except ValidationError as error:
                self.message_user(
                    request, f"{experiment.name}: {' '.join(error.messages)}", messages.ERROR
                )
            else:
                self.message_user(request, f"{experiment.name}: {verb}.", messages.SUCCESS)

    @admin.action(description="Start the selected experiments")
    def start_selected(self, request: HttpRequest, queryset: Any) -> None:
        self._each(request, queryset, experiments.experiment_start, "started")

    @admin.action(description="Stop the selected experiments")
    def stop_selected(self, request: HttpRequest, queryset: Any) -> None:
        self._each(request, queryset, experiments.experiment_stop, "stopped")


# Translations (their own module: a status page, a per-item form, files in and out).
from onboarding import admin_translations  # noqa: E402, F401
