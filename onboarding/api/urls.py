from __future__ import annotations

from django.urls import path

from onboarding.api import views

app_name = "api"

urlpatterns = [
    path("health", views.HealthView.as_view(), name="health"),
]
