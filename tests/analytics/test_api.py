from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from onboarding.models import Segment
from tests.analytics.conftest import at
from tests.factories import JourneyFactory, JourneyProgressFactory, WorkspaceFactory

MARCH = {"date_from": "2025-03-01", "date_to": "2025-03-31"}


@pytest.fixture
def api(workspace):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {workspace.keys['secret_key']}")
    return client


@pytest.fixture
def events(workspace, person, track, analytics_store):
    ann, bob = person("ann"), person("bob")
    track(ann, "signup", at(2, 10))
    track(ann, "pay", at(2, 11))
    track(bob, "signup", at(2, 10))
    analytics_store()
    return ann, bob


def funnel_body(**overrides):
    body = {**MARCH, "steps": [{"event": "signup"}, {"event": "pay"}]}
    body.update(overrides)
    return body


def test_the_event_funnel_answers_with_counts(api, events):
    response = api.post("/api/v1/analytics/funnel", funnel_body(), format="json")

    assert response.status_code == 200
    assert [s["count"] for s in response.json()["steps"]] == [2, 1]


def test_a_report_downloads_as_csv(api, events):
    response = api.post("/api/v1/analytics/funnel", funnel_body(export="csv"), format="json")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().splitlines()
    assert lines[0].startswith("step,event,count")
    assert lines[1:] == ["0,signup,2,1.0,1.0,0,,", "1,pay,1,0.5,0.5,1,3600.0,3600.0"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"window_seconds": 0}, "window"),
        ({"window_seconds": 90 * 86400 + 1}, "window"),
        ({"window_seconds": 10**22}, "window"),
        ({"window_seconds": -(10**22)}, "window"),
        ({"steps": [{"event": "signup"}] * 21}, "steps"),
        ({"date_from": "2025-04-01"}, "date_from"),
        (
            {"exclusions": [{"event": "pay", "from_step": 1, "to_step": 0}]},
            "exclusions[0].from_step",
        ),
        ({"date_to": "not a date"}, "date_to"),
    ],
)
def test_bad_funnel_input_is_a_400_naming_the_field(api, events, overrides, field):
    response = api.post("/api/v1/analytics/funnel", funnel_body(**overrides), format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_get_reports_answer_and_refuse_unknown_journeys(api, workspace, events):
    journey = JourneyFactory(workspace=workspace, key="trial")
    JourneyProgressFactory(end_user=events[0], journey=journey, started_at=at(2))

    ok = api.get("/api/v1/analytics/journey-funnel", {**MARCH, "journey": "trial"})
    unknown = api.get("/api/v1/analytics/velocity", {**MARCH, "journey": "nope"})
    retention = api.get("/api/v1/analytics/retention", {**MARCH, "periods": 2})
    lifecycle = api.get("/api/v1/analytics/lifecycle", {"export": "csv"})
    pai = api.get("/api/v1/analytics/pai", {**MARCH, "key_event": "signup", "window_days": 0})

    assert ok.status_code == 200
    assert ok.json()["steps"][0]["users"] == 1
    assert unknown.status_code == 400
    assert "journey" in unknown.json()["error"]["fields"]
    assert retention.status_code == 200
    assert [c["size"] for c in retention.json()["cohorts"]] == [2]
    assert lifecycle.content.decode().startswith("stage,current")
    assert pai.status_code == 400
    assert "window_days" in pai.json()["error"]["fields"]


def test_a_key_sees_only_its_own_workspace(events):
    other = WorkspaceFactory()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {other.keys['secret_key']}")

    response = client.post("/api/v1/analytics/funnel", funnel_body(), format="json")
    anonymous = APIClient().post("/api/v1/analytics/funnel", funnel_body(), format="json")

    # The other workspace never recorded "signup": to it nobody did.
    assert response.status_code == 200
    assert [step["count"] for step in response.json()["steps"]] == [0, 0]
    assert anonymous.status_code in (401, 403)


def test_an_adoption_cell_is_saved_as_a_segment(api, workspace, events):
    matrix = api.get("/api/v1/analytics/adoption", {**MARCH, "features": "signup,pay"})
    response = api.post(
        "/api/v1/analytics/adoption/segments",
        {"features": ["signup", "pay"], "used": [True, False], "key": "no-pay", "name": "No pay"},
        format="json",
    )

    assert [c["users"] for c in matrix.json()["cells"]] == [0, 0, 1, 1]
    assert response.status_code == 201
    segment = Segment.objects.get(workspace=workspace, key="no-pay")
    assert [(c.event_name, c.operator) for c in segment.conditions.all()] == [
        ("signup", "performed"),
        ("pay", "not_performed"),
    ]


def test_the_openapi_schema_documents_the_reports(db):
    text = APIClient().get("/api/schema/").content.decode()

    assert "/api/v1/analytics/funnel" in text
    assert "/api/v1/analytics/pai" in text
    assert "key_event" in text


def test_a_store_that_is_down_is_a_503_with_retry_after(api, events, settings):
    settings.ANALYTICS_URL = "http://127.0.0.1:9/milepost"  # nothing listens there

    answer = api.get("/api/v1/analytics/retention", {**MARCH, "periods": 2})

    assert answer.status_code == 503
    assert answer["Retry-After"] == "30"
    assert answer.json()["error"]["code"] == "analytics_unavailable"
    assert "127.0.0.1:9" in answer.json()["error"]["message"]
