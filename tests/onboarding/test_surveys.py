"""Surveys as authored content: questions checked on save and publish, answers checked against
the published survey before they are stored, results, frequency, milestones and PQLs from
answers, content as code, erasure."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from onboarding import recording, services, targeting
from onboarding.content_io import ContentImportError, content_export, content_import
from onboarding.models import (
    Criterion,
    ErasureRecord,
    Event,
    JourneyProgress,
    MilestoneCompletion,
    PublishedVersion,
    Survey,
    Workspace,
)
from onboarding.survey_results import survey_results, survey_text_answers
from tests.factories import EndUserFactory, JourneyFactory, MilestoneFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db(transaction=True)

NPS_QUESTIONS: list[dict[str, Any]] = [
    {
        "key": "score",
        "type": "nps",
        "prompt": "How likely are you to recommend us to a friend?",
        "follow_up": {"detractor": "fix", "promoter": "love"},
    },
    {"key": "fix", "type": "text", "prompt": "What should we fix first?"},
    {
        "key": "love",
        "type": "single_choice",
        "prompt": "What do you like most?",
        "choices": ["Speed", "Reports", "Support"],
    },
    {
        "key": "stars",
        "type": "rating",
        "prompt": "Rate the new editor",
        "scale": 5,
        "optional": True,
    },
    {
        "key": "use",
        "type": "multiple_choice",
        "prompt": "What do you use?",
        "choices": ["Tours", "Checklists", "Surveys"],
        "optional": True,
    },
]
DAY = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def make_survey(workspace: Workspace, key: str = "nps", **fields: Any) -> Survey:
    survey = Survey(workspace=workspace, key=key, name="How are we doing?", **fields)
    if "questions" not in fields:
        survey.questions = NPS_QUESTIONS
    survey.full_clean()
    survey.save()
    services.content_publish(obj=survey)
    return survey


def answer(question: str, value: Any, user: str = "u1", at: datetime = DAY, survey: str = "nps"):
    return {
        "id": str(uuid.uuid4()),
        "user_id": user,
        "name": "$survey_answered",
        "timestamp": at.isoformat(),
        "properties": {"survey": survey, "question": question, "answer": value},
    }


def sent(workspace: Workspace, *events: dict[str, Any]) -> recording.Ack:
    return recording.events_record(workspace=workspace, events=list(events), source="server")


def system(name: str, user: str = "u1", at: datetime = DAY, **properties: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "user_id": user,
        "name": name,
        "timestamp": at.isoformat(),
        "properties": {"survey": "nps", **properties},
    }


def live_surveys(person: Any) -> list[dict[str, Any]]:
    """The surveys in the person's content (`content.surfaces.surveys`, absent when none)."""
    return targeting.content_for(end_user=person).get("surfaces", {}).get("surveys", [])


@pytest.fixture
def workspace() -> Workspace:
    return WorkspaceFactory()


# Authoring ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("questions", "message"),
    [
        ([], "at least one question"),
        ([{"key": "a", "type": "nps", "prompt": "?"}] * 11, "At most 10 questions"),
        ([{"key": "a", "type": "smiley", "prompt": "?"}], "questions[0].type"),
        (
            [{"key": "a", "type": "single_choice", "prompt": "?", "choices": ["only"]}],
            "questions[0].choices: List 2 to 20",
        ),
        (
            [{"key": "a", "type": "single_choice", "prompt": "?", "choices": ["x", "x"]}],
            "must differ",
        ),
        ([{"key": "a", "type": "rating", "prompt": "?", "scale": 11}], "questions[0].scale"),
        ([{"key": "a", "type": "text", "prompt": ""}], "questions[0].prompt"),
        (
            [{"key": "a", "type": "nps", "prompt": "?", "follow_up": {"detractor": "zz"}}],
            "questions[0].follow_up.detractor: 'zz' is not the key of a later question",
        ),
        (
            [
                {"key": "a", "type": "nps", "prompt": "?", "follow_up": {"angry": "b"}},
                {"key": "b", "type": "text", "prompt": "?"},
            ],
            "follow_up: An object",
        ),
        (
            [
                {"key": "a", "type": "text", "prompt": "?"},
                {"key": "a", "type": "text", "prompt": "?"},
            ],
            "Duplicate question key",
        ),
        ([{"key": "a", "type": "text", "prompt": "?", "colour": "red"}], "Unknown field(s) colour"),
    ],
)
def test_a_survey_with_bad_questions_is_refused_naming_the_question(
    workspace: Workspace, questions: list[Any], message: str
) -> None:
    survey = Survey(workspace=workspace, key="s", name="S", questions=questions)

    with pytest.raises(ValidationError) as refused:
        survey.full_clean()

    assert any(message in m for m in refused.value.message_dict["questions"])


def test_an_inline_survey_needs_the_element_it_goes_inside(workspace: Workspace) -> None:
    survey = Survey(
        workspace=workspace, key="s", name="S", questions=NPS_QUESTIONS, display="inline"
    )

    with pytest.raises(ValidationError) as refused:
        survey.full_clean()

    assert "selector" in refused.value.message_dict


def test_a_published_survey_reaches_the_end_users_content_with_its_questions(
    workspace: Workspace,
) -> None:
    make_survey(workspace, priority=5)
    person = EndUserFactory(workspace=workspace)

    surveys = live_surveys(person)

    assert [s["key"] for s in surveys] == ["nps"]
    assert surveys[0]["questions"] == NPS_QUESTIONS
    assert surveys[0]["display"] == "popover"
    assert surveys[0]["version"] == 1
    assert surveys[0]["priority"] == 5


def test_editing_the_draft_changes_nothing_live_until_published(workspace: Workspace) -> None:
    survey = make_survey(workspace)
    person = EndUserFactory(workspace=workspace)
    survey.questions = [{"key": "only", "type": "text", "prompt": "Anything else?"}]
    survey.save()

    live = live_surveys(person)[0]
    assert live["questions"] == NPS_QUESTIONS
    services.content_publish(obj=survey)
    assert live_surveys(person)[0]["questions"][0]["key"] == "only"


def test_restoring_an_old_version_brings_its_questions_back(workspace: Workspace) -> None:
    survey = make_survey(workspace)
    survey.questions = [{"key": "only", "type": "text", "prompt": "Anything else?"}]
    survey.save()
    services.content_publish(obj=survey)

    first = PublishedVersion.objects.get(kind="survey", object_id=survey.pk, version=1)
    restored = services.content_restore(version=first)

    survey.refresh_from_db()
    assert survey.questions == NPS_QUESTIONS
    assert restored.version == 3
    assert restored.restored_from == 1


def test_a_survey_answered_or_dismissed_stops_showing_until_completed(
    workspace: Workspace,
) -> None:
    make_survey(workspace)
    person = EndUserFactory(workspace=workspace, external_id="u1")
    sent(workspace, system("$survey_shown"))
    assert live_surveys(person) != []

    sent(workspace, system("$survey_completed", at=DAY + timedelta(minutes=1)))
    assert live_surveys(person) == []
    # A later view from a stale tab does not bring it back.
    sent(workspace, system("$survey_shown", at=DAY + timedelta(minutes=2)))
    assert live_surveys(person) == []


def test_a_survey_shown_once_does_not_come_back_when_its_frequency_is_once(
    workspace: Workspace,
) -> None:
    make_survey(workspace, frequency="once")
    person = EndUserFactory(workspace=workspace, external_id="u1")

    sent(workspace, system("$survey_shown"))

    assert live_surveys(person) == []


# Answers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "value", "reason"),
    [
        ("score", 11, "properties.answer: 11 is not a whole number from 0 to 10"),
        ("score", -1, "not a whole number from 0 to 10"),
        ("score", 7.5, "not a whole number"),
        ("score", True, "not a whole number"),
        ("score", "9", "not a whole number"),
        ("stars", 6, "not a whole number from 1 to 5"),
        ("love", "Price", "'Price' is not a choice of question 'love'"),
        ("use", ["Tours", "Billing"], "'Billing' is not a choice of question 'use'"),
        ("use", [], "non-empty list"),
        ("use", ["Tours", "Tours"], "distinct"),
        ("fix", "", "non-empty text"),
        ("fix", "x" * 2001, "the limit is 2000"),
        ("nope", 3, "survey 'nps' has no question 'nope'"),
    ],
)
def test_an_answer_that_does_not_fit_its_question_is_rejected_and_not_stored(
    workspace: Workspace, question: str, value: Any, reason: str
) -> None:
    make_survey(workspace)
    bad = answer(question, value)

    ack = sent(workspace, bad, answer("score", 9))

    assert [r["id"] for r in ack.rejected] == [bad["id"]]
    assert reason in ack.rejected[0]["reason"]
    assert len(ack.accepted) == 1
    assert Event.objects.filter(name="$survey_answered").count() == 1


def test_an_answer_to_a_survey_that_is_not_published_is_rejected(workspace: Workspace) -> None:
    ack = sent(workspace, answer("score", 9, survey="ghost"))

    assert "no published survey with the key 'ghost'" in ack.rejected[0]["reason"]
    assert not Event.objects.exists()


def test_an_nps_answer_is_stored_with_its_band_set_by_the_server(workspace: Workspace) -> None:
    make_survey(workspace)
    lying = answer("score", 3)
    lying["properties"]["band"] = "promoter"

    sent(workspace, lying, answer("love", "Speed", user="u2"))

    stored = Event.objects.get(properties__question="score").properties
    assert stored == {
        "survey": "nps",
        "question": "score",
        "answer": 3,
        "type": "nps",
        "band": "detractor",
    }
    assert Event.objects.get(properties__question="love").properties["type"] == "single_choice"


def test_results_count_the_response_rate_nps_per_day_and_each_distribution(
    workspace: Workspace,
) -> None:
    survey = make_survey(workspace)
    next_day = DAY + timedelta(days=1)
    sent(
        workspace,
        *(system("$survey_shown", user=f"u{n}") for n in range(1, 5)),
        answer("score", 10, "u1"),
        answer("score", 9, "u2"),
        answer("score", 2, "u3", at=next_day),
        answer("love", "Speed", "u1"),
        answer("love", "Speed", "u2"),
        answer("stars", 4, "u1"),
        answer("use", ["Tours", "Surveys"], "u1"),
        answer("use", ["Tours"], "u2"),
        answer("fix", "The export is slow", "u3", at=next_day),
    )

    results = survey_results(survey=survey)

    assert (results.shown_to, results.answered_by, results.response_rate) == (4, 3, 75)
    score, fix, love, stars, use = results.questions
    days = [(d.day.isoformat(), d.promoters, d.passives, d.detractors) for d in score.nps_days]
    assert days == [("2026-11-02", 2, 0, 0), ("2026-11-03", 0, 0, 1)]
    assert [d.score for d in score.nps_days] == [100, -100]
    assert score.nps_total is not None
    assert score.nps_total.score == 33  # 2 promoters, 1 detractor of 3
    assert love.distribution == [("Speed", 2, 100), ("Reports", 0, 0), ("Support", 0, 0)]
    assert stars.distribution[3] == ("4", 1, 100)
    assert use.distribution == [("Tours", 2, 100), ("Checklists", 0, 0), ("Surveys", 1, 50)]
    assert fix.answers == 1
    texts, more = survey_text_answers(survey=survey, question="fix")
    assert [(t.external_id, t.answer) for t in texts] == [("u3", "The export is slow")]
    assert more is False


def test_free_text_answers_are_listed_newest_first_a_page_at_a_time(workspace: Workspace) -> None:
    survey = make_survey(workspace)
    sent(
        workspace,
        *(answer("fix", f"note {n}", f"u{n}", at=DAY + timedelta(minutes=n)) for n in range(55)),
    )

    first, more = survey_text_answers(survey=survey, question="fix")
    second, after = survey_text_answers(survey=survey, question="fix", page=2)

    assert (len(first), more, first[0].answer) == (50, True, "note 54")
    assert ([t.answer for t in second], after) == ([f"note {n}" for n in range(4, -1, -1)], False)


def test_erasing_a_person_erases_their_answers_from_the_results(workspace: Workspace) -> None:
    survey = make_survey(workspace)
    sent(workspace, system("$survey_shown"), answer("score", 3), answer("fix", "my e-mail is x"))
    person = workspace.end_users.get(external_id="u1")

    recording.end_user_erase(end_user=person, requested_by=ErasureRecord.Requester.SECRET_KEY)

    results = survey_results(survey=survey)
    assert (results.shown_to, results.answered_by) == (0, 0)
    assert survey_text_answers(survey=survey, question="fix") == ([], False)


def test_the_results_page_in_admin_shows_the_nps_and_the_free_text(
    workspace: Workspace, admin_client: Any
) -> None:
    survey = make_survey(workspace)
    sent(workspace, system("$survey_shown"), answer("score", 2), answer("fix", "Dark mode"))

    page = admin_client.get(reverse("admin:onboarding_survey_results", args=[survey.pk]))

    text = page.content.decode()
    assert page.status_code == 200
    assert "<strong>100 %</strong>: 1 of the 1 people" in text
    assert "NPS <strong>-100</strong>" in text
    assert "Dark mode" in text


# Milestones, PQLs --------------------------------------------------------------------------


def test_an_nps_of_9_or_10_plus_milestone_2_makes_a_pql(workspace: Workspace) -> None:
    journey = JourneyFactory(workspace=workspace, key="trial")
    MilestoneFactory(
        journey=journey,
        key="invited",
        event_name="teammate_invited",
        counts_toward_pql=True,
        position=1,
    )
    promoter = MilestoneFactory(
        journey=journey,
        key="promoter",
        criterion=Criterion.EVENT,
        event_name="$survey_answered",
        event_properties={"survey": "nps", "band": "promoter"},
        counts_toward_pql=True,
        position=2,
    )
    promoter.full_clean()
    services.content_publish(obj=journey)
    make_survey(workspace)
    plain = {"id": str(uuid.uuid4()), "user_id": "", "name": "teammate_invited"}

    sent(workspace, answer("score", 8, "passive"), {**plain, "user_id": "passive"})
    sent(workspace, answer("score", 9, "fan"), {**plain, "id": str(uuid.uuid4()), "user_id": "fan"})

    reached = set(
        MilestoneCompletion.objects.values_list("end_user__external_id", "milestone__key")
    )
    assert reached == {("passive", "invited"), ("fan", "invited"), ("fan", "promoter")}
    pqls = JourneyProgress.objects.filter(pql_at__isnull=False)
    assert list(pqls.values_list("end_user__external_id", flat=True)) == ["fan"]


def test_milestone_event_properties_must_be_plain_values(workspace: Workspace) -> None:
    journey = JourneyFactory(workspace=workspace)
    milestone = MilestoneFactory.build(
        journey=journey, workspace=workspace, event_properties={"answer": {"gte": 9}}
    )

    with pytest.raises(ValidationError) as refused:
        milestone.full_clean()

    assert "not a list or object" in refused.value.message_dict["event_properties"][0]


# Content as code ---------------------------------------------------------------------------


def test_a_survey_round_trips_through_content_as_code(workspace: Workspace) -> None:
    make_survey(workspace, display="inline", selector="#feedback", page_url_pattern="/app/*")
    document = content_export(workspace=workspace)
    other = WorkspaceFactory()

    result = content_import(workspace=other, data=document, publish=True)

    assert "create survey 'nps'" in result.changes
    assert "publish survey 'nps' as version 1" in result.changes
    assert content_export(workspace=other)["surveys"] == document["surveys"]
    again = content_import(workspace=other, data=document)
    assert again.changes == []


def test_importing_a_survey_with_a_bad_question_writes_nothing(workspace: Workspace) -> None:
    document = {
        "format": "milepost-content/1",
        "surveys": [
            {
                "key": "pulse",
                "name": "Pulse",
                "questions": [{"key": "q", "type": "single_choice", "prompt": "?", "choices": []}],
            }
        ],
    }

    with pytest.raises(ContentImportError) as refused:
        content_import(workspace=workspace, data=document)

    assert any(
        e.startswith("surveys[0].questions: questions[0].choices") for e in refused.value.errors
    )
    assert not Survey.objects.exists()


# Segments ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "properties", "expected"),
    [
        ("performed", {"survey": "nps", "band": "promoter"}, {"fan"}),
        ("not_performed", {"survey": "nps", "band": "promoter"}, {"critic", "quiet"}),
        ("performed", {"survey": "nps", "question": "love", "answer": "Speed"}, {"fan"}),
        ("performed", {"survey": "nps", "question": "score", "answer": 2}, {"critic"}),
    ],
)
def test_a_segment_can_hold_people_by_their_survey_answers(
    workspace: Workspace, operator: str, properties: dict[str, Any], expected: set[str]
) -> None:
    from analytics.report.segment_members import segment_members
    from onboarding.segments import segment_matches
    from tests.factories import ConditionFactory, SegmentFactory

    make_survey(workspace)
    sent(workspace, answer("score", 10, "fan"), answer("love", "Speed", "fan"))
    sent(workspace, answer("score", 2, "critic"), answer("fix", "Speed", "critic"))
    sent(workspace, {**system("$survey_shown", user="quiet")})
    segment = SegmentFactory(workspace=workspace)
    condition = ConditionFactory(
        segment=segment,
        kind="event",
        trait="",
        event_name="$survey_answered",
        event_properties=properties,
        operator=operator,
        value="",
    )
    condition.full_clean()
    people = list(workspace.end_users.all())

    in_python = {p.external_id for p in people if segment_matches(segment=segment, end_user=p)}
    in_database = set(segment_members(segment=segment).values_list("external_id", flat=True))
    assert in_python == expected
    assert in_database == expected


def test_a_survey_targeted_at_detractors_reaches_only_them(workspace: Workspace) -> None:
    from tests.factories import ConditionFactory, SegmentFactory

    make_survey(workspace)
    segment = SegmentFactory(workspace=workspace, key="detractors")
    ConditionFactory(
        segment=segment, kind="event", trait="", event_name="$survey_answered",
        event_properties={"survey": "nps", "band": "detractor"}, operator="performed", value="",
    )  # fmt: skip
    make_survey(
        workspace, key="win-back", segment=segment,
        questions=[{"key": "why", "type": "text", "prompt": "What went wrong?"}],
    )  # fmt: skip
    sent(workspace, answer("score", 10, "fan"), answer("score", 3, "critic"))

    keys = {p.external_id: [s["key"] for s in live_surveys(p)] for p in workspace.end_users.all()}

    assert keys == {"fan": ["nps"], "critic": ["nps", "win-back"]}


def test_the_authoring_api_imports_publishes_and_refuses_surveys(
    workspace: Workspace, client: Any
) -> None:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {workspace.keys['secret_key']}"}
    good = {
        "format": "milepost-content/1",
        "surveys": [{"key": "pulse", "name": "Pulse", "questions": NPS_QUESTIONS}],
    }
    bad = {
        "format": "milepost-content/1",
        "surveys": [{"key": "pulse", "name": "Pulse", "questions": [{"key": "q", "type": "nps"}]}],
    }

    refused = client.put("/api/v1/content", bad, content_type="application/json", **headers)
    created = client.put(
        "/api/v1/content?publish=1", good, content_type="application/json", **headers
    )
    again = client.post("/api/v1/content/survey/pulse/publish", **headers)

    assert refused.status_code == 400
    assert "surveys[0].questions" in refused.json()["error"]["fields"]
    assert created.status_code == 200
    assert "publish survey 'pulse' as version 1" in created.json()["changes"]
    assert (again.status_code, again.json()["version"]) == (201, 2)
