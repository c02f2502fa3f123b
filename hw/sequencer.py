"""The gating chain in gateware: a sequencer replaying the compiled schedule from a ROM."""

from __future__ import annotations

import re

from amaranth.hdl import Cat, Module, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from golden_model.config import Config
from golden_model.schedule import POP, Schedule

__all__ = ["port_name", "ControlWord", "GatingSequencer"]


def port_name(group: str) -> str:
    """A group name as an HDL identifier: ``n1+`` -> ``n1_p``, ``x~-`` -> ``xr_m``."""
    name = group.replace("+", "_p").replace("-", "_m").replace("~", "r")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"group name {group!r} has no HDL identifier")
    return name


class ControlWord:
    """The per-phase control word the ROM holds: one bit per population group, mask, copy and
    learning enable. Built once from a schedule; ``encode(phase)`` gives the ROM entry."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.pops = [g.name for g in schedule.groups if g.kind == POP]
        self.masks = [name for name, _ in schedule.masks]
        self.copies = list(dict.fromkeys(c for ph in schedule.phases for c in ph.copies))
        self.learns = list(dict.fromkeys(ln.matrix for ph in schedule.phases for ln in ph.learns))
        # Which mask gates each population group (the Hadamard product), if any.
        self.mask_of: dict[str, str] = {}
        for ph in schedule.phases:
            for tr in ph.transfers:
                if tr.mask is None:
                    continue
                for target in (tr.plus, tr.minus):
                    if target is None:
                        continue
                    if self.mask_of.setdefault(target, tr.mask) != tr.mask:
                        raise ValueError(f"group {target} is gated by two different masks")
        n = len(self.pops)
        self.layout = data.StructLayout(
            {
                "gate": unsigned(max(n, 1)),
                "clear": unsigned(max(n, 1)),
                "masked": unsigned(max(n, 1)),
                "held_gain": unsigned(max(n, 1)),
                "capture": unsigned(max(len(self.masks), 1)),
                "copy": unsigned(max(len(self.copies), 1)),
                "learn": unsigned(max(len(self.learns), 1)),
            }
        )

    def encode(self, index: int) -> dict[str, int]:
        s = self.schedule
        ph = s.phases[index]
        bits = lambda names, chosen: sum(1 << i for i, n in enumerate(names) if n in chosen)  # noqa: E731
        held = set()
        masked = set()
        for tr in ph.transfers:
            targets = {tr.plus, tr.minus} - {None}
            if s.group(tr.terms[0].source).kind != POP:
                held |= targets
            if tr.mask is not None:
                masked |= targets
        return {
            "gate": bits(self.pops, set(ph.targets)),
            "clear": bits(self.pops, set(ph.cleared)),
            "masked": bits(self.pops, masked),
            "held_gain": bits(self.pops, held),
            "capture": bits(self.masks, {c.mask for c in ph.captures}),
            "copy": bits(self.copies, set(ph.copies)),
            "learn": bits(self.learns, {ln.matrix for ln in ph.learns}),
        }


class GatingSequencer(wiring.Component):
    """Steps through the compiled schedule: ``N`` ticks per phase, phases in order, one sample.

    The control word of every phase sits in a ROM generated from the schedule. A tick begins
    with one clock that raises ``tick_valid`` and (first tick of a phase) captures the masks
    the phase asks for, ``mask[j] = plus[j] > minus[j]`` from ``capture`` (the separatrix);
    the masks, and the gates they mask, hold their new values from the next clock on.
    ``control``, ``first_tick`` and the per-population ``gates`` then stay stable until
    ``tick_done`` from the datapath (accepted from the ``tick_valid`` clock on). A masked
    group's gates are its phase gate AND its mask (the Hadamard product by gating). The
    datapath's boundary clock (its state complete, ``pause`` low) can be that first clock.

    ``start`` runs every tick of one sample (``sample_done`` pulses after the last); ``step``
    runs one tick; ``stop`` halts at the next tick boundary. ``phase``, ``tick`` and
    ``samples`` are readable at any time.

    Parameters
    ----------
    schedule : Schedule
    cfg : Config

    Attributes
    ----------
    start, stop, step, tick_done : In(1)
    pause : In(1)
        While high, the next tick does not begin (the sequencer waits before its capture).
    capture : In(StructLayout)
        For each mask, the ``plus`` and ``minus`` currents it is captured from.
    control : Out(ControlWord.layout)
    gates : Out(StructLayout)
        One bit per population, per population group (``port_name`` of the group).
    masks : Out(StructLayout)
        The mask registers.
    tick_valid, first_tick, running, sample_done : Out(1)
    phase : Out(range(phases)), tick : Out(range(N)), samples : Out(32)
    """

    def __init__(self, schedule: Schedule, cfg: Config) -> None:
        self.schedule, self.cfg = schedule, cfg
        self.word = ControlWord(schedule)
        cw = cfg.current_width
        sizes = {g.name: g.size for g in schedule.groups}
        mask_sizes = dict(schedule.masks)
        capture = {
            name: data.StructLayout(
                {
                    "plus": data.ArrayLayout(signed(cw), size),
                    "minus": data.ArrayLayout(signed(cw), size),
                }
            )
            for name, size in schedule.masks
        }
        super().__init__(
            {
                "start": In(1),
                "stop": In(1),
                "step": In(1),
                "tick_done": In(1),
                "pause": In(1),
                "capture": In(data.StructLayout(capture or {"none": 1})),
                "control": Out(self.word.layout),
                "gates": Out(data.StructLayout({port_name(p): sizes[p] for p in self.word.pops})),
                "masks": Out(data.StructLayout(mask_sizes or {"none": 1})),
                "tick_valid": Out(1),
                "first_tick": Out(1),
                "running": Out(1),
                "sample_done": Out(1),
                "phase": Out(range(max(len(schedule.phases), 2))),
                "tick": Out(range(max(cfg.ticks_per_window, 2))),
                "samples": Out(32),
            }
        )

    def elaborate(self, platform):
        m = Module()
        s, word = self.schedule, self.word
        phases = len(s.phases)
        last_tick = self.cfg.ticks_per_window - 1
        rom = memory.Memory(
            shape=word.layout, depth=phases, init=[word.encode(i) for i in range(phases)]
        )
        m.submodules.rom = rom
        read = rom.read_port(domain="comb")
        m.d.comb += [read.addr.eq(self.phase), self.control.eq(read.data)]
        m.d.comb += self.first_tick.eq(self.tick == 0)

        for i, pop in enumerate(word.pops):
            size = s.group(pop).size
            open_ = self.control.gate[i]
            mask_name = word.mask_of.get(pop)
            gate = Signal(size, name=f"gate_{port_name(pop)}")
            if mask_name is None:
                m.d.comb += gate.eq(open_.replicate(size))
            else:
                use = self.control.masked[i]
                mask = getattr(self.masks, mask_name)
                m.d.comb += gate.eq(open_.replicate(size) & (mask | (~use).replicate(size)))
            m.d.comb += getattr(self.gates, port_name(pop)).eq(gate)

        halt = Signal()  # stop or single step: pause at the next tick boundary

        def accept_tick_done():
            """End the tick when the datapath says so: the next tick's prepare, or idle."""
            with m.If(self.stop):
                m.d.sync += halt.eq(1)
            with m.If(self.tick_done):
                end_of_phase = self.tick == last_tick
                end_of_sample = end_of_phase & (self.phase == phases - 1)
                with m.If(end_of_phase):
                    m.d.sync += [self.tick.eq(0), self.phase.eq(self.phase + 1)]
                    with m.If(end_of_sample):
                        m.d.sync += [self.phase.eq(0), self.samples.eq(self.samples + 1)]
                with m.Else():
                    m.d.sync += self.tick.eq(self.tick + 1)
                m.d.comb += self.sample_done.eq(end_of_sample)
                with m.If(end_of_sample | halt | self.stop):
                    m.next = "idle"
                with m.Else():
                    m.next = "prepare"

        with m.FSM():
            with m.State("idle"):
                with m.If(self.start | self.step):
                    m.d.sync += halt.eq(self.step)
                    m.next = "prepare"
            with m.State("prepare"):
                # The tick is issued in the clock its masks are captured (they hold from the
                # next clock on, before any datapath reads a gate): the datapath's boundary
                # clock and this one are the same, so a tick costs no clock of its own here.
                m.d.comb += self.running.eq(1)
                with m.If(~self.pause):  # e.g. while the state is being read
                    with m.If(self.first_tick):
                        for i, (name, size) in enumerate(s.masks):
                            source = getattr(self.capture, name)
                            with m.If(self.control.capture[i]):
                                m.d.sync += getattr(self.masks, name).eq(
                                    Cat(*(source.plus[j] > source.minus[j] for j in range(size)))
                                )
                    m.d.comb += self.tick_valid.eq(1)
                    m.next = "tick"
                    accept_tick_done()  # tick_done is accepted from the tick_valid clock on
            with m.State("tick"):
                m.d.comb += self.running.eq(1)
                accept_tick_done()
        return m
