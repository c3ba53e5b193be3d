"""Milestone velocity: how fast people whose journey started in a date range reach each
milestone, from the journey rollups (analytics/journey_rollups.py) and the durations they
keep (analytics/velocity.py, where the SQL is)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.utils import timezone

from analytics import journey_rollups, velocity
from analytics.inputs import DateRange
from analytics.models import JourneyDayRollup
from analytics.report.common import rate
from analytics.report.time_to_convert import (
    DurationStats,
    HistogramBucket,
    histogram,
    mean_seconds,
    seconds,
)
from analytics.velocity import FROM_PREVIOUS, FROM_START, Durations
from onboarding.models import Journey, Milestone


@dataclass(frozen=True)
class VelocityWeek:
    week_start: date
    started: int
    reached: int
    median_from_start: float | None


@dataclass(frozen=True)
class MilestoneVelocity:
    key: str
    name: str
    started: int
    reached: int
    on_the_way: int  # not reached yet, still inside the milestone window / horizon
    not_reached: int  # the window / horizon passed without reaching it
    completion_rate: float | None  # reached / (started - on_the_way)
    from_start: DurationStats
    from_previous: DurationStats  # only people who reached the previous milestone first
    histogram_from_start: tuple[HistogramBucket, ...]
    histogram_from_previous: tuple[HistogramBucket, ...]
    weeks: tuple[VelocityWeek, ...]


@dataclass(frozen=True)
class Velocity:
    journey: str
    date_from: date
    date_to: date
    timezone: str
    milestones: tuple[MilestoneVelocity, ...]


@dataclass(frozen=True)
class _Term:
    """One signed part of a span of starts: a running total up to the end of a day ("total"),
    up to a quarter hour inside a day ("cut", the day's slices 0..end), or a live count of
    [low, high)."""

    sign: int
    kind: str  # "total", "cut" or "live"
    day: date | None = None
    slices: tuple[int, int] = (0, velocity.SLICES_PER_DAY)
    low: datetime | None = None
    high: datetime | None = None


class _VelocityPlan:
    """Splits spans of journey starts into terms that read the fewest rows and the smallest
    live counts (see analytics/velocity.py), then adds them up: a span of stored days is the
    difference of the running totals up to its two ends, whatever the time zone."""

    def __init__(
        self,
        journey: Journey,
        ids: list[int],
        stored: tuple[date, date] | None,
        first_start: datetime | None = None,
    ):
        self.journey, self.ids, self.stored = journey, ids, stored
        # Nobody started before the first start's quarter hour: no total is needed up to it.
        self.nobody_before = journey_rollups.floor_slice(first_start) if first_start else None
        self.started_by_slice: dict[int, int] = {}
        self.reached_by_slice: list[dict[int, int]] = [{} for _ in ids]

    def terms(self, low: datetime, high: datetime) -> list[_Term]:
        if low >= high:
            return []
        if self.stored is None:
            return [_Term(1, "live", low=low, high=high)]
        first, last = self.stored
        stored_low, stored_high = (
            journey_rollups.utc_midnight(first),
            journey_rollups.utc_midnight(last) + velocity.DAY,
        )
        terms = []
        if high > stored_high and max(low, stored_high) <= timezone.now():
            # Nobody has started after now: a span wholly in the future needs no count.
            terms.append(_Term(1, "live", low=max(low, stored_high), high=high))
        low, high = max(low, stored_low), min(high, stored_high)
        if low >= high:
            return terms
        return terms + self._before(high, 1) + self._before(low, -1)

    def _before(self, instant: datetime, sign: int) -> list[_Term]:
        """Terms adding up everyone who started on the stored days before `instant`: the
        running total up to a midnight, or up to a quarter hour inside a day (a time zone's
        midnight); an instant inside a quarter hour (no zone in use has one) adds the live
        count from the start of its quarter hour."""
        first = self.stored[0] if self.stored else None
        if self.nobody_before is not None and instant <= self.nobody_before:
            return []
        slice_start = journey_rollups.floor_slice(instant)
        terms = []
        if slice_start < instant:
            terms.append(_Term(sign, "live", low=slice_start, high=instant))
        if self.nobody_before is not None and slice_start <= self.nobody_before:
            return terms
        day = slice_start.date()
        number = (slice_start - journey_rollups.utc_midnight(day)) // velocity.SLICE
        if number:
            terms.append(_Term(sign, "cut", day=day, slices=(0, number)))
        elif first is not None and day > first:
            terms.append(_Term(sign, "total", day=day - velocity.DAY))
        return terms

    def add_up(self, spans: list[list[_Term]]) -> list[Durations]:
        """The durations of each span's terms, reading every stored day and live count once."""
        n = len(self.ids)
        everything = [term for terms in spans for term in terms]
        pieces: list[tuple[datetime, datetime]] = sorted(
            {(t.low, t.high) for t in everything if t.low is not None and t.high is not None}
        )
        live = dict(
            zip(
                pieces,
                velocity.live_durations(
                    journey_id=self.journey.pk, milestone_ids=self.ids, pieces=pieces
                ),
                strict=True,
            )
        )
        # Per-slice counts of the live pieces after the stored days (they never overlap), for
        # the people on the way.
        stored_high = (
            journey_rollups.utc_midnight(self.stored[1]) + velocity.DAY
            if self.stored is not None
            else None
        )
        for (low, _), counts in live.items():
            if stored_high is None or low >= stored_high:
                for number, people in counts.started_by_slice.items():
                    started = self.started_by_slice
                    started[number] = started.get(number, 0) + people
                for index, reached in enumerate(counts.reached_by_slice):
                    for number, people in reached.items():
                        by_slice = self.reached_by_slice[index]
                        by_slice[number] = by_slice.get(number, 0) + people
        totals: dict[date, Durations] = {}
        wanted = {t.day for t in everything if t.kind == "total" and t.day is not None}
        if self.stored is not None and wanted:
            totals = journey_rollups.duration_totals(self.journey, self.ids, *self.stored, wanted)
        cuts: dict[tuple[date, int], Durations] = {}
        wanted_cuts = {
            (t.day, t.slices[1]) for t in everything if t.kind == "cut" and t.day is not None
        }
        if self.stored is not None and wanted_cuts:
            cuts = journey_rollups.duration_cuts(self.journey, n, self.stored[0], wanted_cuts)
        results = []
        for terms in spans:
            result = Durations.empty(n)
            for term in terms:
                if term.low is not None and term.high is not None:
                    part = live[(term.low, term.high)].durations
                elif term.kind == "total" and term.day is not None:
                    part = totals[term.day]
                elif term.day is not None:
                    part = cuts[(term.day, term.slices[1])]
                result = result + part if term.sign > 0 else result - part
            results.append(result)
        return results


def _slice_number(instant: datetime) -> int:
    """Slices since the epoch, as velocity's per-slice counts number them."""
    return int(instant.timestamp()) // (velocity.SLICE_MS // 1000)


def _on_the_way(
    journey: Journey,
    milestones: list[Milestone],
    start: datetime,
    end: datetime,
    plan: _VelocityPlan,
    horizon: timedelta,
    now: datetime,
) -> list[int]:
    """Per milestone, people who started in [start, end), have not reached it and whose
    window (or `horizon`) since their start is still open, i.e. who started after now - window:
    whole slices of start from per-slice counts (the rollups' on stored days, the live counts'
    after them), the partial slices at either end counted live."""
    stored_high = (
        journey_rollups.utc_midnight(plan.stored[1]) + velocity.DAY
        if plan.stored is not None
        else start
    )
    spans: list[tuple[int, int]] = []
    partial: list[list[tuple[datetime, datetime, bool]]] = []
    for milestone in milestones:
        cut = now - (milestone.window or horizon)
        low, open_low = (cut, True) if cut >= start else (start, False)
        first_slice = journey_rollups.floor_slice(low)
        if open_low or first_slice < low:  # the cut's own slice is partly out: counted live
            first_slice += velocity.SLICE
        # Live counts hold exactly the starts before `end`; a stored day's slices are whole.
        slices_end = end if end > stored_high else journey_rollups.floor_slice(end)
        if low >= end or first_slice >= slices_end:
            spans.append((0, 0))
            partial.append([(low, end, open_low)] if low < end else [])
            continue
        spans.append(
            (
                _slice_number(first_slice),
                _slice_number(slices_end - timedelta(microseconds=1)) + 1,
            )
        )
        pieces = [(low, first_slice, open_low), (slices_end, end, False)]
        partial.append([piece for piece in pieces if piece[0] < piece[1]])
    counts = velocity.not_reached_count(
        journey_id=journey.pk, milestone_ids=plan.ids, pieces=partial
    )
    stored_slices = _slice_number(stored_high)
    per_day = velocity.SLICES_PER_DAY
    summaries: dict[date, Any] = {}
    epoch = date(1970, 1, 1)
    stored_spans = [(a, min(b, stored_slices)) for a, b in spans if a < min(b, stored_slices)]
    if stored_spans:
        summaries = dict(
            JourneyDayRollup.objects.filter(
                journey=journey,
                day__range=(
                    epoch
                    + timedelta(days=min(a for a, _ in stored_spans) // velocity.SLICES_PER_DAY),
                    epoch
                    + timedelta(
                        days=(max(b for _, b in stored_spans) - 1) // velocity.SLICES_PER_DAY
                    ),
                ),
            ).values_list("day", "slices")
        )
    for index, (slice_from, slice_to) in enumerate(spans):
        # Stored slices a day at a time (sums of list slices), the live counts' one by one.
        number, stored_to = slice_from, min(slice_to, stored_slices)
        while number < stored_to:
            day_number, offset = divmod(number, per_day)
            end_offset = min(per_day, offset + stored_to - number)
            day_slices = summaries.get(epoch + timedelta(days=day_number))
            if day_slices:
                counts[index] += sum(day_slices["started"][offset:end_offset]) - sum(
                    day_slices["reached"][index][offset:end_offset]
                )
            number += end_offset - offset
        for number in range(max(slice_from, stored_slices), slice_to):
            counts[index] += plan.started_by_slice.get(number, 0) - plan.reached_by_slice[
                index
            ].get(number, 0)
    return counts


def _duration_stats(durations: Durations, milestone: int, basis: int) -> DurationStats:
    users = durations.reached(milestone, basis)
    return DurationStats(
        users=users,
        median=seconds(durations.nearest_rank_ms(milestone, basis, 50)),
        p75=seconds(durations.nearest_rank_ms(milestone, basis, 75)),
        p90=seconds(durations.nearest_rank_ms(milestone, basis, 90)),
        mean=mean_seconds(durations.total_ms(milestone, basis), users),
    )


def milestone_velocity(
    *,
    journey: Journey,
    date_range: DateRange,
    horizon: timedelta = timedelta(days=14),
    now: datetime | None = None,
    fresh: bool = False,
) -> Velocity:
    """How fast people whose journey started in the range reach each milestone.

    Times run from the journey start (negative ones, a milestone reached before the journey
    began, count as 0) and from the person's completion of the previous milestone (only for
    those who reached the previous one first). Someone who has not reached a milestone is "on
    the way" while the milestone's window (or `horizon` when it has none) since their start is
    still open; they are not counted as failures.

    Percentiles are nearest-rank over durations floored to 3 significant digits, counted in
    the journey rollups (analytics/velocity.py): whole UTC days (today included) come from
    running totals, whole quarter hours of partial days from the days' slices; only an edge
    inside a quarter hour and the cut of the people on the way are counted live; `fresh=True`
    counts everything live, with the same answer.
    """
    now = now or timezone.now()
    milestones = journey_rollups.journey_milestones(journey)
    if not milestones:
        return Velocity(
            journey.key, date_range.date_from, date_range.date_to, date_range.timezone, ()
        )
    ids = [int(m.pk) for m in milestones]
    start, end = date_range.start, date_range.end
    first_start = None if fresh else journey_rollups.first_start(journey)
    stored = None
    if first_start is not None:
        first, last = first_start.astimezone(UTC).date(), journey_rollups.last_stored_day(end)
        if first <= last and journey_rollups.utc_midnight(last) + velocity.DAY > start:
            journey_rollups.rollup_days(journey, milestones, first, last)
            stored = (first, last)
        # Nobody started before the first start: from the start of its slice is the same span.
        start = max(start, journey_rollups.floor_slice(first_start))
    weeks = []
    week = date_range.date_from - timedelta(days=date_range.date_from.weekday())
    while week <= date_range.date_to:
        low = datetime.combine(week, datetime.min.time(), tzinfo=date_range.zone)
        weeks.append((week, max(low, start), min(low + timedelta(days=7), end)))
        week += timedelta(days=7)
    plan = _VelocityPlan(journey, ids, stored, first_start)
    by_week = plan.add_up([plan.terms(low, high) for _, low, high in weeks])
    overall = Durations.empty(len(ids))
    for part in by_week:
        overall = overall + part
    on_the_way = _on_the_way(
        journey, milestones, max(date_range.start, start), end, plan, horizon, now
    )
    results = []
    for index, m in enumerate(milestones):
        reached = overall.reached(index)
        histogram_start = overall.histogram(index, FROM_START)
        histogram_previous = overall.histogram(index, FROM_PREVIOUS)
        results.append(
            MilestoneVelocity(
                key=m.key,
                name=m.name,
                started=overall.started,
                reached=reached,
                on_the_way=on_the_way[index],
                not_reached=overall.started - reached - on_the_way[index],
                completion_rate=rate(reached, overall.started - on_the_way[index]),
                from_start=_duration_stats(overall, index, FROM_START),
                from_previous=_duration_stats(overall, index, FROM_PREVIOUS),
                histogram_from_start=histogram(histogram_start),
                histogram_from_previous=histogram(histogram_previous),
                weeks=tuple(
                    VelocityWeek(
                        week_start=week,
                        started=part.started,
                        reached=part.reached(index),
                        median_from_start=seconds(part.nearest_rank_ms(index, FROM_START, 50)),
                    )
                    for (week, _, _), part in zip(weeks, by_week, strict=True)
                    if part.started
                ),
            )
        )
    return Velocity(
        journey=journey.key,
        date_from=date_range.date_from,
        date_to=date_range.date_to,
        timezone=date_range.timezone,
        milestones=tuple(results),
    )


def cohort_durations(
    *, journey: Journey, start: datetime, end: datetime
) -> tuple[list[Milestone], Durations]:
    """The journey's milestones (in order) and the durations of everyone whose journey started
    in [start, end), read from the rollups as `milestone_velocity` reads them (peer comparison,
    analytics/peer_comparison.py)."""
    milestones = journey_rollups.journey_milestones(journey)
    ids = [int(m.pk) for m in milestones]
    first_start = journey_rollups.first_start(journey)
    if not ids or first_start is None:
        return milestones, Durations.empty(len(ids))
    stored = None
    first, last = first_start.astimezone(UTC).date(), journey_rollups.last_stored_day(end)
    if first <= last and journey_rollups.utc_midnight(last) + velocity.DAY > start:
        journey_rollups.rollup_days(journey, milestones, first, last)
        stored = (first, last)
    start = max(start, journey_rollups.floor_slice(first_start))
    plan = _VelocityPlan(journey, ids, stored, first_start)
    [durations] = plan.add_up([plan.terms(start, end)])
    return milestones, durations
