from __future__ import annotations

from django.urls import path

from onboarding.api import views, widget
from onboarding.api.authoring import authoring_urlpatterns

app_name = "api"

urlpatterns = [
    path("health", views.HealthView.as_view(), name="health"),
    path("events", views.EventsView.as_view(), name="events"),
    path("users/<str:external_id>", views.EndUserView.as_view(), name="end-user"),
    path("users/<str:external_id>/progress", views.ProgressView.as_view(), name="progress"),
    path(
        "users/<str:external_id>/milestones/<slug:milestone_key>",
        views.MilestoneReportView.as_view(),
        name="milestone-report",
    ),
    path("widget/bootstrap", widget.WidgetBootstrapView.as_view(), name="widget-bootstrap"),
    path("widget/events", widget.WidgetEventsView.as_view(), name="widget-events"),
    path("widget/progress", widget.WidgetProgressView.as_view(), name="widget-progress"),
    path("widget/stream", widget.widget_stream, name="widget-stream"),
]

urlpatterns += authoring_urlpatterns
