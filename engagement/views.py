"""The unsubscribe page linked from every engagement e-mail to an end user."""

from __future__ import annotations

from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from engagement import services


# Mail clients' one-click unsubscribe (RFC 8058) POSTs without a CSRF token; the signed token
# in the URL is what authorises the request.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        signing.loads(token, salt=services.UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return render(request, "engagement/unsubscribe.html", {"state": "invalid"}, status=400)
    if request.method == "GET":
        # Link scanners follow GETs; only a POST (the button, or one-click) unsubscribes.
        return render(request, "engagement/unsubscribe.html", {"state": "confirm"})
    services.end_user_unsubscribe(token=token)
    return render(request, "engagement/unsubscribe.html", {"state": "done"})
