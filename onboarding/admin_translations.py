"""Admin for translations: what is untranslated (per piece of content and language), a form
to translate one piece of content into one language, and translation files in and out (the
same formats, checks and results as `manage.py translations_export / translations_import`)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from onboarding import translation_files, translations
from onboarding.admin import ALL_ROLES, EDITOR_ROLES, WorkspaceScopedAdmin, _may, roles_of
from onboarding.models import Translation, Workspace


class ImportForm(forms.Form):
    workspace = forms.ModelChoiceField(queryset=Workspace.objects.none())
    locale = forms.CharField(
        required=False, max_length=35, help_text="Empty: the language the file names."
    )
    file = forms.FileField(help_text="A .po, .xliff (.xlf), .csv or .json file, as exported.")


@admin.register(Translation)
class TranslationAdmin(WorkspaceScopedAdmin):
    list_display = ("key", "kind", "locale", "path", "short_text", "workspace")
    list_filter = ("workspace", "kind", "locale")
    search_fields = ("key", "path", "text")
    fields = ("workspace", "kind", "key", "path", "locale", "text", "source_text")
    readonly_fields = ("workspace", "kind", "key", "path", "locale", "source_text")
    change_list_template = "admin/onboarding/translation/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # through the status page's form or a file: the paths are checked there

    @admin.display(description="Translation")
    def short_text(self, obj: Translation) -> str:
        return obj.text if len(obj.text) <= 80 else obj.text[:79] + "…"

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view
        return [
            path("status/", view(self.status_view), name="onboarding_translation_status"),
            path(
                "translate/<int:workspace_id>/<str:kind>/<slug:key>/<str:locale>/",
                view(self.translate_view),
                name="onboarding_translation_translate",
            ),
            path(
                "export/<int:workspace_id>/<str:locale>.<str:fmt>",
                view(self.export_view),
                name="onboarding_translation_export",
            ),
            path("import/", view(self.import_view), name="onboarding_translation_import"),
            *super().get_urls(),
        ]

    def _workspace(self, request: HttpRequest, workspace_id: int, roles: set[str]) -> Workspace:
        workspace = Workspace.objects.filter(pk=workspace_id).first()
        if workspace is None or not (
            request.user.is_superuser or workspace_id in roles_of(request)
        ):
            raise Http404("No such workspace among yours.")
        if not _may(request, workspace_id, roles):
            raise PermissionDenied
        return workspace

    def status_view(self, request: HttpRequest) -> TemplateResponse:
        """Per workspace: each piece of content in each language, with what is missing."""
        workspaces = Workspace.objects.filter(pk__in=list(roles_of(request))).order_by("name")
        extra = translations.normalise(request.GET.get("locale"))
        sections = []
        for workspace in workspaces:
            tags = translations.workspace_locales(workspace=workspace)
            if extra and extra not in tags and extra != workspace.default_locale:
                tags.append(extra)
            sections.append(
                {
                    "workspace": workspace,
                    "locales": tags,
                    "rows": translations.translation_status(workspace=workspace, locales=tags),
                    "may_edit": _may(request, workspace.pk, set(EDITOR_ROLES)),
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "title": "Translation status",
            "opts": self.model._meta,
            "sections": sections,
            "formats": translation_files.FORMATS,
        }
        return TemplateResponse(request, "admin/onboarding/translation/status.html", context)

    def translate_view(
        self, request: HttpRequest, workspace_id: int, kind: str, key: str, locale: str
    ) -> HttpResponse:
        """One piece of content in one language: each source text beside its translation."""
        roles: set[str] = set(EDITOR_ROLES) if request.method == "POST" else ALL_ROLES
        workspace = self._workspace(request, workspace_id, roles)
        tag = translations.normalise(locale)
        registered = translations.KINDS.get(kind)
        document = next(
            (d for k, d in registered.documents(workspace.pk) if k == key), None
        ) if registered else None  # fmt: skip
        if tag is None or document is None:
            raise Http404("No such content or language.")
        sources = translations.source_texts(kind, document)
        stored = {
            row.path: row
            for row in Translation.objects.filter(
                workspace=workspace, kind=kind, key=key, locale=tag
            )
        }
        errors: list[str] = []
        if request.method == "POST":
            texts = [(p, request.POST.get(f"t:{p}", "")) for p in sources]
            try:
                result = translation_files.translation_set(
                    workspace=workspace, kind=kind, key=key, locale=tag, texts=texts
                )
            except ValidationError as error:
                errors = error.messages
            else:
                # An emptied field removes its translation: the source text shows again.
                cleared = [p for p, text in texts if not text.strip() and p in stored]
                Translation.objects.filter(
                    workspace=workspace, kind=kind, key=key, locale=tag, path__in=cleared
                ).delete()
                messages.success(
                    request,
                    f"Saved {kind} {key} in {tag}: {result.created} new, {result.updated} "
                    f"changed, {len(cleared)} cleared. Publish the content to put them live"
                    + (" (messages use them at once)." if kind == "message" else "."),
                )
                return HttpResponseRedirect(request.path)
        rows = [
            {
                "path": p,
                "source": source,
                "text": request.POST.get(f"t:{p}", "")
                if request.method == "POST"
                else (stored[p].text if p in stored else ""),
                "outdated": p in stored and stored[p].source_text != source,
                "long": "\n" in source or len(source) > 80,
            }
            for p, source in sources.items()
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": f"Translate {kind} “{key}” into {tag}",
            "opts": self.model._meta,
            "workspace": workspace,
            "rows": rows,
            "errors": errors,
            "may_edit": _may(request, workspace.pk, set(EDITOR_ROLES)),
            "status_url": reverse("admin:onboarding_translation_status"),
        }
        return TemplateResponse(request, "admin/onboarding/translation/translate.html", context)

    def export_view(
        self, request: HttpRequest, workspace_id: int, locale: str, fmt: str
    ) -> HttpResponse:
        workspace = self._workspace(request, workspace_id, ALL_ROLES)
        try:
            body = translation_files.export(workspace=workspace, locale=locale, fmt=fmt)
        except ValidationError as error:
            raise Http404("; ".join(error.messages)) from None
        response = HttpResponse(body, content_type=f"{translation_files.CONTENT_TYPES[fmt]}")
        response["Content-Disposition"] = f'attachment; filename="{workspace.slug}-{locale}.{fmt}"'
        return response

    def import_view(self, request: HttpRequest) -> HttpResponse:
        form = ImportForm(request.POST or None, request.FILES or None)
        editable = [pk for pk, role in roles_of(request).items() if role in EDITOR_ROLES]
        form.fields["workspace"].queryset = Workspace.objects.filter(pk__in=editable)  # type: ignore[attr-defined]
        errors: list[str] = []
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                fmt = translation_files.format_of(upload.name)
                text = upload.read(translation_files.MAX_FILE_BYTES + 1).decode("utf-8")
                result = translation_files.translations_import(
                    workspace=form.cleaned_data["workspace"],
                    text=text,
                    fmt=fmt,
                    locale=form.cleaned_data["locale"] or None,
                )
            except UnicodeDecodeError:
                errors = ["file: The file is not UTF-8 text."]
            except ValidationError as error:
                errors = error.messages
            else:
                messages.success(
                    request,
                    f"Imported {upload.name} ({result.locale}): {result.created} new, "
                    f"{result.updated} changed, {result.unchanged} unchanged, "
                    f"{result.skipped_empty} left untranslated. Publish the content to put them "
                    "live.",
                )
                return HttpResponseRedirect(reverse("admin:onboarding_translation_status"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Import translations",
            "opts": self.model._meta,
            "form": form,
            "errors": errors,
        }
        return TemplateResponse(request, "admin/onboarding/translation/import.html", context)
