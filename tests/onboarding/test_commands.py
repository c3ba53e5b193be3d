from __future__ import annotations

import http.client
import json
import os
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import override_settings

from onboarding import queries
from onboarding.models import (
    Journey,
    Milestone,
    ProgressBar,
    PublishedVersion,
    Step,
    Tooltip,
    Walkthrough,
    Workspace,
    WorkspaceMember,
)
from tests.factories import StepFactory, WalkthroughFactory, WorkspaceFactory
from tests.servers import uvicorn_server

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_workspace_prints_one_json_object_whose_secret_key_authenticates() -> None:
    printed = run("create_workspace", "Acme Labs", "--origin", "https://app.acme.io/")
    keys = json.loads(printed)
    assert set(keys) == {"workspace", "publishable_key", "secret_key", "identity_secret"}
    workspace = Workspace.objects.get(slug=keys["workspace"])
    assert workspace.name == "Acme Labs"
    assert workspace.allowed_origins == ["https://app.acme.io"]
    assert workspace.publishable_key == keys["publishable_key"]
    assert workspace.secret_key_matches(keys["secret_key"])
    stored = json.dumps(list(Workspace.objects.filter(pk=workspace.pk).values()), default=str)
    assert keys["secret_key"] not in stored


def test_create_workspace_refuses_a_bad_origin_naming_it() -> None:
    with pytest.raises(CommandError, match=r"origin: 'app\.acme\.io' is not an origin"):
        run("create_workspace", "Acme", "--origin", "app.acme.io")
    assert not Workspace.objects.exists()


def test_create_workspace_refuses_a_taken_slug() -> None:
    WorkspaceFactory(slug="acme")
    with pytest.raises(CommandError, match="slug"):
        run("create_workspace", "Acme", "--slug", "acme", "--origin", "https://a.io")


def test_rotating_keys_invalidates_the_old_secret_key() -> None:
    from onboarding.auth import workspace_for_secret_key
    from onboarding.services import workspace_rotate_keys

    keys = json.loads(run("create_workspace", "Acme", "--origin", "https://a.io"))
    workspace = Workspace.objects.get(slug=keys["workspace"])
    new = workspace_rotate_keys(workspace=workspace)
    assert workspace_for_secret_key(keys["secret_key"]) is None
    assert workspace_for_secret_key(new["secret_key"]) == workspace
    assert new["publishable_key"] != keys["publishable_key"]


def test_export_and_import_commands_round_trip(tmp_path: Path) -> None:
    source = WorkspaceFactory(slug="source")
    StepFactory(walkthrough=WalkthroughFactory(workspace=source, key="tour"), title="Hello")
    WorkspaceFactory(slug="target")
    file = tmp_path / "content.json"
    file.write_text(run("export_content", "source"))

    dry = run("import_content", "target", str(file), "--dry-run")
    assert "would create walkthrough 'tour'" in dry
    assert not Walkthrough.objects.filter(workspace__slug="target").exists()

    assert "create walkthrough 'tour'" in run("import_content", "target", str(file), "--publish")
    assert run("export_content", "target") == file.read_text()
    assert "No changes" in run("import_content", "target", str(file))
    assert PublishedVersion.objects.filter(workspace__slug="target").count() == 1


def test_import_command_lists_every_error_and_writes_nothing(tmp_path: Path) -> None:
    WorkspaceFactory(slug="target")
    file = tmp_path / "content.json"
    step = {"title": "Bad", "selector": "a[", "advance_on": "sideways"}
    file.write_text(
        json.dumps(
            {
                "format": "milepost-content/1",
                "walkthroughs": [{"key": "tour", "name": "Tour", "steps": [{"title": "Ok"}, step]}],
                "tooltips": [{"key": "tip", "name": "Tip", "selector": "#x", "body_markdown": "x"}],
            }
        )
    )
    with pytest.raises(CommandError) as caught:
        run("import_content", "target", str(file))
    assert "walkthroughs[0].steps[1].advance_on" in str(caught.value)
    assert not Tooltip.objects.exists()


def test_import_command_explains_unreadable_input(tmp_path: Path) -> None:
    WorkspaceFactory(slug="target")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(CommandError, match="is not valid JSON"):
        run("import_content", "target", str(broken))
    with pytest.raises(CommandError, match="Cannot read"):
        run("import_content", "target", str(tmp_path / "missing.json"))
    with pytest.raises(CommandError, match="No workspace with the slug 'nope'"):
        run("import_content", "nope", str(broken))


@override_settings(DEMO_HOST_URL="http://localhost:8001", PUBLIC_URL="http://127.0.0.1:8000")
def test_seed_demo_creates_the_published_demo_once() -> None:
    first = run("seed_demo")
    workspace = Workspace.objects.get(slug="acme")
    assert workspace.allowed_origins == ["http://localhost:8001"]
    assert workspace.enforce_identity_verification
    assert "http://127.0.0.1:8000/admin/" in first
    assert "http://localhost:8001/dashboard" in first
    assert workspace.publishable_key in first
    live = {(v.kind, v.key) for v in queries.published_content(workspace=workspace)}
    assert live == {
        ("journey", "trial-onboarding"),
        ("walkthrough", "welcome-tour"),
        ("tooltip", "help-tip"),
        ("tooltip", "import-tip"),
        ("progress_bar", "getting-started"),
        ("resource_section", "getting-started-help"),
        ("resource_section", "whats-new"),
        ("survey", "contacts-nps"),
        ("banner", "maintenance"),
        ("guide", "no-contacts"),
    }
    journey = Journey.objects.get(workspace=workspace, key="trial-onboarding")
    assert list(journey.milestones.values_list("key", "phase", "counts_toward_pql")) == [
        ("installed-js", "setup", False),
        ("first-campaign", "discovery", True),
        ("imported-contacts", "activation", True),
    ]
    steps = Step.objects.filter(walkthrough__key="welcome-tour").order_by("position")
    assert [(s.selector, s.advance_on) for s in steps] == [
        ("", "next"),
        ("#stats-panel", "next"),
        ("#nav-campaigns", "target_click"),
        ("#create-campaign", "event"),
    ]
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser
    assert admin.check_password("milepost-demo")
    assert WorkspaceMember.objects.filter(workspace=workspace, user=admin).exists()

    key = workspace.publishable_key
    second = run("seed_demo")
    workspace.refresh_from_db()
    assert workspace.publishable_key == key
    assert key in second
    assert "sk_" not in second
    assert Workspace.objects.count() == 1
    assert Milestone.objects.count() == 3
    assert ProgressBar.objects.count() == 1
    assert PublishedVersion.objects.count() == 10


@override_settings(DEMO_HOST_URL="http://localhost:8001")
def test_seed_demo_leaves_an_admins_edits_alone() -> None:
    run("seed_demo")
    Tooltip.objects.filter(key="help-tip").update(name="Edited by the admin")
    run("seed_demo")
    assert Tooltip.objects.get(key="help-tip").name == "Edited by the admin"


def test_run_milepost_answers_a_request_on_a_connection_idle_longer_than_five_seconds(
    tmp_path: Path,
) -> None:
    """httpx (so the Python client) reuses a connection idle up to 5 s, uvicorn's default
    idle timeout: a request sent as uvicorn closes it failed unread (the fault suite's soak saw
    `httpx.ReadError`). The server must keep idle connections longer than its clients do."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "MILEPOST_REQUIRE_SERVICES"}
    }
    env |= {"SECRET_KEY": "x", "MILEPOST_VAR_DIR": str(tmp_path)}
    command = [sys.executable, "manage.py", "run_milepost", "--demo-port", "0"]
    with uvicorn_server(env, command=command) as base:
        host, port = base.removeprefix("http://").split(":")
        # One connection, each answer read whole (headers and body) before the next request.
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            connection.request("GET", "/api/v1/health")
            first = connection.getresponse()
            assert (first.status, first.read()) == (200, b'{"status":"ok"}')
            time.sleep(6)
            # Had the server closed it meanwhile, this request would go unanswered
            # (http.client raises RemoteDisconnected).
            connection.request("GET", "/api/v1/health")
            assert connection.getresponse().status == 200
        finally:
            connection.close()
