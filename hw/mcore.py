"""The memory-centric network core: a micro-coded sequencer over memories and a pipeline of lanes.

Every group's currents live in a :class:`~hw.state_memory.StateMemory` of ``lanes`` banks,
masks in a memory of ``lanes``-bit words, every matrix in one weight memory of words of
``lanes`` weights (a transposed copy is its primary read the other way: by columns, one
broadcast source element a clock into ``lanes`` accumulators), gathered source vectors in two
buffers. The sequencer steps through
an instruction ROM (:mod:`hw.microcode`) and issues one slot a clock into a fixed pipeline:

====== ======================================================================================
stage  what happens
====== ======================================================================================
0      the slot's addresses go to the memories (the state memory, the weights, the buffers)
1      their words arrive: each lane's multiplier operands are registered (a weight and a
       source element; a post- and a pre-synaptic element; or ``+-1`` and a current, so that
       gathers, relays and steps read currents through the same multipliers)
2      the products are registered
3      accumulate (per lane, or into one adder tree for a row); a learning rule writes the
       weights and their copy; a step's mask word is read
4      write back: a population step, a buffer block, a copy, a leak, a mask, the output
====== ======================================================================================

The logic depends on the lane count and on the widths of the ROM's fields, not on the sizes
of the layers: those set memory depths and loop counts in the ROM.

Every configuration the golden model runs: half-up or stochastic rounding, the Hebbian and the
covariance rule, the host port; one lane count for every matrix.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In
from amaranth.utils import ceil_log2

from golden_model.choices import Rounding
from golden_model.circuit import FIXED, Circuit
from golden_model.config import Config
from golden_model.schedule import Schedule
from golden_model.trace import StateLayout

from .cores import core_ports
from .fixedpoint import (
    balanced_sum,
    clamp_unsigned,
    saturate,
    shift_round_nearest,
    shift_round_stochastic,
)
from .host_port import HostPort, WeightAddressDecoder
from .lfsr import MultiStepLfsr
from .microcode import Dest, Kind, encode, rom_value, sample_clocks, word_layout
from .microprogram import compile_program
from .population import COUNTER_WIDTH, PopulationStep
from .state_memory import StateMemory, debug_address

__all__ = ["MemoryCore"]

# Debug ROM entry kinds.
_CURRENT, _MASK, _WEIGHT, _COUNTER = range(4)


class Slot(IntEnum):
    """What a pipeline slot does (``NONE``: a bubble)."""

    NONE = 0
    GATHER = 1
    ROWS = 2
    COLS = 3
    LEARN = 4
    STEP = 5


class MemoryCore(wiring.Component):
    """The circuit of a compiled schedule over memories, one training sample at a time.

    The ports are :class:`hw.network.NetworkCore`'s (without the host port): stream a
    sample's input words into ``load``, pulse ``start``; ``state_valid`` is high for a clock
    after every tick (longer while ``hold``), when the debug port reads any state word in the
    golden trace's order, a clock after its address.

    Parameters
    ----------
    schedule : Schedule
    cfg : Config
        Widths, shifts, rounding (half up, or stochastic from the seeded LFSR in the golden
        model's row-major order) and learning rules (Hebbian, covariance).
    lanes : int
        Multiply-accumulates per clock, and the banks of the state memory.
    debug : bool
        The debug read port (simulation and bring-up).
    host_port : bool
        Add the ``host`` port (:func:`hw.host_port.HostPort`): a weight read or written
        between samples, by its trace index; the rounding LFSR's state (reseeded by the host,
        stepping only under stochastic rounding).

    Attributes
    ----------
    load : In(stream.Signature(signed(current_width)))
    start, hold : In(1)
    running, sample_done, state_valid : Out(1)
    sat_current, sat_weight, sat_copy : Out(64)
    samples : Out(32)
    output : Out(ArrayLayout(signed(current_width + 1), readout size))
    debug_addr : In(range(state words)), debug_data : Out(signed(64))

    Timing: a sample takes :attr:`clocks_per_sample` clocks from ``start`` to its last
    tick's state (:func:`hw.microcode.sample_clocks`, without ``hold``).
    """

    def __init__(
        self,
        schedule: Schedule,
        cfg: Config,
        lanes: int = 1,
        debug: bool = True,
        host_port: bool = False,
    ):
        if 1 << cfg.weight_frac > (1 << (max(cfg.current_width, cfg.weight_width) - 1)) - 1:
            raise NotImplementedError("the memory-centric core needs 1.0 in a weight's width")
        if lanes & (lanes - 1):
            raise NotImplementedError("the memory-centric core takes a power-of-two lane count")
        self.schedule, self.cfg, self.lanes, self.debug = schedule, cfg, lanes, debug
        self.host_port = host_port
        self.program = compile_program(schedule, lanes)
        self.words, self.where = encode(self.program, cfg)
        self.clocks_per_sample = sample_clocks(self.words, lanes)
        self.layout = StateLayout.of(schedule)
        self.state_words = self.layout.n_words
        self.input_groups = list(schedule.inputs)
        self.input_size = sum(schedule.group(n).size for n in self.input_groups)
        readout = schedule.readout
        self.output_size = schedule.group(readout.plus).size if readout else 0
        ports = core_ports(cfg.current_width, self.output_size, self.state_words, debug)
        if host_port:
            ports["host"] = In(HostPort(self.layout.n_weights, cfg.weight_width))
        super().__init__(ports)

    # -- memory contents -----------------------------------------------------------------------

    def _weight_words(self, golden: Circuit) -> list[list[int]]:
        """The weight memory (:class:`hw.microcode.MemoryMap`): each primary as its stored
        rows, words of ``lanes`` elements."""
        lanes, where, s = self.lanes, self.where, self.schedule
        words: list[list[int]] = []
        for name in where.primaries:
            mat = s.matrix(name)
            blocks = where.words[name]
            codes = golden.weights[name]
            if name in where.transposed:  # a stored row is a column
                codes = codes.T
            grid = np.zeros((codes.shape[0], blocks * lanes), np.int64)
            grid[:, : codes.shape[1]] = codes
            words += [[int(v) for v in grid[r, b * lanes : (b + 1) * lanes]]
                      for r in range(grid.shape[0]) for b in range(blocks)]  # fmt: skip
            del mat
        return words

    def _debug_rom(self) -> list[int]:
        """The debug port's map: every state word in trace order -> (kind, unit, address,
        lane), packed into one integer (the unit: a counter's index)."""
        lanes, where = self.lanes, self.where
        entries = []
        for g in self.schedule.groups:
            for j in range(g.size):
                row, bank = self.program.state.address(g.name, j)
                entries.append((_CURRENT, 0, debug_address(row, bank, lanes), 0))
        for name, size in self.schedule.masks:
            for j in range(size):
                entries.append((_MASK, 0, where.masks[name] + j // lanes, j % lanes))
        for mat in self.schedule.matrices:
            base, blocks = where.weights[mat.name], where.words[mat.name]
            for r in range(mat.rows):
                for c in range(mat.cols):
                    if mat.transpose_of or mat.name in where.transposed:  # read by columns
                        entries.append((_WEIGHT, 0, base + c * blocks + r // lanes, r % lanes))
                    else:
                        entries.append((_WEIGHT, 0, base + r * blocks + c // lanes, c % lanes))
        entries += [(_COUNTER, k, 0, 0) for k in range(5)]
        self._debug_fields = (
            2,
            3,
            max(ceil_log2(max(e[2] for e in entries) + 1), 1),
            ceil_log2(max(lanes, 2)),
        )
        kb, ub, ab, lb = self._debug_fields
        return [k | u << kb | a << (kb + ub) | ln << (kb + ub + ab) for k, u, a, ln in entries]

    # -- elaboration ---------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        s, cfg, lanes, where = self.schedule, self.cfg, self.lanes, self.where
        cw, ww = cfg.current_width, cfg.weight_width
        golden = Circuit(s, cfg, FIXED)
        state_map = self.program.state

        contents = np.zeros((state_map.rows, lanes), np.int64)
        for name, _ in s.constants:
            for j, v in enumerate(golden.group(name)):
                row, bank = state_map.address(name, j)
                contents[row, bank] = v
        row_groups = [where.group_index[g.name] for g in s.groups
                      for _ in range(state_map.blocks(g.name))]  # fmt: skip
        m.submodules.state = self.st = StateMemory(lanes, cw, row_groups, contents)

        mask_rows = sum(-(-size // lanes) for _, size in s.masks)
        m.submodules.masks = self.mask_mem = memory.Memory(
            shape=unsigned(lanes), depth=max(mask_rows, 2), init=[]
        )
        word = data.ArrayLayout(signed(ww), lanes)
        primary = self._weight_words(golden)
        self.weight_words = where.depth
        m.submodules.weights = self.w_mem = memory.Memory(
            shape=word, depth=max(len(primary), 2), init=primary
        )
        buffers = (Dest.SRC, Dest.POST)
        buffer_rows = max([w.drow + w.count for w in self.words
                           if w.kind == Kind.GATHER and w.dest in buffers]
                          + [w.inner for w in self.words if w.kind in (Kind.ROWS, Kind.LEARN)]
                          + [-(-w.inner // lanes) for w in self.words if w.kind == Kind.COLS]
                          + [-(-w.count // lanes) for w in self.words if w.kind == Kind.LEARN]
                          + [2])  # fmt: skip
        self.buffers = {}
        for name in ("src", "post"):
            mem = memory.Memory(
                shape=data.ArrayLayout(signed(cw), lanes), depth=buffer_rows, init=[]
            )
            m.submodules[f"buf_{name}"] = mem
            self.buffers[name] = mem

        parts = max(max(len(w.parts) for w in self.words), 1)
        layout = word_layout(self.words, parts, len(s.groups))
        m.submodules.rom = rom = memory.Memory(
            shape=layout,
            depth=len(self.words),
            init=[rom_value(w, parts) for w in self.words],
        )
        self.rom = rom.read_port()

        row_bits = max(
            ceil_log2(max(state_map.rows, buffer_rows, mask_rows, self.weight_words, 2) + 1), 1
        )
        self.tag_layout = data.StructLayout(
            {
                "op": unsigned(3),
                "first": unsigned(1),
                "last": unsigned(1),
                "neg": unsigned(1),
                "dest": unsigned(3),
                "row": unsigned(row_bits),
                "mrow": unsigned(row_bits),
                "lane": unsigned(max(ceil_log2(lanes), 1)),
                "single": unsigned(1),
                "valid": unsigned(lanes),
                "valid2": unsigned(lanes),
                "half": unsigned(1),
                "held": unsigned(1),
                "gated": unsigned(1),
                "fresh": unsigned(1),
                "covariance": unsigned(1),
            }
        )
        self.tags = [Signal(self.tag_layout, name=f"tag{n}") for n in range(5)]
        for n in range(4):
            m.d.sync += self.tags[n + 1].eq(self.tags[n])

        self.w_read = self.w_mem.read_port()
        self.w_write = self.w_mem.write_port(granularity=1)
        self.src_read, self.src_write = (
            self.buffers["src"].read_port(),
            self.buffers["src"].write_port(granularity=1),
        )
        self.post_read, self.post_write = (
            self.buffers["post"].read_port(),
            self.buffers["post"].write_port(granularity=1),
        )
        self.mask_read, self.mask_write = self.mask_mem.read_port(), self.mask_mem.write_port()

        m.submodules.lfsr = self.lfsr = MultiStepLfsr(cfg.lfsr_seed, lanes)
        self._sequencer(m)
        self._lanes(m)
        self._load(m)
        if self.host_port:
            self._host(m)
        if self.debug:
            self._debug_port(m)
        return m

    # -- stage 0: the sequencer ------------------------------------------------------------------

    def _sequencer(self, m: Module) -> None:
        """Steps through the ROM, one slot a clock into ``tags[0]`` and the memories' read
        addresses; waits where a word's ``delay`` says, and drains the pipeline at a tick."""
        lanes = self.lanes
        ins = self.rom.data
        slot = self.tags[0]
        n_words = len(self.words)
        counts = max(max(w.count for w in self.words), max(w.inner for w in self.words), 2)
        pc = Signal(range(max(n_words, 2)))
        blk, row, inner = (Signal(range(counts + 1), name=n) for n in ("blk", "row", "inner"))
        st = Signal(2)  # step slot of a block
        in_tail, final, started = Signal(), Signal(), Signal()
        waited = Signal.like(ins.delay)
        woff = Signal(range(max(self.weight_words, 2) + 1))
        eoff = Signal(range((counts + 1) * lanes + 1))  # first element of the block
        erow = Signal(range(counts + 1))  # a buffered element: its word ...
        elane = Signal(range(max(lanes, 2)))  # ... and its lane
        busy = Cat(*(t.op != Slot.NONE for t in self.tags[1:])).any()
        self.w_addr = Signal(range(max(self.weight_words, 2)))
        m.d.comb += [self.rom.addr.eq(pc), self.rom.en.eq(0)]
        m.d.comb += [
            slot.valid.eq(Cat(*((eoff + k) < ins.size for k in range(lanes)))),
            slot.valid2.eq(Cat(*((eoff + k) < ins.size2 for k in range(lanes)))),
        ]

        def finish(clear_flags=True):
            """The word's last clock: fetch the next one, counters back to zero."""
            m.d.comb += [self.rom.addr.eq(pc + 1), self.rom.en.eq(1)]
            m.d.sync += [pc.eq(pc + 1), started.eq(0)]
            for counter in (blk, row, inner, st, in_tail, final, woff, eoff, erow, elane, waited):
                m.d.sync += counter.eq(0)
            if clear_flags:
                m.d.comb += self.st.flags_clear.eq(ins.flags)

        def next_element():
            with m.If(elane == lanes - 1):
                m.d.sync += [elane.eq(0), erow.eq(erow + 1)]
            with m.Else():
                m.d.sync += elane.eq(elane + 1)

        def next_block():
            with m.If(blk == ins.count - 1):
                finish()
            with m.Else():
                m.d.sync += [blk.eq(blk + 1), eoff.eq(eoff + lanes)]

        def step_slot(block, after_block):
            """The step of ``block`` of the targets, the plus then the minus half."""
            target = Mux(st == 0, ins.plus, ins.minus) + block
            m.d.comb += [
                self.st.read_row.eq(target),
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

        with m.FSM(name="sequencer"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.comb += [self.rom.addr.eq(0), self.rom.en.eq(1)]
                    m.d.sync += [pc.eq(0), self.running.eq(1)]
                    m.next = "EXEC"
            with m.State("EXEC"):
                stall = ~started & (waited != ins.delay)
                with m.If(stall):
                    m.d.sync += waited.eq(waited + 1)
                with m.Switch(ins.kind):
                    with m.Case(Kind.GATHER):
                        with m.If(~stall & ~in_tail):
                            m.d.sync += started.eq(1)
                            last = inner == ins.inner - 1
                            m.d.comb += [
                                self.st.read_row.eq(ins.part_rows[inner] + blk),
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
                            with m.If(last):
                                m.d.sync += inner.eq(0)
                                with m.If(ins.steps != 0):
                                    m.d.sync += in_tail.eq(1)
                                with m.Else():
                                    next_block()
                            with m.Else():
                                m.d.sync += inner.eq(inner + 1)
                        with m.Elif(in_tail):
                            step_slot(blk, next_block)
                    with m.Case(Kind.ROWS):
                        with m.If(~stall & ~in_tail):
                            m.d.sync += [started.eq(1), woff.eq(woff + 1)]
                            last = inner == ins.inner - 1
                            m.d.comb += [
                                self.w_addr.eq(ins.wbase + woff),
                                self.src_read.addr.eq(inner),
                                slot.op.eq(Slot.ROWS),
                                slot.first.eq(inner == 0),
                                slot.last.eq(last),
                                slot.lane.eq(elane),
                            ]
                            with m.If(last):
                                m.d.sync += [inner.eq(0), row.eq(row + 1)]
                                with m.If((elane == lanes - 1) | (row == ins.count - 1)):
                                    m.d.sync += [in_tail.eq(1), final.eq(row == ins.count - 1)]
                                with m.Else():
                                    m.d.sync += elane.eq(elane + 1)
                            with m.Else():
                                m.d.sync += inner.eq(inner + 1)
                        with m.Elif(in_tail):

                            def after_rows():
                                m.d.sync += elane.eq(0)
                                with m.If(final):
                                    finish()
                                with m.Else():
                                    m.d.sync += [blk.eq(blk + 1), eoff.eq(eoff + lanes)]

                            step_slot(blk, after_rows)
                    with m.Case(Kind.COLS):
                        with m.If(~stall & ~in_tail):
                            m.d.sync += started.eq(1)
                            last = inner == ins.inner - 1
                            m.d.comb += [
                                self.w_addr.eq(ins.wbase + woff),
                                self.src_read.addr.eq(erow),
                                slot.op.eq(Slot.COLS),
                                slot.first.eq(inner == 0),
                                slot.last.eq(last),
                                slot.lane.eq(elane),
                            ]
                            with m.If(last):
                                m.d.sync += [inner.eq(0), erow.eq(0), elane.eq(0), in_tail.eq(1)]
                            with m.Else():
                                m.d.sync += [inner.eq(inner + 1), woff.eq(woff + ins.stride)]
                                next_element()
                        with m.Elif(in_tail):

                            def after_cols():
                                with m.If(blk == ins.count - 1):
                                    finish()
                                with m.Else():
                                    m.d.sync += [
                                        blk.eq(blk + 1),
                                        eoff.eq(eoff + lanes),
                                        woff.eq(blk + 1),
                                    ]

                            step_slot(blk, after_cols)
                    with m.Case(Kind.LEARN):
                        with m.If(~stall):
                            m.d.sync += [started.eq(1), woff.eq(woff + 1)]
                            m.d.comb += [
                                self.src_read.addr.eq(inner),
                                self.post_read.addr.eq(erow),
                                slot.op.eq(Slot.LEARN),
                                slot.row.eq(ins.wbase + woff),
                                slot.covariance.eq(ins.covariance),
                                slot.lane.eq(elane),
                            ]
                            with m.If(inner == ins.inner - 1):
                                m.d.sync += [inner.eq(0), eoff.eq(0)]
                                next_element()
                                with m.If(row == ins.count - 1):
                                    finish(clear_flags=False)
                                with m.Else():
                                    m.d.sync += row.eq(row + 1)
                            with m.Else():
                                m.d.sync += [inner.eq(inner + 1), eoff.eq(eoff + lanes)]
                    with m.Case(Kind.FLAGS):
                        m.d.comb += self.st.flags_set.eq(ins.flags)
                        finish(clear_flags=False)
                    with m.Case(Kind.TICK):
                        with m.If(~started):  # the tick's leaks; the sample's last tick counts it
                            m.d.sync += started.eq(1)
                            m.d.comb += self.st.flags_set.eq(ins.flags)
                            with m.If(ins.last):
                                m.d.sync += self.samples.eq(self.samples + 1)
                        with m.Elif(~busy):
                            m.d.comb += self.state_valid.eq(1)
                            with m.If(~self.hold & ins.last):  # the next sample may load
                                m.d.comb += self.sample_done.eq(1)
                                m.d.sync += [self.running.eq(0), started.eq(0)]
                                m.next = "IDLE"
                            with m.Elif(~self.hold):
                                finish(clear_flags=False)

    # -- stages 1 to 4: the lanes ----------------------------------------------------------------

    def _lanes(self, m: Module) -> None:
        cfg, lanes = self.cfg, self.lanes
        cw, ww = cfg.current_width, cfg.weight_width
        t1, t2, t3, t4 = self.tags[1:]
        st = self.st

        # Weights are read at stage 0, or at stage 2 by a learning rule (its products are
        # ready at stage 3, when it writes; the compiler keeps sweeps clear of it).
        learn2 = t2.op == Slot.LEARN
        self.host_addr, self.host_busy = Signal.like(self.w_addr), Signal()
        w_addr = Mux(self.host_busy, self.host_addr, Mux(learn2, t2.row, self.w_addr))
        m.d.comb += self.w_read.addr.eq(w_addr)

        # stage 1: operands
        a_width = max(cw, ww)  # +-1, a weight or a current: one 16 x 16 DSP on the iCE40
        mul_a = Signal(data.ArrayLayout(signed(a_width), lanes))
        mul_b = Signal(data.ArrayLayout(signed(cw), lanes))
        # Currents pass the multipliers as 1.0 in weight units: then every block leaves the
        # accumulators through one rounding (exact for them) and one saturation per lane.
        one = 1 << cfg.weight_frac
        src = self.src_read.data
        src_element = Array(src[k] for k in range(lanes))[t1.lane]
        post_element = Array(self.post_read.data[k] for k in range(lanes))[t1.lane]
        for k in range(lanes):
            with m.Switch(t1.op):
                with m.Case(Slot.GATHER):
                    m.d.sync += [mul_a[k].eq(Mux(t1.neg, -one, one)), mul_b[k].eq(st.read_data[k])]
                with m.Case(Slot.STEP):
                    m.d.sync += [mul_a[k].eq(one), mul_b[k].eq(st.read_data[k])]
                with m.Case(Slot.ROWS):
                    m.d.sync += [mul_a[k].eq(self.w_read.data[k]), mul_b[k].eq(src[k])]
                with m.Case(Slot.COLS):
                    m.d.sync += [mul_a[k].eq(self.w_read.data[k]), mul_b[k].eq(src_element)]
                with m.Case(Slot.LEARN):
                    m.d.sync += [mul_a[k].eq(post_element), mul_b[k].eq(src[k])]
                with m.Default():  # registered every clock, no enable: the DSP's own registers
                    m.d.sync += [mul_a[k].eq(0), mul_b[k].eq(0)]

        # stage 2: products
        products = Signal(data.ArrayLayout(signed(a_width + cw), lanes))
        for k in range(lanes):
            m.d.sync += products[k].eq(mul_a[k] * mul_b[k])

        # stage 3: accumulate; learn
        widest = max([mt.cols for mt in self.schedule.matrices] + [mt.rows for mt in
                     self.schedule.matrices] + [2])  # fmt: skip
        acc_width = a_width + cw + ceil_log2(widest + 1) + 2
        acc = Signal(data.ArrayLayout(signed(acc_width), lanes))
        with m.Switch(t3.op):
            with m.Case(Slot.GATHER, Slot.COLS, Slot.STEP):
                for k in range(lanes):
                    m.d.sync += acc[k].eq(Mux(t3.first, 0, acc[k]) + products[k])
            with m.Case(Slot.ROWS):
                total = balanced_sum([products[k] for k in range(lanes)])
                m.d.sync += acc[0].eq(Mux(t3.first, 0, acc[0]) + total)
        ev_weight, ev_copy = Signal(lanes), Signal(lanes)
        self._learn(m, t3, products, ev_weight, ev_copy)
        m.d.comb += self.mask_read.addr.eq(t3.mrow)

        # stage 4: write back
        zbuf = Signal(data.ArrayLayout(signed(cw), lanes))
        ev_current = Signal(lanes)
        shifted = [shift_round_nearest(acc[k], cfg.weight_frac) for k in range(lanes)]
        rounded = values = [saturate(shifted[k], cw) for k in range(lanes)]
        self._shifted = shifted
        write_state, stepping = Signal(), Signal()
        state_data = self._state_data = Signal(data.ArrayLayout(signed(cw), lanes))
        step_current = Signal(data.ArrayLayout(signed(cw), lanes))
        step_z = Signal(data.ArrayLayout(signed(cw), lanes))
        ev_step = Signal(lanes)
        self._step_units(m, t4, step_current, step_z, stepping, state_data, ev_step)
        with m.Switch(t4.op):
            with m.Case(Slot.GATHER):
                with m.If(t4.last):
                    self._gather_out(m, t4, acc, values, zbuf, ev_current, write_state)
                    with m.If((t4.dest == Dest.STEP) & t4.fresh):  # a relay from zero
                        m.d.comb += [write_state.eq(1), stepping.eq(1)]
                        for k in range(lanes):
                            m.d.comb += step_z[k].eq(values[k][0])
            with m.Case(Slot.ROWS):
                with m.If(t4.last):
                    z, event = rounded[0]
                    m.d.sync += Array(zbuf[k] for k in range(lanes))[t4.lane].eq(z)
                    m.d.comb += ev_current.eq(event)
            with m.Case(Slot.COLS):
                with m.If(t4.last):
                    for k in range(lanes):
                        m.d.sync += zbuf[k].eq(rounded[k][0])
                    m.d.comb += ev_current.eq(Cat(*(e for _, e in rounded)) & t4.valid)
            with m.Case(Slot.STEP):
                m.d.comb += [write_state.eq(1), stepping.eq(1)]
                for k in range(lanes):
                    m.d.comb += [step_current[k].eq(values[k][0]), step_z[k].eq(zbuf[k])]
        with m.If(write_state):
            m.d.comb += [st.write_row.eq(t4.row), st.write_lanes.eq(t4.valid)]
            for k in range(lanes):
                m.d.comb += st.write_data[k].eq(state_data[k])

        for counter, events in (
            (self.sat_current, [*ev_current, *ev_step]),
            (self.sat_weight, list(ev_weight)),
            (self.sat_copy, list(ev_copy)),
        ):
            total = balanced_sum(events)
            m.d.sync += counter.eq(clamp_unsigned(counter[:COUNTER_WIDTH] + total, COUNTER_WIDTH))

    def _learn(self, m, t3, products, ev_weight, ev_copy) -> None:
        """Stage 3 of a learning slot: the rule on a word of weights, written back at once.

        Hebbian: ``W - round(post pre >> update_shift)``; covariance: ``K + round((post pre -
        K 2**align) >> (align + rate_shift))``, the rate halving at every power of two of the
        sample count. Stochastic rounding takes lane ``k``'s addend from the LFSR state ``k + 1``
        steps on, and steps it once per weight of the word (its valid lanes: a prefix)."""
        cfg, lanes, ww = self.cfg, self.lanes, self.cfg.weight_width
        stochastic = cfg.rounding == Rounding.STOCHASTIC
        covariance = any(w.covariance for w in self.words)
        hebbian = any(w.kind == Kind.LEARN and not w.covariance for w in self.words)
        shift = cfg.update_shift
        ahead = self.lfsr.ahead
        learning = t3.op == Slot.LEARN
        draws = Signal()
        if covariance:
            align = 2 * cfg.current_frac - cfg.weight_frac
            t, log2 = Signal(33), Signal(range(34))
            m.d.comb += t.eq(self.samples + 1)
            for bit in range(33):  # eta_t = 2^-floor(log2 t), floored at 2^-shift
                with m.If(t[bit]):
                    m.d.comb += log2.eq(bit)
            limit = cfg.learning_rate_shift
            amount = Signal(range(align + limit + 1))
            m.d.comb += amount.eq(align + Mux(log2 > limit, limit, log2))
        m.d.comb += draws.eq(Mux(t3.covariance, amount != 0, shift != 0) if covariance
                             else shift != 0)  # fmt: skip
        with m.If(learning):
            m.d.comb += [self.w_write.addr.eq(t3.row), self.w_write.en.eq(t3.valid)]
            flags = []
            for k in range(lanes):
                old = self.w_read.data[k]
                new = Signal(signed(ww), name=f"learned{k}")
                event = Signal(name=f"learn_saturated{k}")
                if hebbian:
                    if stochastic:
                        change = shift_round_stochastic(products[k], shift, ahead[k])
                    else:
                        change = shift_round_nearest(products[k], shift)
                    m.d.comb += Cat(new, event).eq(Cat(*saturate(old - change, ww)))
                if covariance:
                    width = max(2 * cfg.current_width, ww + align) + 2
                    error = Signal(signed(width), name=f"error{k}")
                    m.d.comb += error.eq(products[k] - (old << align))
                    if stochastic:
                        addend = ahead[k] & ((Const(1, 33) << amount) - 1)
                    else:
                        addend = Mux(amount == 0, 0, (Const(1, 33) << amount) >> 1)
                    with m.If(t3.covariance):
                        change = ((error + addend) >> amount).as_signed()
                        m.d.comb += Cat(new, event).eq(Cat(*saturate(old + change, ww)))
                m.d.comb += self.w_write.data[k].eq(new)
                flags.append(event)
            # the transposed copy's events: its primary's within the copy's rows
            m.d.comb += [ev_weight.eq(Cat(*flags) & t3.valid), ev_copy.eq(Cat(*flags) & t3.valid2)]
            if stochastic:
                m.d.comb += self.lfsr.advance.eq(Mux(draws, balanced_sum(list(t3.valid)), 0))

    def _step_units(self, m, t4, current, z, stepping, state_data, events) -> None:
        """A population step per lane: ``current`` and the half of ``z`` of ``t4``, gated by
        the mask word read at stage 3, into ``state_data``."""
        flags = []
        for k in range(self.lanes):
            unit = PopulationStep(self.cfg)
            m.submodules[f"step{k}"] = unit
            signed_drive = Mux(t4.half, -z[k], z[k])
            drive = Mux(signed_drive > 0, signed_drive, 0)
            m.d.comb += [
                unit.current.eq(current[k]),
                unit.drive.eq(drive),
                unit.gate.eq(~t4.gated | self.mask_read.data[k]),
                unit.held_gain.eq(t4.held),
            ]
            with m.If(stepping):
                m.d.comb += state_data[k].eq(unit.next)
            flags.append(unit.saturated)
        m.d.comb += events.eq(Cat(*flags) & t4.valid & stepping.replicate(self.lanes))

    def _gather_out(self, m, t4, acc, values, zbuf, ev_current, write_state) -> None:
        """A gathered block to its destination (the state memory's data: ``self._state``)."""
        state_data = self._state_data
        lanes = self.lanes
        sums = Cat(*(e for _, e in values))
        with m.Switch(t4.dest):
            for dest, buffer in ((Dest.SRC, self.src_write), (Dest.POST, self.post_write)):
                with m.Case(dest):
                    m.d.comb += [
                        buffer.addr.eq(t4.row),
                        buffer.en.eq(Mux(t4.single, 1 << t4.lane, t4.valid)),
                        ev_current.eq(sums & t4.valid),
                    ]
                    for k in range(lanes):
                        m.d.comb += buffer.data[k].eq(Mux(t4.single, values[0][0], values[k][0]))
            with m.Case(Dest.STATE):
                m.d.comb += write_state.eq(1)
                for k in range(lanes):
                    m.d.comb += state_data[k].eq(values[k][0])
            with m.Case(Dest.LEAK):
                m.d.comb += write_state.eq(1)
                shift = self.cfg.leak_shift
                for k in range(lanes):
                    value = values[k][0]
                    m.d.comb += state_data[k].eq(value - shift_round_nearest(value, shift))
            with m.Case(Dest.MASK):
                bits = Cat(*(acc[k] > 0 for k in range(lanes)))
                m.d.comb += [
                    self.mask_write.addr.eq(t4.row),
                    self.mask_write.data.eq(bits & t4.valid),
                    self.mask_write.en.eq(1),
                ]
            with m.Case(Dest.OUT):
                for b in range(-(-self.output_size // lanes)):
                    with m.If(t4.row == b):
                        for k in range(lanes):
                            j = b * lanes + k
                            if j < self.output_size:
                                m.d.sync += self.output[j].eq(self._shifted[k])
            with m.Case(Dest.STEP):  # z of a relay (a fresh one steps it at once)
                for k in range(lanes):
                    m.d.sync += zbuf[k].eq(values[k][0])
                m.d.comb += ev_current.eq(sums & t4.valid)

    # -- the host port, the load and the debug port -----------------------------------------

    def _host(self, m: Module) -> None:
        """One weight read or written by its trace index while the core is idle: the index
        decoded to a word and lane with a few subtractions a clock
        (:class:`hw.host_port.WeightAddressDecoder`), then one access to the weight memory. A
        transposed copy is its primary, so a write to either reaches both."""
        from golden_model.schedule import Matrix

        from .synapse import ROWS, WeightLayout

        lanes, ww, where = self.lanes, self.cfg.weight_width, self.where
        # The decoder's view: a primary stored by columns is the transposed copy of a virtual
        # primary stored by rows (after every real matrix, so no index reaches it).
        mats, virtual = [], []
        for mat in self.schedule.matrices:
            if mat.name in where.transposed:
                name = f"{mat.name}^T"
                mats.append(Matrix(mat.name, mat.rows, mat.cols, transpose_of=name))
                virtual.append(Matrix(name, mat.cols, mat.rows))
            else:
                mats.append(mat)
        mats += virtual
        geometry = {
            mat.name: WeightLayout(mat.rows, mat.cols, lanes, ROWS, ww, stride=max(mat.cols, lanes))
            for mat in mats
        }
        bases = [where.weights[mat.name.removesuffix("^T")] for mat in mats]
        m.submodules.host_decoder = decoder = WeightAddressDecoder(mats, geometry)
        host = self.host
        value, writing = Signal(signed(ww)), Signal()
        access, answer = Signal(), Signal()
        m.d.comb += [
            host.ready.eq(~self.running & ~self.host_busy & ~self.start),
            decoder.addr.eq(host.addr),
            host.lfsr_state.eq(self.lfsr.state),
            self.lfsr.load_en.eq(host.seed_write & host.ready),
            self.lfsr.load_value.eq(host.seed),
        ]
        m.d.sync += host.done.eq(0)
        with m.FSM(name="host"):
            with m.State("idle"):
                with m.If(host.ready & (host.read | host.write)):
                    m.d.comb += decoder.start.eq(1)
                    m.d.sync += [value.eq(host.wdata), writing.eq(host.write)]
                    m.next = "decode"
            with m.State("decode"):
                m.d.comb += self.host_busy.eq(1)
                with m.If(decoder.valid):
                    m.next = "access"
            with m.State("access"):  # the read port takes the address; a write happens now
                m.d.comb += [self.host_busy.eq(1), access.eq(1)]
                m.next = "data"
            with m.State("data"):  # the word is on the read port
                m.d.comb += [self.host_busy.eq(1), answer.eq(1)]
                m.d.sync += host.done.eq(1)
                m.next = "idle"
        address = Array(Const(b) for b in bases)[decoder.select] + decoder.address
        m.d.comb += self.host_addr.eq(address)
        with m.If(access & writing):
            m.d.comb += [self.w_write.addr.eq(address), self.w_write.en.eq(1 << decoder.lane)]
            for k in range(lanes):
                m.d.comb += self.w_write.data[k].eq(value)
        with m.If(answer):
            word = Array(self.w_read.data[k] for k in range(lanes))
            m.d.sync += host.rdata.eq(word[decoder.lane])

    # -- the load and the debug port ---------------------------------------------------------

    def _load(self, m: Module) -> None:
        """Input words into the input groups, one element a clock while idle."""
        s, lanes = self.schedule, self.lanes
        groups = self.input_groups
        group = Signal(range(max(len(groups), 2)))
        element = Signal(range(max(max(s.group(g).size for g in groups), 2)))
        m.d.comb += self.load.ready.eq(~self.running)
        sizes = Array(Const(s.group(g).size) for g in groups)
        bases = Array(Const(self.where.state[g]) for g in groups)
        with m.If(self.load.valid & self.load.ready):
            m.d.comb += [
                self.st.write_row.eq(bases[group] + element // lanes),
                self.st.write_lanes.eq(1 << (element % lanes)),
            ]
            for k in range(lanes):
                m.d.comb += self.st.write_data[k].eq(self.load.payload)
            with m.If(element == sizes[group] - 1):
                m.d.sync += [element.eq(0), group.eq(Mux(group == len(groups) - 1, 0, group + 1))]
            with m.Else():
                m.d.sync += element.eq(element + 1)

    def _debug_port(self, m: Module) -> None:
        rom_words = self._debug_rom()
        kb, ub, ab, lb = self._debug_fields
        rom = memory.Memory(shape=unsigned(kb + ub + ab + lb), depth=len(rom_words), init=rom_words)
        m.submodules.debug_rom = rom
        entry = rom.read_port(domain="comb")
        m.d.comb += entry.addr.eq(self.debug_addr)
        kind, unit = entry.data[:kb], entry.data[kb : kb + ub]
        address = entry.data[kb + ub : kb + ub + ab]
        lane = entry.data[kb + ub + ab :]
        kind_r, unit_r, lane_r = Signal.like(kind), Signal.like(unit), Signal.like(lane)
        m.d.sync += [kind_r.eq(kind), unit_r.eq(unit), lane_r.eq(lane)]
        m.d.comb += self.st.debug_addr.eq(address)
        mask_debug = self.mask_mem.read_port()
        m.d.comb += mask_debug.addr.eq(address)
        weight_port = self.w_mem.read_port()
        m.d.comb += weight_port.addr.eq(address)
        weight = Array(weight_port.data[k] for k in range(self.lanes))[lane_r]
        counters = Array(
            [
                self.sat_current,
                self.sat_weight,
                self.sat_copy,
                self.samples,
                self.lfsr.state,
            ]
        )
        with m.Switch(kind_r):
            with m.Case(_CURRENT):
                m.d.comb += self.debug_data.eq(self.st.debug_data)
            with m.Case(_MASK):
                m.d.comb += self.debug_data.eq((mask_debug.data >> lane_r)[0])
            with m.Case(_WEIGHT):
                m.d.comb += self.debug_data.eq(weight)
            with m.Case(_COUNTER):
                m.d.comb += self.debug_data.eq(counters[unit_r])
