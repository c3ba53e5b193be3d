"""milepost_client.django inside a customer's Django project (tests/django_host, run in its own
process with its own settings) against a live Milepost: the snippet carries django-csp's nonce
and a user hash Milepost accepts; events are sent after commit, and never for rolled-back work.
Rendering without django-csp or a signed-in user is checked with a bare template engine."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from django.template import Context, Engine
from django.test import override_settings
from milepost_client import Milepost

from onboarding.models import Event, MilestoneCompletion
from tests.browser.conftest import free_port
from tests.clients.conftest import TRIAL_CONTENT, LiveMilepost
from tests.clients.django_host import running_host


@pytest.fixture
def acme_host(live_milepost: LiveMilepost, tmp_path: Path) -> Iterator[str]:
    with Milepost(live_milepost.url, live_milepost.secret_key) as client:
        client.import_content(TRIAL_CONTENT, publish=True)
    with running_host(
        milepost_url=live_milepost.url, keys=live_milepost.keys, port=free_port(), data_dir=tmp_path
    ) as url:
        yield url


def wait_for(predicate: object, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.05)


def test_the_snippet_identifies_the_signed_in_user_with_the_csp_nonce_and_a_valid_hash(
    acme_host: str, live_milepost: LiveMilepost
) -> None:
    with httpx.Client(base_url=acme_host, follow_redirects=True) as browser:
        page = browser.get("/login/ada")

    header_nonce = re.search(r"'nonce-([^']+)'", page.headers["content-security-policy"])
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.S)
    identify = json.loads(re.search(r"milepost\.push\((.*)\);", scripts[1][1]).group(1))  # type: ignore[union-attr]
    user_id = identify[1]

    assert header_nonce is not None
    assert [f'nonce="{header_nonce.group(1)}"' in attrs for attrs, _ in scripts] == [True, True]
    assert f'src="{live_milepost.url}/static/milepost/milepost.js"' in scripts[0][0]
    assert f'data-key="{live_milepost.keys["publishable_key"]}"' in scripts[0][0]
    assert identify[0] == "identify"
    assert re.fullmatch(r"acme-\d+", user_id)
    assert identify[2] == {"plan": "trial", "email": "ada@acme.test", "note": "</script><b>"}
    assert "</script><b>" not in scripts[1][1]  # a trait cannot close the script element
    assert live_milepost.workspace.user_hash_matches(user_id, identify[3]["userHash"])


def test_events_reach_milepost_after_commit_and_never_for_rolled_back_work(
    acme_host: str,
) -> None:
    with httpx.Client(base_url=acme_host, follow_redirects=True) as browser:
        browser.get("/login/grace")
        failed = browser.post("/reports/failing").json()["event_id"]
        committed = browser.post("/reports").json()["event_id"]

    wait_for(lambda: Event.objects.filter(client_id=uuid.UUID(committed)).exists())
    event = Event.objects.select_related("end_user").get(client_id=uuid.UUID(committed))
    wait_for(lambda: MilestoneCompletion.objects.filter(milestone__key="installed-js").exists())

    assert (event.name, event.properties) == ("report_created", {"rows": 3})
    assert event.end_user.external_id.startswith("acme-")
    assert MilestoneCompletion.objects.filter(
        milestone__key="installed-js", end_user=event.end_user
    ).exists()
    assert not Event.objects.filter(client_id=uuid.UUID(failed)).exists()


MILEPOST_SETTINGS = {
    "URL": "https://milepost.example.com/",
    "PUBLISHABLE_KEY": "pk_live_abc",
    "IDENTITY_SECRET": "s3cret",
    "SECRET_KEY": "sk_live_x",
}
ENGINE = Engine(libraries={"milepost": "milepost_client.django.templatetags.milepost"})


@override_settings(MILEPOST=MILEPOST_SETTINGS)
def test_without_django_csp_or_a_signed_in_user_the_snippet_only_loads_the_sdk() -> None:
    anonymous = SimpleNamespace(user=SimpleNamespace(is_authenticated=False))

    html = ENGINE.from_string("{% load milepost %}{% milepost_snippet %}").render(
        Context({"request": anonymous})
    )

    assert html == (
        '<script async src="https://milepost.example.com/static/milepost/milepost.js" '
        'data-key="pk_live_abc"></script>'
    )


@override_settings(MILEPOST={"URL": "https://milepost.example.com"})
def test_a_missing_key_is_named() -> None:
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="PUBLISHABLE_KEY"):
        ENGINE.from_string("{% load milepost %}{% milepost_snippet %}").render(Context({}))
