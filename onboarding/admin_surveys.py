"""The survey form's questions in admin as fields, not raw JSON: one block per question (key,
type, prompt, optional, rating scale, choices one per line, NPS follow-ups per score band),
the questions there are plus blank ones to add. The blocks become the same JSON list the model
stores and onboarding/surveys.py checks; its problems ("questions[1].choices: …") come back
naming the question by number and key and the field by its label."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from onboarding.surveys import BANDS, MAX_QUESTIONS, QUESTION_TYPES

BLANK_ROWS = 2
TYPE_LABELS = {
    "nps": "NPS (0-10)",
    "rating": "Rating (stars)",
    "single_choice": "Single choice",
    "multiple_choice": "Multiple choice",
    "text": "Free text",
}
FIELD_LABELS = {
    "key": "key",
    "type": "type",
    "prompt": "prompt",
    "optional": "optional",
    "scale": "scale",
    "choices": "choices",
    "follow_up": "follow-ups",
    **{f"follow_up.{band}": f"follow-up for {band}s" for band in BANDS},
}
_PROBLEM = re.compile(r"^questions\[(\d+)\](?:\.([a-z_.]+))?: (.*)$", re.DOTALL)


def _row(data: Any, prefix: str) -> dict[str, Any] | None:
    """One block's question, or None for a block left blank."""

    def text(field: str) -> str:
        return str(data.get(f"{prefix}-{field}", "")).strip()

    key, kind, prompt = text("key"), text("type"), text("prompt")
    choices = [line.strip() for line in text("choices").splitlines() if line.strip()]
    scale = text("scale")
    follow_up = {band: text(f"follow_{band}") for band in BANDS if text(f"follow_{band}")}
    if not (key or prompt or choices or scale or follow_up):
        return None
    question: dict[str, Any] = {"key": key, "type": kind, "prompt": prompt}
    if data.get(f"{prefix}-optional"):
        question["optional"] = True
    # Whatever the author filled in is kept, so a field that does not fit the type is
    # reported ("Only a rating question has a scale.") rather than dropped.
    if scale:
        question["scale"] = int(scale) if scale.isdigit() else scale
    if choices:
        question["choices"] = choices
    if follow_up:
        question["follow_up"] = follow_up
    return question


class QuestionsWidget(forms.Widget):
    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        if f"{name}-rows" not in data:
            return None
        try:
            rows = min(int(data[f"{name}-rows"]), MAX_QUESTIONS + BLANK_ROWS)
        except ValueError:
            rows = 0
        found = (_row(data, f"{name}-{index}") for index in range(rows))
        return [question for question in found if question is not None]

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        questions = [q for q in value if isinstance(q, dict)] if isinstance(value, list) else []
        rows = min(len(questions) + BLANK_ROWS, MAX_QUESTIONS)
        blocks = [
            self._block(name, index, questions[index] if index < len(questions) else {})
            for index in range(max(rows, len(questions)))
        ]
        return format_html(
            '<div class="survey-questions"><input type="hidden" name="{}-rows" value="{}">{}'
            "<p class=help>Blank blocks are left out. Choices: one per line. Follow-ups (NPS "
            "only): the key of a later question asked after a score in that band (detractors "
            "0-6, passives 7-8, promoters 9-10).</p></div>",
            name,
            len(blocks),
            mark_safe("".join(blocks)),  # noqa: S308 - each block is built with format_html
        )

    def _block(self, name: str, index: int, question: dict[str, Any]) -> str:
        prefix = f"{name}-{index}"
        kind = question.get("type", "nps" if not question else "")
        types = format_html_join(
            "",
            '<option value="{}"{}>{}</option>',
            ((value, " selected" if value == kind else "", label) for value, label in _types()),
        )
        given = question.get("follow_up")
        follow_up: dict[str, Any] = given if isinstance(given, dict) else {}
        follow_ups = format_html_join(
            "",
            '<label>{}s <input name="{}-follow_{}" value="{}" size="12"></label> ',
            ((band.capitalize(), prefix, band, follow_up.get(band, "")) for band in BANDS),
        )
        choices = question.get("choices")
        scale = question.get("scale", "")
        return str(
            format_html(
                '<fieldset class="module survey-question" data-question="{}">'
                "<h2>Question {}</h2>"
                '<div class="form-row"><label>Key <input name="{}-key" value="{}" size="16">'
                '</label> <label>Type <select name="{}-type">{}</select></label> '
                '<label class="inline"><input type="checkbox" name="{}-optional"{}> Optional'
                "</label></div>"
                '<div class="form-row"><label>Prompt <input name="{}-prompt" value="{}" '
                'size="80"></label></div>'
                '<div class="form-row"><label>Choices (choice questions) <textarea '
                'name="{}-choices" rows="3" cols="40">{}</textarea></label> '
                '<label>Scale (rating, 2-10; empty: 5) <input name="{}-scale" value="{}" '
                'size="3"></label></div>'
                '<div class="form-row"><span class="band-label">Follow-ups (NPS):</span> {}</div>'
                "</fieldset>",
                index,
                index + 1,
                prefix,
                question.get("key", ""),
                prefix,
                types,
                prefix,
                " checked" if question.get("optional") is True else "",
                prefix,
                question.get("prompt", ""),
                prefix,
                "\n".join(str(c) for c in choices) if isinstance(choices, list) else "",
                prefix,
                scale,
                follow_ups,
            )
        )


def _types() -> list[tuple[str, str]]:
    return [("", "—"), *((kind, TYPE_LABELS.get(kind, kind)) for kind in QUESTION_TYPES)]


class QuestionsField(forms.Field):
    widget = QuestionsWidget

    def to_python(self, value: Any) -> Any:
        # None: the form came without the blocks (an old client); the model then reports
        # "A survey needs at least one question".
        return [] if value is None else value

    def validate(self, value: Any) -> None:
        # The model checks the questions (onboarding/surveys.py) and names each problem.
        return None


def friendly_problem(message: str, questions: Any) -> str:
    """ "questions[1].choices: List 2 to 20 choices." -> "Question 2 (“love”), choices: …"."""
    match = _PROBLEM.match(message)
    if match is None:
        return message.removeprefix("questions: ")
    index, field, text = int(match[1]), match[2], match[3]
    key = ""
    if isinstance(questions, list) and index < len(questions):
        found = questions[index]
        key = found.get("key", "") if isinstance(found, dict) else ""
    who = f"Question {index + 1}" + (f" (“{key}”)" if key else "")
    return f"{who}, {FIELD_LABELS.get(field, field)}: {text}" if field else f"{who}: {text}"
