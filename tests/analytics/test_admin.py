from __future__ import annotations

import json
import re

from django.test import Client
from django.utils import timezone

from tests.analytics.conftest import at
from tests.factories import (
    JourneyFactory,
    MilestoneFactory,
    UserFactory,
    WorkspaceFactory,
    WorkspaceMemberFactory,
)

HOME = "/admin/analytics/dashboard/"
FUNNEL = "/admin/analytics/dashboard/funnel/"
MARCH = {"date_from": "2025-03-01", "date_to": "2025-03-31"}


def logged_in(workspace):
    user = UserFactory(is_staff=True, is_superuser=False)
    WorkspaceMemberFactory(workspace=workspace, user=user)
    client = Client()
    client.force_login(user)
    return client


def figure(html: str, figure_id: str) -> dict:
    found = re.search(
        rf'<script id="figure-{figure_id}" type="application/json">(.*?)</script>', html
    )
    assert found, f"no figure {figure_id}"
    return json.loads(found.group(1))


def test_the_analytics_home_is_one_click_from_the_admin_index(workspace):
    JourneyFactory(workspace=workspace, name="Trial onboarding", key="trial")
    client = logged_in(workspace)

    index = client.get("/admin/").content.decode()
    home = client.get(HOME)

    assert f'href="{HOME}"' in index
    assert home.status_code == 200
    html = home.content.decode()
    assert "Trial onboarding: last 30 days" in html
    assert "PQLs this week" in html
    assert "Walkthroughs that lose the most people" in html
    assert "Engagement deliveries" in html
    assert "/admin/analytics/dashboard/journey-funnel/?workspace=" in html


def test_the_funnel_dashboard_draws_its_numbers_and_downloads_each_table(
    workspace, person, track, analytics_store
):
    ann = person("ann-the-person")
    track(ann, "signup", at(2, 10))
    track(ann, "pay", at(2, 11))
    analytics_store()
    client = logged_in(workspace)
    query = {**MARCH, "step": ["signup", "pay"]}

    page = client.get(FUNNEL, query)
    table = client.get(FUNNEL, {**query, "download": "funnel"})
    whole = client.get(FUNNEL, {**query, "export": "csv"})

    assert page.status_code == 200
    chart = figure(page.content.decode(), "funnel")
    assert chart["categories"] == ["1. signup", "2. pay"]
    assert chart["series"][0]["values"] == [1, 1]
    assert table["Content-Type"].startswith("text/csv")
    assert "2. pay,1,100.0 %,100.0 %,0,1 h,1 h" in table.content.decode()
    assert "1,pay,1,1.0,1.0,0,3600.0,3600.0" in whole.content.decode()


def test_errors_name_the_field_a_person_filled_in(workspace, person, track, analytics_store):
    WorkspaceFactory(name="Someone Else's")
    ann = person("ann")
    track(ann, "signup", at(2, 10))
    track(ann, "pay", at(2, 11))
    analytics_store()
    client = logged_in(workspace)

    backwards = client.get(
        FUNNEL, {"step": ["signup", "pay"], "date_from": "2025-03-31", "date_to": "2025-03-01"}
    )
    unknown = client.get(FUNNEL, {**MARCH, "step": ["signup", "paid"]})
    exclusion = client.get(
        FUNNEL,
        {**MARCH, "step": ["signup", "pay"], "exclusion": "pay", "exclusion_from": "2"},
    )
    wrong_way = client.get(
        FUNNEL,
        {
            **MARCH,
            "step": ["signup", "pay"],
            "exclusion": "pay",
            "exclusion_from": "2",
            "exclusion_to": "1",
        },
    )

    assert backwards.status_code == 400
    assert "wrong way round" in backwards.content.decode()
    # A typo is visible, not fatal: the step counts nobody and a warning names it.
    assert unknown.status_code == 200
    assert "No event named &#x27;paid&#x27; was ever recorded" in unknown.content.decode()
    assert 'id="id_exclusion-errors"' in exclusion.content.decode()
    assert "Say between which steps" in exclusion.content.decode()
    html = wrong_way.content.decode()
    assert 'id="id_exclusion-errors"' in html
    assert "An exclusion lies between two steps" in html
    for page in (backwards, unknown, exclusion, wrong_way):
        assert "non_field_errors" not in page.content.decode()
        assert "Someone Else" not in page.content.decode()


def test_a_journey_is_picked_by_name_and_the_range_defaults_to_the_last_30_days(workspace):
    journey = JourneyFactory(workspace=workspace, name="Trial onboarding", key="trial")
    MilestoneFactory(workspace=workspace, journey=journey, name="Installed", key="installed")
    client = logged_in(workspace)

    page = client.get("/admin/analytics/dashboard/journey-funnel/")

    html = page.content.decode()
    assert page.status_code == 200
    assert '<option value="trial" selected>Trial onboarding</option>' in html
    assert re.search(r'name="date_from" value="\d{4}-\d\d-\d\d"', html)
    assert "Last 7 days" in html
    assert '<th scope="row">Installed</th>' in html
    assert "Nothing to draw in this range: Nobody entered the funnel" in html


def test_old_dashboard_addresses_lead_to_the_new_ones(workspace):
    client = logged_in(workspace)

    moved = client.get("/admin/analytics/analyticssettings/dashboards/retention/?periods=4")

    assert moved.status_code == 302
    assert moved["Location"] == "/admin/analytics/dashboard/retention/?periods=4"


def test_retention_leaves_periods_that_have_not_begun_blank(
    workspace, person, track, analytics_store
):
    now = timezone.now()
    ann = person("ann", signed_up_at=now, first_seen_at=now)
    track(ann, "login", now)
    analytics_store()
    client = logged_in(workspace)
    today = now.date().isoformat()

    page = client.get(
        "/admin/analytics/dashboard/retention/",
        {"date_from": today, "date_to": today, "period": "day", "periods": "3"},
    )

    cells = figure(page.content.decode(), "cohorts")["cells"]
    assert cells == [[0, 0, 1.0], [1, 0, None], [2, 0, None]]
