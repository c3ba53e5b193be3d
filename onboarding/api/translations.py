"""Authoring API for translations, with the secret key (`Authorization: Bearer sk_…`).

- `GET /api/v1/translations`: what is untranslated, per piece of content and language.
- `GET /api/v1/translations/{locale}?format=po|csv|json`: every translatable text of the drafts
  with its translation in `locale`, as a file for translators (default: po).
- `PUT /api/v1/translations/{locale}?format=po|csv|json`: import such a file (the body);
  idempotent, all or nothing: errors answer 400 naming each line or index and field.
Publishing a piece of content puts its translations live.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from onboarding import translation_files, translations
from onboarding.api.errors import error_body
from onboarding.api.views import ERRORS, PayloadTooLarge, ServerView

_FORMAT = OpenApiParameter(
    "format",
    str,
    enum=list(translation_files.FORMATS),
    description="po (default), xliff (1.2), csv or json",
)
_RESULT = inline_serializer(
    "TranslationImportResult",
    {
        "locale": serializers.CharField(),
        "created": serializers.IntegerField(),
        "updated": serializers.IntegerField(),
        "unchanged": serializers.IntegerField(),
        "skipped_empty": serializers.IntegerField(),
    },
)
_STATUS = inline_serializer(
    "TranslationStatus",
    {
        "default_locale": serializers.CharField(),
        "locale_trait": serializers.CharField(),
        "items": serializers.ListField(child=serializers.DictField()),
    },
)


def _invalid(error: ValidationError) -> Response:
    """A 400 whose `fields` name each problem's place: `line 4`, `translations[2]`, `locale`."""
    fields: dict[str, list[str]] = {}
    if hasattr(error, "error_dict"):
        fields = error.message_dict
    else:
        for line in error.messages:
            where, found, message = line.partition(": ")
            fields.setdefault(where if found else "file", []).append(message if found else line)
    return Response(
        error_body(
            "invalid_translations", "Nothing was imported; every problem is listed.", fields
        ),
        status=status.HTTP_400_BAD_REQUEST,
    )


class _JsonAnswers(DefaultContentNegotiation):
    """Answers (and errors) in JSON whatever `?format=` says: here it names the file format,
    not one of DRF's renderers (which would answer an unknown one 404)."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class TranslationStatusView(ServerView):
    @extend_schema(
        summary="What is untranslated, per piece of content and language",
        operation_id="translations_status",
        parameters=[OpenApiParameter("locale", str, description="Also list this language.")],
        responses={200: _STATUS, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        workspace = self.workspace
        tags = translations.workspace_locales(workspace=workspace)
        extra = translations.normalise(request.query_params.get("locale"))
        if extra and extra not in tags and extra != workspace.default_locale:
            tags.append(extra)
        items = translations.translation_status(workspace=workspace, locales=tags)
        return Response(
            {
                "default_locale": workspace.default_locale,
                "locale_trait": workspace.locale_trait,
                "items": [
                    {
                        "kind": item.kind,
                        "key": item.key,
                        "locale": item.locale,
                        "total": item.total,
                        "translated": item.translated,
                        "missing": list(item.missing),
                        "outdated": list(item.outdated),
                    }
                    for item in items
                ],
            }
        )


class TranslationFileView(ServerView):
    content_negotiation_class = _JsonAnswers

    @extend_schema(
        summary="Export translatable texts and their translations in one language",
        operation_id="translations_export",
        parameters=[_FORMAT],
        responses={(200, "text/plain"): OpenApiTypes.STR, **ERRORS},
    )
    def get(self, request: Request, locale: str) -> HttpResponse | Response:
        fmt = request.query_params.get("format", "po")
        try:
            body = translation_files.export(workspace=self.workspace, locale=locale, fmt=fmt)
        except ValidationError as error:
            return _invalid(error)
        response = HttpResponse(body, content_type=f"{translation_files.CONTENT_TYPES[fmt]}")
        response["Content-Disposition"] = (
            f'attachment; filename="{self.workspace.slug}-{locale}.{fmt}"'
        )
        return response

    @extend_schema(
        summary="Import a translation file in one language (idempotent, all or nothing)",
        operation_id="translations_import",
        parameters=[_FORMAT],
        request={"text/plain": OpenApiTypes.STR},
        responses={200: _RESULT, **ERRORS},
    )
    def put(self, request: Request, locale: str) -> Response:
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and int(length) > translation_files.MAX_FILE_BYTES:
            raise PayloadTooLarge(
                f"The file is {length} bytes; the limit is {translation_files.MAX_FILE_BYTES}."
            )
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            return _invalid(ValidationError({"file": ["The file is not UTF-8 text."]}))
        try:
            result = translation_files.translations_import(
                workspace=self.workspace,
                text=text,
                fmt=request.query_params.get("format", "po"),
                locale=locale,
            )
        except ValidationError as error:
            return _invalid(error)
        return Response(result.as_dict())


translation_urlpatterns = [
    path("translations", TranslationStatusView.as_view(), name="translations"),
    path("translations/<str:locale>", TranslationFileView.as_view(), name="translations-file"),
]
