"""The SDK's own words: every language speaks every word the core and the surfaces bundle
draw, plural forms the browser can pick from, and the peer comparison in the person's language."""

from __future__ import annotations

import re

import pytest

from onboarding import sdk_strings

# CLDR plural categories (what Intl.PluralRules.select answers).
CATEGORIES = {"zero", "one", "two", "few", "many", "other"}
# Words of the surfaces bundle a person reads or hears; none may stay English in a language
# that has a table (a screen reader reading "Close survey" to an Arabic speaker).
SURFACE_WORDS = (
    "close_survey", "thank_you", "skip", "send", "not_likely", "very_likely", "search",
    "search_help", "close_help", "no_results", "done_of", "replay", "read_more", "help_waits",
    "choose_answer", "write_answer", "dismiss_banner",
)  # fmt: skip


def words(tag: str) -> dict[str, str]:
    strings = sdk_strings.sdk_locale(tag)["strings"]
    assert isinstance(strings, list)
    return dict(zip(sdk_strings._ORDER, strings, strict=True))


@pytest.mark.parametrize("tag", sdk_strings.languages())
def test_every_language_has_the_surfaces_words_in_its_own_words(tag: str) -> None:
    mine, english = words(tag), words("en")
    for name in SURFACE_WORDS:
        assert mine[name].strip(), name
        assert sorted(re.findall(r"\{\d\}", mine[name])) == sorted(
            re.findall(r"\{\d\}", english[name])
        ), name
        if tag != "en":
            assert mine[name] != english[name], f"{tag} {name} is still English"


@pytest.mark.parametrize("tag", sdk_strings.languages())
def test_plural_forms_name_cldr_categories_and_always_have_other(tag: str) -> None:
    forms = dict(form.split(":", 1) for form in words(tag)["results"].split("|"))
    assert set(forms) <= CATEGORIES
    assert "{0}" in forms["other"]


def test_arabic_has_every_plural_category_it_uses() -> None:
    forms = dict(form.split(":", 1) for form in words("ar")["results"].split("|"))
    assert set(forms) == CATEGORIES  # Arabic distinguishes all six
    assert forms["two"] == "نتيجتان"


@pytest.mark.parametrize(
    ("tag", "percent", "people", "this_week", "expected"),
    [
        ("en", 75, 12, True, "Faster than 75 % of people who started this week"),
        ("fr-CA", 75, 12, False,
         "Plus rapide que 75 % des personnes qui ont commencé la même semaine"),
        ("fr", 100, 12, True, "Plus rapide que les 12 personnes qui ont commencé cette semaine"),
        ("ar", 80, 12, True, "أسرع من 80٪ من الأشخاص الذين بدأوا هذا الأسبوع"),
        ("ko", 75, 12, True, "Faster than 75 % of people who started this week"),  # no table
    ],
)  # fmt: skip
def test_the_peer_comparison_is_written_in_the_persons_language(
    tag: str, percent: int, people: int, this_week: bool, expected: str
) -> None:
    assert (
        sdk_strings.peer_text(tag, percent=percent, people=people, this_week=this_week) == expected
    )


def test_every_language_has_the_four_peer_sentences() -> None:
    for tag in sdk_strings.languages():
        sentences = sdk_strings._PEERS[tag]
        assert len(set(sentences)) == 4
        assert all("{0}" in sentence for sentence in sentences)
