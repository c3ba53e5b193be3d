from __future__ import annotations

from django.urls import path

from onboarding.api import views, widget
from onboarding.api.authoring import authoring_urlpatterns
from onboarding.api.builder import builder_urlpatterns
from onboarding.api.translations import translation_urlpatterns
from onboarding.batching import on_database_pool

app_name = "api"

# The runtime's endpoints run on the database pool (many at once per process); the rest on
# Django's thread for sync views.

urlpatterns = [
    path("health", views.HealthView.as_view(), name="health"),
    path("events", on_database_pool(views.EventsView.as_view()), name="events"),
    path("users/<str:external_id>", on_database_pool(views.EndUserView.as_view()), name="end-user"),
    path(
        "users/<str:external_id>/progress",
        on_database_pool(views.ProgressView.as_view()),
        name="progress",
    ),
    path(
        "users/<str:external_id>/milestones/<slug:milestone_key>",
        on_database_pool(views.MilestoneReportView.as_view()),
        name="milestone-report",
    ),
    path(
        "widget/bootstrap",
        on_database_pool(widget.WidgetBootstrapView.as_view()),
        name="widget-bootstrap",
    ),
    path(
        "widget/events", on_database_pool(widget.WidgetEventsView.as_view()), name="widget-events"
    ),
    path(
        "widget/progress",
        on_database_pool(widget.WidgetProgressView.as_view()),
        name="widget-progress",
    ),
    path("widget/stream", widget.widget_stream, name="widget-stream"),
]

urlpatterns += authoring_urlpatterns + builder_urlpatterns + translation_urlpatterns
