"""The builder's tokens and sessions, through admin and the builder API as a browser calls them:
what opens, what saves, and everything that must be refused."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from onboarding.models import (
    BuilderSession,
    PublishedVersion,
    Step,
    Survey,
    Walkthrough,
    WorkspaceMember,
)
from tests.factories import (
    BannerFactory,
    GuideFactory,
    MilestoneFactory,
    ProgressBarFactory,
    StepFactory,
    TooltipFactory,
    UserFactory,
    WalkthroughFactory,
    WorkspaceFactory,
    WorkspaceMemberFactory,
)

pytestmark = pytest.mark.django_db

APP = "https://app.example.com"
API = "/api/v1/builder"


@pytest.fixture
def tour() -> Walkthrough:
    workspace = WorkspaceFactory()
    tour = WalkthroughFactory(workspace=workspace, key="tour", name="Tour")
    StepFactory(walkthrough=tour, position=0, title="Hello", page_url_pattern="/dashboard")
    return tour


def member(tour: Walkthrough, role: str = "editor") -> Any:
    return WorkspaceMemberFactory(workspace=tour.workspace, role=role).user


def grant(client: Client, user: Any, tour: Walkthrough, address: str = f"{APP}/dashboard") -> Any:
    client.force_login(user)
    return client.post(f"/admin/onboarding/walkthrough/{tour.pk}/builder/", {"address": address})


def token_of(response: Any) -> str:
    assert response.status_code == 302, response.content
    location = response["Location"]
    address, _, fragment = location.partition("#milepost-builder=")
    assert address == f"{APP}/dashboard"
    return fragment


def exchange(token: str, origin: str = APP) -> Any:
    return Client().post(
        f"{API}/session", {"token": token}, content_type="application/json", HTTP_ORIGIN=origin
    )


def session_for(tour: Walkthrough, role: str = "editor") -> tuple[str, Any]:
    user = member(tour, role)
    answer = exchange(token_of(grant(Client(), user, tour)))
    assert answer.status_code == 201, answer.content
    return answer.json()["session"], user


def call(method: str, path: str, session: str, origin: str = APP, body: Any = None) -> Any:
    client = Client()
    kwargs: dict[str, Any] = {"HTTP_ORIGIN": origin, "HTTP_AUTHORIZATION": f"Builder {session}"}
    if body is not None:
        kwargs.update(data=body, content_type="application/json")
    return getattr(client, method)(f"{API}/{path}", **kwargs)


def code(response: Any) -> str:
    return str(response.json()["error"]["code"])


def test_admin_opens_the_builder_on_an_allowed_origin_and_the_session_edits_the_draft(
    tour: Walkthrough,
) -> None:
    session, user = session_for(tour)
    draft = call("get", "content", session)
    assert draft.status_code == 200
    assert draft["Access-Control-Allow-Origin"] == APP
    document = draft.json()["document"]
    assert [step["title"] for step in document["steps"]] == ["Hello"]

    document["steps"].append(
        {**document["steps"][0], "title": "Second", "selector": "#go", "body_markdown": "**Hi**"}
    )
    saved = call("put", "content", session, body={"document": document})
    assert saved.status_code == 200, saved.content
    assert saved.json()["rendered"][1] == "<p><strong>Hi</strong></p>"
    assert list(tour.steps.order_by("position").values_list("title", flat=True)) == [
        "Hello",
        "Second",
    ]
    published = call("post", "content/publish", session)
    assert published.status_code == 201
    version = PublishedVersion.objects.get(kind="walkthrough", key="tour")
    assert version.published_by == user


def test_the_markdown_preview_is_the_sanitised_html_end_users_get(tour: Walkthrough) -> None:
    session, _ = session_for(tour)
    answer = call("post", "markdown", session, body={"markdown": "**a** <script>x</script>"})
    assert answer.json()["html"] == "<p><strong>a</strong> &lt;script&gt;x&lt;/script&gt;</p>"


def test_a_token_works_once(tour: Walkthrough) -> None:
    token = token_of(grant(Client(), member(tour), tour))
    assert exchange(token).status_code == 201
    again = exchange(token)
    assert again.status_code == 401
    assert code(again) == "token_used"


def test_a_token_older_than_60_seconds_is_refused(tour: Walkthrough) -> None:
    token = token_of(grant(Client(), member(tour), tour))
    BuilderSession.objects.update(granted_at=timezone.now() - timedelta(seconds=61))
    answer = exchange(token)
    assert answer.status_code == 401
    assert code(answer) == "token_expired"


def test_a_token_exchanged_from_another_origin_is_refused(tour: Walkthrough) -> None:
    tour.workspace.allowed_origins = [APP, "https://other.example.com"]
    tour.workspace.save(update_fields=["allowed_origins"])
    token = token_of(grant(Client(), member(tour), tour))
    answer = exchange(token, origin="https://other.example.com")
    assert answer.status_code == 403
    assert code(answer) == "origin_not_allowed"
    # Refused, not spent: the right page can still use it.
    assert exchange(token).status_code == 201


def test_admin_refuses_to_open_the_builder_on_an_origin_the_workspace_does_not_allow(
    tour: Walkthrough,
) -> None:
    client = Client()
    answer = grant(client, member(tour), tour, address="https://evil.example.net/dashboard")
    assert answer.status_code == 302
    assert answer["Location"] == f"/admin/onboarding/walkthrough/{tour.pk}/change/"
    assert not BuilderSession.objects.exists()
    page = client.get(answer["Location"])
    assert "is not among the workspace&#x27;s allowed origins" in page.content.decode()


def test_another_workspaces_token_or_content_is_out_of_reach(tour: Walkthrough) -> None:
    other = WalkthroughFactory(workspace=WorkspaceFactory(), key="theirs")
    outsider = WorkspaceMemberFactory(workspace=other.workspace).user
    # Admin does not even show them the other workspace's walkthrough.
    assert grant(Client(), outsider, tour).status_code == 404
    session, _ = session_for(tour)
    document = call("get", "content", session).json()["document"]
    answer = call("put", "content", session, body={"document": {**document, "key": "theirs"}})
    assert answer.status_code == 400
    assert code(answer) == "wrong_key"
    assert not Step.objects.filter(walkthrough=other).exists()


def test_a_session_from_another_origin_or_without_its_header_is_refused(tour: Walkthrough) -> None:
    tour.workspace.allowed_origins = [APP, "https://other.example.com"]
    tour.workspace.save(update_fields=["allowed_origins"])
    session, _ = session_for(tour)
    assert code(call("get", "content", session, origin="https://other.example.com")) == (
        "origin_not_allowed"
    )
    assert Client().get(f"{API}/content", HTTP_ORIGIN=APP).status_code == 401
    assert call("get", "content", "mpb_forged").status_code == 401


def test_a_session_expires_after_an_hour(tour: Walkthrough) -> None:
    session, _ = session_for(tour)
    BuilderSession.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    answer = call("get", "content", session)
    assert answer.status_code == 401
    assert code(answer) == "session_expired"


def test_a_viewer_can_look_but_not_save_or_publish(tour: Walkthrough) -> None:
    session, _ = session_for(tour, role="viewer")
    draft = call("get", "content", session)
    assert draft.status_code == 200
    assert draft.json()["may_save"] is False
    document = draft.json()["document"]
    document["steps"][0]["title"] = "Changed by a viewer"
    saved = call("put", "content", session, body={"document": document})
    assert saved.status_code == 403
    assert code(saved) == "read_only"
    assert call("post", "content/publish", session).status_code == 403
    assert tour.steps.get().title == "Hello"
    assert not PublishedVersion.objects.exists()


def test_the_session_dies_when_the_editor_loses_the_editor_role(tour: Walkthrough) -> None:
    session, user = session_for(tour)
    WorkspaceMember.objects.filter(user=user).update(role="viewer")
    answer = call("get", "content", session)
    assert answer.status_code == 403
    assert code(answer) == "role_lost"
    WorkspaceMember.objects.filter(user=user).delete()
    assert code(call("get", "content", session)) == "role_lost"


def test_a_bad_draft_is_refused_by_name_and_nothing_is_saved(tour: Walkthrough) -> None:
    session, _ = session_for(tour)
    document = call("get", "content", session).json()["document"]
    document["steps"].append({**document["steps"][0], "title": "", "selector": "a["})
    answer = call("put", "content", session, body={"document": document})
    assert answer.status_code == 400
    fields = answer.json()["error"]["fields"]
    assert any(line.startswith("walkthroughs[0].steps[1].title") for line in fields)
    assert tour.steps.count() == 1


def test_a_preflight_is_granted_only_to_an_origin_some_workspace_allows(tour: Walkthrough) -> None:
    allowed = Client().options(f"{API}/content", HTTP_ORIGIN=APP)
    assert allowed["Access-Control-Allow-Origin"] == APP
    assert "Authorization" in allowed["Access-Control-Allow-Headers"]
    refused = Client().options(f"{API}/content", HTTP_ORIGIN="https://evil.example.net")
    assert "Access-Control-Allow-Origin" not in refused


def test_only_hashes_of_the_tokens_are_stored(tour: Walkthrough) -> None:
    token = token_of(grant(Client(), member(tour), tour))
    session = exchange(token).json()["session"]
    row = BuilderSession.objects.get()
    assert token not in (row.grant_hash, row.session_hash)
    assert session not in (row.grant_hash, row.session_hash)


def test_a_non_member_staff_user_cannot_open_the_builder(tour: Walkthrough) -> None:
    assert grant(Client(), UserFactory(), tour).status_code == 404


def test_the_openapi_schema_documents_the_builder_api() -> None:
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert {
        "/api/v1/builder/session",
        "/api/v1/builder/content",
        "/api/v1/builder/content/publish",
        "/api/v1/builder/markdown",
    } <= set(schema["paths"])
    assert "403" in schema["paths"]["/api/v1/builder/content"]["put"]["responses"]


def test_the_builder_edits_a_tooltip_and_a_progress_bar_too() -> None:
    tip = TooltipFactory(key="hint", selector="#help")
    editor = WorkspaceMemberFactory(workspace=tip.workspace).user
    client = Client()
    client.force_login(editor)
    opened = client.post(
        f"/admin/onboarding/tooltip/{tip.pk}/builder/", {"address": f"{APP}/dashboard"}
    )
    session = exchange(token_of(opened)).json()["session"]
    document = call("get", "content", session).json()["document"]
    document["selector"] = '[data-tour="help"]'
    saved = call("put", "content", session, body={"document": document})
    assert saved.status_code == 200, saved.content
    tip.refresh_from_db()
    assert tip.selector == '[data-tour="help"]'

    bar = ProgressBarFactory(key="setup")
    MilestoneFactory(journey=bar.journey, workspace=bar.workspace, key="first", name="First")
    owner = WorkspaceMemberFactory(workspace=bar.workspace, role="owner").user
    client.force_login(owner)
    opened = client.post(
        f"/admin/onboarding/progressbar/{bar.pk}/builder/", {"address": f"{APP}/dashboard"}
    )
    session = exchange(token_of(opened)).json()["session"]
    draft = call("get", "content", session).json()
    assert [m["name"] for m in draft["milestones"]] == ["First"]
    document = {**draft["document"], "title": "Get set up", "position": "top"}
    answer = call("put", "content", session, body={"document": document})
    assert answer.status_code == 200, answer.content
    bar.refresh_from_db()
    assert (bar.title, bar.position) == ("Get set up", "top")


def test_the_builder_places_an_empty_state_guide_and_a_trigger() -> None:
    guide = GuideFactory(key="empty", selector="#list", page_url_pattern="/contacts")
    editor = WorkspaceMemberFactory(workspace=guide.workspace).user
    client = Client()
    client.force_login(editor)
    opened = client.post(
        f"/admin/onboarding/guide/{guide.pk}/builder/", {"address": f"{APP}/dashboard"}
    )
    session = exchange(token_of(opened)).json()["session"]
    draft = call("get", "content", session).json()
    assert draft["kind"] == "guide"
    assert draft["rendered"] == [guide.body_html]
    document = {**draft["document"], "selector": "#feedback", "when_present": "#list .empty"}
    saved = call("put", "content", session, body={"document": document})
    assert saved.status_code == 200, saved.content
    guide.refresh_from_db()
    assert (guide.selector, guide.when_present) == ("#feedback", "#list .empty")
    # A trigger browsers would reject is refused by name; nothing is saved.
    bad = call("put", "content", session, body={"document": {**document, "when_present": "a[["}})
    assert bad.status_code == 400
    assert "guides[0].when_present" in bad.content.decode()
    guide.refresh_from_db()
    assert guide.when_present == "#list .empty"
    published = call("post", "content/publish", session)
    assert published.status_code == 201
    assert PublishedVersion.objects.get(kind="guide").snapshot["selector"] == "#feedback"


def builder_session(client: Client, obj: Any, model_name: str) -> str:
    """An editor's builder session on `obj`, opened from its admin change page."""
    client.force_login(WorkspaceMemberFactory(workspace=obj.workspace).user)
    opened = client.post(
        f"/admin/onboarding/{model_name}/{obj.pk}/builder/", {"address": f"{APP}/dashboard"}
    )
    return str(exchange(token_of(opened)).json()["session"])


def test_the_builder_moves_a_banner_to_the_bottom_over_the_page() -> None:
    banner = BannerFactory(key="maintenance", page_url_pattern="/dashboard")
    session = builder_session(Client(), banner, "banner")
    draft = call("get", "content", session).json()
    assert (draft["kind"], draft["rendered"]) == ("banner", [banner.body_html])
    document = {**draft["document"], "position": "bottom", "mode": "overlay"}
    saved = call("put", "content", session, body={"document": document})
    assert saved.status_code == 200, saved.content
    banner.refresh_from_db()
    assert (banner.position, banner.mode) == ("bottom", "overlay")
    # A position the SDK does not draw is refused by name; nothing is saved.
    bad = call("put", "content", session, body={"document": {**document, "position": "left"}})
    assert bad.status_code == 400
    assert "banners[0].position" in bad.content.decode()
    banner.refresh_from_db()
    assert banner.position == "bottom"
    assert call("post", "content/publish", session).status_code == 201
    assert PublishedVersion.objects.get(kind="banner").snapshot["mode"] == "overlay"


def test_the_builder_places_an_inline_survey_in_a_picked_host_element() -> None:
    workspace = WorkspaceFactory()
    questions = [{"key": "score", "type": "nps", "prompt": "How likely are you to recommend us?"}]
    survey = Survey.objects.create(
        workspace=workspace, key="nps", name="NPS", page_url_pattern="/contacts"
    )
    survey.questions = questions
    survey.save(update_fields=["questions"])
    session = builder_session(Client(), survey, "survey")
    draft = call("get", "content", session).json()
    assert (draft["kind"], draft["rendered"]) == ("survey", [])
    assert draft["document"]["questions"] == questions
    document = {**draft["document"], "display": "inline", "selector": "section.panel"}
    saved = call("put", "content", session, body={"document": document})
    assert saved.status_code == 200, saved.content
    survey.refresh_from_db()
    assert (survey.display, survey.selector) == ("inline", "section.panel")
    # A host element browsers would reject is refused by name; nothing is saved.
    bad = call("put", "content", session, body={"document": {**document, "selector": "a[["}})
    assert bad.status_code == 400
    assert "surveys[0].selector" in bad.content.decode()
    survey.refresh_from_db()
    assert survey.selector == "section.panel"
    assert call("post", "content/publish", session).status_code == 201
    assert PublishedVersion.objects.get(kind="survey").snapshot["selector"] == "section.panel"
