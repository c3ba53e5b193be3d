"""Django admin: analytics settings per workspace, the analytics home (Admin → Analytics →
Dashboards) and a dashboard per report.

Charts are drawn in the browser by Apache ECharts, bundled from npm into
static/analytics/charts.js (`make charts`); each chart's numbers, its table and its CSV come
from the same Figure (analytics/dashboards.py), so they cannot disagree."""

from __future__ import annotations

import dataclasses
import zoneinfo
from collections.abc import Sequence
from datetime import date
from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe
from rest_framework.exceptions import ValidationError

from analytics import dashboards, home, services
from analytics.dashboards import Figure
from analytics.export import report_csv
from analytics.forms import EVENT_INPUTS, FORMS, ReportForm, flatten_errors
from analytics.home import Tile
from analytics.inputs import DateRange, ReportInputError
from analytics.models import AnalyticsSettings, Dashboard, SavedReport
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
from analytics.report import people as report_people_module
from analytics.reports import REPORTS, AnalyticsUnavailable, run_report
from analytics.store import StoreUnavailable
from onboarding.models import EndUser, Journey, Walkthrough, Workspace
from onboarding.queries import workspaces_for_user
from onboarding.validation import MAX_SEGMENT_PEOPLE

HOME_JOURNEYS = 6
HOME_LINES = 5
PEOPLE_LIMIT = 20
PEOPLE_SHOWN = 500  # listed on a people page; a segment made there holds them all


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
                "saved/",
                self.admin_site.admin_view(self.pin),
                name="analytics_dashboard_pin",
            ),
            path(
                "saved/<int:pk>/unpin/",
                self.admin_site.admin_view(self.unpin),
                name="analytics_dashboard_unpin",
            ),
            path(
                "<slug:slug>/",
                self.admin_site.admin_view(self.dashboard),
                name="analytics_dashboard",
            ),
            path(
                "<slug:slug>/people/",
                self.admin_site.admin_view(self.people),
                name="analytics_dashboard_people",
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
        figures = [with_people_links(slug, figure, result, query.urlencode()) for figure in figures]
        chosen = request.GET.get("download")
        if chosen:
            figure = next((f for f in figures if f.id == chosen), None)
            if figure is None:
                return HttpResponse("No such chart.", status=404)
            return _csv(figure.csv(), f"{slug}-{figure.id}")
        context |= {"figures": figures, "people": _people(result), "people_limit": PEOPLE_LIMIT}
        return TemplateResponse(request, "analytics/report.html", context)

    def _posted_workspace(self, request: HttpRequest) -> Workspace | None:
        workspace: Workspace | None = (
            self._workspaces(request).filter(pk=request.POST.get("workspace") or 0).first()
        )
        return workspace

    def pin(self, request: HttpRequest) -> HttpResponse:
        """Save the report's state under a name, as a tile of the workspace's home."""
        if request.method != "POST":
            return HttpResponse("Pin a report with POST.", status=405)
        workspace = self._posted_workspace(request)
        if workspace is None:
            return HttpResponse("No such workspace of yours.", status=404)
        slug = request.POST.get("report", "")
        query = QueryDict(request.POST.get("query", ""))
        try:
            saved = services.saved_report_pin(
                workspace=workspace,
                report=slug,
                name=request.POST.get("name", ""),
                query=query,
                rolling=request.POST.get("rolling") == "on",
                today=workspace_today(workspace),
                user=request.user,
            )
        except ReportInputError as error:
            messages.error(request, f"Not pinned: {error.message}")
        else:
            messages.success(request, f"“{saved.name}” is pinned to the analytics home.")
        back = query.copy()
        back["workspace"] = str(workspace.pk)
        target = reverse("admin:analytics_dashboard", args=[slug]) if slug in REPORTS else ""
        return HttpResponseRedirect(
            f"{target}?{back.urlencode()}"
            if target
            else reverse("admin:analytics_dashboard_changelist")
        )

    def unpin(self, request: HttpRequest, pk: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponse("Unpin a report with POST.", status=405)
        workspace = self._posted_workspace(request)
        if workspace is None:
            return HttpResponse("No such workspace of yours.", status=404)
        try:
            services.saved_report_unpin(workspace=workspace, saved_report_id=pk)
        except ReportInputError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, "Unpinned from the analytics home.")
        return HttpResponseRedirect(
            reverse("admin:analytics_dashboard_changelist") + f"?workspace={workspace.pk}"
        )

    def people(self, request: HttpRequest, slug: str) -> HttpResponse:
        """The people behind one number of a report (an event funnel's step, a retention
        cell), each linking to their admin page, and a segment made of them in one click."""
        if slug not in PEOPLE_PARAMETERS:
            return HttpResponse("This report does not list people.", status=404)
        report = REPORTS[slug]
        context = self._context(request, f"People: {report.title}")
        workspace: Workspace | None = context["workspace"]
        if workspace is None:
            return TemplateResponse(request, "analytics/people.html", context)
        query = request.GET.copy()
        query["workspace"] = str(workspace.pk)
        form = FORMS[slug](query, workspace=workspace, today=workspace_today(workspace))
        back = query.copy()
        for name in PEOPLE_PARAMETERS[slug]:
            back.pop(name, None)
        context |= {
            "report": report,
            "back": reverse("admin:analytics_dashboard", args=[slug]) + "?" + back.urlencode(),
        }
        try:
            found, label = report_people(slug, form, workspace, query)
        except ReportInputError as error:
            context["error"] = error.message
            return TemplateResponse(request, "analytics/people.html", context, status=400)
        except AnalyticsUnavailable as error:
            context["error"] = str(error.detail)
            return TemplateResponse(request, "analytics/people.html", context, status=503)
        status = 200
        if request.method == "POST":
            try:
                segment = services.segment_create_from_people(
                    workspace=workspace,
                    external_ids=found.external_ids,
                    name=request.POST.get("name", ""),
                )
            except ReportInputError as error:
                context["error"] = error.message
                status = 400
            else:
                messages.success(
                    request,
                    f"The segment “{segment.name}” (key {segment.key}) holds these "
                    f"{len(found.external_ids):,} people.",
                )
                return HttpResponseRedirect(
                    reverse("admin:onboarding_segment_change", args=[segment.pk])
                )
        shown = found.external_ids[:PEOPLE_SHOWN]
        pages = dict(
            EndUser.objects.filter(workspace=workspace, external_id__in=shown).values_list(
                "external_id", "pk"
            )
        )
        context |= {
            "label": label,
            "found": found,
            "shown": [
                (p, reverse("admin:onboarding_enduser_change", args=[pages[p]]))
                for p in shown
                if p in pages
            ],
            "people_shown": PEOPLE_SHOWN,
            "segment_limit": MAX_SEGMENT_PEOPLE,
            "segment_name": f"{report.title}: {label}"[:120],
        }
        return TemplateResponse(request, "analytics/people.html", context, status=status)


# The query parameters that choose a report's number, on top of the report's own inputs.
PEOPLE_PARAMETERS = {"funnel": ("at_step", "outcome"), "retention": ("cohort", "period_offset")}


def people_link(slug: str, query: str, **chosen: Any) -> str:
    return (
        reverse("admin:analytics_dashboard_people", args=[slug]) + f"?{query}&{urlencode(chosen)}"
    )


def with_people_links(slug: str, figure: Figure, result: Any, query: str) -> Figure:
    """Links from a funnel's steps and a retention's cells to the people in them."""
    if isinstance(result, event_funnel.EventFunnel) and figure.id == "funnel":
        converted = [people_link(slug, query, at_step=s.index + 1) for s in result.steps]
        dropped = [
            people_link(slug, query, at_step=s.index + 1, outcome="dropped") if s.index else ""
            for s in result.steps
        ]
        # Columns: step, people, conversion from start, from previous, dropped off, ...
        row_links = [
            ["", c if s.count else "", "", "", d if s.dropped else "", "", ""]
            for s, c, d in zip(result.steps, converted, dropped, strict=True)
        ]
        links = {str(i): link for i, link in enumerate(converted)}
        return dataclasses.replace(figure, links=links, row_links=row_links)
    if isinstance(result, retention.Retention) and figure.id == "cohorts":
        links, row_links = {}, []
        for y, cohort in enumerate(result.cohorts):
            row = ["", ""]
            for x, (rate, returned) in enumerate(zip(cohort.rates, cohort.returned, strict=True)):
                link = ""
                if rate is not None and returned:
                    link = people_link(
                        slug, query, cohort=cohort.cohort_start.isoformat(), period_offset=x
                    )
                    links[f"{x},{y}"] = link
                row.append(link)
            row_links.append(row)
        return dataclasses.replace(figure, links=links, row_links=row_links)
    return figure


def _number(query: Any, name: str, low: int, high: int) -> int:
    text = query.get(name, "")
    if not text.isdigit() or not low <= int(text) <= high:
        raise ReportInputError(name, f"{name} is a whole number from {low} to {high}.")
    return int(text)


def form_problems(form: ReportForm) -> str:
    """A form's errors in one sentence, each after its field's label."""
    return " ".join(
        f"{form.fields[name].label if name in form.fields else name}: "
        + " ".join(str(e) for e in errors)
        for name, errors in form.errors.items()
    )


def report_people(
    slug: str, form: ReportForm, workspace: Workspace, query: Any
) -> tuple[report_people_module.People, str]:
    """Who is behind the number the query points at, and that number's name in words."""
    if not form.is_valid():
        raise ReportInputError("report", "The report's inputs are wrong. " + form_problems(form))
    spec = form.report_input()
    if slug == "funnel":
        at_step = _number(query, "at_step", 1, len(spec["steps"]))
        outcome = query.get("outcome", "converted")
        if outcome not in ("converted", "dropped") or (outcome == "dropped" and at_step == 1):
            raise ReportInputError(
                "outcome", "outcome is converted, or dropped at a step after the first."
            )
        spec["people_limit"] = MAX_SEGMENT_PEOPLE
        try:
            result, _ = run_report(REPORTS[slug], workspace, spec)
        except ValidationError as error:
            detail = " ".join(m for _, m in flatten_errors(error.detail))
            raise ReportInputError("report", detail) from None
        step = result.steps[at_step - 1]
        if outcome == "converted":
            found = report_people_module.People(step.count, step.converted_people)
            label = f"reached step {at_step} ({step.event})"
        else:
            found = report_people_module.People(step.dropped, step.dropped_people)
            label = f"dropped off before step {at_step} ({step.event})"
        return found, label
    data = form.cleaned_data
    if data.get("journey"):
        raise ReportInputError(
            "journey",
            "People are listed for cohorts by event; a journey's cohorts are not listed yet.",
        )
    try:
        cohort = date.fromisoformat(query.get("cohort", ""))
    except ValueError:
        raise ReportInputError(
            "cohort", "cohort is the day its cohort starts, YYYY-MM-DD."
        ) from None
    offset = _number(query, "period_offset", 0, data["periods"] - 1)
    found = report_people_module.retention_cell_people(
        workspace=workspace,
        date_range=DateRange(data["date_from"], data["date_to"], data["timezone"]),
        period=data["period"],
        mode=data["mode"],
        cohort_type=data["cohort_type"],
        cohort_event=data["cohort_event"] or None,
        return_event=data["return_event"] or None,
        cohort_start=cohort,
        offset=offset,
    )
    when = "came back" if data["mode"] == "on" else "came back then or later"
    return found, f"cohort of {cohort}, {data['period']} {offset}, {when}"


def workspace_today(workspace: Workspace) -> date:
    """Today in the workspace's time zone: the day its reports end on by default."""
    return timezone.now().astimezone(zoneinfo.ZoneInfo(workspace.time_zone)).date()


def _csv(text: str, name: str) -> HttpResponse:
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


def _people(result: Any) -> list[tuple[str, SafeString, SafeString]]:
    """An event funnel's people per step: (step, converted, dropped), each a list of links to
    the people in admin (written here: a template loop per person was most of the page)."""
    if not isinstance(result, event_funnel.EventFunnel):
        return []
    changelist = reverse("admin:onboarding_enduser_changelist")

    def links(people: Sequence[str]) -> SafeString:
        if not people:
            return mark_safe("\N{EN DASH}")
        return mark_safe(  # noqa: S308 - names and addresses escaped here
            ", ".join(
                f'<a href="{escape(changelist)}?{escape(urlencode({"q": p}))}">{escape(p)}</a>'
                for p in people
            )
        )

    return [
        (
            f"{step.index + 1}. {step.event}",
            links(step.converted_people),
            links(step.dropped_people),
        )
        for step in result.steps
    ]


def report_figures(slug: str, result: Any, form: ReportForm, home: bool = False) -> list[Figure]:
    """The report's figures; on the home (a pinned tile) only what its first chart needs."""
    data = form.cleaned_data
    match result:
        case journey_funnel.JourneyFunnel():
            journey: Journey = data["journey"]
            date_range = DateRange(data["date_from"], data["date_to"], data["timezone"])
            if home:
                return dashboards.journey_funnel_figures(result)
            return dashboards.journey_funnel_figures(
                result,
                velocity=milestone_velocity.milestone_velocity(
                    journey=journey, date_range=date_range
                ),
                weekly=dashboards.journey_funnel_weekly(journey, date_range),
            )
        case milestone_velocity.Velocity():
            return dashboards.velocity_figures(result)
        case walkthrough_funnel.WalkthroughFunnel():
            return dashboards.walkthrough_figures(result)
        case event_funnel.EventFunnel():
            return dashboards.event_funnel_figures(result)
        case retention.Retention():
            return dashboards.retention_figures(result)
        case lifecycle.Lifecycle():
            return dashboards.lifecycle_figures(result)
        case pqls.PqlList():
            return dashboards.pql_figures(
                result, DateRange(data["date_from"], data["date_to"], data["timezone"])
            )
        case adoption.AdoptionMatrix():
            return dashboards.adoption_figures(result)
        case pai.PaiValidation():
            return dashboards.pai_figures(result)
        case experiment.ExperimentResults():
            return dashboards.experiment_figures(result)
    return []


def saved_tile(saved: SavedReport, today: date) -> Tile:
    """A pinned report as a tile: its first chart, as its dashboard would draw it today."""
    report = REPORTS.get(saved.report)
    query = services.saved_report_query(saved, today)
    link = reverse("admin:analytics_dashboard", args=[saved.report]) + "?" + query.urlencode()
    if report is None:
        return Tile(title=saved.name, link=link, empty="This report no longer exists.", saved=saved)
    form = FORMS[saved.report](query, workspace=saved.workspace, today=today)
    figure = None
    problem = ""
    if form.is_valid():
        try:
            result, _ = run_report(report, saved.workspace, form.report_input())
            figures = report_figures(saved.report, result, form, home=True)
            figure = figures[0] if figures else None
        except ValidationError as error:
            problem = " ".join(m for _, m in flatten_errors(error.detail))
        except AnalyticsUnavailable as error:
            problem = str(error.detail)
    else:
        problem = form_problems(form)
    dates = (
        f"{form.cleaned_data['date_from']} to {form.cleaned_data['date_to']}"
        if form.has_dates and not problem
        else ""
    )
    return Tile(
        title=saved.name,
        link=link,
        headline=report.title + (f" · {dates}" if dates else ""),
        figure=dataclasses.replace(figure, id=f"saved-{saved.pk}") if figure else None,
        empty=f"Cannot be drawn: {problem}" if problem else ("" if figure else "Nothing to draw."),
        saved=saved,
    )


def home_tiles(workspace: Workspace, today: date) -> list[Tile]:
    """The analytics home of one workspace: its journeys at a glance, this week's PQLs, the
    walkthroughs that lose the most people, broken steps, and what other apps add."""
    tiles = [saved_tile(saved, today) for saved in SavedReport.objects.filter(workspace=workspace)]
    month = home.last_days(today, 30, workspace.time_zone)
    month_query = {"date_from": month.date_from, "date_to": month.date_to}
    for journey in Journey.objects.filter(workspace=workspace).order_by("name")[:HOME_JOURNEYS]:
        funnel, velocity = home.journey_glance(journey, month)
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
    week = home.week_so_far(today, workspace.time_zone)
    # The best scores come first; the headline counts every PQL of the week.
    new_pqls = pqls.pqls(workspace=workspace, date_range=week, limit=HOME_LINES)
    tiles.append(
        Tile(
            title="PQLs this week",
            link=report_link("pqls", workspace, date_from=week.date_from, date_to=week.date_to),
            headline=f"{new_pqls.total:,} new since Monday",
            lines=[
                (
                    f"{row.external_id}: score {row.score}, {row.journey}",
                    person_link(row.external_id),
                )
                for row in new_pqls.rows
            ],
            empty="No new PQLs this week yet.",
        )
    )
    losses = home.walkthrough_losses(workspace, month)
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
    for provider in home.home_tiles.providers:
        tiles.extend(provider(workspace, today))
    return tiles


def walkthrough_step_notes(walkthroughs: list[Walkthrough]) -> dict[int, str]:
    """The walkthrough list's "Step health": the steps whose target was missing for too many
    people in the last 30 days (walkthrough_funnel.missing_target_flags)."""
    try:
        flags = walkthrough_funnel.missing_target_flags(walkthroughs=walkthroughs)
    except StoreUnavailable:
        return {w.pk: "(analytics store unavailable)" for w in walkthroughs}
    notes: dict[int, list[str]] = {}
    for flag in flags:
        notes.setdefault(flag.walkthrough.pk, []).append(
            f"⚠ step {flag.index + 1} “{flag.title}”: target missing for "
            f"{flag.missing} of {flag.reached} people ({flag.share:.0%})"
        )
    return {pk: "; ".join(lines) for pk, lines in notes.items()}
