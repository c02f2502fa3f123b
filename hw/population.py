"""Population accumulators: the mean-field step of a group of populations, once per tick."""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .arithmetic import Arithmetic
from .fixedpoint import (
    balanced_sum,
    clamp_unsigned,
    saturate,
    scale_round_nearest,
    shift_round_nearest,
)

__all__ = ["PopulationStep", "PopulationAccumulator", "COUNTER_WIDTH", "leak_term", "drive_term"]

#: Width of every saturation counter; counters saturate at their maximum, never wrap.
COUNTER_WIDTH = 32


def leak_term(arith: Arithmetic, current: Value) -> Value:
    """What is left of ``current`` after a tick's leak: ``I - round(I >> leak_shift)``, half
    up; zero for ``alpha = 1`` (``leak_shift == 0``)."""
    if arith.leak_shift == 0:
        return Const(0, signed(2))
    return current - shift_round_nearest(current, arith.leak_shift)


def drive_term(arith: Arithmetic, drive: Value, gate: Value, held_gain: Value) -> Value:
    """A step's input: ``round(G * drive * gate)``, ``G`` the exact gain or the held one when
    ``held_gain`` (:func:`golden_model.dynamics.gain_word`), half up. Never negative."""
    exact, held = arith.exact_gain, arith.held_gain
    gated = Mux(gate, drive, 0)
    if held == exact:
        return scale_round_nearest(gated, exact, arith.gain_frac)
    return Mux(
        held_gain,
        scale_round_nearest(gated, held, arith.gain_frac),
        scale_round_nearest(gated, exact, arith.gain_frac),
    )


class PopulationStep(wiring.Component):
    """One tick of one population, combinational (:func:`golden_model.units.population_step`).

    ``next = saturate(leak(0 if clear else current) + round(G * drive * gate), width)``,
    or ``current`` when ``hold``. ``G`` is the exact gain, or the held gain when ``held_gain``;
    both constants come from :func:`golden_model.dynamics.gain_word`. The leak is
    ``I - round(I >> leak_shift)`` (zero for ``alpha = 1``); roundings are half up.

    Parameters
    ----------
    arith : Arithmetic
        Current width, fraction bits, leak shift and gains.

    Attributes
    ----------
    current : In(signed(current_width))
    drive : In(unsigned(current_width - 1))
        The rectified input ``u = [K I_u]^+``.
    gate, clear, hold, held_gain : In(1)
    next : Out(signed(current_width))
    saturated : Out(1)
        The saturating add clamped (a saturation event).
    """

    def __init__(self, arith: Arithmetic) -> None:
        self.arith = arith
        width = arith.current_width
        super().__init__(
            {
                "current": In(signed(width)),
                "drive": In(unsigned(width - 1)),
                "gate": In(1),
                "clear": In(1),
                "hold": In(1),
                "held_gain": In(1),
                "next": Out(signed(width)),
                "saturated": Out(1),
            }
        )

    def saturate(self, total: Value, width: int) -> tuple[Value, Value]:
        """The clamped sum and its saturation event (the tests' broken steps override it)."""
        return saturate(total, width)

    def elaborate(self, platform):
        m = Module()
        arith = self.arith
        leaked = leak_term(arith, Mux(self.clear, 0, self.current))
        drive = drive_term(arith, self.drive, self.gate, self.held_gain)
        total = Signal(signed(arith.current_width + 26))
        m.d.comb += total.eq(leaked + drive)
        clamped, event = self.saturate(total, arith.current_width)
        with m.If(self.hold):
            m.d.comb += [self.next.eq(self.current), self.saturated.eq(0)]
        with m.Else():
            m.d.comb += [self.next.eq(clamped), self.saturated.eq(event)]
        return m


class PopulationAccumulator(wiring.Component):
    """The currents of a group of ``size`` populations, stepped together once per tick.

    A pulse on ``tick`` starts a sweep that updates ``lanes`` populations per clock with
    :class:`PopulationStep`; ``done`` pulses in the clock the last ones are written, so a
    tick takes ``ceil(size / lanes)`` clocks. ``drive``, ``gate``, ``clear``, ``hold`` and
    ``held_gain`` must stay stable while ``busy``. ``load`` writes one current (a host write
    into a memory group) when no sweep runs.

    Parameters
    ----------
    arith : Arithmetic
    size : int
        Populations in the group.
    lanes : int
        Population steps computed in parallel.

    Attributes
    ----------
    tick : In(1)
    drive : In(ArrayLayout(unsigned(current_width - 1), size))
    gate : In(size)
        Per-population gate (the Hadamard product by gating); 0 leaves only the leak.
    clear, hold, held_gain : In(1)
    load_en : In(1), load_index : In(range(size)), load_value : In(signed(current_width))
    currents : Out(ArrayLayout(signed(current_width), size))
    busy, done : Out(1)
    sat_count : Out(32)
        Saturation events so far; saturates at its maximum.
    sat_events : Out(range(lanes + 1))
        Saturation events in this clock (for a shared counter; ``sat_count`` sums them).
    """

    #: The step unit of each lane (a test may put a broken one here, in a subclass).
    Step = PopulationStep

    def __init__(self, arith: Arithmetic, size: int, lanes: int = 1):
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        if not 1 <= lanes <= size:
            raise ValueError(f"lanes must be in [1, size={size}], got {lanes}")
        self.arith, self.size, self.lanes = arith, size, lanes
        width = arith.current_width
        super().__init__(
            {
                "tick": In(1),
                "drive": In(data.ArrayLayout(unsigned(width - 1), size)),
                "gate": In(size),
                "clear": In(1),
                "hold": In(1),
                "held_gain": In(1),
                "load_en": In(1),
                "load_index": In(range(size)),
                "load_value": In(signed(width)),
                "currents": Out(data.ArrayLayout(signed(width), size)),
                "busy": Out(1),
                "done": Out(1),
                "sat_count": Out(COUNTER_WIDTH),
                "sat_events": Out(range(lanes + 1)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        size, lanes = self.size, self.lanes
        chunks = -(-size // lanes)
        chunk = Signal(range(max(chunks, 2)))
        currents = [self.currents[j] for j in range(size)]
        events = []
        for lane in range(lanes):
            step = self.Step(self.arith)
            m.submodules[f"step{lane}"] = step
            # Population j = chunk * lanes + lane; the last chunk may be short.
            pick = [j if j < size else None for j in (c * lanes + lane for c in range(chunks))]
            zero = Const(0, signed(self.arith.current_width))
            m.d.comb += [
                step.current.eq(
                    Array([currents[j] if j is not None else zero for j in pick])[chunk]
                ),
                step.drive.eq(Array([self.drive[j] if j is not None else 0 for j in pick])[chunk]),
                step.gate.eq(Array([self.gate[j] if j is not None else 0 for j in pick])[chunk]),
                step.clear.eq(self.clear),
                step.hold.eq(self.hold),
                step.held_gain.eq(self.held_gain),
            ]
            valid = Array([Const(j is not None) for j in pick])[chunk]
            events.append(step.saturated & valid)
            with m.If(self.busy):
                for c, j in enumerate(pick):
                    if j is not None:
                        with m.If(chunk == c):
                            m.d.sync += currents[j].eq(step.next)
        m.d.comb += self.sat_events.eq(Mux(self.busy, balanced_sum(events), 0))
        with m.If(self.busy):
            total = balanced_sum(events)
            m.d.sync += self.sat_count.eq(clamp_unsigned(self.sat_count + total, COUNTER_WIDTH))
        m.d.comb += self.done.eq(self.busy & (chunk == chunks - 1))
        with m.If(self.busy):
            m.d.sync += chunk.eq(Mux(self.done, 0, chunk + 1))
            with m.If(self.done):
                m.d.sync += self.busy.eq(0)
        with m.Elif(self.tick):
            m.d.sync += [self.busy.eq(1), chunk.eq(0)]
        with m.Elif(self.load_en):
            m.d.sync += Array(currents)[self.load_index].eq(self.load_value)
        return m
