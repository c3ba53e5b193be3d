from __future__ import annotations

from django.urls import URLPattern, path

from analytics import api

app_name = "analytics"

urlpatterns: list[URLPattern] = [
    path("funnel", api.EventFunnelView.as_view(), name="funnel"),
    path("adoption/segments", api.AdoptionSegmentView.as_view(), name="adoption-segment"),
    *(
        path(slug, api.report_view(slug).as_view(), name=slug)
        for slug in (
            "journey-funnel",
            "velocity",
            "walkthrough-funnel",
            "retention",
            "lifecycle",
            "pqls",
            "adoption",
            "pai",
            "experiment",
        )
    ),
]
