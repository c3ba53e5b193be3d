"""Additions to the generated OpenAPI schema for what drf-spectacular cannot see: the widget's
server-sent-events stream is a plain async Django view (DRF views are synchronous)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

ERROR_REF = {"$ref": "#/components/schemas/Error"}


def _param(name: str, kind: str, required: bool, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": {"type": kind},
        "description": description,
    }


def add_widget_stream(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    errors = {
        str(code): {
            "description": text,
            "content": {"application/json": {"schema": ERROR_REF}},
        }
        for code, text in [
            (401, "Missing or unknown publishable key"),
            (403, "Origin not allowed or bad user_hash"),
            (404, "User not identified yet"),
        ]
    }
    result.setdefault("paths", {})["/api/v1/widget/stream"] = {
        "get": {
            "operationId": "widget_stream",
            "summary": "Widget: server-sent events carrying the socket's pushes",
            "description": "Events `progress`, `content`, `message` (each with `id` = seq) and "
            "`resync` when pushes were missed since `after` / Last-Event-ID. Ends after 10 "
            "minutes; EventSource reconnects by itself.",
            "tags": ["widget"],
            "parameters": [
                _param("key", "string", True, "Publishable key (pk_…)"),
                _param("user", "string", True, "The end user's id"),
                _param("user_hash", "string", False, "HMAC-SHA256 of the id, when enforced"),
                _param("after", "integer", False, "Last seq seen"),
            ],
            "responses": {
                "200": {
                    "description": "A stream of server-sent events",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                **errors,
            },
        }
    }
    return result


class SecretKeyScheme(OpenApiAuthenticationExtension):
    """Documents `Authorization: Bearer sk_…` as the server API's security scheme."""

    target_class = "onboarding.auth.SecretKeyAuthentication"
    name = "secretKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "sk_…",
            "description": "The workspace's secret key. Server to server only; never in a browser.",
        }
