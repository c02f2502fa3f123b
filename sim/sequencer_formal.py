"""A formal property of the memory core's sequencer (:class:`hw.microsequencer.MicroSequencer`),
proved like :mod:`sim.formal`'s (SymbiYosys, Boolector): ``python -m sim.sequencer_formal``.

* ``sequencer-issues-the-program``: for every clock at which ``start`` and ``hold`` change,
  the slots the sequencer issues are the compiled micro-code's, in its order (each slot's
  kind, the state row it reads, the weight word, the source and post-synaptic buffer rows,
  where a rule writes), nothing else between them; each tick's state is held valid only after
  exactly the slots before that tick were issued; and a sample ends only after all of them.

The reference is :func:`hw.microcode._slot_accesses`, the walk the compiler times every read
and write with (and the per-tick comparisons hold the whole core to), so the property ties
the sequencer's counters and address arithmetic to the compiler's loop nests. Bounded: the
depth covers a whole sample of the one-layer 2-1 network at 2 lanes (every kind of word
but a transposed sweep: ``GATHER``, a sweep by rows or columns, ``LEARN``, ``FLAGS``,
``TICK``), with any pattern of ``hold`` that fits in it.
"""

from __future__ import annotations

import sys
from dataclasses import replace

from amaranth.hdl import Array, Assert, Const, Elaboratable, Module, Signal

from golden_model.config import Config
from golden_model.schedule import compile_backprop
from hw.microcode import Kind, Word, _slot_accesses, encode
from hw.microprogram import compile_program
from hw.microsequencer import MicroSequencer, Slot

from .formal import Property, main

__all__ = ["SEQUENCER_PROPERTIES", "SequencerIssuesTheProgram", "expected_slots"]

#: The slot fields the property compares, and the ``_slot_accesses`` memory each comes from.
_FIELDS = ("op", "state_row", "weight_addr", "src_addr", "post_addr", "rule_word")


def expected_slots(words: list[Word], lanes: int) -> tuple[list[dict], list[int]]:
    """The slots ``words`` issue, in order (a dict per slot: its :class:`Slot` kind and the
    addresses it reads; a field it does not read is absent), and for each ``TICK`` the
    number of slots issued before it."""
    slots, ticks = [], []
    for w in words:
        if w.kind == Kind.TICK:
            ticks.append(len(slots))
            continue
        if w.kind == Kind.FLAGS:
            continue
        for i, (reads, _) in enumerate(_slot_accesses(w, lanes)):
            got = {memory: address for memory, address, _ in reads}
            if w.kind == Kind.LEARN:
                slot = {"op": Slot.LEARN, "src_addr": got["SRC"], "post_addr": got["POST"]}
                slot["rule_word"] = got["W"]
            elif "W" in got:
                op = Slot.ROWS if w.kind == Kind.ROWS else Slot.COLS
                slot = {"op": op, "weight_addr": got["W"], "src_addr": got["SRC"]}
            else:  # a gathered part, or a step: a gather's block is its parts, then steps
                part = w.kind == Kind.GATHER and i % (w.inner + w.steps) < w.inner
                slot = {"op": Slot.GATHER if part else Slot.STEP, "state_row": got["state"]}
            slots.append(slot)
    return slots, ticks


class SequencerIssuesTheProgram(Elaboratable):
    """The sequencer of ``cfg``'s micro-code at ``lanes``, its issued slots watched against
    :func:`expected_slots`; ``start`` and ``hold`` free."""

    def __init__(
        self,
        cfg: Config | None = None,
        lanes: int = 2,
        sequencer: type[MicroSequencer] = MicroSequencer,
    ) -> None:
        cfg = cfg or Config(layers=(2, 1))
        schedule = compile_backprop(cfg)
        self.words = encode(compile_program(schedule, lanes), cfg)[0]
        self.lanes = lanes
        rows = max(
            max(w.plus, w.minus, w.drow, w.mask, *(r for r, _ in w.parts)) + w.count + 1
            for w in self.words
        )
        weights = max(w.wbase + w.count * max(w.inner, 1) * max(w.stride, 1) for w in self.words)
        self.seq = sequencer(
            self.words, lanes, len(schedule.groups), max(rows, weights).bit_length() + 1,
            state_rows=rows, weight_words=weights + 1, buffer_rows=rows,
        )  # fmt: skip
        self.start, self.hold = Signal(name="start"), Signal(name="hold")

    def ports(self) -> list[Signal]:
        return [self.start, self.hold]

    def elaborate(self, platform):
        m = Module()
        m.submodules.seq = seq = self.seq
        m.d.comb += [seq.start.eq(self.start), seq.hold.eq(self.hold)]
        slots, ticks = expected_slots(self.words, self.lanes)
        n = len(slots)

        def table(field: str, default: int = 0):
            return Array(Const(s.get(field, default)) for s in [*slots, {}])

        issued = Signal(range(n + 2))  # slots issued so far
        tick = Signal(range(len(ticks) + 2))  # ticks whose state was valid so far
        valid_before = Signal()
        m.d.sync += valid_before.eq(seq.state_valid)
        got = {
            "state_row": seq.state_row,
            "weight_addr": seq.weight_addr,
            "src_addr": seq.src_addr,
            "post_addr": seq.post_addr,
            "rule_word": seq.slot.row,
        }
        op = seq.slot.op
        with m.If(op != Slot.NONE):
            m.d.sync += issued.eq(issued + 1)
            m.d.comb += [Assert(issued < n), Assert(op == table("op")[issued])]
            for field, value in got.items():
                uses = Array(Const(field in s) for s in [*slots, {}])[issued]
                m.d.comb += Assert(~uses | (value == table(field)[issued]))
        # a tick's state is valid only once its slots are all issued (and no later one)
        rising = seq.state_valid & ~valid_before  # a tick's first valid clock
        with m.If(rising):
            m.d.sync += tick.eq(tick + 1)
            before = Array(Const(k) for k in [*ticks, n + 1])[tick]
            m.d.comb += [Assert(tick < len(ticks)), Assert(issued == before)]
        with m.If(seq.sample_done):  # the last tick's valid clock (its first, or a held one)
            m.d.comb += [Assert(issued == n), Assert(tick + rising == len(ticks))]
            m.d.sync += [issued.eq(0), tick.eq(0)]
        return m


class SwappedWordsSequencer(MicroSequencer):
    """A sequencer whose ROM has two neighbouring words of different kinds swapped (a
    program the compiler did not write), for the test that the property can fail."""

    def __init__(self, words: list[Word], *args, **kwargs) -> None:
        words = list(words)
        k = next(i for i in range(len(words) - 1) if words[i].kind != words[i + 1].kind)
        first = replace(words[k + 1], length=words[k].length, delay=words[k].delay)
        second = replace(words[k], length=words[k + 1].length, delay=words[k + 1].delay)
        words[k], words[k + 1] = first, second
        super().__init__(words, *args, **kwargs)


SEQUENCER_PROPERTIES: dict[str, Property] = {
    "sequencer-issues-the-program": Property(
        "sequencer-issues-the-program",
        lambda unit: SequencerIssuesTheProgram(sequencer=unit or MicroSequencer),
        "bmc",
        100,
        "bounded: 100 clocks, a whole sample of the 2-1 network at 2 lanes (87 clocks "
        "without a hold), any start and hold",
        script="memory_map\nopt -full",
    ),
}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], SEQUENCER_PROPERTIES))
