"""`{% milepost_snippet %}`: Milepost's snippet for the page's user.

It loads milepost.js with the publishable key and, for a signed-in user, identifies them with
their traits and signed user hash. Both script tags carry the CSP nonce of django-csp
(`request.csp_nonce`) when the request has one, so a strict nonce policy works; without it
the inline script needs a policy that allows it (or none)."""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from milepost_client import django as milepost

register = template.Library()

# JSON inside <script> must not be able to close the element or start a comment.
_SCRIPT_ESCAPES = {
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    ord("\u2028"): "\\u2028",
    ord("\u2029"): "\\u2029",
}


def _script_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str).translate(_SCRIPT_ESCAPES)


@register.simple_tag(takes_context=True)
def milepost_snippet(context: template.Context) -> SafeString:
    request = context.get("request")
    # django-csp's nonce is lazy and falsy until read; reading it puts it in the header.
    nonce = getattr(request, "csp_nonce", None)
    nonce_attribute = format_html(' nonce="{}"', str(nonce)) if nonce is not None else ""
    url = str(milepost.setting("URL")).rstrip("/")
    loader = format_html(
        '<script async src="{}/static/milepost/milepost.js" data-key="{}"{}></script>',
        url,
        milepost.setting("PUBLISHABLE_KEY"),
        nonce_attribute,
    )
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return loader
    external_id = milepost.user_id(user)
    call = [
        "identify",
        external_id,
        milepost.user_traits(user),
        {"userHash": milepost.user_hash(external_id)},
    ]
    identify = format_html(
        "<script{}>window.milepost=window.milepost||[];milepost.push({});</script>",
        nonce_attribute,
        mark_safe(_script_json(call)),  # noqa: S308 - escaped for a script element above
    )
    return loader + identify
