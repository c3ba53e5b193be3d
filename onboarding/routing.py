from __future__ import annotations

from django.urls import path

from onboarding.consumers import WidgetConsumer

websocket_urlpatterns = [path("ws/widget/", WidgetConsumer.as_asgi())]
