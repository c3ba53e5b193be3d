from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.exceptions import ValidationError
from django.db import connections

from milepost.asgi import application
from onboarding import experiments, services
from onboarding.models import Event, Experiment
from onboarding.targeting import content_for
from tests.factories import (
    BannerFactory,
    ConditionFactory,
    EndUserFactory,
    SegmentFactory,
    TooltipFactory,
    WorkspaceFactory,
)

ORIGIN = "https://app.example.com"
VARIANTS: list[dict[str, Any]] = [
    {"key": "control", "weight": 40, "content_key": "tip-a"},
    {"key": "bold", "weight": 40, "content_key": "tip-b"},
    {"key": "holdout", "weight": 20, "content_key": None},
]


def tooltip_experiment(workspace: Any, **kwargs: Any) -> Experiment:
    for key, page in (("tip-a", "/campaigns/*"), ("tip-b", "/campaigns/*")):
        services.content_publish(obj=tooltip(workspace=workspace, key=key, page_url_pattern=page))
    experiment = Experiment.objects.create(
        workspace=workspace,
        key="tip-test",
        name="Tip test",
        content_kind="tooltip",
        content_key="tip-a",
        variants=kwargs.pop("variants", VARIANTS),
        **kwargs,
    )
    experiment.full_clean()
    return experiment


def tooltip(**kwargs: Any) -> Any:
    return TooltipFactory(**kwargs)


def person_in(experiment: Experiment, variant: str, start: int = 0) -> str:
    """An external id the hash puts in `variant`."""
    for n in range(start, start + 10_000):
        if experiments.assigned_variant(experiment, external_id=f"p{n}")["key"] == variant:
            return f"p{n}"
    raise AssertionError(variant)


def exposures(workspace: Any) -> list[tuple[str, str]]:
    return [
        (e.end_user.external_id, e.properties["variant"])
        for e in Event.objects.filter(workspace=workspace, name=experiments.EXPOSURE_EVENT)
        .select_related("end_user")
        .order_by("pk")
    ]


def test_100k_people_split_as_the_weights_say_within_statistical_tolerance() -> None:
    experiment = Experiment(workspace_id=7, key="split", variants=VARIANTS)
    counts = Counter(
        experiments.assigned_variant(experiment, external_id=f"user-{n}")["key"]
        for n in range(100_000)
    )
    # Each count is binomial(100 000, weight share); 4.5 standard deviations leaves a
    # false alarm about once in 150 000 runs, and a real 1-point skew (1 000) fails it.
    for variant in VARIANTS:
        share = variant["weight"] / 100
        expected = 100_000 * share
        assert abs(counts[variant["key"]] - expected) < 4.5 * math.sqrt(expected * (1 - share))
    # A chi-square over the three arms agrees (2 degrees of freedom, p = 0.0001 at 18.4).
    chi2 = sum(
        (counts[v["key"]] - 1000 * v["weight"]) ** 2 / (1000 * v["weight"]) for v in VARIANTS
    )
    assert chi2 < 18.4


def test_assignment_depends_on_the_person_the_experiment_and_the_workspace_only() -> None:
    one = Experiment(workspace_id=1, key="a", variants=VARIANTS)
    again = Experiment(workspace_id=1, key="a", variants=[dict(v) for v in VARIANTS])
    other_key = Experiment(workspace_id=1, key="b", variants=VARIANTS)
    people = [f"u{n}" for n in range(2_000)]

    def arms(experiment: Experiment) -> list[str]:
        return [experiments.assigned_variant(experiment, external_id=p)["key"] for p in people]

    assert arms(one) == arms(again)
    # Another experiment reshuffles people independently: about 40% agree by chance... but not all.
    agree = sum(a == b for a, b in zip(arms(one), arms(other_key), strict=True))
    assert 0.25 * len(people) < agree < 0.5 * len(people)


@pytest.mark.django_db
def test_a_running_experiment_sends_each_person_only_their_variant() -> None:
    workspace: Any = WorkspaceFactory()
    experiment = tooltip_experiment(workspace)
    experiments.experiment_start(experiment=experiment)
    sent = {}
    for variant in ("control", "bold", "holdout"):
        person: Any = EndUserFactory(
            workspace=workspace, external_id=person_in(experiment, variant)
        )
        sent[variant] = [t["key"] for t in content_for(end_user=person)["tooltips"]]
    assert sent == {"control": ["tip-a"], "bold": ["tip-b"], "holdout": []}


@pytest.mark.django_db
def test_outside_the_audience_or_before_start_people_see_the_control_and_no_variant() -> None:
    workspace: Any = WorkspaceFactory()
    admins = SegmentFactory(workspace=workspace, key="admins")
    ConditionFactory(segment=admins, trait="role", operator="eq", value="admin")
    experiment = tooltip_experiment(workspace, segment=admins)
    bold = person_in(experiment, "bold")
    viewer: Any = EndUserFactory(workspace=workspace, external_id=bold, traits={"role": "viewer"})
    admin: Any = EndUserFactory(
        workspace=workspace,
        external_id=person_in(experiment, "bold", 5000),
        traits={"role": "admin"},
    )
    # Draft: everyone gets the control, nobody the variant.
    assert [t["key"] for t in content_for(end_user=admin)["tooltips"]] == ["tip-a"]
    experiments.experiment_start(experiment=experiment)
    assert [t["key"] for t in content_for(end_user=admin)["tooltips"]] == ["tip-b"]
    assert [t["key"] for t in content_for(end_user=viewer)["tooltips"]] == ["tip-a"]
    experiments.experiment_stop(experiment=experiment)
    assert [t["key"] for t in content_for(end_user=admin)["tooltips"]] == ["tip-a"]


@pytest.mark.django_db
def test_shipping_a_variant_shows_it_to_everyone_and_shipping_the_holdout_shows_nothing() -> None:
    workspace: Any = WorkspaceFactory()
    experiment = tooltip_experiment(workspace)
    experiments.experiment_start(experiment=experiment)
    people: list[Any] = [
        EndUserFactory(workspace=workspace, external_id=f"p{n}") for n in range(20)
    ]
    experiments.experiment_ship(experiment=experiment, variant="bold")
    assert {tuple(t["key"] for t in content_for(end_user=p)["tooltips"]) for p in people} == {
        ("tip-b",)
    }
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.SHIPPED
    experiments.experiment_ship(experiment=experiment, variant="holdout")
    assert all(content_for(end_user=p)["tooltips"] == [] for p in people)
    with pytest.raises(ValidationError, match="No variant 'nope'"):
        experiments.experiment_ship(experiment=experiment, variant="nope")
    with pytest.raises(ValidationError, match="shipped"):
        experiments.experiment_start(experiment=experiment)


@pytest.mark.django_db
def test_start_refuses_unpublished_variant_content_and_a_bad_definition_names_the_field() -> None:
    workspace: Any = WorkspaceFactory()
    experiment = Experiment.objects.create(
        workspace=workspace,
        key="x",
        name="X",
        content_kind="tooltip",
        content_key="tip-a",
        variants=[
            {"key": "control", "weight": 1, "content_key": "tip-a"},
            {"key": "b", "weight": 1, "content_key": "never-published"},
        ],
    )
    services.content_publish(obj=tooltip(workspace=workspace, key="tip-a"))
    with pytest.raises(ValidationError, match="Publish this content first: never-published"):
        experiments.experiment_start(experiment=experiment)
    bad = Experiment(
        workspace=workspace,
        key="y",
        name="Y",
        content_kind="poster",
        content_key="tip-a",
        variants=[{"key": "control", "weight": 0, "content_key": "tip-b"}, {"key": "Control!"}],
    )
    with pytest.raises(ValidationError) as refused:
        bad.full_clean()
    errors = refused.value.message_dict
    assert "'poster' is not a kind of content" in errors["content_kind"][0]
    assert any("variants[0].weight" in m for m in errors["variants"])
    assert any("variants[1].key" in m for m in errors["variants"])


@pytest.fixture
async def _close_thread_connections() -> Any:
    """The async tests reach the database from asgiref's worker thread; close its connection
    so the test database can be dropped."""
    yield
    await sync_to_async(connections.close_all)()


def socket(key: str) -> WebsocketCommunicator:
    headers = [(b"origin", ORIGIN.encode())]
    return WebsocketCommunicator(application, f"/ws/widget/?key={key}", headers=headers)


async def say(communicator: WebsocketCommunicator, message: dict[str, Any]) -> dict[str, Any]:
    await communicator.send_to(text_data=json.dumps(message))
    return json.loads(await communicator.receive_from(timeout=5))


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_close_thread_connections")
async def test_exposure_is_recorded_once_when_the_page_matches_for_every_arm_holdout_included() -> (
    None
):
    workspace: Any = await sync_to_async(WorkspaceFactory)(allowed_origins=[ORIGIN])
    experiment = await sync_to_async(tooltip_experiment)(workspace)
    await sync_to_async(experiments.experiment_start)(experiment=experiment)
    key = workspace.keys["publishable_key"]
    holdout = person_in(experiment, "holdout")
    bold = person_in(experiment, "bold")

    async def hello(person: str, url: str) -> dict[str, Any]:
        communicator = socket(key)
        await communicator.connect()
        welcome = await say(
            communicator,
            {"type": "hello", "user": {"id": person, "traits": {}}, "page": {"url": url}},
        )
        await communicator.disconnect()
        return welcome

    # On a page the tooltip does not live on: delivered, but not exposed yet.
    first = await hello(holdout, "https://app.example.com/settings")
    assert first["content"]["tooltips"] == []
    assert await sync_to_async(exposures)(workspace) == []
    # The same person reconnects on the tooltip's page (another device, say): exposed once, in
    # the same arm, however often they come back.
    for _ in range(3):
        again = await hello(holdout, "https://app.example.com/campaigns/42?tab=1")
        assert again["content"]["tooltips"] == []
    welcome = await hello(bold, "https://app.example.com/campaigns/")
    assert [t["key"] for t in welcome["content"]["tooltips"]] == ["tip-b"]
    assert await sync_to_async(exposures)(workspace) == [(holdout, "holdout"), (bold, "bold")]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_close_thread_connections")
async def test_a_page_message_exposes_a_person_who_moves_to_the_contents_page() -> None:
    workspace: Any = await sync_to_async(WorkspaceFactory)(allowed_origins=[ORIGIN])
    experiment = await sync_to_async(tooltip_experiment)(workspace)
    await sync_to_async(experiments.experiment_start)(experiment=experiment)
    person = person_in(experiment, "control")
    communicator = socket(workspace.keys["publishable_key"])
    await communicator.connect()
    await say(
        communicator,
        {"type": "hello", "user": {"id": person}, "page": {"url": "https://app.example.com/"}},
    )
    assert await sync_to_async(exposures)(workspace) == []
    await communicator.send_to(
        text_data=json.dumps({"type": "page", "url": "https://app.example.com/campaigns/7"})
    )
    await communicator.send_to(text_data=json.dumps({"type": "events", "events": []}))
    await communicator.receive_from(timeout=5)  # the ack: the page message was handled
    await communicator.disconnect()
    assert await sync_to_async(exposures)(workspace) == [(person, "control")]


@pytest.mark.django_db
def test_the_http_bootstrap_honours_the_assignment_and_exposes(client: Any) -> None:
    workspace: Any = WorkspaceFactory(allowed_origins=[ORIGIN])
    experiment = tooltip_experiment(workspace)
    experiments.experiment_start(experiment=experiment)
    person = person_in(experiment, "bold")
    answer = client.post(
        "/api/v1/widget/bootstrap",
        data=json.dumps(
            {
                "key": workspace.keys["publishable_key"],
                "user": {"id": person},
                "page": {"url": "https://app.example.com/campaigns/1"},
            }
        ),
        content_type="application/json",
        HTTP_ORIGIN=ORIGIN,
    )
    assert answer.status_code == 200, answer.content
    assert [t["key"] for t in answer.json()["content"]["tooltips"]] == ["tip-b"]
    assert exposures(workspace) == [(person, "bold")]


# Content as code and the authoring API --------------------------------------------------

EXPERIMENT_FILE: dict[str, Any] = {
    "format": "milepost-content/1",
    "tooltips": [
        {"key": "tip-a", "name": "A", "selector": "#help", "body_markdown": "Plain"},
        {"key": "tip-b", "name": "B", "selector": "#help", "body_markdown": "**Bold**"},
    ],
    "experiments": [
        {
            "key": "tip-test",
            "name": "Tip test",
            "content_kind": "tooltip",
            "content_key": "tip-a",
            "variants": VARIANTS,
            "minimum_sample": 500,
        }
    ],
}


def put_content(client: Any, headers: dict[str, str], body: Any, query: str = "") -> Any:
    return client.put(
        f"/api/v1/content{query}", data=json.dumps(body), content_type="application/json", **headers
    )


@pytest.mark.django_db
def test_experiments_round_trip_as_code_and_run_through_the_api(
    client: Any, secret_headers: dict[str, str], workspace: Any
) -> None:
    answer = put_content(client, secret_headers, EXPERIMENT_FILE, "?publish=1")
    assert answer.status_code == 200, answer.content
    assert "create experiment 'tip-test'" in answer.json()["changes"]
    exported = client.get("/api/v1/content", **secret_headers).json()["experiments"]
    assert exported[0]["variants"] == VARIANTS
    assert exported[0]["minimum_sample"] == 500
    again = put_content(client, secret_headers, {**EXPERIMENT_FILE, "experiments": exported})
    assert [c for c in again.json()["changes"] if "experiment" in c] == []

    started = client.post("/api/v1/experiments/tip-test/start", **secret_headers)
    assert started.status_code == 200, started.content
    assert started.json()["status"] == "running"
    person: Any = EndUserFactory(workspace=workspace, external_id="someone")
    arm = experiments.assigned_variant(
        Experiment.objects.get(key="tip-test"), external_id="someone"
    )
    assert [t["key"] for t in content_for(end_user=person)["tooltips"]] == (
        [arm["content_key"]] if arm["content_key"] else []
    )
    # Running: the variants are fixed, from a file as anywhere.
    changed = [{**VARIANTS[0], "weight": 90}, *VARIANTS[1:]]
    refused = put_content(
        client,
        secret_headers,
        {**EXPERIMENT_FILE, "experiments": [{**exported[0], "variants": changed}]},
    )
    assert refused.status_code == 400
    assert "experiments[0].variants" in refused.json()["error"]["fields"]
    bad_ship = client.post(
        "/api/v1/experiments/tip-test/ship",
        data=json.dumps({"variant": "nope"}),
        content_type="application/json",
        **secret_headers,
    )
    assert bad_ship.status_code == 400
    assert "variant" in bad_ship.json()["error"]["fields"]
    shipped = client.post(
        "/api/v1/experiments/tip-test/ship",
        data=json.dumps({"variant": "bold"}),
        content_type="application/json",
        **secret_headers,
    )
    assert shipped.json()["status"] == "shipped"
    assert shipped.json()["shipped_variant"] == "bold"
    assert [t["key"] for t in content_for(end_user=person)["tooltips"]] == ["tip-b"]
    assert client.post("/api/v1/experiments/nope/start", **secret_headers).status_code == 404


@pytest.mark.django_db
def test_a_bad_experiment_in_a_file_is_refused_naming_the_field_and_writes_nothing(
    client: Any, secret_headers: dict[str, str]
) -> None:
    bad = {
        **EXPERIMENT_FILE,
        "experiments": [
            {
                **EXPERIMENT_FILE["experiments"][0],
                "variants": [{"key": "control", "weight": 1, "content_key": "tip-a"}],
                "segment": "nobody",
            }
        ],
    }
    answer = put_content(client, secret_headers, bad)
    assert answer.status_code == 400
    fields = answer.json()["error"]["fields"]
    assert "experiments[0].variants" in fields
    assert "experiments[0].segment" in fields
    assert not Experiment.objects.exists()


@pytest.mark.django_db
def test_an_experiment_on_a_banner_sends_each_person_only_their_variant_among_the_surfaces() -> (
    None
):
    workspace: Any = WorkspaceFactory()
    for key in ("notice-a", "notice-b"):
        services.content_publish(obj=BannerFactory(workspace=workspace, key=key))
    experiment = Experiment.objects.create(
        workspace=workspace,
        key="notice-test",
        name="Notice test",
        content_kind="banner",
        content_key="notice-a",
        variants=[
            {"key": "control", "weight": 1, "content_key": "notice-a"},
            {"key": "short", "weight": 1, "content_key": "notice-b"},
            {"key": "holdout", "weight": 1, "content_key": None},
        ],
    )
    experiment.full_clean()
    experiments.experiment_start(experiment=experiment)
    sent = {}
    for variant in ("control", "short", "holdout"):
        person: Any = EndUserFactory(
            workspace=workspace, external_id=person_in(experiment, variant)
        )
        surfaces = content_for(end_user=person).get("surfaces", {})
        sent[variant] = [banner["key"] for banner in surfaces.get("banners", [])]
    assert sent == {"control": ["notice-a"], "short": ["notice-b"], "holdout": []}
