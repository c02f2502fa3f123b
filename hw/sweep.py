"""A two-level address sweep, the loop every memory-sweeping unit runs."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Sweep"]


class Sweep(wiring.Component):
    """Issues ``address = outer * inner_count + inner`` for every ``(outer, inner)`` in order,
    one per clock, after a ``start`` pulse.

    Parameters
    ----------
    outer_count, inner_count : int

    Attributes
    ----------
    start : In(1)
    issuing : Out(1)
        High while ``address``, ``outer`` and ``inner`` name a valid step.
    address : Out(range(outer_count * inner_count))
    outer : Out(range(outer_count)), inner : Out(range(inner_count))
    """

    def __init__(self, outer_count: int, inner_count: int) -> None:
        self.outer_count, self.inner_count = outer_count, inner_count
        super().__init__(
            {
                "start": In(1),
                "issuing": Out(1),
                "address": Out(range(max(outer_count * inner_count, 2))),
                "outer": Out(range(max(outer_count, 2))),
                "inner": Out(range(max(inner_count, 2))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        with m.If(self.issuing):
            m.d.sync += self.address.eq(self.address + 1)
            with m.If(self.inner == self.inner_count - 1):
                m.d.sync += [self.inner.eq(0), self.outer.eq(self.outer + 1)]
                with m.If(self.outer == self.outer_count - 1):
                    m.d.sync += self.issuing.eq(0)
            with m.Else():
                m.d.sync += self.inner.eq(self.inner + 1)
        with m.Elif(self.start):
            m.d.sync += [
                self.issuing.eq(1),
                self.address.eq(0),
                self.outer.eq(0),
                self.inner.eq(0),
            ]
        return m
