"""Content as code: export a workspace's authored content to JSON and import it back.

The file (format "milepost-content/1") holds segments, journeys, walkthroughs, tooltips,
progress bars, surveys, banners, empty-state guides, resource center sections and experiments
(their definitions; starting, stopping and shipping are actions); pieces refer to each other by
key, list order is the position of milestones, steps, conditions and resource items, and
datetimes are ISO 8601 in UTC.

Import is idempotent by key: a piece whose key exists is updated, a new key is created, a
piece identical to the file is not touched, and pieces absent from the file are left alone.
It runs in one transaction: any error (each named by its path, e.g.
`walkthroughs[0].steps[2].selector`) writes nothing. With `publish`, every piece whose draft
then differs from its published version (or was never published) is published.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from rest_framework import serializers

from onboarding import experiments, queries, services
from onboarding.models import (
    Banner,
    Condition,
    Criterion,
    Experiment,
    Guide,
    Journey,
    JourneyStart,
    Milestone,
    MilestoneCompletion,
    Phase,
    ProgressBar,
    ProgressBarItem,
    ResourceItem,
    ResourceSection,
    Segment,
    Step,
    Survey,
    Tooltip,
    Walkthrough,
    Workspace,
)
from onboarding.validation import (
    MAX_PRESENT_WAIT_MS,
    MAX_RESOURCE_BODY,
    MAX_RESOURCE_ITEMS,
    MAX_SEGMENT_PEOPLE,
)

FORMAT = "milepost-content/1"
SECTIONS = (
    "segments", "journeys", "walkthroughs", "tooltips", "progress_bars", "surveys", "banners",
    "guides", "resource_sections", "experiments",
)  # fmt: skip


class ContentImportError(ValueError):
    """The file cannot be imported; `errors` lists "path: message" lines."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass
class ImportResult:
    changes: list[str] = field(default_factory=list)
    dry_run: bool = False
    # Published anyway, but worth a look (queries.publish_warnings), each naming its piece.
    warnings: list[str] = field(default_factory=list)


# Export ----------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _key(obj: Any) -> str | None:
    return obj.key if obj is not None else None


def segment_document(segment: Segment) -> dict[str, Any]:
    return {
        "key": segment.key,
        "name": segment.name,
        "match": segment.match,
        "conditions": [
            {
                "kind": condition.kind,
                "trait": condition.trait,
                "milestone": _key(condition.milestone),
                "event_name": condition.event_name,
                "operator": condition.operator,
                "value": condition.value,
                **({"people": condition.people} if condition.people else {}),
                **(
                    {"event_properties": condition.event_properties}
                    if condition.event_properties
                    else {}
                ),
            }
            for condition in segment.conditions.select_related("milestone").order_by(
                "position", "id"
            )
        ],
    }


def journey_document(journey: Journey) -> dict[str, Any]:
    return {
        "key": journey.key,
        "name": journey.name,
        "description": journey.description,
        "starts_on": journey.starts_on,
        "milestones": [
            {
                "key": milestone.key,
                "name": milestone.name,
                "description": milestone.description,
                "phase": milestone.phase,
                "criterion": milestone.criterion,
                "event_name": milestone.event_name,
                "min_count": milestone.min_count,
                "window_seconds": (
                    int(milestone.window.total_seconds()) if milestone.window is not None else None
                ),
                "walkthrough": _key(milestone.walkthrough),
                "counts_toward_pql": milestone.counts_toward_pql,
                "event_properties": milestone.event_properties,
            }
            for milestone in journey.milestones.select_related("walkthrough").order_by(
                "position", "id"
            )
        ],
    }


def _trigger(obj: Walkthrough | Tooltip | Survey) -> dict[str, Any]:
    """The element-present trigger: always in a document, so a file shows where it goes."""
    return {"when_present": obj.when_present, "wait_timeout_ms": obj.wait_timeout_ms}


def walkthrough_document(walkthrough: Walkthrough) -> dict[str, Any]:
    return {
        "key": walkthrough.key,
        "name": walkthrough.name,
        "segment": _key(walkthrough.segment),
        "frequency": walkthrough.frequency,
        "priority": walkthrough.priority,
        "auto_start": walkthrough.auto_start,
        **_trigger(walkthrough),
        "starts_at": _iso(walkthrough.starts_at),
        "ends_at": _iso(walkthrough.ends_at),
        "steps": [
            queries.step_fields(step) for step in walkthrough.steps.order_by("position", "id")
        ],
    }


def tooltip_document(tooltip: Tooltip) -> dict[str, Any]:
    return {
        "key": tooltip.key,
        "name": tooltip.name,
        "page_url_pattern": tooltip.page_url_pattern,
        "selector": tooltip.selector,
        "body_markdown": tooltip.body_markdown,
        "trigger": tooltip.trigger,
        "placement": tooltip.placement,
        "segment": _key(tooltip.segment),
        "frequency": tooltip.frequency,
        "priority": tooltip.priority,
        **_trigger(tooltip),
        "starts_at": _iso(tooltip.starts_at),
        "ends_at": _iso(tooltip.ends_at),
    }


def progress_bar_document(progress_bar: ProgressBar) -> dict[str, Any]:
    items = progress_bar.items.select_related("milestone", "walkthrough").order_by(
        "milestone__position", "milestone_id"
    )
    return {
        "key": progress_bar.key,
        "name": progress_bar.name,
        "title": progress_bar.title,
        "journey": progress_bar.journey.key,
        "style": progress_bar.style,
        "position": progress_bar.position,
        "segment": _key(progress_bar.segment),
        "hide_when_complete": progress_bar.hide_when_complete,
        "priority": progress_bar.priority,
        "starts_at": _iso(progress_bar.starts_at),
        "ends_at": _iso(progress_bar.ends_at),
        "items": [
            {
                "milestone": item.milestone.key,
                "label": item.label,
                "action": item.action,
                "walkthrough": _key(item.walkthrough),
                "url": item.url,
            }
            for item in items
        ],
    }


def resource_section_document(section: ResourceSection) -> dict[str, Any]:
    items = section.items.select_related("progress_bar", "walkthrough").order_by("position", "id")
    return {
        "key": section.key,
        "name": section.name,
        "title": section.title,
        "launcher_label": section.launcher_label,
        "position": section.position,
        "page_url_pattern": section.page_url_pattern,
        "segment": _key(section.segment),
        "priority": section.priority,
        "starts_at": _iso(section.starts_at),
        "ends_at": _iso(section.ends_at),
        "items": [
            {
                **{name: getattr(item, name) for name in queries.RESOURCE_ITEM_FIELDS},
                "progress_bar": _key(item.progress_bar),
                "walkthrough": _key(item.walkthrough),
                "published_on": item.published_on.isoformat() if item.published_on else None,
            }
            for item in items
        ],
    }


def survey_document(survey: Survey) -> dict[str, Any]:
    return {
        "key": survey.key,
        **{name: getattr(survey, name) for name in queries.SURVEY_FIELDS},
        **_trigger(survey),
        "segment": _key(survey.segment),
        "starts_at": _iso(survey.starts_at),
        "ends_at": _iso(survey.ends_at),
    }


# Banners and empty-state guides (issue 16, branch `surfaces`).
_SURFACE_DOCUMENT_FIELDS = (
    "key", "name", "page_url_pattern", "when_present", "wait_timeout_ms", "title",
    "body_markdown", "cta_label", "cta_url", "dismissible",
)  # fmt: skip


def surface_document(obj: Banner | Guide) -> dict[str, Any]:
    own = ("position", "mode") if isinstance(obj, Banner) else ("selector",)
    return {
        **{name: getattr(obj, name) for name in (*_SURFACE_DOCUMENT_FIELDS, *own)},
        "segment": _key(obj.segment),
        "frequency": obj.frequency,
        "priority": obj.priority,
        "starts_at": _iso(obj.starts_at),
        "ends_at": _iso(obj.ends_at),
    }


def experiment_document(experiment: Experiment) -> dict[str, Any]:
    return {
        "key": experiment.key,
        "name": experiment.name,
        "content_kind": experiment.content_kind,
        "content_key": experiment.content_key,
        "variants": experiment.variants,
        "segment": _key(experiment.segment),
        "starts_at": _iso(experiment.starts_at),
        "ends_at": _iso(experiment.ends_at),
        "goal_milestone": _key(experiment.goal_milestone),
        "goal_window_seconds": int(experiment.goal_window.total_seconds()),
        "minimum_sample": experiment.minimum_sample,
    }


def content_export(*, workspace: Workspace) -> dict[str, Any]:
    """Every authored piece of the workspace's drafts, ordered by key."""
    return {
        "format": FORMAT,
        "segments": [
            segment_document(s) for s in Segment.objects.filter(workspace=workspace).order_by("key")
        ],
        "journeys": [
            journey_document(j) for j in Journey.objects.filter(workspace=workspace).order_by("key")
        ],
        "walkthroughs": [
            walkthrough_document(w)
            for w in Walkthrough.objects.filter(workspace=workspace)
            .select_related("segment")
            .order_by("key")
        ],
        "tooltips": [
            tooltip_document(t)
            for t in Tooltip.objects.filter(workspace=workspace)
            .select_related("segment")
            .order_by("key")
        ],
        "progress_bars": [
            progress_bar_document(p)
            for p in ProgressBar.objects.filter(workspace=workspace)
            .select_related("journey", "segment")
            .order_by("key")
        ],
        "resource_sections": [
            resource_section_document(r)
            for r in ResourceSection.objects.filter(workspace=workspace)
            .select_related("segment")
            .order_by("key")
        ],
        "surveys": [
            survey_document(s)
            for s in Survey.objects.filter(workspace=workspace)
            .select_related("segment")
            .order_by("key")
        ],
        **{
            section: [
                surface_document(obj)
                for obj in model.objects.filter(workspace=workspace)
                .select_related("segment")
                .order_by("key")
            ]
            for section, model in (("banners", Banner), ("guides", Guide))
        },
        "experiments": [
            experiment_document(e)
            for e in Experiment.objects.filter(workspace=workspace)
            .select_related("segment", "goal_milestone")
            .order_by("key")
        ],
    }


# File structure --------------------------------------------------------------------------


# Longest text accepted where the model's field has no limit of its own.
MAX_TEXT = 100_000


def _text(max_length: int = MAX_TEXT) -> serializers.CharField:
    return serializers.CharField(
        max_length=max_length, allow_blank=True, default="", trim_whitespace=False
    )


def _reference() -> serializers.SlugField:
    return serializers.SlugField(max_length=80, allow_null=True, default=None)


def _choice(choices: Any, default: str) -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=choices, default=default)


def _present_wait() -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_PRESENT_WAIT_MS, default=5000)


def _moment() -> serializers.DateTimeField:
    return serializers.DateTimeField(allow_null=True, default=None)


class _Strict(serializers.Serializer[Any]):
    """Refuses keys it does not know, so a typo is an error rather than a silent drop."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                known = ", ".join(self.fields)
                raise serializers.ValidationError(
                    {name: [f"Unknown field; known fields: {known}."] for name in unknown}
                )
        return super().to_internal_value(data)


class _ConditionFile(_Strict):
    kind = _choice(Condition.Kind.choices, Condition.Kind.TRAIT)
    trait = _text(120)
    milestone = _reference()
    event_name = _text(200)
    operator = serializers.CharField(max_length=20)
    value = _text(500)
    people = serializers.ListField(
        child=serializers.CharField(max_length=255),
        max_length=MAX_SEGMENT_PEOPLE,
        required=False,  # absent unless the condition is a list of people, as exported
    )
    event_properties = serializers.DictField(required=False)  # absent unless set, as exported


class _SegmentFile(_Strict):
    key = serializers.SlugField(max_length=80)
    name = serializers.CharField(max_length=120, trim_whitespace=False)
    match = _choice(Segment.Match.choices, Segment.Match.ALL)
    conditions = _ConditionFile(many=True, default=list)


class _MilestoneFile(_Strict):
    key = serializers.SlugField(max_length=80)
    name = serializers.CharField(max_length=120, trim_whitespace=False)
    description = _text()
    phase = _choice(Phase.choices, Phase.SETUP)
    criterion = _choice(Criterion.choices, Criterion.EVENT)
    event_name = _text(200)
    min_count = serializers.IntegerField(min_value=1, default=1)
    window_seconds = serializers.IntegerField(min_value=1, allow_null=True, default=None)
    walkthrough = _reference()
    counts_toward_pql = serializers.BooleanField(default=False)
    event_properties = serializers.DictField(default=dict)


class _JourneyFile(_Strict):
    key = serializers.SlugField(max_length=80)
    name = serializers.CharField(max_length=120, trim_whitespace=False)
    description = _text()
    starts_on = _choice(JourneyStart.choices, JourneyStart.SIGNUP)
    milestones = _MilestoneFile(many=True, default=list)


class _StepFile(_Strict):
    page_url_pattern = _text(500)
    selector = _text(500)
    title = serializers.CharField(max_length=200, trim_whitespace=False)
    body_markdown = _text()
    placement = _choice(Step.Placement.choices, Step.Placement.AUTO)
    advance_on = _choice(Step.Advance.choices, Step.Advance.NEXT)
    advance_event = _text(200)
    spotlight = serializers.BooleanField(default=False)
    wait_timeout_ms = serializers.IntegerField(min_value=0, max_value=600_000, default=5000)
    on_target_missing = _choice(Step.TargetMissing.choices, Step.TargetMissing.MODAL)


class _WalkthroughFile(_Strict):
    key = serializers.SlugField(max_length=80)
    name = serializers.CharField(max_length=120, trim_whitespace=False)
    segment = _reference()
    frequency = _choice(Walkthrough.Frequency.choices, Walkthrough.Frequency.UNTIL_COMPLETED)
    priority = serializers.IntegerField(default=0)
    auto_start = serializers.BooleanField(default=True)
    when_present = _text(500)
    wait_timeout_ms = _present_wait()
    starts_at = _moment()
    ends_at = _moment()
    steps = _StepFile(many=True, default=list)


class _TooltipFile(_Strict):
    key = serializers.SlugField(max_length=80)
    name = serializers.CharField(max_length=120, trim_whitespace=False)
    page_url_pattern = _text(500)
    selector = serializers.CharField(max_length=500, trim_whitespace=False)
    body_markdown = serializers.CharField(max_length=MAX_TEXT, trim_whitespace=False)
    trigger = _choice(Tooltip.Trigger.choices, Tooltip.Trigger.HOTSPOT)
    placement = _choice(Step.Placement.choices, Step.Placement.AUTO)
    when_present = _text(500)
    wait_timeout_ms = _present_wait()
    segment = _reference()
    frequency = _choice(Walkthrough.Frequency.choices, Walkthrough.Frequency.UNTIL_COMPLETED)
    priority = serializers.IntegerField(default=0)
    starts_at = _moment()
    ends_at = _moment()


class _ItemFile(_Strict):
    milestone = serializers.SlugField(max_length=80)
    # DRF pops declared fields off the class, so these names do not shadow Field.label/style.
    label = _text(120)  # type: ignore[assignment]
    action = _choice(ProgressBarItem.Action.choices, ProgressBarItem.Action.NONE)
    walkthrough = _reference()
    url = _text(500)


class _ProgressBarFile(_Strict):
    key = serializers.SlugField(max_length=80)
    name = serializers.CharField(max_length=120, trim_whitespace=False)
    title = _text(120)
    journey = serializers.SlugField(max_length=80)
    style = _choice(ProgressBar.Style.choices, ProgressBar.Style.CHECKLIST)  # type: ignore[assignment]
    position = _choice(ProgressBar.Position.choices, ProgressBar.Position.BOTTOM_RIGHT)
    segment = _reference()
    hide_when_complete = serializers.BooleanField(default=True)
    priority = serializers.IntegerField(default=0)
    starts_at = _moment()
    ends_at = _moment()
    items = _ItemFile(many=True, default=list)


class _ResourceItemFile(_Strict):
    key = serializers.SlugField(max_length=80)
    kind = _choice(ResourceItem.Kind.choices, ResourceItem.Kind.LINK)
    title = _text(120)
    url = _text(500)
    body_markdown = _text(MAX_RESOURCE_BODY)
    progress_bar = _reference()
    walkthrough = _reference()
    published_on = serializers.DateField(allow_null=True, default=None)


class _ResourceSectionFile(_Strict):
    key = serializers.SlugField(max_length=80)
    name = serializers.CharField(max_length=120, trim_whitespace=False)
    title = serializers.CharField(max_length=120, trim_whitespace=False)
    launcher_label = serializers.CharField(max_length=40, default="Help", trim_whitespace=False)
    position = _choice(ResourceSection.Position.choices, ResourceSection.Position.BOTTOM_RIGHT)
    page_url_pattern = _text(500)
    segment = _reference()
    priority = serializers.IntegerField(default=0)
    starts_at = _moment()
    ends_at = _moment()
    items = _ResourceItemFile(many=True, default=list)


class _SurveyFile(_Strict):
    key = serializers.SlugField(max_length=80)
    name = serializers.CharField(max_length=120, trim_whitespace=False)
    # Checked question by question by the model (onboarding/surveys.py), naming each path.
    questions = serializers.ListField(child=serializers.JSONField(), default=list)
    thank_you = _text(200)
    display = _choice(Survey.Display.choices, Survey.Display.POPOVER)
    position = _choice(Survey.Position.choices, Survey.Position.BOTTOM_RIGHT)
    selector = _text(500)
    page_url_pattern = _text(500)
    when_present = _text(500)
    wait_timeout_ms = _present_wait()
    segment = _reference()
    frequency = _choice(Walkthrough.Frequency.choices, Walkthrough.Frequency.UNTIL_COMPLETED)
    priority = serializers.IntegerField(default=0)
    starts_at = _moment()
    ends_at = _moment()


class _SurfaceFile(_Strict):
    key = serializers.SlugField(max_length=80)
    name = serializers.CharField(max_length=120, trim_whitespace=False)
    page_url_pattern = _text(500)
    when_present = _text(500)
    wait_timeout_ms = _present_wait()
    title = _text(200)
    body_markdown = serializers.CharField(max_length=MAX_TEXT, trim_whitespace=False)
    cta_label = _text(60)
    cta_url = _text(500)
    dismissible = serializers.BooleanField(default=True)
    segment = _reference()
    frequency = _choice(Walkthrough.Frequency.choices, Walkthrough.Frequency.UNTIL_COMPLETED)
    priority = serializers.IntegerField(default=0)
    starts_at = _moment()
    ends_at = _moment()


class _BannerFile(_SurfaceFile):
    position = _choice(Banner.Position.choices, Banner.Position.TOP)
    mode = _choice(Banner.Mode.choices, Banner.Mode.PUSH)


class _GuideFile(_SurfaceFile):
    selector = serializers.CharField(max_length=500, trim_whitespace=False)


class _ExperimentFile(_Strict):
    key = serializers.SlugField(max_length=80)
    name = serializers.CharField(max_length=120, trim_whitespace=False)
    content_kind = serializers.CharField(max_length=20)
    content_key = serializers.SlugField(max_length=80)
    # Checked by Experiment.clean, which names each variant's bad field.
    variants = serializers.JSONField()
    segment = _reference()
    starts_at = _moment()
    ends_at = _moment()
    goal_milestone = _reference()
    goal_window_seconds = serializers.IntegerField(
        default=14 * 86_400, min_value=1, max_value=90 * 86_400
    )
    minimum_sample = serializers.IntegerField(default=100, min_value=1, max_value=10_000_000)


def _duplicates(pieces: list[dict[str, Any]], key: str = "key") -> dict[int, str]:
    seen: set[str] = set()
    found = {}
    for index, piece in enumerate(pieces):
        if piece[key] in seen:
            found[index] = piece[key]
        seen.add(piece[key])
    return found


class _ContentFile(_Strict):
    format = serializers.CharField()
    segments = _SegmentFile(many=True, default=list)
    journeys = _JourneyFile(many=True, default=list)
    walkthroughs = _WalkthroughFile(many=True, default=list)
    tooltips = _TooltipFile(many=True, default=list)
    progress_bars = _ProgressBarFile(many=True, default=list)
    resource_sections = _ResourceSectionFile(many=True, default=list)
    surveys = _SurveyFile(many=True, default=list)
    banners = _BannerFile(many=True, default=list)
    guides = _GuideFile(many=True, default=list)
    experiments = _ExperimentFile(many=True, default=list)

    def validate_format(self, value: str) -> str:
        if value != FORMAT:
            raise serializers.ValidationError(f"Expected {FORMAT!r}, got {value!r}.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, Any] = {}
        for section in SECTIONS:
            for index, key in _duplicates(attrs[section]).items():
                errors[f"{section}[{index}].key"] = [f"Duplicate key {key!r} in {section}."]
        milestones = [
            (j, m, milestone)
            for j, journey in enumerate(attrs["journeys"])
            for m, milestone in enumerate(journey["milestones"])
        ]
        seen: set[str] = set()
        for j, m, milestone in milestones:
            if milestone["key"] in seen:
                errors[f"journeys[{j}].milestones[{m}].key"] = [
                    f"Duplicate milestone key {milestone['key']!r}; keys are unique per workspace."
                ]
            seen.add(milestone["key"])
        for p, bar in enumerate(attrs["progress_bars"]):
            for index, key in _duplicates(bar["items"], "milestone").items():
                errors[f"progress_bars[{p}].items[{index}].milestone"] = [
                    f"Milestone {key!r} already has an item in this progress bar."
                ]
        for r, section in enumerate(attrs["resource_sections"]):
            if len(section["items"]) > MAX_RESOURCE_ITEMS:
                errors[f"resource_sections[{r}].items"] = [
                    f"At most {MAX_RESOURCE_ITEMS} items in a section."
                ]
            for index, key in _duplicates(section["items"]).items():
                errors[f"resource_sections[{r}].items[{index}].key"] = [
                    f"Duplicate item key {key!r} in this section."
                ]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def _flatten(detail: Any, path: str) -> Iterator[str]:
    if isinstance(detail, Mapping):
        for name, value in detail.items():
            if name in {"non_field_errors", "__all__"}:
                yield from _flatten(value, path)
            else:
                yield from _flatten(value, f"{path}.{name}" if path else str(name))
    elif isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            for message in detail:
                yield f"{path or '(file)'}: {message}"
        else:
            for index, item in enumerate(detail):
                yield from _flatten(item, f"{path}[{index}]")
    else:
        yield f"{path or '(file)'}: {detail}"


def _normalise(piece: dict[str, Any]) -> dict[str, Any]:
    """Validated file data in the exact shape the export produces, for comparison."""
    out: dict[str, Any] = {}
    for name, value in piece.items():
        if isinstance(value, datetime):
            out[name] = _iso(value)
        elif isinstance(value, date):
            out[name] = value.isoformat()
        elif isinstance(value, list):
            # Lists of rows (steps, conditions) or of plain values (a condition's people).
            out[name] = [
                _normalise(dict(item)) if isinstance(item, dict) else item for item in value
            ]
        else:
            out[name] = value
    return out


def parse_content(data: Any) -> dict[str, list[dict[str, Any]]]:
    """Check a content file's structure; raises ContentImportError naming every bad path."""
    if not isinstance(data, Mapping):
        raise ContentImportError(["(file): Expected a JSON object with a 'format' key."])
    parsed = _ContentFile(data=data)
    if not parsed.is_valid():
        raise ContentImportError(list(_flatten(parsed.errors, "")))
    return {
        section: [_normalise(dict(p)) for p in parsed.validated_data[section]]
        for section in SECTIONS
    }


# Import ----------------------------------------------------------------------------------

_FILE_NAME_OF_FIELD = {"window": "window_seconds"}


class _Importer:
    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.errors: list[str] = []

    def valid(self, row: models.Model, path: str) -> bool:
        try:
            row.full_clean()
        except ValidationError as error:
            for name, messages in error.message_dict.items():
                name = _FILE_NAME_OF_FIELD.get(name, name)
                where = path if name == "__all__" else f"{path}.{name}"
                self.errors.extend(f"{where}: {message}" for message in messages)
            return False
        return True

    def find(self, model: type[Any], key: str | None, path: str, label: str) -> Any:
        if key is None:
            return None
        found = model.objects.filter(workspace=self.workspace, key=key).first()
        if found is None:
            self.errors.append(f"{path}: No {label} with key {key!r} in the workspace or the file.")
        return found

    def segment(self, data: dict[str, Any], segment: Segment | None) -> Segment:
        segment = segment or Segment(workspace=self.workspace, key=data["key"])
        segment.name = data["name"]
        segment.match = data["match"]
        return segment

    def conditions(self, segment: Segment, data: dict[str, Any], path: str) -> None:
        existing = list(segment.conditions.order_by("position", "id"))
        for index, item in enumerate(data["conditions"]):
            where = f"{path}.conditions[{index}]"
            condition = existing[index] if index < len(existing) else Condition(segment=segment)
            condition.position = index
            for name in ("kind", "trait", "event_name", "operator", "value"):
                setattr(condition, name, item[name])
            condition.people = item.get("people", [])
            condition.event_properties = item.get("event_properties", {})
            condition.milestone = self.find(
                Milestone, item["milestone"], f"{where}.milestone", "milestone"
            )
            if self.valid(condition, where):
                condition.save()
        for surplus in existing[len(data["conditions"]) :]:
            surplus.delete()

    def walkthrough(
        self, data: dict[str, Any], walkthrough: Walkthrough | None, path: str
    ) -> Walkthrough | None:
        walkthrough = walkthrough or Walkthrough(workspace=self.workspace, key=data["key"])
        for name in (
            "name", "frequency", "priority", "auto_start", "when_present", "wait_timeout_ms",
            "starts_at", "ends_at",
        ):  # fmt: skip
            setattr(walkthrough, name, data[name])
        walkthrough.segment = self.find(Segment, data["segment"], f"{path}.segment", "segment")
        if not self.valid(walkthrough, path):
            return None
        walkthrough.save()
        existing = list(walkthrough.steps.order_by("position", "id"))
        for index, item in enumerate(data["steps"]):
            where = f"{path}.steps[{index}]"
            step = existing[index] if index < len(existing) else Step(walkthrough=walkthrough)
            step.position = index
            for name, value in item.items():
                setattr(step, name, value)
            if self.valid(step, where):
                step.save()
        for surplus in existing[len(data["steps"]) :]:
            surplus.delete()
        return walkthrough

    def journey(self, data: dict[str, Any], journey: Journey | None, path: str) -> Journey | None:
        journey = journey or Journey(workspace=self.workspace, key=data["key"])
        for name in ("name", "description", "starts_on"):
            setattr(journey, name, data[name])
        if not self.valid(journey, path):
            return None
        journey.save()
        for index, item in enumerate(data["milestones"]):
            where = f"{path}.milestones[{index}]"
            milestone = Milestone.objects.filter(workspace=self.workspace, key=item["key"]).first()
            if milestone is not None and milestone.journey_id != journey.pk:
                self.errors.append(
                    f"{where}.key: Milestone {item['key']!r} belongs to journey "
                    f"{milestone.journey.key!r}; milestone keys are unique per workspace."
                )
                continue
            milestone = milestone or Milestone(workspace=self.workspace, journey=journey)
            milestone.position = index
            for name in (
                "key", "name", "description", "phase", "criterion", "event_name", "min_count",
                "counts_toward_pql", "event_properties",
            ):  # fmt: skip
                setattr(milestone, name, item[name])
            seconds = item["window_seconds"]
            milestone.window = timedelta(seconds=seconds) if seconds is not None else None
            milestone.walkthrough = self.find(
                Walkthrough, item["walkthrough"], f"{where}.walkthrough", "walkthrough"
            )
            if self.valid(milestone, where):
                milestone.save()
        dropped = journey.milestones.exclude(key__in=[m["key"] for m in data["milestones"]])
        reached = sorted(
            set(
                MilestoneCompletion.objects.filter(milestone__in=dropped).values_list(
                    "milestone__key", flat=True
                )
            )
        )
        if reached:
            self.errors.append(
                f"{path}.milestones: Removing {', '.join(reached)} would delete what end users "
                "reached; delete those milestones in admin first."
            )
        dropped.delete()
        return journey

    def tooltip(self, data: dict[str, Any], tooltip: Tooltip | None, path: str) -> Tooltip | None:
        tooltip = tooltip or Tooltip(workspace=self.workspace, key=data["key"])
        for name, value in data.items():
            if name != "segment":
                setattr(tooltip, name, value)
        tooltip.segment = self.find(Segment, data["segment"], f"{path}.segment", "segment")
        if not self.valid(tooltip, path):
            return None
        tooltip.save()
        return tooltip

    def survey(self, data: dict[str, Any], survey: Survey | None, path: str) -> Survey | None:
        survey = survey or Survey(workspace=self.workspace, key=data["key"])
        for name, value in data.items():
            if name != "segment":
                setattr(survey, name, value)
        survey.segment = self.find(Segment, data["segment"], f"{path}.segment", "segment")
        if not self.valid(survey, path):
            return None
        survey.save()
        return survey

    def surface(
        self, model: type[Banner | Guide], data: dict[str, Any], row: Any, path: str
    ) -> Banner | Guide | None:
        row = row or model(workspace=self.workspace, key=data["key"])
        for name, value in data.items():
            if name != "segment":
                setattr(row, name, value)
        row.segment = self.find(Segment, data["segment"], f"{path}.segment", "segment")
        if not self.valid(row, path):
            return None
        row.save()
        return row

    def progress_bar(
        self, data: dict[str, Any], progress_bar: ProgressBar | None, path: str
    ) -> ProgressBar | None:
        journey = self.find(Journey, data["journey"], f"{path}.journey", "journey")
        if journey is None:
            return None
        progress_bar = progress_bar or ProgressBar(workspace=self.workspace, key=data["key"])
        for name in (
            "name", "title", "style", "position", "hide_when_complete", "priority", "starts_at",
            "ends_at",
        ):  # fmt: skip
            setattr(progress_bar, name, data[name])
        progress_bar.journey = journey
        progress_bar.segment = self.find(Segment, data["segment"], f"{path}.segment", "segment")
        if not self.valid(progress_bar, path):
            return None
        progress_bar.save()
        keep: set[int] = set()
        for index, item in enumerate(data["items"]):
            where = f"{path}.items[{index}]"
            milestone = self.find(Milestone, item["milestone"], f"{where}.milestone", "milestone")
            if milestone is None:
                continue
            row = ProgressBarItem.objects.filter(
                progress_bar=progress_bar, milestone=milestone
            ).first() or ProgressBarItem(progress_bar=progress_bar, milestone=milestone)
            row.label, row.action, row.url = item["label"], item["action"], item["url"]
            row.walkthrough = self.find(
                Walkthrough, item["walkthrough"], f"{where}.walkthrough", "walkthrough"
            )
            if self.valid(row, where):
                row.save()
                keep.add(row.pk)
        progress_bar.items.exclude(pk__in=keep).delete()
        return progress_bar

    def resource_section(
        self, data: dict[str, Any], section: ResourceSection | None, path: str
    ) -> ResourceSection | None:
        section = section or ResourceSection(workspace=self.workspace, key=data["key"])
        for name, value in data.items():
            if name not in {"segment", "items"}:
                setattr(section, name, value)
        section.segment = self.find(Segment, data["segment"], f"{path}.segment", "segment")
        if not self.valid(section, path):
            return None
        section.save()
        keep: set[int] = set()
        for index, item in enumerate(data["items"]):
            where = f"{path}.items[{index}]"
            row = ResourceItem.objects.filter(section=section, key=item["key"]).first()
            row = row or ResourceItem(section=section, key=item["key"])
            for name in (*queries.RESOURCE_ITEM_FIELDS, "published_on"):
                setattr(row, name, item[name])
            row.position = index
            if item["published_on"] is not None:
                row.published_on = date.fromisoformat(item["published_on"])
            row.progress_bar = self.find(
                ProgressBar, item["progress_bar"], f"{where}.progress_bar", "progress bar"
            )
            row.walkthrough = self.find(
                Walkthrough, item["walkthrough"], f"{where}.walkthrough", "walkthrough"
            )
            if self.valid(row, where):
                row.save()
                keep.add(row.pk)
        section.items.exclude(pk__in=keep).delete()
        return section

    def experiment(
        self, data: dict[str, Any], experiment: Experiment | None, path: str
    ) -> Experiment | None:
        experiment = experiment or Experiment(workspace=self.workspace, key=data["key"])
        if experiment.pk is not None and experiment.status != Experiment.Status.DRAFT:
            fixed = ("content_kind", "content_key", "variants")
            if any(getattr(experiment, name) != data[name] for name in fixed):
                self.errors.append(
                    f"{path}.variants: The experiment is {experiment.status}; its content and "
                    "variants are fixed once started (assignments would move people)."
                )
                return None
        for name in (
            "name", "content_kind", "content_key", "variants", "starts_at", "ends_at",
            "minimum_sample",
        ):  # fmt: skip
            setattr(experiment, name, data[name])
        experiment.goal_window = timedelta(seconds=data["goal_window_seconds"])
        experiment.segment = self.find(Segment, data["segment"], f"{path}.segment", "segment")
        experiment.goal_milestone = self.find(
            Milestone, data["goal_milestone"], f"{path}.goal_milestone", "milestone"
        )
        if not self.valid(experiment, path):
            return None
        experiment.save()
        experiments.forget(self.workspace.pk)
        return experiment


_DOCUMENT: dict[str, tuple[type[Any], Callable[[Any], dict[str, Any]], str]] = {
    "segments": (Segment, segment_document, "segment"),
    "journeys": (Journey, journey_document, "journey"),
    "walkthroughs": (Walkthrough, walkthrough_document, "walkthrough"),
    "tooltips": (Tooltip, tooltip_document, "tooltip"),
    "progress_bars": (ProgressBar, progress_bar_document, "progress bar"),
    "surveys": (Survey, survey_document, "survey"),
    "banners": (Banner, surface_document, "banner"),
    "guides": (Guide, surface_document, "guide"),
    "resource_sections": (ResourceSection, resource_section_document, "resource section"),
    "experiments": (Experiment, experiment_document, "experiment"),
}


class _DryRunDone(Exception):
    pass


def content_import(
    *, workspace: Workspace, data: Any, dry_run: bool = False, publish: bool = False
) -> ImportResult:
    """Create or update the file's pieces in `workspace` (see the module docstring). Raises
    ContentImportError, having written nothing, when anything in the file is wrong."""
    content = parse_content(data)
    result = ImportResult(dry_run=dry_run)
    try:
        with transaction.atomic():
            _apply(workspace, content, result, publish=publish)
            if dry_run:
                raise _DryRunDone
    except _DryRunDone:
        pass
    return result


def _apply(
    workspace: Workspace,
    content: dict[str, list[dict[str, Any]]],
    result: ImportResult,
    *,
    publish: bool,
) -> None:
    importer = _Importer(workspace)
    existing: dict[str, dict[str, Any]] = {}
    changed: dict[str, set[str]] = {}
    for section, (model, document, label) in _DOCUMENT.items():
        rows = {row.key: row for row in model.objects.filter(workspace=workspace)}
        existing[section] = rows
        changed[section] = set()
        for piece in content[section]:
            row = rows.get(piece["key"])
            if row is None:
                result.changes.append(f"create {label} {piece['key']!r}")
            elif document(row) != piece:
                result.changes.append(f"update {label} {piece['key']!r}")
            else:
                continue
            changed[section].add(piece["key"])

    def pieces(section: str) -> Iterator[tuple[int, dict[str, Any], Any]]:
        for index, piece in enumerate(content[section]):
            if piece["key"] in changed[section]:
                yield index, piece, existing[section].get(piece["key"])

    # Order follows the references: segments <- walkthroughs <- journeys (milestones) <-
    # segment conditions, tooltips, progress bars.
    segments = {}
    for index, piece, row in pieces("segments"):
        segment = importer.segment(piece, row)
        if importer.valid(segment, f"segments[{index}]"):
            segment.save()
            segments[index] = segment
    for index, piece, row in pieces("walkthroughs"):
        importer.walkthrough(piece, row, f"walkthroughs[{index}]")
    for index, piece, row in pieces("journeys"):
        importer.journey(piece, row, f"journeys[{index}]")
    for index, piece, _ in pieces("segments"):
        if index in segments:
            importer.conditions(segments[index], piece, f"segments[{index}]")
    for index, piece, row in pieces("tooltips"):
        importer.tooltip(piece, row, f"tooltips[{index}]")
    for index, piece, row in pieces("progress_bars"):
        importer.progress_bar(piece, row, f"progress_bars[{index}]")
    for index, piece, row in pieces("surveys"):
        importer.survey(piece, row, f"surveys[{index}]")
    for section, model in (("banners", Banner), ("guides", Guide)):
        for index, piece, row in pieces(section):
            importer.surface(model, piece, row, f"{section}[{index}]")
    for index, piece, row in pieces("resource_sections"):
        importer.resource_section(piece, row, f"resource_sections[{index}]")
    for index, piece, row in pieces("experiments"):
        importer.experiment(piece, row, f"experiments[{index}]")
    if importer.errors:
        raise ContentImportError(importer.errors)
    if publish:
        _publish_changed(workspace, content, result)


def _publish_changed(
    workspace: Workspace, content: dict[str, list[dict[str, Any]]], result: ImportResult
) -> None:
    # Journeys before progress bars: a bar may only show a published journey.
    # Resource sections last: a section may only name a published bar or walkthrough.
    for section in (
        "journeys", "walkthroughs", "tooltips", "progress_bars", "surveys", "banners", "guides",
        "resource_sections",
    ):  # fmt: skip
        model, _, label = _DOCUMENT[section]
        keys = [piece["key"] for piece in content[section]]
        for obj in model.objects.filter(workspace=workspace, key__in=keys).order_by("key"):
            if not queries.draft_differs_from_published(obj=obj):
                continue
            index = keys.index(obj.key)
            warnings = queries.publish_warnings(obj=obj)
            try:
                version = services.content_publish(obj=obj)
            except ValidationError as error:
                raise ContentImportError(
                    [f"{section}[{index}]: cannot publish: {m}" for m in error.messages]
                ) from None
            result.changes.append(f"publish {label} {obj.key!r} as version {version.version}")
            result.warnings += [f"{section}[{index}].{warning}" for warning in warnings]
