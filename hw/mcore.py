"""The memory-centric network core: the micro-program of :mod:`hw.microprogram` run over memories.

Every group's currents live in a :class:`~hw.state_memory.StateMemory` of ``lanes`` banks,
masks in a memory of ``lanes``-bit words, each matrix in a memory of words of ``lanes``
weights (a transposed copy at its primary's addresses, transposed in the word), gathered
source vectors in two small buffers. One set of ``lanes`` multipliers serves every sweep and
learning rule. The logic depends on the lane count and on the number of instructions (which
follows the number of layers), not on the sizes of the layers: those only set memory depths
and loop counts.

This first version runs every instruction as its own pass, one memory read a clock and no
overlap between passes (``hw.microprogram.program_clocks`` models the overlapped timing the
core is to reach); round-half-up updates and the Hebbian rule only (the spatial
:class:`hw.network.NetworkCore` still serves stochastic rounding, the covariance rule and
the host port).
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.utils import ceil_log2

from golden_model.choices import Rounding
from golden_model.circuit import FIXED, Circuit
from golden_model.config import Config
from golden_model.schedule import Schedule
from golden_model.trace import StateLayout

from .cores import core_ports
from .fixedpoint import balanced_sum, clamp_unsigned, saturate, shift_round_nearest
from .microprogram import Capture, Clear, Copy, Leak, Learn, Relay, Sweep, compile_program
from .population import COUNTER_WIDTH, PopulationStep
from .state_memory import StateMemory, debug_address

__all__ = ["MemoryCore"]

# Debug ROM entry kinds.
_CURRENT, _MASK, _WEIGHT, _COUNTER = range(4)


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
        Round-half-up updates (``rounding = "nearest"``); Hebbian learning rules.
    lanes : int
        Multiply-accumulates per clock, and the banks of the state memory.
    debug : bool
        The debug read port (simulation and bring-up).

    Attributes
    ----------
    load : In(stream.Signature(signed(current_width)))
    start, hold : In(1)
    running, sample_done, state_valid : Out(1)
    sat_current, sat_weight, sat_copy : Out(64)
    samples : Out(32)
    output : Out(ArrayLayout(signed(current_width + 1), readout size))
    debug_addr : In(range(state words)), debug_data : Out(signed(64))
    """

    def __init__(self, schedule: Schedule, cfg: Config, lanes: int = 1, debug: bool = True):
        if cfg.rounding != Rounding.NEAREST:
            raise NotImplementedError("the memory-centric core rounds half up only, so far")
        if any(ln.rule != "hebbian" for ph in schedule.phases for ln in ph.learns):
            raise NotImplementedError("the memory-centric core learns by the Hebbian rule only")
        self.schedule, self.cfg, self.lanes, self.debug = schedule, cfg, lanes, debug
        self.program = compile_program(schedule, lanes)
        self.layout = StateLayout.of(schedule)
        self.state_words = self.layout.n_words
        self.input_groups = list(schedule.inputs)
        self.input_size = sum(schedule.group(n).size for n in self.input_groups)
        readout = schedule.readout
        self.output_size = schedule.group(readout.plus).size if readout else 0
        super().__init__(core_ports(cfg.current_width, self.output_size, self.state_words, debug))

    # -- geometry ------------------------------------------------------------------------------

    def _cblocks(self, matrix: str) -> int:
        """Words per row of a matrix's memory (a copy has its primary's geometry)."""
        mat = self.schedule.matrix(matrix)
        primary = self.schedule.matrix(mat.transpose_of) if mat.transpose_of else mat
        return -(-primary.cols // self.lanes)

    def _weight_words(self, name: str, codes: np.ndarray) -> list[list[int]]:
        """A matrix's memory contents: rows of its primary, words of ``lanes`` columns."""
        mat = self.schedule.matrix(name)
        lanes = self.lanes
        if mat.transpose_of:
            primary = self.schedule.matrix(mat.transpose_of)
            rows, cols = primary.rows, primary.cols
            grid = np.zeros((rows, cols), np.int64)
            grid[:, : mat.rows] = codes.T  # W^T[c, r] beside W[r, c]
        else:
            rows, cols = mat.rows, mat.cols
            grid = codes
        blocks = -(-cols // lanes)
        padded = np.zeros((rows, blocks * lanes), np.int64)
        padded[:, :cols] = grid
        return [[int(v) for v in padded[r, b * lanes : (b + 1) * lanes]] for r in range(rows)
                for b in range(blocks)]  # fmt: skip

    def _debug_rom(self, state, mask_bases) -> list[int]:
        """The debug port's map: every state word in trace order -> (kind, unit, address,
        lane), packed into one integer."""
        lanes = self.lanes
        entries = []
        for g in self.schedule.groups:
            for j in range(g.size):
                row, bank = state.address(g.name, j)
                entries.append((_CURRENT, 0, debug_address(row, bank, lanes), 0))
        for name, size in self.schedule.masks:
            for j in range(size):
                entries.append((_MASK, 0, mask_bases[name] + j // lanes, j % lanes))
        for unit, mat in enumerate(self.schedule.matrices):
            blocks = self._cblocks(mat.name)
            for r in range(mat.rows):
                for c in range(mat.cols):
                    if mat.transpose_of:  # W^T[r, c] sits in the word of W[c, r]
                        entries.append((_WEIGHT, unit, c * blocks + r // lanes, r % lanes))
                    else:
                        entries.append((_WEIGHT, unit, r * blocks + c // lanes, c % lanes))
        entries += [(_COUNTER, k, 0, 0) for k in range(5)]
        self._debug_fields = (
            2,
            ceil_log2(max(len(self.schedule.matrices), 5, 2)),
            max(ceil_log2(max(e[2] for e in entries) + 1), 1),
            ceil_log2(max(lanes, 2)),
        )
        kb, ub, ab, lb = self._debug_fields
        return [k | u << kb | a << (kb + ub) | ln << (kb + ub + ab) for k, u, a, ln in entries]

    # -- elaboration ---------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        self._m = m
        s, cfg, lanes, program = self.schedule, self.cfg, self.lanes, self.program
        cw, ww = cfg.current_width, cfg.weight_width
        self.map = state_map = program.state
        golden = Circuit(s, cfg, FIXED)
        self.group_index = {g.name: k for k, g in enumerate(s.groups)}

        contents = np.zeros((state_map.rows, lanes), np.int64)
        for name, _ in s.constants:
            for j, v in enumerate(golden.group(name)):
                row, bank = state_map.address(name, j)
                contents[row, bank] = v
        row_groups = [
            self.group_index[g.name] for g in s.groups for _ in range(state_map.blocks(g.name))
        ]
        m.submodules.state = self.st = StateMemory(lanes, cw, row_groups, contents)

        self.mask_bases, rows = {}, 0
        for name, size in s.masks:
            self.mask_bases[name] = rows
            rows += -(-size // lanes)
        mask_mem = memory.Memory(shape=unsigned(lanes), depth=max(rows, 2), init=[])
        m.submodules.masks = mask_mem
        self.mask_read, self.mask_write = mask_mem.read_port(), mask_mem.write_port()

        self.weights = {}
        for mat in s.matrices:
            words = self._weight_words(mat.name, golden.weights[mat.name])
            mem = memory.Memory(
                shape=data.ArrayLayout(signed(ww), lanes), depth=max(len(words), 2), init=words
            )
            m.submodules[f"w_{mat.name}"] = mem
            self.weights[mat.name] = (mem, mem.read_port(), mem.write_port(granularity=1))

        depth = max(
            [self._cblocks(mt.name) for mt in s.matrices]
            + [-(-mt.rows // lanes) for mt in s.matrices]
            + [2]
        )
        self.buffers = {}
        for name in ("src", "post"):
            mem = memory.Memory(shape=data.ArrayLayout(signed(cw), lanes), depth=depth, init=[])
            m.submodules[f"buf_{name}"] = mem
            self.buffers[name] = (mem.read_port(), mem.write_port(granularity=1))

        widest = max([mt.cols for mt in s.matrices] + [mt.rows for mt in s.matrices] + [2])
        acc_width = cw + max(cw, ww) + ceil_log2(widest + 1) + 2
        self.gacc = Signal(data.ArrayLayout(signed(cw + 3), lanes))
        self.acc = Signal(data.ArrayLayout(signed(acc_width), lanes))
        self.zbuf = Signal(data.ArrayLayout(signed(cw), lanes))
        self.curp = Signal(data.ArrayLayout(signed(cw), lanes))
        self.curm = Signal(data.ArrayLayout(signed(cw), lanes))
        self.mbits = Signal(lanes)
        loop = max(widest, state_map.rows, 2) + 1
        self.i, self.j, self.blk = Signal(range(loop)), Signal(range(loop)), Signal(range(loop))
        self.lane = Signal(range(max(lanes, 2)))
        self.held_gain = Signal()
        self.events = {"current": [], "weight": [], "copy": []}

        self.mul_a = Signal(data.ArrayLayout(signed(max(cw, ww)), lanes))
        self.mul_b = Signal(data.ArrayLayout(signed(cw), lanes))
        self.products = [self.mul_a[k] * self.mul_b[k] for k in range(lanes)]

        self.step_plus, self.step_minus = [], []
        for k in range(lanes):
            for half, units, current in (
                ("p", self.step_plus, self.curp),
                ("m", self.step_minus, self.curm),
            ):
                unit = PopulationStep(cfg)
                m.submodules[f"step_{half}{k}"] = unit
                z = self.zbuf[k]
                drive = Mux(z > 0, z, 0) if half == "p" else Mux(z < 0, -z, 0)
                m.d.comb += [
                    unit.current.eq(current[k]),
                    unit.drive.eq(drive),
                    unit.gate.eq(self.mbits[k]),
                    unit.held_gain.eq(self.held_gain),
                ]
                units.append(unit)

        self._control(m)
        self._counters(m)
        if self.debug:
            self._debug_port(m)
        return m

    # -- helpers for the states -----------------------------------------------------------------

    def _valid(self, size: int, block):
        """The lanes of ``block`` that hold an element of a vector of ``size``."""
        # A constant mask for the last block, picked by one comparison, came out larger in
        # Yosys (XOR at 8 lanes on the iCE40: 44 % more LUTs).
        return Cat(*((block * self.lanes + k) < size for k in range(self.lanes)))

    def _count(self, kind: str, flags) -> None:
        """Count saturation events of this state's clock into counter ``kind``."""
        flag_bits = Signal(len(flags), name=f"ev_{kind}_{len(self.events[kind])}")
        self._m.d.comb += flag_bits.eq(Cat(*flags))
        self.events[kind].append(flag_bits)

    def _read(self, group: str, block) -> None:
        self._m.d.comb += self.st.read_row.eq(self.map.bases[group] + block)

    def _write(self, group: str, block, values, enables) -> None:
        m = self._m
        m.d.comb += [
            self.st.write_row.eq(self.map.bases[group] + block),
            self.st.write_lanes.eq(enables),
        ]
        for k in range(self.lanes):
            m.d.comb += self.st.write_data[k].eq(values[k])

    def _flag(self, group: str, action: str) -> None:
        self._m.d.comb += [
            self.st.flag_group.eq(self.group_index[group]),
            getattr(self.st, f"flag_{action}").eq(1),
        ]

    def _combined(self, parts):
        """A gathered block (gacc) as ``sat(sum(sign * part))`` per lane, and the flags."""
        cw = self.cfg.current_width
        if len(parts) == 1 and parts[0][1] == 1:
            return [self.gacc[k][:cw].as_signed() for k in range(self.lanes)], None
        pairs = [saturate(self.gacc[k], cw) for k in range(self.lanes)]
        return [v for v, _ in pairs], [e for _, e in pairs]

    def _next_element(self, row) -> None:
        """Step to the next element of a buffered vector: the next lane of its word, or the
        first lane of the next word (``row``)."""
        m = self._m
        with m.If(self.lane == self.lanes - 1):
            m.d.sync += [self.lane.eq(0), row.eq(row + 1)]
        with m.Else():
            m.d.sync += self.lane.eq(self.lane + 1)

    def _loop(self, counter, last, first_state: str, done_state: str) -> None:
        m = self._m
        with m.If(last):
            m.d.sync += counter.eq(0)
            m.next = done_state
        with m.Else():
            m.d.sync += counter.eq(counter + 1)
            m.next = first_state

    # -- instructions -----------------------------------------------------------------------------

    def _gather(self, tag: str, parts, block, done: str) -> str:
        """States reading ``parts`` of ``block`` into gacc (signed, exact); the last one goes to
        ``done`` (where gacc holds the sum). Returns the first state."""
        m, lanes = self._m, self.lanes
        names = [f"{tag}_{n}" for n in range(len(parts) + 1)]
        for n, name in enumerate(names):
            with m.State(name):
                if n > 0:
                    _, sign = parts[n - 1]
                    for k in range(lanes):
                        value = self.st.read_data[k] if sign > 0 else -self.st.read_data[k]
                        m.d.sync += self.gacc[k].eq(value if n == 1 else self.gacc[k] + value)
                if n < len(parts):
                    self._read(parts[n][0], block)
                    m.next = names[n + 1]
                else:
                    m.next = done
        return names[0]

    def _step_block(self, tag, plus, minus, mask, held, block, size, done: str) -> str:
        """Read the targets' block (and mask), step both halves of zbuf into them."""
        m, lanes = self._m, self.lanes
        enables = self._valid(size, block)
        with m.State(f"{tag}_s0"):
            self._read(plus, block)
            if mask:
                m.d.comb += self.mask_read.addr.eq(self.mask_bases[mask] + block)
            m.next = f"{tag}_s1"
        with m.State(f"{tag}_s1"):
            for k in range(lanes):
                m.d.sync += self.curp[k].eq(self.st.read_data[k])
            m.d.sync += self.mbits.eq(self.mask_read.data if mask else (1 << lanes) - 1)
            if minus:
                self._read(minus, block)
            m.next = f"{tag}_s2"
        with m.State(f"{tag}_s2"):
            for k in range(lanes):
                m.d.sync += self.curm[k].eq(self.st.read_data[k])
            m.next = f"{tag}_s3"
        with m.State(f"{tag}_s3"):
            m.d.comb += self.held_gain.eq(held)
            self._write(plus, block, [u.next for u in self.step_plus], enables)
            self._count("current", [u.saturated & enables[k] for k, u in enumerate(self.step_plus)])
            m.next = f"{tag}_s4" if minus else done
        if minus:
            with m.State(f"{tag}_s4"):
                m.d.comb += self.held_gain.eq(held)
                self._write(minus, block, [u.next for u in self.step_minus], enables)
                self._count(
                    "current", [u.saturated & enables[k] for k, u in enumerate(self.step_minus)]
                )
                m.next = done
        return f"{tag}_s0"

    def _emit_relay(self, tag: str, op: Relay, nxt: str) -> str:
        m, i = self._m, self.i
        size = self.map.sizes[op.plus]
        blocks = self.map.blocks(op.plus)
        first = self._gather(f"{tag}_g", op.parts, i, f"{tag}_z")
        with m.State(f"{tag}_z"):
            values, flags = self._combined(op.parts)
            for k in range(self.lanes):
                m.d.sync += self.zbuf[k].eq(values[k])
            if flags:
                valid = self._valid(size, i)
                self._count("current", [f & valid[k] for k, f in enumerate(flags)])
            m.next = f"{tag}_s0"
        self._step_block(tag, op.plus, op.minus, op.mask, op.held, i, size, f"{tag}_n")
        with m.State(f"{tag}_n"):
            self._loop(i, i == blocks - 1, first, f"{tag}_f0")
        self._clear_flags(tag, [op.plus] + ([op.minus] if op.minus else []), nxt)
        return first

    def _clear_flags(self, tag: str, groups, nxt: str) -> None:
        m = self._m
        for n, group in enumerate(groups):
            with m.State(f"{tag}_f{n}"):
                self._flag(group, "clear")
                m.next = f"{tag}_f{n + 1}" if n + 1 < len(groups) else nxt

    def _emit_gather_buffer(self, tag: str, sources, buffer: str, nxt: str) -> str:
        """Each signed source vector into ``buffer`` at its columns, block by block."""
        m, i, lanes = self._m, self.i, self.lanes
        _, write = self.buffers[buffer]
        firsts = []
        for n, (col0, parts) in enumerate(sources):
            size = self.map.sizes[parts[0][0]]
            blocks = self.map.blocks(parts[0][0])
            if col0 % lanes and size != 1:
                raise NotImplementedError("a source vector that starts inside a word")
            t = f"{tag}{n}"
            after = f"{tag}{n + 1}_0" if n + 1 < len(sources) else nxt
            firsts.append(self._gather(f"{t}", parts, i, f"{t}_w"))
            with m.State(f"{t}_w"):
                values, flags = self._combined(parts)
                valid = self._valid(size, i)
                if flags:
                    self._count("current", [f & valid[k] for k, f in enumerate(flags)])
                if col0 % lanes:  # one element, into its lane of a word
                    m.d.comb += [write.addr.eq(col0 // lanes), write.en.eq(1 << (col0 % lanes))]
                    for k in range(lanes):
                        m.d.comb += write.data[k].eq(values[0])
                else:
                    m.d.comb += [write.addr.eq(col0 // lanes + i), write.en.eq(valid)]
                    for k in range(lanes):
                        m.d.comb += write.data[k].eq(values[k])
                self._loop(i, i == blocks - 1, firsts[-1], after)
        return firsts[0]

    def _round(self, value):
        cfg = self.cfg
        return saturate(shift_round_nearest(value, cfg.weight_frac), cfg.current_width)

    def _emit_sweep_rows(self, tag: str, op: Sweep, nxt: str) -> str:
        """``W`` by rows: a target row per pass over its words; a block of rows stepped."""
        m, lanes = self._m, self.lanes
        i, j, lane, blk = self.i, self.j, self.lane, self.blk
        mat = self.schedule.matrix(op.matrix)
        blocks = self._cblocks(op.matrix)
        _, w_read, _ = self.weights[op.matrix]
        src_read, _ = self.buffers["src"]
        first = self._emit_gather_buffer(f"{tag}_g", op.sources, "src", f"{tag}_r0")
        with m.State(f"{tag}_r0"):  # issue word j of row i
            m.d.comb += [w_read.addr.eq(i * blocks + j), src_read.addr.eq(j)]
            m.next = f"{tag}_r1"
        with m.State(f"{tag}_r1"):  # accumulate it
            for k in range(lanes):
                m.d.comb += [self.mul_a[k].eq(w_read.data[k]), self.mul_b[k].eq(src_read.data[k])]
            total = balanced_sum(self.products)
            m.d.sync += self.acc[0].eq(Mux(j == 0, 0, self.acc[0]) + total)
            self._loop(j, j == blocks - 1, f"{tag}_r0", f"{tag}_r2")
        with m.State(f"{tag}_r2"):  # the row's z into its lane
            z, event = self._round(self.acc[0])
            m.d.sync += Array(self.zbuf[k] for k in range(lanes))[lane].eq(z)
            self._count("current", [event])
            last_row = i == mat.rows - 1
            with m.If((lane == lanes - 1) | last_row):
                m.next = f"{tag}_s0"
            with m.Else():
                m.d.sync += [i.eq(i + 1), lane.eq(lane + 1)]
                m.next = f"{tag}_r0"
        self._step_block(tag, op.plus, op.minus, op.mask, op.held, blk, mat.rows, f"{tag}_n")
        with m.State(f"{tag}_n"):
            with m.If(i == mat.rows - 1):
                m.d.sync += [i.eq(0), lane.eq(0), blk.eq(0)]
                m.next = f"{tag}_f0"
            with m.Else():
                m.d.sync += [i.eq(i + 1), lane.eq(0), blk.eq(blk + 1)]
                m.next = f"{tag}_r0"
        self._clear_flags(tag, [op.plus] + ([op.minus] if op.minus else []), nxt)
        return first

    def _emit_sweep_columns(self, tag: str, op: Sweep, nxt: str) -> str:
        """``W^T`` by columns: a block of targets per pass over every source element."""
        m, lanes = self._m, self.lanes
        j, lane, blk = self.j, self.lane, self.blk
        mat = self.schedule.matrix(op.matrix)  # rows: targets, cols: sources
        blocks = self._cblocks(op.matrix)
        target_blocks = -(-mat.rows // lanes)
        _, w_read, _ = self.weights[op.matrix]
        src_read, _ = self.buffers["src"]
        src_row = Signal.like(self.i, name=f"{tag}_srow")
        first = self._emit_gather_buffer(f"{tag}_g", op.sources, "src", f"{tag}_c0")
        with m.State(f"{tag}_c0"):  # issue source element j's word, its column's weights
            m.d.comb += [w_read.addr.eq(j * blocks + blk), src_read.addr.eq(src_row)]
            m.next = f"{tag}_c1"
        with m.State(f"{tag}_c1"):
            element = Array(src_read.data[k] for k in range(lanes))[lane]
            for k in range(lanes):
                m.d.comb += [self.mul_a[k].eq(w_read.data[k]), self.mul_b[k].eq(element)]
                m.d.sync += self.acc[k].eq(Mux(j == 0, 0, self.acc[k]) + self.products[k])
            with m.If(j == mat.cols - 1):
                m.d.sync += [j.eq(0), lane.eq(0), src_row.eq(0)]
                m.next = f"{tag}_c2"
            with m.Else():
                m.d.sync += j.eq(j + 1)
                self._next_element(src_row)
                m.next = f"{tag}_c0"
        with m.State(f"{tag}_c2"):
            valid = self._valid(mat.rows, blk)
            flags = []
            for k in range(lanes):
                z, event = self._round(self.acc[k])
                m.d.sync += self.zbuf[k].eq(z)
                flags.append(event & valid[k])
            self._count("current", flags)
            m.next = f"{tag}_s0"
        self._step_block(tag, op.plus, op.minus, op.mask, op.held, blk, mat.rows, f"{tag}_n")
        with m.State(f"{tag}_n"):
            self._loop(blk, blk == target_blocks - 1, f"{tag}_c0", f"{tag}_f0")
        self._clear_flags(tag, [op.plus] + ([op.minus] if op.minus else []), nxt)
        return first

    def _emit_learn(self, tag: str, op: Learn, nxt: str) -> str:
        """The Hebbian rule row by row, ``W`` and its copy from the same changes."""
        m, lanes, cfg = self._m, self.lanes, self.cfg
        i, j, lane = self.i, self.j, self.lane
        mat = self.schedule.matrix(op.matrix)
        blocks = self._cblocks(op.matrix)
        _, w_read, w_write = self.weights[op.matrix]
        src_read, _ = self.buffers["src"]
        post_read, _ = self.buffers["post"]
        post_row = Signal.like(self.i, name=f"{tag}_prow")
        after_post = f"{tag}_pre0_0"
        first = self._emit_gather_buffer(f"{tag}_post", [(0, op.post)], "post", after_post)
        self._emit_gather_buffer(f"{tag}_pre", op.pre, "src", f"{tag}_l0")
        copy = self.weights[op.copy] if op.copy else None
        copy_rows = self.schedule.matrix(op.copy).rows if op.copy else 0
        with m.State(f"{tag}_l0"):
            m.d.comb += [
                w_read.addr.eq(i * blocks + j),
                src_read.addr.eq(j),
                post_read.addr.eq(post_row),
            ]
            if copy:
                m.d.comb += copy[1].addr.eq(i * blocks + j)
            m.next = f"{tag}_l1"
        with m.State(f"{tag}_l1"):
            post = Array(post_read.data[k] for k in range(lanes))[lane]
            valid = self._valid(mat.cols, j)
            # W^T has one row fewer than W has columns (no bias row): past its last block,
            # nothing of the copy is written or counted.
            copy_blocks = -(-copy_rows // lanes) if copy else 0
            valid_copy = Mux(j < copy_blocks, self._valid(max(copy_rows, 1), j), 0)
            flags_w, flags_c = [], []
            m.d.comb += [w_write.addr.eq(i * blocks + j), w_write.en.eq(valid)]
            if copy:
                m.d.comb += [copy[2].addr.eq(i * blocks + j), copy[2].en.eq(valid_copy)]
            for k in range(lanes):
                m.d.comb += [self.mul_a[k].eq(post), self.mul_b[k].eq(src_read.data[k])]
                change = shift_round_nearest(self.products[k], cfg.update_shift)
                new, event = saturate(w_read.data[k] - change, cfg.weight_width)
                m.d.comb += w_write.data[k].eq(new)
                flags_w.append(event & valid[k])
                if copy:
                    new_c, event_c = saturate(copy[1].data[k] - change, cfg.weight_width)
                    m.d.comb += copy[2].data[k].eq(new_c)
                    flags_c.append(event_c & valid_copy[k])
            self._count("weight", flags_w)
            if copy:
                self._count("copy", flags_c)
            with m.If(j == blocks - 1):
                m.d.sync += j.eq(0)
                with m.If(i == mat.rows - 1):
                    m.d.sync += [i.eq(0), lane.eq(0), post_row.eq(0)]
                    m.next = nxt
                with m.Else():
                    m.d.sync += i.eq(i + 1)
                    self._next_element(post_row)
                    m.next = f"{tag}_l0"
            with m.Else():
                m.d.sync += j.eq(j + 1)
                m.next = f"{tag}_l0"
        return first

    def _emit_capture(self, tag: str, op: Capture, nxt: str) -> str:
        m, i, lanes = self._m, self.i, self.lanes
        size, blocks = self.map.sizes[op.plus], self.map.blocks(op.plus)
        with m.State(f"{tag}_0"):
            self._read(op.plus, i)
            m.next = f"{tag}_1"
        with m.State(f"{tag}_1"):
            for k in range(lanes):
                m.d.sync += self.curp[k].eq(self.st.read_data[k])
            self._read(op.minus, i)
            m.next = f"{tag}_2"
        with m.State(f"{tag}_2"):
            bits = Cat(*(self.curp[k] > self.st.read_data[k] for k in range(lanes)))
            m.d.comb += [
                self.mask_write.addr.eq(self.mask_bases[op.mask] + i),
                self.mask_write.data.eq(bits & self._valid(size, i)),
                self.mask_write.en.eq(1),
            ]
            self._loop(i, i == blocks - 1, f"{tag}_0", nxt)
        return f"{tag}_0"

    def _emit_copy(self, tag: str, op: Copy, nxt: str) -> str:
        m, i = self._m, self.i
        size, blocks = self.map.sizes[op.target], self.map.blocks(op.target)
        with m.State(f"{tag}_0"):
            self._read(op.source, i)
            m.next = f"{tag}_1"
        with m.State(f"{tag}_1"):
            values = [self.st.read_data[k] for k in range(self.lanes)]
            self._write(op.target, i, values, self._valid(size, i))
            self._loop(i, i == blocks - 1, f"{tag}_0", f"{tag}_f0")
        self._clear_flags(tag, [op.target], nxt)
        return f"{tag}_0"

    def _emit_flag(self, tag: str, group: str, nxt: str) -> str:
        with self._m.State(tag):
            self._flag(group, "set")
            self._m.next = nxt
        return tag

    def _emit_leak(self, tag: str, op: Leak, nxt: str) -> str:
        m, i = self._m, self.i
        shift = self.cfg.leak_shift
        if shift == 0:
            return self._emit_flag(tag, op.group, nxt)
        size, blocks = self.map.sizes[op.group], self.map.blocks(op.group)
        with m.State(f"{tag}_0"):
            self._read(op.group, i)
            m.next = f"{tag}_1"
        with m.State(f"{tag}_1"):
            values = [
                self.st.read_data[k] - shift_round_nearest(self.st.read_data[k], shift)
                for k in range(self.lanes)
            ]
            self._write(op.group, i, values, self._valid(size, i))
            self._loop(i, i == blocks - 1, f"{tag}_0", nxt)
        return f"{tag}_0"

    def _emit(self, tag: str, op, nxt: str) -> str:
        if isinstance(op, Relay):
            return self._emit_relay(tag, op, nxt)
        if isinstance(op, Sweep):
            emit = self._emit_sweep_rows if op.by_rows else self._emit_sweep_columns
            return emit(tag, op, nxt)
        if isinstance(op, Learn):
            return self._emit_learn(tag, op, nxt)
        if isinstance(op, Capture):
            return self._emit_capture(tag, op, nxt)
        if isinstance(op, Copy):
            return self._emit_copy(tag, op, nxt)
        if isinstance(op, Clear):
            return self._emit_flag(tag, op.group, nxt)
        if isinstance(op, Leak):
            return self._emit_leak(tag, op, nxt)
        raise NotImplementedError(type(op).__name__)

    def _emit_chain(self, tag: str, ops, nxt: str) -> str:
        """States running ``ops`` in order, then ``nxt``; returns the first state."""
        entry = nxt
        for n in reversed(range(len(ops))):
            entry = self._emit(f"{tag}i{n}", ops[n], entry)
        return entry

    def _emit_readout(self, tag: str, nxt: str) -> str:
        m, i, lanes = self._m, self.i, self.lanes
        readout = self.schedule.readout
        blocks = self.map.blocks(readout.plus)
        with m.State(f"{tag}_0"):
            self._read(readout.plus, i)
            m.next = f"{tag}_1"
        with m.State(f"{tag}_1"):
            for k in range(lanes):
                m.d.sync += self.curp[k].eq(self.st.read_data[k])
            if readout.minus:
                self._read(readout.minus, i)
            m.next = f"{tag}_2"
        with m.State(f"{tag}_2"):
            for b in range(blocks):
                with m.If(i == b):
                    for k in range(lanes):
                        j = b * lanes + k
                        if j < self.output_size:
                            minus = self.st.read_data[k] if readout.minus else 0
                            m.d.sync += self.output[j].eq(self.curp[k] - minus)
            self._loop(i, i == blocks - 1, f"{tag}_0", nxt)
        return f"{tag}_0"

    # -- the sample ---------------------------------------------------------------------------

    def _control(self, m: Module) -> None:
        s, program = self.schedule, self.program
        n_phases = len(s.phases)
        last_tick = s.ticks_per_window - 1
        tick_n = Signal(range(max(s.ticks_per_window, 2)))
        self._load(m)
        readout_at = s.readout.phase if s.readout else None
        with m.FSM(name="core"):
            with m.State("idle"):
                with m.If(self.start):
                    m.d.sync += [tick_n.eq(0), self.running.eq(1)]
                    m.next = "p0_enter"
            for p in range(n_phases):
                last_phase = p == n_phases - 1
                after = f"p{p + 1}_enter" if not last_phase else "idle"
                end = f"p{p}_end"
                if last_phase and readout_at == n_phases:  # the output: the last tick's state
                    end = self._emit_readout("out", f"p{p}_end")
                body = self._emit_chain(f"p{p}b", program.every_tick[p], f"p{p}_body_end")
                start = self._emit_chain(f"p{p}s", program.phase_start[p], body)
                if readout_at == p:
                    start = self._emit_readout(f"p{p}o", start)
                with m.State(f"p{p}_enter"):
                    with m.If(tick_n == 0):
                        m.next = start
                    with m.Else():
                        m.next = body
                with m.State(f"p{p}_body_end"):
                    if last_phase:
                        with m.If(tick_n == last_tick):  # the sample's last tick counts it
                            m.d.sync += self.samples.eq(self.samples + 1)
                            m.next = end
                        with m.Else():
                            m.next = f"p{p}_end"
                    else:
                        m.next = f"p{p}_end"
                with m.State(f"p{p}_end"):
                    m.d.comb += self.state_valid.eq(1)
                    with m.If(~self.hold):
                        with m.If(tick_n == last_tick):
                            m.d.sync += tick_n.eq(0)
                            if last_phase:  # the sample is done: the next one may load
                                m.d.comb += self.sample_done.eq(1)
                                m.d.sync += self.running.eq(0)
                            m.next = after
                        with m.Else():
                            m.d.sync += tick_n.eq(tick_n + 1)
                            m.next = f"p{p}_enter"

    def _load(self, m: Module) -> None:
        """Input words into the input groups, one element a clock while idle."""
        s, lanes = self.schedule, self.lanes
        groups = self.input_groups
        group = Signal(range(max(len(groups), 2)))
        element = Signal(range(max(max(s.group(g).size for g in groups), 2)))
        m.d.comb += self.load.ready.eq(~self.running)
        sizes = Array(Const(s.group(g).size) for g in groups)
        bases = Array(Const(self.map.bases[g]) for g in groups)
        with m.If(self.load.valid & self.load.ready):
            row = bases[group] + element // lanes if lanes & (lanes - 1) == 0 else None
            if row is None:  # a lane count that is not a power of two: count rows and banks
                raise NotImplementedError("load for lane counts that are not powers of two")
            m.d.comb += [
                self.st.write_row.eq(row),
                self.st.write_lanes.eq(1 << (element % lanes)),
            ]
            for k in range(lanes):
                m.d.comb += self.st.write_data[k].eq(self.load.payload)
            with m.If(element == sizes[group] - 1):
                m.d.sync += [element.eq(0), group.eq(Mux(group == len(groups) - 1, 0, group + 1))]
            with m.Else():
                m.d.sync += element.eq(element + 1)

    def _counters(self, m: Module) -> None:
        for kind, counter in (
            ("current", self.sat_current),
            ("weight", self.sat_weight),
            ("copy", self.sat_copy),
        ):
            flags = [bit for bits in self.events[kind] for bit in bits]
            if flags:
                total = balanced_sum(flags)
                m.d.sync += counter.eq(
                    clamp_unsigned(counter[:COUNTER_WIDTH] + total, COUNTER_WIDTH)
                )

    def _debug_port(self, m: Module) -> None:
        rom_words = self._debug_rom(self.map, self.mask_bases)
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
        mask_debug = m.submodules.masks.read_port()
        m.d.comb += mask_debug.addr.eq(address)
        weight_words = []
        for mat in self.schedule.matrices:
            mem = self.weights[mat.name][0]
            port = mem.read_port()
            m.d.comb += port.addr.eq(address)
            weight_words.append(Array(port.data[k] for k in range(self.lanes))[lane_r])
        counters = Array(
            [
                self.sat_current,
                self.sat_weight,
                self.sat_copy,
                self.samples,
                Const(self.cfg.lfsr_seed, 32),
            ]
        )
        with m.Switch(kind_r):
            with m.Case(_CURRENT):
                m.d.comb += self.debug_data.eq(self.st.debug_data)
            with m.Case(_MASK):
                m.d.comb += self.debug_data.eq((mask_debug.data >> lane_r)[0])
            with m.Case(_WEIGHT):
                m.d.comb += self.debug_data.eq(Array(weight_words)[unit_r])
            with m.Case(_COUNTER):
                m.d.comb += self.debug_data.eq(counters[unit_r])
