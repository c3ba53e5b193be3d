"""The analytics home's tiles (Admin → Analytics → Dashboards): what each tile holds, the
registry other apps add tiles through, and the reads behind the built-in tiles."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from analytics.dashboards import Figure
from analytics.inputs import DateRange
from analytics.report import journey_funnel, milestone_velocity, walkthrough_funnel
from onboarding.models import Journey, Walkthrough, Workspace

# --- The analytics home ------------------------------------------------------------------


@dataclass(frozen=True)
class Tile:
    """One tile of the analytics home: a headline, a few lines, a chart maybe, and the report
    it opens."""

    title: str
    link: str
    headline: str = ""
    lines: Sequence[tuple[str, str]] = ()  # (text, link) pairs; the link may be ""
    figure: Figure | None = None
    empty: str = ""
    saved: Any = None  # the SavedReport a pinned tile shows (it can be unpinned)


@dataclass
class HomeTiles:
    """Tiles other apps add to the home (engagement adds its deliveries): functions of
    (workspace, today) that return tiles. Apps depend on analytics, never the other way, so
    they register here rather than being imported."""

    providers: list[Callable[[Workspace, date], list[Tile]]] = field(default_factory=list)

    def register(self, provider: Callable[[Workspace, date], list[Tile]]) -> None:
        if provider not in self.providers:
            self.providers.append(provider)


home_tiles = HomeTiles()


def week_so_far(today: date, timezone: str = "UTC") -> DateRange:
    return DateRange(today - timedelta(days=today.weekday()), today, timezone)


def last_days(today: date, days: int, timezone: str = "UTC") -> DateRange:
    return DateRange(today - timedelta(days=days - 1), today, timezone)


def journey_glance(
    journey: Journey, date_range: DateRange
) -> tuple[journey_funnel.JourneyFunnel, milestone_velocity.Velocity]:
    return (
        journey_funnel.journey_funnel(journey=journey, date_range=date_range),
        milestone_velocity.milestone_velocity(journey=journey, date_range=date_range),
    )


def walkthrough_losses(
    workspace: Workspace, date_range: DateRange
) -> list[tuple[Walkthrough, walkthrough_funnel.WalkthroughFunnel]]:
    """Every walkthrough's step funnel over the range, the one losing most people first."""
    results = [
        (w, walkthrough_funnel.walkthrough_step_funnel(walkthrough=w, date_range=date_range))
        for w in Walkthrough.objects.filter(workspace=workspace).order_by("name")
    ]
    return sorted(results, key=lambda pair: pair[1].completed - pair[1].started)
