"""The analytics REST API: the same numbers the dashboards show, scoped to the workspace of
the secret key. GET reports read query parameters; the event funnel is a POST with a JSON body.
`export=csv` downloads the report's table instead of JSON."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import services
from analytics.export import report_csv
from analytics.inputs import ReportInputError
from analytics.reports import REPORTS, Report, run_report
from analytics.serializers import AdoptionSegmentInput
from onboarding.auth import HasWorkspace, SecretKeyAuthentication
from onboarding.models import Workspace


def _workspace(request: Request) -> Workspace:
    assert isinstance(request.auth, Workspace)  # noqa: S101 - HasWorkspace guarantees it
    return request.auth


def _answer(report: Report, request: Request, raw: Any) -> Response | HttpResponse:
    # A store that is down is a 503 with Retry-After (reports.AnalyticsUnavailable).
    result, export = run_report(report, _workspace(request), raw)
    if export == "csv":
        response = HttpResponse(report_csv(result), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{report.slug}.csv"'
        return response
    return Response(dataclasses.asdict(result))


class ReportView(APIView):
    authentication_classes = [SecretKeyAuthentication]
    permission_classes = [HasWorkspace]
    report: Report

    def get(self, request: Request) -> Response | HttpResponse:
        return _answer(self.report, request, request.query_params)


class EventFunnelView(ReportView):
    report = REPORTS["funnel"]
    # Steps, filters and exclusions are a JSON document: the funnel is asked for by POST only.
    http_method_names = ["post", "options"]

    @extend_schema(request=report.input, responses=OpenApiTypes.OBJECT, tags=["analytics"])
    def post(self, request: Request) -> Response | HttpResponse:
        return _answer(self.report, request, request.data)


def report_view(slug: str) -> type[ReportView]:
    """A GET view for one report, documented with its input serializer's parameters."""
    report = REPORTS[slug]

    class View(ReportView):
        @extend_schema(
            parameters=[report.input],
            responses=OpenApiTypes.OBJECT,
            tags=["analytics"],
            summary=report.title,
            operation_id=f"analytics_{slug.replace('-', '_')}",
        )
        def get(self, request: Request) -> Response | HttpResponse:
            return super().get(request)

    View.report = report
    View.__name__ = f"{report.title.title().replace(' ', '')}View"
    return View


class AdoptionSegmentView(APIView):
    """Save one adoption-matrix cell as a segment for targeting."""

    authentication_classes = [SecretKeyAuthentication]
    permission_classes = [HasWorkspace]

    @extend_schema(request=AdoptionSegmentInput, responses=OpenApiTypes.OBJECT, tags=["analytics"])
    def post(self, request: Request) -> Response:
        parsed = AdoptionSegmentInput(data=request.data)
        parsed.is_valid(raise_exception=True)
        try:
            segment = services.segment_create_from_adoption_cell(
                workspace=_workspace(request), **parsed.validated_data
            )
        except ReportInputError as error:
            raise ValidationError({error.field: [error.message]}) from None
        return Response({"key": segment.key, "name": segment.name}, status=201)
