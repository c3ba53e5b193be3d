from __future__ import annotations

import pytest
from django.db import connection

from onboarding import services
from onboarding.models import Event, Milestone, Workspace
from tests.factories import JourneyFactory, MilestoneFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_only_the_hash_of_the_secret_key_is_stored_and_it_matches() -> None:
    workspace, keys = services.workspace_create(name="Acme", origins=["https://app.acme.io"])
    stored = Workspace.objects.get(pk=workspace.pk)
    assert keys["secret_key"].startswith("sk_")
    assert keys["publishable_key"].startswith("pk_")
    assert stored.secret_key_matches(keys["secret_key"])
    assert not stored.secret_key_matches(keys["secret_key"] + "x")
    assert keys["secret_key"] not in {stored.secret_key_hash, stored.identity_secret}
    assert stored.secret_key_hint == keys["secret_key"][:7]


def test_rotating_keys_replaces_all_three() -> None:
    workspace = WorkspaceFactory()
    old = workspace.keys
    new = services.workspace_rotate_keys(workspace=workspace)
    workspace.refresh_from_db()
    assert not workspace.secret_key_matches(old["secret_key"])
    assert workspace.publishable_key == new["publishable_key"] != old["publishable_key"]
    assert workspace.identity_secret == new["identity_secret"] != old["identity_secret"]


def test_workspace_slugs_are_derived_and_kept_unique() -> None:
    first, _ = services.workspace_create(name="Acme Inc.", origins=[])
    second, _ = services.workspace_create(name="Acme Inc.", origins=[])
    assert (first.slug, second.slug) == ("acme-inc", "acme-inc-2")


def test_the_user_hash_is_the_hmac_of_the_user_id() -> None:
    workspace = WorkspaceFactory()
    user_hash = workspace.user_hash_for("user-42")
    assert workspace.user_hash_matches("user-42", user_hash.upper())
    assert not workspace.user_hash_matches("user-43", user_hash)
    assert not workspace.user_hash_matches("user-42", None)


def test_allowed_origins_match_without_case_or_trailing_slash() -> None:
    workspace = WorkspaceFactory(allowed_origins=["https://app.example.com"])
    assert workspace.allows_origin("https://APP.example.com/")
    assert not workspace.allows_origin("https://evil.example.com")
    assert not workspace.allows_origin(None)


def test_a_milestone_takes_its_journeys_workspace() -> None:
    journey = JourneyFactory()
    milestone = Milestone.objects.create(journey=journey, key="k", name="K", event_name="e")
    assert milestone.workspace_id == journey.workspace_id


def test_milestone_keys_are_unique_within_a_workspace_only() -> None:
    first = MilestoneFactory(key="shared")
    MilestoneFactory(key="shared")  # another workspace: allowed
    duplicate = MilestoneFactory.build(journey=first.journey, key="shared")
    with pytest.raises(Exception, match="already exists"):
        duplicate.full_clean()


def test_every_index_of_the_event_table_earns_its_write() -> None:
    """Each stored event updates every index of its table: none may be a prefix of another
    (which serves the same lookups) or they cost every ingest for nothing."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Event._meta.db_table)
    indexed = [tuple(c["columns"]) for c in constraints.values() if c["index"] or c["unique"]]
    redundant = [
        short
        for short in indexed
        for long in indexed
        if short != long and long[: len(short)] == short
    ]
    assert ("end_user_id", "name", "timestamp") in indexed
    assert redundant == []
