from __future__ import annotations

import html as html_module
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from onboarding import services
from onboarding.models import (
    Condition,
    Milestone,
    MilestoneCompletion,
    PublishedVersion,
    Walkthrough,
    Workspace,
    WorkspaceMember,
)
from tests.factories import (
    EndUserFactory,
    JourneyFactory,
    MilestoneFactory,
    ProgressBarFactory,
    SegmentFactory,
    StepFactory,
    TooltipFactory,
    UserFactory,
    WalkthroughFactory,
    WorkspaceFactory,
    WorkspaceMemberFactory,
)

pytestmark = pytest.mark.django_db


def management(prefix: str, rows: list[dict[str, Any]], initial: int = 0) -> dict[str, Any]:
    data: dict[str, Any] = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        data.update({f"{prefix}-{index}-{name}": value for name, value in row.items()})
    return data


def options_of(html: str, name: str) -> set[str]:
    """The option labels of the <select name=...> in a page."""
    match = re.search(rf'<select name="{re.escape(name)}"[^>]*>(.*?)</select>', html, re.S)
    assert match, f"no select named {name}"
    return {
        html_module.unescape(label.strip())
        for value, label in re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', match[1])
        if value
    }


@pytest.fixture
def two_workspaces() -> dict[str, Any]:
    mine = WorkspaceFactory(name="Mine")
    theirs = WorkspaceFactory(name="Theirs")
    editor = UserFactory(username="editor")
    WorkspaceMemberFactory(workspace=mine, user=editor, role=WorkspaceMember.Role.EDITOR)
    return {
        "mine": mine,
        "theirs": theirs,
        "editor": editor,
        "my_walkthrough": WalkthroughFactory(workspace=mine, name="My tour"),
        "their_walkthrough": WalkthroughFactory(workspace=theirs, name="Their tour"),
        "my_segment": SegmentFactory(workspace=mine, name="My segment"),
        "their_segment": SegmentFactory(workspace=theirs, name="Their segment"),
    }


@pytest.fixture
def editor_client(client: Client, two_workspaces: dict[str, Any]) -> Client:
    client.force_login(two_workspaces["editor"])
    return client


def admin_url(model: str, action: str = "changelist", *args: Any) -> str:
    return reverse(f"admin:onboarding_{model}_{action}", args=args)


# Scoping -----------------------------------------------------------------------------------


def test_a_member_sees_only_their_workspaces_walkthroughs(
    editor_client: Client, two_workspaces: dict[str, Any]
) -> None:
    page = editor_client.get(admin_url("walkthrough")).content.decode()
    assert "My tour" in page
    assert "Their tour" not in page


def test_a_member_sees_only_their_workspace_in_the_workspace_list(editor_client: Client) -> None:
    page = editor_client.get(admin_url("workspace")).content.decode()
    assert "Mine" in page
    assert "Theirs" not in page


def test_another_workspaces_object_answers_404_and_stays_unchanged(
    editor_client: Client, two_workspaces: dict[str, Any]
) -> None:
    theirs = two_workspaces["their_walkthrough"]
    assert editor_client.get(admin_url("walkthrough", "change", theirs.pk)).status_code == 404
    response = editor_client.post(
        admin_url("walkthrough", "change", theirs.pk), {"name": "Hijacked"}
    )
    assert response.status_code == 404
    assert editor_client.get(admin_url("walkthrough", "delete", theirs.pk)).status_code == 404
    assert Walkthrough.objects.get(pk=theirs.pk).name == "Their tour"


def test_the_add_form_offers_only_the_members_workspaces_and_segments(
    editor_client: Client,
) -> None:
    page = editor_client.get(admin_url("walkthrough", "add")).content.decode()
    assert options_of(page, "workspace") == {"Mine"}
    assert options_of(page, "segment") == {"My segment"}


def test_inline_choices_are_limited_to_the_objects_workspace(
    editor_client: Client, two_workspaces: dict[str, Any]
) -> None:
    journey = JourneyFactory(workspace=two_workspaces["mine"])
    MilestoneFactory(journey=journey)
    page = editor_client.get(admin_url("journey", "change", journey.pk)).content.decode()
    assert options_of(page, "milestones-0-walkthrough") == {"My tour"}


def test_progress_bar_items_offer_only_the_bars_journeys_milestones(
    editor_client: Client, two_workspaces: dict[str, Any]
) -> None:
    bar = ProgressBarFactory(journey=JourneyFactory(workspace=two_workspaces["mine"]))
    MilestoneFactory(journey=bar.journey, name="On the bar's journey")
    MilestoneFactory(journey=JourneyFactory(workspace=two_workspaces["mine"]), name="Elsewhere")
    MilestoneFactory(journey=JourneyFactory(workspace=two_workspaces["theirs"]), name="Foreign")
    page = editor_client.get(admin_url("progressbar", "change", bar.pk)).content.decode()
    assert options_of(page, "items-__prefix__-milestone") == {"On the bar's journey"}


def test_a_forged_foreign_choice_is_refused(
    editor_client: Client, two_workspaces: dict[str, Any]
) -> None:
    response = editor_client.post(
        admin_url("walkthrough", "add"),
        {
            "workspace": two_workspaces["mine"].pk,
            "key": "forged",
            "name": "Forged",
            "segment": two_workspaces["their_segment"].pk,
            "frequency": "once",
            "priority": "0",
            "auto_start": "on",
            **management("steps", []),
        },
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Walkthrough.objects.filter(key="forged").exists()


def test_actions_never_reach_another_workspace(
    editor_client: Client, two_workspaces: dict[str, Any]
) -> None:
    theirs = two_workspaces["their_walkthrough"]
    StepFactory(walkthrough=theirs)
    editor_client.post(
        admin_url("walkthrough"), {"action": "publish", "_selected_action": [theirs.pk]}
    )
    assert not PublishedVersion.objects.filter(object_id=theirs.pk).exists()


def test_a_superuser_sees_every_workspace(client: Client, two_workspaces: dict[str, Any]) -> None:
    client.force_login(UserFactory(username="root", is_superuser=True))
    page = client.get(admin_url("walkthrough")).content.decode()
    assert "My tour" in page
    assert "Their tour" in page


def test_a_staff_user_without_membership_sees_no_onboarding_data(
    client: Client, two_workspaces: dict[str, Any]
) -> None:
    client.force_login(UserFactory(username="stranger"))
    assert "Walkthroughs" not in client.get(reverse("admin:index")).content.decode()
    assert client.get(admin_url("walkthrough")).status_code == 403


def test_a_viewer_can_look_but_not_change(client: Client, two_workspaces: dict[str, Any]) -> None:
    viewer = UserFactory(username="viewer")
    WorkspaceMemberFactory(
        workspace=two_workspaces["mine"], user=viewer, role=WorkspaceMember.Role.VIEWER
    )
    client.force_login(viewer)
    mine = two_workspaces["my_walkthrough"]
    assert client.get(admin_url("walkthrough", "change", mine.pk)).status_code == 200
    response = client.post(admin_url("walkthrough", "change", mine.pk), {"name": "Changed"})
    assert response.status_code == 403
    assert client.get(admin_url("walkthrough", "add")).status_code == 403
    assert Walkthrough.objects.get(pk=mine.pk).name == "My tour"


def test_an_editor_cannot_change_the_workspace_or_its_keys(
    editor_client: Client, two_workspaces: dict[str, Any]
) -> None:
    mine = two_workspaces["mine"]
    before = mine.secret_key_hash
    editor_client.post(
        admin_url("workspace"),
        {"action": "rotate_keys", "_selected_action": [mine.pk], "confirm": "yes"},
    )
    mine.refresh_from_db()
    assert mine.secret_key_hash == before


# Authoring and validation ------------------------------------------------------------------


def walkthrough_form(
    workspace: Workspace, steps: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    step_defaults = {
        "position": "0", "title": "Hello", "page_url_pattern": "/dashboard", "selector": "",
        "body_markdown": "Hi", "placement": "auto", "advance_on": "next", "advance_event": "",
        "wait_timeout_ms": "5000", "on_target_missing": "modal",
    }  # fmt: skip
    return {
        "workspace": workspace.pk,
        "key": "tour",
        "name": "Tour",
        "segment": "",
        "frequency": "until_completed",
        "priority": "0",
        "auto_start": "on",
        "when_present": "",
        "wait_timeout_ms": "5000",
        **management("steps", [{**step_defaults, **step} for step in steps]),
        **extra,
    }


def test_an_editor_authors_a_walkthrough_with_ordered_steps(
    editor_client: Client, two_workspaces: dict[str, Any]
) -> None:
    data = walkthrough_form(
        two_workspaces["mine"],
        [{"position": "2", "title": "Second"}, {"position": "1", "title": "First"}],
    )
    response = editor_client.post(admin_url("walkthrough", "add"), data)
    assert response.status_code == 302
    walkthrough = Walkthrough.objects.get(key="tour")
    assert list(walkthrough.steps.values_list("title", flat=True)) == ["First", "Second"]


def test_a_step_with_an_invalid_selector_is_refused_in_the_form(
    editor_client: Client, two_workspaces: dict[str, Any]
) -> None:
    data = walkthrough_form(two_workspaces["mine"], [{"selector": 'button:contains("Help")'}])
    response = editor_client.post(admin_url("walkthrough", "add"), data)
    assert response.status_code == 200
    assert "is not a CSS selector browsers accept" in response.content.decode()
    assert not Walkthrough.objects.filter(key="tour").exists()


def journey_form(workspace: Workspace, milestones: list[dict[str, Any]]) -> dict[str, Any]:
    defaults = {
        "position": "0", "key": "m", "name": "M", "phase": "setup", "criterion": "event",
        "event_name": "did_it", "min_count": "1", "window": "", "walkthrough": "",
    }  # fmt: skip
    return {
        "workspace": workspace.pk,
        "key": "trial",
        "name": "Trial",
        "description": "",
        "starts_on": "signup",
        **management("milestones", [{**defaults, **m} for m in milestones]),
    }


def test_a_milestone_with_a_window_but_no_event_is_refused_in_the_form(
    editor_client: Client, two_workspaces: dict[str, Any]
) -> None:
    data = journey_form(two_workspaces["mine"], [{"event_name": "", "window": "1 00:00:00"}])
    response = editor_client.post(admin_url("journey", "add"), data)
    assert response.status_code == 200
    assert "A milestone with a window needs an event." in response.content.decode()
    assert not Milestone.objects.exists()


def test_milestones_are_authored_inline_in_the_journeys_workspace(
    editor_client: Client, two_workspaces: dict[str, Any]
) -> None:
    data = journey_form(
        two_workspaces["mine"],
        [{"key": "b", "position": "1"}, {"key": "a", "position": "0", "phase": "activation"}],
    )
    assert editor_client.post(admin_url("journey", "add"), data).status_code == 302
    keys = list(Milestone.objects.order_by("position").values_list("key", "workspace_id"))
    assert keys == [("a", two_workspaces["mine"].pk), ("b", two_workspaces["mine"].pk)]


def test_a_milestone_key_taken_in_the_workspace_is_refused_not_a_crash(
    editor_client: Client, two_workspaces: dict[str, Any]
) -> None:
    MilestoneFactory(journey=JourneyFactory(workspace=two_workspaces["mine"]), key="taken")
    data = journey_form(two_workspaces["mine"], [{"key": "taken"}])
    response = editor_client.post(admin_url("journey", "add"), data)
    assert response.status_code == 200
    assert "uses the key" in response.content.decode()
    assert Milestone.objects.filter(key="taken").count() == 1


def test_a_condition_with_an_unknown_operator_is_refused_in_the_form(
    editor_client: Client, two_workspaces: dict[str, Any]
) -> None:
    condition = {
        "position": "0", "kind": "trait", "trait": "plan", "milestone": "", "event_name": "",
        "operator": "resembles", "value": "trial",
    }  # fmt: skip
    data = {
        "workspace": two_workspaces["mine"].pk,
        "key": "trials",
        "name": "Trials",
        "match": "all",
        **management("conditions", [condition]),
    }
    response = editor_client.post(admin_url("segment", "add"), data)
    assert response.status_code == 200
    assert "Unknown operator resembles" in response.content.decode()
    assert not Condition.objects.exists()


def test_an_operator_of_another_kind_is_refused_with_the_kinds_operators(
    editor_client: Client, two_workspaces: dict[str, Any]
) -> None:
    condition = {
        "position": "0", "kind": "trait", "trait": "plan", "milestone": "", "event_name": "",
        "operator": "completed", "value": "",
    }  # fmt: skip
    data = {
        "workspace": two_workspaces["mine"].pk,
        "key": "trials",
        "name": "Trials",
        "match": "all",
        **management("conditions", [condition]),
    }
    page = editor_client.post(admin_url("segment", "add"), data).content.decode()
    assert "Unknown operator &#x27;completed&#x27; for a trait condition" in page


# Publishing from admin ---------------------------------------------------------------------


def test_the_publish_action_makes_the_draft_live(
    editor_client: Client, two_workspaces: dict[str, Any]
) -> None:
    mine = two_workspaces["my_walkthrough"]
    StepFactory(walkthrough=mine)
    response = editor_client.post(
        admin_url("walkthrough"), {"action": "publish", "_selected_action": [mine.pk]}, follow=True
    )
    assert "as version 1" in response.content.decode()
    assert PublishedVersion.objects.get(object_id=mine.pk).published_by == two_workspaces["editor"]


def test_publishing_an_invalid_draft_explains_why(
    editor_client: Client, two_workspaces: dict[str, Any]
) -> None:
    mine = two_workspaces["my_walkthrough"]
    response = editor_client.post(
        admin_url("walkthrough"), {"action": "publish", "_selected_action": [mine.pk]}, follow=True
    )
    assert "was not published" in response.content.decode()
    assert "at least one step" in response.content.decode()
    assert not PublishedVersion.objects.exists()


def test_save_and_publish_from_the_change_form(
    editor_client: Client, two_workspaces: dict[str, Any]
) -> None:
    data = walkthrough_form(two_workspaces["mine"], [{"title": "Only step"}], _publish="1")
    response = editor_client.post(admin_url("walkthrough", "add"), data, follow=True)
    assert "as version 1" in response.content.decode()
    version = PublishedVersion.objects.get(key="tour")
    assert version.snapshot["steps"][0]["title"] == "Only step"


def test_the_restore_action_publishes_the_old_version_again(
    editor_client: Client, two_workspaces: dict[str, Any]
) -> None:
    tooltip = TooltipFactory(workspace=two_workspaces["mine"], body_markdown="Old text")
    first = services.content_publish(obj=tooltip)
    tooltip.body_markdown = "New text"
    tooltip.save()
    services.content_publish(obj=tooltip)

    editor_client.post(
        admin_url("publishedversion"), {"action": "restore", "_selected_action": [first.pk]}
    )

    latest = PublishedVersion.objects.filter(object_id=tooltip.pk).order_by("-version").first()
    assert latest is not None
    assert (latest.version, latest.restored_from) == (3, 1)
    assert latest.snapshot["body_html"] == "<p>Old text</p>"


def test_version_history_is_visible_and_scoped(
    editor_client: Client, two_workspaces: dict[str, Any]
) -> None:
    services.content_publish(obj=TooltipFactory(workspace=two_workspaces["mine"], key="mine-tip"))
    services.content_publish(
        obj=TooltipFactory(workspace=two_workspaces["theirs"], key="their-tip")
    )
    page = editor_client.get(admin_url("publishedversion")).content.decode()
    assert "mine-tip" in page
    assert "their-tip" not in page


# Workspaces and keys -----------------------------------------------------------------------


def test_a_new_workspaces_keys_are_shown_once_and_only_the_hash_is_stored(client: Client) -> None:
    client.force_login(UserFactory(username="root", is_superuser=True))
    response = client.post(
        admin_url("workspace", "add"),
        {
            "name": "Gamma",
            "slug": "gamma",
            "allowed_origins": "https://app.gamma.io\nhttp://localhost:3000",
            "missing_target_alert_percent": "20",
            "theme": "{}",
            **management("members", []),
        },
    )
    page = response.content.decode()
    secret = re.search(r'class="milepost-secret-key">(sk_[^<]+)<', page)
    assert secret
    workspace = Workspace.objects.get(slug="gamma")
    assert workspace.secret_key_matches(secret[1])
    assert secret[1] not in str(Workspace.objects.filter(slug="gamma").values().get())
    assert workspace.allowed_origins == ["http://localhost:3000", "https://app.gamma.io"]
    assert (
        secret[1] not in client.get(admin_url("workspace", "change", workspace.pk)).content.decode()
    )


def test_a_bad_origin_is_refused_naming_the_field(client: Client) -> None:
    client.force_login(UserFactory(username="root", is_superuser=True))
    response = client.post(
        admin_url("workspace", "add"),
        {
            "name": "Gamma",
            "slug": "gamma",
            "allowed_origins": "app.gamma.io/path",
            "theme": "{}",
            **management("members", []),
        },
    )
    assert response.status_code == 200
    assert "is not an origin" in response.content.decode()
    assert not Workspace.objects.filter(slug="gamma").exists()


def test_an_owner_rotates_the_keys_and_the_old_secret_stops_working(
    client: Client, two_workspaces: dict[str, Any]
) -> None:
    owner = UserFactory(username="owner")
    mine = two_workspaces["mine"]
    WorkspaceMemberFactory(workspace=mine, user=owner, role=WorkspaceMember.Role.OWNER)
    client.force_login(owner)
    old_secret = mine.keys["secret_key"]

    confirm = client.post(
        admin_url("workspace"), {"action": "rotate_keys", "_selected_action": [mine.pk]}
    )
    assert "old keys stop working" in confirm.content.decode()
    mine.refresh_from_db()
    assert mine.secret_key_matches(old_secret)

    response = client.post(
        admin_url("workspace"),
        {"action": "rotate_keys", "_selected_action": [mine.pk], "confirm": "yes"},
    )
    new_secret = re.search(r'class="milepost-secret-key">(sk_[^<]+)<', response.content.decode())
    assert new_secret
    mine.refresh_from_db()
    assert not mine.secret_key_matches(old_secret)
    assert mine.secret_key_matches(new_secret[1])


# Recorded data -----------------------------------------------------------------------------


def test_end_users_are_read_only_and_scoped(
    editor_client: Client, two_workspaces: dict[str, Any]
) -> None:
    mine = EndUserFactory(workspace=two_workspaces["mine"], external_id="alice")
    theirs = EndUserFactory(workspace=two_workspaces["theirs"], external_id="mallory")
    page = editor_client.get(admin_url("enduser")).content.decode()
    assert "alice" in page
    assert "mallory" not in page
    assert editor_client.get(admin_url("enduser", "change", theirs.pk)).status_code == 404
    detail = editor_client.get(admin_url("enduser", "change", mine.pk)).content.decode()
    assert 'name="_save"' not in detail


def test_an_editor_completes_a_milestone_for_an_end_user_from_admin(
    editor_client: Client, two_workspaces: dict[str, Any]
) -> None:
    milestone = MilestoneFactory(
        journey=JourneyFactory(workspace=two_workspaces["mine"]), criterion="server", event_name=""
    )
    MilestoneFactory(journey=JourneyFactory(workspace=two_workspaces["theirs"]), name="Foreign")
    alice = EndUserFactory(workspace=two_workspaces["mine"])

    form = editor_client.post(
        admin_url("enduser"), {"action": "complete_milestone", "_selected_action": [alice.pk]}
    ).content.decode()
    labels = options_of(form, "milestone")
    assert len(labels) == 1
    assert milestone.name in next(iter(labels))

    response = editor_client.post(
        admin_url("enduser"),
        {
            "action": "complete_milestone",
            "_selected_action": [alice.pk],
            "apply": "1",
            "milestone": milestone.pk,
        },
        follow=True,
    )
    assert "completed for 1 end user" in response.content.decode()
    completion = MilestoneCompletion.objects.get(end_user=alice)
    assert (completion.milestone, completion.source) == (milestone, "admin")


def test_a_foreign_milestone_cannot_be_completed_through_the_action(
    editor_client: Client, two_workspaces: dict[str, Any]
) -> None:
    foreign = MilestoneFactory(journey=JourneyFactory(workspace=two_workspaces["theirs"]))
    alice = EndUserFactory(workspace=two_workspaces["mine"])
    response = editor_client.post(
        admin_url("enduser"),
        {
            "action": "complete_milestone",
            "_selected_action": [alice.pk],
            "apply": "1",
            "milestone": foreign.pk,
        },
    )
    assert "Select a valid choice" in response.content.decode()
    assert not MilestoneCompletion.objects.exists()


@pytest.mark.parametrize(
    "model",
    [
        "workspace", "journey", "walkthrough", "tooltip", "progressbar", "segment",
        "publishedversion", "enduser", "event", "journeyprogress", "milestonecompletion",
    ],
)  # fmt: skip
def test_every_admin_page_renders_for_a_superuser_and_an_editor(
    client: Client, two_workspaces: dict[str, Any], model: str
) -> None:
    bar = ProgressBarFactory(journey=JourneyFactory(workspace=two_workspaces["mine"]))
    MilestoneFactory(journey=bar.journey)
    services.content_publish(obj=bar.journey)
    EndUserFactory(workspace=two_workspaces["mine"])
    for user in (UserFactory(username="root", is_superuser=True), two_workspaces["editor"]):
        client.force_login(user)
        assert client.get(admin_url(model)).status_code == 200
        add = client.get(admin_url(model, "add")).status_code
        assert add in {200, 403}


def test_change_pages_render_with_their_inlines_and_history(
    editor_client: Client, two_workspaces: dict[str, Any]
) -> None:
    bar = ProgressBarFactory(journey=JourneyFactory(workspace=two_workspaces["mine"]))
    MilestoneFactory(journey=bar.journey)
    version = services.content_publish(obj=bar.journey)
    segment = two_workspaces["my_segment"]
    walkthrough = two_workspaces["my_walkthrough"]
    StepFactory(walkthrough=walkthrough)
    pages = {
        admin_url("journey", "change", bar.journey.pk): "v1",
        admin_url("progressbar", "change", bar.pk): "Not published",
        admin_url("walkthrough", "change", walkthrough.pk): "Version history",
        admin_url("segment", "change", segment.pk): "conditions-TOTAL_FORMS",
        admin_url("publishedversion", "change", version.pk): "&quot;milestones&quot;",
        admin_url("workspace", "change", two_workspaces["mine"].pk): "data-key=",
    }
    for url, expected in pages.items():
        response = editor_client.get(url)
        assert response.status_code == 200, url
        assert expected in response.content.decode(), url
