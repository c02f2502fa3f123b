"""The memory-centric core's sequencer: it steps through the instruction ROM and issues one slot
a clock into the lanes' pipeline (:mod:`hw.lanes`), with the memories' read addresses."""

from __future__ import annotations

from enum import IntEnum

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .fixedpoint import clamp_unsigned
from .microcode import Dest, Kind, Word, rom_value, word_layout
from .ports import zero_flags

__all__ = ["Slot", "slot_layout", "MicroSequencer"]


class Slot(IntEnum):
    """What a pipeline slot does (``NONE``: a bubble)."""

    NONE = 0
    GATHER = 1
    ROWS = 2
    COLS = 3
    LEARN = 4
    STEP = 5


def slot_layout(lanes: int, row_bits: int, simd: int | None = None) -> data.StructLayout:
    """A slot as it travels down the pipeline: what it does and where its result goes
    (``simd``: the multipliers, a multiple of ``lanes``; ``lanes`` unless given)."""
    simd = lanes if simd is None else simd
    return data.StructLayout(
        {
            "op": unsigned(3),  # Slot
            "first": unsigned(1),  # the accumulators start from zero
            "last": unsigned(1),  # the block (or row) is complete: write it back
            "neg": unsigned(1),  # a gathered part enters negated
            "dest": unsigned(3),  # microcode.Dest of a gather
            "row": unsigned(row_bits),  # where it is written (a learning rule: the word)
            "mrow": unsigned(row_bits),  # the mask word of a step
            "lane": unsigned(max(ceil_log2(simd), 1)),  # a broadcast element, a row's z
            "part": unsigned(max(ceil_log2(simd // lanes), 1)),  # a block's part of a word
            "single": unsigned(1),  # one element into lane ``lane`` of a buffer word
            # elements of the vector written from the block's first on (clamped to all
            # ones), and a rule's within the transposed copy: the sequencer's counts, which
            # the lanes turn into the masks below a stage later (stage 2; first read at 3)
            "left": unsigned(ceil_log2(simd + 1)),
            "left2": unsigned(ceil_log2(simd + 1)),
            "valid": unsigned(simd),  # lanes that hold an element of the vector written
            "valid2": unsigned(simd),  # a rule: lanes within the transposed copy
            "half": unsigned(1),  # a step of the minus half
            "held": unsigned(1),  # the held gain
            "gated": unsigned(1),  # a mask gates the step
            "fresh": unsigned(1),  # a relay steps from zero in its gather's last slot
            "covariance": unsigned(1),  # a rule: the covariance rule
        }
    )


class MicroSequencer(wiring.Component):
    """Steps through the micro-code of one sample, a slot a clock.

    Parameters
    ----------
    words : list of :class:`hw.microcode.Word`
        The ROM's contents (every tick of a sample, unrolled; one program a bank of inputs,
        one after the other).
    lanes : int
        Element lanes: a block of a gather, a step or a sweep by columns.
    groups : int
        Zero flags of the state memory.
    row_bits : int
        Width of a slot's row fields.
    state_rows, weight_words, buffer_rows : int
        Depths of the memories it addresses.
    entries : tuple of int
        Where each program starts in ``words``.
    rom_style : str, optional
        Yosys's ``ram_style`` for the ROM (``"distributed"``: ECP5 LUT RAM, whose output
        leaves a register sooner than a DP16KD's; the ROM's word picks the next address).
    simd : int, optional
        Multipliers: the weights of a word, and the elements of a source buffer row; a
        multiple of ``lanes`` (``lanes`` unless given). A block gathered into the source
        buffer is a part of its row; a sweep by columns takes its targets from a part of a
        word (:func:`hw.microcode._slot_accesses`).

    Attributes
    ----------
    start, hold : In(1)
        ``start`` a sample (while idle); ``hold`` the tick's state while ``state_valid``.
    entry : In(range(len(entries)))
        The program ``start`` runs.
    running, state_valid, sample_done : Out(1)
    samples : Out(32)
        Samples completed (counted in the last tick of each).
    slot : Out(slot_layout)
        The slot issued this clock (``op = NONE``: none), registered.
    state_row, weight_addr, src_addr, post_addr : Out
        The read addresses of this clock's slot, registered with it.
    flags : Out(:func:`hw.ports.zero_flags`)
        Zero flags to set (clears, leaks of ``alpha = 1``) or clear (groups a word wrote).

    Timing: a word is presented a clock after the previous one's last slot; it waits its
    ``delay``, then issues :meth:`hw.microcode.Word.slots` slots on consecutive clocks. A
    slot, its addresses, the flags and ``samples`` leave through a register
    (:data:`hw.microcode.ISSUE`). A ``TICK`` sets its flags, waits until the pipeline has
    drained and counted its events, and holds ``state_valid`` for a clock (longer while
    ``hold``). Every word's length in clocks comes from the ROM (:func:`hw.microcode.lengths`,
    exact), so the sequencer counts it down rather than watching the pipeline.
    """

    def __init__(
        self,
        words: list[Word],
        lanes: int,
        groups: int,
        row_bits: int,
        *,
        state_rows: int,
        weight_words: int,
        buffer_rows: int,
        entries: tuple[int, ...] = (0,),
        rom_style: str | None = None,
        simd: int | None = None,
    ) -> None:
        self.words, self.lanes, self.entries = list(words), lanes, tuple(entries)
        self.simd = lanes if simd is None else simd
        if self.simd % lanes:
            raise ValueError(f"simd must be a multiple of lanes ({lanes}), got {self.simd}")
        self.rom_style = rom_style
        self.parts = max(max(len(w.parts) for w in self.words), 1)
        self.layout = word_layout(self.words, self.parts, groups)
        self.weight_words, self.buffer_rows = weight_words, buffer_rows
        super().__init__(
            {
                "start": In(1),
                "entry": In(range(max(len(self.entries), 2))),
                "hold": In(1),
                "running": Out(1),
                "state_valid": Out(1),
                "sample_done": Out(1),
                "samples": Out(32),
                "slot": Out(slot_layout(lanes, row_bits, self.simd)),
                "state_row": Out(range(max(state_rows, 2))),
                "weight_addr": Out(range(max(weight_words, 2))),
                "src_addr": Out(range(max(buffer_rows, 2))),
                "post_addr": Out(range(max(buffer_rows, 2))),
                "flags": Out(zero_flags(max(groups, 1))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        lanes, words, simd = self.lanes, self.words, self.simd
        fold = simd // lanes
        m.submodules.rom = rom = memory.Memory(
            shape=self.layout,
            depth=len(words),
            init=[rom_value(w, self.parts) for w in words],
            attrs={"ram_style": self.rom_style} if self.rom_style else None,
        )
        fetch = rom.read_port()
        ins = fetch.data
        # The slot, its read addresses, the flags and the sample count are registered on
        # their way out: the memories and the lanes see everything a clock after it is
        # decided, all alike, so no timing between them changes (hw.microcode.ISSUE).
        slot = Signal.like(self.slot)
        state_row, weight_addr = (
            Signal.like(self.state_row, name="state_row"),
            Signal.like(self.weight_addr, name="weight_addr"),
        )
        src_addr, post_addr = (
            Signal.like(self.src_addr, name="src_addr"),
            Signal.like(self.post_addr, name="post_addr"),
        )
        flags_set, flags_clear = (
            Signal.like(self.flags.set, name="flags_set"),
            Signal.like(self.flags.clear, name="flags_clear"),
        )
        counted = Signal()  # a sample ended a clock ago: count it now, as a register would
        m.d.sync += [
            self.slot.eq(slot),
            self.state_row.eq(state_row),
            self.weight_addr.eq(weight_addr),
            self.src_addr.eq(src_addr),
            self.post_addr.eq(post_addr),
            self.flags.set.eq(flags_set),
            self.flags.clear.eq(flags_clear),
            counted.eq(0),
        ]
        with m.If(counted):
            m.d.sync += self.samples.eq(self.samples + 1)
        counts = max(max(w.count for w in words), max(w.inner for w in words), 2)
        # the address of the word after this one: the ROM's address is a register
        following = Signal(range(len(words) + 2))
        # Each counter as wide as the largest value it takes (a bit no value reaches is logic
        # no test can see): blocks of a gather, a sweep by columns, or lanes' worth of rows;
        # rows of a sweep by rows (one past its last, before the word ends); a word's parts.
        blocks = max(
            [w.count for w in words if w.kind in (Kind.GATHER, Kind.COLS)]
            + [-(-w.count // lanes) for w in words if w.kind == Kind.ROWS]
            + [1]
        )
        rows = max([w.count for w in words if w.kind == Kind.ROWS] + [1])
        row_blocks = -(-rows // lanes)
        blk = Signal(range(blocks), name="blk")
        row = Signal(range(rows + 1 if rows > 1 else 1), name="row")
        inner = Signal(range(max(w.inner for w in words)), name="inner")
        st = Signal(2)  # step slot of a block
        in_tail, final = Signal(name="in_tail"), Signal(name="final")
        # A word's wait, kept off the ROM's output: a bit says "no wait" (the usual case), and
        # a longer wait counts down in registers from the word's first clock.
        fresh, waiting = (
            Signal(name="fresh"),
            Signal(name="waiting"),
        )  # the word's first clock; still waiting after it
        left = Signal.like(ins.delay)
        m.d.sync += fresh.eq(0)
        # Whether a counter is at its last value, registered a clock ahead (the ROM's bits for
        # a count of one in a word's first clock): the decisions that pick the next ROM
        # address then wait on no adder and no comparison.
        inner_last, blk_last, row_last = (
            Signal(name="inner_last"),
            Signal(name="blk_last"),
            Signal(name="row_last"),
        )
        inner_end = Mux(fresh, ins.inner_one, inner_last)
        blk_end = Mux(fresh, ins.count_one, blk_last)
        # every sweep by rows one row long: each row is its last
        row_end = Mux(fresh, ins.count_one, row_last) if rows > 1 else Const(1)

        def inner_restart():
            return [inner.eq(0), inner_last.eq(ins.inner_one)]

        def inner_next():
            return [inner.eq(inner + 1), inner_last.eq(inner + 2 == ins.inner)]

        def blk_next():
            return [blk.eq(blk + 1), blk_last.eq(blk + 2 == ins.count)]

        def row_next():
            if rows == 1:
                return []
            return [row.eq(row + 1), row_last.eq(row + 2 == ins.count)]

        with m.If(fresh):  # a counter that moves in this clock overrides (later statements)
            m.d.sync += [
                inner_last.eq(ins.inner_one),
                blk_last.eq(ins.count_one),
                row_last.eq(ins.count_one),
            ]
        woff = Signal(range(max(self.weight_words, 2) + 1))
        eoff = Signal(range((counts + 1) * simd + 1))  # first element of the block
        # a buffered element: its word (a rule's after its last row, too) ...
        erow = Signal(
            range(
                max(
                    [-(-w.inner // lanes) for w in words if w.kind == Kind.COLS]
                    + [-(-w.count // lanes) + 1 for w in words if w.kind == Kind.LEARN]
                    + [1]
                )
            )
        )
        elane = Signal(range(max(lanes, 2)))  # ... and its lane
        # Folded wider (simd > lanes): a block's part of a source buffer row or of a word
        # of weights, and that row or word. A gather's start from the ROM in its first
        # clock (its first slot may issue then), counted from there on.
        part = Signal(range(max(fold, 2)))
        prow = Signal(range(max(counts, self.buffer_rows) + 2))
        cur_part = Mux(fresh, ins.dpart, part)
        cur_prow = Mux(fresh, ins.drow, prow)
        if fold > 1:
            with m.If(fresh):
                m.d.sync += [part.eq(ins.dpart), prow.eq(ins.drow)]
        # The ROM's address depends on no decision: the next word's (or, while idle, the
        # entry's); a word's end only enables the read (it was one path from the ROM's
        # output through the decision to finish into the ROM's address decode).
        m.d.comb += [fetch.addr.eq(following), fetch.en.eq(0)]
        # The valid lanes, a prefix: the elements left from the block's first, a count (the
        # lanes make it a mask a stage on: from the ROM's word through the subtraction and
        # a mask into the slot was digits 8 x 32's critical path at 85 MHz, 9.45 ns routing)
        for name, count, size in (
            ("elements_left", slot.left, ins.size),
            ("elements_left2", slot.left2, ins.size2),
        ):
            remaining = Signal(signed(max(len(size), len(eoff)) + 1), name=name)
            m.d.comb += [
                remaining.eq(size - eoff),
                count.eq(Mux(remaining[-1], 0, clamp_unsigned(remaining[:-1], len(count)))),
            ]

        # A word's length in clocks (its wait and its slots; a tick's drain) is known to the
        # compiler and counts down here: its end, which enables the ROM's read, is a register
        # (a ROM bit in the word's first clock), not the issue logic's decision, which on the
        # iCE40 reached the ROM's enable through a global buffer.
        left_clocks, ending = Signal.like(ins.length, name="left_clocks"), Signal(name="ending")
        end_now = Mux(fresh, ins.length_one, ending)
        with m.If(fresh):
            m.d.sync += [left_clocks.eq(ins.length - 2), ending.eq(ins.length_two)]
        with m.Else():
            m.d.sync += [left_clocks.eq(left_clocks - 1), ending.eq(left_clocks == 1)]

        def finish():
            """The word's last clock: fetch the next one, counters back to zero."""
            m.d.comb += fetch.en.eq(1)
            m.d.sync += [following.eq(following + 1), fresh.eq(1)]
            for counter in (blk, row, inner, st, in_tail, final, woff, eoff, erow, elane):
                m.d.sync += counter.eq(0)
            clears = (ins.kind == Kind.GATHER) | (ins.kind == Kind.ROWS) | (ins.kind == Kind.COLS)
            m.d.comb += flags_clear.eq(Mux(clears, ins.flags, 0))

        def next_element():
            with m.If(elane == lanes - 1):
                m.d.sync += [elane.eq(0), erow.eq(erow + 1)]
            with m.Else():
                m.d.sync += elane.eq(elane + 1)

        def next_part(part_now, row_now):
            """The next block's part of a row (or word) and its row."""
            with m.If(part_now == fold - 1):
                m.d.sync += [part.eq(0), prow.eq(row_now + 1)]
            with m.Else():
                m.d.sync += [part.eq(part_now + 1), prow.eq(row_now)]

        def next_block():  # the last block's end is the word's (``end_now``)
            with m.If(~blk_end):
                m.d.sync += [*blk_next(), eoff.eq(eoff + lanes)]
                if fold > 1:
                    next_part(cur_part, cur_prow)

        def step_slot(block, after_block):
            """The step of ``block`` of the targets, the plus then the minus half."""
            target = Mux(st == 0, ins.plus, ins.minus) + block
            m.d.comb += [
                state_row.eq(target),
                slot.op.eq(Slot.STEP),
                slot.first.eq(1),
                slot.row.eq(target),
                slot.mrow.eq(ins.mask + block),
                slot.half.eq(st[0]),
                slot.held.eq(ins.held),
                slot.gated.eq(ins.gated),
            ]
            with m.If(st == ins.steps - 1):
                m.d.sync += [st.eq(0), in_tail.eq(0)]
                after_block()
            with m.Else():
                m.d.sync += st.eq(st + 1)

        def after_rows():
            m.d.sync += elane.eq(0)
            if row_blocks == 1:  # every sweep by rows one block: its tail is its last
                return
            with m.If(~final):
                m.d.sync += [*blk_next(), eoff.eq(eoff + lanes)]

        def after_cols():
            with m.If(~blk_end):
                m.d.sync += [*blk_next(), eoff.eq(eoff + lanes)]
                if fold > 1:  # the next block of targets: the next part of the same words
                    next_part(part, prow)
                    m.d.sync += woff.eq(Mux(part == fold - 1, prow + 1, prow))
                else:
                    m.d.sync += woff.eq(blk + 1)

        with m.FSM(name="sequencer"):
            with m.State("IDLE"):
                first = Array(Const(e, following.shape()) for e in self.entries)[self.entry]
                m.d.comb += fetch.addr.eq(first)
                with m.If(self.start):
                    m.d.comb += fetch.en.eq(1)
                    m.d.sync += [following.eq(first + 1), self.running.eq(1), fresh.eq(1)]
                    m.next = "EXEC"
            with m.State("EXEC"):
                stall = (fresh & ~ins.nodelay) | waiting
                with m.If(fresh & ~ins.nodelay):
                    m.d.sync += [left.eq(ins.delay - 1), waiting.eq(ins.delay != 1)]
                with m.Elif(waiting):
                    m.d.sync += [left.eq(left - 1), waiting.eq(left != 1)]
                issue = ~stall & ~in_tail
                # a FLAGS word folded into this one: its flags set in the word's first clock
                m.d.comb += flags_set.eq(Mux(fresh, ins.preset, 0))
                with m.Switch(ins.kind):
                    with m.Case(Kind.GATHER):
                        with m.If(issue):
                            last = inner_end
                            m.d.comb += [
                                state_row.eq(ins.part_rows[inner] + blk),
                                slot.op.eq(Slot.GATHER),
                                slot.first.eq(inner == 0),
                                slot.last.eq(last),
                                slot.neg.eq(ins.part_neg.bit_select(inner, 1)),
                                slot.dest.eq(ins.dest),
                                slot.row.eq(ins.drow + blk),
                                slot.lane.eq(ins.dlane),
                                slot.single.eq(ins.single),
                                slot.fresh.eq(ins.fresh),
                                slot.mrow.eq(ins.mask + blk),
                                slot.held.eq(ins.held),
                                slot.gated.eq(ins.gated),
                            ]
                            if fold > 1:  # the source buffer's rows hold ``fold`` blocks
                                with m.If(ins.dest == Dest.SRC):
                                    m.d.comb += [slot.row.eq(cur_prow), slot.part.eq(cur_part)]
                            with m.If(last):
                                m.d.sync += inner_restart()
                                with m.If(ins.steps != 0):
                                    m.d.sync += in_tail.eq(1)
                                with m.Else():
                                    next_block()
                            with m.Else():
                                m.d.sync += inner_next()
                        with m.Elif(in_tail):
                            step_slot(blk, next_block)
                    with m.Case(Kind.ROWS):
                        with m.If(issue):
                            m.d.sync += woff.eq(woff + 1)
                            last = inner_end
                            m.d.comb += [
                                weight_addr.eq(ins.wbase + woff),
                                src_addr.eq(inner),
                                slot.op.eq(Slot.ROWS),
                                slot.first.eq(inner == 0),
                                slot.last.eq(last),
                                slot.lane.eq(elane),
                            ]
                            with m.If(last):
                                m.d.sync += [*inner_restart(), *row_next()]
                                with m.If((elane == lanes - 1) | row_end):
                                    m.d.sync += [in_tail.eq(1), final.eq(row_end)]
                                with m.Else():
                                    m.d.sync += elane.eq(elane + 1)
                            with m.Else():
                                m.d.sync += inner_next()
                        with m.Elif(in_tail):
                            step_slot(blk, after_rows)
                    with m.Case(Kind.COLS):
                        with m.If(issue):
                            last = inner_end
                            m.d.comb += [
                                weight_addr.eq(ins.wbase + woff),
                                post_addr.eq(erow),
                                slot.op.eq(Slot.COLS),
                                slot.first.eq(inner == 0),
                                slot.last.eq(last),
                                slot.lane.eq(elane),
                                slot.part.eq(part),
                            ]
                            with m.If(last):
                                m.d.sync += inner_restart()
                                m.d.sync += [erow.eq(0), elane.eq(0), in_tail.eq(1)]
                            with m.Else():
                                m.d.sync += [*inner_next(), woff.eq(woff + ins.stride)]
                                next_element()
                        with m.Elif(in_tail):
                            step_slot(blk, after_cols)
                    with m.Case(Kind.LEARN):
                        with m.If(~stall):
                            m.d.sync += woff.eq(woff + 1)
                            m.d.comb += [
                                src_addr.eq(inner),
                                post_addr.eq(erow),
                                slot.op.eq(Slot.LEARN),
                                slot.row.eq(ins.wbase + woff),
                                slot.covariance.eq(ins.covariance),
                                slot.lane.eq(elane),
                            ]
                            with m.If(inner_end):
                                m.d.sync += [*inner_restart(), eoff.eq(0)]
                                next_element()  # the word's length ends it: no row count
                            with m.Else():
                                m.d.sync += [*inner_next(), eoff.eq(eoff + simd)]
                    with m.Case(Kind.FLAGS):
                        m.d.comb += flags_set.eq(ins.flags)
                    with m.Case(Kind.TICK):
                        with m.If(fresh):  # the tick's leaks; the sample's last tick counts it
                            m.d.comb += flags_set.eq(ins.flags)
                            with m.If(ins.last):
                                m.d.sync += counted.eq(1)
                        with m.If(end_now):  # drained: the pipeline's last events counted
                            m.d.comb += self.state_valid.eq(1)
                            with m.If(~self.hold & ins.last):  # the next sample may load
                                m.d.comb += self.sample_done.eq(1)
                                m.d.sync += self.running.eq(0)
                                m.next = "IDLE"
                # ``hold`` keeps a tick's last clock (and its state valid)
                with m.If(end_now & ((ins.kind != Kind.TICK) | ~self.hold)):
                    finish()
                with m.Elif(end_now):
                    m.d.sync += ending.eq(1)
        return m
