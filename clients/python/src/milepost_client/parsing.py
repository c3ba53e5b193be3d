"""JSON answers of the API into the client's frozen dataclasses, driven by their type hints.

Every result class derives from `Result`, whose `raw` keeps the answer's JSON object as it came:
a field a newer Milepost adds is ignored by parsing and readable in `raw` (forward compatible),
a field a result declares but the answer lacks is None when the type allows it. A value of the
wrong type, or a required field missing, raises `UnexpectedResponseError` naming its path."""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import date, datetime
from typing import Any, TypeVar, Union

from milepost_client.errors import UnexpectedResponseError

R = TypeVar("R", bound="Result")


@dataclasses.dataclass(frozen=True)
class Result:
    """Base of every typed result: `raw` is the JSON object it was parsed from."""

    raw: dict[str, Any] = dataclasses.field(
        default_factory=dict, repr=False, compare=False, kw_only=True
    )

    @classmethod
    def _derived(cls, data: dict[str, Any], path: str) -> dict[str, Any]:
        """Fields whose value is not simply the JSON member of the same name."""
        return {}


def parse(cls: type[R], data: Any, path: str = "$", **known: Any) -> R:
    """An instance of `cls` from a JSON object; `known` supplies fields that do not come from
    the object (e.g. whether an identify created the end user, which the status tells)."""
    if not isinstance(data, dict):
        raise UnexpectedResponseError(f"{path}: expected an object, got {_kind(data)}")
    known = {**cls._derived(data, path), **known}
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name == "raw":
            continue
        if field.name in known:
            values[field.name] = known[field.name]
            continue
        hint = _hints(cls)[field.name]
        if field.name in data:
            values[field.name] = _convert(hint, data[field.name], f"{path}.{field.name}")
        elif _optional(hint):
            values[field.name] = None
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise UnexpectedResponseError(f"{path}.{field.name}: missing from the answer")
    return typing.cast(Any, cls)(**values, raw=data)  # type: ignore[no-any-return]


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _optional(hint: Any) -> bool:
    return _is_union(hint) and type(None) in typing.get_args(hint)


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (Union, types.UnionType)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _convert(hint: Any, value: Any, path: str) -> Any:
    if hint is Any:
        return value
    if _is_union(hint):
        if value is None and type(None) in typing.get_args(hint):
            return None
        (inner,) = (arg for arg in typing.get_args(hint) if arg is not type(None))
        return _convert(inner, value, path)
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list):
            raise UnexpectedResponseError(f"{path}: expected a list, got {_kind(value)}")
        item = typing.get_args(hint)[0]
        return tuple(_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise UnexpectedResponseError(f"{path}: expected an object, got {_kind(value)}")
        return value
    if isinstance(hint, type) and issubclass(hint, Result):
        return parse(hint, value, path)
    return _scalar(hint, value, path)


def _scalar(hint: Any, value: Any, path: str) -> Any:
    if hint is datetime or hint is date:
        if isinstance(value, str):
            try:
                return hint.fromisoformat(value)
            except ValueError:
                pass
        raise UnexpectedResponseError(f"{path}: expected an ISO 8601 {hint.__name__}: {value!r}")
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool):
        raise UnexpectedResponseError(f"{path}: expected an int, got bool")
    if isinstance(value, hint):
        return value
    raise UnexpectedResponseError(f"{path}: expected {hint.__name__}, got {_kind(value)}")
