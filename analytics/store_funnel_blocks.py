"""How the event funnel lays out a block of people's events (analytics/store_funnel.py): people
are gathered in blocks of BLOCK person ids (one group per person was the bottleneck), and each
block's events are put in reading order (time, first step, id) by one sort of plain numbers that
also carry what the funnel reads of an event. analytics/store_funnel_chain.py and
analytics/store_funnel_walk.py read the arrays this layout gives.

Two layouts of those numbers: a UInt128 (narrow_key_sql) when the place, the ms counted from
the start of the range, the rank, the id and the masks fit in 128 bits, which is most funnels
but those broken down by a person trait (its value needs a position in the key); a UInt256
(packed_key_sql) otherwise. Grouping and
sorting 256-bit keys was half of an ordered funnel's CPU at 10 M events (bench/README.md)."""

from __future__ import annotations

from analytics.funnel_engine import NO_STEP
from analytics.inputs import EventFunnelSpec

# Reading order packed into numbers (sorting numbers is several times faster than sorting
# tuples): the person's place in its block of 1024 (10 bits), the time in ms shifted to be
# positive from 1900 on (44 bits) and the rank (8 bits), then the event id.
MS_OFFSET = 2_300_000_000_000
BLOCK = 1024
PLACE_BITS = 10
# Event ids come from the primary database's bigint primary keys: below 2**63.
ID_BITS = 63
# The narrow key's rank: a step's index (0-19), NO_STEP read as the largest 5-bit number.
RANK_BITS = 5
NARROW_RANK_NONE = (1 << RANK_BITS) - 1


def narrow_ms_bits(spec: EventFunnelSpec, span_ms: int) -> int | None:
    """The bits narrow_key_sql gives an event's ms counted from the start of the range (the
    events read lie `span_ms` ms apart at most), or None when the key would not fit 128 bits:
    a breakdown by person trait (its values need a position in the key), or many steps and
    exclusions over a long range."""
    if carries_values(spec):
        return None
    ms_bits = max(span_ms, 1).bit_length()
    payload = len(spec.steps) + len(spec.exclusions)
    if PLACE_BITS + ms_bits + RANK_BITS + ID_BITS + payload > 128:
        return None
    return ms_bits


def carries_values(spec: EventFunnelSpec) -> bool:
    """Whether `sorted` carries each event's breakdown value (b_value): a person trait's. An
    event property's value is read after the funnel, from the one event the answer takes it
    from (joins_value); "all steps" groups the events per value before."""
    breakdown = spec.breakdown
    return breakdown is not None and breakdown.kind == "person" and not _all_steps(spec)


def joins_value(spec: EventFunnelSpec) -> bool:
    """Whether the answer names the event its breakdown value comes from (value_event, its id
    read from b_id) and people_sql reads that one event's property: a breakdown by event
    property but "all steps". Reading the property of every step event was most of a
    breakdown's cost (bench/README.md)."""
    breakdown = spec.breakdown
    return breakdown is not None and breakdown.kind == "event" and not _all_steps(spec)


def _all_steps(spec: EventFunnelSpec) -> bool:
    return spec.breakdown is not None and spec.breakdown.attribution == "all_steps"


def narrow_key_sql(spec: EventFunnelSpec, ms_bits: int) -> str:
    """An event's reading order and its masks as one UInt128, from the top: its place in the
    block, its ms since {start_ms} (ms_bits), its rank, its id (ID_BITS), then the exclusion
    mask and the step mask (one bit per exclusion and per step)."""
    n, e = len(spec.steps), len(spec.exclusions)
    top = (
        f"bitOr(bitShiftLeft(toUInt64(person_id % {BLOCK}), {ms_bits + RANK_BITS}),"
        f" bitOr(bitShiftLeft(toUInt64(event_ms - {{start_ms:Int64}}), {RANK_BITS}),"
        f" least(event_rank, {NARROW_RANK_NONE})))"
    )
    masks = f"bitOr(toUInt64(event_mask), bitShiftLeft(toUInt64(event_xmask), {n}))"
    return (
        f"bitOr(bitShiftLeft(toUInt128({top}), {ID_BITS + n + e}),"
        f" bitOr(bitShiftLeft(toUInt128(id), {n + e}), toUInt128({masks})))"
    )


def narrow_columns_sql(spec: EventFunnelSpec, ms_bits: int) -> dict[str, str]:
    """What `sorted` reads back from the sorted narrow keys (`keys`): `top` (place, ms, rank),
    then ms, step mask and exclusion mask per event."""
    n, e = len(spec.steps), len(spec.exclusions)
    return {
        "top": f"arrayMap(k -> toUInt64(bitShiftRight(k, {ID_BITS + n + e})), keys)",
        "place": f"bitShiftRight(h, {ms_bits + RANK_BITS})",
        "ms": f"arrayMap(h -> toInt64(bitAnd(bitShiftRight(h, {RANK_BITS}), {(1 << ms_bits) - 1}))"
        " + {start_ms:Int64}, high)",
        "mask": f"arrayMap(k -> toUInt32(bitAnd(k, {(1 << n) - 1})), keys)",
        "xmask": f"arrayMap(k -> toUInt32(bitAnd(bitShiftRight(k, {n}), {(1 << e) - 1})), keys)",
        "id": f"arrayMap(k -> toUInt64(bitAnd(bitShiftRight(k, {n + e}), {(1 << ID_BITS) - 1})),"
        " keys)",
    }


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
    (the person), whether it is the person's first, its ms, step mask, exclusion mask, value
    (carries_values) and id (joins_value), in reading order; with "all steps", the value whose
    funnel the row is (`wanted`) or 1 in `total` when it is the funnel over all values."""
    columns = {"block", "places", "starts", "b_ms", "b_mask", "b_xmask", "b_value", "b_id"}
    return columns | {"total", "wanted"} if _all_steps(spec) else columns
