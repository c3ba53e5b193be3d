"""Surveys: the shape of a survey's questions and the check of every answer an end user sends.

A survey holds 1 to MAX_QUESTIONS questions, each a JSON object:
- `key` (slug, unique in the survey), `type`, `prompt` (text, at most MAX_PROMPT_LENGTH);
- `nps`: a score 0-10; optional `follow_up` {"detractor"|"passive"|"promoter": question key}
  names a later question asked only after a score in that band (detractor 0-6, passive 7-8,
  promoter 9-10); a question named as a follow-up is asked only that way;
- `rating`: a whole number 1..`scale` (`scale` 2-10, default 5);
- `single_choice` / `multiple_choice`: `choices`, 2 to MAX_CHOICES distinct texts of at most
  MAX_CHOICE_LENGTH; an answer is one of them (single) or a non-empty list of distinct ones;
- `text`: free text of 1 to MAX_ANSWER_LENGTH characters.
`optional: true` lets the end user skip a question.

Answers arrive as ordinary events (`$survey_answered` with `survey`, `question`, `answer`) and
are checked here against the survey's live published version before anything is stored: a
score of 11 or a choice the question does not offer is rejected with the reason, never stored.
The server adds `type`, and for an NPS answer its `band`, so rules, milestones and segments can
match "band = detractor" with a plain equality.
"""

from __future__ import annotations

import re
from typing import Any

MAX_QUESTIONS = 10
MAX_CHOICES = 20
MAX_CHOICE_LENGTH = 200
MAX_PROMPT_LENGTH = 500
MAX_ANSWER_LENGTH = 2000
QUESTION_TYPES = ("nps", "rating", "single_choice", "multiple_choice", "text")
BANDS = ("detractor", "passive", "promoter")
SURVEY_EVENTS = ("$survey_shown", "$survey_answered", "$survey_completed", "$survey_dismissed")
ANSWERED = "$survey_answered"
_KEY = re.compile(r"^[-a-zA-Z0-9_]{1,80}$")
_QUESTION_FIELDS = {"key", "type", "prompt", "optional", "follow_up", "scale", "choices"}


def nps_band(score: int) -> str:
    if score <= 6:
        return "detractor"
    return "passive" if score <= 8 else "promoter"


def question_problems(questions: Any) -> list[str]:
    """Everything wrong with a survey's questions, each naming where ("questions[1].choices")."""
    if not isinstance(questions, list) or not questions:
        return ["questions: A survey needs at least one question (a JSON list)."]
    if len(questions) > MAX_QUESTIONS:
        return [f"questions: At most {MAX_QUESTIONS} questions; this survey has {len(questions)}."]
    problems: list[str] = []
    keys: list[str] = []
    for index, question in enumerate(questions):
        where = f"questions[{index}]"
        if not isinstance(question, dict):
            problems.append(f"{where}: A question is a JSON object.")
            keys.append("")
            continue
        unknown = sorted(set(question) - _QUESTION_FIELDS)
        if unknown:
            problems.append(
                f"{where}: Unknown field(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(_QUESTION_FIELDS))}."
            )
        key = question.get("key")
        if not isinstance(key, str) or not _KEY.match(key):
            problems.append(f"{where}.key: Give a key of 1-80 letters, digits, - or _.")
        elif key in keys:
            problems.append(f"{where}.key: Duplicate question key {key!r}.")
        keys.append(key if isinstance(key, str) else "")
        kind = question.get("type")
        if kind not in QUESTION_TYPES:
            problems.append(f"{where}.type: Choose one of: {', '.join(QUESTION_TYPES)}.")
        prompt = question.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            problems.append(f"{where}.prompt: Write the question's text.")
        elif len(prompt) > MAX_PROMPT_LENGTH:
            problems.append(f"{where}.prompt: At most {MAX_PROMPT_LENGTH} characters.")
        if "optional" in question and not isinstance(question["optional"], bool):
            problems.append(f"{where}.optional: true or false.")
        problems += _type_problems(question, kind, where)
    problems += _follow_up_problems(questions, keys)
    return problems


def _type_problems(question: dict[str, Any], kind: Any, where: str) -> list[str]:
    problems: list[str] = []
    if "scale" in question and kind != "rating":
        problems.append(f"{where}.scale: Only a rating question has a scale.")
    if "choices" in question and kind not in ("single_choice", "multiple_choice"):
        problems.append(f"{where}.choices: Only a choice question has choices.")
    if "follow_up" in question and kind != "nps":
        problems.append(f"{where}.follow_up: Only an NPS question has follow-ups.")
    if kind == "rating" and "scale" in question:
        scale = question["scale"]
        if isinstance(scale, bool) or not isinstance(scale, int) or not 2 <= scale <= 10:
            problems.append(f"{where}.scale: A whole number from 2 to 10.")
    if kind in ("single_choice", "multiple_choice"):
        choices = question.get("choices")
        if not isinstance(choices, list) or not 2 <= len(choices) <= MAX_CHOICES:
            problems.append(f"{where}.choices: List 2 to {MAX_CHOICES} choices.")
        elif not all(
            isinstance(c, str) and c.strip() and len(c) <= MAX_CHOICE_LENGTH for c in choices
        ):
            problems.append(f"{where}.choices: Each choice is text of 1-{MAX_CHOICE_LENGTH}.")
        elif len(set(choices)) != len(choices):
            problems.append(f"{where}.choices: Choices must differ from each other.")
    return problems


def _follow_up_problems(questions: list[Any], keys: list[str]) -> list[str]:
    problems: list[str] = []
    named: set[str] = set()
    for index, question in enumerate(questions):
        if not isinstance(question, dict) or "follow_up" not in question:
            continue
        where = f"questions[{index}].follow_up"
        follow_up = question["follow_up"]
        if not isinstance(follow_up, dict) or set(follow_up) - set(BANDS):
            problems.append(f"{where}: An object whose keys are among {', '.join(BANDS)}.")
            continue
        for band, target in follow_up.items():
            if target not in keys[index + 1 :]:
                problems.append(f"{where}.{band}: {target!r} is not the key of a later question.")
            elif target in named or any(
                isinstance(q, dict) and q.get("key") == target and "follow_up" in q
                for q in questions
            ):
                problems.append(f"{where}.{band}: {target!r} already follows up another answer.")
            if isinstance(target, str):
                named.add(target)
    return problems


def follow_up_keys(questions: list[dict[str, Any]]) -> set[str]:
    """The keys of the questions asked only as a follow-up of an NPS band."""
    return {target for q in questions for target in (q.get("follow_up") or {}).values()}


class AnswerRejected(ValueError):
    """An answer that does not fit its survey's question; the message says why."""


def check_answer(
    *, properties: dict[str, Any], surveys: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """The properties of a `$survey_answered` event, checked against `surveys` (the live
    published questions by survey key), with `type` (and `band` for NPS) set by the server.
    Raises AnswerRejected naming the property that is wrong."""
    survey = properties.get("survey")
    if not isinstance(survey, str) or survey not in surveys:
        raise AnswerRejected(f"properties.survey: no published survey with the key {survey!r}")
    questions = {q["key"]: q for q in surveys[survey]}
    key = properties.get("question")
    question = questions.get(key) if isinstance(key, str) else None
    if question is None:
        raise AnswerRejected(
            f"properties.question: survey {survey!r} has no question {key!r}; "
            f"it has: {', '.join(questions)}"
        )
    if "answer" not in properties:
        raise AnswerRejected("properties.answer is missing")
    answer = properties["answer"]
    kind = question["type"]
    band: str | None = None
    match kind:
        case "nps":
            _whole_in(answer, 0, 10)
            band = nps_band(answer)
        case "rating":
            _whole_in(answer, 1, question.get("scale", 5))
        case "single_choice":
            if answer not in question["choices"]:
                raise AnswerRejected(
                    f"properties.answer: {answer!r} is not a choice of question {key!r}"
                )
        case "multiple_choice":
            if (
                not isinstance(answer, list)
                or not answer
                or len(set(map(str, answer))) != len(answer)
            ):
                raise AnswerRejected(
                    f"properties.answer: a non-empty list of distinct choices for question {key!r}"
                )
            for choice in answer:
                if choice not in question["choices"]:
                    raise AnswerRejected(
                        f"properties.answer: {choice!r} is not a choice of question {key!r}"
                    )
        case _:
            if not isinstance(answer, str) or not answer.strip():
                raise AnswerRejected("properties.answer: write a non-empty text")
            if len(answer) > MAX_ANSWER_LENGTH:
                raise AnswerRejected(
                    f"properties.answer: {len(answer)} characters; the limit is {MAX_ANSWER_LENGTH}"
                )
    checked = {**properties, "type": kind}
    checked.pop("band", None)
    if band is not None:
        checked["band"] = band
    return checked


def _whole_in(answer: Any, low: int, high: int) -> None:
    if isinstance(answer, bool) or not isinstance(answer, int) or not low <= answer <= high:
        raise AnswerRejected(
            f"properties.answer: {answer!r} is not a whole number from {low} to {high}"
        )
