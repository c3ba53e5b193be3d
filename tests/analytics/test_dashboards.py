from __future__ import annotations

import math
from collections import Counter
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import timezone

from analytics import services
from analytics.dashboards import adoption_figures, histogram_position, weeks_of
from analytics.inputs import DateRange
from analytics.models import SavedReport
from analytics.report import adoption, journey_funnel, lifecycle
from analytics.report.segment_members import segment_members
from onboarding.models import EndUser, Segment
from tests.analytics.conftest import at
from tests.analytics.test_admin import MARCH, figure, logged_in
from tests.factories import JourneyFactory, MilestoneFactory, WorkspaceFactory


def test_percentile_marks_stand_where_their_time_falls_inside_a_bucket():
    # Buckets: "< 1 min" (index 0), "1-10 min" (1), "10-60 min" (2), ...
    assert histogram_position(30) == 0.0
    assert histogram_position(60) == 0.5
    assert math.isclose(histogram_position(math.sqrt(60 * 600)), 1.0)
    assert histogram_position(599) < 1.5 < histogram_position(600) + 1e-9
    assert histogram_position(10**9) == 9.0


def test_the_adoption_heat_map_counts_people_who_used_both_features():
    def cell(used: tuple[bool, bool], users: int) -> adoption.AdoptionCell:
        return adoption.AdoptionCell(used=used, users=users, share=users / 10)

    matrix = adoption.AdoptionMatrix(
        features=("import", "send"),
        active_users=10,
        cells=(
            cell((False, False), 1),
            cell((True, False), 2),
            cell((False, True), 3),
            cell((True, True), 4),
        ),
    )

    heat, combinations = adoption_figures(matrix)

    assert heat.cells == [(0, 0, 0.6), (1, 0, 0.4), (0, 1, 0.4), (1, 1, 0.7)]
    assert heat.rows[0] == ["import", "60.0 % (6)", "40.0 % (4)"]
    assert combinations.categories == ["none of them", "import", "send", "import + send"]


PEOPLE = "/admin/analytics/dashboard/{}/people/"


def test_a_funnel_step_opens_its_people_and_makes_a_segment_of_them_in_one_click(
    workspace, person, track, analytics_store
):
    people = [person(f"p{n}") for n in range(5)]
    for n, someone in enumerate(people):
        track(someone, "signup", at(2, 10 + n))
        if n % 2 == 0:
            track(someone, "invite", at(3, 10))
    analytics_store()
    client = logged_in(workspace)
    query = {**MARCH, "step": ["signup", "invite"], "timezone": "UTC"}

    report = client.get("/admin/analytics/dashboard/funnel/", query).content.decode()
    links = figure(report, "funnel")["links"]
    dropped = client.get(PEOPLE.format("funnel"), {**query, "at_step": 2, "outcome": "dropped"})

    assert set(links) == {"0", "1"}
    assert "at_step=2" in links["1"]
    page = dropped.content.decode()
    assert dropped.status_code == 200
    assert "2 people: dropped off before step 2 (invite)" in page
    for n in (1, 3):
        pk = people[n].pk
        assert f'href="/admin/onboarding/enduser/{pk}/change/">p{n}</a>' in page
    assert ">p0</a>" not in page

    made = client.post(
        PEOPLE.format("funnel") + "?" + dropped.request["QUERY_STRING"],
        {"name": "Did not invite"},
    )

    segment = Segment.objects.get(workspace=workspace, key="did-not-invite")
    assert made.status_code == 302
    assert made["Location"] == f"/admin/onboarding/segment/{segment.pk}/change/"
    members = segment_members(segment=segment).values_list("external_id", flat=True)
    assert sorted(members) == ["p1", "p3"]


def test_a_retention_cell_opens_its_people(workspace, person, track, analytics_store):
    ann, bob, cy = person("ann"), person("bob"), person("cy")
    for someone in (ann, bob, cy):
        track(someone, "login", at(3, 9))
    track(ann, "login", at(11, 9))
    track(cy, "login", at(12, 9))
    analytics_store()
    client = logged_in(workspace)
    query = {**MARCH, "timezone": "UTC", "period": "week", "periods": "3"}

    report = client.get("/admin/analytics/dashboard/retention/", query).content.decode()
    cells = figure(report, "cohorts")["links"]
    week_one = client.get(cells["1,0"].replace("&amp;", "&"))

    assert "cohort=2025-03-03" in cells["1,0"]
    assert "period_offset=1" in cells["1,0"]
    page = week_one.content.decode()
    assert "2 people: cohort of 2025-03-03, week 1, came back" in page
    assert ">ann</a>" in page
    assert ">cy</a>" in page
    assert ">bob</a>" not in page


def test_the_people_page_names_a_wrong_choice(workspace, person, track, analytics_store):
    track(person("ann"), "signup", at(2, 10))
    analytics_store()
    client = logged_in(workspace)
    query = {**MARCH, "step": ["signup", "signup"]}

    answer = client.get(PEOPLE.format("funnel"), {**query, "at_step": 7})
    cell = client.get(PEOPLE.format("retention"), {**MARCH, "cohort": "soon", "period_offset": 0})

    assert answer.status_code == 400
    assert "at_step is a whole number from 1 to 2." in answer.content.decode()
    assert cell.status_code == 400
    assert "cohort is the day its cohort starts, YYYY-MM-DD." in cell.content.decode()
    assert client.get(PEOPLE.format("pai")).status_code == 404


def test_a_pinned_report_is_a_tile_of_the_home_with_its_dates_moving_until_unpinned(
    workspace, person, track, analytics_store
):
    ann = person("ann")
    today = timezone.now().date()
    track(ann, "signup", timezone.now() - timedelta(days=2))
    track(ann, "invite", timezone.now() - timedelta(days=1))
    analytics_store()
    client = logged_in(workspace)
    week = {
        "date_from": (today - timedelta(days=6)).isoformat(),
        "date_to": today.isoformat(),
        "step": ["signup", "invite"],
        "workspace": str(workspace.pk),
    }
    report = client.get("/admin/analytics/dashboard/funnel/", week).content.decode()
    assert 'action="/admin/analytics/dashboard/saved/"' in report

    pinned = client.post(
        "/admin/analytics/dashboard/saved/",
        {
            "workspace": workspace.pk,
            "report": "funnel",
            "name": "Invites this week",
            "query": urlencode(week, doseq=True) + "&export=csv",
            "rolling": "on",
        },
    )
    twice = client.post(
        "/admin/analytics/dashboard/saved/",
        {"workspace": workspace.pk, "report": "funnel", "name": "Invites this week", "query": ""},
        follow=True,
    )

    assert pinned.status_code == 302
    saved = SavedReport.objects.get(workspace=workspace)
    assert "export" not in saved.query
    assert "days=7" in saved.query
    assert "is pinned already" in twice.content.decode()
    home = client.get(f"/admin/analytics/dashboard/?workspace={workspace.pk}").content.decode()
    assert "Invites this week" in home
    tile = figure(home, f"saved-{saved.pk}")
    assert tile["series"][0]["values"] == [1, 1]
    # A week later the tile still shows the last 7 days, up to that day.
    later = services.saved_report_query(saved, today + timedelta(days=7))
    assert later["date_from"] == (today + timedelta(days=1)).isoformat()
    assert later["date_to"] == (today + timedelta(days=7)).isoformat()

    other = WorkspaceFactory()
    assert (
        client.post(
            f"/admin/analytics/dashboard/saved/{saved.pk}/unpin/", {"workspace": other.pk}
        ).status_code
        == 404
    )
    unpinned = client.post(
        f"/admin/analytics/dashboard/saved/{saved.pk}/unpin/", {"workspace": workspace.pk}
    )

    assert unpinned.status_code == 302
    assert not SavedReport.objects.exists()
    home = client.get(f"/admin/analytics/dashboard/?workspace={workspace.pk}").content.decode()
    assert "Invites this week" not in home


def test_report_time_zones_default_to_the_workspace_s(workspace):
    workspace.time_zone = "Asia/Tokyo"
    workspace.save(update_fields=["time_zone"])
    client = logged_in(workspace)

    page = client.get("/admin/analytics/dashboard/retention/").content.decode()

    assert '<option value="Asia/Tokyo" selected>' in page
    workspace.time_zone = "Mars/Olympus"
    with pytest.raises(ValidationError) as error:
        workspace.full_clean()
    assert "is not an IANA time zone" in str(error.value)


def test_the_end_users_lifecycle_column_agrees_with_the_lifecycle_report(
    workspace, person, track, analytics_store
):
    now = timezone.now()
    person("visitor", signed_up_at=None, first_seen_at=now - timedelta(days=9))
    person("trial", signed_up_at=now - timedelta(days=8))
    customer = person("customer", signed_up_at=now - timedelta(days=8))
    active = person("active", signed_up_at=now - timedelta(days=8))
    churned = person("churned", signed_up_at=now - timedelta(days=8))
    for someone in (customer, active, churned):
        track(someone, "subscription_started", now - timedelta(days=5))
    track(customer, "$pageview", now - timedelta(days=60))  # before becoming a customer
    track(active, "$pageview", now - timedelta(days=1))
    track(churned, "subscription_cancelled", now - timedelta(days=2))
    analytics_store()
    # Everyone starts as the model's default (trial) until analytics writes the stages back.
    assert set(EndUser.objects.values_list("lifecycle_stage", flat=True)) == {"trial"}

    changed = services.lifecycle_stages_refresh(workspace=workspace)

    report = lifecycle.lifecycle(workspace=workspace)
    now_per_stage = {s.stage: s.current for s in report.states if s.current}
    stored = Counter(EndUser.objects.values_list("lifecycle_stage", flat=True))
    assert now_per_stage == dict(stored)
    assert changed == 4
    assert {p.external_id: p.lifecycle_stage for p in EndUser.objects.all()} == {
        "visitor": "visitor",
        "trial": "trial",
        "customer": "customer",
        "active": "active_customer",
        "churned": "churned",
    }
    client = logged_in(workspace)
    listed = client.get("/admin/onboarding/enduser/", {"lifecycle_stage__exact": "churned"})
    assert listed.status_code == 200
    assert ">churned</a>" in listed.content.decode()
    assert ">visitor</a>" not in listed.content.decode()
    assert services.lifecycle_stages_refresh(workspace=workspace) == 0


def test_the_funnel_breakdown_can_require_the_same_value_at_every_step(
    workspace, person, track, analytics_store
):
    ann, bob = person("ann"), person("bob")
    track(ann, "signup", at(2, 10), source="ads")
    track(ann, "invite", at(2, 11), source="ads")
    # Bob came from an ad but invited from an email: his value changed between the steps.
    track(bob, "signup", at(2, 10), source="ads")
    track(bob, "invite", at(2, 12), source="email")
    analytics_store()
    client = logged_in(workspace)
    query = {
        **MARCH,
        "timezone": "UTC",
        "step": ["signup", "invite"],
        "breakdown": "source",
        "breakdown_kind": "event",
    }

    first_touch = client.get("/admin/analytics/dashboard/funnel/", query).content.decode()
    all_steps = client.get(
        "/admin/analytics/dashboard/funnel/", {**query, "breakdown_attribution": "all_steps"}
    ).content.decode()
    at_step_two = client.get(
        "/admin/analytics/dashboard/funnel/",
        {**query, "breakdown_attribution": "step", "breakdown_step": "2"},
    ).content.decode()

    def bars(page: str) -> dict[str, list[int]]:
        return {s["name"]: s["values"] for s in figure(page, "breakdown")["series"]}

    assert bars(first_touch) == {"ads": [2, 2]}
    # Every step: Bob converted with no single value, so "ads" counts him at step 1 only.
    assert bars(all_steps) == {"ads": [2, 1]}
    assert '<option value="all_steps" selected>' in all_steps
    assert bars(at_step_two) == {"ads": [1, 1], "email": [1, 1]}


def test_a_breakdown_at_a_step_names_the_step_it_needs(workspace, person, track, analytics_store):
    someone = person("ann")
    track(someone, "signup", at(2, 10), source="ads")
    track(someone, "invite", at(2, 11), source="ads")
    analytics_store()
    client = logged_in(workspace)
    query = {
        **MARCH,
        "timezone": "UTC",
        "step": ["signup", "invite"],
        "breakdown": "source",
        "breakdown_kind": "event",
        "breakdown_attribution": "step",
    }

    missing = client.get("/admin/analytics/dashboard/funnel/", query)
    beyond = client.get("/admin/analytics/dashboard/funnel/", {**query, "breakdown_step": "3"})

    assert missing.status_code == beyond.status_code == 400
    assert "Say at which step the property is read." in missing.content.decode()
    assert "Name a step from 1 to 2." in beyond.content.decode()
    assert 'id="figure-breakdown"' not in beyond.content.decode()


def test_the_journey_funnel_over_time_counts_each_week_as_its_own_journey_funnel(
    workspace, django_assert_max_num_queries
):
    journey = JourneyFactory(workspace=workspace, key="trial")
    MilestoneFactory(journey=journey, key="installed", criterion="server", event_name="")
    MilestoneFactory(journey=journey, key="campaign", event_name="campaign_created")
    call_command(
        "generate_demo_events", "--workspace", workspace.slug, "--quiet", "--users", "120",
        "--days", "40",
    )  # fmt: skip
    today = timezone.now().date()
    query = {"date_from": (today - timedelta(days=34)).isoformat(), "date_to": today.isoformat()}
    client = logged_in(workspace)
    address = f"/admin/analytics/dashboard/journey-funnel/?{urlencode(query)}"
    client.get(address)  # the rollups are counted on the first read

    # One read of the day rollups for every week, not a journey funnel (4-5 queries) per week.
    with django_assert_max_num_queries(40):
        page = client.get(address)

    chart = figure(page.content.decode(), "over-time")
    weeks = weeks_of(DateRange(today - timedelta(days=34), today))
    assert chart["categories"] == [week.date_from.isoformat() for week in weeks]
    for i, week in enumerate(weeks):
        funnel = journey_funnel.journey_funnel(journey=journey, date_range=week)
        assert [series["values"][i] for series in chart["series"]] == [
            step.conversion_from_start for step in funnel.steps[1:]
        ]
    assert sum(1 for series in chart["series"] for value in series["values"] if value)
