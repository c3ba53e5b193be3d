"""Admin's "Edit on my app": the change pages of walkthroughs, tooltips, progress bars,
empty-state guides, banners and surveys open the visual builder on one of the workspace's own
pages (see onboarding/builder.py).

The form posts the page's address; admin checks its origin is one the workspace allows, grants a
one-time token and redirects the new tab to `<address>#milepost-builder=<token>`, where the
snippet already on the page takes it over. Viewers may open it too: their builder looks, and
cannot save.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.contrib import messages
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.urls import path, reverse

from onboarding import builder
from onboarding.models import Banner, Guide, Survey, Tooltip, Walkthrough


def default_page(obj: Any) -> str:
    """Where the builder starts: the content's own page when its pattern names one page."""
    pattern = ""
    if isinstance(obj, Walkthrough):
        first = obj.steps.order_by("position", "id").first()
        pattern = first.page_url_pattern if first else ""
    elif isinstance(obj, Tooltip | Guide | Banner | Survey):
        pattern = obj.page_url_pattern
    if not pattern.startswith("/") or "*" in pattern or "?" in pattern:
        return "/"
    return pattern


class BuilderAdminMixin:
    """For PublishableAdmin subclasses whose content the builder edits."""

    builder_kind = ""

    def _builder_url_name(self) -> str:
        opts = self.model._meta  # type: ignore[attr-defined]
        return f"{opts.app_label}_{opts.model_name}_builder"

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.builder_view)  # type: ignore[attr-defined]
        return [
            path("<path:object_id>/builder/", view, name=self._builder_url_name()),
            *super().get_urls(),  # type: ignore[misc]
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = dict(extra_context or {})
        obj = self.get_object(request, object_id)  # type: ignore[attr-defined]
        if obj is not None:
            page = default_page(obj)
            addresses = [f"{origin}{page}" for origin in obj.workspace.allowed_origins]
            context["builder"] = {
                "action": reverse(f"admin:{self._builder_url_name()}", args=[obj.pk]),
                "addresses": addresses,
                "may_save": self.has_change_permission(request, obj),  # type: ignore[attr-defined]
            }
        return super().change_view(request, object_id, form_url, context)  # type: ignore[misc]

    def builder_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = self.get_object(request, object_id)  # type: ignore[attr-defined]
        if obj is None or not self.has_view_permission(request, obj):  # type: ignore[attr-defined]
            raise Http404("No such object in your workspaces.")
        change_url = reverse(
            f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk]
        )
        address = urlsplit(request.POST.get("address", "").strip())
        origin = f"{address.scheme}://{address.netloc}" if address.netloc else ""
        try:
            page = builder.check_page_path(
                address.path + (f"?{address.query}" if address.query else "")
            )
            token = builder.builder_grant(
                user=request.user,
                workspace=obj.workspace,
                origin=origin,
                kind=self.builder_kind,
                content_key=obj.key,
            )
        except builder.BuilderRefused as refused:
            messages.error(request, f"The builder did not open: {refused.message}")
            return HttpResponseRedirect(change_url)
        return HttpResponseRedirect(builder.builder_url(origin=origin, path=page, token=token))
