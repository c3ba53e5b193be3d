from __future__ import annotations

from django.urls import URLPattern, path

from engagement import views

app_name = "engagement"

urlpatterns: list[URLPattern] = [
    path("unsubscribe/<str:token>", views.unsubscribe, name="unsubscribe"),
]
