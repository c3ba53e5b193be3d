from __future__ import annotations

from datetime import date, timedelta

import pytest

from analytics import store_export
from analytics.inputs import (
    DateRange,
    EventFunnelSpec,
    FunnelBreakdown,
    FunnelExclusion,
    FunnelStep,
    PropertyFilter,
    ReportInputError,
)
from analytics.report import event_funnel as event_funnel_report
from tests.analytics.conftest import at

MARCH = DateRange(date(2025, 3, 1), date(2025, 3, 31))


@pytest.fixture(autouse=True)
def _empty_store(analytics_store):
    """Funnels are computed in the analytics store; each test starts with it empty."""


def funnel(workspace, *names, **options):
    date_range = options.pop("date_range", MARCH)
    spec = EventFunnelSpec(steps=tuple(FunnelStep(name) for name in names), **options)
    return event_funnel(workspace=workspace, spec=spec, date_range=date_range)


def event_funnel(**arguments):
    """What a report reader gets once the export has copied the events in."""
    store_export.export(settle=timedelta(0))
    return event_funnel_report.event_funnel(**arguments)


def counts(result):
    return [step.count for step in result.steps]


def test_ordered_funnel_lets_other_events_happen_between_steps(workspace, person, track):
    ann, bob, cy = person("ann"), person("bob"), person("cy")
    for who in (ann, bob, cy):
        track(who, "signup", at(2, 10))
    track(ann, "$pageview", at(2, 11))
    track(ann, "invite", at(2, 12))
    track(ann, "pay", at(3, 9))
    track(bob, "invite", at(2, 13))

    result = funnel(workspace, "signup", "invite", "pay")

    assert counts(result) == [3, 2, 1]
    assert [s.conversion_from_previous for s in result.steps] == [1.0, 0.6667, 0.5]
    assert [s.conversion_from_start for s in result.steps] == [1.0, 0.6667, 0.3333]
    assert [s.dropped for s in result.steps] == [0, 1, 1]
    assert result.steps[1].dropped_people == ("cy",)
    assert result.steps[2].converted_people == ("ann",)
    # 2 h (ann) and 3 h (bob): an even count's median lies between the two middle values.
    assert result.steps[1].median_seconds_to_convert == 2.5 * 3600
    assert result.steps[1].mean_seconds_to_convert == 2.5 * 3600


def test_a_step_done_before_the_previous_one_does_not_count(workspace, person, track):
    dee = person("dee")
    track(dee, "invite", at(2, 9))
    track(dee, "signup", at(2, 10))

    assert counts(funnel(workspace, "signup", "invite")) == [1, 0]
    # Any order accepts it.
    assert counts(funnel(workspace, "signup", "invite", order="unordered")) == [1, 1]


def test_events_at_the_same_timestamp_count_in_step_order(workspace, person, track):
    eve = person("eve")
    track(eve, "invite", at(2, 10))  # stored first, same instant as the entry
    track(eve, "signup", at(2, 10))

    result = funnel(workspace, "signup", "invite")

    assert counts(result) == [1, 1]
    assert result.steps[1].median_seconds_to_convert == 0


def test_one_event_counts_for_one_step_only(workspace, person, track):
    fay = person("fay")
    track(fay, "click", at(2, 10))

    assert counts(funnel(workspace, "click", "click")) == [1, 0]
    track(fay, "click", at(2, 11))
    assert counts(funnel(workspace, "click", "click")) == [1, 1]


def test_the_conversion_window_is_inclusive(workspace, person, track):
    gus, hal = person("gus"), person("hal")
    track(gus, "signup", at(2, 10))
    track(gus, "pay", at(2, 11))  # exactly one hour later
    track(hal, "signup", at(2, 10))
    track(hal, "pay", at(2, 11, 0, 1))  # one hour and one second

    result = funnel(workspace, "signup", "pay", window=timedelta(hours=1))

    assert counts(result) == [2, 1]
    assert result.steps[1].converted_people == ("gus",)


def test_repeated_entries_count_a_person_once_from_their_best_attempt(workspace, person, track):
    ida = person("ida")
    track(ida, "signup", at(2, 8))
    track(ida, "signup", at(2, 9))
    track(ida, "signup", at(10, 9))
    track(ida, "pay", at(10, 10))

    result = funnel(workspace, "signup", "pay", window=timedelta(days=1))

    assert counts(result) == [1, 1]
    # The attempt that converts starts on the 10th: one hour to convert.
    assert result.steps[1].median_seconds_to_convert == 3600


def test_strict_order_allows_no_other_event_between_steps(workspace, person, track):
    jo, kim = person("jo"), person("kim")
    for who in (jo, kim):
        track(who, "signup", at(2, 10))
    track(jo, "$pageview", at(2, 11))
    track(jo, "pay", at(2, 12))
    track(kim, "pay", at(2, 12))

    assert counts(funnel(workspace, "signup", "pay", order="strict")) == [2, 1]
    assert counts(funnel(workspace, "signup", "pay")) == [2, 2]


def test_an_exclusion_between_steps_drops_the_attempt_but_a_retry_converts(
    workspace, person, track
):
    lee, max_, ned = person("lee"), person("max"), person("ned")
    for who in (lee, max_, ned):
        track(who, "signup", at(2, 10))
    track(lee, "pay", at(2, 12))
    track(max_, "error", at(2, 11))  # excluded; never retries
    track(max_, "pay", at(2, 12))
    track(ned, "error", at(2, 11))  # excluded attempt...
    track(ned, "signup", at(5, 10))  # ...then a clean retry
    track(ned, "pay", at(5, 11))

    result = funnel(
        workspace,
        "signup",
        "pay",
        exclusions=(FunnelExclusion(event="error", from_step=0, to_step=1),),
    )

    assert counts(result) == [2, 2]
    assert result.excluded == 1
    assert result.steps[1].converted_people == ("lee", "ned")


def test_the_attempt_that_got_furthest_decides_an_exclusion(workspace, person, track):
    oz, pia = person("oz"), person("pia")
    # oz: the attempt of the 2nd reaches invite cleanly within the day; the attempt of the 5th
    # goes all the way, through an error: the furthest attempt is excluded, so is oz.
    track(oz, "signup", at(2, 10))
    track(oz, "invite", at(2, 11))
    track(oz, "signup", at(5, 10))
    track(oz, "invite", at(5, 11))
    track(oz, "error", at(5, 12))
    track(oz, "pay", at(5, 13))
    # pia: errors at the same instants as the steps around them do not exclude.
    track(pia, "signup", at(2, 10))
    track(pia, "invite", at(2, 10))
    track(pia, "error", at(2, 10))
    track(pia, "pay", at(2, 12))
    track(pia, "error", at(2, 12))

    result = funnel(
        workspace,
        "signup",
        "invite",
        "pay",
        window=timedelta(days=1),
        exclusions=(FunnelExclusion(event="error", from_step=1, to_step=2),),
    )

    assert counts(result) == [1, 1, 1]
    assert result.excluded == 1
    assert result.steps[2].converted_people == ("pia",)


def test_breakdown_attribution_picks_the_touch_it_names(workspace, person, track):
    ora = person("ora", traits={"plan": "pro"})
    track(ora, "visit", at(2, 10), source="ads")
    track(ora, "visit2", at(2, 11), source="email")
    pat = person("pat", traits={"plan": "free"})
    track(pat, "visit", at(2, 10), source="ads")

    def groups(breakdown):
        result = funnel(workspace, "visit", "visit2", breakdown=breakdown)
        return {g.value: list(g.counts) for g in result.breakdown}

    assert groups(FunnelBreakdown("event", "source")) == {"ads": [2, 1]}
    assert groups(FunnelBreakdown("event", "source", "last_touch")) == {
        "email": [1, 1],
        "ads": [1, 0],
    }
    assert groups(FunnelBreakdown("event", "source", "step", step=1)) == {
        "email": [1, 1],
        "(none)": [1, 0],
    }
    assert groups(FunnelBreakdown("person", "plan")) == {"free": [1, 0], "pro": [1, 1]}


def test_property_filters_narrow_a_step(workspace, person, track):
    qua, rex = person("qua"), person("rex")
    track(qua, "signup", at(2, 10))
    track(qua, "pay", at(2, 11), amount=50)
    track(rex, "signup", at(2, 10))
    track(rex, "pay", at(2, 11), amount=5)
    spec = EventFunnelSpec(
        steps=(
            FunnelStep("signup"),
            FunnelStep("pay", (PropertyFilter("amount", "gte", 10),)),
        )
    )

    result = event_funnel(workspace=workspace, spec=spec, date_range=MARCH)

    assert counts(result) == [2, 1]
    assert result.steps[1].converted_people == ("qua",)


def test_it_aggregates_by_account(workspace, person, track):
    sam = person("sam", traits={"company": "acme"})
    tia = person("tia", traits={"company": "acme"})
    uma = person("uma", traits={"company": "globex"})
    track(sam, "signup", at(2, 10))
    track(tia, "pay", at(2, 11))  # a colleague completes the account's funnel
    track(uma, "signup", at(2, 10))

    result = funnel(workspace, "signup", "pay", aggregate_by="company")

    assert counts(result) == [2, 1]
    assert result.steps[1].converted_people == ("acme",)
    assert result.aggregate_by == "company"


def test_entry_days_follow_the_time_zone(workspace, person, track):
    vic = person("vic")
    track(vic, "signup", at(3, 2))  # 21:00 on March 2nd in New York
    track(vic, "pay", at(3, 3))
    new_york = DateRange(date(2025, 3, 2), date(2025, 3, 2), "America/New_York")

    result = funnel(workspace, "signup", "pay", date_range=new_york)

    assert counts(result) == [1, 1]
    assert [(p.period_start, p.entered, p.converted) for p in result.over_time] == [
        (date(2025, 3, 2), 1, 1)
    ]
    utc_day = DateRange(date(2025, 3, 2), date(2025, 3, 2))
    assert counts(funnel(workspace, "signup", "pay", date_range=utc_day)) == [0, 0]


def test_an_empty_range_gives_zeros_not_errors(workspace, person, track):
    track(person("wes"), "signup", at(2, 10))
    track(person("xia"), "pay", at(2, 10))
    april = DateRange(date(2025, 4, 1), date(2025, 4, 30))

    result = funnel(workspace, "signup", "pay", date_range=april)

    assert counts(result) == [0, 0]
    assert result.steps[1].conversion_from_previous is None
    assert result.over_time == ()


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"names": ("signup",)}, "steps"),
        ({"names": ("signup",) * 21}, "steps"),
        ({"window": timedelta(0)}, "window"),
        ({"window": timedelta(days=90, seconds=1)}, "window"),
        (
            {"exclusions": (FunnelExclusion(event="signup", from_step=1, to_step=1),)},
            "exclusions[0].from_step",
        ),
        (
            {"exclusions": (FunnelExclusion(event="signup", from_step=0, to_step=2),)},
            "exclusions[0].from_step",
        ),
        ({"breakdown": FunnelBreakdown("event", "x", "step", step=5)}, "breakdown.step"),
    ],
)
def test_it_refuses_bad_input_naming_the_field(workspace, person, track, options, field):
    track(person("yan"), "signup", at(2, 10))
    track(person("zed"), "pay", at(2, 10))
    names = options.pop("names", ("signup", "pay"))

    with pytest.raises(ReportInputError) as error:
        funnel(workspace, *names, **options)

    assert error.value.field == field


def test_a_step_never_recorded_counts_nobody(workspace, person, track):
    track(person("yan"), "signup", at(2, 10))

    assert counts(funnel(workspace, "signup", "nope")) == [1, 0]
    assert counts(funnel(workspace, "nope", "signup")) == [0, 0]


def test_a_window_of_ninety_days_is_accepted(workspace, person, track):
    abe = person("abe")
    track(abe, "signup", at(2, 10))
    track(abe, "pay", at(31, 10, month=5))  # exactly 90 days later

    assert counts(funnel(workspace, "signup", "pay", window=timedelta(days=90))) == [1, 1]
