"""Request body parsers for every API endpoint (the default in settings.REST_FRAMEWORK)."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def refuse_json_constant(name: str) -> Any:
    """`parse_constant` for json.loads: NaN and Infinity are not JSON and no column takes them."""
    raise ValueError(f"{name} is not JSON")


class StrictJSONParser(JSONParser):
    """JSON as the standard defines it: NaN and Infinity, which no database column takes, are
    refused, and so is nesting deep enough to exhaust the parser (a 400, not a 500)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json.loads(stream.read().decode(encoding), parse_constant=refuse_json_constant)
        except (ValueError, RecursionError, UnicodeDecodeError) as error:
            raise ParseError(f"JSON parse error - {str(error)[:200]}") from None


class PlainTextJSONParser(StrictJSONParser):
    """`navigator.sendBeacon` posts text/plain (no CORS preflight); the body is still JSON."""

    media_type = "text/plain"
