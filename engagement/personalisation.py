"""Safe personalisation of rule messages: a tiny explicit placeholder syntax.

    Hi {{ first_name|default:"there" }}, next up: {{ next_milestone }}.

Only the fields in FIELDS (and `traits.<name>`) exist; anything else between `{{ }}` or any
`{% %}` is refused when the message is saved, so a send can never fail on a template. Values
are escaped for HTML; the body is Markdown rendered through onboarding's sanitiser, and the
values are put in after rendering so a user's trait can never inject markup or links.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils.html import escape

from onboarding.markdown import render_markdown

FIELDS = {
    "first_name": "The end user's first name (trait first_name, else the first word of name).",
    "last_name": "Trait last_name.",
    "name": "Trait name.",
    "email": "Trait email.",
    "company": "Trait company.",
    "plan": "Trait plan.",
    "user_id": "The end user's id in your app.",
    "workspace_name": "Your workspace's name.",
    "journey_name": "The journey the rule is about.",
    "milestone_name": "The milestone the rule is about (just completed, or not yet reached).",
    "next_milestone": "The next milestone of the journey the user has not reached.",
    "progress_percent": "How much of the journey the user has completed, 0-100.",
    "event_name": "The event that triggered the rule.",
    "walkthrough_name": "Missing-target alerts: the walkthrough whose step is flagged.",
    "step_title": "Missing-target alerts: the flagged step's title.",
    "step_number": "Missing-target alerts: the flagged step's number (1 for the first).",
    "selector": "Missing-target alerts: the flagged step's CSS selector.",
    "missing_percent": "Missing-target alerts: for how many of the people who reached the "
    "step (in %) its target was missing.",
}
TRAIT_PREFIX = "traits."
MAX_TEMPLATE_LENGTH = 10_000

_PLACEHOLDER = re.compile(
    r"\{\{\s*(?P<field>[A-Za-z_][\w.-]*)\s*"
    r"(?:\|\s*default\s*:\s*\"(?P<default>[^\"{}]*)\"\s*)?\}\}"
)
_LEFTOVER = re.compile(r"\{\{|\}\}|\{%|%\}")
# Markdown leaves runs of letters and digits alone, so a placeholder survives rendering as this.
_TOKEN = "mpfield{index}x"  # noqa: S105 (a placeholder marker, not a secret)
_TOKEN_PATTERN = re.compile(r"mpfield(\d+)x")


@dataclass(frozen=True)
class Rendered:
    text: str
    html: str


def check_template(source: str) -> None:
    """Raise ValidationError naming the first unknown field or malformed placeholder."""
    if len(source) > MAX_TEMPLATE_LENGTH:
        raise ValidationError(f"Keep it under {MAX_TEMPLATE_LENGTH} characters.")
    for match in _PLACEHOLDER.finditer(source):
        field = match["field"]
        if field.startswith(TRAIT_PREFIX) and len(field) > len(TRAIT_PREFIX):
            continue
        if field not in FIELDS:
            raise ValidationError(
                f"Unknown field {{{{ {field} }}}}; known fields: {', '.join(FIELDS)}, "
                "or traits.<name>.",
                code="unknown_field",
            )
    leftover = _LEFTOVER.search(_PLACEHOLDER.sub("", source))
    if leftover:
        raise ValidationError(
            f"{leftover.group()!r} does not start a placeholder; write {{{{ field }}}} or "
            '{{ field|default:"fallback" }}.',
            code="bad_placeholder",
        )


def _value(field: str, default: str | None, context: Mapping[str, object]) -> str:
    if field.startswith(TRAIT_PREFIX):
        traits = context.get("traits")
        value = traits.get(field[len(TRAIT_PREFIX) :]) if isinstance(traits, Mapping) else None
    else:
        value = context.get(field)
    if value is None or value == "":
        return default or ""
    return str(value)


def render_text(source: str, context: Mapping[str, object]) -> str:
    """Plain text (subjects, e-mail text parts, webhook payloads): values as they are."""
    return _PLACEHOLDER.sub(lambda m: _value(m["field"], m["default"], context), source)


def render_markdown_body(source: str, context: Mapping[str, object]) -> Rendered:
    """The body as text (placeholders filled into the Markdown source) and as sanitised HTML
    (Markdown rendered first with opaque tokens, then escaped values put in)."""
    values: list[str] = []

    def tokenise(match: re.Match[str]) -> str:
        values.append(_value(match["field"], match["default"], context))
        return _TOKEN.format(index=len(values) - 1)

    html = render_markdown(_PLACEHOLDER.sub(tokenise, source))
    html = _TOKEN_PATTERN.sub(
        lambda m: escape(values[int(m[1])]) if int(m[1]) < len(values) else m[0], html
    )
    return Rendered(text=render_text(source, context), html=html)
