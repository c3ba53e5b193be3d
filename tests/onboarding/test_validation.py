from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError

from onboarding import validation
from onboarding.models import Condition, Criterion
from tests.factories import (
    ConditionFactory,
    JourneyFactory,
    MilestoneFactory,
    ProgressBarItemFactory,
    SegmentFactory,
    StepFactory,
    TooltipFactory,
    WalkthroughFactory,
    WorkspaceFactory,
)

pytestmark = pytest.mark.django_db


def errors_of(row: object) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        row.full_clean()  # type: ignore[attr-defined]
    return caught.value.message_dict


@pytest.mark.parametrize(
    "selector", ["div[", "#", "a >> b", "::", 'button:contains("Help")', "li:eq(1)", "svg|rect"]
)
def test_a_step_selector_that_is_not_css_is_refused_on_the_selector(selector: str) -> None:
    step = StepFactory.build(walkthrough=WalkthroughFactory(), selector=selector)
    assert "is not a CSS selector browsers accept" in errors_of(step)["selector"][0]


@pytest.mark.parametrize("selector", ["#create-campaign", "nav a[href='/x']:first-child", ""])
def test_valid_selectors_and_the_centred_modal_pass(selector: str) -> None:
    StepFactory.build(walkthrough=WalkthroughFactory(), selector=selector).full_clean()


def test_a_tooltip_needs_a_selector() -> None:
    tooltip = TooltipFactory.build(workspace=WorkspaceFactory(), selector="")
    assert "A CSS selector is required here." in errors_of(tooltip)["selector"]


def test_a_milestone_with_a_window_but_no_event_is_refused() -> None:
    milestone = MilestoneFactory.build(
        journey=JourneyFactory(), event_name="", window=timedelta(days=1)
    )
    assert "A milestone with a window needs an event." in errors_of(milestone)["event_name"]


def test_a_walkthrough_milestone_needs_its_walkthrough() -> None:
    milestone = MilestoneFactory.build(
        journey=JourneyFactory(), criterion=Criterion.WALKTHROUGH, event_name=""
    )
    assert errors_of(milestone)["walkthrough"] == [
        "Choose the walkthrough whose completion reaches it."
    ]


def test_a_condition_with_an_unknown_operator_names_the_allowed_ones() -> None:
    condition = ConditionFactory.build(segment=SegmentFactory(), operator="resembles")
    (message,) = errors_of(condition)["operator"]
    assert "Unknown operator 'resembles' for a trait condition" in message
    assert "eq" in message


def test_a_lifecycle_condition_must_name_a_stage() -> None:
    condition = ConditionFactory.build(
        segment=SegmentFactory(), kind=Condition.Kind.LIFECYCLE, operator="is", value="vip"
    )
    assert "'vip' is not a lifecycle stage" in errors_of(condition)["value"][0]


def test_a_schedule_must_end_after_it_starts() -> None:
    start = datetime(2025, 5, 1, tzinfo=UTC)
    walkthrough = WalkthroughFactory.build(
        workspace=WorkspaceFactory(), starts_at=start, ends_at=start - timedelta(hours=1)
    )
    assert errors_of(walkthrough)["ends_at"] == ["The end must come after the start."]


def test_content_cannot_reference_another_workspaces_segment() -> None:
    walkthrough = WalkthroughFactory.build(workspace=WorkspaceFactory(), segment=SegmentFactory())
    assert "belongs to another workspace" in errors_of(walkthrough)["segment"][0]


def test_a_progress_bar_item_must_use_a_milestone_of_the_bars_journey() -> None:
    item = ProgressBarItemFactory()
    item.milestone = MilestoneFactory(journey=JourneyFactory(workspace=item.progress_bar.workspace))
    assert errors_of(item)["milestone"] == ["Choose a milestone of the bar's journey."]


def test_an_open_url_action_needs_an_http_url_or_a_path() -> None:
    item = ProgressBarItemFactory(action="open_url", url="javascript:alert(1)")
    assert "is not an http(s) URL" in errors_of(item)["url"][0]


@pytest.mark.parametrize(
    ("origins", "message"),
    [
        (["app.example.com"], "is not an origin"),
        (["https://app.example.com/path"], "has a path"),
        ("https://app.example.com", "JSON list of strings"),
    ],
)
def test_origins_are_refused_with_the_reason(origins: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        validation.clean_origins(origins)


def test_origins_are_normalised() -> None:
    assert validation.clean_origins(["HTTPS://App.Example.com/", "https://app.example.com"]) == [
        "https://app.example.com"
    ]


def test_a_theme_with_an_unknown_key_or_a_bad_colour_is_refused() -> None:
    with pytest.raises(ValidationError, match="Unknown theme keys: shadow"):
        validation.clean_theme({"shadow": "big"})
    with pytest.raises(ValidationError, match="primary_color must be a hex colour"):
        validation.clean_theme({"primary_color": "red; background: url(x)"})
