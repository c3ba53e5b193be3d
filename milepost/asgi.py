"""ASGI entry point: HTTP through Django, WebSockets through Channels, on one port, and the
lifespan, which sets a worker up before it accepts connections (milepost/lifespan.py).

Origins are checked by the widget consumer against each workspace's allowed origins, not by
Channels' AllowedHostsOriginValidator, which compares them with our own host.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "milepost.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from milepost import lifespan  # noqa: E402
from onboarding.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(websocket_urlpatterns),
        "lifespan": lifespan.application,
    }
)
