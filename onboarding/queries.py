"""Reads of onboarding's data: querysets and plain snapshots, no writes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import QuerySet

from onboarding.models import Workspace

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


def workspaces_for_user(*, user: User | AnonymousUser) -> QuerySet[Workspace]:
    """The workspaces a Django user may see in admin: all for a superuser, else their own."""
    if not user.is_authenticated or not user.is_active:
        return Workspace.objects.none()
    if user.is_superuser:
        return Workspace.objects.all()
    return Workspace.objects.filter(members__user_id=user.pk).distinct()
