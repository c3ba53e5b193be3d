"""Publishing checks each step's selector: one browsers reject is refused on every way to
publish (admin, the authoring API, content as code), naming the step and the selector; one
never seen matching on its page is published with a warning on each of them."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from onboarding import queries, services
from onboarding.content_io import content_export
from onboarding.models import PublishedVersion, Step, Walkthrough, Workspace, WorkspaceMember
from tests.factories import (
    EndUserFactory,
    EventFactory,
    StepFactory,
    UserFactory,
    WalkthroughFactory,
    WorkspaceFactory,
    WorkspaceMemberFactory,
)

pytestmark = pytest.mark.django_db
BAD = 'button:contains("Help")'


def tour(workspace: Workspace, selector: str = "#create") -> Walkthrough:
    walkthrough = WalkthroughFactory(workspace=workspace, key="tour", name="Tour")
    StepFactory(walkthrough=walkthrough, position=0, title="Hello", selector="")
    StepFactory(
        walkthrough=walkthrough, position=1, title="Create one", selector=selector,
        page_url_pattern="/campaigns",
    )  # fmt: skip
    return walkthrough


def bearer(workspace: Workspace) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {workspace.keys['secret_key']}"}


def seen(step: Step, *, missing: bool = False, attempt: int = 1) -> None:
    """An end user's widget showed `step` (on its target, or as the fallback after a missing
    target when `missing`)."""
    end_user = EndUserFactory(workspace=step.walkthrough.workspace)
    properties = {"walkthrough": "tour", "step": 1, "step_id": step.pk, "attempt": attempt}
    if missing:
        EventFactory(end_user=end_user, name="$step_target_missing", properties=properties)
    EventFactory(end_user=end_user, name="$step_viewed", properties=properties)


# Refused ---------------------------------------------------------------------------------


def test_the_api_refuses_to_publish_a_selector_browsers_reject(client: Client) -> None:
    workspace = WorkspaceFactory()
    # Saved before publishing checked it this way (the old parser accepted :contains).
    tour(workspace, selector=BAD)
    answer = client.post("/api/v1/content/walkthrough/tour/publish", **bearer(workspace))
    assert answer.status_code == 400
    body = answer.json()
    assert "Step “Create one”" in json.dumps(body, ensure_ascii=False)
    assert BAD in body["error"]["message"]
    assert "steps[1].selector" in body["error"]["fields"]
    assert not PublishedVersion.objects.exists()


def test_content_as_code_refuses_a_selector_browsers_reject(client: Client) -> None:
    workspace = WorkspaceFactory()
    document = content_export(workspace=tour_workspace())
    document["walkthroughs"][0]["steps"][1]["selector"] = "li:eq(1)"
    answer = client.put(
        "/api/v1/content?publish=1", document, content_type="application/json", **bearer(workspace)
    )
    assert answer.status_code == 400
    fields = answer.json()["error"]["fields"]
    message = " ".join(fields["walkthroughs[0].steps[1].selector"])
    assert "'li:eq(1)' is not a CSS selector browsers accept" in message
    assert "Create one" in message
    assert not Walkthrough.objects.filter(workspace=workspace).exists()


def tour_workspace() -> Workspace:
    workspace = WorkspaceFactory()
    tour(workspace)
    return workspace


def test_admin_refuses_to_publish_a_selector_browsers_reject(client: Client) -> None:
    workspace = WorkspaceFactory()
    walkthrough = tour(workspace, selector="svg|rect")
    editor = UserFactory()
    WorkspaceMemberFactory(workspace=workspace, user=editor, role=WorkspaceMember.Role.EDITOR)
    client.force_login(editor)
    page = client.post(
        reverse("admin:onboarding_walkthrough_changelist"),
        {"action": "publish", "_selected_action": [walkthrough.pk]},
        follow=True,
    ).content.decode()
    assert "was not published" in page
    assert "Step “Create one”: &#x27;svg|rect&#x27; is not a CSS selector browsers accept" in page
    assert not PublishedVersion.objects.exists()


# Warned ----------------------------------------------------------------------------------


def test_a_selector_never_seen_matching_is_published_with_a_warning(client: Client) -> None:
    workspace = WorkspaceFactory()
    tour(workspace, selector="#creat")  # a typo: no page has it
    answer = client.post("/api/v1/content/walkthrough/tour/publish", **bearer(workspace))
    assert answer.status_code == 201
    (warning,) = answer.json()["warnings"]
    assert warning.startswith("steps[1].selector: Step “Create one”: '#creat' was never seen")
    assert "on /campaigns" in warning
    assert "(show the step as a centred modal)" in warning


def test_a_selector_seen_matching_since_it_was_published_gives_no_warning() -> None:
    walkthrough = tour(WorkspaceFactory())
    services.content_publish(obj=walkthrough)
    step = walkthrough.steps.get(position=1)
    assert queries.publish_warnings(obj=walkthrough) != []
    seen(step)
    assert queries.publish_warnings(obj=walkthrough) == []


def test_a_view_after_a_missing_target_does_not_count_as_seen_matching() -> None:
    walkthrough = tour(WorkspaceFactory())
    services.content_publish(obj=walkthrough)
    seen(walkthrough.steps.get(position=1), missing=True)
    assert len(queries.publish_warnings(obj=walkthrough)) == 1


def test_a_changed_selector_is_unseen_again_even_if_the_old_one_matched() -> None:
    walkthrough = tour(WorkspaceFactory())
    services.content_publish(obj=walkthrough)
    step = walkthrough.steps.get(position=1)
    seen(step)
    Step.objects.filter(pk=step.pk).update(selector="#create-campaign")
    assert len(queries.publish_warnings(obj=walkthrough)) == 1
    # Views from before the new selector went live do not vouch for it either.
    services.content_publish(obj=walkthrough)
    PublishedVersion.objects.filter(version=2).update(
        published_at=timezone.now() + timedelta(minutes=1)
    )
    assert len(queries.publish_warnings(obj=walkthrough)) == 1


def test_admin_and_content_as_code_show_the_warning(client: Client) -> None:
    workspace = WorkspaceFactory()
    walkthrough = tour(workspace, selector="#creat")
    editor = UserFactory()
    WorkspaceMemberFactory(workspace=workspace, user=editor, role=WorkspaceMember.Role.EDITOR)
    client.force_login(editor)
    page = client.post(
        reverse("admin:onboarding_walkthrough_changelist"),
        {"action": "publish", "_selected_action": [walkthrough.pk]},
        follow=True,
    ).content.decode()
    assert "as version 1" in page
    assert "&#x27;#creat&#x27; was never seen matching on /campaigns" in page
    # Content as code: a changed file published from the command line says it too.
    document = content_export(workspace=workspace)
    document["walkthroughs"][0]["steps"][1]["selector"] = "#still-wrong"
    answer = client.put(
        "/api/v1/content?publish=1", document, content_type="application/json", **bearer(workspace)
    )
    assert answer.status_code == 200
    (warning,) = answer.json()["warnings"]
    assert warning.startswith(
        "walkthroughs[0].steps[1].selector: Step “Create one”: '#still-wrong'"
    )


def test_the_import_command_prints_the_warning(tmp_path: Any) -> None:
    workspace = WorkspaceFactory()
    document = content_export(workspace=tour_workspace())
    path = tmp_path / "content.json"
    path.write_text(json.dumps(document))
    out = StringIO()
    call_command("import_content", workspace.slug, str(path), "--publish", stdout=out)
    assert (
        "warning: walkthroughs[0].steps[1].selector: Step “Create one”: '#create'" in out.getvalue()
    )
