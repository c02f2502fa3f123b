"""The rounding LFSR in gateware, stepping several times per clock
(:mod:`golden_model.lfsr` defines the sequence)."""

from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Value, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden_model.lfsr import LFSR_MASK

__all__ = ["lfsr_step", "MultiStepLfsr"]


def lfsr_step(state: Value) -> Value:
    """One Galois step: shift right, XOR the mask when the bit shifted out was 1."""
    return Mux(state[0], (state >> 1) ^ LFSR_MASK, state >> 1)[:32]


class MultiStepLfsr(wiring.Component):
    """A 32-bit Galois LFSR that can advance up to ``lanes`` steps per clock.

    ``ahead[i]`` is the state after ``i + 1`` steps from ``state`` (a chain of XOR networks);
    when ``advance`` is non-zero, ``state`` becomes ``ahead[advance - 1]`` at the clock edge.

    Parameters
    ----------
    seed : int
        Initial (reset) state, non-zero.
    lanes : int
        Most steps per clock.

    Attributes
    ----------
    advance : In(range(lanes + 1))
    load_en : In(1), load_value : In(32)
        Replace the state (a host reseeding the generator); ``advance`` must be 0 then.
    state : Out(32)
    ahead : Out(ArrayLayout(unsigned(32), lanes))
    """

    def __init__(self, seed: int, lanes: int = 1) -> None:
        if not 0 < seed < 1 << 32:
            raise ValueError(f"LFSR seed must be a non-zero 32-bit word, got {seed}")
        self.lanes = lanes
        super().__init__(
            {
                "advance": In(range(lanes + 1)),
                "load_en": In(1),
                "load_value": In(32),
                "state": Out(32, init=seed),
                "ahead": Out(data.ArrayLayout(unsigned(32), lanes)),
            }
        )

    def loaded(self, value: Value) -> Value:
        """The state a load takes (the tests' broken generators override it)."""
        return value

    def elaborate(self, platform):
        m = Module()
        value = self.state
        for i in range(self.lanes):
            # Each step reads the previous step's signal: one step uses its input twice, so a
            # chain of bare expressions would double in size with every step.
            m.d.comb += self.ahead[i].eq(lfsr_step(value))
            value = self.ahead[i]
        with m.If(self.load_en):
            m.d.sync += self.state.eq(self.loaded(self.load_value))
        with m.Elif(self.advance != 0):
            m.d.sync += self.state.eq(
                Array(self.ahead[i] for i in range(self.lanes))[self.advance - 1]
            )
        return m
