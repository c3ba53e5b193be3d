from __future__ import annotations

from django.test import Client

from tests.analytics.conftest import at
from tests.factories import UserFactory, WorkspaceFactory, WorkspaceMemberFactory

URL = "/admin/analytics/analyticssettings/dashboards/funnel/"


def logged_in(workspace):
    user = UserFactory(is_staff=True, is_superuser=False)
    WorkspaceMemberFactory(workspace=workspace, user=user)
    client = Client()
    client.force_login(user)
    return client


def test_a_member_sees_the_funnel_dashboard_with_its_chart_and_csv(workspace, person, track):
    ann = person("ann-the-person")
    track(ann, "signup", at(2, 10))
    track(ann, "pay", at(2, 11))
    client = logged_in(workspace)
    query = {"steps": "signup,pay", "date_from": "2025-03-01", "date_to": "2025-03-31"}

    page = client.get(URL, query)
    download = client.get(URL, {**query, "export": "csv"})

    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html
    assert "<td>signup</td>" in html
    assert download["Content-Type"].startswith("text/csv")
    assert "1,pay,1,1.0,1.0,0,3600.0,3600.0" in download.content.decode()


def test_the_dashboard_shows_the_bad_field_and_hides_other_workspaces(workspace, person, track):
    WorkspaceFactory(name="Someone Else's")
    client = logged_in(workspace)

    page = client.get(
        URL, {"steps": "signup,pay", "date_from": "2025-03-31", "date_to": "2025-03-01"}
    )

    assert page.status_code == 400
    html = page.content.decode()
    assert "date_from" in html
    assert "wrong way round" in html
    assert "Someone Else" not in html
