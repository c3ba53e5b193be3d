"""Reads of onboarding's data: querysets and plain snapshots, no writes."""

from __future__ import annotations

import functools
import operator
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce
from typing import TYPE_CHECKING, Any

from django.db import connection, models
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from onboarding import translations
from onboarding.models import (
    Banner,
    ElementPresentTrigger,
    Event,
    Guide,
    Journey,
    ProgressBar,
    PublishedVersion,
    ResourceSection,
    Step,
    Survey,
    Tooltip,
    Walkthrough,
    Workspace,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


def workspaces_for_user(*, user: User | AnonymousUser) -> QuerySet[Workspace]:
    """The workspaces a Django user may see in admin: all for a superuser, else their own."""
    if not user.is_authenticated or not user.is_active:
        return Workspace.objects.none()
    if user.is_superuser:
        return Workspace.objects.all()
    return Workspace.objects.filter(members__user_id=user.pk).distinct()


# Published content -----------------------------------------------------------------------

ContentObject = (
    Journey | Walkthrough | Tooltip | ProgressBar | Survey | Banner | Guide | ResourceSection
)

KIND_OF_MODEL: dict[type[models.Model], str] = {
    Journey: PublishedVersion.Kind.JOURNEY,
    Walkthrough: PublishedVersion.Kind.WALKTHROUGH,
    Tooltip: PublishedVersion.Kind.TOOLTIP,
    ProgressBar: PublishedVersion.Kind.PROGRESS_BAR,
    ResourceSection: PublishedVersion.Kind.RESOURCE_SECTION,
    Survey: PublishedVersion.Kind.SURVEY,
    Banner: PublishedVersion.Kind.BANNER,
    Guide: PublishedVersion.Kind.GUIDE,
}
MODEL_OF_KIND: dict[str, type[ContentObject]] = {
    PublishedVersion.Kind.JOURNEY: Journey,
    PublishedVersion.Kind.WALKTHROUGH: Walkthrough,
    PublishedVersion.Kind.TOOLTIP: Tooltip,
    PublishedVersion.Kind.PROGRESS_BAR: ProgressBar,
    PublishedVersion.Kind.RESOURCE_SECTION: ResourceSection,
    PublishedVersion.Kind.SURVEY: Survey,
    PublishedVersion.Kind.BANNER: Banner,
    PublishedVersion.Kind.GUIDE: Guide,
}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def journey_snapshot(journey: Journey) -> dict[str, Any]:
    milestones = journey.milestones.select_related("walkthrough").order_by("position", "id")
    return {
        "id": journey.pk,
        "key": journey.key,
        "name": journey.name,
        "description": journey.description,
        "starts_on": journey.starts_on,
        "milestones": [
            {
                "id": milestone.pk,
                "key": milestone.key,
                "name": milestone.name,
                "description": milestone.description,
                "phase": milestone.phase,
                "position": milestone.position,
                "criterion": milestone.criterion,
                "event_name": milestone.event_name,
                "min_count": milestone.min_count,
                "window_seconds": (
                    int(milestone.window.total_seconds()) if milestone.window is not None else None
                ),
                "walkthrough": milestone.walkthrough.key if milestone.walkthrough else None,
                "counts_toward_pql": milestone.counts_toward_pql,
                "event_properties": milestone.event_properties,
            }
            for milestone in milestones
        ],
    }


# What an author writes for a step: the content-as-code document has exactly these, and a
# published snapshot adds the step's id, position and rendered HTML.
STEP_FIELDS = (
    "page_url_pattern", "selector", "title", "body_markdown", "placement", "advance_on",
    "advance_event", "spotlight", "wait_timeout_ms", "on_target_missing",
)  # fmt: skip


def step_fields(step: Step) -> dict[str, Any]:
    return {name: getattr(step, name) for name in STEP_FIELDS}


def trigger_fields(obj: ElementPresentTrigger) -> dict[str, Any]:
    """The element-present trigger, only when set: versions published before it existed (and
    content without one) keep equal snapshots, so nothing reads as changed (engagement's
    messages carry it in their deliveries the same way)."""
    if not obj.when_present:
        return {}
    return {"when_present": obj.when_present, "wait_timeout_ms": obj.wait_timeout_ms}


def walkthrough_snapshot(walkthrough: Walkthrough) -> dict[str, Any]:
    # body_markdown rides along (beyond the contract's fields) so a restore brings back the
    # source text the author edits, not only the rendered HTML.
    return {
        "id": walkthrough.pk,
        "key": walkthrough.key,
        "name": walkthrough.name,
        "segment_id": walkthrough.segment_id,
        "frequency": walkthrough.frequency,
        "priority": walkthrough.priority,
        "auto_start": walkthrough.auto_start,
        **trigger_fields(walkthrough),
        "starts_at": _iso(walkthrough.starts_at),
        "ends_at": _iso(walkthrough.ends_at),
        "steps": [
            {
                "id": step.pk,
                "position": step.position,
                "body_html": step.body_html,
                **step_fields(step),
            }
            for step in walkthrough.steps.order_by("position", "id")
        ],
    }


def tooltip_snapshot(tooltip: Tooltip) -> dict[str, Any]:
    return {
        "id": tooltip.pk,
        "key": tooltip.key,
        "name": tooltip.name,
        "page_url_pattern": tooltip.page_url_pattern,
        "selector": tooltip.selector,
        "body_html": tooltip.body_html,
        "body_markdown": tooltip.body_markdown,
        "trigger": tooltip.trigger,
        "placement": tooltip.placement,
        "segment_id": tooltip.segment_id,
        "frequency": tooltip.frequency,
        "priority": tooltip.priority,
        **trigger_fields(tooltip),
        "starts_at": _iso(tooltip.starts_at),
        "ends_at": _iso(tooltip.ends_at),
    }


def progress_bar_snapshot(progress_bar: ProgressBar) -> dict[str, Any]:
    items = progress_bar.items.select_related("milestone", "walkthrough").order_by(
        "milestone__position", "milestone_id"
    )
    return {
        "id": progress_bar.pk,
        "key": progress_bar.key,
        "name": progress_bar.name,
        "title": progress_bar.title,
        "journey": progress_bar.journey.key,
        "journey_id": progress_bar.journey_id,
        "style": progress_bar.style,
        "position": progress_bar.position,
        "segment_id": progress_bar.segment_id,
        "hide_when_complete": progress_bar.hide_when_complete,
        "priority": progress_bar.priority,
        "starts_at": _iso(progress_bar.starts_at),
        "ends_at": _iso(progress_bar.ends_at),
        "items": [
            {
                "milestone": item.milestone.key,
                "milestone_id": item.milestone_id,
                "label": item.label,
                "action": item.action,
                "walkthrough": item.walkthrough.key if item.walkthrough else None,
                "url": item.url,
            }
            for item in items
        ],
    }


# What an author writes for a resource item: the content-as-code document has exactly these
# (with the progress bar and walkthrough by key); a snapshot adds the rendered HTML.
RESOURCE_ITEM_FIELDS = ("key", "kind", "title", "url", "body_markdown")


def resource_section_snapshot(section: ResourceSection) -> dict[str, Any]:
    items = section.items.select_related("progress_bar__journey", "walkthrough").order_by(
        "position", "id"
    )
    return {
        "id": section.pk,
        "key": section.key,
        "name": section.name,
        "title": section.title,
        "launcher_label": section.launcher_label,
        "position": section.position,
        "page_url_pattern": section.page_url_pattern,
        "segment_id": section.segment_id,
        "priority": section.priority,
        "starts_at": _iso(section.starts_at),
        "ends_at": _iso(section.ends_at),
        "items": [
            {
                **{name: getattr(item, name) for name in RESOURCE_ITEM_FIELDS},
                "body_html": item.body_html,
                "progress_bar": item.progress_bar.key if item.progress_bar else None,
                # The checklist's journey and milestones, so the widget shows its progress
                # from the user's journeys (welcome.journeys and progress pushes).
                "journey": item.progress_bar.journey.key if item.progress_bar else None,
                "checklist_title": (
                    item.progress_bar.title or item.progress_bar.name if item.progress_bar else None
                ),
                "walkthrough": item.walkthrough.key if item.walkthrough else None,
                "walkthrough_name": item.walkthrough.name if item.walkthrough else None,
                "published_on": item.published_on.isoformat() if item.published_on else None,
            }
            for item in items
        ],
    }


# Fields a survey's snapshot and its content-as-code document share.
SURVEY_FIELDS = (
    "name", "questions", "thank_you", "display", "position", "selector", "page_url_pattern",
    "frequency", "priority",
)  # fmt: skip


def survey_snapshot(survey: Survey) -> dict[str, Any]:
    return {
        "id": survey.pk,
        "key": survey.key,
        **{name: getattr(survey, name) for name in SURVEY_FIELDS},
        **trigger_fields(survey),
        "segment_id": survey.segment_id,
        "starts_at": _iso(survey.starts_at),
        "ends_at": _iso(survey.ends_at),
    }


SURFACE_FIELDS = (
    "key", "name", "page_url_pattern", "when_present", "wait_timeout_ms", "title", "body_html",
    "body_markdown", "cta_label", "cta_url", "dismissible", "segment_id", "frequency", "priority",
)  # fmt: skip


def surface_snapshot(obj: Banner | Guide) -> dict[str, Any]:
    """A banner's or guide's published version (banner: + position, mode; guide: + selector)."""
    own = ("position", "mode") if isinstance(obj, Banner) else ("selector",)
    return {
        "id": obj.pk,
        **{field: getattr(obj, field) for field in (*SURFACE_FIELDS, *own)},
        "starts_at": _iso(obj.starts_at),
        "ends_at": _iso(obj.ends_at),
    }


def surface_engagement(obj: Banner | Guide) -> dict[str, int]:
    """A banner's or guide's figures from the recorded events (every version): views, people
    who saw it, dismissals and call-to-action clicks."""
    kind = "banner" if isinstance(obj, Banner) else "guide"
    events = Event.objects.filter(
        workspace_id=obj.workspace_id,
        name__in=[f"${kind}_viewed", f"${kind}_dismissed", f"${kind}_clicked"],
        **{f"properties__{kind}": obj.key},
    )
    counts = dict(events.values_list("name").annotate(n=Count("id")).values_list("name", "n"))
    return {
        "views": counts.get(f"${kind}_viewed", 0),
        "viewers": events.filter(name=f"${kind}_viewed").values("end_user_id").distinct().count(),
        "dismissals": counts.get(f"${kind}_dismissed", 0),
        "clicks": counts.get(f"${kind}_clicked", 0),
    }


_SNAPSHOTS: dict[type[models.Model], Any] = {
    Journey: journey_snapshot,
    Walkthrough: walkthrough_snapshot,
    Tooltip: tooltip_snapshot,
    ProgressBar: progress_bar_snapshot,
    Survey: survey_snapshot,
    Banner: surface_snapshot,
    Guide: surface_snapshot,
    ResourceSection: resource_section_snapshot,
}


def content_snapshot(obj: ContentObject) -> dict[str, Any]:
    """The JSON a published version of `obj` stores (the formats in the README), with its
    translations (onboarding/translations.py) when it has any."""
    snapshot: dict[str, Any] = _SNAPSHOTS[type(obj)](obj)
    kind = KIND_OF_MODEL[type(obj)]
    texts = translations.snapshot_translations(
        workspace_id=obj.workspace_id, kind=kind, key=obj.key, document=snapshot
    )
    if texts:
        snapshot["translations"] = texts
    return snapshot


def _drafts(model: type[ContentObject]) -> Any:
    def documents(workspace_id: int) -> Any:
        for obj in model.objects.filter(workspace_id=workspace_id).order_by("key"):
            yield obj.key, _SNAPSHOTS[model](obj)

    return documents


# The text fields end users read, per kind of content (a new kind registers its own).
TRANSLATABLE_FIELDS: dict[type[ContentObject], tuple[str, ...]] = {
    Journey: ("name", "milestones[key].name"),
    Walkthrough: ("name", "steps[id].title", "steps[id].body_markdown"),
    Tooltip: ("body_markdown",),
    ProgressBar: ("title", "items[milestone].label"),
    # Issue 16's kinds: what their end users read (a survey's name labels it for screen
    # readers). A survey's choices translate one by one, shown as `choice_labels`; answers
    # still record the source text (translations.py).
    Survey: ("name", "thank_you", "questions[key].prompt", "questions[key].choices[]"),
    Banner: ("title", "body_markdown", "cta_label"),
    Guide: ("title", "body_markdown", "cta_label"),
    ResourceSection: ("title", "launcher_label", "items[key].title", "items[key].body_markdown"),
}
for _model, _fields in TRANSLATABLE_FIELDS.items():
    translations.register(
        kind=str(KIND_OF_MODEL[_model]), fields=_fields, documents=_drafts(_model)
    )


def _existing_content(workspace_id: int) -> Q:
    return reduce(
        operator.or_,
        (
            Q(kind=kind, object_id__in=model.objects.filter(workspace_id=workspace_id).values("pk"))
            for kind, model in MODEL_OF_KIND.items()
        ),
    )


def published_content(*, workspace: Workspace) -> list[PublishedVersion]:
    """The current version of each piece of content whose draft object still exists (deleting
    the object unpublishes it), ordered by kind, then key."""
    return _published_content(workspace.pk)


def _published_content(workspace_id: int) -> list[PublishedVersion]:
    latest = PublishedVersion.objects.filter(
        workspace_id=workspace_id, kind=OuterRef("kind"), object_id=OuterRef("object_id")
    ).order_by("-version")
    return list(
        PublishedVersion.objects.filter(workspace_id=workspace_id)
        .filter(_existing_content(workspace_id))
        .annotate(latest=Subquery(latest.values("version")[:1]))
        .filter(version=F("latest"))
        .order_by("kind", "key")
    )


def published_stamp(workspace_id: int) -> tuple[Any, ...]:
    """Changes whenever what `published_content` returns may change: a publish or restore (a
    new PublishedVersion) or a deletion of content (the count and id sum of each kind)."""
    with connection.cursor() as cursor:
        sql = _stamp_sql()
        cursor.execute(sql, [workspace_id] * sql.count("%s"))
        return tuple(cursor.fetchone() or ())


@functools.cache
def _stamp_sql() -> str:
    # Written once per process: every process asks this once a second per workspace on the
    # widget's hot path, and compiling the same query with the ORM (sixteen subqueries) cost
    # a hundred times what the database takes to answer it.
    quote = connection.ops.quote_name
    versions = quote(PublishedVersion._meta.db_table)
    parts = [f"(SELECT MAX(id) FROM {versions} WHERE workspace_id = %s)"]  # noqa: S608 - our names
    for model in MODEL_OF_KIND.values():
        table = quote(model._meta.db_table)
        parts.append(f"(SELECT COUNT(*) FROM {table} WHERE workspace_id = %s)")  # noqa: S608
        parts.append(f"(SELECT SUM(id) FROM {table} WHERE workspace_id = %s)")  # noqa: S608
    return "SELECT " + ", ".join(parts)


# Published content per workspace, kept per process with the stamp it was read under. Each
# process keeps its own copy (nothing to share or invalidate across processes).
_LIVE_CONTENT: dict[int, tuple[tuple[Any, ...], float, list[PublishedVersion]]] = {}
# How long a process trusts its copy before checking the stamp again. A publish in this process
# clears it at once; other processes see it within this many seconds.
LIVE_CONTENT_RECHECK_SECONDS = 1.0


def live_content(
    *, workspace_id: int, recheck: bool = False
) -> tuple[tuple[Any, ...], list[PublishedVersion]]:
    """`published_content` and its stamp, read from the database at most once a second per
    process and workspace while nothing is published (the widget's hot path). `recheck`
    compares the stamp now (one small query): for answering a publish, which must not be
    served from a copy read just before it."""
    cached = _LIVE_CONTENT.get(workspace_id)
    now = time.monotonic()
    if not recheck and cached is not None and now - cached[1] < LIVE_CONTENT_RECHECK_SECONDS:
        return cached[0], cached[2]
    stamp = published_stamp(workspace_id)
    if cached is not None and cached[0] == stamp:
        versions = cached[2]
    else:
        versions = _published_content(workspace_id)
    _LIVE_CONTENT[workspace_id] = (stamp, now, versions)
    return stamp, versions


def live_content_forget(*, workspace_id: int | None = None) -> None:
    """Drop this process's copy of one workspace's published content (None: every one)."""
    if workspace_id is None:
        _LIVE_CONTENT.clear()
    else:
        _LIVE_CONTENT.pop(workspace_id, None)


def published_journeys(*, workspace: Workspace) -> list[dict[str, Any]]:
    """Snapshots of the workspace's published journeys (what the milestone engine runs)."""
    return [
        version.snapshot
        for version in published_content(workspace=workspace)
        if version.kind == PublishedVersion.Kind.JOURNEY
    ]


def version_history(*, kind: str, object_id: int) -> QuerySet[PublishedVersion]:
    """Every published version of one piece of content, newest first."""
    return PublishedVersion.objects.filter(kind=kind, object_id=object_id).order_by("-version")


def latest_version(*, obj: ContentObject) -> PublishedVersion | None:
    return version_history(kind=KIND_OF_MODEL[type(obj)], object_id=obj.pk).first()


def draft_differs_from_published(*, obj: ContentObject) -> bool:
    """True when publishing now would change what live users see (or nothing is published)."""
    latest = latest_version(obj=obj)
    return latest is None or latest.snapshot != content_snapshot(obj)


# Resource center usage -------------------------------------------------------------------

RESOURCE_CENTER_OPENED = "$resource_center_opened"
RESOURCE_CENTER_SEARCHED = "$resource_center_searched"
RESOURCE_CLICKED = "$resource_clicked"
RESOURCE_USAGE_DAYS = 30


@dataclass(frozen=True)
class ResourceItemUsage:
    key: str
    title: str
    kind: str
    clicks: int
    people: int


@dataclass(frozen=True)
class ResourceSectionUsage:
    """The resource center's opens and searches (the whole launcher, which shows every section
    this user may see) and clicks on each of this section's items, over the last days."""

    opens: int
    openers: int
    searches: int
    top_searches: tuple[tuple[str, int], ...]
    items: tuple[ResourceItemUsage, ...]


def resource_section_usage(
    *, section: ResourceSection, now: datetime | None = None
) -> ResourceSectionUsage:
    since = (now or timezone.now()) - timedelta(days=RESOURCE_USAGE_DAYS)
    events = Event.objects.filter(workspace_id=section.workspace_id, timestamp__gte=since)
    opened = events.filter(name=RESOURCE_CENTER_OPENED).aggregate(
        n=Count("pk"), people=Count("end_user_id", distinct=True)
    )
    searched = events.filter(name=RESOURCE_CENTER_SEARCHED)
    top = (
        searched.values_list("properties__query")
        .annotate(n=Count("pk"))
        .order_by("-n", "properties__query")[:5]
    )
    clicks = {
        key: (n, people)
        for key, n, people in events.filter(name=RESOURCE_CLICKED, properties__section=section.key)
        .values_list("properties__item")
        .annotate(n=Count("pk"), people=Count("end_user_id", distinct=True))
    }
    return ResourceSectionUsage(
        opens=opened["n"],
        openers=opened["people"],
        searches=searched.count(),
        top_searches=tuple((str(query), n) for query, n in top if query),
        items=tuple(
            ResourceItemUsage(
                key=item.key,
                title=str(item),
                kind=item.get_kind_display(),
                clicks=clicks.get(item.key, (0, 0))[0],
                people=clicks.get(item.key, (0, 0))[1],
            )
            for item in section.items.order_by("position", "id")
        ),
    )


# Publishing warnings ---------------------------------------------------------------------

# How many of a step's most recent views are looked at to find one whose target was there.
SEEN_VIEWS_EXAMINED = 200


def _unchanged_since(step: Step) -> datetime | None:
    """When the step's selector and page were first published as they are now (kept through
    every later version), or None when the draft's pair was never published."""
    since = None
    versions = PublishedVersion.objects.filter(
        kind=PublishedVersion.Kind.WALKTHROUGH, object_id=step.walkthrough_id
    ).order_by("-version")
    for version in versions.only("snapshot", "published_at").iterator():
        published = next((s for s in version.snapshot["steps"] if s.get("id") == step.pk), None)
        if published is None or (published["selector"], published["page_url_pattern"]) != (
            step.selector,
            step.page_url_pattern,
        ):
            break
        since = version.published_at
    return since


def step_seen_matching(step: Step) -> bool:
    """Whether end users' widgets have shown this step on its target since its selector and
    page were published as they are: a `$step_viewed` of the step in an attempt whose target
    was not reported missing (the centred-modal fallback also sends `$step_viewed`)."""
    since = _unchanged_since(step)
    if since is None:
        return False
    events = Event.objects.filter(
        workspace_id=step.walkthrough.workspace_id,
        timestamp__gte=since,
        properties__step_id=step.pk,
    )
    views = list(
        events.filter(name="$step_viewed")
        .order_by("-timestamp")
        .values_list("end_user_id", "properties__attempt")[:SEEN_VIEWS_EXAMINED]
    )
    if not views:
        return False
    missing = set(
        events.filter(
            name="$step_target_missing", end_user_id__in={user for user, _ in views}
        ).values_list("end_user_id", "properties__attempt")
    )
    return any(view not in missing for view in views)


def publish_warnings(*, obj: ContentObject) -> list[str]:
    """What publishing `obj` would put live that may not work, without refusing it: each
    step whose selector was never seen matching on its page since it was published as it is
    (a typo, or a page the author has not visited yet). Read before publishing."""
    if not isinstance(obj, Walkthrough):
        return []
    warnings = []
    for index, step in enumerate(
        obj.steps.select_related("walkthrough").order_by("position", "id")
    ):
        if step.selector and not step_seen_matching(step):
            page = step.page_url_pattern or "any page"
            warnings.append(
                f"steps[{index}].selector: Step “{step.title}”: {step.selector!r} was never seen "
                f"matching on {page}; check it there before end users get the fallback "
                f"({step.get_on_target_missing_display().lower()})."
            )
    return warnings
