"""The "Preview" row of a banner's and a survey's change page in admin: the widget's own code
(static/milepost/preview.js, widget/src/preview_surfaces.ts) draws the last saved draft as end
users get it, on the admin page itself, before anything is published. The builder ("Edit on my
app") shows the same piece on the customer's own page instead."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.utils.html import format_html

from onboarding import queries
from onboarding.models import Banner, Survey


class SurfacePreviewMixin:
    """For the admins of banners and surveys: add "surface_preview" to `fields` and
    `readonly_fields`, and "milepost/preview.js" to the admin's Media."""

    @admin.display(description="Preview")
    def surface_preview(self, obj: Any) -> str:
        if obj is None or obj.pk is None:
            return "Save to see it as end users will."
        if isinstance(obj, Survey):
            kind, snapshot = "survey", queries.survey_snapshot(obj)
        elif isinstance(obj, Banner):
            kind, snapshot = "banner", queries.surface_snapshot(obj)
        else:
            return "-"
        return format_html(
            '<div data-milepost-surface-preview data-kind="{}" data-item="{}" data-theme="{}">'
            "Loading the preview…</div>",
            kind,
            json.dumps(snapshot),
            json.dumps(obj.workspace.theme or {}),
        )
