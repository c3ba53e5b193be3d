"""Authoring writes: workspaces and their keys, publishing and restoring content.

Live users only ever see published versions. Publishing validates the draft (the object and
every child row), stores an immutable snapshot with the next version number, and after commit
tells every connected widget of the workspace that content changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Max
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.text import slugify

from onboarding import queries, realtime, translations, validation
from onboarding.models import (
    Banner,
    EndUser,
    Guide,
    Journey,
    Milestone,
    MilestoneCompletion,
    ProgressBar,
    ProgressBarItem,
    PublishedVersion,
    ResourceItem,
    ResourceSection,
    Segment,
    Step,
    Survey,
    Tooltip,
    Walkthrough,
    Workspace,
)
from onboarding.queries import KIND_OF_MODEL, MODEL_OF_KIND, SURFACE_FIELDS, ContentObject

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    AnyUser = AbstractBaseUser | AnonymousUser | None


# Workspaces ------------------------------------------------------------------------------


def _free_slug(name: str) -> str:
    base = slugify(name)[:50] or "workspace"
    slug, n = base, 1
    while Workspace.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def workspace_create(
    *, name: str, origins: list[str], slug: str | None = None
) -> tuple[Workspace, dict[str, str]]:
    """Create a workspace. Returns it with its keys in clear text: the only time the secret
    key exists outside the caller (only its SHA-256 is stored)."""
    workspace = Workspace(
        name=(name or "").strip(), slug=slug or _free_slug(name), allowed_origins=origins
    )
    keys = workspace.issue_keys()
    workspace.full_clean()
    workspace.save()
    return workspace, keys


@transaction.atomic
def workspace_rotate_keys(*, workspace: Workspace) -> dict[str, str]:
    """Issue new keys; the old publishable key, secret key and identity secret stop working."""
    keys = workspace.issue_keys()
    workspace.save(
        update_fields=["publishable_key", "secret_key_hash", "secret_key_hint", "identity_secret"]
    )
    return keys


# Publishing ------------------------------------------------------------------------------


def _child_errors(label: str, rows: list[models.Model]) -> list[str]:
    problems: list[str] = []
    for index, row in enumerate(rows):
        try:
            row.full_clean()
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                where = f"{label}[{index}]" if field == "__all__" else f"{label}[{index}].{field}"
                problems.extend(f"{where}: {message}" for message in messages)
    return problems


def content_problems(obj: ContentObject) -> list[str]:
    """Everything that stops `obj` from being published, each naming where it is."""
    problems: list[str] = []
    try:
        obj.full_clean()
    except ValidationError as error:
        for field, messages in error.message_dict.items():
            prefix = "" if field == "__all__" else f"{field}: "
            problems.extend(f"{prefix}{message}" for message in messages)
    if isinstance(obj, Journey):
        milestones = list(obj.milestones.order_by("position", "id"))
        if not milestones:
            problems.append("milestones: A journey needs at least one milestone.")
        problems += _child_errors("milestones", list(milestones))
    elif isinstance(obj, Walkthrough):
        steps = list(obj.steps.order_by("position", "id"))
        if not steps:
            problems.append("steps: A walkthrough needs at least one step.")
        problems += _child_errors("steps", list(steps))
    elif isinstance(obj, ProgressBar):
        items = list(obj.items.order_by("milestone__position", "milestone_id"))
        problems += _child_errors("items", list(items))
        if not PublishedVersion.objects.filter(
            kind=PublishedVersion.Kind.JOURNEY, object_id=obj.journey_id
        ).exists():
            problems.append(f"journey: Publish the journey {obj.journey.key!r} first.")
    elif isinstance(obj, ResourceSection):
        problems += _resource_section_problems(obj)
    return problems


def _resource_section_problems(section: ResourceSection) -> list[str]:
    items = list(section.items.select_related("section").order_by("position", "id"))
    problems = _child_errors("items", list(items))
    if not items:
        problems.append("items: A resource section needs at least one item.")
    if len(items) > validation.MAX_RESOURCE_ITEMS:
        problems.append(f"items: At most {validation.MAX_RESOURCE_ITEMS} items in a section.")
    # A checklist or tour shows only once what it names is live.
    for index, item in enumerate(items):
        for kind, target in (
            (PublishedVersion.Kind.PROGRESS_BAR, item.progress_bar_id),
            (PublishedVersion.Kind.WALKTHROUGH, item.walkthrough_id),
        ):
            if (
                target is not None
                and not PublishedVersion.objects.filter(kind=kind, object_id=target).exists()
            ):
                problems.append(
                    f"items[{index}]: Publish the {kind.replace('_', ' ')} it names first."
                )
    return problems


def _publish(obj: ContentObject, user: AnyUser, restored_from: int | None) -> PublishedVersion:
    # Lock the draft row so two publishers of one object get consecutive version numbers.
    locked = type(obj).objects.select_for_update().get(pk=obj.pk)
    problems = content_problems(locked)
    if problems:
        raise ValidationError(problems)
    kind = KIND_OF_MODEL[type(obj)]
    previous = PublishedVersion.objects.filter(kind=kind, object_id=obj.pk).aggregate(
        last=Max("version")
    )["last"]
    version = PublishedVersion.objects.create(
        workspace_id=locked.workspace_id,
        kind=kind,
        object_id=locked.pk,
        key=locked.key,
        version=(previous or 0) + 1,
        snapshot=queries.content_snapshot(locked),
        published_by_id=user.pk if user is not None and user.is_authenticated else None,
        restored_from=restored_from,
    )
    workspace_id = locked.workspace_id
    transaction.on_commit(
        lambda: realtime.push_to_workspace(
            workspace_id=workspace_id, message={"type": "content_changed"}
        )
    )
    return version


@transaction.atomic
def content_publish(*, obj: ContentObject, user: AnyUser = None) -> PublishedVersion:
    """Validate `obj` and its children and store it as the next published version. Raises
    ValidationError listing every problem (e.g. "steps[2].selector: …")."""
    return _publish(obj, user, restored_from=None)


@transaction.atomic
def content_unpublish(*, obj: ContentObject) -> None:
    """Delete a draft object; its published versions stay as history but no longer show."""
    workspace_id = obj.workspace_id
    obj.delete()
    transaction.on_commit(
        lambda: realtime.push_to_workspace(
            workspace_id=workspace_id, message={"type": "content_changed"}
        )
    )


# Restoring -------------------------------------------------------------------------------


def _datetime(value: str | None) -> datetime | None:
    return parse_datetime(value) if value else None


def _by_key(model: type[Any], workspace_id: int, key: str | None, label: str) -> Any:
    if key is None:
        return None
    found = model.objects.filter(workspace_id=workspace_id, key=key).first()
    if found is None:
        raise ValidationError(f"{label} {key!r} no longer exists; recreate it first.")
    return found


def _segment(workspace_id: int, segment_id: int | None) -> Segment | None:
    if segment_id is None:
        return None
    segment = Segment.objects.filter(workspace_id=workspace_id, pk=segment_id).first()
    if segment is None:
        raise ValidationError("The segment this version targeted no longer exists.")
    return segment


def _restore_journey(journey: Journey, snapshot: dict[str, Any]) -> None:
    journey.name = snapshot["name"]
    journey.description = snapshot["description"]
    journey.starts_on = snapshot["starts_on"]
    journey.save(update_fields=["name", "description", "starts_on", "updated_at"])
    keep: set[int] = set()
    for data in snapshot["milestones"]:
        milestone = (
            Milestone.objects.filter(journey=journey, pk=data["id"]).first()
            or Milestone.objects.filter(workspace_id=journey.workspace_id, key=data["key"]).first()
            or Milestone(journey=journey, workspace_id=journey.workspace_id)
        )
        if milestone.pk and milestone.journey_id != journey.pk:
            raise ValidationError(
                f"Milestone key {data['key']!r} now belongs to another journey; rename it first."
            )
        for field in ("key", "name", "description", "phase", "position", "criterion"):
            setattr(milestone, field, data[field])
        milestone.event_name = data["event_name"]
        milestone.min_count = data["min_count"]
        seconds = data["window_seconds"]
        milestone.window = timedelta(seconds=seconds) if seconds is not None else None
        milestone.walkthrough = _by_key(
            Walkthrough, journey.workspace_id, data["walkthrough"], "Walkthrough"
        )
        milestone.counts_toward_pql = data["counts_toward_pql"]
        milestone.event_properties = data.get("event_properties") or {}
        milestone.save()
        keep.add(milestone.pk)
    dropped = journey.milestones.exclude(pk__in=keep)
    reached = MilestoneCompletion.objects.filter(milestone__in=dropped).values_list(
        "milestone__key", flat=True
    )
    if reached:
        raise ValidationError(
            "Restoring would delete milestones end users have reached "
            f"({', '.join(sorted(set(reached)))}); delete them explicitly first."
        )
    dropped.delete()


def _restore_walkthrough(walkthrough: Walkthrough, snapshot: dict[str, Any]) -> None:
    walkthrough.name = snapshot["name"]
    walkthrough.segment = _segment(walkthrough.workspace_id, snapshot["segment_id"])
    for field in ("frequency", "priority", "auto_start"):
        setattr(walkthrough, field, snapshot[field])
    walkthrough.starts_at = _datetime(snapshot["starts_at"])
    walkthrough.ends_at = _datetime(snapshot["ends_at"])
    walkthrough.save()
    keep: set[int] = set()
    for data in snapshot["steps"]:
        step = Step.objects.filter(walkthrough=walkthrough, pk=data["id"]).first() or Step(
            walkthrough=walkthrough
        )
        for field in (
            "position", "page_url_pattern", "selector", "title", "placement", "advance_on",
            "advance_event", "spotlight", "wait_timeout_ms",
        ):  # fmt: skip
            setattr(step, field, data[field])
        # Versions published before the field existed showed a missing target as a modal.
        step.on_target_missing = data.get("on_target_missing", Step.TargetMissing.MODAL)
        step.body_markdown = data.get("body_markdown", data["body_html"])
        step.save()
        keep.add(step.pk)
    walkthrough.steps.exclude(pk__in=keep).delete()


def _restore_tooltip(tooltip: Tooltip, snapshot: dict[str, Any]) -> None:
    for field in (
        "name", "page_url_pattern", "selector", "trigger", "placement", "frequency", "priority",
    ):  # fmt: skip
        setattr(tooltip, field, snapshot[field])
    tooltip.body_markdown = snapshot.get("body_markdown", snapshot["body_html"])
    tooltip.segment = _segment(tooltip.workspace_id, snapshot["segment_id"])
    tooltip.starts_at = _datetime(snapshot["starts_at"])
    tooltip.ends_at = _datetime(snapshot["ends_at"])
    tooltip.save()


def _restore_survey(survey: Survey, snapshot: dict[str, Any]) -> None:
    for field in queries.SURVEY_FIELDS:
        setattr(survey, field, snapshot[field])
    survey.segment = _segment(survey.workspace_id, snapshot["segment_id"])
    survey.starts_at = _datetime(snapshot["starts_at"])
    survey.ends_at = _datetime(snapshot["ends_at"])
    survey.save()


def _restore_surface(obj: Banner | Guide, snapshot: dict[str, Any]) -> None:
    own = ("position", "mode") if isinstance(obj, Banner) else ("selector",)
    for field in (*SURFACE_FIELDS, *own):
        if field not in {"key", "body_html", "segment_id"}:
            setattr(obj, field, snapshot[field])
    obj.segment = _segment(obj.workspace_id, snapshot["segment_id"])
    obj.starts_at = _datetime(snapshot["starts_at"])
    obj.ends_at = _datetime(snapshot["ends_at"])
    obj.save()


def _restore_progress_bar(progress_bar: ProgressBar, snapshot: dict[str, Any]) -> None:
    workspace_id = progress_bar.workspace_id
    for field in ("name", "title", "style", "position", "hide_when_complete", "priority"):
        setattr(progress_bar, field, snapshot[field])
    progress_bar.journey = _by_key(Journey, workspace_id, snapshot["journey"], "Journey")
    progress_bar.segment = _segment(workspace_id, snapshot["segment_id"])
    progress_bar.starts_at = _datetime(snapshot["starts_at"])
    progress_bar.ends_at = _datetime(snapshot["ends_at"])
    progress_bar.save()
    keep: set[int] = set()
    for data in snapshot["items"]:
        milestone = _by_key(Milestone, workspace_id, data["milestone"], "Milestone")
        item, _ = ProgressBarItem.objects.get_or_create(
            progress_bar=progress_bar, milestone=milestone
        )
        item.label = data["label"]
        item.action = data["action"]
        item.walkthrough = _by_key(Walkthrough, workspace_id, data["walkthrough"], "Walkthrough")
        item.url = data["url"]
        item.save()
        keep.add(item.pk)
    progress_bar.items.exclude(pk__in=keep).delete()


def _restore_resource_section(section: ResourceSection, snapshot: dict[str, Any]) -> None:
    workspace_id = section.workspace_id
    for field in ("name", "title", "launcher_label", "position", "page_url_pattern", "priority"):
        setattr(section, field, snapshot[field])
    section.segment = _segment(workspace_id, snapshot["segment_id"])
    section.starts_at = _datetime(snapshot["starts_at"])
    section.ends_at = _datetime(snapshot["ends_at"])
    section.save()
    keep: set[int] = set()
    for position, data in enumerate(snapshot["items"]):
        item = ResourceItem.objects.filter(section=section, key=data["key"]).first()
        item = item or ResourceItem(section=section, key=data["key"])
        for field in queries.RESOURCE_ITEM_FIELDS:
            setattr(item, field, data[field])
        item.position = position
        item.progress_bar = _by_key(ProgressBar, workspace_id, data["progress_bar"], "Progress bar")
        item.walkthrough = _by_key(Walkthrough, workspace_id, data["walkthrough"], "Walkthrough")
        item.published_on = parse_date(data["published_on"]) if data["published_on"] else None
        item.save()
        keep.add(item.pk)
    section.items.exclude(pk__in=keep).delete()


@transaction.atomic
def content_restore(*, version: PublishedVersion, user: AnyUser = None) -> PublishedVersion:
    """Overwrite the draft with an older version's snapshot and publish it as a new version
    (restored_from = the old version number). Refuses, changing nothing, when the draft object
    is gone or restoring would need something that no longer exists."""
    model = MODEL_OF_KIND[version.kind]
    obj = model.objects.select_for_update().filter(pk=version.object_id).first()
    if obj is None:
        raise ValidationError(
            f"The {version.get_kind_display().lower()} {version.key!r} was deleted; "
            "a version of a deleted object cannot be restored."
        )
    snapshot = version.snapshot
    if isinstance(obj, Journey):
        _restore_journey(obj, snapshot)
    elif isinstance(obj, Walkthrough):
        _restore_walkthrough(obj, snapshot)
    elif isinstance(obj, Tooltip):
        _restore_tooltip(obj, snapshot)
    elif isinstance(obj, ResourceSection):
        _restore_resource_section(obj, snapshot)
    elif isinstance(obj, Survey):
        _restore_survey(obj, snapshot)
    elif isinstance(obj, Banner | Guide):
        _restore_surface(obj, snapshot)
    else:
        _restore_progress_bar(obj, snapshot)
    translations.translations_restore(
        workspace_id=obj.workspace_id, kind=version.kind, key=obj.key, snapshot=snapshot
    )
    return _publish(obj, user, restored_from=version.version)


@transaction.atomic
def end_user_lifecycle_stages_set(*, workspace: Workspace, stages: Mapping[int, str]) -> int:
    """Set the lifecycle stage of the workspace's end users (id -> stage), as analytics counts
    them; returns how many changed. One UPDATE per stage, of only the rows that differ."""
    changed = 0
    by_stage: dict[str, list[int]] = {}
    for end_user_id, stage in stages.items():
        by_stage.setdefault(stage, []).append(end_user_id)
    for stage, ids in by_stage.items():
        for start in range(0, len(ids), 10_000):
            changed += (
                EndUser.objects.filter(workspace=workspace, pk__in=ids[start : start + 10_000])
                .exclude(lifecycle_stage=stage)
                .update(lifecycle_stage=stage)
            )
    return changed
