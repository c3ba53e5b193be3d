from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _start_django(**environment: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(environment)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "milepost.settings"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DATABASE_URL", "mysqlx://db/app", "DATABASE_URL='mysqlx://db/app' names no supported"),
        ("DATABASE_URL", "postgres://u@h:notaport/db", "DATABASE_URL cannot be parsed"),
        ("DATABASE_URL", "nonsense", "DATABASE_URL='nonsense' names no supported database"),
        ("REDIS_URL", "http://cache:6379", "REDIS_URL='http://cache:6379' is not a Redis URL"),
        ("DEBUG", "maybe", "DEBUG='maybe' is not a boolean"),
        ("MILEPOST_MAX_EVENTS_PER_BATCH", "lots", "is not a whole number"),
        ("MILEPOST_GROUP_COMMITS", "0", "MILEPOST_GROUP_COMMITS"),
        ("MILEPOST_LOG_FORMAT", "xml", "MILEPOST_LOG_FORMAT='xml' is not one of plain, json"),
        ("PUBLIC_URL", "ftp://x", "PUBLIC_URL='ftp://x' is not an http(s) URL"),
        ("MILEPOST_CHANNEL_PREFIX", "a b", "MILEPOST_CHANNEL_PREFIX='a b' is not a channel prefix"),
    ],
)
def test_a_bad_setting_stops_start_up_naming_the_variable(
    variable: str, value: str, message: str
) -> None:
    result = _start_django(**{variable: value})

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_the_embedded_default_needs_no_services() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s; "
            "print(s.DATABASES['default']['ENGINE'], s.CHANNEL_LAYERS['default']['BACKEND'], "
            "s.CELERY_TASK_ALWAYS_EAGER)",
        ],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}},
            "DJANGO_SETTINGS_MODULE": "milepost.settings",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "channels.layers.InMemoryChannelLayer",
        "True",
    ]


def test_production_urls_select_postgresql_and_redis() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s; "
            "print(s.DATABASES['default']['ENGINE'], s.CHANNEL_LAYERS['default']['BACKEND'], "
            "s.CELERY_BROKER_URL, s.CELERY_TASK_ALWAYS_EAGER)",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "milepost.settings",
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "SECRET_KEY": "x" * 50,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert result.stdout.split() == [
        "milepost.postgresql",
        "channels_redis.pubsub.RedisPubSubChannelLayer",
        "redis://127.0.0.1:6379/0",
        "False",
    ]


@pytest.mark.parametrize(
    ("redis_url", "prefix", "expected"),
    [
        ("redis://127.0.0.1:6379/3", "", "milepost.db3."),
        ("redis://127.0.0.1:6379", "", "milepost.db0."),
        ("redis://127.0.0.1:6379/?db=7", "", "milepost.db7."),
        ("redis://127.0.0.1:6379/3", "staging.", "staging."),
    ],
)
def test_pub_sub_channels_carry_the_redis_database_or_the_prefix_set(
    redis_url: str, prefix: str, expected: str
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s; "
            "print(s.CHANNEL_LAYERS['default']['CONFIG']['prefix'])",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "milepost.settings",
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
            "REDIS_URL": redis_url,
            "MILEPOST_CHANNEL_PREFIX": prefix,
            "SECRET_KEY": "x" * 50,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert result.stdout.strip() == expected


def _production(**extra: str) -> dict[str, str]:
    """The environment of a production start with only what the README requires set."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "MILEPOST_"))}
    for name in ("DATABASE_URL", "REDIS_URL", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
        keep.pop(name, None)
    return {
        **keep,
        "DJANGO_SETTINGS_MODULE": "milepost.settings",
        "DEBUG": "false",
        "SECRET_KEY": "k3y-" + "".join(chr(ord("a") + i % 26) for i in range(60)),
        "ALLOWED_HOSTS": "milepost.example.com",
        "PUBLIC_URL": "https://milepost.example.com",
        **extra,
    }


def test_production_settings_pass_the_deploy_check_with_nothing_else_set() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_production(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_https_is_enforced_behind_a_tls_terminating_proxy_and_can_be_turned_off() -> None:
    script = (
        "import django; django.setup(); from django.test import Client; c = Client(); "
        "h = {'HTTP_HOST': 'milepost.example.com'}; "
        "plain = c.get('/admin/login/', **h); "
        "proxied = c.get('/api/v1/health', HTTP_X_FORWARDED_PROTO='https', **h); "
        "probe = c.get('/api/v1/health', **h); "
        "print(plain.status_code, plain.get('Location'), proxied.status_code, "
        "proxied.get('Strict-Transport-Security'), probe.status_code)"
    )

    def run(**extra: str) -> list[str]:
        result = subprocess.run(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", script],
            cwd=ROOT,
            env=_production(**extra),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout.strip().split(maxsplit=4)

    secure = run()
    relaxed = run(SECURE_SSL_REDIRECT="false", SECURE_HSTS_SECONDS="0")

    assert secure == [
        "301",
        "https://milepost.example.com/admin/login/",
        "200",
        "max-age=31536000;",
        "includeSubDomains 200",
    ]
    assert relaxed[0] == "200"
    assert relaxed[3] == "None"
