"""The nine reports as one table shared by the API, the CSV export and the admin dashboards:
each entry parses its input with a serializer and calls one query."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from rest_framework import exceptions, serializers

from analytics import serializers as inputs
from analytics import store
from analytics.inputs import (
    MAX_CONVERSION_WINDOW,
    DateRange,
    EventFunnelSpec,
    FunnelBreakdown,
    FunnelExclusion,
    FunnelStep,
    PropertyFilter,
    ReportInputError,
)
from analytics.report import (
    adoption,
    event_funnel,
    experiment,
    journey_funnel,
    lifecycle,
    milestone_velocity,
    pai,
    pqls,
    retention,
    walkthrough_funnel,
)
from onboarding.models import Experiment, Journey, Milestone, Walkthrough, Workspace


def _range(data: dict[str, Any]) -> DateRange:
    return DateRange(data["date_from"], data["date_to"], data.get("timezone") or "UTC")


def _journey(workspace: Workspace, key: str | None, field: str = "journey") -> Journey:
    journey = Journey.objects.filter(workspace=workspace, key=key).first()
    if journey is None:
        raise ReportInputError(field, f"No journey with key {key!r} in this workspace.")
    return journey


def _filters(items: list[dict[str, Any]]) -> tuple[PropertyFilter, ...]:
    return tuple(PropertyFilter(i["key"], i["operator"], i.get("value")) for i in items)


def _journey_funnel(workspace: Workspace, data: dict[str, Any]) -> Any:
    return journey_funnel.journey_funnel(
        journey=_journey(workspace, data["journey"]),
        date_range=_range(data),
        breakdown=data.get("breakdown"),
        breakdown_value=data.get("breakdown_value"),
    )


def _velocity(workspace: Workspace, data: dict[str, Any]) -> Any:
    return milestone_velocity.milestone_velocity(
        journey=_journey(workspace, data["journey"]),
        date_range=_range(data),
        horizon=timedelta(days=data["horizon_days"]),
    )


def _walkthrough(workspace: Workspace, data: dict[str, Any]) -> Any:
    walkthrough = Walkthrough.objects.filter(workspace=workspace, key=data["walkthrough"]).first()
    if walkthrough is None:
        raise ReportInputError("walkthrough", "No walkthrough with this key in the workspace.")
    return walkthrough_funnel.walkthrough_step_funnel(
        walkthrough=walkthrough, date_range=_range(data)
    )


def _conversion_window(seconds: int) -> timedelta:
    # Kept just beyond the bounds the spec refuses with its own message: a timedelta of any
    # integer the JSON held would overflow first.
    limit = int(MAX_CONVERSION_WINDOW.total_seconds()) + 1
    return timedelta(seconds=max(-1, min(seconds, limit)))


def _event_funnel(workspace: Workspace, data: dict[str, Any]) -> Any:
    breakdown = data.get("breakdown")
    spec = EventFunnelSpec(
        steps=tuple(FunnelStep(s["event"], _filters(s["filters"])) for s in data["steps"]),
        order=data["order"],
        window=_conversion_window(data["window_seconds"]),
        exclusions=tuple(
            FunnelExclusion(e["event"], e["from_step"], e["to_step"], _filters(e["filters"]))
            for e in data["exclusions"]
        ),
        breakdown=FunnelBreakdown(
            breakdown["kind"],
            breakdown["property"],
            breakdown["attribution"],
            breakdown.get("step"),
        )
        if breakdown
        else None,
        interval=data["interval"],
        aggregate_by=data.get("aggregate_by"),
        people_limit=data["people_limit"],
    )
    return event_funnel.event_funnel(workspace=workspace, spec=spec, date_range=_range(data))


def _retention(workspace: Workspace, data: dict[str, Any]) -> Any:
    return retention.retention(
        workspace=workspace,
        date_range=_range(data),
        period=data["period"],
        periods=data["periods"],
        mode=data["mode"],
        cohort_type=data["cohort_type"],
        cohort_event=data.get("cohort_event"),
        journey=_journey(workspace, data["journey"]) if data.get("journey") else None,
        return_event=data.get("return_event"),
    )


def _lifecycle(workspace: Workspace, data: dict[str, Any]) -> Any:
    return lifecycle.lifecycle(
        workspace=workspace,
        date_range=_range(data) if data.get("date_from") else None,
        period=data["period"],
        activity_event=data.get("activity_event") or None,
    )


def _pqls(workspace: Workspace, data: dict[str, Any]) -> Any:
    return pqls.pqls(
        workspace=workspace,
        journey=_journey(workspace, data["journey"]) if data.get("journey") else None,
        date_range=_range(data) if data.get("date_from") else None,
        period_days=data["period_days"],
        min_score=data["min_score"],
        search=data["search"],
        limit=data["limit"],
    )


def _adoption(workspace: Workspace, data: dict[str, Any]) -> Any:
    features = [name.strip() for name in data["features"].split(",") if name.strip()]
    return adoption.adoption_matrix(workspace=workspace, features=features, date_range=_range(data))


def _pai(workspace: Workspace, data: dict[str, Any]) -> Any:
    return pai.pai_validation(
        workspace=workspace,
        key_event=data["key_event"],
        date_range=_range(data),
        window_days=data["window_days"],
        retention_day=data["retention_day"],
        max_threshold=data["max_threshold"],
        return_event=data.get("return_event"),
    )


def _experiment(workspace: Workspace, data: dict[str, Any]) -> Any:
    found = Experiment.objects.filter(workspace=workspace, key=data["experiment"]).first()
    if found is None:
        raise ReportInputError("experiment", "No experiment with this key in the workspace.")
    milestone = found.goal_milestone
    if data.get("milestone"):
        milestone = Milestone.objects.filter(workspace=workspace, key=data["milestone"]).first()
        if milestone is None:
            raise ReportInputError("milestone", "No milestone with this key in the workspace.")
    days = data.get("window_days")
    window = found.goal_window if days is None else timedelta(days=max(-1, min(days, 10_000)))
    goal = experiment.Goal(
        kind=data["goal"],
        window=window,
        milestone=milestone,
        steps=tuple(s.strip() for s in (data.get("steps") or "").split(",") if s.strip()),
        event=(data.get("event") or "").strip(),
        day=data["day"],
    )
    return experiment.experiment_results(experiment=found, goal=goal)


@dataclass(frozen=True)
class Report:
    slug: str
    title: str
    input: type[serializers.Serializer]
    run: Callable[[Workspace, dict[str, Any]], Any]
    method: str = "GET"


REPORTS: dict[str, Report] = {
    report.slug: report
    for report in (
        Report("journey-funnel", "Journey funnel", inputs.JourneyFunnelInput, _journey_funnel),
        Report("velocity", "Milestone velocity", inputs.VelocityInput, _velocity),
        Report(
            "walkthrough-funnel",
            "Walkthrough step funnel",
            inputs.WalkthroughFunnelInput,
            _walkthrough,
        ),
        Report("funnel", "Event funnel", inputs.EventFunnelInput, _event_funnel, "POST"),
        Report("retention", "Retention", inputs.RetentionInput, _retention),
        Report("lifecycle", "Lifecycle", inputs.LifecycleInput, _lifecycle),
        Report("pqls", "Product qualified leads", inputs.PqlInput, _pqls),
        Report("adoption", "Adoption matrix", inputs.AdoptionInput, _adoption),
        Report("pai", "PAI validation", inputs.PaiInput, _pai),
        Report("experiment", "Experiment results", inputs.ExperimentInput, _experiment),
    )
}


def run_report(report: Report, workspace: Workspace, raw: Any) -> tuple[Any, str]:
    """Parse the raw input and run the report; returns (result, "json" | "csv"). Raises
    serializers.ValidationError naming the field for any bad input."""
    parsed = report.input(data=raw)
    parsed.is_valid(raise_exception=True)
    data = dict(parsed.validated_data)
    try:
        result = report.run(workspace, data)
    except ReportInputError as error:
        raise serializers.ValidationError({error.field: [error.message]}) from None
    except store.StoreUnavailable as error:
        raise AnalyticsUnavailable(str(error)) from error
    return result, data.get("export", "json")


class AnalyticsUnavailable(exceptions.APIException):
    """The analytics store cannot answer: a 503 with Retry-After, never a 500."""

    status_code = 503
    default_code = "analytics_unavailable"
    wait = 30  # DRF sends it as Retry-After
