"""Django admin: analytics settings per workspace, and a dashboard per report (table, bar chart
drawn as server-rendered SVG, date-range and breakdown pickers, CSV download).

Charts are server-rendered SVG: no JavaScript build, nothing to load from elsewhere, and the
numbers in the chart are exactly those of the table beside it."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from rest_framework.exceptions import ValidationError

from analytics import queries
from analytics.export import report_csv
from analytics.models import AnalyticsSettings
from analytics.report import adoption, lifecycle, pai, retention, walkthrough_funnel
from analytics.reports import REPORTS, run_report
from onboarding.queries import workspaces_for_user


def _chart(result: Any) -> list[tuple[str, float]]:
    """(label, value) pairs of the report's headline series."""
    match result:
        case queries.JourneyFunnel():
            return [(s.name, s.users) for s in result.steps]
        case queries.Velocity():
            return [(m.name, (m.from_start.median or 0) / 3600) for m in result.milestones]
        case walkthrough_funnel.WalkthroughFunnel():
            return [(f"{s.index + 1}. {s.title}", s.viewed) for s in result.steps]
        case queries.EventFunnel():
            return [(s.event, s.count) for s in result.steps]
        case retention.Retention():
            return [(f"period {i}", (r or 0) * 100) for i, r in enumerate(result.baseline)]
        case lifecycle.Lifecycle():
            return [(s.label, s.current) for s in result.states]
        case queries.PqlList():
            return [(p.external_id, p.score) for p in result.rows[:20]]
        case adoption.AdoptionMatrix():
            return [
                (
                    " ".join(
                        ("+" if u else "-") + f
                        for u, f in zip(c.used, result.features, strict=True)
                    ),
                    c.users,
                )
                for c in result.cells
            ]
        case pai.PaiValidation():
            return [(f">= {t.threshold}", (t.overlap or 0) * 100) for t in result.thresholds]
    return []


def _dashboard_input(slug: str, query: Any) -> dict[str, Any]:
    data: dict[str, Any] = {key: query.get(key) for key in query if query.get(key) != ""}
    data.pop("workspace", None)
    if slug == "funnel":
        # The dashboard form names the steps as a comma-separated list of events.
        data["steps"] = [
            {"event": e.strip()} for e in str(data.get("steps", "")).split(",") if e.strip()
        ]
    return data


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
        return [
            path(
                "dashboards/<slug:slug>/",
                self.admin_site.admin_view(self.dashboard),
                name="analytics_dashboard",
            ),
            *super().get_urls(),
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> Any:
        extra_context = {
            **(extra_context or {}),
            "dashboards": [
                (r.title, reverse("admin:analytics_dashboard", args=[r.slug]))
                for r in REPORTS.values()
            ],
        }
        return super().changelist_view(request, extra_context)

    def dashboard(self, request: HttpRequest, slug: str) -> HttpResponse:
        report = REPORTS.get(slug)
        workspaces = workspaces_for_user(user=request.user)  # type: ignore[arg-type]
        if report is None:
            return HttpResponse("No such report.", status=404)
        chosen = (
            workspaces.filter(pk=request.GET.get("workspace") or 0).first() or workspaces.first()
        )
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": report.title,
            "report": report,
            "reports": list(REPORTS.values()),
            "workspaces": workspaces,
            "workspace": chosen,
            "query": request.GET,
            "fields": [
                (name, field.help_text or "", request.GET.get(name, ""))
                for name, field in report.input().fields.items()
                if name != "export"
            ],
        }
        if chosen is not None and request.GET:
            try:
                result, export = run_report(report, chosen, _dashboard_input(slug, request.GET))
            except ValidationError as error:
                context["errors"] = error.detail
                return TemplateResponse(request, "analytics/dashboard.html", context, status=400)
            if export == "csv":
                response = HttpResponse(report_csv(result), content_type="text/csv; charset=utf-8")
                response["Content-Disposition"] = f'attachment; filename="{slug}.csv"'
                return response
            rows = list(csv_rows(result))
            bars = _chart(result)
            top = max((value for _, value in bars), default=0) or 1
            context |= {
                "header": rows[0],
                "rows": rows[1:],
                "bars": [
                    (label, round(value, 2), round(value / top * 100, 1), index * 26)
                    for index, (label, value) in enumerate(bars)
                ],
                "chart_height": len(bars) * 26 + 4,
                "csv_query": request.GET.urlencode() + "&export=csv",
            }
        return TemplateResponse(request, "analytics/dashboard.html", context)


def csv_rows(result: Any) -> list[list[Any]]:
    return list(csv.reader(io.StringIO(report_csv(result))))
