"""The memory-centric core's connections between its components, one signature a kind.

Each is written from the side that drives it (every member ``Out``); the memory that takes it
declares ``In(...)`` of the same signature, and :func:`amaranth.lib.wiring.connect` joins the
two in one line, refusing a width that does not match. The row and address fields are as wide
as the slot's row fields (``row_bits``) on both sides: a memory ignores the bits above its depth.
"""

from __future__ import annotations

from amaranth.hdl import ShapeCastable, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import Out

__all__ = ["block_write", "word_write", "zero_flags"]


def block_write(row_bits: int, lanes: int, width: int) -> wiring.Signature:
    """A block of ``lanes`` currents written into a row of ``lanes`` banks.

    Members
    -------
    row : Out(row_bits)
    data : Out(ArrayLayout(signed(width), lanes))
    lanes : Out(lanes)
        The banks written this clock (none: no write).
    """
    return wiring.Signature(
        {
            "row": Out(row_bits),
            "data": Out(data.ArrayLayout(signed(width), lanes)),
            "lanes": Out(lanes),
        }
    )


def word_write(addr_bits: int, shape: ShapeCastable, enables: int = 1) -> wiring.Signature:
    """A word written at ``addr`` (:class:`amaranth.lib.memory.WritePort`'s members, driven).

    Members
    -------
    addr : Out(addr_bits)
    data : Out(shape)
    en : Out(enables)
        One enable for the whole word, or one an element.
    """
    return wiring.Signature({"addr": Out(addr_bits), "data": Out(shape), "en": Out(enables)})


def zero_flags(groups: int) -> wiring.Signature:
    """The state memory's zero flags to set (a clear, the leak of ``alpha = 1``) or to clear
    (a group written again), a bit a group, at the clock's end.

    Members
    -------
    set : Out(groups)
    clear : Out(groups)
    """
    return wiring.Signature({"set": Out(groups), "clear": Out(groups)})
