"""Django admin: analytics settings per workspace, the analytics home (Admin → Analytics →
Dashboards) and a dashboard per report.

Charts are drawn in the browser by Apache ECharts, bundled from npm into
static/analytics/charts.js (`make charts`); each chart's numbers, its table and its CSV come
from the same Figure (analytics/dashboards.py), so they cannot disagree."""

from __future__ import annotations

import dataclasses
import zoneinfo
from datetime import date
from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.http import urlencode
from rest_framework.exceptions import ValidationError

from analytics import dashboards, queries
from analytics.dashboards import Figure, Tile
from analytics.export import report_csv
from analytics.forms import EVENT_INPUTS, FORMS, ReportForm
from analytics.inputs import DateRange
from analytics.models import AnalyticsSettings, Dashboard
from analytics.report import adoption, lifecycle, pai, retention, walkthrough_funnel
from analytics.reports import REPORTS, AnalyticsUnavailable, run_report
from onboarding.models import Journey, Workspace
from onboarding.queries import workspaces_for_user

HOME_JOURNEYS = 6
HOME_LINES = 5
PEOPLE_LIMIT = 20


@admin.register(AnalyticsSettings)
class AnalyticsSettingsAdmin(admin.ModelAdmin):
    list_display = ["workspace", "login_event", "customer_event", "active_event", "active_days"]

    def get_queryset(self, request: HttpRequest) -> Any:
        return (
            super()
            .get_queryset(request)
            .filter(
                workspace__in=workspaces_for_user(user=request.user)  # type: ignore[arg-type]
            )
        )

    def get_urls(self) -> list[URLPattern]:
        # Dashboards used to live under analytics settings; old bookmarks still arrive.
        return [
            path(
                "dashboards/<slug:slug>/",
                self.admin_site.admin_view(self.moved_dashboard),
                name="analytics_dashboard_moved",
            ),
            *super().get_urls(),
        ]

    def moved_dashboard(self, request: HttpRequest, slug: str) -> HttpResponse:
        target = reverse("admin:analytics_dashboard", args=[slug])
        query = request.GET.urlencode()
        return HttpResponseRedirect(f"{target}?{query}" if query else target)


def report_link(slug: str, workspace: Workspace, **query: Any) -> str:
    return (
        reverse("admin:analytics_dashboard", args=[slug])
        + "?"
        + urlencode({"workspace": workspace.pk, **query})
    )


def person_link(external_id: str) -> str:
    return reverse("admin:onboarding_enduser_changelist") + "?" + urlencode({"q": external_id})


@admin.register(Dashboard)
class DashboardAdmin(admin.ModelAdmin):
    """The analytics home and the reports' dashboards, for every member of a workspace."""

    def _workspaces(self, request: HttpRequest) -> Any:
        return workspaces_for_user(user=request.user)  # type: ignore[arg-type]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_staff and self._workspaces(request).exists()

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        return [
            path("", self.admin_site.admin_view(self.home), name="analytics_dashboard_changelist"),
            path(
                "<slug:slug>/",
                self.admin_site.admin_view(self.dashboard),
                name="analytics_dashboard",
            ),
        ]

    def _context(self, request: HttpRequest, title: str) -> dict[str, Any]:
        workspaces = self._workspaces(request).order_by("name")
        chosen = (
            workspaces.filter(pk=request.GET.get("workspace") or 0).first() or workspaces.first()
        )
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "reports": list(REPORTS.values()),
            "workspaces": workspaces,
            "workspace": chosen,
            "home_url": reverse("admin:analytics_dashboard_changelist"),
        }

    def home(self, request: HttpRequest) -> HttpResponse:
        context = self._context(request, "Analytics")
        workspace: Workspace | None = context["workspace"]
        if workspace is not None:
            tiles = home_tiles(workspace, workspace_today(workspace))
            context |= {
                "tiles": tiles,
                "figures": [tile.figure for tile in tiles if tile.figure is not None],
            }
        return TemplateResponse(request, "analytics/home.html", context)

    def dashboard(self, request: HttpRequest, slug: str) -> HttpResponse:
        report = REPORTS.get(slug)
        if report is None:
            return HttpResponse("No such report.", status=404)
        context = self._context(request, report.title)
        workspace: Workspace | None = context["workspace"]
        if workspace is None:
            return TemplateResponse(request, "analytics/report.html", context)
        query = request.GET.copy()
        query["workspace"] = str(workspace.pk)
        form = FORMS[slug](query, workspace=workspace, today=workspace_today(workspace))
        context |= {
            "report": report,
            "form": form,
            "event_inputs": EVENT_INPUTS,
            "query": query.urlencode(),
        }
        result = None
        if form.is_valid():
            try:
                spec = form.report_input()
                if slug == "funnel":
                    spec["people_limit"] = PEOPLE_LIMIT
                result, _ = run_report(report, workspace, spec)
            except ValidationError as error:
                form.add_report_errors(error.detail)
            except AnalyticsUnavailable as error:
                messages.error(request, str(error.detail))
                return TemplateResponse(request, "analytics/report.html", context, status=503)
        if result is None:
            return TemplateResponse(request, "analytics/report.html", context, status=400)
        for warning in getattr(result, "warnings", ()):
            messages.warning(request, warning)
        if request.GET.get("export") == "csv":
            return _csv(report_csv(result), slug)
        figures = report_figures(slug, result, form)
        chosen = request.GET.get("download")
        if chosen:
            figure = next((f for f in figures if f.id == chosen), None)
            if figure is None:
                return HttpResponse("No such chart.", status=404)
            return _csv(figure.csv(), f"{slug}-{figure.id}")
        context |= {"figures": figures, "people": _people(result), "people_limit": PEOPLE_LIMIT}
        return TemplateResponse(request, "analytics/report.html", context)


def workspace_today(workspace: Workspace) -> date:
    """Today in the workspace's time zone: the day its reports end on by default."""
    return timezone.now().astimezone(zoneinfo.ZoneInfo(workspace.time_zone)).date()


def _csv(text: str, name: str) -> HttpResponse:
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


def _people(result: Any) -> list[tuple[str, list[tuple[str, str]], list[tuple[str, str]]]]:
    """An event funnel's people per step: (step, converted, dropped), each with their links."""
    if not isinstance(result, queries.EventFunnel):
        return []
    return [
        (
            f"{step.index + 1}. {step.event}",
            [(p, person_link(p)) for p in step.converted_people],
            [(p, person_link(p)) for p in step.dropped_people],
        )
        for step in result.steps
    ]


def report_figures(slug: str, result: Any, form: ReportForm) -> list[Figure]:
    data = form.cleaned_data
    match result:
        case queries.JourneyFunnel():
            journey: Journey = data["journey"]
            date_range = DateRange(data["date_from"], data["date_to"], data["timezone"])
            return dashboards.journey_funnel_figures(
                result,
                velocity=queries.milestone_velocity(journey=journey, date_range=date_range),
                weekly=dashboards.journey_funnel_weekly(journey, date_range),
            )
        case queries.Velocity():
            return dashboards.velocity_figures(result)
        case walkthrough_funnel.WalkthroughFunnel():
            return dashboards.walkthrough_figures(result)
        case queries.EventFunnel():
            return dashboards.event_funnel_figures(result)
        case retention.Retention():
            return dashboards.retention_figures(result)
        case lifecycle.Lifecycle():
            return dashboards.lifecycle_figures(result)
        case queries.PqlList():
            return dashboards.pql_figures(
                result, DateRange(data["date_from"], data["date_to"], data["timezone"])
            )
        case adoption.AdoptionMatrix():
            return dashboards.adoption_figures(result)
        case pai.PaiValidation():
            return dashboards.pai_figures(result)
    return []


def home_tiles(workspace: Workspace, today: date) -> list[Tile]:
    """The analytics home of one workspace: its journeys at a glance, this week's PQLs, the
    walkthroughs that lose the most people, broken steps, and what other apps add."""
    month = dashboards.last_days(today, 30, workspace.time_zone)
    month_query = {"date_from": month.date_from, "date_to": month.date_to}
    tiles = []
    for journey in Journey.objects.filter(workspace=workspace).order_by("name")[:HOME_JOURNEYS]:
        funnel, velocity = dashboards.journey_glance(journey, month)
        figure = dashboards.journey_funnel_figures(funnel, velocity=velocity)[0]
        last = funnel.steps[-1]
        velocity_link = report_link("velocity", workspace, journey=journey.key, **month_query)
        tiles.append(
            Tile(
                title=f"{journey.name}: last 30 days",
                link=report_link("journey-funnel", workspace, journey=journey.key, **month_query),
                headline=(
                    f"{funnel.steps[0].users:,} started · "
                    f"{dashboards.percent(last.conversion_from_start) or '0 %'} reached "
                    f"“{last.name}”"
                ),
                lines=[
                    (
                        f"{m.name}: median {dashboards.duration(m.from_start.median)} "
                        f"from start, {m.on_the_way:,} on the way",
                        velocity_link,
                    )
                    for m in velocity.milestones
                    if m.from_start.median is not None
                ][:HOME_LINES],
                figure=dataclasses.replace(figure, id=f"journey-{journey.pk}"),
            )
        )
    week = dashboards.week_so_far(today, workspace.time_zone)
    pqls = queries.pqls(workspace=workspace, date_range=week, limit=1000)
    tiles.append(
        Tile(
            title="PQLs this week",
            link=report_link("pqls", workspace, date_from=week.date_from, date_to=week.date_to),
            headline=f"{len(pqls.rows):,} new since Monday",
            lines=[
                (
                    f"{row.external_id}: score {row.score}, {row.journey}",
                    person_link(row.external_id),
                )
                for row in sorted(pqls.rows, key=lambda row: -row.score)[:HOME_LINES]
            ],
            empty="No new PQLs this week yet.",
        )
    )
    losses = dashboards.walkthrough_losses(workspace, month)
    tiles.append(
        Tile(
            title="Walkthroughs that lose the most people",
            link=report_link("walkthrough-funnel", workspace, **month_query),
            lines=[
                (
                    f"{walkthrough.name}: {result.started - result.completed:,} of "
                    f"{result.started:,} did not finish",
                    report_link(
                        "walkthrough-funnel",
                        workspace,
                        walkthrough=walkthrough.key,
                        **month_query,
                    ),
                )
                for walkthrough, result in losses
                if result.started
            ][:HOME_LINES],
            empty="No walkthrough was started in the last 30 days.",
        )
    )
    broken = [
        (walkthrough, step)
        for walkthrough, result in losses
        for step in result.steps
        if step.target_missing
    ]
    broken.sort(key=lambda pair: -pair[1].target_missing_users)
    tiles.append(
        Tile(
            title="Broken steps (target missing)",
            link=report_link("walkthrough-funnel", workspace, **month_query),
            headline=f"{len(broken)} steps" if broken else "",
            lines=[
                (
                    f"{walkthrough.name}, step {step.index + 1} “{step.title}”: not found "
                    f"for {step.target_missing_users:,} people ({step.target_missing:,} times)",
                    report_link(
                        "walkthrough-funnel",
                        workspace,
                        walkthrough=walkthrough.key,
                        **month_query,
                    ),
                )
                for walkthrough, step in broken[:HOME_LINES]
            ],
            empty="Every step found its target in the last 30 days.",
        )
    )
    for provider in dashboards.home_tiles.providers:
        tiles.extend(provider(workspace, today))
    return tiles
