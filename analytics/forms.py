"""The dashboards' inputs as people use them: journeys and walkthroughs picked by name, event
names suggested from those recorded (with counts), date ranges with presets and a default, a
funnel builder. Each form turns its answers into the report's API input (analytics/reports.py
parses that), and puts the report's errors back on the field a person filled in.

A form is bound to the page's query string merged over its defaults, so a dashboard opens with
an answer and its whole state lives in its URL."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any, ClassVar

from django import forms
from django.core.cache import cache
from django.forms.utils import flatatt
from django.http import QueryDict
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from analytics import store
from analytics.inputs import MAX_ADOPTION_FEATURES, MAX_FUNNEL_STEPS
from onboarding.models import Experiment, Journey, Milestone, Walkthrough, Workspace

DEFAULT_DAYS = 30
PRESET_DAYS = (7, 30, 90)
# Suggested event names come from this much recent history: one indexed range scan.
SUGGESTION_DAYS = 90
SUGGESTION_LIMIT = 200
SUGGESTION_CACHE_SECONDS = 300
TIME_ZONES = sorted(zoneinfo.available_timezones() - {"localtime"})
WINDOW_UNITS = {"minutes": 60, "hours": 3600, "days": 86400}


@dataclass(frozen=True)
class EventName:
    name: str
    count: int


_RECORDED = """
    SELECT name, count() AS times FROM events
    WHERE workspace_id = {workspace:UInt64} AND timestamp >= {since:DateTime64(3, 'UTC')}
    GROUP BY name ORDER BY times DESC, name LIMIT {limit:UInt32}
"""


def recorded_events(workspace: Workspace) -> list[EventName]:
    """Event names recorded in the workspace lately, the most frequent first. Counted in the
    analytics store (a GROUP BY over the primary database's events took ~0.6 s at the demo's
    size) and kept for SUGGESTION_CACHE_SECONDS: suggestions may miss a name recorded in the
    last few minutes, which the input still accepts typed."""
    # created_at too: a test database (or a restored one) hands out the same ids again.
    key = f"analytics:recorded-events:{workspace.pk}:{workspace.created_at.timestamp()}"
    cached = cache.get(key)
    if cached is not None:
        return [EventName(name, count) for name, count in cached]
    since = timezone.now() - timedelta(days=SUGGESTION_DAYS)
    try:
        rows = store.rows(
            _RECORDED, {"workspace": workspace.pk, "since": since, "limit": SUGGESTION_LIMIT}
        )
    except store.StoreUnavailable:
        return []  # no suggestions; the report itself says the store is unavailable
    found = [(str(name), int(count)) for name, count in rows]
    cache.set(key, found, SUGGESTION_CACHE_SECONDS)
    return [EventName(name, count) for name, count in found]


@lru_cache(maxsize=1)
def _zone_options() -> dict[str, str]:
    return {zone: f'<option value="{escape(zone)}">{escape(zone)}</option>' for zone in TIME_ZONES}


class TimeZoneSelect(forms.Select):
    """The ~600 IANA zones as one <select>, its options written once per process: Django's
    template per option took most of a dashboard's render time (about 0.3 s a page here)."""

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        chosen = str(value[0] if isinstance(value, list | tuple) and value else value or "")
        options = _zone_options()
        html = "".join(
            f'<option value="{escape(zone)}" selected>{escape(zone)}</option>'
            if zone == chosen
            else option
            for zone, option in options.items()
        )
        final = self.build_attrs(self.attrs, {**(attrs or {}), "name": name})
        return format_html("<select{}>{}</select>", flatatt(final), mark_safe(html))  # noqa: S308 - escaped above


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self) -> None:
        super().__init__(format="%Y-%m-%d")


class ReportForm(forms.Form):
    """Base of the dashboards' forms; subclasses name their report and map its input."""

    slug: ClassVar[str]
    has_dates: ClassVar[bool] = True
    # Where the report's error keys (the API's field names) land in this form.
    error_fields: ClassVar[dict[str, str]] = {}

    date_from = forms.DateField(label="From", widget=DateInput())
    date_to = forms.DateField(label="To", widget=DateInput())
    timezone = forms.ChoiceField(
        label="Time zone",
        choices=[(name, name) for name in TIME_ZONES],
        initial="UTC",
        widget=TimeZoneSelect,
    )

    def __init__(self, query: QueryDict, *, workspace: Workspace, today: date) -> None:
        self.workspace = workspace
        self.today = today
        self.events = recorded_events(workspace)
        data = query.copy()
        for name, value in self.defaults().items():
            if name not in data:
                if isinstance(value, list):
                    data.setlist(name, value)
                else:
                    data[name] = value
        self.query = data
        super().__init__(data)
        if not self.has_dates:
            for name in ("date_from", "date_to", "timezone"):
                del self.fields[name]

    def event_options(self) -> SafeString:
        """The recorded event names as a <datalist>'s options (up to SUGGESTION_LIMIT of them,
        written here: a template loop per option cost more than the report on small data)."""
        return mark_safe(  # noqa: S308 - names escaped here
            "".join(
                f'<option value="{escape(event.name)}">{escape(event.name)} '
                f"({event.count} in {SUGGESTION_DAYS} days)</option>"
                for event in self.events
            )
        )

    def defaults(self) -> dict[str, Any]:
        return {
            "date_from": (self.today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(),
            "date_to": self.today.isoformat(),
            "timezone": self.workspace.time_zone,
        }

    def presets(self) -> list[tuple[str, str]]:
        """(label, query string) of the date presets, keeping every other input."""
        links = []
        for days in PRESET_DAYS:
            query = self.query.copy()
            query["date_from"] = (self.today - timedelta(days=days - 1)).isoformat()
            query["date_to"] = self.today.isoformat()
            links.append((f"Last {days} days", query.urlencode()))
        return links

    def report_input(self) -> dict[str, Any]:
        """The report's API input from the cleaned answers."""
        data = self.cleaned_data
        if not self.has_dates:
            return {}
        return {
            "date_from": data["date_from"].isoformat(),
            "date_to": data["date_to"].isoformat(),
            "timezone": data["timezone"],
        }

    def add_report_errors(self, detail: Any) -> None:
        """Put the report's errors (DRF's nested detail) on the fields they concern."""
        for path, message in flatten_errors(detail):
            field = self.field_for(path)
            label = _step_prefix(path)
            self.add_error(field, f"{label}{message}")

    def field_for(self, path: str) -> str | None:
        for prefix, field in self.error_fields.items():
            if path == prefix or path.startswith((f"{prefix}.", f"{prefix}[")):
                return field
        head = re.split(r"[.\[]", path, maxsplit=1)[0]
        return head if head in self.fields else None


def flatten_errors(detail: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = path if key == "non_field_errors" else (f"{path}.{key}" if path else key)
            yield from flatten_errors(value, name)
    elif isinstance(detail, list) and detail and all(isinstance(x, str) for x in detail):
        for message in detail:
            yield path, str(message)
    elif isinstance(detail, list):
        for index, item in enumerate(detail):
            if item:
                yield from flatten_errors(item, f"{path}[{index}]")
    else:
        yield path, str(detail)


def _step_prefix(path: str) -> str:
    match = re.match(r"steps\[(\d+)\]", path)
    return f"Step {int(match.group(1)) + 1}: " if match else ""


def _journeys(workspace: Workspace) -> Any:
    return Journey.objects.filter(workspace=workspace).order_by("name")


class ByNameChoiceField(forms.ModelChoiceField):
    """A journey or walkthrough picked by its name; its key travels in the URL."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(queryset=Journey.objects.none(), to_field_name="key", **kwargs)

    def label_from_instance(self, obj: Any) -> str:
        return str(obj.name)


class JourneyFunnelForm(ReportForm):
    slug = "journey-funnel"
    journey = ByNameChoiceField(label="Journey", empty_label=None)
    breakdown = forms.ChoiceField(
        label="Break down by",
        required=False,
        choices=[
            ("", "nothing"),
            ("lifecycle", "lifecycle stage"),
            ("trait", "a trait of the person"),
            ("segment", "membership of a segment"),
        ],
    )
    breakdown_value = forms.CharField(
        label="Trait or segment key", required=False, help_text="e.g. plan, or a segment's key"
    )

    def __init__(self, query: QueryDict, **kwargs: Any) -> None:
        super().__init__(query, **kwargs)
        journey_field(self)

    def defaults(self) -> dict[str, Any]:
        first = _journeys(self.workspace).first()
        return {**super().defaults(), **({"journey": first.key} if first else {})}

    def report_input(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            **super().report_input(),
            "journey": data["journey"].key,
            **({"breakdown": data["breakdown"]} if data["breakdown"] else {}),
            **({"breakdown_value": data["breakdown_value"]} if data["breakdown_value"] else {}),
        }


def journey_field(form: ReportForm) -> None:
    field = form.fields["journey"]
    assert isinstance(field, forms.ModelChoiceField)  # noqa: S101 - declared just above
    field.queryset = _journeys(form.workspace)


class VelocityForm(JourneyFunnelForm):
    slug = "velocity"
    horizon_days = forms.IntegerField(
        label="Still on the way for (days)",
        min_value=1,
        max_value=365,
        help_text="People whose journey started this recently, without the milestone yet, "
        "are on the way rather than lost.",
    )

    def __init__(self, query: QueryDict, **kwargs: Any) -> None:
        super().__init__(query, **kwargs)
        del self.fields["breakdown"], self.fields["breakdown_value"]

    def defaults(self) -> dict[str, Any]:
        return {**super().defaults(), "horizon_days": "14"}

    def report_input(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            **ReportForm.report_input(self),
            "journey": data["journey"].key,
            "horizon_days": data["horizon_days"],
        }


class WalkthroughFunnelForm(ReportForm):
    slug = "walkthrough-funnel"
    walkthrough = ByNameChoiceField(label="Walkthrough", empty_label=None)

    def __init__(self, query: QueryDict, **kwargs: Any) -> None:
        super().__init__(query, **kwargs)
        field = self.fields["walkthrough"]
        assert isinstance(field, forms.ModelChoiceField)  # noqa: S101 - declared just above
        field.queryset = Walkthrough.objects.filter(workspace=self.workspace).order_by("name")

    def defaults(self) -> dict[str, Any]:
        first = Walkthrough.objects.filter(workspace=self.workspace).order_by("name").first()
        return {**super().defaults(), **({"walkthrough": first.key} if first else {})}

    def report_input(self) -> dict[str, Any]:
        return {**super().report_input(), "walkthrough": self.cleaned_data["walkthrough"].key}


class EventFunnelForm(ReportForm):
    """The funnel builder: steps (added, removed and reordered in the page), the order, the
    conversion window as a number and a unit, one exclusion and a breakdown, in words."""

    slug = "funnel"
    step = forms.CharField(label="Steps", required=False)
    order = forms.ChoiceField(
        label="Steps happen",
        choices=[
            ("ordered", "in this order, other events may come between"),
            ("strict", "in this order, nothing else between"),
            ("unordered", "in any order"),
        ],
    )
    window = forms.IntegerField(label="Within", min_value=1)
    window_unit = forms.ChoiceField(label="Unit", choices=[(unit, unit) for unit in WINDOW_UNITS])
    exclusion = forms.CharField(
        label="Leave out people who did", required=False, help_text="an event name"
    )
    exclusion_from = forms.IntegerField(label="between step", required=False, min_value=1)
    exclusion_to = forms.IntegerField(label="and step", required=False, min_value=1)
    breakdown = forms.CharField(
        label="Break down by", required=False, help_text="a property name, e.g. plan"
    )
    breakdown_kind = forms.ChoiceField(
        label="of the",
        choices=[("person", "person (a trait)"), ("event", "event")],
    )
    # Which step's event gives a person their value (an event property only), as the API's
    # `breakdown.attribution`; "step" reads the step named in `breakdown_step`.
    breakdown_attribution = forms.ChoiceField(
        label="taken at",
        choices=[
            ("first_touch", "the first step"),
            ("last_touch", "the last step reached"),
            ("all_steps", "every step (the same value all along)"),
            ("step", "the step numbered below"),
        ],
        help_text="for an event property",
    )
    breakdown_step = forms.IntegerField(
        label="Step number",
        required=False,
        min_value=1,
        help_text='when taken at "the step numbered below"',
    )
    interval = forms.ChoiceField(label="Over time by", choices=[("day", "day"), ("week", "week")])

    error_fields: ClassVar[dict[str, str]] = {
        "steps": "step",
        "window_seconds": "window",
        "exclusions": "exclusion",
        "breakdown": "breakdown",
        "breakdown.attribution": "breakdown_attribution",
        "breakdown.step": "breakdown_step",
    }

    def defaults(self) -> dict[str, Any]:
        names = [
            m.event_name
            for journey in _journeys(self.workspace)[:1]
            for m in journey.milestones.order_by("position")
            if m.event_name
        ]
        if len(names) < 2:
            names = [event.name for event in self.events[:2]]
        return {
            **super().defaults(),
            "step": names,
            "order": "ordered",
            "window": "14",
            "window_unit": "days",
            "breakdown_kind": "person",
            "breakdown_attribution": "first_touch",
            "interval": "day",
        }

    @property
    def steps(self) -> list[str]:
        return [name.strip() for name in self.query.getlist("step") if name.strip()]

    def step_rows(self) -> list[str]:
        """The steps to show in the builder: at least two rows to fill in."""
        steps = self.steps
        return steps + [""] * max(0, 2 - len(steps))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not 2 <= len(self.steps) <= MAX_FUNNEL_STEPS:
            self.add_error("step", f"A funnel has 2 to {MAX_FUNNEL_STEPS} steps.")
        if cleaned.get("exclusion") and not (
            cleaned.get("exclusion_from") and cleaned.get("exclusion_to")
        ):
            self.add_error("exclusion", "Say between which steps the exclusion counts.")
        if (
            cleaned.get("breakdown")
            and cleaned.get("breakdown_kind") == "event"
            and cleaned.get("breakdown_attribution") == "step"
            and not cleaned.get("breakdown_step")
        ):
            self.add_error("breakdown_step", "Say at which step the property is read.")
        elif cleaned.get("breakdown_step") and cleaned["breakdown_step"] > len(self.steps):
            self.add_error("breakdown_step", f"Name a step from 1 to {len(self.steps)}.")
        return cleaned

    def report_input(self) -> dict[str, Any]:
        data = self.cleaned_data
        spec: dict[str, Any] = {
            **super().report_input(),
            "steps": [{"event": name} for name in self.steps],
            "order": data["order"],
            "window_seconds": data["window"] * WINDOW_UNITS[data["window_unit"]],
            "interval": data["interval"],
            "exclusions": [],
        }
        if data.get("exclusion"):
            spec["exclusions"] = [
                {
                    "event": data["exclusion"],
                    "from_step": data["exclusion_from"] - 1,
                    "to_step": data["exclusion_to"] - 1,
                }
            ]
        if data.get("breakdown"):
            spec["breakdown"] = {"kind": data["breakdown_kind"], "property": data["breakdown"]}
            if data["breakdown_kind"] == "event":
                spec["breakdown"]["attribution"] = data["breakdown_attribution"]
                if data["breakdown_attribution"] == "step":
                    spec["breakdown"]["step"] = data["breakdown_step"] - 1
        return spec


class RetentionForm(ReportForm):
    slug = "retention"
    period = forms.ChoiceField(
        label="Cohorts by", choices=[("day", "day"), ("week", "week"), ("month", "month")]
    )
    periods = forms.IntegerField(label="Periods shown", min_value=1)
    mode = forms.ChoiceField(
        label="Came back",
        choices=[("on", "in that period"), ("on_or_after", "in that period or later")],
    )
    cohort_type = forms.ChoiceField(
        label="Cohorts are",
        choices=[
            ("first_time", "people doing it for the first time (each person once)"),
            ("recurring", "everyone doing it in the period (a person in many cohorts)"),
        ],
        help_text="Recurring cohorts cannot start with a journey (a journey starts once).",
    )
    journey = ByNameChoiceField(
        label="Cohort starts with", required=False, empty_label="their first event"
    )
    cohort_event = forms.CharField(
        label="or first doing", required=False, help_text="an event name; empty: any event"
    )
    return_event = forms.CharField(
        label="Coming back means doing", required=False, help_text="empty: any event"
    )

    def __init__(self, query: QueryDict, **kwargs: Any) -> None:
        super().__init__(query, **kwargs)
        journey_field(self)

    def defaults(self) -> dict[str, Any]:
        return {
            **super().defaults(),
            "period": "week",
            "periods": "8",
            "mode": "on",
            "cohort_type": "first_time",
        }

    def report_input(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            **super().report_input(),
            "period": data["period"],
            "periods": data["periods"],
            "mode": data["mode"],
            "cohort_type": data["cohort_type"],
            **({"journey": data["journey"].key} if data["journey"] else {}),
            **({"cohort_event": data["cohort_event"]} if data["cohort_event"] else {}),
            **({"return_event": data["return_event"]} if data["return_event"] else {}),
        }


class LifecycleForm(ReportForm):
    slug = "lifecycle"
    period = forms.ChoiceField(
        label="Over time by", choices=[("day", "day"), ("week", "week"), ("month", "month")]
    )
    activity_event = forms.CharField(
        label="Active means doing", required=False, help_text="an event name; empty: any event"
    )

    def defaults(self) -> dict[str, Any]:
        return {
            **super().defaults(),
            "date_from": (self.today - timedelta(days=89)).isoformat(),
            "period": "week",
        }

    def report_input(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            **super().report_input(),
            "period": data["period"],
            **({"activity_event": data["activity_event"]} if data["activity_event"] else {}),
        }


class PqlForm(ReportForm):
    slug = "pqls"
    journey = ByNameChoiceField(label="Journey", required=False, empty_label="every journey")
    period_days = forms.IntegerField(label="Engagement over (days)", min_value=1)
    min_score = forms.IntegerField(label="Minimum score", min_value=0)
    search = forms.CharField(label="Person", required=False, help_text="part of their id")

    def __init__(self, query: QueryDict, **kwargs: Any) -> None:
        super().__init__(query, **kwargs)
        journey_field(self)

    def defaults(self) -> dict[str, Any]:
        return {**super().defaults(), "period_days": "30", "min_score": "0"}

    def report_input(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            **super().report_input(),
            "period_days": data["period_days"],
            "min_score": data["min_score"],
            "search": data["search"],
            **({"journey": data["journey"].key} if data["journey"] else {}),
        }


class AdoptionForm(ReportForm):
    slug = "adoption"
    features = forms.MultipleChoiceField(
        label="Features (events)",
        widget=forms.CheckboxSelectMultiple,
        help_text=f"Up to {MAX_ADOPTION_FEATURES}.",
    )

    def __init__(self, query: QueryDict, **kwargs: Any) -> None:
        super().__init__(query, **kwargs)
        field = self.fields["features"]
        assert isinstance(field, forms.MultipleChoiceField)  # noqa: S101 - declared above
        field.choices = [
            (event.name, f"{event.name} ({event.count:,})")
            for event in self.events
            if not event.name.startswith("$")
        ][:40]

    def defaults(self) -> dict[str, Any]:
        product = [event.name for event in self.events if not event.name.startswith("$")]
        return {**super().defaults(), "features": product[:3]}

    def clean_features(self) -> list[str]:
        features: list[str] = self.cleaned_data["features"]
        if len(features) > MAX_ADOPTION_FEATURES:
            raise forms.ValidationError(f"Choose at most {MAX_ADOPTION_FEATURES} features.")
        return features

    def report_input(self) -> dict[str, Any]:
        return {**super().report_input(), "features": ",".join(self.cleaned_data["features"])}


class PaiForm(ReportForm):
    slug = "pai"
    key_event = forms.CharField(label="Key event", help_text="the action that should predict")
    window_days = forms.IntegerField(label="Done within (days of signup)", min_value=0)
    retention_day = forms.IntegerField(label="Retained on or after day", min_value=1)
    max_threshold = forms.IntegerField(label="Try thresholds up to", min_value=1)
    return_event = forms.CharField(
        label="Retained means doing", required=False, help_text="empty: any event"
    )

    def defaults(self) -> dict[str, Any]:
        product = [event.name for event in self.events if not event.name.startswith("$")]
        return {
            **super().defaults(),
            "date_from": (self.today - timedelta(days=89)).isoformat(),
            **({"key_event": product[0]} if product else {}),
            "window_days": "7",
            "retention_day": "21",
            "max_threshold": "10",
        }

    def report_input(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            **super().report_input(),
            "key_event": data["key_event"],
            "window_days": data["window_days"],
            "retention_day": data["retention_day"],
            "max_threshold": data["max_threshold"],
            **({"return_event": data["return_event"]} if data["return_event"] else {}),
        }


class ExperimentForm(ReportForm):
    slug = "experiment"
    has_dates = False
    experiment = forms.ModelChoiceField(
        label="Experiment", queryset=Experiment.objects.none(), to_field_name="key"
    )
    goal = forms.ChoiceField(
        label="Goal",
        choices=[
            ("milestone", "a milestone reached (and how fast)"),
            ("funnel", "a funnel converted"),
            ("retention", "came back and did an event"),
        ],
    )
    milestone = forms.ModelChoiceField(
        label="Milestone",
        queryset=Milestone.objects.none(),
        to_field_name="key",
        required=False,
        help_text="empty: the experiment's goal",
    )
    window_days = forms.IntegerField(
        label="Within (days of exposure)",
        min_value=1,
        required=False,
        help_text="empty: the experiment's window",
    )
    steps = forms.CharField(
        label="Funnel steps", required=False, help_text="events, comma-separated"
    )
    event = forms.CharField(label="Returning event", required=False)
    day = forms.IntegerField(label="From day", min_value=0, initial=1, required=False)

    def __init__(self, query: QueryDict, **kwargs: Any) -> None:
        super().__init__(query, **kwargs)
        experiment = self.fields["experiment"]
        milestone = self.fields["milestone"]
        assert isinstance(experiment, forms.ModelChoiceField)  # noqa: S101 - declared above
        assert isinstance(milestone, forms.ModelChoiceField)  # noqa: S101 - declared above
        experiment.queryset = Experiment.objects.filter(workspace=self.workspace).order_by("name")
        milestone.queryset = Milestone.objects.filter(workspace=self.workspace).order_by("name")

    def defaults(self) -> dict[str, Any]:
        first = Experiment.objects.filter(workspace=self.workspace).order_by("name").first()
        return {"goal": "milestone", "day": "1", **({"experiment": first.key} if first else {})}

    def report_input(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "experiment": data["experiment"].key,
            "goal": data["goal"],
            "milestone": data["milestone"].key if data["milestone"] else None,
            "window_days": data["window_days"],
            "steps": data["steps"],
            "event": data["event"],
            "day": data["day"] if data["day"] is not None else 1,
        }


FORMS: dict[str, type[ReportForm]] = {
    form.slug: form
    for form in (
        JourneyFunnelForm,
        VelocityForm,
        WalkthroughFunnelForm,
        EventFunnelForm,
        RetentionForm,
        LifecycleForm,
        PqlForm,
        AdoptionForm,
        PaiForm,
        ExperimentForm,
    )
}
# Inputs whose values are event names get the recorded names as suggestions.
EVENT_INPUTS = {
    "step", "exclusion", "cohort_event", "return_event", "key_event", "activity_event", "event",
}  # fmt: skip
