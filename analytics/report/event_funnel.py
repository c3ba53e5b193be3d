"""The ad-hoc event funnel: its result types, the entry point (computed in the analytics store,
analytics/store_funnel.py) and the reference engine over the primary database
(analytics/funnel_engine.py), which the randomised tests compare the store against."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform

from analytics import funnel_engine, velocity
from analytics.inputs import DateRange, EventFunnelSpec, PropertyFilter
from analytics.report.common import rate
from analytics.report.time_to_convert import (
    HistogramBucket,
    histogram,
    mean_seconds,
    nearest_rank_ms,
    seconds,
)
from onboarding.models import EndUser, Event, Workspace


@dataclass(frozen=True)
class EventFunnelStep:
    index: int
    event: str
    count: int
    conversion_from_previous: float | None
    conversion_from_start: float | None
    dropped: int
    median_seconds_to_convert: float | None  # from the previous step
    mean_seconds_to_convert: float | None
    histogram: tuple[HistogramBucket, ...]
    converted_people: tuple[str, ...]  # reached this step (up to people_limit)
    dropped_people: tuple[str, ...]  # reached the previous step but not this one


@dataclass(frozen=True)
class EventFunnelGroup:
    value: str
    counts: tuple[int, ...]
    conversion: float | None


@dataclass(frozen=True)
class EventFunnelPeriod:
    period_start: date
    entered: int
    converted: int
    conversion: float | None


@dataclass(frozen=True)
class EventFunnel:
    order: str
    window_seconds: int
    aggregate_by: str
    steps: tuple[EventFunnelStep, ...]
    excluded: int  # actors whose every attempt met an exclusion
    breakdown: tuple[EventFunnelGroup, ...]
    over_time: tuple[EventFunnelPeriod, ...]


def _property_q(prefix: str, property_filter: PropertyFilter) -> Q:
    path = f"{prefix}__{property_filter.key}"
    match property_filter.operator:
        case "eq":
            return Q(**{path: property_filter.value})
        case "neq":
            return ~Q(**{path: property_filter.value}) | ~Q(
                **{f"{prefix}__has_key": property_filter.key}
            )
        case "contains":
            return Q(**{f"{path}__icontains": property_filter.value})
        case "is_set":
            return Q(**{f"{prefix}__has_key": property_filter.key})
        case "is_not_set":
            return ~Q(**{f"{prefix}__has_key": property_filter.key})
    return Q(**{f"{path}__{property_filter.operator}": property_filter.value})


def _event_q(name: str, filters: Sequence[PropertyFilter]) -> Q:
    q = Q(name=name)
    for property_filter in filters:
        q &= _property_q("properties", property_filter)
    return q


def _json_label(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def event_funnel(
    *, workspace: Workspace, spec: EventFunnelSpec, date_range: DateRange
) -> EventFunnel:
    """An ad-hoc funnel over events, computed in the analytics store (analytics/store_funnel.py);
    counted by an account trait (`aggregate_by`), by the reference engine over the primary
    database, which the store does not do yet. See analytics/funnel_engine.py for the exact
    semantics both follow."""
    if spec.aggregate_by is None:
        # Imported here: the store's funnel builds on this module's result types.
        from analytics import store_funnel

        return store_funnel.event_funnel(workspace=workspace, spec=spec, date_range=date_range)
    return reference_event_funnel(workspace=workspace, spec=spec, date_range=date_range)


def reference_event_funnel(
    *, workspace: Workspace, spec: EventFunnelSpec, date_range: DateRange
) -> EventFunnel:
    """The funnel by the reference engine (analytics/funnel_engine.py), streaming only the
    events that match a step or an exclusion from the primary database. Entries (step 1, or any
    step for unordered funnels) must fall in the date range; later steps may follow up to the
    conversion window after the range ends."""
    spec.check(workspace)
    n = len(spec.steps)
    window_ms = int(spec.window.total_seconds() * 1000)
    step_qs = [_event_q(step.event, step.filters) for step in spec.steps]
    exclusion_qs = [_event_q(e.event, e.filters) for e in spec.exclusions]
    wanted = Q()
    for q in [*step_qs, *exclusion_qs]:
        wanted |= q
    base = Event.objects.filter(
        workspace=workspace,
        timestamp__gte=date_range.start,
        timestamp__lte=date_range.end + spec.window,
    )
    events: QuerySet[Event] = base if spec.order == "strict" else base.filter(wanted)
    if spec.order == "strict":
        entries = base.filter(step_qs[0], timestamp__lt=date_range.end)
        events = events.filter(end_user_id__in=entries.values("end_user_id"))
    annotations: dict[str, Any] = {
        f"s{i}": ExpressionWrapper(q, output_field=BooleanField()) for i, q in enumerate(step_qs)
    }
    annotations |= {
        f"x{i}": ExpressionWrapper(q, output_field=BooleanField())
        for i, q in enumerate(exclusion_qs)
    }
    columns = ["id", "end_user_id", "timestamp", *annotations]
    if spec.aggregate_by:
        annotations["actor"] = KeyTextTransform(spec.aggregate_by, "end_user__traits")
        columns.append("actor")
        events = events.filter(**{"end_user__traits__has_key": spec.aggregate_by})
    want_properties = spec.breakdown is not None and spec.breakdown.kind == "event"
    if want_properties:
        columns.append("properties")
    order = ["actor"] if spec.aggregate_by else ["end_user_id"]
    rows = events.annotate(**annotations).order_by(*order, "timestamp", "id").values_list(*columns)

    def stream() -> Iterator[tuple[Any, funnel_engine.FunnelEvent]]:
        for row in rows.iterator(chunk_size=5000):
            record = dict(zip(columns, row, strict=True))
            yield (
                _json_label(record["actor"]) if spec.aggregate_by else record["end_user_id"],
                funnel_engine.FunnelEvent(
                    ms=int(record["timestamp"].timestamp() * 1000),
                    id=record["id"],
                    timestamp=record["timestamp"],
                    steps=frozenset(i for i in range(n) if record[f"s{i}"]),
                    exclusions=frozenset(i for i in range(len(exclusion_qs)) if record[f"x{i}"]),
                    properties=record.get("properties"),
                    end_user_id=record["end_user_id"],
                ),
            )

    entry_from = int(date_range.start.timestamp() * 1000)
    entry_to = int(date_range.end.timestamp() * 1000)
    exclusions = [(e.from_step, e.to_step) for e in spec.exclusions]
    results: list[tuple[Any, funnel_engine.Attempt]] = []
    excluded = 0
    for actor, actor_events in funnel_engine.by_actor(stream()):
        attempt, had_attempt = funnel_engine.best_attempt(
            actor_events,
            n=n,
            order=spec.order,
            window_ms=window_ms,
            entry_from_ms=entry_from,
            entry_to_ms=entry_to,
            exclusions=exclusions,
        )
        if attempt is not None:
            results.append((actor, attempt))
        elif had_attempt:
            excluded += 1
    return _event_funnel_result(spec, date_range, results, excluded)


def _event_funnel_result(
    spec: EventFunnelSpec,
    date_range: DateRange,
    results: list[tuple[Any, funnel_engine.Attempt]],
    excluded: int,
) -> EventFunnel:
    n = len(spec.steps)
    labels: dict[Any, str] = {}
    if spec.aggregate_by:
        labels = {actor: str(actor) for actor, _ in results}
    else:
        ids = [actor for actor, _ in results]
        for offset in range(0, len(ids), 5000):
            labels |= dict(
                EndUser.objects.filter(id__in=ids[offset : offset + 5000]).values_list(
                    "id", "external_id"
                )
            )
    counts = [sum(1 for _, a in results if a.level > k) for k in range(n)]
    steps = []
    for k in range(n):
        durations = [
            a.reached[k].ms - a.reached[k - 1].ms for _, a in results if k > 0 and a.level > k
        ]
        converted = sorted(labels[actor] for actor, a in results if a.level > k)
        dropped = sorted(labels[actor] for actor, a in results if a.level == k) if k else []
        by_bucket: dict[int, int] = defaultdict(int)
        for ms in durations:
            by_bucket[velocity.histogram_index(ms)] += 1
        previous = counts[k - 1] if k else counts[0]
        steps.append(
            EventFunnelStep(
                index=k,
                event=spec.steps[k].event,
                count=counts[k],
                conversion_from_previous=rate(counts[k], previous),
                conversion_from_start=rate(counts[k], counts[0]),
                dropped=previous - counts[k],
                median_seconds_to_convert=seconds(nearest_rank_ms(durations, 50)),
                mean_seconds_to_convert=mean_seconds(sum(durations), len(durations)),
                histogram=histogram(by_bucket) if k else (),
                converted_people=tuple(converted[: spec.people_limit]),
                dropped_people=tuple(dropped[: spec.people_limit]),
            )
        )
    breakdown: tuple[EventFunnelGroup, ...] = ()
    if spec.breakdown is not None:
        values = _breakdown_values(spec, results)
        grouped: dict[str, list[int]] = defaultdict(lambda: [0] * n)
        for (_, attempt), value in zip(results, values, strict=True):
            for k in range(attempt.level):
                grouped[value][k] += 1
        breakdown = tuple(
            EventFunnelGroup(value=value, counts=tuple(c), conversion=rate(c[-1], c[0]))
            for value, c in sorted(grouped.items(), key=lambda item: (-item[1][0], item[0]))
        )
    periods: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    zone = date_range.zone
    for _, attempt in results:
        day = attempt.entry.timestamp.astimezone(zone).date()
        if spec.interval == "week":
            day -= timedelta(days=day.weekday())
        periods[day][0] += 1
        periods[day][1] += int(attempt.level == n)
    return EventFunnel(
        order=spec.order,
        window_seconds=int(spec.window.total_seconds()),
        aggregate_by=spec.aggregate_by or "end_user",
        steps=tuple(steps),
        excluded=excluded,
        breakdown=breakdown,
        over_time=tuple(
            EventFunnelPeriod(period_start=d, entered=e, converted=c, conversion=rate(c, e))
            for d, (e, c) in sorted(periods.items())
        ),
    )


def _breakdown_values(
    spec: EventFunnelSpec, results: list[tuple[Any, funnel_engine.Attempt]]
) -> list[str]:
    breakdown = spec.breakdown
    assert breakdown is not None  # noqa: S101
    if breakdown.kind == "person":
        user_ids = [a.entry.end_user_id for _, a in results]
        traits: dict[int, dict[str, Any]] = {}
        for offset in range(0, len(user_ids), 5000):
            traits |= dict(
                EndUser.objects.filter(id__in=user_ids[offset : offset + 5000]).values_list(
                    "id", "traits"
                )
            )
        return [
            _json_label((traits.get(a.entry.end_user_id) or {}).get(breakdown.property))
            for _, a in results
        ]
    values = []
    for _, attempt in results:
        source = funnel_engine.attributed_event(attempt, breakdown)
        properties = (source.properties if source else None) or {}
        values.append(_json_label(properties.get(breakdown.property)))
    return values
