"""Engagement's admin inputs as people think of them: a delay as a number and a unit (not
`1 00:00:00`), an event filter as rows of property and value (not raw JSON)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from django import forms
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from engagement.models import FrequencyCap, Rule

UNITS = (("seconds", 1), ("minutes", 60), ("hours", 3600), ("days", 86400), ("weeks", 604800))
UNIT_SECONDS = dict(UNITS)
MAX_DURATION = timedelta(days=3650)
_NUMBER = re.compile(r"^-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?$")
EMPTY_FILTER_ROWS = 3


class DurationWidget(forms.MultiWidget):
    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(
            [
                forms.NumberInput(attrs={"min": 1, "step": 1, "class": "vIntegerField"}),
                forms.Select(choices=[(unit, unit) for unit, _ in UNITS]),
            ],
            attrs,
        )

    def decompress(self, value: Any) -> list[Any]:
        if not isinstance(value, timedelta):
            return [None, "days"]
        seconds = int(value.total_seconds())
        for unit, size in reversed(UNITS):
            if seconds % size == 0:
                return [seconds // size, unit]
        return [seconds, "seconds"]


class DurationInUnitsField(forms.MultiValueField):
    """A positive duration as a whole number of seconds, minutes, hours, days or weeks."""

    widget = DurationWidget

    def __init__(self, *, required: bool = True, **kwargs: Any) -> None:
        kwargs.pop("max_length", None)
        super().__init__(
            fields=(
                forms.IntegerField(
                    required=False,  # empty is no delay (or "required" from compress)
                    min_value=1,
                    error_messages={
                        "invalid": "Enter a whole number.",
                        "min_value": "The number must be at least 1.",
                    },
                ),
                forms.ChoiceField(required=False, choices=[(unit, unit) for unit, _ in UNITS]),
            ),
            require_all_fields=False,
            required=required,
            **kwargs,
        )

    def compress(self, data_list: list[Any]) -> timedelta | None:
        if not data_list or data_list[0] in (None, ""):
            if self.required:
                raise forms.ValidationError("Enter a number and a unit.", code="required")
            return None
        number, unit = data_list
        if unit not in UNIT_SECONDS:
            raise forms.ValidationError("Choose a unit.", code="invalid")
        seconds = int(number) * UNIT_SECONDS[unit]
        if seconds > MAX_DURATION.total_seconds():
            raise forms.ValidationError("Keep it under ten years.", code="max_value")
        return timedelta(seconds=seconds)


def _value_text(value: Any) -> str:
    """How a filter value reads in its input: true / false and numbers as they are; text that
    would read as one of those is quoted, so it stays text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    text = str(value)
    if text in ("true", "false") or _NUMBER.match(text) or text.startswith('"'):
        return json.dumps(text)
    return text


def parse_filter_value(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    if _NUMBER.match(text):
        return json.loads(text)
    if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
        try:
            return str(json.loads(text))
        except ValueError:
            return text[1:-1]
    return text


class EventFiltersWidget(forms.Widget):
    """Rows of (property, value): the ones saved and a few empty ones to fill in."""

    def value_from_datadict(self, data: Any, files: Any, name: str) -> list[tuple[str, str]]:
        keys = data.getlist(f"{name}_property") if hasattr(data, "getlist") else []
        values = data.getlist(f"{name}_value") if hasattr(data, "getlist") else []
        return list(zip(keys, values, strict=False))

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        if isinstance(value, dict):
            rows = [(str(k), _value_text(v)) for k, v in value.items()]
        elif isinstance(value, list):
            rows = [(str(k), str(v)) for k, v in value]
        else:
            rows = []
        rows = [*rows, *[("", "")] * EMPTY_FILTER_ROWS]
        body = format_html_join(
            "",
            '<tr><td><input name="{}_property" value="{}" aria-label="Property {}" '
            'class="vTextField" maxlength="100"></td><td>equals</td>'
            '<td><input name="{}_value" value="{}" aria-label="Value {}" class="vTextField">'
            "</td></tr>",
            ((name, key, i + 1, name, text, i + 1) for i, (key, text) in enumerate(rows)),
        )
        return format_html(
            '<table class="event-filters" id="{}"><thead><tr><th>Property</th><th></th>'
            "<th>Value</th></tr></thead><tbody>{}</tbody></table>",
            (attrs or {}).get("id", f"id_{name}"),
            body,
        )


class EventFiltersField(forms.Field):
    """The properties an event must have, e.g. plan equals pro, seats equals 3."""

    widget = EventFiltersWidget

    def __init__(self, **kwargs: Any) -> None:
        for name in ("encoder", "decoder", "max_length"):
            kwargs.pop(name, None)
        kwargs["required"] = False
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        return value

    def to_python(self, value: Any) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        filters: dict[str, Any] = {}
        for number, (key, text) in enumerate(value or [], start=1):
            key, text = key.strip(), text.strip()
            if not key and not text:
                continue
            if not key:
                raise forms.ValidationError(f"Row {number}: name the property the value is for.")
            if key in filters:
                raise forms.ValidationError(f"Row {number}: {key!r} is filtered twice.")
            filters[key] = parse_filter_value(text)
        return filters

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return self.to_python(data) != (initial or {})
        except forms.ValidationError:
            return True


class RuleForm(forms.ModelForm):
    delay = DurationInUnitsField(
        required=False,
        help_text="Inaction and time triggers: how long, e.g. 10 days or 12 hours.",
    )
    event_properties = EventFiltersField(
        label="Event filters",
        help_text="Event trigger only: the event must have each property with this value. "
        'true, false and numbers match as such; write "3" in quotes to match the text 3.',
    )

    class Meta:
        model = Rule
        fields = [
            "workspace", "name", "key", "is_paused", "segment", "trigger", "journey",
            "milestone", "event_name", "event_properties", "delay", "counted_from", "trait",
            "threshold", "once_per_user", "message", "send_in_app", "send_email", "email_to",
            "webhook",
        ]  # fmt: skip


class FrequencyCapForm(forms.ModelForm):
    period = DurationInUnitsField(help_text="e.g. 1 day, or 12 hours.")

    class Meta:
        model = FrequencyCap
        fields = ["workspace", "channel", "limit", "period"]
