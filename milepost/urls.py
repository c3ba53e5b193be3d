from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)

from milepost.observability import metrics_view, readiness_view

admin.site.site_header = "Milepost"
admin.site.site_title = "Milepost admin"
admin.site.index_title = "Onboarding, analytics and engagement"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
    path("api/v1/ready", readiness_view, name="ready"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("api/v1/analytics/", include("analytics.urls")),
    path("api/v1/engagement/", include("engagement.urls")),
    path("api/v1/", include("onboarding.api.urls")),
]
