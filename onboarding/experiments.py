"""Experiments: which variant of a piece of content each end user sees, and when they count as
exposed. The definition is `onboarding.models.Experiment`; its results are analytics' read model
(analytics/report/experiment.py).

Assignment is a pure function of the workspace, the person's external id and the experiment's
key (SHA-256, its first 64 bits read as a point in [0, 1) and cut by the cumulative weights), so
every device, reload, reconnect and server process gives the same person the same variant with
nothing stored. The weights therefore cannot change once an experiment has started.

What a person is sent, per experiment on a kind of content the widget receives in `welcome` /
`content` (walkthroughs, tooltips, progress bars, surveys, banners and guides: any kind
registered in `Experiment.CONTENT_LISTS`):
- running, within its schedule, person in its audience: only their variant's content (nothing
  for a holdout); the other variants' content is taken out;
- shipped: the shipped variant's content, for everyone;
- draft, stopped, not yet started or ended, or person outside the audience: the control's
  content, for everyone; the other variants' content is shown to no one.

Exposure: a `$experiment_exposure` event {experiment, variant} is recorded once per person, on
the server, at the moment they could have seen the content: the control's content was deliverable
to them (segment, schedule, frequency all passed) and the page their `hello`, `page` or bootstrap
names matches its URL rule. The holdout and every variant are judged on the control's content and
the same page, so every arm is exposed at the same moment: comparing arms exposed at different
moments (a variant only when its tooltip renders, the holdout never) would bias the comparison.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from onboarding import realtime, recording
from onboarding.models import EndUser, Event, Experiment, PublishedVersion
from onboarding.segments import segment_matches

EXPOSURE_EVENT = "$experiment_exposure"
# Exposure events get a fixed id per experiment and person, so a second one is a duplicate the
# events table refuses, whichever process or device sends it.
_EXPOSURE_NAMESPACE = uuid.UUID("6d1f6f1e-7a0b-4c55-9a57-3c4f1c0e8e11")
Status = Experiment.Status


def bucket(*, workspace_id: int, external_id: str, experiment_key: str) -> float:
    """A point in [0, 1), uniform over people and fixed for one person and experiment."""
    subject = f"{workspace_id}\x1f{external_id}\x1f{experiment_key}".encode()
    return int.from_bytes(hashlib.sha256(subject).digest()[:8], "big") / 2**64


def assigned_variant(experiment: Experiment, *, external_id: str) -> dict[str, Any]:
    """The variant this person is in, were they in the experiment's audience."""
    point = bucket(
        workspace_id=experiment.workspace_id, external_id=external_id, experiment_key=experiment.key
    ) * sum(v["weight"] for v in experiment.variants)
    for variant in experiment.variants:
        point -= variant["weight"]
        if point < 0:
            return dict(variant)
    return dict(experiment.variants[-1])  # unreachable but for rounding at the very top


def is_running(experiment: Experiment, now: datetime) -> bool:
    return (
        experiment.status == Status.RUNNING
        and (experiment.starts_at is None or experiment.starts_at <= now)
        and (experiment.ends_at is None or now < experiment.ends_at)
    )


def shown(
    experiment: Experiment, *, external_id: str, in_audience: bool, now: datetime
) -> tuple[str | None, str | None]:
    """(the content key this person is sent, or None; their variant's key when they are in
    the running experiment, else None)."""
    if experiment.status == Status.SHIPPED:
        variant = experiment.variant(experiment.shipped_variant) or experiment.variants[0]
        return variant["content_key"], None
    if in_audience and is_running(experiment, now):
        variant = assigned_variant(experiment, external_id=external_id)
        return variant["content_key"], variant["key"]
    return experiment.content_key, None


# The experiments of each workspace, kept per process for a second (the widget's hot path);
# starting, stopping or shipping one forgets the copy at once in that process.
_LIVE: dict[int, tuple[float, list[Experiment]]] = {}
LIVE_RECHECK_SECONDS = 1.0


def workspace_experiments(workspace_id: int) -> list[Experiment]:
    cached = _LIVE.get(workspace_id)
    now = time.monotonic()
    if cached is not None and now - cached[0] < LIVE_RECHECK_SECONDS:
        return cached[1]
    experiments = list(Experiment.objects.filter(workspace_id=workspace_id).order_by("pk"))
    _LIVE[workspace_id] = (now, experiments)
    return experiments


def any_running(workspace_id: int) -> bool:
    now = timezone.now()
    return any(is_running(e, now) for e in workspace_experiments(workspace_id))


def may_be_running(workspace_id: int) -> bool:
    """From this process's copy only (no query, for the socket's `page` path): False when the
    copy, however old, holds no running experiment. Starting one pushes `content_changed` to
    every socket of the workspace, whose answer reads the experiments again in every process."""
    cached = _LIVE.get(workspace_id)
    if cached is None:
        return True
    now = timezone.now()
    return any(is_running(e, now) for e in cached[1])


def forget(workspace_id: int | None = None) -> None:
    if workspace_id is None:
        _LIVE.clear()
    else:
        _LIVE.pop(workspace_id, None)


@dataclass(frozen=True)
class Exposure:
    """A person sent an experiment's content (or its holdout's nothing), to be recorded as
    exposed when the page matches `page_url_pattern` (the control content's rule)."""

    end_user: EndUser
    experiment: Experiment
    variant: str
    page_url_pattern: str


def _page_rule(item: dict[str, Any]) -> str:
    """The URL rule of one piece of the widget's content: its own, or its first step's."""
    if isinstance(item.get("page_url_pattern"), str):
        return str(item["page_url_pattern"])
    steps = item.get("steps")
    if isinstance(steps, list) and steps and isinstance(steps[0], dict):
        return str(steps[0].get("page_url_pattern") or "")
    return ""


def content_apply(
    *,
    content: dict[str, Any],
    experiments: Sequence[Experiment],
    end_user: EndUser,
    matches: dict[int, bool],
    now: datetime,
) -> tuple[dict[str, Any], list[Exposure]]:
    """This person's targeted content with each experiment's variants resolved, and the
    experiments they may be exposed to now. `matches` holds the segments' verdicts."""
    exposures = []
    for experiment in experiments:
        list_name = Experiment.CONTENT_LISTS.get(experiment.content_kind)
        *parents, list_name = (list_name or "").split(".")
        holder = content
        for parent in parents:  # "surfaces.surveys": the list inside content["surfaces"]
            holder = holder.get(parent) or {}
        if not list_name or list_name not in holder:
            continue
        in_audience = experiment.segment_id is None or matches.get(experiment.segment_id, False)
        key, variant = shown(
            experiment, external_id=end_user.external_id, in_audience=in_audience, now=now
        )
        items = holder[list_name]
        control = next((i for i in items if i.get("key") == experiment.content_key), None)
        keys = {v["content_key"] for v in experiment.variants if v["content_key"] is not None}
        holder[list_name] = [i for i in items if i.get("key") not in keys or i.get("key") == key]
        if variant is not None and control is not None:
            exposures.append(Exposure(end_user, experiment, variant, _page_rule(control)))
    return content, exposures


_PATTERNS: dict[str, re.Pattern[str]] = {}


def page_matches(pattern: str, url: str) -> bool:
    """The widget's URL rule (widget/src/targeting.ts `urlMatches`) on a page's URL: `*` is any
    run of characters, an empty pattern is every page, the trailing slash is optional, the query
    string counts only when the pattern has one."""
    if not pattern:
        return True
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        body = ".*".join(re.escape(part) for part in pattern.rstrip("/").split("*"))
        compiled = _PATTERNS.setdefault(pattern, re.compile(f"^{body}/?$", re.DOTALL))
    parts = urlsplit(url)
    subject = parts.path or "/"
    if "?" in pattern and parts.query:
        subject += "?" + parts.query
    return compiled.match(subject) is not None


def exposure_id(*, experiment: Experiment, end_user: EndUser) -> uuid.UUID:
    return uuid.uuid5(_EXPOSURE_NAMESPACE, f"{experiment.pk}:{end_user.pk}")


# Exposures this process recorded lately, so a person's every reload is not a write.
_RECORDED: set[uuid.UUID] = set()
_RECORDED_REMEMBERED = 100_000


def _remember(ids: Sequence[uuid.UUID]) -> None:
    if len(_RECORDED) > _RECORDED_REMEMBERED:
        _RECORDED.clear()
    _RECORDED.update(ids)


def exposures_record(
    *,
    exposures: Sequence[Exposure],
    page_url: str | None = None,
    pages: Mapping[int, str | None] | None = None,
    at: datetime | None = None,
) -> int:
    """Record the exposures whose URL rule matches `page_url` (None: the page is not known, so
    nobody is exposed yet), once per person and experiment. Returns how many were new here.
    `pages` gives each person's own page instead (end user id -> URL): the hellos of a group
    commit are recorded with one write for all."""
    if not exposures:
        return 0
    at = at or timezone.now()
    batches: dict[int, recording.EventBatch] = {}
    new_ids: list[uuid.UUID] = []
    for exposure in exposures:
        page = page_url if pages is None else pages.get(exposure.end_user.pk)
        if page is None or not page_matches(exposure.page_url_pattern, page):
            continue
        event_id = exposure_id(experiment=exposure.experiment, end_user=exposure.end_user)
        if event_id in _RECORDED:
            continue
        new_ids.append(event_id)
        user = exposure.end_user
        batch = batches.setdefault(
            user.pk,
            recording.EventBatch(
                workspace=user.workspace,
                events=[],
                source=Event.Source.SYSTEM,
                end_user=user,
            ),
        )
        assert isinstance(batch.events, list)  # noqa: S101 - made as a list just above
        batch.events.append(
            {
                "id": str(event_id),
                "name": EXPOSURE_EVENT,
                "timestamp": at.isoformat(),
                "properties": {
                    "experiment": exposure.experiment.key,
                    "variant": exposure.variant,
                    "content_kind": exposure.experiment.content_kind,
                    "content_key": exposure.experiment.content_key,
                },
            }
        )
    if not batches:
        return 0
    acks = recording.events_record_many(batches=list(batches.values()), received_at=at)
    transaction.on_commit(lambda: _remember(new_ids))
    return sum(len(ack.accepted) for ack in acks)


def message_for(
    *, end_user: EndUser, message_key: str, now: datetime | None = None
) -> tuple[str | None, Exposure | None]:
    """For content pushed on its own (engagement's in-app message with this key): the key to
    send instead (None: nothing, a holdout or a variant of an experiment not shown to this
    person) and the exposure to record as it is sent."""
    now = now or timezone.now()
    for experiment in workspace_experiments(end_user.workspace_id):
        if experiment.content_kind != "message":
            continue
        keys = {v["content_key"] for v in experiment.variants if v["content_key"] is not None}
        if message_key not in keys:
            continue
        in_audience = experiment.segment is None or segment_matches(
            segment=experiment.segment, end_user=end_user
        )
        key, variant = shown(
            experiment, external_id=end_user.external_id, in_audience=in_audience, now=now
        )
        if message_key != experiment.content_key:
            # A variant's own message, fired by its own rule: only the experiment sends it.
            return None, None
        exposure = Exposure(end_user, experiment, variant, "") if variant is not None else None
        return key, exposure
    return message_key, None


# Admin actions (start, stop, ship) -------------------------------------------------------


def _published_keys(workspace_id: int, kind: str) -> set[str] | None:
    """The published keys of a kind of content, or None for a kind published elsewhere (an
    engagement message is live as soon as it is saved)."""
    if kind not in {k.value for k in PublishedVersion.Kind}:
        return None
    return set(
        PublishedVersion.objects.filter(workspace_id=workspace_id, kind=kind).values_list(
            "key", flat=True
        )
    )


def _changed(experiment: Experiment) -> None:
    workspace_id = experiment.workspace_id
    forget(workspace_id)

    def announce() -> None:
        forget(workspace_id)
        realtime.push_to_workspace(workspace_id=workspace_id, message={"type": "content_changed"})

    transaction.on_commit(announce)


@transaction.atomic
def experiment_start(*, experiment: Experiment, now: datetime | None = None) -> Experiment:
    """Start (or restart after a stop) assigning people. Refused when the definition is wrong,
    a variant's content is not published, or another running experiment uses the same content."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if experiment.status == Status.SHIPPED:
        raise ValidationError({"status": ["This experiment has shipped; it cannot run again."]})
    experiment.full_clean()
    published = _published_keys(experiment.workspace_id, experiment.content_kind)
    keys = {v["content_key"] for v in experiment.variants if v["content_key"] is not None}
    if published is not None and keys - published:
        missing = ", ".join(sorted(keys - published))
        raise ValidationError({"variants": [f"Publish this content first: {missing}."]})
    for other in Experiment.objects.filter(
        workspace_id=experiment.workspace_id,
        content_kind=experiment.content_kind,
        status=Status.RUNNING,
    ).exclude(pk=experiment.pk):
        shared = keys & {v["content_key"] for v in other.variants}
        if shared:
            raise ValidationError(
                {"variants": [f"The running experiment {other.key!r} uses {sorted(shared)[0]}."]}
            )
    experiment.status = Status.RUNNING
    if experiment.starts_at is None:
        experiment.starts_at = now or timezone.now()
    experiment.save(update_fields=["status", "starts_at", "updated_at"])
    _changed(experiment)
    return experiment


@transaction.atomic
def experiment_stop(*, experiment: Experiment) -> Experiment:
    """Stop assigning: everyone sees the control again. Exposures and results stay."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if experiment.status != Status.RUNNING:
        raise ValidationError(
            {"status": [f"Only a running experiment stops; it is {experiment.status}."]}
        )
    experiment.status = Status.STOPPED
    experiment.save(update_fields=["status", "updated_at"])
    _changed(experiment)
    return experiment


@transaction.atomic
def experiment_ship(*, experiment: Experiment, variant: str) -> Experiment:
    """Publish one variant as the content for everyone (a holdout ships nothing) and end the
    experiment."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if experiment.variant(variant) is None:
        known = ", ".join(v["key"] for v in experiment.variants)
        raise ValidationError({"variant": [f"No variant {variant!r}; choose one of {known}."]})
    experiment.status = Status.SHIPPED
    experiment.shipped_variant = variant
    experiment.save(update_fields=["status", "shipped_variant", "updated_at"])
    _changed(experiment)
    return experiment
