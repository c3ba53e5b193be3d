"""Privacy: the erasure audit trail, per-workspace retention, and no IP address kept."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.apps import apps
from django.core import serializers
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from onboarding import recording, retention, signals
from onboarding.models import EndUser, ErasureRecord, Event, MilestoneCompletion
from tests.factories import EndUserFactory, UserFactory, WorkspaceFactory
from tests.onboarding.conftest import TrialJourney

pytestmark = pytest.mark.django_db
CLIENT_IP = "203.0.113.77"


def events_at(workspace: Any, user: str, *days_ago: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in days_ago]
    now = timezone.now()
    ack = recording.events_record(
        workspace=workspace,
        events=[
            {
                "id": event_id,
                "user_id": user,
                "name": "message_sent",
                "timestamp": (now - timedelta(days=days)).isoformat(),
            }
            for event_id, days in zip(ids, days_ago, strict=True)
        ],
        source="server",
        received_at=now,
    )
    assert ack.accepted == ids
    return ids


# Erasure audit trail -------------------------------------------------------------------------


def test_an_erasure_through_the_api_leaves_a_record_without_the_persons_id(
    client: Client, trial: TrialJourney
) -> None:
    workspace = trial.workspace
    events_at(workspace, "kim@example.com", 1, 2)

    response = client.delete(
        "/api/v1/users/kim@example.com",
        HTTP_AUTHORIZATION=f"Bearer {workspace.keys['secret_key']}",
    )

    assert response.status_code == 200
    record = ErasureRecord.objects.get()
    assert record.workspace == workspace
    assert record.requested_by == ErasureRecord.Requester.SECRET_KEY
    assert record.secret_key_hint == workspace.secret_key_hint
    assert record.admin_user is None
    assert record.erased == {"events": 2, "completions": 0, "journeys": 1}
    assert record.subject_hash == ErasureRecord.subject_hash_for(
        workspace_id=workspace.pk, external_id="kim@example.com"
    )
    stored = serializers.serialize("json", [record])
    assert "kim" not in stored
    assert not EndUser.objects.filter(external_id="kim@example.com").exists()


def test_an_erasure_is_announced_for_copies_elsewhere(
    trial: TrialJourney, django_capture_on_commit_callbacks: Any
) -> None:
    end_user = EndUserFactory(workspace=trial.workspace)
    end_user_id = end_user.pk
    heard: list[dict[str, Any]] = []

    def hear(**kwargs: Any) -> None:
        heard.append({k: kwargs[k] for k in ("workspace_id", "end_user_id")})

    signals.end_user_erased.connect(hear, dispatch_uid="test-erased")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            recording.end_user_erase(
                end_user=end_user, requested_by=ErasureRecord.Requester.SECRET_KEY
            )
    finally:
        signals.end_user_erased.disconnect(dispatch_uid="test-erased")

    assert heard == [{"workspace_id": trial.workspace.pk, "end_user_id": end_user_id}]


def test_deleting_an_end_user_in_the_admin_is_an_audited_erasure(
    client: Client, trial: TrialJourney
) -> None:
    events_at(trial.workspace, "u1", 1)
    end_user = EndUser.objects.get(external_id="u1")
    root = UserFactory(username="root", is_superuser=True)
    client.force_login(root)

    response = client.post(
        reverse("admin:onboarding_enduser_delete", args=[end_user.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not Event.objects.exists()
    record = ErasureRecord.objects.get()
    assert record.requested_by == ErasureRecord.Requester.ADMIN
    assert record.admin_user == root
    assert record.erased["events"] == 1


def test_the_audit_trail_is_read_only_in_the_admin_and_found_by_external_id(
    client: Client, trial: TrialJourney
) -> None:
    for external_id in ("kim", "lee"):
        recording.end_user_erase(
            end_user=EndUserFactory(workspace=trial.workspace, external_id=external_id),
            requested_by=ErasureRecord.Requester.SECRET_KEY,
        )
    kims = ErasureRecord.objects.get(
        subject_hash=ErasureRecord.subject_hash_for(
            workspace_id=trial.workspace.pk, external_id="kim"
        )
    )
    client.force_login(UserFactory(username="root", is_superuser=True))
    changelist = reverse("admin:onboarding_erasurerecord_changelist")

    everything = client.get(changelist).content.decode()
    found = client.get(changelist, {"q": "kim"}).content.decode()
    change = client.post(
        reverse("admin:onboarding_erasurerecord_change", args=[kims.pk]), {"erased": "{}"}
    )
    delete = client.post(
        reverse("admin:onboarding_erasurerecord_delete", args=[kims.pk]), {"post": "yes"}
    )

    hint = f"Secret key {trial.workspace.secret_key_hint}"
    assert everything.count(hint) == 2
    assert "0 events, 0 completions, 0 journeys" in everything
    assert kims.subject_hash in found
    assert found.count(hint) == 1
    assert change.status_code == 403
    assert delete.status_code == 403
    assert ErasureRecord.objects.count() == 2


# Retention -----------------------------------------------------------------------------------


def test_retention_deletes_only_expired_events_of_workspaces_that_have_one(
    trial: TrialJourney, django_capture_on_commit_callbacks: Any
) -> None:
    kept_for_ever = WorkspaceFactory()
    trial.workspace.retention_days = 30
    trial.workspace.save(update_fields=["retention_days"])
    old = events_at(trial.workspace, "u1", 40, 35, 31, 45, 60)
    recent = events_at(trial.workspace, "u1", 29, 1)
    untouched = events_at(kept_for_ever, "u1", 400)
    heard: list[tuple[int, Any]] = []

    def hear(workspace_id: int, before: Any, **kwargs: Any) -> None:
        heard.append((workspace_id, before))

    signals.events_purged.connect(hear, dispatch_uid="test-purged")
    now = timezone.now()
    try:
        with django_capture_on_commit_callbacks(execute=True):
            purges = retention.events_purge_expired(now=now, batch_size=2)
    finally:
        signals.events_purged.disconnect(dispatch_uid="test-purged")

    remaining = {str(i) for i in Event.objects.values_list("client_id", flat=True)}
    assert remaining == set(recent) | set(untouched)
    assert not remaining & set(old)
    assert [(p.workspace_id, p.events, p.batches) for p in purges] == [(trial.workspace.pk, 5, 3)]
    assert heard == [(trial.workspace.pk, now - timedelta(days=30))]


def test_a_completion_outlives_the_expired_event_that_reached_it(trial: TrialJourney) -> None:
    trial.workspace.retention_days = 7
    trial.workspace.save(update_fields=["retention_days"])
    EndUserFactory(
        workspace=trial.workspace,
        external_id="u1",
        signed_up_at=timezone.now() - timedelta(days=10, minutes=1),
    )
    events_at(trial.workspace, "u1", 10, 10, 10)
    assert MilestoneCompletion.objects.get().event_id is not None

    retention.events_purge_expired()

    assert not Event.objects.exists()
    completion = MilestoneCompletion.objects.get()
    assert completion.milestone == trial.messages
    assert completion.event_id is None


def test_the_purge_command_reports_what_it_deleted(trial: TrialJourney) -> None:
    trial.workspace.retention_days = 30
    trial.workspace.save(update_fields=["retention_days"])
    events_at(trial.workspace, "u1", 31, 32, 33, 1)
    output = StringIO()

    call_command("purge_expired_events", "--batch-size", "2", stdout=output)

    assert f"Workspace {trial.workspace.pk}: 3 events older than" in output.getvalue()
    assert "in 2 batches" in output.getvalue()
    assert Event.objects.count() == 1


def test_a_retention_of_zero_days_is_refused_in_the_admin(
    client: Client, trial: TrialJourney
) -> None:
    client.force_login(UserFactory(username="root", is_superuser=True))
    url = reverse("admin:onboarding_workspace_change", args=[trial.workspace.pk])
    page = client.post(
        url,
        {
            "name": trial.workspace.name,
            "slug": trial.workspace.slug,
            "allowed_origins": "https://app.example.com",
            "retention_days": "0",
            "theme": "{}",
            "members-TOTAL_FORMS": "0",
            "members-INITIAL_FORMS": "0",
        },
    )

    assert page.status_code == 200
    assert "Ensure this value is greater than or equal to 1." in page.content.decode()
    trial.workspace.refresh_from_db()
    assert trial.workspace.retention_days is None


# No IP address -------------------------------------------------------------------------------


def test_no_ip_address_is_kept_in_any_table_or_log(
    client: Client, trial: TrialJourney, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    forwarded = {"REMOTE_ADDR": CLIENT_IP, "HTTP_X_FORWARDED_FOR": CLIENT_IP}
    widget = {"HTTP_ORIGIN": "https://app.example.com", **forwarded}
    publishable = trial.workspace.keys["publishable_key"]
    secret = {"HTTP_AUTHORIZATION": f"Bearer {trial.workspace.keys['secret_key']}", **forwarded}

    answers = [
        client.post(
            "/api/v1/widget/bootstrap",
            json.dumps({"key": publishable, "user": {"id": "u1"}}),
            content_type="application/json",
            **widget,
        ),
        client.post(
            "/api/v1/widget/events",
            json.dumps(
                {
                    "key": publishable,
                    "user": {"id": "u1"},
                    "events": [{"id": str(uuid.uuid4()), "name": "message_sent"}],
                }
            ),
            content_type="application/json",
            **widget,
        ),
        client.put(
            "/api/v1/users/u2",
            json.dumps({"traits": {"plan": "pro"}}),
            content_type="application/json",
            **secret,
        ),
        client.post(
            "/api/v1/events",
            json.dumps({"events": [{"id": str(uuid.uuid4()), "user_id": "u2", "name": "x"}]}),
            content_type="application/json",
            **secret,
        ),
        client.delete("/api/v1/users/u2", **secret),
    ]

    assert [answer.status_code for answer in answers] == [200, 200, 201, 200, 200]
    assert Event.objects.count() == 1
    assert ErasureRecord.objects.count() == 1
    for model in apps.get_models():
        dump = serializers.serialize("json", model._default_manager.all())
        assert CLIENT_IP not in dump, model._meta.label
    assert CLIENT_IP not in caplog.text
