"""The visual builder's API, called from the customer's page (another origin) by the builder
bundle that the snippet loads (see onboarding/builder.py for the sessions).

- `POST /api/v1/builder/session` `{token}`: spend admin's one-time token; answers the session.
- `GET /api/v1/builder/content`: the draft the session was opened for (content-as-code
  document, plus the rendered bodies (none for a survey, whose words are plain text) and, for
  a progress bar, its journey's milestones).
- `PUT /api/v1/builder/content` `{document}`: save the draft (editors and owners only); the
  same validation as `PUT /api/v1/content`, every problem named by its path.
- `POST /api/v1/builder/content/publish`: publish the draft (editors and owners only).
- `POST /api/v1/builder/markdown` `{markdown}`: the body as end users will see it (the live
  preview renders with the server's own sanitising renderer).

Every call but the first sends `Authorization: Builder mpb_…` from the origin the session is
bound to. CORS is granted only to origins some workspace allows (preflight) and then to the
session's own origin.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from onboarding import builder, services
from onboarding.api import serializers as s
from onboarding.api.cross_origin import CrossOriginView
from onboarding.api.errors import error_body
from onboarding.api.parsers import StrictJSONParser
from onboarding.api.views import json_object
from onboarding.auth import origin_allowed_anywhere
from onboarding.content_io import (
    FORMAT,
    ContentImportError,
    content_import,
    progress_bar_document,
    surface_document,
    survey_document,
    tooltip_document,
    walkthrough_document,
)
from onboarding.markdown import render_markdown
from onboarding.models import (
    Banner,
    BuilderSession,
    Guide,
    ProgressBar,
    Survey,
    Tooltip,
    Walkthrough,
)
from onboarding.queries import MODEL_OF_KIND

MAX_MARKDOWN = 20_000
SECTION_OF_KIND = {
    "walkthrough": "walkthroughs",
    "tooltip": "tooltips",
    "progress_bar": "progress_bars",
    "guide": "guides",
    "banner": "banners",
    "survey": "surveys",
}
Editable = Walkthrough | Tooltip | ProgressBar | Guide | Banner | Survey

BUILDER_ERRORS = {
    400: OpenApiResponse(s.ErrorSerializer, description="Malformed or invalid input"),
    401: OpenApiResponse(
        s.ErrorSerializer, description="Unknown, used or expired token or session"
    ),
    403: OpenApiResponse(
        s.ErrorSerializer, description="Wrong origin, role lost, or a viewer's write"
    ),
    404: OpenApiResponse(s.ErrorSerializer, description="The content no longer exists"),
}
_SESSION = inline_serializer(
    "BuilderSessionResult",
    {
        "session": serializers.CharField(),
        "expires_at": serializers.DateTimeField(),
        "role": serializers.CharField(),
        "may_save": serializers.BooleanField(),
        "workspace": serializers.CharField(),
        "theme": serializers.DictField(),
        "kind": serializers.CharField(),
        "key": serializers.CharField(),
    },
)
_CONTENT = inline_serializer(
    "BuilderContent",
    {
        "kind": serializers.CharField(),
        "key": serializers.CharField(),
        "may_save": serializers.BooleanField(),
        "document": serializers.DictField(),
        "rendered": serializers.ListField(child=serializers.CharField()),
        "milestones": serializers.ListField(child=serializers.DictField()),
    },
)


class BuilderView(CrossOriginView):
    parser_classes = [StrictJSONParser]
    preflight_methods = "GET, PUT, POST, OPTIONS"
    preflight_headers = "Content-Type, Authorization"
    preflight_max_age = 600

    def session(self, *, write: bool = False) -> BuilderSession:
        header = self.request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "builder":
            raise builder.BuilderRefused(
                "invalid_session", "Send the session as 'Authorization: Builder mpb_…'."
            )
        found = builder.builder_authorize(session_token=token.strip(), origin=self.origin)
        self.granted_origin = self.origin
        if write and not found.may_save:
            raise builder.BuilderRefused(
                "read_only", "You are a viewer of this workspace: you can look, not save.", 403
            )
        return found

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, builder.BuilderRefused):
            # The builder shows why it was refused; the reason is no secret, so a page on an
            # origin some workspace allows may read it.
            if origin_allowed_anywhere(self.origin):
                self.granted_origin = self.origin
            return Response(error_body(exc.code, exc.message), status=exc.status)
        return super().handle_exception(exc)

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        return response


def _content(session: BuilderSession) -> Editable:
    model = MODEL_OF_KIND[session.kind]
    found = model.objects.filter(workspace=session.workspace, key=session.content_key).first()
    if found is None:
        raise builder.BuilderRefused(
            "unknown_key", f"The {session.kind} {session.content_key!r} no longer exists.", 404
        )
    return found  # type: ignore[return-value]


def _answer(session: BuilderSession) -> dict[str, Any]:
    obj = _content(session)
    milestones: list[dict[str, Any]] = []
    if isinstance(obj, Walkthrough):
        document = walkthrough_document(obj)
        rendered = [step.body_html for step in obj.steps.order_by("position", "id")]
    elif isinstance(obj, Tooltip):
        document = tooltip_document(obj)
        rendered = [obj.body_html]
    elif isinstance(obj, Guide | Banner):
        document = surface_document(obj)
        rendered = [obj.body_html]
    elif isinstance(obj, Survey):
        document = survey_document(obj)
        rendered = []
    else:
        document = progress_bar_document(obj)
        rendered = []
        milestones = [
            {"key": m.key, "name": m.name, "phase": m.phase}
            for m in obj.journey.milestones.order_by("position", "id")
        ]
    return {
        "kind": session.kind,
        "key": session.content_key,
        "may_save": session.may_save,
        "document": document,
        "rendered": rendered,
        "milestones": milestones,
    }


class BuilderSessionView(BuilderView):
    @extend_schema(
        summary="Builder: exchange admin's one-time token for a builder session",
        request=inline_serializer("BuilderToken", {"token": serializers.CharField()}),
        responses={201: _SESSION, **BUILDER_ERRORS},
        tags=["builder"],
    )
    def post(self, request: Request) -> Response:
        body = json_object(request)
        session, token = builder.builder_exchange(token=body.get("token"), origin=self.origin)
        self.granted_origin = self.origin
        return Response(
            {
                "session": token,
                "expires_at": session.expires_at,
                "role": session.role,
                "may_save": session.may_save,
                "workspace": session.workspace.name,
                "theme": session.workspace.theme,
                "kind": session.kind,
                "key": session.content_key,
            },
            status=201,
        )


class BuilderContentView(BuilderView):
    @extend_schema(
        summary="Builder: the draft this builder session edits",
        responses={200: _CONTENT, **BUILDER_ERRORS},
        tags=["builder"],
    )
    def get(self, request: Request) -> Response:
        return Response(_answer(self.session()))

    @extend_schema(
        summary="Builder: save the draft (editors and owners)",
        request=inline_serializer("BuilderDraft", {"document": serializers.DictField()}),
        responses={200: _CONTENT, **BUILDER_ERRORS},
        tags=["builder"],
    )
    def put(self, request: Request) -> Response:
        session = self.session(write=True)
        document = json_object(request).get("document")
        if not isinstance(document, dict):
            raise builder.BuilderRefused(
                "invalid_document", "Send {document: {...}}, the piece as exported.", 400
            )
        if document.get("key") != session.content_key:
            raise builder.BuilderRefused(
                "wrong_key",
                f"This builder edits {session.kind} {session.content_key!r} only.",
                400,
            )
        _content(session)
        try:
            content_import(
                workspace=session.workspace,
                data={"format": FORMAT, SECTION_OF_KIND[session.kind]: [document]},
            )
        except ContentImportError as error:
            return Response(
                error_body(
                    "invalid_content",
                    "Nothing was saved: " + "; ".join(error.errors),
                    error.errors,
                ),
                status=400,
            )
        return Response(_answer(session))


class BuilderPublishView(BuilderView):
    @extend_schema(
        summary="Builder: publish the draft (editors and owners)",
        request=None,
        responses={201: OpenApiTypes.OBJECT, **BUILDER_ERRORS},
        tags=["builder"],
    )
    def post(self, request: Request) -> Response:
        session = self.session(write=True)
        try:
            version = services.content_publish(obj=_content(session), user=session.user)
        except ValidationError as error:
            return Response(
                error_body("not_publishable", " ".join(error.messages), error.messages),
                status=400,
            )
        return Response(
            {"kind": version.kind, "key": version.key, "version": version.version}, status=201
        )


class BuilderMarkdownView(BuilderView):
    @extend_schema(
        summary="Builder: a body rendered as end users will see it (sanitised HTML)",
        request=inline_serializer("BuilderMarkdown", {"markdown": serializers.CharField()}),
        responses={
            200: inline_serializer("BuilderHtml", {"html": serializers.CharField()}),
            **BUILDER_ERRORS,
        },
        tags=["builder"],
    )
    def post(self, request: Request) -> Response:
        self.session()
        markdown = json_object(request).get("markdown")
        if not isinstance(markdown, str) or len(markdown) > MAX_MARKDOWN:
            raise builder.BuilderRefused(
                "invalid_markdown",
                f"Send {{markdown: text}}, at most {MAX_MARKDOWN} characters.",
                400,
            )
        return Response({"html": render_markdown(markdown)})


builder_urlpatterns = [
    path("builder/session", BuilderSessionView.as_view(), name="builder-session"),
    path("builder/content", BuilderContentView.as_view(), name="builder-content"),
    path("builder/content/publish", BuilderPublishView.as_view(), name="builder-publish"),
    path("builder/markdown", BuilderMarkdownView.as_view(), name="builder-markdown"),
]
