"""The memory-centric network core: a micro-coded sequencer over memories and a pipeline of lanes.

Every group's currents live in a :class:`~hw.state_memory.StateMemory` of ``lanes`` banks,
masks in a memory of ``lanes``-bit words, every matrix in one weight memory of words of
``simd`` weights (``lanes`` unless folded wider; a transposed copy is its primary read the
other way: by columns, one broadcast source element a clock into ``lanes`` accumulators),
gathered source vectors in two buffers (the source buffer's rows ``simd`` elements).
:class:`~hw.microsequencer.MicroSequencer` steps through the instruction ROM
(:mod:`hw.microcode`) and issues one slot a clock into :class:`~hw.lanes.LanePipeline` (its
stages are listed there); this module holds the memories and joins them to both, with the
rounding LFSR, the saturation counters, the load stream, the host port and the debug port.

The logic depends on the lane count and on the widths of the ROM's fields, not on the sizes
of the layers: those set memory depths and loop counts in the ROM.

Every configuration the golden model runs: half-up or stochastic rounding, the Hebbian and the
covariance rule, the host port; one lane count for every matrix.
"""

from __future__ import annotations

import itertools

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In
from amaranth.utils import ceil_log2

from golden_model.circuit import FIXED, Circuit
from golden_model.config import Config
from golden_model.schedule import Schedule
from golden_model.trace import StateLayout

from .arithmetic import Arithmetic
from .cores import core_ports
from .host_port import HostPort, word_lane_spots
from .lanes import LanePipeline
from .lfsr import MultiStepLfsr
from .mcore_parts import (
    COUNTER,
    CURRENT,
    MASK,
    WEIGHT,
    DebugEntry,
    EventCounter,
    MemoryDebugPort,
    WeightHostAccess,
)
from .microcode import (
    OPERAND_LANES,
    TREE_GROUP,
    Dest,
    Kind,
    encode,
    reads_flagged,
    sample_clocks,
)
from .microprogram import compile_program
from .microsequencer import MicroSequencer
from .population import COUNTER_WIDTH
from .state_memory import StateMemory, debug_address
from .weight_memory import WeightMemory

__all__ = ["MemoryCore", "DISTRIBUTED_ROWS"]

#: Rows a bank above which the state memory stays in block RAM whatever ``ram_style`` asks.
DISTRIBUTED_ROWS = 128


class MemoryCore(wiring.Component):
    """The circuit of a compiled schedule over memories, one training sample at a time.

    The ports are :class:`hw.network.NetworkCore`'s (without the host port): stream a
    sample's input words into ``load``, pulse ``start``; ``state_valid`` is high for a clock
    after every tick (``observe_ticks``; else after the sample's last tick only), longer while
    ``hold``, when the debug port reads any state word in the golden trace's order, a clock
    after its address.

    Parameters
    ----------
    schedule : Schedule
    cfg : Config
        Widths, shifts, rounding (half up, or stochastic from the seeded LFSR in the golden
        model's row-major order) and learning rules (Hebbian, covariance).
    lanes : int
        Element lanes (FINN's PE): the banks of the state memory, the elements a gather, a
        step or a sweep by columns moves a clock.
    simd : int, optional
        Multipliers (FINN's SIMD; a multiple of ``lanes``, ``lanes`` unless given): the
        weights of a word, the multiply-accumulates a clock of a sweep by rows and of a
        learning rule (:func:`hw.microprogram.compile_program`).
    debug : bool
        The debug read port (simulation and bring-up).
    host_port : bool
        Add the ``host`` port (:func:`hw.host_port.HostPort`): a weight read or written
        between samples, by its trace index; the rounding LFSR's state (reseeded by the host,
        stepping only under stochastic rounding).
    ram_style : str, optional
        Yosys's ``ram_style`` for the buffers, the input banks and a state memory of at most
        :data:`DISTRIBUTED_ROWS` rows: ``"distributed"`` puts them in ECP5 LUT RAM, so that
        a wide plan leaves the block RAM to its weights (400-400-10 at 64 lanes: 192 of 208
        DP16KD instead of 256). A deeper state memory stays in block RAM, a block a lane:
        400-400-10's (301 rows at 17 x 136) in LUT RAM packed its system to 93 % of the
        ECP5-85F's logic cells.
    observe_ticks : bool, optional
        Drain the pipeline at every tick and hold its state for the debug port (the per-tick
        comparisons); without, only the sample's last tick drains, which saves 4 to 16 % of
        the clocks (:func:`hw.microcode.encode`). Defaults to ``debug``.
    rom_style : str, optional
        Yosys's ``ram_style`` for the instruction ROM (:class:`MicroSequencer`): ``"logic"``
        keeps it out of ECP5 block RAM, whose slow output would sit in the sequencer's loop.
    input_banks : {2, 1}
        Two: the input groups' rows twice, so ``load`` takes the next sample while one runs
        (:attr:`loads_while_running`); one: loads only while idle, for about 60 fewer iCE40
        logic cells (the load's register and the bank's choice).

    Attributes
    ----------
    load : In(stream.Signature(signed(current_width)))
    start, hold : In(1)
        ``start`` runs the sample whose words ``load`` took last: each start follows a
        whole sample's words (with two input banks the last may come in the start's clock).
    running, sample_done, state_valid : Out(1)
    sat_current, sat_weight, sat_copy : Out(64)
    samples : Out(32)
    output : Out(ArrayLayout(signed(current_width + 1), readout size))
    debug_addr : In(range(state words)), debug_data : Out(signed(64))
    host : In(HostPort)
        (``host_port=True``) A weight by trace index, and the LFSR, while idle.

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
        ram_style: str | None = None,
        observe_ticks: bool | None = None,
        input_banks: int = 2,
        rom_style: str | None = None,
        simd: int | None = None,
        weight_bank_rows: int | None = None,
    ):
        if 1 << cfg.weight_frac > (1 << (max(cfg.current_width, cfg.weight_width) - 1)) - 1:
            raise NotImplementedError("the memory-centric core needs 1.0 in a weight's width")
        self.schedule, self.cfg, self.lanes, self.debug = schedule, cfg, lanes, debug
        self.host_port, self.ram_style, self.rom_style = host_port, ram_style, rom_style
        self.program = compile_program(schedule, lanes, simd)
        self.simd = self.program.simd
        self.observe_ticks = debug if observe_ticks is None else observe_ticks
        self.input_groups = list(schedule.inputs)
        if input_banks not in (1, 2):
            raise ValueError(f"input_banks must be 1 or 2, got {input_banks}")
        #: ``load`` takes the next sample's inputs while a sample runs (the other input bank).
        self.loads_while_running = input_banks == 2
        state = self.program.state
        self.input_rows = sum(state.blocks(g) for g in self.input_groups)
        first_rows = itertools.accumulate((state.blocks(g) for g in self.input_groups), initial=0)
        if [state.bases[g] for g in self.input_groups] != list(first_rows)[:-1]:
            raise NotImplementedError("the input groups must be the state memory's first rows")
        self.input_bits = ceil_log2(max(self.input_rows, 1))  # a bank's rows: 2**input_bits
        # Two banks: the input groups live in an input memory of their own (the program
        # never writes them nor flags them), so the state memory keeps only the other rows
        # (from its row 0). The inputs sit above them at the bank bit (a power of two above
        # every state row): bank A there, bank B 2**input_bits further, so that the input
        # memory's row is wires of the row (its low bits, with the bank's bit) and a read's
        # choice of memory is one bit: no adder, no comparison, no write port shared with
        # the lanes. The program reading bank B is a second program in the ROM (the same
        # delays).
        self.bank_bit = 0
        bases_a: dict[str, int] = {}
        self.second_bank: dict[str, int] = {}
        self.state_rows = state.rows  # rows the program addresses
        self.memory_rows = state.rows  # rows of the state memory
        if self.loads_while_running:
            self.memory_rows = state.rows - self.input_rows
            self.bank_bit = max(ceil_log2(max(self.memory_rows, 1)), self.input_bits + 1)
            top = 1 << self.bank_bit
            for g in schedule.groups:
                base = state.bases[g.name]
                inside = g.name in self.input_groups
                bases_a[g.name] = top + base if inside else base - self.input_rows
            self.second_bank = {g: bases_a[g] + (1 << self.input_bits) for g in self.input_groups}
            self.state_rows = top + (2 << self.input_bits)
        self.words, self.where = encode(
            self.program,
            cfg,
            observe_ticks=self.observe_ticks,
            state_bases=bases_a,
            bank_rows=weight_bank_rows,
        )
        self.banked = self.where.banked
        #: Whether a read of the state memory can meet a set zero flag (else the lanes'
        #: reads skip the flags: :func:`hw.microcode.reads_flagged`).
        self.reads_flags = reads_flagged(
            self.words, self._row_groups(), lanes, self.simd, self.banked,
            leaks=cfg.leak_shift > 0,
        )  # fmt: skip
        self.clocks_per_sample = sample_clocks(self.words, lanes, self.simd, self.banked)
        self.layout = StateLayout.of(schedule)
        self.state_words = self.layout.n_words
        self.words_b = []
        if self.loads_while_running:
            inputs = sum(1 << self.where.group_index[g] for g in self.input_groups)
            if any((w.flags | w.preset) & inputs for w in self.words):
                raise NotImplementedError("two input banks need inputs the program never clears")
            self.words_b, _ = encode(
                self.program,
                cfg,
                observe_ticks=self.observe_ticks,
                state_bases={**bases_a, **self.second_bank},
                bank_rows=weight_bank_rows,
            )
            assert [w.delay for w in self.words_b] == [w.delay for w in self.words]
        self.input_size = sum(schedule.group(n).size for n in self.input_groups)
        readout = schedule.readout
        self.output_size = schedule.group(readout.plus).size if readout else 0
        ports = core_ports(cfg.current_width, self.output_size, self.state_words, debug)
        if host_port:
            ports["host"] = In(HostPort(self.layout.n_weights, cfg.weight_width))
        super().__init__(ports)

    # -- memory contents -----------------------------------------------------------------------

    def _row_groups(self) -> list[int]:
        """The group (its zero flag) of every row of the state memory (with two input banks
        the input groups have none: they are the input memory's)."""
        state, index = self.program.state, self.where.group_index
        return [
            index[g.name]
            for g in self.schedule.groups
            if g.name not in self.second_bank
            for _ in range(state.blocks(g.name))
        ]

    def _element(self, group: str, index: int) -> tuple[int, int, int]:
        """``(memory, row, bank)`` of element ``index`` of ``group``: memory 0 the state
        memory, 1 the input memory (its bank A's row)."""
        row, bank = self.program.state.address(group, index)
        if group in self.second_bank:
            return 1, row, bank
        return 0, row - (self.input_rows if self.second_bank else 0), bank

    def _weight_words(self, golden: Circuit) -> list[list[int]]:
        """The weight memory (:class:`hw.microcode.MemoryMap`): each primary as its stored
        rows, words of ``simd`` elements."""
        lanes, where = self.simd, self.where
        words: list[list[int]] = []
        for name in where.primaries:
            blocks = where.words[name]
            codes = golden.weights[name]
            if name in where.transposed:  # a stored row is a column
                codes = codes.T
            grid = np.zeros((codes.shape[0], blocks * lanes), np.int64)
            grid[:, : codes.shape[1]] = codes
            words += [[int(v) for v in grid[r, b * lanes : (b + 1) * lanes]]
                      for r in range(grid.shape[0]) for b in range(blocks)]  # fmt: skip
        return words

    def debug_entries(self) -> list[DebugEntry]:
        """The debug port's map: every state word in trace order as ``(kind, unit, address,
        lane)`` (:class:`hw.mcore_parts.MemoryDebugPort`; a current's unit 1: the input
        memory; a counter's unit: its index)."""
        lanes, where = self.lanes, self.where
        entries = []
        for g in self.schedule.groups:
            for j in range(g.size):
                unit, row, bank = self._element(g.name, j)
                entries.append((CURRENT, unit, debug_address(row, bank, lanes), 0))
        for name, size in self.schedule.masks:
            for j in range(size):
                entries.append((MASK, 0, where.masks[name] + j // lanes, j % lanes))
        spots = word_lane_spots(
            self.schedule.matrices, where.weights, where.words, where.transposed, self.simd
        )
        entries += [(WEIGHT, 0, address, lane) for address, lane in spots]
        entries += [(COUNTER, k, 0, 0) for k in range(5)]
        return entries

    # -- elaboration ---------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        s, cfg, lanes, where, simd = self.schedule, self.cfg, self.lanes, self.where, self.simd
        fold = simd // lanes
        cw, ww = cfg.current_width, cfg.weight_width
        golden = Circuit(s, cfg, FIXED)

        # -- the memories (addressed by the slots' row fields, ``row_bits`` wide)
        gathers = [w for w in self.words if w.kind == Kind.GATHER]
        buffer_rows = max([w.drow + (w.dpart + w.count - 1) // fold + 1 for w in gathers
                           if w.dest == Dest.SRC]
                          + [w.drow + w.count for w in gathers if w.dest == Dest.POST]
                          + [w.inner for w in self.words if w.kind in (Kind.ROWS, Kind.LEARN)]
                          + [-(-w.inner // lanes) for w in self.words if w.kind == Kind.COLS]
                          + [-(-w.count // lanes) for w in self.words if w.kind == Kind.LEARN]
                          + [2])  # fmt: skip
        mask_rows = sum(-(-size // lanes) for _, size in s.masks)
        row_bits = max(
            ceil_log2(max(self.state_rows, buffer_rows, mask_rows, where.depth, 2) + 1), 1
        )
        contents = np.zeros((self.memory_rows, lanes), np.int64)
        for name, _ in s.constants:
            for j, v in enumerate(golden.group(name)):
                _, row, bank = self._element(name, j)
                contents[row, bank] = v
        row_groups = self._row_groups()
        # a deep state memory stays in block RAM even so: a DP16KD a lane, where LUT RAM
        # costs a slice a 16 rows of 4 bits and a read multiplexer as deep
        deep = self.memory_rows > DISTRIBUTED_ROWS
        m.submodules.state = self.st = StateMemory(
            lanes,
            cw,
            row_groups,
            contents,
            ram_style=None if deep else self.ram_style,
            read_flags=self.reads_flags,
            late_zero=self.banked,  # the lanes wait a clock for banked weights anyway
            row_bits=row_bits,
        )
        if self.loads_while_running:  # two banks of the input groups' rows, no flags
            self.inputs = StateMemory(
                lanes, cw, [0] * (2 << self.input_bits), ram_style=self.ram_style
            )
            m.submodules.inputs = self.inputs
        m.submodules.masks = self.mask_mem = memory.Memory(
            shape=unsigned(lanes), depth=max(mask_rows, 2), init=[]
        )
        # A wide word has one write enable: a rule writes its padding lanes back unchanged
        # and the host a word it has read. Per-weight enables cost the ECP5 a DP16KD for
        # every two weights (its byte enables are 9 bits); one enable lets Yosys pack a word's
        # 16-bit weights into 36-bit blocks. A narrow word keeps them: the iCE40's blocks
        # mask by the bit, and the host's read-modify-write would cost LUTs.
        self.whole_words = simd > OPERAND_LANES
        m.submodules.weights = self.w_mem = WeightMemory(
            simd,
            ww,
            self._weight_words(golden),
            bank_rows=self.where.bank_rows,
            granularity=None if self.whole_words else 1,
            debug=self.debug,
            addr_bits=row_bits,
        )
        self.buffers = {}
        for name, width in (("src", simd), ("post", lanes)):  # a row: a word's sources
            mem = memory.Memory(
                shape=data.ArrayLayout(signed(cw), width),
                depth=buffer_rows,
                init=[],
                attrs={"ram_style": self.ram_style} if self.ram_style else None,
            )
            m.submodules[f"buf_{name}"] = mem
            self.buffers[name] = mem
        src_read, src_write = (
            self.buffers["src"].read_port(),
            self.buffers["src"].write_port(granularity=1),
        )
        post_read, post_write = (
            self.buffers["post"].read_port(),
            self.buffers["post"].write_port(granularity=1),
        )
        mask_read, mask_write = self.mask_mem.read_port(), self.mask_mem.write_port()
        m.submodules.lfsr = self.lfsr = MultiStepLfsr(cfg.lfsr_seed, simd)

        # -- the sequencer and the lanes
        m.submodules.sequencer = seq = MicroSequencer(
            self.words + self.words_b,
            lanes,
            len(s.groups),
            row_bits,
            state_rows=self.state_rows,
            weight_words=where.depth,
            buffer_rows=buffer_rows,
            entries=(0, len(self.words)) if self.words_b else (0,),
            rom_style=self.rom_style,
            simd=simd,
        )
        widest = max([mt.cols for mt in s.matrices] + [mt.rows for mt in s.matrices] + [2])
        rules = {ln.rule for ph in s.phases for ln in ph.learns}
        m.submodules.lanes = self.pipe = pipe = LanePipeline(
            Arithmetic.of(cfg),
            lanes,
            row_bits,
            output_size=self.output_size,
            widest=widest,
            rules=rules,
            simd=simd,
            whole_words=self.whole_words,
            banked=self.banked,
        )
        self.run_bank_next = Signal()  # the bank a start in this clock runs (set in _load)
        # the writes from the lanes, and the flags from the sequencer (the host's weight
        # writes, between samples, take the weights' port over in _host)
        wiring.connect(m, seq.flags, self.st.flags)
        wiring.connect(m, pipe.state_write, self.st.write)
        wiring.connect(m, pipe.weight_write, self.w_mem.write)
        m.d.comb += [
            pipe.slot.eq(seq.slot),
            seq.start.eq(self.start),
            seq.entry.eq(self.run_bank_next),
            seq.hold.eq(self.hold),
            self.running.eq(seq.running),
            self.state_valid.eq(seq.state_valid),
            self.sample_done.eq(seq.sample_done),
            self.samples.eq(seq.samples),
            pipe.samples.eq(seq.samples),
            self.output.eq(pipe.output),
            # reads: addresses from the sequencer (stage 0), data into the lanes (stage 1)
            self.st.read_row.eq(seq.state_row[: len(self.st.read_row)]),
            src_read.addr.eq(seq.src_addr),
            post_read.addr.eq(seq.post_addr),
            mask_read.addr.eq(pipe.mask_addr),
            pipe.src_data.eq(src_read.data),
            pipe.post_data.eq(post_read.data),
            pipe.weight_data.eq(self.w_mem.read_data),
            pipe.mask_data.eq(mask_read.data),
            pipe.random.eq(self.lfsr.ahead),
            self.lfsr.advance.eq(pipe.random_advance),
            # the mask memory's port is as wide as its depth, the lanes' row fields wider
            mask_write.addr.eq(pipe.mask_write_addr),
            mask_write.data.eq(pipe.mask_write_data),
            mask_write.en.eq(pipe.mask_write),
        ]
        if self.loads_while_running:
            # an input row (at the bank bit: bank A, then bank B at 2**input_bits above) reads
            # the input memory: its row is the row's low bits and the bank's; the choice is
            # registered with the read, so the data mux waits on no comparison
            row = seq.state_row
            m.d.comb += self.inputs.read_row.eq(row[: self.input_bits + 1])
            from_inputs = Signal()
            m.d.sync += from_inputs.eq(row[self.bank_bit])
            zero_from_inputs = from_inputs  # with the state memory's flag (late_zero: later)
            if self.banked:
                zero_from_inputs = Signal()
                m.d.sync += zero_from_inputs.eq(from_inputs)
            m.d.comb += [
                pipe.state_data.eq(Mux(from_inputs, self.inputs.read_data, self.st.read_word)),
                pipe.state_zero.eq(~zero_from_inputs & self.st.read_zero),
            ]
        else:
            m.d.comb += [
                pipe.state_data.eq(self.st.read_word),
                pipe.state_zero.eq(self.st.read_zero),
            ]
        for port, post, width in ((src_write, 0, simd), (post_write, 1, lanes)):
            m.d.comb += [
                port.addr.eq(pipe.buffer_write_addr),
                port.en.eq(Mux(pipe.buffer_post == post, pipe.buffer_write_lanes[:width], 0)),
            ]
            for k in range(width):
                m.d.comb += port.data[k].eq(pipe.buffer_write_data[k])
        # The weights' read port: the host's access, a rule's stage-2 read, or a sweep's.
        self.host_addr, self.host_busy = Signal(range(max(where.depth, 2))), Signal()
        m.d.comb += self.w_mem.read_addr.eq(
            Mux(
                self.host_busy,
                self.host_addr,
                Mux(pipe.weight_learn, pipe.weight_learn_addr, seq.weight_addr),
            )
        )
        # A clock's events are summed and registered, then counted: off the learning rule's
        # and the steps' paths, and the sum off the counter's carry chain (the iCE40's path).
        # A rule's events (one a multiplier) are summed by eights into registers first where
        # there are many: a wide fold's sum of 128 in one stage was a deep adder tree. They
        # have the clock: a rule's events come two clocks before a step's, which the tick
        # waits for (hw.microcode.COUNT).
        for kind, events in (
            ("current", pipe.current_events),
            ("weight", pipe.weight_events),
            ("copy", pipe.copy_events),
        ):
            wide = kind != "current" and len(events) > 2 * TREE_GROUP
            counter = EventCounter(len(events), COUNTER_WIDTH, TREE_GROUP if wide else None)
            m.submodules[f"sat_{kind}"] = counter
            m.d.comb += [counter.events.eq(events), getattr(self, f"sat_{kind}").eq(counter.count)]

        self._load(m)
        if self.host_port:
            self._host(m)
        if self.debug:
            self._debug_port(m)
        return m

    # -- the host port, the load and the debug port -----------------------------------------

    def _host(self, m: Module) -> None:
        """The host's weight access (:class:`hw.mcore_parts.WeightHostAccess`): it takes the
        weights' read port while busy (the read address's multiplexer in ``elaborate``) and
        their write port in the clock it writes, over the lanes' (idle then)."""
        where = self.where
        m.submodules.host_access = access = WeightHostAccess(
            self.schedule.matrices,
            where.weights,
            where.words,
            where.transposed,
            simd=self.simd,
            depth=where.depth,
            weight_width=self.cfg.weight_width,
            addr_bits=len(self.w_mem.write.addr),
            whole_words=self.whole_words,
            latency=self.w_mem.latency,
        )
        wiring.connect(m, wiring.flipped(self.host), access.host)
        m.d.comb += [
            access.running.eq(self.running),
            access.start.eq(self.start),
            self.host_busy.eq(access.busy),
            self.host_addr.eq(access.addr),
            access.read_data.eq(self.w_mem.read_data),
            access.lfsr_state.eq(self.lfsr.state),
            self.lfsr.load_en.eq(access.lfsr_load),
            self.lfsr.load_value.eq(access.lfsr_seed),
        ]
        with m.If(access.writing):  # over the lanes' connection: the core is idle
            m.d.comb += [
                self.w_mem.write.addr.eq(access.write.addr),
                self.w_mem.write.en.eq(access.write.en),
                self.w_mem.write.data.eq(access.write.data),
            ]

    # -- the load and the debug port ---------------------------------------------------------

    def _load(self, m: Module) -> None:
        """Input words, one element a clock, into the input bank the next ``start`` runs
        (the input memory's own write port), while idle or while a sample runs from the
        other bank. With one bank: into the state memory, while idle."""
        s, lanes = self.schedule, self.lanes
        groups = self.input_groups
        group = Signal(range(max(len(groups), 2)))
        element = Signal(range(max(max(s.group(g).size for g in groups), 2)))
        sizes = Array(Const(s.group(g).size) for g in groups)
        self.run_bank = Const(0)
        if not self.loads_while_running:
            bases = Array(Const(self.where.state[g]) for g in groups)
            m.d.comb += self.load.ready.eq(~self.running)
            with m.If(self.load.valid & self.load.ready):
                m.d.comb += [
                    self.st.write.row.eq(bases[group] + element // lanes),
                    self.st.write.lanes.eq(1 << (element % lanes)),
                ]
                for k in range(lanes):
                    m.d.comb += self.st.write.data[k].eq(self.load.payload)
                with m.If(element == sizes[group] - 1):
                    last_group = group == len(groups) - 1
                    m.d.sync += [element.eq(0), group.eq(Mux(last_group, 0, group + 1))]
                with m.Else():
                    m.d.sync += element.eq(element + 1)
            return
        bases = Array(Const(self.program.state.bases[g]) for g in groups)  # rows within a bank
        load_bank, run_bank = Signal(name="load_bank"), Signal(name="run_bank")
        self.run_bank = run_bank
        # The input memory's own write port: a word a clock, never waiting, written a clock
        # after it is taken (the store's block RAM output, its bank multiplexer and the
        # input memory's write data were one path; the first read of an input row comes two
        # clocks after a start at the soonest, so a last word taken with the start is in).
        inputs = self.inputs
        row = bases[group] + element // lanes
        write_row, write_lanes = (
            Signal.like(inputs.write.row, name="write_row"),
            Signal.like(inputs.write.lanes, name="write_lanes"),
        )
        payload = Signal.like(self.load.payload)
        m.d.sync += [
            write_row.eq(Cat(row[: self.input_bits], load_bank) if self.input_bits else load_bank),
            write_lanes.eq(Mux(self.load.valid, 1 << (element % lanes), 0)),
            payload.eq(self.load.payload),
        ]
        m.d.comb += [
            self.load.ready.eq(1),
            inputs.write.row.eq(write_row),
            inputs.write.lanes.eq(write_lanes),
        ]
        for k in range(lanes):
            m.d.comb += inputs.write.data[k].eq(payload)
        last = element == sizes[group] - 1
        accept = self.load.valid & self.load.ready
        with m.If(accept):
            with m.If(last):
                m.d.sync += [element.eq(0), group.eq(Mux(group == len(groups) - 1, 0, group + 1))]
            with m.Else():
                m.d.sync += element.eq(element + 1)
        # Every start follows a whole sample's words (the link stages a sample before its
        # start; its last word may come in the start's own clock): a start runs the bank
        # they went to, and loads then go to the other. (A count of the words taken, to run
        # the old bank again after a start with nothing new, was logic no host reaches:
        # mutation cover found it.)
        m.d.comb += self.run_bank_next.eq(load_bank)
        with m.If(self.start & ~self.running):
            m.d.sync += [run_bank.eq(load_bank), load_bank.eq(~load_bank)]

    def _debug_port(self, m: Module) -> None:
        """Every state word through the memories' debug ports
        (:class:`hw.mcore_parts.MemoryDebugPort`)."""
        bank_rows = 0
        if self.loads_while_running:  # an input's words from the bank the last sample ran
            bank_rows = (1 << self.input_bits) << ceil_log2(max(self.lanes, 2))
        m.submodules.debug = port = MemoryDebugPort(
            self.debug_entries(),
            self.lanes,
            self.simd,
            self.cfg.current_width,
            self.cfg.weight_width,
            input_bank_rows=bank_rows,
        )
        mask_debug = self.mask_mem.read_port()
        counters = [self.sat_current, self.sat_weight, self.sat_copy, self.samples, self.lfsr.state]
        m.d.comb += [
            port.addr.eq(self.debug_addr),
            self.debug_data.eq(port.data),
            self.st.debug_addr.eq(port.state_addr),
            port.state_data.eq(self.st.debug_data),
            mask_debug.addr.eq(port.mask_addr),
            port.mask_data.eq(mask_debug.data),
            self.w_mem.debug_addr.eq(port.weight_addr),
            port.weight_data.eq(self.w_mem.debug_data),
            *(port.counter[k].eq(value) for k, value in enumerate(counters)),
        ]
        if bank_rows:
            m.d.comb += [
                self.inputs.debug_addr.eq(port.input_addr),
                port.input_data.eq(self.inputs.debug_data),
                port.run_bank.eq(self.run_bank),
            ]
