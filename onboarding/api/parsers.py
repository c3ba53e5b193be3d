"""Request body parsers for every API endpoint (the default in settings.REST_FRAMEWORK)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from onboarding import json_values


class JsonRefusedError(ParseError):
    """A 400 whose code says why (`malformed_json`, `number_out_of_range`) and, when one value
    is the cause, which field holds it."""

    def __init__(self, refusal: json_values.JsonRefused) -> None:
        super().__init__(refusal.message, refusal.code)
        self.field = refusal.field


class StrictJSONParser(JSONParser):
    """JSON as the standard defines it (`json_values.loads`): NaN, Infinity, numbers beyond a
    double and nesting deep enough to exhaust the parser are a 400, not a 500."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json_values.loads(stream.read().decode(encoding))
        except UnicodeDecodeError as error:
            raise ParseError(f"JSON parse error - {str(error)[:200]}") from None
        except json_values.JsonRefused as refusal:
            raise JsonRefusedError(refusal) from None


class PlainTextJSONParser(StrictJSONParser):
    """`navigator.sendBeacon` posts text/plain (no CORS preflight); the body is still JSON."""

    media_type = "text/plain"
