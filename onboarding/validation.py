"""Checks shared by model forms, the import command and the API. Each raises a
ValidationError whose message names what is wrong and how to fix it."""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from onboarding.selector_syntax import selector_problem

if TYPE_CHECKING:
    from onboarding.models import Condition

# Resource center limits (README "Resource center"): an item's markdown body, and the items of
# one section (the panel is a list, not a knowledge base).
MAX_RESOURCE_BODY = 2000
MAX_RESOURCE_ITEMS = 50

TRAIT_OPERATORS = {
    "eq": "equals",
    "neq": "does not equal",
    "contains": "contains",
    "not_contains": "does not contain",
    "gt": "greater than",
    "gte": "at least",
    "lt": "less than",
    "lte": "at most",
    "in": "one of (comma-separated)",
    "exists": "is set",
    "not_exists": "is not set",
}
MILESTONE_OPERATORS = {"completed": "completed", "not_completed": "not completed"}
LIFECYCLE_OPERATORS = {"is": "is", "is_not": "is not"}
EVENT_OPERATORS = {"performed": "performed at least once", "not_performed": "never performed"}
PEOPLE_OPERATORS = {"is_one_of": "is one of them", "is_not_one_of": "is none of them"}
OPERATORS_BY_KIND = {
    "trait": TRAIT_OPERATORS,
    "milestone": MILESTONE_OPERATORS,
    "lifecycle": LIFECYCLE_OPERATORS,
    "event": EVENT_OPERATORS,
    "people": PEOPLE_OPERATORS,
}
NUMERIC_OPERATORS = {"gt", "gte", "lt", "lte"}
VALUELESS_OPERATORS = {
    "exists", "not_exists", "completed", "not_completed", "performed", "not_performed",
    "is_one_of", "is_not_one_of",
}  # fmt: skip
# A list-of-people condition holds its people by external id in the row itself: bounded so a
# segment stays one small read (a bigger audience is better said with traits or events).
MAX_SEGMENT_PEOPLE = 10_000

THEME_COLOURS = {"primary_color", "text_color", "background_color"}
THEME_KEYS = THEME_COLOURS | {"font_family", "radius_px"}
_HEX_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_URL_PATTERN = re.compile(r"^/[^\s]*$")


MAX_PRESENT_WAIT_MS = 60_000


def check_selector(selector: str, *, required: bool = False) -> None:
    if not selector:
        if required:
            raise ValidationError("A CSS selector is required here.")
        return
    # Browsers refuse what this refuses: a selector that passed here never throws in the
    # widget's querySelector (tests/browser/test_selector_syntax.py holds Chromium to it).
    problem = selector_problem(selector)
    if problem is not None:
        raise ValidationError(
            f"{selector!r} is not a CSS selector browsers accept: {problem}.",
            code="invalid_selector",
        )


def check_url_pattern(pattern: str) -> None:
    if pattern and not _URL_PATTERN.match(pattern):
        raise ValidationError(
            f"{pattern!r} is not a path pattern; write a path such as /campaigns/* "
            "(start with /, no spaces, * matches any run of characters).",
            code="invalid_url_pattern",
        )


def check_link(url: str) -> None:
    # Browsers drop tabs and newlines inside URLs and read a backslash as a slash, so
    # "/\\evil.example" or "java\tscript:" would lead elsewhere than they look.
    if "\\" in url or any(ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise ValidationError(f"{url!r} holds a backslash or a control character.")
    if url.startswith("/") and not url.startswith("//"):
        return
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValidationError(f"{url!r} is not an http(s) URL or a path starting with /.")


MAX_EVENT_PROPERTY_FILTERS = 10


def event_properties_problem(value: Any) -> str | None:
    """What is wrong with an {"property": value} equality filter on events, if anything."""
    if not isinstance(value, dict):
        return 'A JSON object of property: value, e.g. {"band": "promoter"}.'
    if len(value) > MAX_EVENT_PROPERTY_FILTERS:
        return f"At most {MAX_EVENT_PROPERTY_FILTERS} properties."
    for name, expected in value.items():
        if not name or len(name) > 120:
            return "Each property name is 1 to 120 characters."
        if isinstance(expected, dict | list) or expected is None:
            return f"{name!r}: compare with a text, number or true/false (not a list or object)."
    return None


def check_schedule(starts_at: datetime | None, ends_at: datetime | None) -> None:
    if starts_at and ends_at and ends_at <= starts_at:
        raise ValidationError({"ends_at": ["The end must come after the start."]})


def check_same_workspace(owner: Any, **related: Any) -> None:
    """Refuse a reference to another workspace's row (admin choices are scoped too; this
    guards forms, imports and the API alike)."""
    errors = {
        field: [f"{value} belongs to another workspace."]
        for field, value in related.items()
        if value is not None and value.workspace_id != owner.workspace_id
    }
    if errors:
        raise ValidationError(errors)


def clean_origins(origins: Any) -> list[str]:
    if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
        raise ValidationError('Write the origins as a JSON list of strings: ["https://app.x.com"].')
    cleaned = []
    for origin in origins:
        parts = urlsplit(origin.strip())
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValidationError(f"{origin!r} is not an origin such as https://app.example.com.")
        if parts.path not in {"", "/"} or parts.query or parts.fragment:
            raise ValidationError(f"{origin!r} has a path; an origin is scheme://host[:port] only.")
        cleaned.append(f"{parts.scheme}://{parts.netloc}".lower())
    return sorted(set(cleaned))


def clean_theme(theme: Any) -> dict[str, Any]:
    if not isinstance(theme, dict):
        raise ValidationError('Write the theme as a JSON object: {"primary_color": "#4f46e5"}.')
    unknown = sorted(set(theme) - THEME_KEYS)
    if unknown:
        raise ValidationError(
            f"Unknown theme keys: {', '.join(unknown)}; known: {', '.join(sorted(THEME_KEYS))}."
        )
    for key in THEME_COLOURS & set(theme):
        if not isinstance(theme[key], str) or not _HEX_COLOUR.match(theme[key]):
            raise ValidationError(f"{key} must be a hex colour such as #4f46e5.")
    if "radius_px" in theme and (
        not isinstance(theme["radius_px"], int) or not 0 <= theme["radius_px"] <= 32
    ):
        raise ValidationError("radius_px must be a whole number from 0 to 32.")
    if "font_family" in theme and (
        not isinstance(theme["font_family"], str) or re.search(r"[;{}<>]", theme["font_family"])
    ):
        raise ValidationError("font_family must be a plain font list such as 'Inter, sans-serif'.")
    return theme


def check_condition(condition: Condition) -> None:
    from onboarding.models import LifecycleStage

    operators = OPERATORS_BY_KIND.get(condition.kind)
    if operators is None:
        raise ValidationError({"kind": [f"Unknown condition kind {condition.kind!r}."]})
    if condition.operator not in operators:
        raise ValidationError(
            {
                "operator": [
                    f"Unknown operator {condition.operator!r} for a {condition.kind} condition; "
                    f"choose one of: {', '.join(operators)}."
                ]
            }
        )
    errors: dict[str, list[str]] = {}
    if condition.kind == "trait" and not condition.trait:
        errors["trait"] = ["Name the trait this condition looks at."]
    if condition.kind == "event" and not condition.event_name:
        errors["event_name"] = ["Name the event this condition looks at."]
    if condition.kind == "milestone" and condition.milestone_id is None:
        errors["milestone"] = ["Choose the milestone this condition looks at."]
    if condition.operator not in VALUELESS_OPERATORS and condition.value == "":
        errors["value"] = [f"The operator {condition.operator!r} needs a value."]
    if condition.operator in NUMERIC_OPERATORS and condition.value:
        try:
            float(condition.value)
        except ValueError:
            errors["value"] = [f"{condition.value!r} is not a number."]
    if condition.kind == "people":
        people = condition.people
        if not isinstance(people, list) or not people:
            errors["people"] = ["List at least one person's external id."]
        elif len(people) > MAX_SEGMENT_PEOPLE:
            errors["people"] = [
                f"At most {MAX_SEGMENT_PEOPLE:,} people in a list; this one has {len(people):,}."
            ]
        elif not all(isinstance(p, str) and 0 < len(p) <= 255 for p in people):
            errors["people"] = ["Each person is an external id: text of 1 to 255 characters."]
    elif condition.people:
        errors["people"] = ["Only a list-of-people rule holds people."]
    if condition.event_properties and condition.kind != "event":
        errors["event_properties"] = ["Only an event rule filters on properties."]
    problem = event_properties_problem(condition.event_properties)
    if problem:
        errors["event_properties"] = [problem]
    if condition.kind == "lifecycle" and condition.value not in LifecycleStage.values:
        errors["value"] = [
            f"{condition.value!r} is not a lifecycle stage; "
            f"choose one of: {', '.join(LifecycleStage.values)}."
        ]
    if errors:
        raise ValidationError(errors)


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones() - {"localtime"})


def check_time_zone(name: str) -> None:
    if name not in _time_zones():
        raise ValidationError(
            f"{name!r} is not an IANA time zone; write it as Region/City, e.g. Europe/Paris or UTC."
        )


# A BCP 47 language tag as browsers and translators write them: language, then optional
# script, region and variants (en, pt-BR, zh-Hant-TW, sr-Latn, es-419).
LOCALE_TAG = re.compile(
    r"[a-z]{2,3}(-[a-z]{4})?(-([a-z]{2}|[0-9]{3}))?(-([a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*",
    re.IGNORECASE,
)


def check_locale(tag: str) -> None:
    if not isinstance(tag, str) or len(tag) > 35 or not LOCALE_TAG.fullmatch(tag):
        raise ValidationError(
            f"{tag!r} is not a language tag; write it as BCP 47, e.g. fr, pt-BR or zh-Hant."
        )
