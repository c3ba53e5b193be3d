"""Is a CSS selector one that browsers accept in `document.querySelector`?

Validated the way a browser's selector engine does it: the text is tokenized by the CSS Syntax
Level 3 rules (tinycss2, the same tokenizer browsers implement: escapes, strings, blocks closed
at the end of input), then parsed by the Selectors Level 4 grammar with only the pseudo-classes
and pseudo-elements that Chromium, Firefox and Safari know. jQuery-isms (`:contains()`, `:eq()`,
`:first`, `:visible`), undeclared namespace prefixes (`svg|rect`: `querySelector` has no
namespace map), leading combinators outside `:has()` and bad An+B arguments are refused.
General-purpose parsers such as cssselect or soupsieve accept `:contains()` and so cannot
answer this question. tests/browser/test_selector_syntax.py checks this module against real
Chromium's `document.querySelector` over a corpus of valid, invalid and edge-case selectors.

`selector_problem(text)` returns None for a valid selector, else a short reason.
"""

from __future__ import annotations

from collections.abc import Sequence

import tinycss2
from tinycss2 import ast

# Pseudo-classes without arguments that browsers support (lowercase; matched ASCII
# case-insensitively, as browsers do).
PSEUDO_CLASSES = frozenset(
    """active any-link autofill checked default defined disabled empty enabled first-child
    first-of-type focus focus-visible focus-within fullscreen future hover in-range
    indeterminate invalid last-child last-of-type link modal only-child only-of-type optional
    out-of-range past paused picture-in-picture placeholder-shown playing popover-open read-only
    read-write required root scope target user-invalid user-valid valid visited host open
    -webkit-autofill -webkit-any-link -webkit-full-screen""".split()  # noqa: SIM905
)
# The CSS 2 pseudo-elements, which may also be written with one colon.
LEGACY_PSEUDO_ELEMENTS = frozenset({"before", "after", "first-line", "first-letter"})
PSEUDO_ELEMENTS = LEGACY_PSEUDO_ELEMENTS | frozenset(
    """marker placeholder selection backdrop file-selector-button cue target-text
    grammar-error spelling-error -webkit-scrollbar -webkit-scrollbar-thumb
    -webkit-scrollbar-track""".split()  # noqa: SIM905
)
# What may follow a pseudo-element: user-action pseudo-classes (and the CSS 2 pseudo-elements)
# after `::part()`; those and the scrollbar states after a `::-webkit-` pseudo-element (which
# Chromium accepts whatever its name). Nothing else: `::before:hover` is refused.
USER_ACTION = frozenset({"hover", "active", "focus", "focus-visible", "focus-within"})
SCROLLBAR_STATES = USER_ACTION | frozenset(
    """horizontal vertical decrement increment start end double-button single-button no-button
    corner-present window-inactive""".split()  # noqa: SIM905
)
COMBINATORS = {">", "+", "~"}


class SelectorSyntaxError(Exception):
    pass


def selector_problem(text: str) -> str | None:
    """None when browsers accept `text` as a selector list, else why not."""
    if not text.strip():
        return "it is empty"
    try:
        _selector_list(tinycss2.parse_component_value_list(text, skip_comments=True))
    except SelectorSyntaxError as error:
        return str(error)
    return None


def _fail(message: str) -> SelectorSyntaxError:
    return SelectorSyntaxError(message)


def _is_ws(token: ast.Node) -> bool:
    return token.type == "whitespace"


def _literal(token: ast.Node | None, *values: str) -> bool:
    return token is not None and token.type == "literal" and token.value in values


def _strip(tokens: Sequence[ast.Node]) -> list[ast.Node]:
    out = [t for t in tokens if not (t.type == "error" and not _is_bad(t))]
    while out and _is_ws(out[0]):
        out.pop(0)
    while out and _is_ws(out[-1]):
        out.pop()
    return out


def _split_commas(tokens: Sequence[ast.Node]) -> list[list[ast.Node]]:
    parts: list[list[ast.Node]] = [[]]
    for token in tokens:
        if _literal(token, ","):
            parts.append([])
        else:
            parts[-1].append(token)
    return [_strip(part) for part in parts]


def _selector_list(tokens: Sequence[ast.Node], *, relative: bool = False, nested: str = "") -> None:
    for part in _split_commas(tokens):
        if not part:
            raise _fail("a selector in the list is empty (a stray comma)")
        _complex(part, relative=relative, nested=nested)


def _forgiving_list(tokens: Sequence[ast.Node]) -> None:
    """`:is()` and `:where()` drop the selectors they cannot parse instead of failing; but a
    token that is bad CSS in itself (an unmatched bracket) still fails the whole selector."""
    for part in _split_commas(tokens):
        _bad_tokens(part)


def _is_bad(token: ast.Node) -> bool:
    # A string or url left open at the end of the input is closed there, as in a browser.
    return token.type == "error" and token.kind not in {"eof-in-string", "eof-in-url"}


def _bad_tokens(tokens: Sequence[ast.Node]) -> None:
    for token in tokens:
        if _is_bad(token):
            raise _fail(f"bad CSS: {token.message}")
        if token.type in {"() block", "[] block", "{} block", "function"}:
            _bad_tokens(token.arguments if token.type == "function" else token.content)


def _complex(tokens: list[ast.Node], *, relative: bool, nested: str) -> None:
    """A complex selector: compounds joined by combinators (and, inside `:has()`, one leading
    combinator). `nested` is "" at the top, "nested" inside a pseudo-class's argument and
    "has" anywhere inside `:has()` (which cannot nest)."""
    index = 0
    expect_compound = True
    saw_combinator = False
    first = True
    while index < len(tokens):
        token = tokens[index]
        if _is_ws(token):
            index += 1
            continue
        if _literal(token, *COMBINATORS):
            if (first and not relative) or saw_combinator:
                raise _fail(f"the combinator {token.value!r} has no selector before it")
            saw_combinator = True
            expect_compound = True
            first = False
            index += 1
            continue
        if _literal(token, "||"):
            raise _fail("the column combinator || is not supported by browsers")
        # Whitespace between two compounds is the descendant combinator.
        if not expect_compound and not _is_ws(tokens[index - 1]):
            raise _fail(f"unexpected {_show(token)}")
        index = _compound(tokens, index, nested=nested)
        expect_compound = False
        saw_combinator = False
        first = False
    if saw_combinator:
        raise _fail("the selector ends with a combinator")


def _show(token: ast.Node) -> str:
    return repr(token.serialize())


def _compound(tokens: list[ast.Node], index: int, *, nested: str) -> int:
    """Parse one compound selector from `tokens[index]`; return the index after it."""
    start = index
    index = _type_selector(tokens, index)
    element = ""  # the kind of pseudo-element met so far, if any
    while index < len(tokens):
        token = tokens[index]
        if _is_ws(token) or _literal(token, *COMBINATORS, "||"):
            break
        if element and not _literal(token, ":"):
            raise _fail(f"{_show(token)} cannot follow a pseudo-element")
        if token.type == "hash":
            if not token.is_identifier:
                raise _fail(f"#{token.value} is not an id selector (an id cannot start so)")
            index += 1
        elif _literal(token, "."):
            following = tokens[index + 1] if index + 1 < len(tokens) else None
            if following is None or following.type != "ident":
                raise _fail("a class selector needs a name after the dot")
            index += 2
        elif token.type == "[] block":
            _attribute(token.content)
            index += 1
        elif _literal(token, "&"):
            index += 1
        elif _literal(token, ":"):
            index, element = _pseudo(tokens, index, after=element, nested=nested)
        elif _is_bad(token):
            raise _fail(f"bad CSS: {token.message}")
        elif token.type in {"ident", "literal"} and index > start:
            raise _fail(f"{_show(token)} must come first in its compound selector")
        else:
            raise _fail(f"unexpected {_show(token)}")
    if index == start:
        raise _fail(f"unexpected {_show(tokens[index])}")
    return index


def _type_selector(tokens: list[ast.Node], index: int) -> int:
    """An optional `[ns|]name` or `[ns|]*`; only the `*|` and `|` prefixes are declared."""

    def name_at(i: int) -> bool:
        return i < len(tokens) and (tokens[i].type == "ident" or _literal(tokens[i], "*"))

    def bar_at(i: int) -> bool:
        return i < len(tokens) and _literal(tokens[i], "|")

    if bar_at(index):
        if not name_at(index + 1):
            raise _fail("a namespace bar needs an element name after it")
        return index + 2
    if name_at(index):
        if bar_at(index + 1):
            if tokens[index].type == "ident":
                raise _fail(
                    f"the namespace prefix {tokens[index].value!r} is not declared "
                    "(querySelector knows no namespaces; use *| or none)"
                )
            if not name_at(index + 2):
                raise _fail("a namespace bar needs an element name after it")
            return index + 3
        return index + 1
    return index


def _attribute(content: list[ast.Node]) -> None:
    tokens = _strip(content)
    index = 0
    if index < len(tokens) and _literal(tokens[index], "|"):
        index += 1
    elif (
        index + 1 < len(tokens)
        and (_literal(tokens[index], "*") or tokens[index].type == "ident")
        and _literal(tokens[index + 1], "|")
    ):
        if tokens[index].type == "ident":
            raise _fail(f"the namespace prefix {tokens[index].value!r} is not declared")
        index += 2
    if index >= len(tokens) or tokens[index].type != "ident":
        raise _fail("an attribute selector needs an attribute name")
    index += 1
    rest = [t for t in tokens[index:] if not _is_ws(t)]
    # Whitespace may separate the parts, but not the name from a namespace bar (handled by
    # position above) nor split an operator (the tokenizer keeps `~=` whole).
    if not rest:
        return
    if not _literal(rest[0], "=", "~=", "|=", "^=", "$=", "*="):
        raise _fail(f"{_show(rest[0])} is not an attribute operator (=, ~=, |=, ^=, $=, *=)")
    if len(rest) < 2 or rest[1].type not in {"ident", "string"}:
        raise _fail("an attribute value must be a name or a quoted string")
    if len(rest) == 3 and rest[2].type == "ident" and rest[2].lower_value == "i":
        return
    if len(rest) > 2:
        raise _fail(f"unexpected {_show(rest[2])} in an attribute selector (quote the value?)")


def _pseudo(tokens: list[ast.Node], index: int, *, after: str, nested: str) -> tuple[int, str]:
    """A pseudo-class or pseudo-element at `tokens[index]` (a colon), `after` the kind of
    pseudo-element before it in the compound ("" for none); returns the index after it and
    the kind of pseudo-element the compound now ends in."""
    double = index + 1 < len(tokens) and _literal(tokens[index + 1], ":")
    at = index + 2 if double else index + 1
    token = tokens[at] if at < len(tokens) else None
    if token is None or token.type not in {"ident", "function"}:
        raise _fail("a colon must be followed by a pseudo-class name")
    name = token.lower_value if token.type == "ident" else token.lower_name
    shown = f"{'::' if double else ':'}{name}{'()' if token.type == 'function' else ''}"
    if double or (token.type == "ident" and name in LEGACY_PSEUDO_ELEMENTS):
        legacy_after_part = after == "part" and name in LEGACY_PSEUDO_ELEMENTS
        if (after and not legacy_after_part) or nested:
            raise _fail(f"{shown} is not allowed here")
        if token.type == "ident" and name.startswith("-webkit-"):
            return at + 1, "webkit"
        if token.type == "ident" and name in PSEUDO_ELEMENTS:
            return at + 1, "element"
        if token.type == "function" and name in {"part", "highlight"}:
            _idents(token.arguments, shown, many=name == "part")
            return at + 1, name
        if token.type == "function" and name == "slotted":
            _compound_argument(token.arguments, shown)
            return at + 1, "element"
        raise _fail(f"{shown} is not a pseudo-element browsers know")
    allowed = {"part": USER_ACTION, "webkit": SCROLLBAR_STATES}.get(after, frozenset())
    if after and not (token.type == "ident" and name in allowed):
        raise _fail(f"{shown} cannot follow a pseudo-element")
    if token.type == "ident":
        if name not in PSEUDO_CLASSES and name not in allowed:
            raise _fail(f"{shown} is not a pseudo-class browsers know (a jQuery extension?)")
        return at + 1, after
    _functional_pseudo_class(name, token.arguments, shown, nested=nested)
    return at + 1, after


def _functional_pseudo_class(
    name: str, arguments: list[ast.Node], shown: str, *, nested: str
) -> None:
    if name in {"is", "where"}:
        _forgiving_list(arguments)
    elif name == "not":
        _non_empty(arguments, shown)
        _selector_list(arguments, nested=nested or "nested")
    elif name == "has":
        if nested == "has":
            raise _fail(":has() cannot be nested in :has()")
        _non_empty(arguments, shown)
        for part in _split_commas(arguments):
            if not part:
                raise _fail(f"a selector in {shown} is empty (a stray comma)")
            _complex(part, relative=True, nested="has")
    elif name in {"nth-child", "nth-last-child"}:
        _nth(arguments, shown, of_allowed=True, nested=nested)
    elif name in {"nth-of-type", "nth-last-of-type"}:
        _nth(arguments, shown, of_allowed=False, nested=nested)
    elif name in {"host", "host-context"}:
        _compound_argument(arguments, shown)
    elif name == "-webkit-any":
        # Chromium and Safari's old :is(): a list of compound selectors, none empty.
        for part in _split_commas(arguments):
            if not part or _compound(part, 0, nested="nested") != len(part):
                raise _fail(f"{shown} takes compound selectors")
    elif name in {"lang", "dir", "state"}:
        _idents(arguments, shown, many=False)
    else:
        raise _fail(f"{shown} is not a pseudo-class browsers know (a jQuery extension?)")


def _non_empty(arguments: list[ast.Node], shown: str) -> None:
    if not _strip(arguments):
        raise _fail(f"{shown} needs a selector inside")


def _compound_argument(arguments: list[ast.Node], shown: str) -> None:
    tokens = _strip(arguments)
    if not tokens or _compound(tokens, 0, nested="nested") != len(tokens):
        raise _fail(f"{shown} takes one compound selector")


def _idents(arguments: list[ast.Node], shown: str, *, many: bool) -> None:
    """One name, or (`many`) names separated by spaces."""
    names = [t for t in _strip(arguments) if not _is_ws(t)]
    if not names or (len(names) > 1 and not many) or any(t.type != "ident" for t in names):
        raise _fail(f"{shown} takes a name")


def _nth(arguments: list[ast.Node], shown: str, *, of_allowed: bool, nested: str) -> None:
    tokens = _strip(arguments)
    of_at = next(
        (
            i
            for i, t in enumerate(tokens)
            if t.type == "ident" and t.lower_value == "of" and i > 0 and _is_ws(tokens[i - 1])
        ),
        None,
    )
    if of_at is not None:
        if not of_allowed:
            raise _fail(f"{shown} takes no 'of S'")
        selectors = _strip(tokens[of_at + 1 :])
        if not selectors or of_at + 1 >= len(tokens) or not _is_ws(tokens[of_at + 1]):
            raise _fail(f"'of' in {shown} needs a selector after a space")
        _selector_list(selectors, nested=nested or "nested")
        tokens = _strip(tokens[:of_at])
    if not _an_plus_b(tokens):
        raise _fail(f"{shown} needs an An+B argument such as 2n+1, odd or 3")


def _integer(token: ast.Node | None, *, signed: bool | None) -> bool:
    """A number token that is an integer; `signed` True/False demands a sign or none."""
    if token is None or token.type != "number" or not token.is_integer:
        return False
    has_sign = token.representation[:1] in {"+", "-"}
    return signed is None or has_sign == signed


def _an_plus_b(tokens: list[ast.Node]) -> bool:
    """The An+B microsyntax (CSS Syntax Level 3, section 6) over tokens."""
    if not tokens:
        return False
    first = tokens[0]
    if len(tokens) == 1 and first.type == "ident" and first.lower_value in {"odd", "even"}:
        return True
    if len(tokens) == 1 and _integer(first, signed=None):
        return True
    rest: list[ast.Node]
    if first.type == "dimension" and first.is_integer:
        unit, rest = first.unit.lower(), tokens[1:]
    elif first.type == "ident":
        unit, rest = first.lower_value.removeprefix("-"), tokens[1:]
    elif (_literal(first, "+") and len(tokens) > 1 and tokens[1].type == "ident") and not tokens[
        1
    ].value.startswith("-"):
        unit, rest = tokens[1].lower_value, tokens[2:]
    else:
        return False
    if unit == "n":
        return _b_part(rest)
    if unit == "n-":
        following = [t for t in rest if not _is_ws(t)]
        return len(following) == 1 and _integer(following[0], signed=False)
    digits = unit.removeprefix("n-")
    return unit.startswith("n-") and digits.isdigit() and digits.isascii() and not rest


def _b_part(rest: list[ast.Node]) -> bool:
    following = [t for t in rest if not _is_ws(t)]
    if not following:
        return True
    if len(following) == 1:
        return _integer(following[0], signed=True)
    if len(following) == 2 and _literal(following[0], "+", "-"):
        return _integer(following[1], signed=False)
    return False
