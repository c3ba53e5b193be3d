"""URLs for tests/test_observability.py: the product's, plus a view that fails unexpectedly."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path

from milepost.urls import urlpatterns as product_urlpatterns


def broken_view(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug the metrics should count")


urlpatterns = [*product_urlpatterns, path("broken", broken_view)]
