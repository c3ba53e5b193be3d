"""Authoring API for content as code, with the secret key (`Authorization: Bearer sk_…`).

- `GET /api/v1/content`: the workspace's drafts in the export format (milepost-content/1).
- `PUT /api/v1/content[?dry_run=1][&publish=1]`: import a file (idempotent by key, one
  transaction); answers the list of changes. Errors answer 400 with every bad path.
- `POST /api/v1/content/{kind}/{key}/publish`: publish one piece (kind: journey, walkthrough,
  tooltip, progress_bar, banner, guide, survey, resource_section); answers the new version.
- `GET /api/v1/experiments/{key}`: an experiment's definition and status;
  `POST /api/v1/experiments/{key}/start`, `.../stop`, `.../ship` with `{"variant": "…"}`.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from onboarding import experiments, queries, services
from onboarding.api.errors import error_body
from onboarding.api.views import ERRORS, ServerView, json_object
from onboarding.content_io import (
    ContentImportError,
    content_export,
    content_import,
    experiment_document,
)
from onboarding.models import Experiment
from onboarding.queries import MODEL_OF_KIND

_CHANGES = inline_serializer(
    "ContentImportResult",
    {
        "changes": serializers.ListField(child=serializers.CharField()),
        "dry_run": serializers.BooleanField(),
        "warnings": serializers.ListField(child=serializers.CharField()),
    },
)
_VERSION = inline_serializer(
    "PublishedVersionResult",
    {
        "kind": serializers.CharField(),
        "key": serializers.CharField(),
        "version": serializers.IntegerField(),
        "published_at": serializers.DateTimeField(),
        "warnings": serializers.ListField(child=serializers.CharField()),
    },
)


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in {"1", "true", "yes"}


def _fields(lines: list[str]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for line in lines:
        where, found, message = line.partition(": ")
        if not found:
            where, message = "(content)", line
        fields.setdefault(where, []).append(message)
    return fields


_CONTENT = OpenApiTypes.OBJECT  # the milepost-content/1 document; see README "Content as code"


class ContentView(ServerView):
    @extend_schema(
        summary="Export the workspace's authored content (drafts)",
        responses={200: _CONTENT, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        return Response(content_export(workspace=self.workspace))

    @extend_schema(
        summary="Import authored content (create or update by key; one transaction)",
        parameters=[
            OpenApiParameter("dry_run", bool, description="Report the changes, write nothing."),
            OpenApiParameter("publish", bool, description="Publish every changed piece."),
        ],
        request=_CONTENT,
        responses={200: _CHANGES, **ERRORS},
    )
    def put(self, request: Request) -> Response:
        data = json_object(request)
        dry_run = _flag(request, "dry_run")
        try:
            result = content_import(
                workspace=self.workspace,
                data=data,
                dry_run=dry_run,
                publish=_flag(request, "publish"),
            )
        except ContentImportError as error:
            return Response(
                error_body(
                    "invalid_content",
                    "Nothing was imported; every problem is listed by its path.",
                    _fields(error.errors),
                ),
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response(
            {"changes": result.changes, "dry_run": dry_run, "warnings": result.warnings}
        )


class PublishView(ServerView):
    @extend_schema(
        summary="Publish one piece of content as its next version",
        request=None,
        responses={201: _VERSION, **ERRORS},
    )
    def post(self, request: Request, kind: str, key: str) -> Response:
        model = MODEL_OF_KIND.get(kind)
        if model is None:
            raise NotFound(
                f"Unknown kind {kind!r}; use one of: {', '.join(MODEL_OF_KIND)}.", "unknown_kind"
            )
        obj: Any = model.objects.filter(workspace=self.workspace, key=key).first()
        if obj is None:
            raise NotFound(f"No {kind} with the key {key!r} in this workspace.", "unknown_key")
        warnings = queries.publish_warnings(obj=obj)
        try:
            version = services.content_publish(obj=obj)
        except ValidationError as error:
            return Response(
                error_body("not_publishable", " ".join(error.messages), _fields(error.messages)),
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response(
            {
                "kind": version.kind,
                "key": version.key,
                "version": version.version,
                "published_at": version.published_at,
                "warnings": warnings,
            },
            status=status.HTTP_201_CREATED,
        )


_EXPERIMENT = inline_serializer(
    "ExperimentState",
    {
        "experiment": serializers.DictField(help_text="As in the content file's experiments."),
        "status": serializers.ChoiceField(choices=Experiment.Status.choices),
        "shipped_variant": serializers.CharField(),
    },
)
_SHIP = inline_serializer("ExperimentShip", {"variant": serializers.CharField()})


def _experiment_state(experiment: Experiment) -> dict[str, Any]:
    return {
        "experiment": experiment_document(experiment),
        "status": experiment.status,
        "shipped_variant": experiment.shipped_variant,
    }


class _ExperimentLookup(ServerView):
    def experiment(self, key: str) -> Experiment:
        found = Experiment.objects.filter(workspace=self.workspace, key=key).first()
        if found is None:
            raise NotFound(f"No experiment with the key {key!r} in this workspace.", "unknown_key")
        return found


class ExperimentView(_ExperimentLookup):
    @extend_schema(summary="An experiment's definition and status", responses={200: _EXPERIMENT})
    def get(self, request: Request, key: str) -> Response:
        return Response(_experiment_state(self.experiment(key)))


ACTIONS = ("start", "stop", "ship")


class ExperimentActionView(_ExperimentLookup):
    @extend_schema(
        summary="Start, stop or ship an experiment (ship: publish one variant for everyone)",
        request=_SHIP,
        responses={200: _EXPERIMENT, **ERRORS},
    )
    def post(self, request: Request, key: str, action: str) -> Response:
        if action not in ACTIONS:
            raise NotFound(f"Unknown action {action!r}; use start, stop or ship.", "unknown_action")
        experiment = self.experiment(key)
        try:
            if action == "start":
                experiment = experiments.experiment_start(experiment=experiment)
            elif action == "stop":
                experiment = experiments.experiment_stop(experiment=experiment)
            else:
                variant = json_object(request).get("variant")
                if not isinstance(variant, str):
                    raise ValidationError({"variant": ["Name the variant to ship."]})
                experiment = experiments.experiment_ship(experiment=experiment, variant=variant)
        except ValidationError as error:
            fields = error.message_dict if hasattr(error, "error_dict") else {}
            return Response(
                error_body("invalid_experiment", " ".join(error.messages), fields),
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response(_experiment_state(experiment))


authoring_urlpatterns = [
    path("content", ContentView.as_view(), name="content"),
    path("content/<str:kind>/<slug:key>/publish", PublishView.as_view(), name="content-publish"),
    path("experiments/<slug:key>", ExperimentView.as_view(), name="experiment"),
    path(
        "experiments/<slug:key>/<str:action>",
        ExperimentActionView.as_view(),
        name="experiment-action",
    ),
]
