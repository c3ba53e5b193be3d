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
    env_channel_prefix,
    env_choice,
    env_database,
    env_int,
    env_list,
    env_redis_url,
    env_str,
    env_url,
    redis_database,
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

# HTTPS by default in production: with DEBUG off and an https PUBLIC_URL, `manage.py check
# --deploy` passes with nothing else set. TLS usually ends at a proxy or load balancer, which
# must set X-Forwarded-Proto (and overwrite one sent by a client); the header it uses is
# MILEPOST_PROXY_SSL_HEADER ("none" when nothing sits in front and uvicorn serves TLS itself).
_HTTPS = not DEBUG and PUBLIC_URL.startswith("https://")
_PROXY_SSL_HEADER = env_str("MILEPOST_PROXY_SSL_HEADER", "X-Forwarded-Proto" if _HTTPS else "none")
if _PROXY_SSL_HEADER.lower() != "none":
    SECURE_PROXY_SSL_HEADER = (
        "HTTP_" + _PROXY_SSL_HEADER.upper().replace("-", "_"),
        "https",
    )
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _HTTPS)
# Load balancers probe over plain HTTP; a redirect would mark every process down.
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if _HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", _HTTPS)
# Preloading commits a whole registrable domain to HTTPS in every browser: only its owner can
# decide that (and on a subdomain, where Milepost usually runs, the directive does nothing).
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", _HTTPS)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", _HTTPS)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "onboarding",
    "analytics",
    "engagement",
]

MIDDLEWARE = [
    "milepost.middleware.ApiErrorsMiddleware",
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
# Redis pub/sub channels belong to the whole server, not to the database REDIS_URL selects: every
# channel name starts with this prefix, so two deployments (or test suites) on one Redis never
# hear each other's pushes. The default carries the database number; set it when two share one.
MILEPOST_CHANNEL_PREFIX = env_channel_prefix(
    "MILEPOST_CHANNEL_PREFIX",
    f"milepost.db{redis_database(REDIS_URL)}." if REDIS_URL else "milepost.",
)
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": MILEPOST_CHANNEL_PREFIX},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Short timeouts: the shared rate limits let calls through when Redis is unreachable, and
# must find out quickly rather than hold a request (or a database thread) for long.
REDIS_TIMEOUTS = {"socket_connect_timeout": 1.0, "socket_timeout": 1.0}
CACHES = (
    {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": REDIS_TIMEOUTS,
        }
    }
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
# A task taken by a worker that dies before acknowledging it (acks_late) goes back to the queue
# once this long has passed on the Redis broker; kombu's default is an hour. It must exceed the
# longest acks_late task (engagement deliveries: seconds; the retention purge: batches), or a
# task still running is handed to a second worker (they are idempotent, but work twice).
MILEPOST_TASK_VISIBILITY_TIMEOUT_SECONDS = env_int(
    "MILEPOST_TASK_VISIBILITY_TIMEOUT_SECONDS", 300, minimum=5
)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": MILEPOST_TASK_VISIBILITY_TIMEOUT_SECONDS}
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
    "DEFAULT_THROTTLE_CLASSES": ["onboarding.auth.SecretKeyRate"],
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
    # Swagger UI and Redoc come from the drf-spectacular-sidecar package: /api/docs/ works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
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
# Calls a minute per secret key on the server API (users, events, content, analytics).
MILEPOST_MAX_API_REQUESTS_PER_MINUTE = env_int(
    "MILEPOST_MAX_API_REQUESTS_PER_MINUTE", 6_000, minimum=1
)
# The socket path's concurrency: database threads per process (each holds one connection, so
# a process needs at most this many), how long a group commit waits for more sockets' messages
# (0: none; under load groups form while earlier ones are written anyway, so a lone hello or
# event is not kept waiting for company; see bench/README.md), and how many messages one
# connection may have waiting before it is told `backlog_full`.
MILEPOST_DB_THREADS = env_int("MILEPOST_DB_THREADS", 4, minimum=1)
# PostgreSQL connections come from one pool per process (psycopg_pool through Django), so a
# process never holds more than MILEPOST_DB_POOL_MAX_SIZE server connections, and no thread
# keeps one while idle: it is returned after each request, message or task. The database
# threads above, Django's thread for sync views and Channels' thread each take one while they
# work, hence the default of four more than the database threads; a caller that finds the pool
# empty waits up to MILEPOST_DB_POOL_TIMEOUT_SECONDS. While the pool stays idle, one connection
# beyond the minimum is closed every MILEPOST_DB_POOL_MAX_IDLE_SECONDS (psycopg_pool's pace).
# Sizing for a deployment: README.md.
MILEPOST_DB_POOL_MIN_SIZE = env_int("MILEPOST_DB_POOL_MIN_SIZE", 1, minimum=0)
MILEPOST_DB_POOL_MAX_SIZE = env_int(
    "MILEPOST_DB_POOL_MAX_SIZE", MILEPOST_DB_THREADS + 4, minimum=max(1, MILEPOST_DB_POOL_MIN_SIZE)
)
MILEPOST_DB_POOL_TIMEOUT_SECONDS = env_int("MILEPOST_DB_POOL_TIMEOUT_SECONDS", 10, minimum=1)
MILEPOST_DB_POOL_MAX_IDLE_SECONDS = env_int("MILEPOST_DB_POOL_MAX_IDLE_SECONDS", 30, minimum=1)
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # Django's backend with a breaker: while PostgreSQL is unreachable, callers are refused at
    # once rather than each waiting the pool timeout (milepost/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "milepost.postgresql"
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": MILEPOST_DB_POOL_MIN_SIZE,
        "max_size": MILEPOST_DB_POOL_MAX_SIZE,
        "timeout": float(MILEPOST_DB_POOL_TIMEOUT_SECONDS),
        "max_idle": float(MILEPOST_DB_POOL_MAX_IDLE_SECONDS),
    }
MILEPOST_GROUP_COMMIT_MS = env_int("MILEPOST_GROUP_COMMIT_MS", 0, minimum=0)
# Group commits of one kind (hellos, events) written at once per process: while one waits on
# PostgreSQL another's Python runs. Half the database threads by default, so hellos and events
# each keep some for themselves.
MILEPOST_GROUP_COMMITS = env_int(
    "MILEPOST_GROUP_COMMITS", max(1, MILEPOST_DB_THREADS // 2), minimum=1
)
MILEPOST_SOCKET_BACKLOG = env_int("MILEPOST_SOCKET_BACKLOG", 32, minimum=1)
# Time-based engagement rules: a sweep every MILEPOST_ENGAGEMENT_SWEEP_SECONDS, from Celery beat
# in production and from an in-process scheduler that `manage.py run_milepost` starts beside
# the servers in the embedded mode (no broker or worker needed).
MILEPOST_ENGAGEMENT_SWEEP_SECONDS = env_int("MILEPOST_ENGAGEMENT_SWEEP_SECONDS", 60, minimum=5)
# Data retention (Workspace.retention_days): a pass every MILEPOST_RETENTION_PURGE_SECONDS
# deletes expired events MILEPOST_RETENTION_BATCH_SIZE per transaction, so no transaction holds
# the events table for long.
MILEPOST_RETENTION_PURGE_SECONDS = env_int("MILEPOST_RETENTION_PURGE_SECONDS", 3600, minimum=60)
MILEPOST_RETENTION_BATCH_SIZE = env_int("MILEPOST_RETENTION_BATCH_SIZE", 5000, minimum=1)
CELERY_BEAT_SCHEDULE = {
    "engagement-sweep": {
        "task": "engagement.tasks.sweep",
        "schedule": float(MILEPOST_ENGAGEMENT_SWEEP_SECONDS),
        # A pass that could not start before the next one is due is replaced by it.
        "options": {"expires": float(MILEPOST_ENGAGEMENT_SWEEP_SECONDS)},
    },
    "retention-purge": {
        "task": "onboarding.tasks.purge_expired_events",
        "schedule": float(MILEPOST_RETENTION_PURGE_SECONDS),
        "options": {"expires": float(MILEPOST_RETENTION_PURGE_SECONDS)},
    },
}
# The analytics store (analytics/store.py): ClickHouse in this process (chDB) by default, a
# ClickHouse server in production. The export copies new events into it every
# ANALYTICS_EXPORT_SECONDS (Celery beat in production, the in-process scheduler embedded), in
# batches of ANALYTICS_EXPORT_BATCH rows, leaving alone events stamped in the last
# ANALYTICS_EXPORT_SETTLE_SECONDS (their transactions may still be committing).
ANALYTICS_URL = env_str("ANALYTICS_URL", f"chdb://{VAR_DIR / 'analytics'}")
if not ANALYTICS_URL.startswith(("chdb://", "http://", "https://")):
    raise ImproperlyConfigured(
        f"ANALYTICS_URL={ANALYTICS_URL!r} is neither chdb:///path nor http(s)://host:port/database."
    )
ANALYTICS_QUERY_TIMEOUT_SECONDS = env_int("ANALYTICS_QUERY_TIMEOUT_SECONDS", 30, minimum=1)
ANALYTICS_EXPORT_SECONDS = env_int("ANALYTICS_EXPORT_SECONDS", 20, minimum=1)
ANALYTICS_EXPORT_BATCH = env_int("ANALYTICS_EXPORT_BATCH", 100_000, minimum=10_000)
if ANALYTICS_EXPORT_BATCH > 1_000_000:  # ClickHouse writes up to a million rows atomically
    raise ImproperlyConfigured(
        f"ANALYTICS_EXPORT_BATCH={ANALYTICS_EXPORT_BATCH} is above its maximum of 1000000."
    )
ANALYTICS_EXPORT_SETTLE_SECONDS = env_int("ANALYTICS_EXPORT_SETTLE_SECONDS", 5, minimum=0)
# End users' lifecycle stage (admin's column, segments, breakdowns) is the lifecycle report's
# current state, written back after an export at most this often.
ANALYTICS_LIFECYCLE_REFRESH_SECONDS = env_int("ANALYTICS_LIFECYCLE_REFRESH_SECONDS", 300, minimum=1)
CELERY_BEAT_SCHEDULE["analytics-export"] = {
    "task": "analytics.tasks.export",
    "schedule": float(ANALYTICS_EXPORT_SECONDS),
    "options": {"expires": float(ANALYTICS_EXPORT_SECONDS)},
}
# The journey rollups (analytics/journey_rollups.py): a commit marks the quarter hour of starts
# it changed; every MILEPOST_ROLLUP_REFRESH_SECONDS the marked quarter hours are counted again,
# so journey funnel and velocity read stored rows only.
MILEPOST_ROLLUP_REFRESH_SECONDS = env_int("MILEPOST_ROLLUP_REFRESH_SECONDS", 5, minimum=1)
# A commit also wakes the refresh at once (analytics/rollup_refresh.py), so a report answers
# from the stored rows and leaves quarter hours marked less than this long ago to it; older
# marks (the refresh is down or behind) it counts itself. Reports lag commits by at most this.
MILEPOST_ROLLUP_FRESH_SECONDS = env_int("MILEPOST_ROLLUP_FRESH_SECONDS", 10, minimum=0)
CELERY_BEAT_SCHEDULE["journey-rollups-refresh"] = {
    "task": "analytics.tasks.refresh_journey_rollups",
    "schedule": float(MILEPOST_ROLLUP_REFRESH_SECONDS),
    "options": {"expires": float(MILEPOST_ROLLUP_REFRESH_SECONDS)},
}
MILEPOST_BACKGROUND_TASKS: list[str] = (
    []
    if REDIS_URL
    else [
        "engagement.scheduler.run",
        "analytics.scheduler.run",
        "analytics.scheduler.run_rollup_refresh",
        "onboarding.retention.run",
    ]
)

DATA_UPLOAD_MAX_MEMORY_SIZE = MILEPOST_MAX_BATCH_BYTES + 64 * 1024

# Prometheus metrics at /metrics: open in the embedded default; with a token set, only with
# `Authorization: Bearer <token>`; with DEBUG off and no token, closed.
MILEPOST_METRICS_TOKEN = env_str("MILEPOST_METRICS_TOKEN", "")

# Logs go to stderr as text, or with MILEPOST_LOG_FORMAT=json one JSON object a line (time,
# level, logger, message, and the exception's traceback when there is one).
MILEPOST_LOG_FORMAT = env_choice("MILEPOST_LOG_FORMAT", "plain", ["plain", "json"])
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": MILEPOST_LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
