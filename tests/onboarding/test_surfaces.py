"""Banners and empty-state guides on the server: what `welcome.content.surfaces` holds (segment,
schedule, frequency caps), content as code, the authoring API, restoring a version, and the
per-item figures admin shows."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import include, path, reverse
from django.utils import timezone

from onboarding import queries, services
from onboarding.api.authoring import authoring_urlpatterns
from onboarding.content_io import ContentImportError, content_export, content_import
from onboarding.models import Banner, Guide, PublishedVersion, Walkthrough
from onboarding.recording import events_record
from onboarding.targeting import content_for
from tests.factories import (
    BannerFactory,
    EndUserFactory,
    GuideFactory,
    SegmentFactory,
    UserFactory,
    WorkspaceFactory,
)

pytestmark = pytest.mark.django_db
urlpatterns = [path("api/v1/", include((authoring_urlpatterns, "api")))]
api = pytest.mark.urls("tests.onboarding.test_surfaces")


def record(end_user: Any, name: str, **properties: Any) -> None:
    event = {
        "id": str(uuid.uuid4()),
        "name": name,
        "timestamp": timezone.now().isoformat(),
        "properties": properties,
    }
    ack = events_record(
        workspace=end_user.workspace, events=[event], source="widget", end_user=end_user
    )
    assert ack.rejected == []


def surfaces(end_user: Any, session: str | None = "s1") -> dict[str, Any]:
    return content_for(end_user=end_user, session=session).get("surfaces", {})


def test_no_surfaces_key_without_banners_or_guides() -> None:
    # The SDK loads its surfaces bundle only for a user with such content.
    assert "surfaces" not in content_for(end_user=EndUserFactory())


def test_published_banner_and_guide_reach_the_widget_with_their_fields() -> None:
    end_user = EndUserFactory()
    banner = BannerFactory(
        workspace=end_user.workspace,
        key="maintenance",
        position="bottom",
        mode="overlay",
        cta_label="Read more",
        cta_url="/status",
        priority=3,
        when_present="#app",
    )
    guide = GuideFactory(workspace=end_user.workspace, key="no-campaigns", title="Nothing yet")
    services.content_publish(obj=banner)
    services.content_publish(obj=guide)
    sent = surfaces(end_user)
    assert sent["banners"] == [
        {
            "key": "maintenance",
            "version": 1,
            "priority": 3,
            "page_url_pattern": "",
            "when_present": "#app",
            "wait_timeout_ms": 5000,
            "title": "",
            "body_html": "<p>Scheduled maintenance on <strong>Sunday</strong>.</p>",
            "cta_label": "Read more",
            "cta_url": "/status",
            "dismissible": True,
            "position": "bottom",
            "mode": "overlay",
        }
    ]
    assert sent["guides"][0]["selector"] == "#empty"
    assert sent["guides"][0]["title"] == "Nothing yet"
    # Drafts never reach anyone: an edit shows only once published.
    banner.body_markdown = "Draft words"
    banner.save()
    assert "Draft" not in surfaces(end_user)["banners"][0]["body_html"]


def test_segment_and_schedule_decide_who_sees_a_banner() -> None:
    end_user = EndUserFactory(traits={"plan": "free"})
    segment = SegmentFactory(workspace=end_user.workspace)
    segment.conditions.create(kind="trait", trait="plan", operator="eq", value="pro")
    later = timezone.now() + timedelta(days=1)
    services.content_publish(obj=BannerFactory(workspace=end_user.workspace, segment=segment))
    services.content_publish(obj=BannerFactory(workspace=end_user.workspace, starts_at=later))
    assert surfaces(end_user) == {}


@pytest.mark.parametrize(
    ("frequency", "events", "shown"),
    [
        (Walkthrough.Frequency.ONCE, ["$banner_viewed"], False),
        (Walkthrough.Frequency.UNTIL_COMPLETED, ["$banner_viewed"], True),
        (Walkthrough.Frequency.UNTIL_COMPLETED, ["$banner_viewed", "$banner_dismissed"], False),
        (Walkthrough.Frequency.EVERY_SESSION, ["$banner_dismissed"], False),
    ],
)
def test_frequency_caps_a_banner_from_its_events(
    frequency: str, events: list[str], shown: bool
) -> None:
    end_user = EndUserFactory()
    banner = BannerFactory(workspace=end_user.workspace, key="sale", frequency=frequency)
    services.content_publish(obj=banner)
    for name in events:
        record(end_user, name, banner="sale", version=1, session="s1")
    assert ("banners" in surfaces(end_user)) is shown


def test_every_session_banner_comes_back_in_the_next_session() -> None:
    end_user = EndUserFactory()
    banner = BannerFactory(
        workspace=end_user.workspace, key="sale", frequency=Walkthrough.Frequency.EVERY_SESSION
    )
    services.content_publish(obj=banner)
    record(end_user, "$banner_dismissed", banner="sale", session="s1")
    assert "banners" not in surfaces(end_user, "s1")
    assert [b["key"] for b in surfaces(end_user, "s2")["banners"]] == ["sale"]


def test_a_dismissed_guide_stays_away() -> None:
    end_user = EndUserFactory()
    services.content_publish(obj=GuideFactory(workspace=end_user.workspace, key="empty"))
    record(end_user, "$guide_viewed", guide="empty", session="s1")
    assert [g["key"] for g in surfaces(end_user)["guides"]] == ["empty"]
    record(end_user, "$guide_dismissed", guide="empty", session="s1")
    assert surfaces(end_user) == {}


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"cta_url": "javascript:alert(1)", "cta_label": "Go"}, "cta_url"),
        ({"cta_url": "/pricing"}, "cta_label"),
        ({"when_present": "div[["}, "when_present"),
        ({"page_url_pattern": "no-slash"}, "page_url_pattern"),
        ({"wait_timeout_ms": 0}, "wait_timeout_ms"),
    ],
)
def test_a_bad_banner_is_not_published_and_the_field_is_named(
    fields: dict[str, Any], bad: str
) -> None:
    banner = BannerFactory(**fields)
    with pytest.raises(ValidationError) as error:
        services.content_publish(obj=banner)
    assert any(message.startswith(f"{bad}: ") for message in error.value.messages)
    assert not PublishedVersion.objects.filter(kind="banner").exists()


def test_a_guide_needs_its_host_element() -> None:
    with pytest.raises(ValidationError, match="selector"):
        services.content_publish(obj=GuideFactory(selector=""))


def test_content_as_code_round_trip_and_errors_by_path() -> None:
    workspace = WorkspaceFactory()
    BannerFactory(workspace=workspace, key="b", position="bottom", cta_label="Go", cta_url="/x")
    GuideFactory(workspace=workspace, key="g", selector="#list")
    exported = content_export(workspace=workspace)
    assert [b["key"] for b in exported["banners"]] == ["b"]
    assert exported["guides"][0]["selector"] == "#list"
    other = WorkspaceFactory()
    result = content_import(workspace=other, data=exported, publish=True)
    assert "create banner 'b'" in result.changes
    assert "publish guide 'g' as version 1" in result.changes
    assert content_export(workspace=other)["banners"] == exported["banners"]
    assert content_import(workspace=other, data=exported).changes == []
    broken = {**exported, "banners": [{**exported["banners"][0], "position": "middle"}]}
    broken["guides"] = [{**exported["guides"][0], "cta_url": "javascript:x"}]
    with pytest.raises(ContentImportError) as error:
        content_import(workspace=other, data=broken)
    assert any(line.startswith("banners[0].position:") for line in error.value.errors)
    broken["banners"] = exported["banners"]
    with pytest.raises(ContentImportError) as error:
        content_import(workspace=other, data=broken)
    # The link is refused, and a link without a label too: each named by its path.
    assert [line.split(":")[0] for line in error.value.errors] == [
        "guides[0].cta_url",
        "guides[0].cta_label",
    ]
    assert Guide.objects.get(workspace=other).cta_url == ""


@api
def test_the_authoring_api_publishes_a_banner(client: Client) -> None:
    workspace = WorkspaceFactory()
    BannerFactory(workspace=workspace, key="launch")
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {workspace.keys['secret_key']}"}
    published = client.post("/api/v1/content/banner/launch/publish", **bearer)
    assert published.status_code == 201
    assert published.json()["version"] == 1
    missing = client.post("/api/v1/content/guide/launch/publish", **bearer)
    assert missing.status_code == 404


def test_restoring_an_old_banner_version_brings_its_words_back() -> None:
    banner = BannerFactory(body_markdown="First", position="top")
    first = services.content_publish(obj=banner)
    banner.body_markdown, banner.position = "Second", "bottom"
    banner.save()
    services.content_publish(obj=banner)
    restored = services.content_restore(version=first)
    banner.refresh_from_db()
    assert (banner.body_markdown, banner.position, restored.version) == ("First", "top", 3)


def test_engagement_counts_views_dismissals_and_clicks_per_item() -> None:
    end_user = EndUserFactory()
    banner = BannerFactory(workspace=end_user.workspace, key="sale")
    other = BannerFactory(workspace=end_user.workspace, key="other")
    someone = EndUserFactory(workspace=end_user.workspace)
    for person in (end_user, someone):
        record(person, "$banner_viewed", banner="sale", version=1)
    record(end_user, "$banner_viewed", banner="sale", version=1)
    record(end_user, "$banner_clicked", banner="sale", version=1)
    record(someone, "$banner_dismissed", banner="sale", version=1)
    record(someone, "$banner_viewed", banner="other", version=1)
    assert queries.surface_engagement(banner) == {
        "views": 3,
        "viewers": 2,
        "dismissals": 1,
        "clicks": 1,
    }
    assert queries.surface_engagement(other)["views"] == 1


def test_admin_shows_each_banners_figures_and_publishes_it(client: Client) -> None:
    end_user = EndUserFactory()
    banner = BannerFactory(workspace=end_user.workspace, key="sale", name="Spring sale")
    record(end_user, "$banner_viewed", banner="sale", version=1)
    record(end_user, "$banner_viewed", banner="sale", version=1)
    record(end_user, "$banner_clicked", banner="sale", version=1)
    client.force_login(UserFactory(username="root", is_superuser=True))
    listing = client.get(reverse("admin:onboarding_banner_changelist")).content.decode()
    assert "2 views by 1 person · 0 dismissed · 1 call-to-action clicks (50 % of views)" in listing
    page = client.get(reverse("admin:onboarding_banner_change", args=[banner.pk]))
    assert "2 views by 1 person" in page.content.decode()
    client.post(
        reverse("admin:onboarding_banner_changelist"),
        {"action": "publish", "_selected_action": [banner.pk]},
    )
    assert PublishedVersion.objects.filter(kind="banner", key="sale", version=1).exists()
    guides = client.get(reverse("admin:onboarding_guide_changelist"))
    assert guides.status_code == 200
    assert isinstance(Banner.objects.get(key="sale"), Banner)
