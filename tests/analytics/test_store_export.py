"""The analytics store's copy of the events: complete, exactly once, and forgetting erased
people, whatever stops a run half-way."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics import store, store_export
from onboarding.models import EndUser, ErasureRecord, Event, Workspace
from onboarding.recording import end_user_erase
from tests.analytics.conftest import at
from tests.factories import EndUserFactory, EventFactory


def _stored() -> list[tuple[Any, ...]]:
    return store.rows(
        "SELECT id, workspace_id, person_id, toUnixTimestamp64Milli(timestamp), name, properties"
        " FROM events ORDER BY id"
    )


def _events(workspace: Workspace, people: int, each: int) -> list[Event]:
    made = []
    for p in range(people):
        user = EndUserFactory(workspace=workspace, external_id=f"u{p}")
        for k in range(each):
            made.append(
                EventFactory(
                    workspace=workspace,
                    end_user=user,
                    name=f"step_{k % 3}",
                    timestamp=at(1 + k % 20, k % 24),
                    properties={"plan": "pro", "seats": k, "ok": k % 2 == 0},
                )
            )
    return made


def test_every_event_reaches_the_store_once(
    workspace: Workspace, analytics_store: Callable[[], Any]
) -> None:
    made = _events(workspace, people=5, each=8)

    first = analytics_store()
    again = analytics_store()

    assert (first.exported, again.exported) == (40, 0)
    stored = _stored()
    assert [row[0] for row in stored] == sorted(e.id for e in made)
    sample = next(e for e in made if e.properties["seats"] == 3)
    row = next(r for r in stored if r[0] == sample.id)
    assert row[1:5] == (
        workspace.id,
        sample.end_user_id,
        int(sample.timestamp.timestamp() * 1000),
        "step_0",
    )
    assert '"seats": 3' in row[5] or '"seats":3' in row[5]


def test_a_run_stopped_half_way_loses_and_duplicates_nothing(
    workspace: Workspace, analytics_store: Callable[[], Any]
) -> None:
    user = EndUserFactory(workspace=workspace)
    Event.objects.bulk_create(
        Event(
            workspace=workspace,
            end_user=user,
            client_id=f"00000000-0000-4000-8000-{i:012d}",
            name="clicked",
            timestamp=at(2) + timedelta(seconds=i),
            received_at=at(2),
        )
        for i in range(25_000)
    )

    def stop_after_first_batch(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store_export.export(batch_size=10_000, settle=timedelta(0), progress=stop_after_first_batch)
    assert store.rows("SELECT count() FROM events")[0][0] == 10_000

    result = store_export.export(batch_size=10_000, settle=timedelta(0))

    assert result.exported == 15_000
    assert store.rows("SELECT count(), uniqExact(id) FROM events")[0] == (25_000, 25_000)


def test_events_still_settling_wait_for_the_next_run(
    workspace: Workspace, analytics_store: Callable[[], Any]
) -> None:
    user = EndUserFactory(workspace=workspace)
    old = EventFactory(workspace=workspace, end_user=user, received_at=at(1))
    fresh = EventFactory(workspace=workspace, end_user=user, received_at=timezone.now())
    later = EventFactory(workspace=workspace, end_user=user, received_at=at(1))

    waiting = store_export.export(settle=timedelta(minutes=1))

    # The fresh event's transaction may still hide lower ids: the run stops before it.
    assert waiting.exported == 1
    assert [row[0] for row in _stored()] == [old.id]
    assert analytics_store().exported == 2
    assert [row[0] for row in _stored()] == [old.id, fresh.id, later.id]


def test_a_backlog_of_settled_events_is_not_read_to_find_the_few_still_settling(
    workspace: Workspace, analytics_store: Callable[[], Any]
) -> None:
    """After the store was down a while, every scheduled run looks for the first event still
    settling: the index on received_at answers from the recent events alone."""
    user = EndUserFactory(workspace=workspace)
    Event.objects.bulk_create(
        Event(
            workspace=workspace,
            end_user=user,
            client_id=f"00000000-0000-4000-8000-{i:012d}",
            name="clicked",
            timestamp=at(2),
            received_at=at(2) + timedelta(seconds=i),
        )
        for i in range(5_000)
    )
    EventFactory(workspace=workspace, end_user=user, received_at=timezone.now())
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    with CaptureQueriesContext(connection) as queries:
        result = store_export.export(settle=timedelta(minutes=1))

    assert result.exported == 5_000  # the backlog went, the fresh event waits
    search = next(query["sql"] for query in queries if "received_at" in query["sql"])
    explain = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
    with connection.cursor() as cursor:
        cursor.execute(explain + search)
        plan = " ".join(str(cell) for row in cursor.fetchall() for cell in row)
    assert "event_received_at" in plan, (plan, search)


def test_an_erased_person_leaves_the_store_even_when_it_was_down(
    workspace: Workspace, analytics_store: Callable[[], Any], settings: Any
) -> None:
    _events(workspace, people=3, each=4)
    analytics_store()
    gone = EndUser.objects.get(workspace=workspace, external_id="u1")
    gone_id = gone.id
    working = settings.ANALYTICS_URL

    settings.ANALYTICS_URL = "http://127.0.0.1:9/milepost"  # nothing listens there
    end_user_erase(end_user=gone, requested_by=ErasureRecord.Requester.SECRET_KEY)
    with pytest.raises(store.StoreUnavailable, match=r"127\.0\.0\.1:9"):
        store_export.export(settle=timedelta(0))
    settings.ANALYTICS_URL = working
    assert gone_id in {row[2] for row in _stored()}

    result = analytics_store()

    assert result.purged == 1
    assert {row[2] for row in _stored()} == set(
        EndUser.objects.filter(workspace=workspace).values_list("id", flat=True)
    )
    assert len(_stored()) == 8


def test_rebuild_command_reports_progress_and_matches_the_database(
    workspace: Workspace, analytics_store: Callable[[], Any], capsys: Any
) -> None:
    _events(workspace, people=2, each=5)
    analytics_store()
    store.command("DELETE FROM events WHERE name = 'step_1'")

    call_command("analytics_store", "rebuild")

    out = capsys.readouterr().out
    assert "100% 10/10 events" in out
    assert "Exported 10 events" in out
    assert len(_stored()) == Event.objects.count() == 10


def test_an_unreachable_store_is_a_clear_command_error(settings: Any, db: None) -> None:
    settings.ANALYTICS_URL = "http://127.0.0.1:9/milepost"
    unavailable = r"analytics store http://127\.0\.0\.1:9/milepost is unavailable"
    with pytest.raises(CommandError, match=unavailable):
        call_command("analytics_store", "status")


def test_a_person_s_new_traits_and_signup_reach_the_store_and_an_erasure_removes_them(
    workspace: Workspace, analytics_store: Callable[[], Any]
) -> None:
    from onboarding.recording import end_user_identify

    ann = end_user_identify(workspace=workspace, external_id="ann", traits={"plan": "trial"})
    analytics_store()

    end_user_identify(
        workspace=workspace,
        external_id="ann",
        traits={"plan": "pro", "signed_up_at": "2025-03-02T10:00:00Z"},
    )
    analytics_store()

    ((signed_up, traits),) = store.rows(
        "SELECT signed_up_at, traits FROM people FINAL WHERE person_id = {p:UInt64}",
        {"p": ann.pk},
    )
    assert signed_up.isoformat().startswith("2025-03-02T10:00:00")
    assert '"pro"' in traits
    ann_id = ann.pk
    end_user_erase(end_user=ann, requested_by=ErasureRecord.Requester.SECRET_KEY)
    analytics_store()
    assert store.rows(
        "SELECT count() FROM people FINAL WHERE person_id = {p:UInt64}", {"p": ann_id}
    ) == [(0,)]


def test_events_past_the_workspace_s_retention_leave_the_store_too(
    workspace: Workspace,
    analytics_store: Callable[[], Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    user = EndUserFactory(workspace=workspace)
    now = timezone.now()
    old = EventFactory(workspace=workspace, end_user=user, timestamp=now - timedelta(days=40))
    kept = EventFactory(workspace=workspace, end_user=user, timestamp=now - timedelta(days=5))
    analytics_store()
    workspace.retention_days = 30
    workspace.save(update_fields=["retention_days"])

    with django_capture_on_commit_callbacks(execute=True):
        call_command("purge_expired_events")
    result = analytics_store()

    assert result.purged == 1
    assert [row[0] for row in _stored()] == [kept.id]
    assert not Event.objects.filter(pk=old.pk).exists()


def test_a_backlog_of_purges_is_applied_in_one_run_and_only_what_it_names_goes(
    workspace: Workspace, analytics_store: Callable[[], Any]
) -> None:
    from analytics.models import StorePurge

    other = Workspace.objects.create(name="Other", slug="other")
    made = _events(workspace, people=4, each=5) + _events(other, people=2, each=5)
    analytics_store()
    erased = [
        u.pk for u in EndUser.objects.filter(workspace=workspace, external_id__in=["u0", "u2"])
    ]
    # Two people deleted, and the other workspace's events before day 6, then before day 11,
    # deleted by retention passes: a store that was down finds four purge requests waiting.
    EndUser.objects.filter(pk__in=erased).delete()
    Event.objects.filter(workspace=other, timestamp__lt=at(11)).delete()
    StorePurge.objects.create(workspace_id=other.pk, before=at(6))
    StorePurge.objects.create(workspace_id=other.pk, before=at(11))
    assert StorePurge.objects.count() == 4

    result = analytics_store()

    assert result.purged == 4
    assert not StorePurge.objects.exists()
    kept = sorted(
        e.id
        for e in made
        if e.end_user_id not in erased and (e.workspace_id == workspace.pk or e.timestamp >= at(11))
    )
    assert [row[0] for row in _stored()] == kept
    assert 0 < len(kept) < len(made) - 10
    people = store.rows("SELECT person_id FROM people FINAL ORDER BY person_id")
    assert not {row[0] for row in people} & set(erased)
