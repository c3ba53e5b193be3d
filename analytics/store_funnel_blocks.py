"""How the event funnel lays out a block of people's events (analytics/store_funnel.py): people
are gathered in blocks of BLOCK person ids (one group per person was the bottleneck), and each
block's events are put in reading order (time, first step, id) by one sort of plain numbers that
also carry what the funnel reads of an event. analytics/store_funnel_chain.py and
analytics/store_funnel_walk.py read the arrays this layout gives."""

from __future__ import annotations

from analytics.funnel_engine import NO_STEP
from analytics.inputs import EventFunnelSpec

# Reading order packed into numbers (sorting numbers is several times faster than sorting
# tuples): the person's place in its block of 1024 (10 bits), the time in ms shifted to be
# positive from 1900 on (44 bits) and the rank (8 bits), then the event id.
MS_OFFSET = 2_300_000_000_000
BLOCK = 1024


def packed_key_sql() -> str:
    """An event's reading order and everything the funnel reads of it but its value, packed
    into one UInt256, so that one sort of plain numbers puts a block in order: from the top,
    64 bits of place in the block, ms and rank, 64 of event id, 64 left at zero (where a
    breakdown puts the event's position in its group, to find its value after the sort), and
    the exclusion mask and the step mask (32 bits each)."""
    high = (
        f"bitShiftLeft(toUInt64(person_id % {BLOCK}), 54)"
        f" + bitShiftLeft(toUInt64(event_ms + {MS_OFFSET}), 8) + event_rank"
    )
    masks = "bitOr(toUInt64(event_mask), bitShiftLeft(toUInt64(event_xmask), 32))"
    return (
        f"reinterpretAsUInt256(concat(reinterpretAsFixedString({masks}),"
        " reinterpretAsFixedString(toUInt64(0)), reinterpretAsFixedString(toUInt64(id)),"
        f" reinterpretAsFixedString(toUInt64({high}))))"
    )


def rank_sql(mask: str) -> str:
    """The reading-order rank of an event: its first step, NO_STEP when it matches none."""
    return f"toUInt8(if({mask} = 0, {NO_STEP}, bitCount(bitAnd({mask}, -{mask}) - 1)))"


def sorted_columns(spec: EventFunnelSpec) -> set[str]:
    """The columns of people_sql's `sorted`, one row per block: each event's place in the block
    (the person), whether it is the person's first, its ms, step mask, exclusion mask and value,
    in reading order; with "all steps", the value whose funnel the row is (`wanted`) or 1 in
    `total` when it is the funnel over all values."""
    columns = {"block", "places", "starts", "b_ms", "b_mask", "b_xmask", "b_value"}
    all_steps = spec.breakdown is not None and spec.breakdown.attribution == "all_steps"
    return columns | {"total", "wanted"} if all_steps else columns
