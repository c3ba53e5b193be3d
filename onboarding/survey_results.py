"""A survey's results, read from its events (`$survey_shown`, `$survey_answered`): response
rate, NPS per day with promoters / passives / detractors, the distribution of every question's
answers, and the free-text answers page by page.

They are the survey's own per-item statistics on its admin page (as a walkthrough's step
health is), so they live beside the content rather than in analytics' reports; every figure
is one aggregate query over the events of one survey (indexed by workspace and name).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate

from onboarding.models import Event, Survey
from onboarding.surveys import ANSWERED, BANDS

TEXT_PAGE_SIZE = 50


@dataclass(frozen=True)
class NpsDay:
    day: date
    promoters: int
    passives: int
    detractors: int

    @property
    def answers(self) -> int:
        return self.promoters + self.passives + self.detractors

    @property
    def score(self) -> int:
        """Net promoter score: % promoters - % detractors, from -100 to 100."""
        return round(100 * (self.promoters - self.detractors) / self.answers)


@dataclass(frozen=True)
class QuestionResult:
    key: str
    prompt: str
    type: str
    answers: int
    # (answer as shown, count, share of this question's answers in %), in the question's order.
    distribution: list[tuple[str, int, int]] = field(default_factory=list)
    nps_days: list[NpsDay] = field(default_factory=list)
    nps_total: NpsDay | None = None


@dataclass(frozen=True)
class SurveyResults:
    shown_to: int
    answered_by: int
    questions: list[QuestionResult]

    @property
    def response_rate(self) -> int | None:
        """% of the people it was shown to who answered at least one question."""
        if not self.shown_to:
            return None
        return round(100 * min(self.answered_by, self.shown_to) / self.shown_to)


def _events(survey: Survey, name: str) -> QuerySet[Event]:
    return Event.objects.filter(
        workspace_id=survey.workspace_id, name=name, properties__survey=survey.key
    )


def _people(events: QuerySet[Event]) -> int:
    return events.values("end_user_id").distinct().count()


def _share(count: int, total: int) -> int:
    return round(100 * count / total) if total else 0


def survey_results(*, survey: Survey) -> SurveyResults:
    """Results of the survey's current draft questions over every answer recorded."""
    answers = _events(survey, ANSWERED)
    counts: dict[str, dict[Any, int]] = {}
    for question, answer, number in (
        answers.exclude(properties__type="text")
        .values_list("properties__question", "properties__answer")
        .annotate(number=Count("id"))
        .order_by()
    ):
        by_answer = counts.setdefault(question, {})
        for value in answer if isinstance(answer, list) else [answer]:
            by_answer[value] = by_answer.get(value, 0) + number
    text_counts: dict[str, int] = dict(
        answers.filter(properties__type="text")
        .values_list("properties__question")
        .annotate(number=Count("id"))
        .order_by()
    )
    zone = ZoneInfo(survey.workspace.time_zone or "UTC")
    questions = []
    for question in survey.questions:
        key, kind = question["key"], question["type"]
        found = counts.get(key, {})
        if kind == "text":
            questions.append(QuestionResult(key, question["prompt"], kind, text_counts.get(key, 0)))
            continue
        total = sum(found.values())
        if kind in ("single_choice", "multiple_choice"):
            options: list[Any] = list(question["choices"])
        elif kind == "nps":
            options = list(range(11))
        else:
            options = list(range(1, int(question.get("scale", 5)) + 1))
        # A multiple-choice share is of the people who answered, so shares can sum past 100.
        people = (
            answers.filter(properties__question=key).count() if kind == "multiple_choice" else total
        )
        distribution = [(str(o), found.get(o, 0), _share(found.get(o, 0), people)) for o in options]
        days: list[NpsDay] = []
        overall = None
        if kind == "nps":
            days = _nps_days(answers.filter(properties__question=key), zone)
            if days:
                overall = NpsDay(
                    days[-1].day,
                    sum(d.promoters for d in days),
                    sum(d.passives for d in days),
                    sum(d.detractors for d in days),
                )
        questions.append(
            QuestionResult(key, question["prompt"], kind, people, distribution, days, overall)
        )
    return SurveyResults(
        shown_to=_people(_events(survey, "$survey_shown")),
        answered_by=_people(answers),
        questions=questions,
    )


def _nps_days(answers: QuerySet[Event], zone: ZoneInfo) -> list[NpsDay]:
    per_day: dict[date, dict[str, int]] = {}
    for day, band, number in (
        answers.annotate(day=TruncDate("timestamp", tzinfo=zone))
        .values_list("day", "properties__band")
        .annotate(number=Count("id"))
        .order_by("day")
    ):
        per_day.setdefault(day, dict.fromkeys(BANDS, 0))[band] = number
    return [
        NpsDay(day, bands["promoter"], bands["passive"], bands["detractor"])
        for day, bands in sorted(per_day.items())
    ]


@dataclass(frozen=True)
class TextAnswer:
    external_id: str
    timestamp: Any
    answer: str


def survey_text_answers(
    *, survey: Survey, question: str, page: int = 1
) -> tuple[list[TextAnswer], bool]:
    """One page (1-based, TEXT_PAGE_SIZE, newest first) of a free-text question's answers,
    and whether there is a next page."""
    start = (max(page, 1) - 1) * TEXT_PAGE_SIZE
    rows = list(
        _events(survey, ANSWERED)
        .filter(properties__question=question)
        .order_by("-timestamp", "-id")
        .values_list("end_user__external_id", "timestamp", "properties__answer")[
            start : start + TEXT_PAGE_SIZE + 1
        ]
    )
    return [TextAnswer(*row) for row in rows[:TEXT_PAGE_SIZE]], len(rows) > TEXT_PAGE_SIZE
