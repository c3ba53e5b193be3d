"""Milepost settings, read from the environment (see .env.example and the README's table).

Two modes run the same code:
- embedded default (no DATABASE_URL / REDIS_URL): SQLite, in-memory channel layer, Celery
  tasks run eagerly in-process;
- production: PostgreSQL from DATABASE_URL, Redis channel layer and Celery broker from REDIS_URL.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from milepost.env import (
    env_bool,
    env_database,
    env_int,
    env_list,
    env_redis_url,
    env_str,
    env_url,
)

PACKAGE_DIR = Path(__file__).resolve().parent
BASE_DIR = PACKAGE_DIR.parent
# A checkout keeps templates/ and static/ (with the built SDK) at its top; the wheel carries
# them inside the package (pyproject.toml), and an installed Milepost keeps its data in the
# directory it is started from rather than in site-packages.
INSTALLED_FROM_WHEEL = (PACKAGE_DIR / "templates").is_dir()
RESOURCE_DIR = PACKAGE_DIR if INSTALLED_FROM_WHEEL else BASE_DIR
_DEFAULT_VAR_DIR = Path.cwd() / "milepost-data" if INSTALLED_FROM_WHEEL else BASE_DIR / "var"
VAR_DIR = Path(env_str("MILEPOST_VAR_DIR", str(_DEFAULT_VAR_DIR)))
VAR_DIR.mkdir(parents=True, exist_ok=True)  # holds the embedded SQLite file and collected static

REDIS_URL = env_redis_url("REDIS_URL")
DATABASES = {
    "default": env_database(
        "DATABASE_URL",
        {"ENGINE": "django.db.backends.sqlite3", "NAME": VAR_DIR / "milepost.sqlite3"},
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several threads write at once (uvicorn, sync_to_async): WAL lets readers go on during a
    # write, IMMEDIATE transactions take the write lock up front instead of failing to upgrade
    # a read lock, and the timeout makes a writer wait for another rather than error.
    DATABASES["default"].setdefault(
        "OPTIONS",
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    )
    # A file, not shared-cache memory, for the test database: shared-cache memory databases
    # lock whole tables and fail at once when a server thread and the test write together.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
EMBEDDED = DATABASES["default"]["ENGINE"].endswith("sqlite3") and REDIS_URL is None

DEBUG = env_bool("DEBUG", EMBEDDED)
_DEV_SECRET = "milepost-embedded-development-key-not-for-production"  # noqa: S105
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
PUBLIC_URL = env_url("PUBLIC_URL", "http://127.0.0.1:8000")
DEMO_HOST_URL = env_url("DEMO_HOST_URL", "http://localhost:8001")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "channels",
    "onboarding",
    "analytics",
    "engagement",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "milepost.middleware.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "milepost.urls"
ASGI_APPLICATION = "milepost.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [RESOURCE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [RESOURCE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Channels: the Redis layer built on pub/sub delivers group sends reliably at the rates measured
# in DESIGN.md; the core RedisChannelLayer drops group messages once a consumer falls behind.
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CACHES = (
    {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    if REDIS_URL
    else {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
)

# Celery: eager in the embedded mode so `make run` needs no broker or worker.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", REDIS_URL is None)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Milepost <milepost@localhost>")

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["onboarding.api.parsers.StrictJSONParser"],
    "EXCEPTION_HANDLER": "onboarding.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Milepost API",
    "DESCRIPTION": "Server-to-server, widget and authoring API of Milepost.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "onboarding.api.schema.add_widget_stream",
    ],
}

# Explicit limits of the write path, documented in the README.
MILEPOST_MAX_EVENTS_PER_BATCH = env_int("MILEPOST_MAX_EVENTS_PER_BATCH", 500, minimum=1)
MILEPOST_MAX_BATCH_BYTES = env_int("MILEPOST_MAX_BATCH_BYTES", 500 * 1024, minimum=1024)
MILEPOST_MAX_EVENT_BYTES = env_int("MILEPOST_MAX_EVENT_BYTES", 32 * 1024, minimum=256)
MILEPOST_MAX_PROPERTY_DEPTH = env_int("MILEPOST_MAX_PROPERTY_DEPTH", 5, minimum=1)
MILEPOST_MAX_SOCKET_MESSAGES_PER_MINUTE = env_int(
    "MILEPOST_MAX_SOCKET_MESSAGES_PER_MINUTE", 600, minimum=1
)
MILEPOST_MAX_MESSAGES_PER_KEY_PER_MINUTE = env_int(
    "MILEPOST_MAX_MESSAGES_PER_KEY_PER_MINUTE", 60_000, minimum=1
)
# The socket path's concurrency: database threads per process (each holds one connection, so
# a process needs at most this many), how long a group commit waits for more sockets' messages
# (0: none; under load groups form while earlier ones are written anyway, so a lone hello or
# event is not kept waiting for company; see bench/README.md), and how many messages one
# connection may have waiting before it is told `backlog_full`.
MILEPOST_DB_THREADS = env_int("MILEPOST_DB_THREADS", 4, minimum=1)
MILEPOST_GROUP_COMMIT_MS = env_int("MILEPOST_GROUP_COMMIT_MS", 0, minimum=0)
MILEPOST_SOCKET_BACKLOG = env_int("MILEPOST_SOCKET_BACKLOG", 32, minimum=1)
# Time-based engagement rules: a sweep every MILEPOST_ENGAGEMENT_SWEEP_SECONDS, from Celery beat
# in production and from an in-process scheduler that `manage.py run_milepost` starts beside
# the servers in the embedded mode (no broker or worker needed).
MILEPOST_ENGAGEMENT_SWEEP_SECONDS = env_int("MILEPOST_ENGAGEMENT_SWEEP_SECONDS", 60, minimum=5)
CELERY_BEAT_SCHEDULE = {
    "engagement-sweep": {
        "task": "engagement.tasks.sweep",
        "schedule": float(MILEPOST_ENGAGEMENT_SWEEP_SECONDS),
        # A pass that could not start before the next one is due is replaced by it.
        "options": {"expires": float(MILEPOST_ENGAGEMENT_SWEEP_SECONDS)},
    }
}
MILEPOST_BACKGROUND_TASKS: list[str] = [] if REDIS_URL else ["engagement.scheduler.run"]

DATA_UPLOAD_MAX_MEMORY_SIZE = MILEPOST_MAX_BATCH_BYTES + 64 * 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
