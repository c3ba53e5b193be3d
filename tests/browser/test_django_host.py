"""A customer's Django project (tests/django_host) with django-csp's strict nonce policy and
`{% milepost_snippet %}`, in real Chromium: the widget loads, identifies the signed-in user
with identity verification enforced, and shows the published tour, with no CSP violation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from milepost_client import Milepost
from playwright.sync_api import expect

from onboarding.models import EndUser
from tests.browser.conftest import Live, free_port, wait_for
from tests.clients.django_host import running_host

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results"
TOUR = {
    "format": "milepost-content/1",
    "walkthroughs": [
        {
            "key": "reports-welcome",
            "name": "Reports welcome",
            "auto_start": True,
            "steps": [
                {
                    "page_url_pattern": "/page",
                    "selector": "",
                    "title": "Welcome to Acme reports",
                    "body_markdown": "Build your **first report** in a minute.",
                }
            ],
        }
    ],
}


def test_the_snippet_tag_runs_the_widget_under_a_strict_csp_with_a_verified_user(
    live: Live, page: Any, tmp_path: Path
) -> None:
    port = free_port()
    workspace = live.demo
    workspace.allowed_origins = [*workspace.allowed_origins, f"http://127.0.0.1:{port}"]
    workspace.enforce_identity_verification = True
    workspace.save(update_fields=["allowed_origins", "enforce_identity_verification"])
    with Milepost(live.milepost_url, live.secret_key) as client:
        client.import_content(TOUR, publish=True)
    keys = {
        "publishable_key": workspace.publishable_key,
        "secret_key": live.secret_key,
        "identity_secret": workspace.identity_secret,
    }
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )

    with running_host(
        milepost_url=live.milepost_url, keys=keys, port=port, data_dir=tmp_path
    ) as host:
        page.goto(f"{host}/login/ada")
        card = page.locator("milepost-widget [role=dialog]")
        expect(card).to_contain_text("Welcome to Acme reports")
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "django-host-snippet.png"))
        person = wait_for(
            lambda: EndUser.objects.filter(workspace=workspace, external_id="acme-1").first()
        )

    assert person is not None
    assert person.traits["plan"] == "trial"
    assert violations == []
    assert page.errors == []
