"""Writes of the analytics app."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction

from analytics.inputs import MAX_ADOPTION_FEATURES, ReportInputError, check_known_event
from onboarding.models import Condition, Segment, Workspace


@transaction.atomic
def segment_create_from_adoption_cell(
    *, workspace: Workspace, features: Sequence[str], used: Sequence[bool], key: str, name: str
) -> Segment:
    """Save one cell of the adoption matrix as a segment for targeting: "performed" /
    "never performed" each feature (over all time, as onboarding's event conditions read)."""
    if not 1 <= len(features) <= MAX_ADOPTION_FEATURES:
        raise ReportInputError("features", f"Choose 1 to {MAX_ADOPTION_FEATURES} features.")
    if len(used) != len(features):
        raise ReportInputError("used", "Give one used / not used flag per feature.")
    for index, feature in enumerate(features):
        check_known_event(workspace, feature, f"features[{index}]")
    if Segment.objects.filter(workspace=workspace, key=key).exists():
        raise ReportInputError("key", "A segment with this key already exists.")
    segment = Segment.objects.create(
        workspace=workspace, key=key, name=name, match=Segment.Match.ALL
    )
    Condition.objects.bulk_create(
        Condition(
            segment=segment,
            position=position,
            kind=Condition.Kind.EVENT,
            event_name=feature,
            operator="performed" if was_used else "not_performed",
        )
        for position, (feature, was_used) in enumerate(zip(features, used, strict=True))
    )
    return segment
