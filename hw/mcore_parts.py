"""The memory core's parts outside its datapath: the saturation counters, the debug port and
the host's weight access.

:class:`~hw.mcore.MemoryCore` joins them to its memories and lanes; each takes explicit
sizes and widths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from amaranth.hdl import Array, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from golden_model.schedule import Matrix

from .fixedpoint import balanced_sum, clamp_unsigned
from .host_port import HostPort, WordLaneDecoder, serve_requests
from .ports import word_write

__all__ = [
    "EventCounter",
    "DebugEntry",
    "MemoryDebugPort",
    "WeightHostAccess",
    "CURRENT",
    "MASK",
    "WEIGHT",
    "COUNTER",
]

#: What a debug entry reads: an element of the state (or input) memory, a mask bit, a weight,
#: a counter.
CURRENT, MASK, WEIGHT, COUNTER = range(4)

#: ``(kind, unit, address, lane)``: a state word's place (``unit``: the input memory for a
#: current, the counter's index for a counter).
DebugEntry = tuple[int, int, int, int]


class EventCounter(wiring.Component):
    """A saturating count of one kind's events, a bit each a clock.

    Parameters
    ----------
    events : int
        Event bits a clock.
    width : int
        Bits the count saturates at (never wraps).
    group : int, optional
        Sum the events by groups of ``group`` into registers first (a wide fold's many
        events; a clock later).

    Attributes
    ----------
    events : In(events)
    count : Out(64)

    Timing: a clock's events are summed into a register, then added: counted two clocks
    after they arise (three with ``group``), off the paths that raise them and with the
    sum off the counter's carry chain.
    """

    def __init__(self, events: int, width: int, group: int | None = None) -> None:
        self.n_events, self.width, self.group = events, width, group
        super().__init__({"events": In(events), "count": Out(64)})

    def elaborate(self, platform):
        m = Module()
        terms = list(self.events)
        if self.group:
            groups = [terms[g : g + self.group] for g in range(0, len(terms), self.group)]
            terms = [Signal(range(len(g) + 1), name="part") for g in groups]
            m.d.sync += [t.eq(balanced_sum(g)) for t, g in zip(terms, groups, strict=True)]
        total = Signal(range(self.n_events + 1), name="total")
        m.d.sync += [
            total.eq(balanced_sum(terms)),
            self.count.eq(clamp_unsigned(self.count[: self.width] + total, self.width)),
        ]
        return m


class MemoryDebugPort(wiring.Component):
    """Any state word of the memory core, a clock after its address, through the memories'
    own debug ports: a ROM maps the word's index (the golden trace's order) to its memory,
    address and lane.

    Parameters
    ----------
    entries : sequence of DebugEntry
        Every state word in trace order.
    lanes, simd : int
        Elements a state row (mask bits a mask row); weights a word.
    current_width, weight_width : int
    input_bank_rows : int
        Rows of an input bank of the input memory, in its debug addresses (0: no input
        memory): an input's words are read from the bank the last sample ran.

    Attributes
    ----------
    addr : In(range(len(entries))); data : Out(signed(64))
    state_addr : Out; state_data : In(signed(current_width))
        The state memory's debug port (its element a clock later, flags applied).
    input_addr : Out; input_data : In(signed(current_width)); run_bank : In(1)
        The input memory's debug port and the bank the last sample ran (with input banks).
    mask_addr : Out; mask_data : In(lanes)
        A read port of the mask memory.
    weight_addr : Out; weight_data : In(ArrayLayout(signed(weight_width), simd))
        The weight memory's debug port.
    counter : In(ArrayLayout(unsigned(64), 5))
        The saturation counters, the samples and the LFSR's state.
    """

    def __init__(
        self,
        entries: Sequence[DebugEntry],
        lanes: int,
        simd: int,
        current_width: int,
        weight_width: int,
        input_bank_rows: int = 0,
    ) -> None:
        self.entries, self.lanes, self.simd = list(entries), lanes, simd
        self.input_bank_rows = input_bank_rows
        self.fields = (
            2,
            3,
            max(ceil_log2(max(e[2] for e in self.entries) + 1), 1),
            ceil_log2(max(lanes, simd, 2)),
        )
        address = self.fields[2]
        ports = {
            "addr": In(range(len(self.entries))),
            "data": Out(signed(64)),
            "state_addr": Out(address),
            "state_data": In(signed(current_width)),
            "mask_addr": Out(address),
            "mask_data": In(lanes),
            "weight_addr": Out(address),
            "weight_data": In(data.ArrayLayout(signed(weight_width), simd)),
            "counter": In(data.ArrayLayout(unsigned(64), 5)),
        }
        if input_bank_rows:
            ports.update(
                {
                    "input_addr": Out(max(address, ceil_log2(input_bank_rows) + 1) + 1),
                    "input_data": In(signed(current_width)),
                    "run_bank": In(1),
                }
            )
        super().__init__(ports)

    def rom_words(self) -> list[int]:
        """The entries packed as the ROM holds them: kind, unit, address, lane."""
        kb, ub, ab, _ = self.fields
        return [k | u << kb | a << (kb + ub) | ln << (kb + ub + ab) for k, u, a, ln in self.entries]

    def elaborate(self, platform):
        m = Module()
        kb, ub, ab, lb = self.fields
        words = self.rom_words()
        m.submodules.rom = rom = memory.Memory(
            shape=unsigned(kb + ub + ab + lb), depth=len(words), init=words
        )
        entry = rom.read_port(domain="comb")
        m.d.comb += entry.addr.eq(self.addr)
        kind, unit = entry.data[:kb], entry.data[kb : kb + ub]
        address = entry.data[kb + ub : kb + ub + ab]
        lane = entry.data[kb + ub + ab :]
        kind_r, unit_r, lane_r = (
            Signal.like(kind, name="kind_r"),
            Signal.like(unit, name="unit_r"),
            Signal.like(lane, name="lane_r"),
        )
        m.d.sync += [kind_r.eq(kind), unit_r.eq(unit), lane_r.eq(lane)]
        m.d.comb += [
            self.state_addr.eq(address),
            self.mask_addr.eq(address),
            self.weight_addr.eq(address),
        ]
        if self.input_bank_rows:
            bank = Mux(self.run_bank, self.input_bank_rows, 0)
            m.d.comb += self.input_addr.eq(address + bank)
        weight = Array(self.weight_data[k] for k in range(self.simd))[lane_r]
        counters = Array(self.counter[k] for k in range(5))
        with m.Switch(kind_r):
            with m.Case(CURRENT):
                m.d.comb += self.data.eq(self.state_data)
                if self.input_bank_rows:
                    with m.If(unit_r == 1):
                        m.d.comb += self.data.eq(self.input_data)
            with m.Case(MASK):
                m.d.comb += self.data.eq((self.mask_data >> lane_r)[0])
            with m.Case(WEIGHT):
                m.d.comb += self.data.eq(weight)
            with m.Case(COUNTER):
                m.d.comb += self.data.eq(counters[unit_r])
        return m


class WeightHostAccess(wiring.Component):
    """One weight read or written by its trace index while the core is idle: the index
    decoded to a word and lane (:class:`hw.host_port.WordLaneDecoder`, a subtraction a
    clock), then one access to the weight memory. A transposed copy is its primary, so a
    write to either reaches both.

    Parameters
    ----------
    matrices : sequence of Matrix
        Every matrix, in trace order.
    bases, words : mapping of str to int; transposed : set of str
        The weight memory's map (:class:`hw.microcode.MemoryMap`): each matrix's first word,
        words a stored row, the primaries stored by columns.
    simd, depth : int
        Weights a word; words of the memory.
    weight_width, addr_bits : int
    whole_words : bool
        The memory writes whole words (one enable): a write reads the word, replaces its
        weight and writes it back; else the weight's lane enable writes it alone.
    latency : int
        Clocks from a read address to its word (2 with banks).

    Attributes
    ----------
    host : In(HostPort)
        The requests (:func:`hw.host_port.HostPort`).
    running, start : In(1)
        Requests wait while the core runs or starts.
    busy : Out(1); addr : Out(addr_bits)
        A request holds the weights' read port (its address) from its decode to its end.
    read_data : In(ArrayLayout(signed(weight_width), simd))
        The word read.
    write : Out(word_write)
        The host's write (:func:`hw.ports.word_write`), in the clock ``writing``.
    writing : Out(1)
    lfsr_load, lfsr_seed : Out; lfsr_state : In(32)
        The rounding LFSR's state, written by ``host.seed_write`` while ready.

    Timing: decode (a clock a matrix), the address, the banks' register (``latency`` 2),
    the word registered, then its lane picked into ``host.rdata`` and ``done``; a whole
    word's write goes back in that last clock.
    """

    def __init__(
        self,
        matrices: Sequence[Matrix],
        bases: Mapping[str, int],
        words: Mapping[str, int],
        transposed: set[str] | frozenset[str],
        *,
        simd: int,
        depth: int,
        weight_width: int,
        addr_bits: int,
        whole_words: bool,
        latency: int = 1,
    ) -> None:
        self.matrices, self.bases, self.words = list(matrices), dict(bases), dict(words)
        self.transposed, self.simd, self.depth = frozenset(transposed), simd, depth
        self.whole_words, self.latency = whole_words, latency
        word = data.ArrayLayout(signed(weight_width), simd)
        n_weights = sum(mat.rows * mat.cols for mat in self.matrices)
        super().__init__(
            {
                "host": In(HostPort(n_weights, weight_width)),
                "running": In(1),
                "start": In(1),
                "busy": Out(1),
                "addr": Out(addr_bits),
                "read_data": In(word),
                "write": Out(word_write(addr_bits, word, 1 if whole_words else simd)),
                "writing": Out(1),
                "lfsr_load": Out(1),
                "lfsr_seed": Out(32),
                "lfsr_state": In(32),
            }
        )

    def elaborate(self, platform):
        m = Module()
        lanes, host = self.simd, self.host
        m.submodules.host_decoder = decoder = WordLaneDecoder(
            self.matrices, self.bases, self.words, self.transposed, lanes, self.depth
        )
        # the read port takes the address (a narrow word's write happens then); with banks
        # each bank's word is registered before their pick; the word on the read port,
        # registered whole; then its lane picked (the memory's output, routed to every
        # lane's multiplier, and the pick were one path into host.rdata), and a wide word's
        # write writes it back
        phases = ("access", "bank", "data", "pick") if self.latency > 1 else (
            "access", "data", "pick")  # fmt: skip
        request = serve_requests(m, host, decoder, ~self.running & ~self.start, phases=phases)
        value, writing = request.value, request.write
        accessing, answer, picking = (request.phase[p] for p in ("access", "data", "pick"))
        m.d.comb += [
            self.busy.eq(request.busy),
            host.lfsr_state.eq(self.lfsr_state),
            self.lfsr_load.eq(host.seed_write & host.ready),
            self.lfsr_seed.eq(host.seed),
        ]
        address = decoder.address
        m.d.comb += [self.addr.eq(address), self.write.addr.eq(address)]
        fetched = Signal.like(self.read_data, name="fetched")
        with m.If(answer):
            m.d.sync += fetched.eq(self.read_data)
        if self.whole_words:  # the word read back with its one weight replaced
            m.d.comb += [self.writing.eq(picking & writing), self.write.en.eq(1)]
            for k in range(lanes):
                replaced = Mux(decoder.lane == k, value, fetched[k])
                m.d.comb += self.write.data[k].eq(replaced)
        else:  # the one weight, by its lane's enable
            m.d.comb += [self.writing.eq(accessing & writing), self.write.en.eq(1 << decoder.lane)]
            for k in range(lanes):
                m.d.comb += self.write.data[k].eq(value)
        word = Array(fetched[k] for k in range(lanes))
        m.d.sync += host.rdata.eq(word[decoder.lane])
        return m
