"""The resource center's sections: authored, published, targeted and counted like other content."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from onboarding import queries, services
from onboarding.models import (
    PublishedVersion,
    ResourceItem,
    ResourceSection,
    WorkspaceMember,
)
from onboarding.targeting import content_for
from tests.factories import (
    ConditionFactory,
    EndUserFactory,
    EventFactory,
    JourneyFactory,
    JourneyProgressFactory,
    MilestoneFactory,
    ProgressBarFactory,
    ResourceItemFactory,
    ResourceSectionFactory,
    SegmentFactory,
    StepFactory,
    UserFactory,
    WalkthroughFactory,
    WorkspaceFactory,
    WorkspaceMemberFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def workspace() -> Any:
    return WorkspaceFactory()


@pytest.fixture
def end_user(workspace: Any) -> Any:
    return EndUserFactory(workspace=workspace, traits={"plan": "trial"})


def published_tour(workspace: Any, **kwargs: Any) -> Any:
    tour = WalkthroughFactory(workspace=workspace, **kwargs)
    StepFactory(walkthrough=tour, position=0, title="Hello", selector="")
    services.content_publish(obj=tour)
    return tour


def published_bar(workspace: Any, **kwargs: Any) -> Any:
    journey = JourneyFactory(workspace=workspace, key="setup")
    MilestoneFactory(journey=journey, key="invited", position=0)
    services.content_publish(obj=journey)
    bar = ProgressBarFactory(workspace=workspace, journey=journey, key="setup-bar", **kwargs)
    services.content_publish(obj=bar)
    return bar


def section_with(workspace: Any, *items: dict[str, Any], **kwargs: Any) -> ResourceSection:
    section = ResourceSectionFactory(workspace=workspace, key="help", **kwargs)
    for position, item in enumerate(items):
        ResourceItemFactory(section=section, position=position, **item)
    return section


def sent_sections(end_user: Any) -> list[dict[str, Any]]:
    return content_for(end_user=end_user).get("surfaces", {}).get("resource_centers", [])


# Authoring and publishing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "field", "message"),
    [
        ({"kind": "checklist", "title": "", "url": ""}, "progress_bar", "Choose the progress bar"),
        ({"kind": "tour", "url": ""}, "walkthrough", "Choose the walkthrough this item replays."),
        ({"kind": "link", "url": ""}, "url", "A link needs its URL."),
        ({"kind": "link", "url": "javascript:alert(1)"}, "url", "is not an http(s) URL"),
        ({"kind": "article", "title": ""}, "title", "A article needs a title."),
        ({"kind": "announcement", "published_on": None}, "published_on", "needs its date"),
        ({"body_markdown": "x" * 2001}, "body_markdown", "At most 2,000 characters"),
    ],
)
def test_publishing_names_the_item_field_that_is_wrong(
    workspace: Any, item: dict[str, Any], field: str, message: str
) -> None:
    section_with(workspace, {"key": "first"}, {"key": "bad", **item})
    with pytest.raises(ValidationError) as raised:
        services.content_publish(obj=ResourceSection.objects.get(key="help"))
    assert any(
        line.startswith(f"items[1].{field}: ") and message in line for line in raised.value.messages
    ), raised.value.messages
    assert not PublishedVersion.objects.exists()


def test_a_section_needs_items_and_published_targets(workspace: Any) -> None:
    empty = ResourceSectionFactory(workspace=workspace, key="empty")
    with pytest.raises(ValidationError, match="at least one item"):
        services.content_publish(obj=empty)
    draft_tour = WalkthroughFactory(workspace=workspace)
    section = section_with(workspace, {"kind": "tour", "url": "", "walkthrough": draft_tour})
    with pytest.raises(ValidationError, match=r"items\[0\]: Publish the walkthrough it names"):
        services.content_publish(obj=section)


def test_a_section_refuses_another_workspaces_tour(workspace: Any) -> None:
    foreign = published_tour(WorkspaceFactory())
    section = section_with(workspace, {"kind": "tour", "url": "", "walkthrough": foreign})
    with pytest.raises(ValidationError, match="belongs to another workspace"):
        services.content_publish(obj=section)


def test_markdown_bodies_are_sanitised(workspace: Any) -> None:
    section = section_with(
        workspace,
        {
            "kind": "article",
            "body_markdown": "**Bold** <script>alert(1)</script> [x](javascript:y)",
        },
    )
    version = services.content_publish(obj=section)
    html = version.snapshot["items"][0]["body_html"]
    assert "<strong>Bold</strong>" in html
    assert "<script>" not in html
    assert 'href="javascript' not in html


def test_restoring_a_version_brings_back_its_items(workspace: Any) -> None:
    section = section_with(workspace, {"key": "docs", "title": "Docs"}, {"key": "faq"})
    first = services.content_publish(obj=section)
    section.items.filter(key="faq").delete()
    ResourceItem.objects.filter(key="docs").update(title="Renamed")
    section.title = "Changed"
    section.save(update_fields=["title"])
    services.content_publish(obj=section)

    restored = services.content_restore(version=first)

    assert restored.version == 3
    assert restored.restored_from == 1
    section.refresh_from_db()
    assert section.title == "Get started"
    assert list(section.items.values_list("key", "title")) == [
        ("docs", "Docs"),
        ("faq", "Help center"),
    ]


def test_the_authoring_api_publishes_a_section(client: Client, workspace: Any) -> None:
    section_with(workspace, {"key": "docs"})
    response = client.post(
        "/api/v1/content/resource_section/help/publish",
        HTTP_AUTHORIZATION=f"Bearer {workspace.keys['secret_key']}",
    )
    assert response.status_code == 201, response.content
    assert response.json()["kind"] == "resource_section"
    assert response.json()["version"] == 1


# Targeting ---------------------------------------------------------------------------------


def test_it_sends_published_sections_with_the_items_the_user_can_use(
    workspace: Any, end_user: Any
) -> None:
    admins = SegmentFactory(workspace=workspace)
    ConditionFactory(segment=admins, trait="role", operator="eq", value="admin")
    mine = published_tour(workspace, key="welcome", name="Welcome tour")
    theirs = published_tour(workspace, key="admin-tour", segment=admins)
    bar = published_bar(workspace, title="Set up your team")
    section = section_with(
        workspace,
        {"key": "setup", "kind": "checklist", "title": "", "url": "", "progress_bar": bar},
        {"key": "replay", "kind": "tour", "title": "", "url": "", "walkthrough": mine},
        {"key": "admins", "kind": "tour", "url": "", "walkthrough": theirs},
        {"key": "docs", "kind": "article", "body_markdown": "Read *this*."},
        {"key": "news", "kind": "announcement", "url": "", "published_on": date(2026, 11, 30)},
        position="bottom-left",
        launcher_label="Resources",
    )
    services.content_publish(obj=section)

    [sent] = sent_sections(end_user)

    assert sent["position"] == "bottom-left"
    assert sent["launcher_label"] == "Resources"
    assert [item["key"] for item in sent["items"]] == ["setup", "replay", "docs", "news"]
    checklist, tour, article, news = sent["items"]
    assert (checklist["title"], checklist["journey"]) == ("Set up your team", "setup")
    assert (tour["title"], tour["walkthrough"]) == ("Welcome tour", "welcome")
    assert article["body_html"] == "<p>Read <em>this</em>.</p>"
    assert news["published_on"] == "2026-11-30"


def test_a_checklist_stays_listed_once_its_journey_is_complete(
    workspace: Any, end_user: Any
) -> None:
    bar = published_bar(workspace, hide_when_complete=True)
    services.content_publish(
        obj=section_with(workspace, {"kind": "checklist", "url": "", "progress_bar": bar})
    )
    JourneyProgressFactory(end_user=end_user, journey=bar.journey, completed_at=timezone.now())
    content = content_for(end_user=end_user)
    assert content["progress_bars"] == []
    sections = content["surfaces"]["resource_centers"]
    assert [item["kind"] for item in sections[0]["items"]] == ["checklist"]


def test_sections_follow_segment_schedule_and_priority(workspace: Any, end_user: Any) -> None:
    paying = SegmentFactory(workspace=workspace)
    ConditionFactory(segment=paying, trait="plan", operator="eq", value="paid")
    now = timezone.now()
    for key, kwargs in {
        "low": {"priority": 1},
        "high": {"priority": 5},
        "paying": {"segment": paying},
        "later": {"starts_at": now + timedelta(days=1)},
        "over": {"ends_at": now - timedelta(days=1)},
    }.items():
        section = ResourceSectionFactory(workspace=workspace, key=key, **kwargs)
        ResourceItemFactory(section=section)
        services.content_publish(obj=section)
    assert [s["key"] for s in sent_sections(end_user)] == ["high", "low"]


def test_a_section_left_with_no_usable_item_is_not_sent(workspace: Any, end_user: Any) -> None:
    admins = SegmentFactory(workspace=workspace)
    ConditionFactory(segment=admins, trait="role", operator="eq", value="admin")
    theirs = published_tour(workspace, segment=admins)
    services.content_publish(
        obj=section_with(workspace, {"kind": "tour", "url": "", "walkthrough": theirs})
    )
    assert sent_sections(end_user) == []


# Usage in admin ----------------------------------------------------------------------------


def test_usage_counts_opens_searches_and_clicks_per_item(workspace: Any) -> None:
    section = section_with(workspace, {"key": "docs"}, {"key": "faq", "title": "FAQ"})
    ann, bob = EndUserFactory(workspace=workspace), EndUserFactory(workspace=workspace)
    for person in (ann, ann, bob):
        EventFactory(end_user=person, name=queries.RESOURCE_CENTER_OPENED, properties={})
    for query in ("invite", "invite", "billing"):
        EventFactory(
            end_user=ann, name=queries.RESOURCE_CENTER_SEARCHED, properties={"query": query}
        )
    for person, item in ((ann, "docs"), (bob, "docs"), (bob, "faq")):
        EventFactory(
            end_user=person,
            name=queries.RESOURCE_CLICKED,
            properties={"section": "help", "item": item, "kind": "link"},
        )
    EventFactory(  # another section's item of the same key is not this one's
        end_user=ann,
        name=queries.RESOURCE_CLICKED,
        properties={"section": "other", "item": "docs"},
    )
    EventFactory(  # older than the window
        end_user=ann,
        name=queries.RESOURCE_CLICKED,
        properties={"section": "help", "item": "faq"},
        timestamp=timezone.now() - timedelta(days=queries.RESOURCE_USAGE_DAYS + 1),
    )

    usage = queries.resource_section_usage(section=section)

    assert (usage.opens, usage.openers, usage.searches) == (3, 2, 3)
    assert usage.top_searches == (("invite", 2), ("billing", 1))
    assert [(i.key, i.clicks, i.people) for i in usage.items] == [("docs", 2, 2), ("faq", 1, 1)]


def test_the_admin_change_page_shows_usage_per_item(client: Client, workspace: Any) -> None:
    section = section_with(workspace, {"key": "docs", "title": "Docs"})
    person = EndUserFactory(workspace=workspace)
    EventFactory(
        end_user=person,
        name=queries.RESOURCE_CLICKED,
        properties={"section": "help", "item": "docs"},
    )
    editor = UserFactory(username="rc-editor")
    WorkspaceMemberFactory(workspace=workspace, user=editor, role=WorkspaceMember.Role.EDITOR)
    client.force_login(editor)
    page = client.get(
        reverse("admin:onboarding_resourcesection_change", args=[section.pk])
    ).content.decode()
    assert "Usage (last 30 days)" in page
    assert "<td>docs</td><td>Docs</td><td>Link</td><td>1</td><td>1</td>" in page
