"""A two-level address sweep, the loop every memory-sweeping unit runs."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Sweep"]


class Sweep(wiring.Component):
    """Issues ``address = outer * inner_count + inner`` for every ``(outer, inner)`` in order,
    one per clock, from the clock of a ``start`` pulse.

    The step registers rest at step 0 between sweeps, so the first step is named in the
    ``start`` clock itself (a sweep of ``n`` steps is busy ``n`` clocks, ``start``'s
    included) and only ``issuing`` depends on ``start``, not the address.

    Parameters
    ----------
    outer_count, inner_count : int

    Attributes
    ----------
    start : In(1)
        Begin a sweep (only while not ``issuing``).
    issuing : Out(1)
        High while ``address``, ``outer`` and ``inner`` name a valid step.
    address : Out(range(outer_count * inner_count))
    outer : Out(range(outer_count)), inner : Out(range(inner_count))
    last : Out(1)
        This step is the sweep's last.
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
                "last": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        running = Signal()  # steps after the first
        last_inner = self.inner == self.inner_count - 1
        m.d.comb += [
            self.issuing.eq(running | self.start),
            self.last.eq(last_inner & (self.outer == self.outer_count - 1)),
        ]
        with m.If(self.issuing):
            with m.If(self.last):
                # Back to step 0, ready for the next start.
                m.d.sync += [
                    running.eq(0),
                    self.address.eq(0),
                    self.outer.eq(0),
                    self.inner.eq(0),
                ]
            with m.Else():
                m.d.sync += [running.eq(1), self.address.eq(self.address + 1)]
                with m.If(last_inner):
                    m.d.sync += [self.inner.eq(0), self.outer.eq(self.outer + 1)]
                with m.Else():
                    m.d.sync += self.inner.eq(self.inner + 1)
        return m
