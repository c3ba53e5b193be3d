"""The analytics dashboards as a product manager uses them: opened from the admin index over the
demo data, in light and dark mode; each chart drew the numbers the API returns, its table says
the same, its CSV downloads, and the keyboard reaches it. Screenshots go to var/screenshots/
(MILEPOST_SCREENSHOTS elsewhere; the README's come from `MILEPOST_SCREENSHOTS=docs/screenshots`)."""

from __future__ import annotations

import csv
import io
import os
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from analytics import store, store_export
from onboarding.models import EndUser, Event, Journey, Walkthrough
from tests.browser.conftest import Live, in_thread

CHARTS = Path(settings.BASE_DIR) / "static" / "analytics" / "charts.js"
SCREENSHOTS = Path(
    os.environ.get("MILEPOST_SCREENSHOTS") or settings.BASE_DIR / "var" / "screenshots"
)


@pytest.fixture
def demo(live: Live) -> Live:
    """The demo workspace with a month of synthetic people and events, and walkthrough step
    events (the generator makes none): the welcome tour loses people at each step, and one
    step's target is missing for some."""
    if not CHARTS.is_file():
        pytest.fail(f"{CHARTS} is missing: build the charts first (make charts)")
    in_thread(
        lambda: call_command(
            "generate_demo_events",
            users=150,
            days=30,
            events=6000,
            quiet=True,
            stdout=io.StringIO(),
        )
    )
    workspace = live.demo
    tour = Walkthrough.objects.filter(workspace=workspace).order_by("name").first()
    assert tour is not None
    people = list(EndUser.objects.filter(workspace=workspace).order_by("id")[:60])
    now = timezone.now()
    events = []
    for number, person in enumerate(people):
        at = now - timedelta(days=number % 20, hours=1)
        steps_seen = 1 + number % 4
        # (event, step, seconds after the start) of this person's tour
        happened: list[tuple[str, int | None, int]] = [("$walkthrough_started", None, 0)]
        for step in range(steps_seen):
            happened.append(("$step_viewed", step, 10 * step + 1))
            if step < steps_seen - 1 or steps_seen == 4:
                happened.append(("$step_completed", step, 10 * step + 5))
        if steps_seen == 4:
            happened.append(("$walkthrough_completed", None, 60))
        else:
            happened.append(("$walkthrough_dismissed", steps_seen - 1, 50))
        if number % 5 == 0:
            happened.append(("$step_target_missing", 2, 30))
        events += [
            tour_event(tour, person, name, step, at + timedelta(seconds=seconds))
            for name, step, seconds in happened
        ]
    Event.objects.bulk_create(events)
    # What the export does every few seconds in a running server.
    store.reset()
    store_export.export(settle=timedelta(0))
    return live


def tour_event(
    tour: Walkthrough, person: EndUser, name: str, step: int | None, at: datetime
) -> Event:
    properties: dict[str, Any] = {"walkthrough": tour.key}
    if step is not None:
        properties["step"] = step
    return Event(
        workspace=tour.workspace,
        client_id=uuid.uuid4(),
        end_user=person,
        name=name,
        timestamp=at,
        properties=properties,
    )


def log_in(page: Any, live: Live) -> None:
    page.goto(f"{live.milepost_url}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "milepost-demo")
    page.click("input[type=submit]")


def api(live: Live, slug: str, **query: Any) -> dict[str, Any]:
    answer = httpx.get(
        f"{live.milepost_url}/api/v1/analytics/{slug}",
        params=query,
        headers={"Authorization": f"Bearer {live.secret_key}"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def shoot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def wait_for_charts(page: Any) -> None:
    page.wait_for_selector("body[data-charts-ready]", timeout=30_000)


def drawn(page: Any, figure_id: str) -> list[int]:
    return list(page.evaluate(f"window.milepostCharts.drawnItems({figure_id!r})"))


def figure_data(page: Any, figure_id: str) -> dict[str, Any]:
    return dict(
        page.evaluate(f"JSON.parse(document.getElementById('figure-{figure_id}').textContent)")
    )


def table_rows(page: Any, figure_id: str) -> list[list[str]]:
    section = page.locator(f"section:has([data-figure={figure_id!r}])")
    rows = section.locator("table.data tbody tr")
    return [
        [cell.strip() for cell in rows.nth(i).locator("th, td").all_inner_texts()]
        for i in range(rows.count())
    ]


def downloaded_csv(page: Any, figure_id: str) -> list[list[str]]:
    section = page.locator(f"section:has([data-figure={figure_id!r}])")
    with page.expect_download() as download:
        section.get_by_role("link", name="Download CSV").click()
    text = Path(download.value.path()).read_text()
    return list(csv.reader(io.StringIO(text)))


def month(live: Live) -> dict[str, str]:
    today = timezone.now().date()
    return {"date_from": (today - timedelta(days=29)).isoformat(), "date_to": today.isoformat()}


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_analytics_home_opens_from_the_admin_index_with_the_journeys_at_a_glance(
    demo: Live, browser: Any, scheme: str
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, demo)
    page.goto(f"{demo.milepost_url}/admin/")

    page.locator("#content-main").get_by_role("link", name="Dashboards", exact=True).click()
    wait_for_charts(page)

    journey = Journey.objects.get(workspace=demo.demo, key="trial-onboarding")
    funnel = api(demo, "journey-funnel", journey=journey.key, **month(demo))
    chart = figure_data(page, f"journey-{journey.pk}")
    assert chart["series"][0]["values"] == [step["users"] for step in funnel["steps"]]
    assert drawn(page, f"journey-{journey.pk}") == [len(funnel["steps"])] * 2
    tour = Walkthrough.objects.filter(workspace=demo.demo).order_by("name").first()
    assert tour is not None
    losing = page.locator("article", has_text="Walkthroughs that lose the most people")
    assert f"{tour.name}: 45 of 60 did not finish" in losing.inner_text()
    broken = page.locator("article", has_text="Broken steps")
    assert "step 3" in broken.inner_text()
    assert "not found for 12 people" in broken.inner_text()
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert (background == "rgb(18, 18, 18)") == (scheme == "dark")
    shoot(page, f"analytics-home-{scheme}")

    losing.get_by_role("link", name="Open the report →").click()
    wait_for_charts(page)
    assert page.locator("h1").inner_text() == "Walkthrough step funnel"
    assert errors == []
    context.close()


REPORTS = [
    ("journey-funnel", "funnel", {"journey": "trial-onboarding"}),
    ("velocity", "summary", {"journey": "trial-onboarding"}),
    ("walkthrough-funnel", "funnel", {}),
    ("funnel", "funnel", {"step": ["campaign_created", "contacts_imported"]}),
    ("retention", "cohorts", {"period": "week", "periods": "5"}),
    ("lifecycle", "states", {}),
    ("pqls", "per-day", {}),
    ("adoption", "matrix", {"features": ["login", "campaign_created", "contacts_imported"]}),
    ("pai", "sweep", {"key_event": "login", "window_days": "7", "retention_day": "7"}),
]


def expected_from_api(demo: Live, slug: str, query: dict[str, Any]) -> tuple[list[Any], int]:
    """The chart's first series (or a heat map's values) as the API returns them, and how many
    bars or cells the chart must draw."""
    if slug == "journey-funnel":
        steps = api(demo, slug, **query)["steps"]
        return [s["users"] for s in steps], len(steps)
    if slug == "velocity":
        milestones = api(demo, slug, **query)["milestones"]
        medians = [m["from_start"]["median"] for m in milestones]
        return medians, sum(1 for m in medians if m is not None)
    if slug == "walkthrough-funnel":
        steps = api(demo, slug, **query)["steps"]
        return [s["viewed"] for s in steps], len(steps)
    if slug == "funnel":
        body = {
            "steps": [{"event": name} for name in query["step"]],
            "date_from": query["date_from"],
            "date_to": query["date_to"],
        }
        answer = httpx.post(
            f"{demo.milepost_url}/api/v1/analytics/funnel",
            json=body,
            headers={"Authorization": f"Bearer {demo.secret_key}"},
            timeout=60,
        )
        steps = answer.json()["steps"]
        return [s["count"] for s in steps], len(steps)
    if slug == "retention":
        cohorts = api(demo, slug, **query)["cohorts"]
        values = [rate for c in cohorts for rate in c["rates"]]
        return values, sum(1 for v in values if v is not None)
    if slug == "lifecycle":
        states = api(demo, slug)["states"]
        return [s["current"] for s in states], len(states)
    if slug == "pqls":
        # Every PQL of the range, beyond the rows the answer lists.
        return [api(demo, slug, **query)["total"]], 30
    if slug == "adoption":
        answer = api(demo, slug, **{**query, "features": ",".join(query["features"])})
        return [answer["active_users"]], len(query["features"]) ** 2
    answer = api(demo, slug, **query)
    thresholds = answer["thresholds"]
    return [t["overlap"] for t in thresholds], len(thresholds)


def chart_values(slug: str, chart: dict[str, Any]) -> list[Any]:
    if slug == "retention":
        return [cell[2] for cell in chart["cells"]]
    if slug == "pqls":
        return [sum(chart["series"][0]["values"])]
    if slug == "adoption":
        # The diagonal's share of the first feature times the active people is its users;
        # the active count itself is in the description.
        return [int(chart["description"].split("Of ")[1].split(" active")[0].replace(",", ""))]
    return list(chart["series"][0]["values"])


@pytest.mark.parametrize(("slug", "figure_id", "query"), REPORTS)
def test_each_dashboard_draws_the_numbers_of_the_api_with_its_table_and_csv(
    demo: Live, page: Any, slug: str, figure_id: str, query: dict[str, Any]
) -> None:
    query = {**month(demo), **query}
    if slug == "walkthrough-funnel":
        tour = Walkthrough.objects.filter(workspace=demo.demo).order_by("name").first()
        assert tour is not None
        query["walkthrough"] = tour.key
    if slug == "lifecycle":
        query = {}
    expected, items = expected_from_api(demo, slug, query)
    log_in(page, demo)
    address = httpx.URL(f"{demo.milepost_url}/admin/analytics/dashboard/{slug}/", params=query)

    page.goto(str(address))
    wait_for_charts(page)

    chart = figure_data(page, figure_id)
    assert chart_values(slug, chart) == expected
    assert drawn(page, figure_id)[0] == items
    rows = table_rows(page, figure_id)
    assert rows
    download = downloaded_csv(page, figure_id)
    header = page.locator(f"section:has([data-figure={figure_id!r}]) table.data thead th")
    # The table's header is shown in capitals by admin's CSS; the words are the same.
    assert [h.lower() for h in download[0]] == [h.lower() for h in header.all_inner_texts()]
    assert download[1:] == rows
    # The keyboard reaches the chart after the report's links and its pin form, and arrow keys
    # read it out.
    page.get_by_role("button", name="Pin", exact=True).focus()
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.dataset.figure")
    assert focused == chart_ids(page)[0]
    page.keyboard.press("ArrowRight")
    tooltip = page.locator(f"[data-figure={focused!r}] > div").last
    tooltip.wait_for(state="visible")
    assert tooltip.inner_text().strip()
    assert page.errors == []
    page.keyboard.press("Escape")
    shoot(page, f"analytics-{slug}-light")
    page.emulate_media(color_scheme="dark")
    page.wait_for_timeout(200)
    shoot(page, f"analytics-{slug}-dark")


def chart_ids(page: Any) -> list[str]:
    return list(
        page.evaluate("[...document.querySelectorAll('[data-figure]')].map(e => e.dataset.figure)")
    )


def test_lifecycle_over_time_is_drawn_as_stacked_bars_with_the_api_s_numbers(
    demo: Live, page: Any
) -> None:
    query = {**month(demo), "period": "week"}
    periods = api(demo, "lifecycle", **query)["over_time"]
    log_in(page, demo)

    page.goto(
        str(httpx.URL(f"{demo.milepost_url}/admin/analytics/dashboard/lifecycle/", params=query))
    )
    wait_for_charts(page)

    chart = figure_data(page, "over-time")
    assert chart["categories"] == [p["period_start"] for p in periods]
    assert [s["name"] for s in chart["series"]] == ["New", "Returning", "Resurrecting", "Dormant"]
    for series, state in zip(
        chart["series"], ("new", "returning", "resurrecting", "dormant"), strict=True
    ):
        sign = -1 if state == "dormant" else 1
        assert series["values"] == [sign * p[state] for p in periods]
    assert sum(p["new"] for p in periods) > 0
    assert sum(p["returning"] for p in periods) > 0
    # A bar per period in each of the four series (dormant ones below the axis).
    assert drawn(page, "over-time") == [len(periods)] * 4
    assert table_rows(page, "over-time")[0] == [
        periods[0]["period_start"],
        *(str(periods[0][s]) for s in ("new", "returning", "resurrecting", "dormant")),
    ]
    assert page.errors == []
    page.locator("section:has([data-figure='over-time'])").scroll_into_view_if_needed()
    shoot(page, "analytics-lifecycle-over-time")


def test_a_retention_cell_leads_to_its_people_and_a_segment_of_them(demo: Live, page: Any) -> None:
    query = {**month(demo), "period": "week", "periods": "5"}
    cohorts = api(demo, "retention", **query)["cohorts"]
    log_in(page, demo)
    page.goto(
        str(httpx.URL(f"{demo.milepost_url}/admin/analytics/dashboard/retention/", params=query))
    )
    wait_for_charts(page)

    # The keyboard walks the heat map's cells; Enter opens the people of the first one.
    page.locator("[data-figure='cohorts']").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    page.wait_for_url("**/retention/people/**")

    first = cohorts[0]
    heading = page.locator("h2#people-title").inner_text()
    assert heading.startswith(
        f"{first['returned'][0]} people: cohort of {first['cohort_start']}, week 0"
    )
    people = page.locator(".people-list a")
    assert people.count() == first["returned"][0]
    shoot(page, "analytics-retention-people")
    page.locator("#segment-name").fill("Came back in their first week")
    page.get_by_role("button", name="Make the segment").click()
    page.wait_for_url("**/admin/onboarding/segment/*/change/**")
    assert "holds these" in page.locator(".messagelist").inner_text()
    assert page.errors == []


def test_a_report_pinned_to_the_home_shows_as_a_tile_until_unpinned(demo: Live, page: Any) -> None:
    query = {**month(demo), "step": ["campaign_created", "contacts_imported"]}
    log_in(page, demo)
    page.goto(
        str(httpx.URL(f"{demo.milepost_url}/admin/analytics/dashboard/funnel/", params=query))
    )
    wait_for_charts(page)
    expected = figure_data(page, "funnel")["series"][0]["values"]

    page.locator("#pin-name").fill("Campaign to import")
    page.get_by_role("button", name="Pin", exact=True).click()
    assert "is pinned to the analytics home" in page.locator(".messagelist").inner_text()
    page.get_by_role("link", name="Overview").click()
    wait_for_charts(page)

    tile = page.locator("article.tile-pinned")
    assert tile.locator("h2").inner_text() == "Campaign to import"
    pinned = page.evaluate("window.milepostCharts.ids()")
    saved_id = next(i for i in pinned if i.startswith("saved-"))
    assert figure_data(page, saved_id)["series"][0]["values"] == expected
    shoot(page, "analytics-home-pinned")
    tile.get_by_role("button", name="Unpin Campaign to import").click()
    assert page.locator("article.tile-pinned").count() == 0
    assert page.errors == []


def test_engagement_forms_read_in_units_rows_and_a_preview(demo: Live, page: Any) -> None:
    from engagement.models import Message

    message = Message.objects.create(
        workspace=demo.demo,
        key="import-nudge",
        name="Import nudge",
        style="modal",
        title='Nearly there, {{ first_name|default:"friend" }}',
        body="You are {{ progress_percent }} % through. Next: **{{ next_milestone }}**.",
        cta_label="Import contacts",
        cta_url="/contacts",
    )
    log_in(page, demo)

    page.goto(f"{demo.milepost_url}/admin/engagement/message/{message.pk}/change/")
    preview = page.frame_locator("iframe[title='In-app preview']")
    assert preview.locator("h2").inner_text() == "Nearly there, Alex"
    assert "Next: Imported contacts" in preview.locator(".body").inner_text()
    assert preview.locator("a.cta").inner_text() == "Import contacts"
    page.locator(".field-preview").scroll_into_view_if_needed()
    shoot(page, "engagement-message-preview")

    page.goto(f"{demo.milepost_url}/admin/engagement/rule/add/")
    page.select_option("#id_trigger", "event")
    assert page.locator("#id_delay_1").input_value() == "days"
    assert page.locator("input[name=event_properties_property]").count() == 3
    page.locator(".field-event_properties").scroll_into_view_if_needed()
    shoot(page, "engagement-rule-form")
    assert page.errors == []
