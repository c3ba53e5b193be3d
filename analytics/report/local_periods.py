"""Local days, Monday weeks and months as numbers, computed in the analytics store by
arithmetic on milliseconds instead of ClickHouse's time-zone calendar (`toMonday(t, zone)` per
event was a large share of retention's cost at 10 M events).

An instant travels as milliseconds since EPOCH_MS (1900-01-01 00:00 UTC). Its local day number
(days since FIRST_DAY, 1899-12-31) adds the zone's UTC offset at that instant: a `multiIf` over
the offset changes inside the report's window, found here in Python. Past MAX_TRANSITIONS
changes or MAX_WINDOW_DAYS days (a range of decades), ClickHouse's calendar gives the day.
Weeks start on Monday (week 1 begins 1900-01-01); months are numbered year * 12 + month.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

EPOCH_MS = -2_208_988_800_000  # 1900-01-01 00:00 UTC
DAY_MS = 86_400_000
# Finding the changes day by day over 400 years took 1.6 s.
MAX_TRANSITIONS = 48
MAX_WINDOW_DAYS = 3_660
FIRST_DAY = date(1899, 12, 31)  # local day number 0 (a Sunday); 1900-01-01 is day 1

Offsets = list[tuple[int, int]] | None


def utc_offsets(zone: str, start: datetime, end: datetime) -> Offsets:
    """The zone's UTC offset (ms) from each instant (ms since EPOCH_MS) on, over start..end:
    [(0, offset), (change, offset), ...], or None when it changes more than MAX_TRANSITIONS
    times or the window is longer than MAX_WINDOW_DAYS. Events outside start..end take the
    nearest offset: their local day is then wrong by at most the offset, but on the right side
    of the window, which is all a report needs."""
    tz = zoneinfo.ZoneInfo(zone)

    def offset(ms: int) -> int:
        instant = datetime.fromtimestamp((ms + EPOCH_MS) / 1000, tz=UTC).astimezone(tz)
        return int(instant.utcoffset().total_seconds() * 1000)  # type: ignore[union-attr]

    if end - start > timedelta(days=MAX_WINDOW_DAYS):
        return None
    first = int(start.timestamp() * 1000) - EPOCH_MS
    last = int(end.timestamp() * 1000) - EPOCH_MS
    offsets = [(0, offset(first))]
    probe = first
    while probe < last:
        step = min(probe + DAY_MS, last)
        if offset(step) != offsets[-1][1]:
            low, high = probe, step  # the change is after low, at or before high
            while high - low > 1:
                middle = (low + high) // 2
                if offset(middle) == offsets[-1][1]:
                    low = middle
                else:
                    high = middle
            offsets.append((high, offset(high)))
            if len(offsets) > MAX_TRANSITIONS:
                return None
        probe = step
    return offsets


def local_day_sql(ms: str, offsets: Offsets) -> str:
    """SQL: the local day number (days since FIRST_DAY) of `ms` (ms since EPOCH_MS); without
    offsets, in the zone of the query's `{tz:String}` parameter."""
    if offsets is None:
        return (
            f"(toInt64(toRelativeDayNum(fromUnixTimestamp64Milli(toInt64({ms}) + {EPOCH_MS},"
            " 'UTC'), {tz:String})) + 25568)"
        )
    shift = " ".join(
        f"{ms} < {int(change)}, {int(before)}," for (_, before), (change, _) in pairwise(offsets)
    )
    offset = f"multiIf({shift} {int(offsets[-1][1])})" if shift else str(int(offsets[0][1]))
    return f"intDiv(toInt64({ms}) + {offset} + {DAY_MS}, {DAY_MS})"


def period_number_sql(ms: str, period: str, offsets: Offsets) -> str:
    """SQL: the number (an Int64) of the local day, Monday week or month holding `ms`."""
    day = local_day_sql(ms, offsets)
    if period == "day":
        return day
    if period == "week":
        return f"intDiv({day} + 6, 7)"
    return f"toInt64(toRelativeMonthNum(toDate32({day} - 25568)))"


def period_date(number: int, period: str) -> date:
    """The first day of the period numbered `number`."""
    if period == "day":
        return FIRST_DAY + timedelta(days=number)
    if period == "week":
        return FIRST_DAY + timedelta(days=7 * number - 6)
    return date((number - 1) // 12, (number - 1) % 12 + 1, 1)


def period_number(day: date, period: str) -> int:
    """The number of the period holding `day` (period_date's inverse on a period's start)."""
    if period == "month":
        return day.year * 12 + day.month
    number = (day - FIRST_DAY).days
    return number if period == "day" else (number + 6) // 7
