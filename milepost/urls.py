from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

admin.site.site_header = "Milepost"
admin.site.site_title = "Milepost admin"
admin.site.index_title = "Onboarding, analytics and engagement"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/analytics/", include("analytics.urls")),
    path("api/v1/engagement/", include("engagement.urls")),
    path("api/v1/", include("onboarding.api.urls")),
]
