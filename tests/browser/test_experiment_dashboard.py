"""An experiment as a product manager runs it: its page in admin with the start / stop / ship
buttons, and its results dashboard drawing the numbers the API returns. Screenshots go to
var/screenshots/ (the README's come from `MILEPOST_SCREENSHOTS=docs/screenshots`)."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

from django.utils import timezone

from analytics import store, store_export
from onboarding.models import (
    EndUser,
    Event,
    Experiment,
    Milestone,
    MilestoneCompletion,
    Walkthrough,
)
from tests.browser.conftest import Live
from tests.browser.test_dashboards import (
    api,
    figure_data,
    log_in,
    shoot,
    table_rows,
    wait_for_charts,
)


def seeded_experiment(live: Live) -> Experiment:
    workspace = live.demo
    tour = Walkthrough.objects.filter(workspace=workspace).order_by("name").first()
    milestone = Milestone.objects.filter(workspace=workspace).order_by("position").first()
    assert tour is not None
    assert milestone is not None
    experiment = Experiment.objects.create(
        workspace=workspace,
        key="welcome-tour-holdout",
        name="Does the welcome tour speed up activation?",
        content_kind="walkthrough",
        content_key=tour.key,
        variants=[
            {"key": "tour", "weight": 80, "content_key": tour.key},
            {"key": "holdout", "weight": 20, "content_key": None},
        ],
        goal_milestone=milestone,
        minimum_sample=50,
        status=Experiment.Status.RUNNING,
    )
    rng = random.Random(7)
    now = timezone.now() - timedelta(days=20)
    events, completions = [], []
    for n in range(400):
        person = EndUser.objects.create(workspace=workspace, external_id=f"exp-{n}")
        variant = "tour" if rng.random() < 0.8 else "holdout"
        exposed = now + timedelta(minutes=n)
        events.append(
            Event(
                workspace=workspace,
                end_user=person,
                client_id=uuid.uuid4(),
                name="$experiment_exposure",
                timestamp=exposed,
                properties={"experiment": experiment.key, "variant": variant},
            )
        )
        if rng.random() < (0.6 if variant == "tour" else 0.4):
            days = rng.expovariate(1 / (2 if variant == "tour" else 4))
            completions.append(
                MilestoneCompletion(
                    workspace=workspace,
                    end_user=person,
                    milestone=milestone,
                    journey=milestone.journey,
                    completed_at=exposed + timedelta(days=days),
                    source=Event.Source.SERVER,
                )
            )
    Event.objects.bulk_create(events)
    MilestoneCompletion.objects.bulk_create(completions)
    store.reset()
    store_export.export(settle=timedelta(0))
    return experiment


def test_an_experiment_page_and_its_results_dashboard(live: Live, page: Any) -> None:
    experiment = seeded_experiment(live)
    log_in(page, live)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live.milepost_url}/admin/onboarding/experiment/{experiment.pk}/change/")
    assert page.get_by_role("button", name="Stop").is_visible()
    assert page.get_by_role("button", name="Ship holdout").is_visible()
    shoot(page, "experiment-admin")

    page.get_by_role("link", name="Results").click()
    wait_for_charts(page)
    answer = api(live, "experiment", experiment=experiment.key)
    chart = figure_data(page, "conversion")
    assert chart["series"][0]["values"] == [v["statistics"]["rate"] for v in answer["variants"]]
    assert chart["categories"] == ["tour", "holdout"]
    rows = table_rows(page, "conversion")
    assert rows[0][0] == "tour (control)"
    assert rows[1][1] == str(answer["variants"][1]["statistics"]["exposed"])
    verdict = answer["verdict"]
    assert verdict in page.locator("body").inner_text()
    velocity = figure_data(page, "velocity")
    assert velocity["series"][0]["values"] == [v["median_seconds"] for v in answer["variants"]]
    shoot(page, "experiment-results")
