"""Settings of the test host project; Milepost's address and keys come from the test."""

from __future__ import annotations

import os
from pathlib import Path

from csp.constants import NONCE, SELF

SECRET_KEY = "acme-host-test-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "acme_host.urls"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "csp",
    "milepost_client.django",
    "acme_host",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "csp.middleware.CSPMiddleware",
]
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": Path(os.environ["HOST_DB"])}
}
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
USE_TZ = True
MILEPOST_URL = os.environ["MILEPOST_URL"]
MILEPOST = {
    "URL": MILEPOST_URL,
    "PUBLISHABLE_KEY": os.environ["MILEPOST_PUBLISHABLE_KEY"],
    "SECRET_KEY": os.environ["MILEPOST_SECRET_KEY"],
    "IDENTITY_SECRET": os.environ["MILEPOST_IDENTITY_SECRET"],
    "USER_ID": "acme_host.views.milepost_user_id",
    "USER_TRAITS": "acme_host.views.milepost_traits",
    "CLIENT_OPTIONS": {"flush_interval": 0.1},
}
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [NONCE, "'strict-dynamic'"],
        # The SDK talks to Milepost over a WebSocket, with HTTP as its fallback.
        "connect-src": [SELF, MILEPOST_URL, "ws" + MILEPOST_URL.removeprefix("http")],
    }
}
