"""Small helpers every report shares: rates, seconds, and store SQL fragments."""

from __future__ import annotations

from datetime import date, timedelta

# Calendar buckets in the report's time zone (the next `{tz:String}` parameter), as Dates: a
# day is a local day (a daylight-saving day is one day), weeks start on Monday.
BUCKET = {
    "day": "toDate({column}, {{tz:String}})",
    "week": "toMonday({column}, {{tz:String}})",
    "month": "toStartOfMonth({column}, {{tz:String}})",
}


def bucket(column: str, period: str) -> str:
    return BUCKET[period].format(column=column)


def json_text(column: str, key: str) -> str:
    """A JSON object's member as text, by the member name in the `{key:String}` parameter named
    `key`: strings unquoted, numbers and booleans in their JSON spelling, absent or null NULL
    (what PostgreSQL's ->> gives). The document is parsed once."""
    raw = f"JSONExtractRaw({column}, {{{key}:String}})"
    return (
        f"multiIf(startsWith({raw}, '\"'), JSONExtractString(concat('[', {raw}, ']'), 1),"
        f" {raw} IN ('', 'null'), NULL, {raw})"
    )


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def period_index(start: date, later: date, period: str) -> int:
    if period == "day":
        return (later - start).days
    if period == "week":
        return (later - start).days // 7
    return (later.year - start.year) * 12 + later.month - start.month


def period_start(day: date, offset: int, period: str) -> date:
    if period == "day":
        return day + timedelta(days=offset)
    if period == "week":
        return day + timedelta(weeks=offset)
    months = day.year * 12 + day.month - 1 + offset
    return date(months // 12, months % 12 + 1, 1)
