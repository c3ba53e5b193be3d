"""JSON from outside (HTTP bodies, socket messages) and what no database column can store.

`loads` parses the JSON standard and no more: NaN and Infinity are not JSON, and a number
beyond a double (`1e400`, an integer of 309 digits) would reach the database as Infinity,
which PostgreSQL's jsonb and SQLite's json_valid both refuse. Such a message is refused whole,
naming the field, before anything is written. `shape` walks a parsed value once for what the
recording rules limit: nesting depth, NUL characters (no text column stores U+0000) and unpaired
surrogates (PostgreSQL refuses them). `dumps` writes the JSON the hot paths send and store.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from typing import Any

import orjson

_NUL = "\x00"
UNSTORABLE_CHARACTERS = re.compile("[\x00\ud800-\udfff]")
# An integer of this many digits or more may exceed a double (1.8e308, 309 digits).
_LONG_INTEGER_DIGITS = 309
# Digits enough for an integer beyond 64 bits (-9223372036854775809 has 19), found by marking
# every digit with a byte that JSON text never holds (a control character), ten times faster
# than a regular expression.
_DIGITS_MARKED = bytes.maketrans(b"0123456789", b"\x01" * 10)
_DIGIT_RUN = b"\x01" * 19


class JsonRefused(ValueError):
    """A message that is not JSON this server accepts: `code` for the answer, `field` (a path
    such as `events[0].properties.price`) when one value is the cause."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


class _Overflow(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise _Overflow(text)
    return number


def _finite_int(text: str) -> int:
    number = int(text)
    if len(text) >= _LONG_INTEGER_DIGITS and abs(number) > sys.float_info.max:
        raise _Overflow(text)
    return number


def loads(text: str) -> Any:
    """Parse `text`, or raise JsonRefused: `malformed_json` for what is not JSON (NaN,
    Infinity, nesting that exhausts the parser, integers over 4300 digits),
    `number_out_of_range` naming the first field that holds a number beyond a double."""
    # orjson parses the standard as the standard library does, in half its time for a
    # socket's one-event frame and less for bigger ones. Where it refuses (NaN, 1e400, an
    # unpaired surrogate, nesting past 1024) the standard library's parse below decides, so
    # the answer names the cause; so it does for a text with an integer orjson would turn
    # into a float (beyond 64 bits: 19 digits or more in a row, strings' digits included).
    try:
        utf8 = text.encode()
    except UnicodeEncodeError:  # an unpaired surrogate, which only the parse below places
        utf8 = None
    if utf8 is not None and _DIGIT_RUN not in utf8.translate(_DIGITS_MARKED):
        try:
            return orjson.loads(utf8)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_finite_int,
        )
    except _Overflow as overflow:
        number = str(overflow)[:40]
    except json.JSONDecodeError as error:
        raise JsonRefused("malformed_json", f"The message is not JSON: {error.msg}.") from None
    except (ValueError, RecursionError):
        raise _unacceptable() from None
    # The number may be followed by a syntax error the parser had not reached yet.
    try:
        parsed = json.loads(text, parse_float=float, parse_int=float)
    except json.JSONDecodeError as error:
        raise JsonRefused("malformed_json", f"The message is not JSON: {error.msg}.") from None
    except (ValueError, RecursionError):
        raise _unacceptable() from None
    field = shape(parsed, locate=True).where
    raise JsonRefused(
        "number_out_of_range",
        f"{field or 'a value'}: {number} is beyond the range of a double-precision number "
        "(±1.8e308).",
        field,
    )


def _unacceptable() -> JsonRefused:
    return JsonRefused(
        "malformed_json",
        "The message is not JSON this server accepts (NaN, Infinity, integers over 4300 "
        "digits and nesting deeper than ~1000 are refused).",
    )


@dataclass(frozen=True, slots=True)
class Shape:
    depth: int  # nesting of objects and arrays; the value itself is level 1 if it is one
    nul: bool  # some key or string holds U+0000
    surrogate: bool  # some key or string holds an unpaired surrogate
    nonfinite: bool  # some number is NaN or ±Infinity
    where: str | None = None  # with locate=True: the path of the first unstorable value

    @property
    def unstorable(self) -> bool:
        return self.nul or self.surrogate or self.nonfinite


def _child_path(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if UNSTORABLE_CHARACTERS.search(key):
        key = json.dumps(key)[1:-1]  # the path is shown in answers, which must be valid UTF-8
    return f"{path}.{key}" if path else key


def shape(value: Any, *, locate: bool = False) -> Shape:
    """Walk a parsed JSON value without recursion (the parser accepts nesting that Python's
    recursion would not survive), noting its depth and the values no database stores; with
    `locate`, also where the first of those is (slower: it builds every path)."""
    if not locate and type(value) is dict and (flat := _flat_shape(value)) is not None:
        return flat
    depth, nul, surrogate, nonfinite = 0, False, False, False
    where: str | None = None
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        item, level, path = stack.pop()
        found = False
        if isinstance(item, dict):
            depth = max(depth, level)
            for key, child in item.items():
                stack.append((key, level + 1, _child_path(path, key) if locate else ""))
                stack.append((child, level + 1, _child_path(path, key) if locate else ""))
        elif isinstance(item, list):
            depth = max(depth, level)
            stack.extend(
                (child, level + 1, _child_path(path, index) if locate else "")
                for index, child in enumerate(item)
            )
        elif isinstance(item, str) and (characters := UNSTORABLE_CHARACTERS.findall(item)):
            nul = nul or _NUL in characters
            surrogate = surrogate or any(ch != _NUL for ch in characters)
            found = True
        elif isinstance(item, float) and not math.isfinite(item):
            nonfinite = found = True
        if found and locate and where is None:
            where = path or "(the value itself)"
    return Shape(depth, nul, surrogate, nonfinite, where)


_PLAIN_SCALARS = frozenset({int, bool, type(None)})


def _flat_shape(value: dict[Any, Any]) -> Shape | None:
    """`shape` of an object holding no object or array (most events' properties, most traits)
    in one pass, its texts searched at once: a third of the walk's time on the write path.
    None for any other object, which the walk answers."""
    texts: list[str] = []
    nonfinite = False
    for key, item in value.items():
        kind = type(item)
        if type(key) is not str:
            return None
        texts.append(key)
        if kind is str:
            texts.append(item)
        elif kind is float:
            nonfinite = nonfinite or not math.isfinite(item)
        elif kind not in _PLAIN_SCALARS:
            return None
    characters = UNSTORABLE_CHARACTERS.findall("".join(texts))
    return Shape(1, _NUL in characters, any(ch != _NUL for ch in characters), nonfinite)


# JSON we write -------------------------------------------------------------------------------

# What the standard library writes where orjson refuses: integers beyond 64 bits (the parser
# above accepts them up to a double's range) and unpaired surrogates (an event is measured
# before it is refused for them). ASCII, so that any text it holds stays writable.
_FALLBACK_JSON = json.JSONEncoder(separators=(",", ":"), default=str)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON of `value`: what the socket sends, what an event's size is measured
    by and the document a batch is inserted from. orjson, written in Rust, takes a tenth of the
    standard library's time for the small objects these are; datetimes become RFC 3339 text and
    UUIDs their canonical form, as PostgreSQL and the SDK read them."""
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return _FALLBACK_JSON.encode(value).encode()
