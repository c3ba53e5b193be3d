"""The analytics store's event funnel (analytics/store_funnel.py) answers exactly what the
reference engine (analytics/funnel_engine.py) answers, person by person, on random event sets
full of adversarial people: repeated entries, events at the same instant, steps exactly at the
window's edge, exclusions between steps, breakdown values that change between steps, one event
that can count for two steps. Then the report built on it, and its bad input."""

from __future__ import annotations

import itertools
import json
import random
import socket
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from analytics import funnel_engine, store, store_funnel, store_funnel_blocks
from analytics.inputs import (
    DateRange,
    EventFunnelSpec,
    FunnelBreakdown,
    FunnelExclusion,
    FunnelStep,
    PropertyFilter,
    ReportInputError,
)
from onboarding.models import EndUser, Event, Workspace
from tests.factories import WorkspaceFactory

NAMES = ("visit", "signup", "invite", "pay", "error")
VALUES = (
    *("pro", "free", "PRO plan", "", "3", 3, 2.5, 3.0, 0, True, False, None, {"tier": 1}, [1, 2]),
)
ORIGIN = datetime(2025, 3, 10, tzinfo=UTC)
SLOT = timedelta(minutes=30)
FILTERS = (
    PropertyFilter("plan", "eq", "pro"),
    PropertyFilter("plan", "eq", 3),
    PropertyFilter("plan", "eq", True),
    PropertyFilter("plan", "neq", "free"),
    PropertyFilter("plan", "contains", "pro"),
    PropertyFilter("size", "gt", 1),
    PropertyFilter("size", "gte", 2),
    PropertyFilter("size", "lt", 2.5),
    PropertyFilter("size", "lte", 1),
    PropertyFilter("plan", "is_set"),
    PropertyFilter("size", "is_not_set"),
)


def _properties(rng: random.Random) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    if rng.random() < 0.8:
        properties["plan"] = rng.choice(VALUES)
    if rng.random() < 0.6:
        properties["size"] = rng.choice((1, 2, 3, 2.5, "2"))
    return properties


def _record(workspace: Workspace, rng: random.Random, people: int) -> None:
    """Events on a coarse grid of 30-minute slots over ~3 days, so that equal instants and
    exact window edges (windows are whole slots) are common; some a millisecond off."""
    # Traits for breakdowns by person and for counting by account: some people lack them.
    users = EndUser.objects.bulk_create(
        EndUser(
            workspace=workspace,
            external_id=f"p{number:03d}",
            traits={
                key: rng.choice(choices)
                for key, choices in (("plan", VALUES), ("company", ("acme", "globex", 7, True)))
                if rng.random() < 0.8
            },
        )
        for number in range(people)
    )
    events = []
    for user in users:
        for _ in range(rng.randint(1, 14)):
            instant = ORIGIN + SLOT * rng.randint(-6, 150)
            if rng.random() < 0.1:
                instant += timedelta(milliseconds=rng.choice((1, -1)))
            events.append(
                Event(
                    workspace=workspace,
                    end_user=user,
                    client_id=uuid.uuid4(),
                    name=rng.choice((*NAMES, "noise")),
                    timestamp=instant,
                    properties=_properties(rng),
                )
            )
    Event.objects.bulk_create(events)


def _spec(rng: random.Random, order: str) -> EventFunnelSpec:
    size = rng.randint(2, 4)
    # Repeated names make one event able to count for two steps.
    names = [rng.choice(NAMES[:4]) for _ in range(size)]
    steps = tuple(
        FunnelStep(name, tuple(rng.sample(FILTERS, rng.choice((0, 0, 1, 2))))) for name in names
    )
    exclusions = []
    for _ in range(rng.choice((0, 1, 1, 2))):
        low = rng.randint(0, size - 2)
        exclusions.append(
            FunnelExclusion(
                rng.choice(("error", "invite", names[low])),
                low,
                rng.randint(low + 1, size - 1),
                tuple(rng.sample(FILTERS, rng.choice((0, 1)))),
            )
        )
    breakdown = None
    if rng.random() < 0.2:
        breakdown = FunnelBreakdown("person", "plan")
    elif rng.random() < 0.7:
        attribution = rng.choice(("first_touch", "last_touch", "all_steps", "step"))
        breakdown = FunnelBreakdown(
            "event",
            rng.choice(("plan", "size")),
            attribution,  # type: ignore[arg-type]
            rng.randint(0, size - 1) if attribution == "step" else None,
        )
    return EventFunnelSpec(
        steps=steps,
        order=order,  # type: ignore[arg-type]
        window=SLOT * rng.choice((1, 2, 5, 24, 200)),
        exclusions=tuple(exclusions),
        breakdown=breakdown,
        aggregate_by="company" if rng.random() < 0.2 else None,
    )


def _date_range(rng: random.Random) -> DateRange:
    first = date(2025, 3, 10) + timedelta(days=rng.choice((-1, 0, 1)))
    last = first + timedelta(days=rng.choice((0, 1, 3)))
    return DateRange(first, last, rng.choice(("UTC", "America/New_York", "Asia/Kolkata")))


def _reference(
    workspace: Workspace, spec: EventFunnelSpec, date_range: DateRange
) -> dict[tuple[int, str], store_funnel.PersonResult]:
    """The reference engine's answer per person (per account with aggregate_by; per person and
    value with "all steps"), from the events and traits as the store holds them."""
    start_ms = int(date_range.start.timestamp() * 1000)
    end_ms = int(date_range.end.timestamp() * 1000)
    window_ms = int(spec.window.total_seconds() * 1000)
    traits = {
        person: json.loads(text)
        for person, text in store.rows(
            "SELECT person_id, traits FROM people FINAL WHERE workspace_id = {workspace:UInt64}",
            {"workspace": workspace.id},
        )
    }
    # An account is numbered by the lowest id of the people holding it.
    accounts: dict[str, int] = {}
    for person in sorted(traits):
        if spec.aggregate_by is not None and spec.aggregate_by in traits[person]:
            label = funnel_engine.breakdown_label(traits[person][spec.aggregate_by])
            accounts.setdefault(label, person)
    by_actor: dict[int, list[funnel_engine.FunnelEvent]] = defaultdict(list)
    for person, ms, event_id, name, text in store.rows(
        "SELECT person_id, toUnixTimestamp64Milli(timestamp), id, name, properties FROM events"
        " WHERE workspace_id = {workspace:UInt64}",
        {"workspace": workspace.id},
    ):
        if not start_ms <= ms <= end_ms + window_ms:
            continue
        actor = person
        if spec.aggregate_by is not None:
            if spec.aggregate_by not in traits.get(person, {}):
                continue
            actor = accounts[funnel_engine.breakdown_label(traits[person][spec.aggregate_by])]
        properties = json.loads(text)

        def matches(event: str, filters: tuple[PropertyFilter, ...]) -> bool:
            return event == name and all(  # noqa: B023
                funnel_engine.property_matches(properties, f)  # noqa: B023
                for f in filters
            )

        by_actor[actor].append(
            funnel_engine.FunnelEvent(
                ms=ms,
                id=event_id,
                timestamp=datetime.fromtimestamp(ms / 1000, UTC),
                steps=frozenset(k for k, s in enumerate(spec.steps) if matches(s.event, s.filters)),
                exclusions=frozenset(
                    k for k, e in enumerate(spec.exclusions) if matches(e.event, e.filters)
                ),
                properties=properties,
                end_user_id=person,
            )
        )
    options: dict[str, Any] = {
        "n": len(spec.steps),
        "order": spec.order,
        "window_ms": window_ms,
        "entry_from_ms": start_ms,
        "entry_to_ms": end_ms,
        "exclusions": [(e.from_step, e.to_step) for e in spec.exclusions],
    }
    breakdown = spec.breakdown
    answers = {}
    for actor, events in by_actor.items():
        all_steps = breakdown is not None and breakdown.attribution == "all_steps"
        if all_steps:

            def label(event: funnel_engine.FunnelEvent) -> str:
                assert breakdown is not None
                return funnel_engine.breakdown_label(
                    (event.properties or {}).get(breakdown.property)
                )

            found = funnel_engine.best_attempts_by_value(events, label, **options)
        else:
            found = {"": funnel_engine.best_attempt(events, **options)}
        for wanted, (attempt, had_attempt) in found.items():
            if attempt is None:
                if had_attempt:
                    answers[(actor, wanted)] = store_funnel.PersonResult(actor, 0, True, (), "")
                continue
            value = wanted if all_steps else _value(spec, attempt, traits)
            answers[(actor, wanted)] = store_funnel.PersonResult(
                actor,
                attempt.level,
                False,
                tuple(event.ms for event in attempt.reached),
                value,
            )
    return answers


def _value(
    spec: EventFunnelSpec, attempt: funnel_engine.Attempt, traits: dict[int, dict[str, Any]]
) -> str:
    if spec.breakdown is None:
        return ""
    if spec.breakdown.kind == "person":
        person = traits.get(attempt.entry.end_user_id, {})
        return funnel_engine.breakdown_label(person.get(spec.breakdown.property))
    source = funnel_engine.attributed_event(attempt, spec.breakdown)
    properties = (source.properties if source else None) or {}
    return funnel_engine.breakdown_label(properties.get(spec.breakdown.property))


def _from_store(
    workspace: Workspace, spec: EventFunnelSpec, date_range: DateRange
) -> dict[tuple[int, str], store_funnel.PersonResult]:
    all_steps = spec.breakdown is not None and spec.breakdown.attribution == "all_steps"
    answers = {}
    for person in store_funnel.people(workspace=workspace, spec=spec, date_range=date_range):
        key = (person.person_id, person.value if all_steps else "")
        if person.excluded:
            person = store_funnel.PersonResult(person.person_id, 0, True, (), "")
        answers[key] = person
    return answers


def _counts(people: Iterable[store_funnel.PersonResult], n: int) -> list[int]:
    """How many of `people` reached each step, not excluded."""
    reached = [person.level for person in people if not person.excluded]
    return [sum(level > k for level in reached) for k in range(n)]


@pytest.mark.parametrize("order", ["ordered", "strict", "unordered"])
def test_the_store_answers_what_the_reference_engine_answers_person_by_person(
    workspace: Workspace, analytics_store: Callable[[], Any], order: str
) -> None:
    rng = random.Random(f"store-funnel-{order}")
    _record(workspace, rng, people=60)
    analytics_store()
    compared = excluded = converted = 0
    for _ in range(30):
        spec, date_range = _spec(rng, order), _date_range(rng)
        expected = _reference(workspace, spec, date_range)

        assert _from_store(workspace, spec, date_range) == expected, (spec, date_range)
        compared += len(expected)
        excluded += sum(person.excluded for person in expected.values())
        converted += sum(person.level == len(spec.steps) for person in expected.values())
    # The cases are not vacuous: many people (fewer when counted by account), some excluded,
    # some all the way through.
    assert compared > 300
    assert excluded > 5
    assert converted > 5


@pytest.mark.parametrize("order", ["ordered", "strict"])
def test_ordered_and_strict_funnels_without_exclusions_match_the_reference(
    workspace: Workspace, analytics_store: Callable[[], Any], order: str
) -> None:
    """These take another path (store_funnel_chain.py: the one-pass recurrence over a whole
    block of people at once): the same adversarial people, every breakdown but "all steps"."""
    rng = random.Random(f"store-funnel-chains-{order}")
    _record(workspace, rng, people=60)
    analytics_store()
    compared = converted = 0
    for _ in range(30):
        spec = replace(_spec(rng, order), exclusions=())
        if spec.breakdown is not None and spec.breakdown.attribution == "all_steps":
            spec = replace(spec, breakdown=FunnelBreakdown("event", "plan", "last_touch"))
        date_range = _date_range(rng)
        expected = _reference(workspace, spec, date_range)

        assert _from_store(workspace, spec, date_range) == expected, (spec, date_range)
        compared += len(expected)
        converted += sum(person.level == len(spec.steps) for person in expected.values())
    assert compared > 300
    assert converted > 5


@pytest.mark.parametrize("order", ["ordered", "strict", "unordered"])
def test_funnels_with_exclusions_or_all_steps_match_the_reference(
    workspace: Workspace, analytics_store: Callable[[], Any], order: str
) -> None:
    """Every case here takes store_funnel_walk.py (every attempt walked block-wide) or, for
    "all steps" without exclusions, the chain path once per value: each spec has an exclusion
    (most of them), every third one the "all steps" attribution."""
    rng = random.Random(f"store-funnel-walks-{order}")
    _record(workspace, rng, people=60)
    analytics_store()
    compared = excluded = converted = 0
    for case in range(30):
        spec = _spec(rng, order)
        if not spec.exclusions and case % 5:
            low = rng.randint(0, len(spec.steps) - 2)
            spec = replace(spec, exclusions=(FunnelExclusion("error", low, low + 1),))
        if case % 3 == 0:
            spec = replace(spec, breakdown=FunnelBreakdown("event", "plan", "all_steps"))
        date_range = _date_range(rng)
        expected = _reference(workspace, spec, date_range)

        assert _from_store(workspace, spec, date_range) == expected, (spec, date_range)
        if case % 3 == 0:
            # The report answers the funnel and every value's funnel in one query.
            report = store_funnel.event_funnel(
                workspace=workspace, spec=spec, date_range=date_range
            )
            whole = _reference(workspace, replace(spec, breakdown=None), date_range)
            assert [s.count for s in report.steps] == _counts(whole.values(), len(spec.steps))
            by_value = defaultdict(list)
            for person in expected.values():
                by_value[person.value].append(person)
            assert {g.value: list(g.counts) for g in report.breakdown} == {
                value: counts
                for value, people in by_value.items()
                if (counts := _counts(people, len(spec.steps)))[0]
            }
        compared += len(expected)
        excluded += sum(person.excluded for person in expected.values())
        converted += sum(person.level == len(spec.steps) for person in expected.values())
    assert compared > 300
    assert excluded > 20
    assert converted > 5


@pytest.mark.parametrize("order", ["ordered", "strict", "unordered"])
def test_events_at_one_instant_are_read_in_id_order_up_to_the_largest_ids(
    workspace: Workspace, analytics_store: Callable[[], Any], order: str
) -> None:
    """The block's sort key holds the whole id next to the time (store_funnel_blocks): the same
    adversarial people copied to another workspace with ids up to 2**63 - 1, in the reverse
    order, so every tie at one instant is read the other way round, still as the reference
    reads it."""
    rng = random.Random(f"store-funnel-large-ids-{order}")
    _record(workspace, rng, people=40)
    analytics_store()
    copy = WorkspaceFactory()
    store.command(
        "INSERT INTO events (workspace_id, person_id, timestamp, id, name, properties)"
        " SELECT {copy:UInt64}, person_id, timestamp, toUInt64(9223372036854775807) - id, name,"
        " properties FROM events WHERE workspace_id = {workspace:UInt64}",
        {"copy": copy.id, "workspace": workspace.id},
    )
    compared = 0
    for _ in range(12):
        spec = replace(_spec(rng, order), aggregate_by=None)
        if spec.breakdown is not None and spec.breakdown.kind == "person":
            spec = replace(spec, breakdown=None)
        date_range = _date_range(rng)
        expected = _reference(copy, spec, date_range)

        assert _from_store(copy, spec, date_range) == expected, (spec, date_range)
        compared += len(expected)
    assert compared > 100


@pytest.mark.parametrize("order", ["ordered", "strict", "unordered"])
def test_funnels_whose_masks_and_range_do_not_fit_the_narrow_key_match_the_reference(
    workspace: Workspace, analytics_store: Callable[[], Any], order: str
) -> None:
    """Many exclusions over a range of decades need more than 128 bits of sort key: those
    funnels take the 256-bit key, with the same answers."""
    rng = random.Random(f"store-funnel-wide-keys-{order}")
    _record(workspace, rng, people=60)
    analytics_store()
    date_range = DateRange(date(1995, 1, 1), date(2025, 3, 11))
    compared = 0
    for _ in range(8):
        spec = replace(_spec(rng, order), aggregate_by=None, breakdown=None)
        size = len(spec.steps)
        extra = tuple(
            FunnelExclusion(rng.choice(("error", "invite")), low, low + 1)
            for low in (rng.randint(0, size - 2) for _ in range(12))
        )
        spec = replace(spec, exclusions=spec.exclusions + extra, window=SLOT * 5)
        span = (date_range.end + spec.window - date_range.start) // timedelta(milliseconds=1)
        assert store_funnel_blocks.narrow_ms_bits(spec, span) is None
        expected = _reference(workspace, spec, date_range)

        assert _from_store(workspace, spec, date_range) == expected, spec
        compared += len(expected)
    assert compared > 40


@pytest.mark.parametrize("order", ["ordered", "strict", "unordered"])
def test_a_person_with_hundreds_of_entries_gets_the_reference_answer(
    workspace: Workspace, analytics_store: Callable[[], Any], order: str
) -> None:
    """The skewed case (one person holding many overlapping attempts), with ties everywhere."""
    rng = random.Random(f"store-funnel-skewed-{order}")
    users = [EndUser.objects.create(workspace=workspace, external_id=f"s{k}") for k in range(3)]
    Event.objects.bulk_create(
        Event(
            workspace=workspace,
            end_user=user,
            client_id=uuid.uuid4(),
            name=rng.choice((*NAMES, "noise")),
            timestamp=ORIGIN + timedelta(minutes=10) * rng.randint(0, 400),
            properties=_properties(rng),
        )
        for user in users
        for _ in range(rng.choice((60, 400)))
    )
    analytics_store()
    for _ in range(8):
        spec = replace(_spec(rng, order), aggregate_by=None)
        date_range = DateRange(date(2025, 3, 10), date(2025, 3, 11))
        expected = _reference(workspace, spec, date_range)

        assert _from_store(workspace, spec, date_range) == expected, (spec, date_range)


@pytest.mark.parametrize("size", [5, 7, 8, 9])
def test_any_order_funnels_of_many_steps_match_the_reference(
    workspace: Workspace, analytics_store: Callable[[], Any], size: int
) -> None:
    """Up to 8 steps, the step sets an any-order attempt can fill travel as one integer of
    2**n bits (UInt32 at 5, UInt128 at 7, UInt256 at 8); from 9 on as arrays of masks. Four
    names for up to 9 steps: most events can count for several steps."""
    rng = random.Random(f"store-funnel-wide-{size}")
    _record(workspace, rng, people=40)
    analytics_store()
    compared = deep = 0
    for case in range(6):
        names = [rng.choice(NAMES[:4]) for _ in range(size)]
        steps = tuple(
            FunnelStep(name, tuple(rng.sample(FILTERS, rng.choice((0, 0, 1))))) for name in names
        )
        low = rng.randint(0, size - 2)
        exclusions = (FunnelExclusion("error", low, rng.randint(low + 1, size - 1)),)
        spec = EventFunnelSpec(
            steps=steps,
            order="unordered",
            window=SLOT * rng.choice((24, 200)),
            exclusions=exclusions if case % 2 else (),
        )
        date_range = _date_range(rng)
        expected = _reference(workspace, spec, date_range)

        assert _from_store(workspace, spec, date_range) == expected, (spec, date_range)
        compared += len(expected)
        deep += sum(person.level >= 4 for person in expected.values())
    assert compared > 100
    assert deep > 10


MARCH = DateRange(date(2025, 3, 1), date(2025, 3, 31))


def _funnel(workspace: Workspace, *names: str, **options: Any) -> store_funnel.StoreEventFunnel:
    date_range = options.pop("date_range", MARCH)
    spec = EventFunnelSpec(steps=tuple(FunnelStep(name) for name in names), **options)
    return store_funnel.event_funnel(workspace=workspace, spec=spec, date_range=date_range)


def _at(day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, second, tzinfo=UTC)


def test_the_report_counts_times_and_lists_people_at_each_step(
    workspace, person, track, analytics_store
):
    ann, bob, cy, dee = person("ann"), person("bob"), person("cy"), person("dee")
    for who in (ann, bob, cy, dee):
        track(who, "signup", _at(2, 10))
    track(ann, "invite", _at(2, 11))
    track(bob, "invite", _at(2, 12))
    track(cy, "invite", _at(2, 14))
    track(dee, "invite", _at(2, 10, 0, 1))
    track(ann, "pay", _at(3, 9))
    analytics_store()

    result = _funnel(workspace, "signup", "invite", "pay", people_limit=2)

    assert [s.count for s in result.steps] == [4, 4, 1]
    assert [s.dropped for s in result.steps] == [0, 0, 3]
    assert [s.conversion_from_previous for s in result.steps] == [1.0, 1.0, 0.25]
    # 1 s, 1 h, 2 h, 4 h: an even count, so the median lies halfway between 1 h and 2 h.
    assert result.steps[1].median_seconds_to_convert == 1.5 * 3600
    assert result.steps[1].mean_seconds_to_convert == round((1 + 7 * 3600) / 4, 3)
    assert [b.users for b in result.steps[1].histogram][:5] == [1, 0, 0, 3, 0]
    assert result.steps[2].median_seconds_to_convert == 22 * 3600
    # The first people_limit people (by id), shown by external id.
    assert result.steps[1].converted_people == ("ann", "bob")
    assert result.steps[2].dropped_people == ("bob", "cy")
    assert result.steps[2].converted_people == ("ann",)
    assert [(p.period_start, p.entered, p.converted) for p in result.over_time] == [
        (date(2025, 3, 2), 4, 1)
    ]
    assert result.warnings == ()


def test_people_whose_window_is_still_open_are_not_counted_as_dropped(
    workspace, person, track, analytics_store
):
    now = datetime.now(UTC).replace(microsecond=0)
    eve, fay = person("eve"), person("fay")
    track(eve, "signup", now - timedelta(hours=2))  # a day's window: still open
    track(fay, "signup", now - timedelta(days=3))  # closed two days ago
    analytics_store()
    today = DateRange(now.date() - timedelta(days=5), now.date())

    result = _funnel(workspace, "signup", "pay", window=timedelta(days=1), date_range=today)

    assert [s.count for s in result.steps] == [2, 0]
    assert (result.steps[1].dropped, result.steps[1].still_open) == (1, 1)
    assert result.steps[1].dropped_people == ("fay",)


def test_an_unknown_event_counts_nobody_and_is_named_in_a_warning(
    workspace, person, track, analytics_store
):
    gus = person("gus")
    track(gus, "signup", _at(2, 10))
    track(gus, "pay", _at(2, 11))
    analytics_store()

    result = _funnel(
        workspace,
        "signup",
        "pay",
        "payy",
        exclusions=(FunnelExclusion("eror", 0, 1),),
    )

    assert [s.count for s in result.steps] == [1, 1, 0]
    assert result.warnings == (
        "No event named 'eror' was ever recorded in this workspace: it counts 0 people.",
        "No event named 'payy' was ever recorded in this workspace: it counts 0 people.",
    )


def test_the_furthest_attempt_decides_an_exclusion(workspace, person, track, analytics_store):
    hal, ida, jo = person("hal"), person("ida"), person("jo")
    # hal: a clean attempt reaches step 2 of 3, a later one goes all the way through an error.
    track(hal, "signup", _at(2, 10))
    track(hal, "invite", _at(2, 11))
    track(hal, "signup", _at(5, 10))
    track(hal, "invite", _at(5, 11))
    track(hal, "error", _at(5, 12))
    track(hal, "pay", _at(5, 13))
    # ida: the error happens at the same instant as the steps around it: not excluded.
    track(ida, "signup", _at(2, 10))
    track(ida, "error", _at(2, 10))
    track(ida, "pay", _at(2, 12))
    track(ida, "error", _at(2, 12))
    # jo: never reaches step 2; the error later in the window still excludes the attempt.
    track(jo, "signup", _at(2, 10))
    track(jo, "error", _at(9, 10))
    analytics_store()

    two_steps = _funnel(workspace, "signup", "pay", exclusions=(FunnelExclusion("error", 0, 1),))
    three_steps = _funnel(
        workspace,
        "signup",
        "invite",
        "pay",
        window=timedelta(days=1),
        exclusions=(FunnelExclusion("error", 1, 2),),
    )

    # jo's error comes a week later, inside the open 14-day window: excluded.
    assert [s.count for s in two_steps.steps] == [1, 1]
    assert two_steps.excluded == 2
    assert two_steps.steps[1].converted_people == ("ida",)
    # Within a day, hal's attempt of the 2nd reaches invite cleanly, but the attempt that got
    # furthest (the 5th) is excluded: he leaves the funnel.
    assert [s.count for s in three_steps.steps] == [2, 0, 0]
    assert three_steps.excluded == 1
    assert three_steps.steps[0].converted_people == ("ida", "jo")


@pytest.mark.parametrize("order", ["ordered", "unordered"])
def test_an_exclusion_at_the_same_instant_as_a_step_does_not_exclude(
    workspace, person, track, analytics_store, order
):
    ida, kai = person("ida"), person("kai")
    # ida's errors share an instant with the steps around them: she converts.
    track(ida, "signup", _at(2, 10))
    track(ida, "error", _at(2, 10))
    track(ida, "invite", _at(2, 11))
    track(ida, "pay", _at(2, 12))
    track(ida, "error", _at(2, 12))
    # kai's error comes a millisecond after the step: excluded.
    track(kai, "signup", _at(2, 10))
    track(kai, "error", _at(2, 10) + timedelta(milliseconds=1))
    track(kai, "invite", _at(2, 11))
    track(kai, "pay", _at(2, 12))
    analytics_store()

    result = _funnel(
        workspace,
        "signup",
        "invite",
        "pay",
        order=order,
        exclusions=(FunnelExclusion("error", 0, 2),),
    )

    assert [s.count for s in result.steps] == [1, 1, 1]
    assert result.steps[2].converted_people == ("ida",)
    assert result.excluded == 1


def test_breakdowns_by_event_property_and_by_person_trait(
    workspace, person, track, analytics_store
):
    kim = person("kim", traits={"plan": "pro"})
    track(kim, "visit", _at(2, 10), source="ads")
    track(kim, "visit2", _at(2, 11), source="email")
    lee = person("lee", traits={"plan": 3.0})
    track(lee, "visit", _at(2, 10), source=True)
    analytics_store()

    def groups(breakdown: FunnelBreakdown) -> dict[str, list[int]]:
        result = _funnel(workspace, "visit", "visit2", breakdown=breakdown)
        return {g.value: list(g.counts) for g in result.breakdown}

    assert groups(FunnelBreakdown("event", "source")) == {"ads": [1, 1], "true": [1, 0]}
    assert groups(FunnelBreakdown("event", "source", "last_touch")) == {
        "email": [1, 1],
        "true": [1, 0],
    }
    assert groups(FunnelBreakdown("event", "source", "step", step=1)) == {
        "email": [1, 1],
        "(none)": [1, 0],
    }
    assert groups(FunnelBreakdown("person", "plan")) == {"pro": [1, 1], "3": [1, 0]}


def test_entry_days_follow_the_time_zone_across_a_daylight_saving_change(
    workspace, person, track, analytics_store
):
    mo, ned = person("mo"), person("ned")
    # New York moved its clocks on 9 March 2025; its day 9 has 23 hours (05:00-04:00 UTC).
    track(mo, "signup", _at(9, 4, 30))  # 23:30 on the 8th in New York
    track(ned, "signup", _at(10, 3, 30))  # 23:30 on the 9th
    track(ned, "pay", _at(10, 5))
    analytics_store()
    new_york = DateRange(date(2025, 3, 8), date(2025, 3, 9), "America/New_York")

    result = _funnel(workspace, "signup", "pay", date_range=new_york)

    assert [(p.period_start, p.entered, p.converted) for p in result.over_time] == [
        (date(2025, 3, 8), 1, 0),
        (date(2025, 3, 9), 1, 1),
    ]
    weekly = _funnel(workspace, "signup", "pay", date_range=new_york, interval="week")
    assert [(p.period_start, p.entered) for p in weekly.over_time] == [(date(2025, 3, 3), 2)]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"names": ("signup",)}, "steps"),
        ({"names": ("signup",) * 21}, "steps"),
        ({"window": timedelta(0)}, "window"),
        ({"window": timedelta(days=90, seconds=1)}, "window"),
        ({"exclusions": (FunnelExclusion("error", 1, 1),)}, "exclusions[0].from_step"),
        ({"exclusions": (FunnelExclusion("error", 0, 2),)}, "exclusions[0].from_step"),
        ({"breakdown": FunnelBreakdown("event", "x", "step", step=2)}, "breakdown.step"),
        ({"exclusions": (FunnelExclusion("error", 0, 1),) * 21}, "exclusions"),
        ({"aggregate_by": "no spaces"}, "aggregate_by"),
    ],
)
def test_it_refuses_bad_input_naming_the_field(workspace, analytics_store, options, field):
    names = options.pop("names", ("signup", "pay"))

    with pytest.raises(ReportInputError) as error:
        _funnel(workspace, *names, **options)

    assert error.value.field == field


def test_a_date_range_the_wrong_way_round_is_refused():
    with pytest.raises(ReportInputError) as error:
        DateRange(date(2025, 3, 2), date(2025, 3, 1))

    assert error.value.field == "date_from"


def test_a_store_that_is_down_is_named(workspace, settings):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.ANALYTICS_URL = f"http://127.0.0.1:{port}/milepost"

    with pytest.raises(store.StoreUnavailable) as error:
        _funnel(workspace, "signup", "pay")

    assert f"127.0.0.1:{port}" in str(error.value)


def test_any_order_steps_are_matched_by_the_best_assignment(
    workspace, person, track, analytics_store
):
    # Her first visit could be either step, her second only the first: counting the first
    # visit as "any visit" would leave the second with nothing to do.
    uma = person("uma")
    track(uma, "visit", _at(2, 10), plan="pro")
    track(uma, "visit", _at(2, 11), plan="free")
    analytics_store()
    spec = EventFunnelSpec(
        steps=(FunnelStep("visit"), FunnelStep("visit", (PropertyFilter("plan", "eq", "pro"),))),
        order="unordered",
    )

    result = store_funnel.event_funnel(workspace=workspace, spec=spec, date_range=MARCH)

    assert [s.count for s in result.steps] == [1, 1]


def test_the_all_steps_attribution_counts_each_value_a_person_went_all_the_way_with(
    workspace, person, track, analytics_store
):
    vi, wu = person("vi"), person("wu")
    # vi starts on ads, finishes on email: each value's funnel sees only its own steps.
    track(vi, "signup", _at(2, 10), source="ads")
    track(vi, "signup", _at(2, 11), source="email")
    track(vi, "pay", _at(2, 12), source="email")
    track(wu, "signup", _at(2, 10), source="ads")
    track(wu, "pay", _at(2, 12), source="ads")
    analytics_store()

    result = _funnel(
        workspace, "signup", "pay", breakdown=FunnelBreakdown("event", "source", "all_steps")
    )

    assert [s.count for s in result.steps] == [2, 2]
    assert {g.value: list(g.counts) for g in result.breakdown} == {
        "ads": [2, 1],
        "email": [1, 1],
    }


def test_counting_by_account_is_done_in_the_store_with_a_trait_breakdown(
    workspace, person, track, analytics_store
):
    xu = person("xu", traits={"company": "acme", "plan": "pro"})
    yan = person("yan", traits={"company": "acme", "plan": "free"})
    zed = person("zed", traits={"company": "globex", "plan": "free"})
    nobody = person("nobody")  # no account: not counted
    track(xu, "signup", _at(2, 10))
    track(yan, "pay", _at(2, 11))
    track(zed, "signup", _at(2, 10))
    track(nobody, "signup", _at(2, 10))
    analytics_store()

    result = _funnel(
        workspace,
        "signup",
        "pay",
        aggregate_by="company",
        breakdown=FunnelBreakdown("person", "plan"),
    )

    assert [s.count for s in result.steps] == [2, 1]
    assert result.steps[1].converted_people == ("acme",)
    assert result.steps[1].dropped_people == ("globex",)
    # The account's value is that of the person whose event entered it.
    assert {g.value: list(g.counts) for g in result.breakdown} == {"pro": [1, 1], "free": [1, 0]}


def test_the_reference_matches_any_order_steps_as_well_as_any_assignment_could():
    """The reference itself, against brute force on small random cases."""
    rng = random.Random("matching")
    for _ in range(300):
        n = rng.randint(2, 4)
        events = [
            funnel_engine.FunnelEvent(
                ms=index,
                id=index,
                timestamp=ORIGIN,
                steps=frozenset(s for s in range(n) if rng.random() < 0.4) or frozenset({0}),
                exclusions=frozenset(),
                properties=None,
                end_user_id=1,
            )
            for index in range(rng.randint(1, 6))
        ]
        attempt, _ = funnel_engine.best_attempt(
            events,
            n=n,
            order="unordered",
            window_ms=100,
            entry_from_ms=0,
            entry_to_ms=1,
            exclusions=[],
        )
        assert attempt is not None
        # The most steps any assignment (each event one step or none, each step at most once)
        # fills; the entry can always be part of such an assignment (matroid exchange).
        best = max(
            len(used)
            for choice in itertools.product(*[[*sorted(e.steps), None] for e in events])
            if len(used := [c for c in choice if c is not None]) == len(set(used))
        )
        assert attempt.level == best
