"""What a socket frame or request body parses to: the same values whichever parser read it
(orjson for most texts, the standard library where orjson refuses or would round an integer),
and the same specific refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onboarding import json_values
from tests.fuzzing import bounded

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def typed(value: Any) -> Any:
    """`value` with each scalar's type beside it: 1 and 1.0 and True are equal in Python."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return (type(value).__name__, value)


@bounded(300)
@given(value=VALUES, ascii_only=st.booleans())
def test_any_json_parses_to_what_the_standard_library_reads(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)

    assert typed(json_values.loads(text)) == typed(json.loads(text))


@pytest.mark.parametrize(
    "text",
    [
        "18446744073709551615",  # the largest unsigned 64-bit integer
        "18446744073709551616",
        "-9223372036854775809",
        '{"seats": 123456789012345678901234567890}',
        '["\\ud800", "\\udfff x"]',  # unpaired surrogates, escaped
        '{"a": 1, "a": 2}',
        '{"price": -0.0, "ratio": 1.5e308}',
    ],
)
def test_integers_past_64_bits_stay_integers_and_odd_strings_parse_as_before(text: str) -> None:
    assert typed(json_values.loads(text)) == typed(json.loads(text))


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        ("NaN", "malformed_json", "The message is not JSON this server accepts (NaN, Infinity"),
        ('{"n": Infinity}', "malformed_json", "The message is not JSON this server accepts"),
        ('{"n": 1', "malformed_json", "The message is not JSON: Expecting ',' delimiter."),
        ("[" * 5000 + "]" * 5000, "malformed_json", "The message is not JSON this server"),
        (
            '{"e": [{"n": 1e400}]}',
            "number_out_of_range",
            "e[0].n: 1e400 is beyond the range of a double-precision number (±1.8e308).",
        ),
    ],
)
def test_refusals_name_their_cause(text: str, code: str, message: str) -> None:
    with pytest.raises(json_values.JsonRefused) as refused:
        json_values.loads(text)

    assert refused.value.code == code
    assert refused.value.message.startswith(message)
