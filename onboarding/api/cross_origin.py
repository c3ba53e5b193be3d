"""Views that pages of other origins call from the browser (the widget's endpoints, the
builder's): CORS is granted only to an origin the view has checked, never echoed blindly."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from onboarding.auth import origin_allowed_anywhere


def cors(response: HttpResponseBase, granted_origin: str | None) -> Any:
    response["Vary"] = "Origin"
    if granted_origin:
        response["Access-Control-Allow-Origin"] = granted_origin
        # Without this the widget's own fetch cannot read how long a 429 or 503 asks it to wait.
        response["Access-Control-Expose-Headers"] = "Retry-After"
    return response


class CrossOriginView(APIView):
    """A view keyed by what the request carries (a key, a session), not by a login. A subclass
    sets `granted_origin` once it has checked the Origin against the workspace; a preflight is
    granted to an origin that some workspace allows (it carries no key to say which)."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    granted_origin: str | None = None
    preflight_methods = "GET, POST, OPTIONS"
    preflight_headers = "Content-Type"
    preflight_max_age = 86400

    @property
    def origin(self) -> str | None:
        return self.request.headers.get("Origin")

    def options(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Response:
        if origin_allowed_anywhere(self.origin):
            self.granted_origin = self.origin
        response = Response(status=204)
        response["Access-Control-Allow-Methods"] = self.preflight_methods
        response["Access-Control-Allow-Headers"] = self.preflight_headers
        response["Access-Control-Max-Age"] = str(self.preflight_max_age)
        return response

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        return cors(response, self.granted_origin)
