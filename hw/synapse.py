"""Synapse units: the thresholded map ``[K s]^+`` and its mirror ``[-K s]^+`` from one sum.

Weights live in an :class:`amaranth.lib.memory.Memory` whose words hold ``lanes`` weights. Two
layouts serve the two directions of the circuit:

* ``"rows"``: word ``(r, k)`` at address ``r * chunks + k`` holds ``K[r, k*lanes : (k+1)*lanes]``.
  A row's lanes multiply ``lanes`` sources at once into one accumulator (the forward pass).
* ``"columns"``: word ``(k, c)`` at address ``k * cols + c`` holds ``K[k*lanes : (k+1)*lanes, c]``.
  Each lane accumulates its own target row while one source is broadcast (the backward pass).

A matrix ``W`` stored by rows and its transposed copy ``W^T`` stored by columns hold the *same*
words at permuted addresses, so a Hebbian sweep updates both at one word per clock. The sums are
exact, so the layout and the number of lanes cannot change a result.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from golden_model.schedule import Schedule

from .arithmetic import Arithmetic
from .fixedpoint import adder_tree, balanced_sum, clamp_unsigned, is_negative, named, saturate
from .population import COUNTER_WIDTH
from .sweep import Sweep

__all__ = ["ROWS", "COLUMNS", "WeightLayout", "matrix_layout", "LearnPort", "SynapseUnit"]

ROWS = "rows"
COLUMNS = "columns"


class WeightLayout:
    """Where weight ``K[r, c]`` lives: memory geometry, packing and unpacking.

    A word holds ``lanes`` weights. Below a line's length (``stride``: a row's columns by
    rows, a column's rows by columns) a word is a chunk of one line; at ``lanes >= stride`` a
    word holds ``span = lanes // stride`` whole lines side by side, ``segment = stride`` lanes
    each, so short matrices still use every lane. A transposed copy passes its primary's row
    length as ``stride`` (its primary's bias column is a padding lane in the copy), so that ``W``
    and ``W^T`` keep identical words.
    """

    def __init__(
        self,
        rows: int,
        cols: int,
        lanes: int,
        layout: str,
        width: int,
        stride: int | None = None,
    ) -> None:
        if layout not in (ROWS, COLUMNS):
            raise ValueError(f"layout must be 'rows' or 'columns', got {layout!r}")
        if rows < 1 or cols < 1:
            raise ValueError(f"a weight matrix needs rows, cols >= 1, got {rows}x{cols}")
        if lanes < 1:
            raise ValueError(f"lanes must be >= 1, got {lanes}")
        line = cols if layout == ROWS else rows
        stride = line if stride is None else stride
        if stride < line:
            raise ValueError(f"stride {stride} is shorter than a line of {line}")
        self.rows, self.cols, self.lanes, self.layout, self.width = rows, cols, lanes, layout, width
        self.stride = stride
        #: Lanes per line in a word, and lines per word.
        self.segment = min(lanes, stride)
        self.span = lanes // stride if lanes >= stride else 1
        if layout == ROWS:
            # outer: a group of `span` rows; inner: a chunk of `segment` columns.
            self.outer, self.inner = -(-rows // self.span), -(-cols // self.segment)
        else:
            # outer: a chunk of `segment` rows; inner: a group of `span` columns.
            self.outer, self.inner = -(-rows // self.segment), -(-cols // self.span)
        self.depth = self.outer * self.inner
        self.word_width = lanes * width

    def locate(self, r: int, c: int) -> tuple[int, int]:
        """``(address, lane)`` of ``K[r, c]``."""
        seg, span = self.segment, self.span
        if self.layout == ROWS:
            return (r // span) * self.inner + c // seg, (r % span) * seg + c % seg
        return (r // seg) * self.inner + c // span, (c % span) * seg + r % seg

    def pack(self, codes: np.ndarray) -> list[int]:
        """Memory words (unsigned ints) from a ``rows x cols`` array of signed codes."""
        codes = np.asarray(codes, dtype=np.int64)
        if codes.shape != (self.rows, self.cols):
            raise ValueError(f"weights of shape {codes.shape}, expected {(self.rows, self.cols)}")
        words = [0] * self.depth
        mask = (1 << self.width) - 1
        for r in range(self.rows):
            for c in range(self.cols):
                address, lane = self.locate(r, c)
                words[address] |= (int(codes[r, c]) & mask) << (lane * self.width)
        return words

    def unpack(self, words: list[int]) -> np.ndarray:
        out = np.zeros((self.rows, self.cols), dtype=np.int64)
        mask = (1 << self.width) - 1
        for r in range(self.rows):
            for c in range(self.cols):
                address, lane = self.locate(r, c)
                value = (int(words[address]) >> (lane * self.width)) & mask
                out[r, c] = value - (1 << self.width) if value >> (self.width - 1) else value
        return out


def matrix_layout(schedule: Schedule, name: str, lanes: int, width: int) -> WeightLayout:
    """The layout of a schedule's matrix: a primary by rows, a transposed copy by columns
    with its primary's row length as stride (so that the two hold the same words)."""
    mat = schedule.matrix(name)
    if mat.transpose_of is None:
        return WeightLayout(mat.rows, mat.cols, lanes, ROWS, width)
    stride = schedule.matrix(mat.transpose_of).cols
    return WeightLayout(mat.rows, mat.cols, lanes, COLUMNS, width, stride=stride)


def LearnPort(addr_width: int, word_width: int, lanes: int = 1) -> wiring.Signature:
    """Read-then-write access to a weight memory, from the learner's side: the read data
    arrives one clock after ``raddr`` while ``re``; a write happens on the clock ``we`` is
    high, to the lanes whose bit of ``we`` is set (a learner writes whole words, a host one
    weight). ``re`` gives the learner the read port the unit's sweep otherwise holds (they
    never read in the same clock)."""
    return wiring.Signature(
        {
            "re": Out(1),
            "raddr": Out(addr_width),
            "rdata": In(word_width),
            "waddr": Out(addr_width),
            "wdata": Out(word_width),
            "we": Out(lanes),
        }
    )


class SynapseUnit(wiring.Component):
    """``z = saturate(round(K @ source >> weight_frac))`` for every target row, and the gated
    PMPY pair ``plus = [z]^+``, ``minus = [-z]^+`` (:func:`golden_model.units.synapse_sum`,
    :func:`~golden_model.units.threshold_pair`).

    A pulse on ``start`` sweeps the weight memory once, one word (``lanes`` multiply-
    accumulates) per clock, through a 5-stage pipeline (read, register the word, multiply,
    sum the lanes' products, accumulate); the first word is read in the ``start`` clock and
    ``done`` pulses when the last ``z`` is written: ``depth + 3`` clocks after ``start``.
    ``source`` must stay stable while ``busy``.

    With ``fetch=True`` the unit has no ``source`` vector: a clock after it issues an
    address (while the word is on the read port) it names the chunk (``fetch_inner``), and
    the element each lane needs (:meth:`lane_columns`) must arrive on ``fetched`` in that
    clock; the unit registers it for the multiply a clock later, beside the registered word.
    The network then forms one PMPY difference per lane instead of one per source element.

    Parameters
    ----------
    arith : Arithmetic
        Current and weight formats.
    rows, cols : int
        Target and source populations.
    lanes : int
        Multiply-accumulates per clock.
    layout : {"rows", "columns"}
        Weight storage (see the module docstring).
    init : ndarray, optional
        Initial weight codes, ``rows x cols``.
    debug : bool
        Add a third read port (``debug_raddr`` in, ``debug_rdata`` out one clock later) for
        reading weights while the unit runs.
    fetch : bool
        Take source elements by index (``fetch_inner``, ``fetched``) instead of ``source``.
    external_multipliers : bool
        Multiply in a :class:`~hw.multipliers.MultiplierPool` shared with units that never
        multiply at the same time: each lane's weight and source leave on ``mul_a``,
        ``mul_b`` while ``mul_valid`` (zero otherwise: the pool ORs its users' operands);
        the products come back on ``mul_product`` a clock later.
    registers : bool
        Keep the weights in flip-flops instead of block RAM (Yosys ``ram_style = "logic"``):
        for a memory of one word on the ECP5, whose flip-flops sit beside its LUTs rather
        than in their place, so the word costs no logic cell, no block RAM, and none of the
        block's 5.6 ns clock-to-output or routing to the multipliers. Same behaviour.

    Attributes
    ----------
    start : In(1)
    source : In(ArrayLayout(signed(current_width), cols))
        (``fetch=False``)
    fetch_inner : Out(range(inner))
        (``fetch=True``) The chunk (``rows`` layout) or column (``columns``) addressed this
        clock.
    fetch_first : Out(1)
        (``fetch=True``) This clock's reads are the sweep's first of their elements.
    fetched : In(ArrayLayout(signed(current_width), fetch_lanes))
        (``fetch=True``) The element of :meth:`lane_columns` for each lane (0 for padding);
        one shared by all lanes in the ``columns`` layout.
    gate : In(rows)
        Per-target gate (mask bits); a closed gate outputs 0 on both halves.
    z : Out(ArrayLayout(signed(current_width), rows))
    plus, minus : Out(ArrayLayout(unsigned(current_width - 1), rows))
    busy, done : Out(1)
    sat_count : Out(32)
    sat_events : Out(range(lanes + 1))
        Saturation events in this clock (``sat_count`` sums them).
    learn : In(LearnPort)
        The Hebbian unit's (or the host's) access to the weight memory. Its reads share the
        sweep's read port: they are served while the unit does not sweep.
    mul_valid : Out(1), mul_a : Out(ArrayLayout(signed(weight_width), lanes))
    mul_b : Out(ArrayLayout(signed(current_width), lanes))
    mul_product : In(ArrayLayout(signed(weight_width + current_width), lanes))
        (``external_multipliers=True``)
    """

    def __init__(
        self,
        arith: Arithmetic,
        rows: int,
        cols: int,
        lanes: int = 1,
        *,
        layout: str = ROWS,
        stride: int | None = None,
        init: np.ndarray | None = None,
        debug: bool = False,
        fetch: bool = False,
        external_multipliers: bool = False,
        registers: bool = False,
    ) -> None:
        self.arith = arith
        self.external_multipliers = external_multipliers
        self.debug = debug
        self.fetch = fetch
        self.geometry = WeightLayout(rows, cols, lanes, layout, arith.weight_width, stride)
        self.rows, self.cols, self.lanes, self.layout = rows, cols, lanes, layout
        codes = np.zeros((rows, cols), dtype=np.int64) if init is None else init
        self.memory = memory.Memory(
            shape=unsigned(self.geometry.word_width),
            depth=self.geometry.depth,
            init=self.geometry.pack(codes),
            # Block RAM even for a few words: every target has block RAM to spare, while
            # logic is what runs out (a small memory in flip-flops costs an LC per bit on
            # the iCE40); a single word on the ECP5 is the exception (`registers`).
            attrs={"ram_style": "logic" if registers else "block"},
        )
        cw = arith.current_width
        addr_width = ceil_log2(max(self.geometry.depth, 2))
        debug_ports = (
            {"debug_raddr": In(addr_width), "debug_rdata": Out(self.geometry.word_width)}
            if debug
            else {}
        )
        #: Elements fetched per clock: a word's columns by rows (the rows it spans share
        #: them), a word's columns by columns (each broadcast to its line's lanes).
        self.fetch_lanes = self.geometry.segment if layout == ROWS else self.geometry.span
        source_ports = (
            {
                "fetch_inner": Out(range(max(self.geometry.inner, 2))),
                "fetch_first": Out(1),
                "fetched": In(data.ArrayLayout(signed(cw), self.fetch_lanes)),
            }
            if fetch
            else {"source": In(data.ArrayLayout(signed(cw), cols))}
        )
        ww = arith.weight_width
        multiplier_ports = (
            {
                "mul_valid": Out(1),
                "mul_a": Out(data.ArrayLayout(signed(ww), lanes)),
                "mul_b": Out(data.ArrayLayout(signed(cw), lanes)),
                "mul_product": In(data.ArrayLayout(signed(ww + cw), lanes)),
            }
            if external_multipliers
            else {}
        )
        super().__init__(
            {
                **debug_ports,
                **source_ports,
                **multiplier_ports,
                "start": In(1),
                "gate": In(rows),
                "z": Out(data.ArrayLayout(signed(cw), rows)),
                "plus": Out(data.ArrayLayout(unsigned(cw - 1), rows)),
                "minus": Out(data.ArrayLayout(unsigned(cw - 1), rows)),
                "busy": Out(1),
                "done": Out(1),
                "sat_count": Out(COUNTER_WIDTH),
                "sat_events": Out(range(lanes + 1)),
                "learn": In(LearnPort(addr_width, self.geometry.word_width, lanes)),
            }
        )

    def lane_columns(self, element: int) -> list[int | None]:
        """The source column fetched element ``element`` (of :attr:`fetch_lanes`) holds at
        each value of ``fetch_inner`` (``None``: past the last column)."""
        step = self.geometry.segment if self.layout == ROWS else self.geometry.span
        columns = [k * step + element for k in range(self.geometry.inner)]
        return [c if c < self.cols else None for c in columns]

    def rounding_offset(self) -> int:
        """Where an accumulator starts: half an output step, so that rounding half up is a
        plain shift (the tests' broken units override it)."""
        return 0 if self.arith.weight_frac == 0 else 1 << (self.arith.weight_frac - 1)

    def elaborate(self, platform):
        m = Module()
        arith, geo, lanes = self.arith, self.geometry, self.lanes
        cw, ww = arith.current_width, arith.weight_width
        m.submodules.memory = self.memory
        # One read port for the sweep and the learner: a tick learns before it sweeps and the
        # host reads only between samples, so they never read in the same clock, and every
        # memory is one block-RAM port pair instead of two copies.
        sweep = self.memory.read_port()
        learn_write = self.memory.write_port(granularity=ww)
        if self.debug:
            debug_read = self.memory.read_port()
            m.d.comb += [
                debug_read.addr.eq(self.debug_raddr),
                self.debug_rdata.eq(debug_read.data),
            ]
        m.d.comb += [
            self.learn.rdata.eq(sweep.data),
            learn_write.addr.eq(self.learn.waddr),
            learn_write.data.eq(self.learn.wdata),
            learn_write.en.eq(self.learn.we),
        ]

        # Stage A: issue addresses 0 .. depth-1 (both layouts sweep memory in order).
        m.submodules.steps = steps = Sweep(geo.outer, geo.inner)
        issuing, outer, inner = steps.issuing, steps.outer, steps.inner
        m.d.comb += [
            steps.start.eq(self.start),
            # The learner's read enable picks the address, not the sweep's start: the step
            # registers rest at 0, so a sweep's first read needs no path from its start.
            sweep.addr.eq(Mux(self.learn.re, self.learn.raddr, steps.address)),
            sweep.en.eq(1),
        ]

        def tag(name: str):
            return {
                "valid": Signal(name=f"{name}_valid"),
                "first": Signal(name=f"{name}_first"),
                "last": Signal(name=f"{name}_last"),
                "outer": Signal(range(max(geo.outer, 2)), name=f"{name}_outer"),
                "inner": Signal(range(max(geo.inner, 2)), name=f"{name}_inner"),
            }

        r, b, c, d = tag("r"), tag("b"), tag("c"), tag("d")
        m.d.sync += [
            r["valid"].eq(issuing),
            r["first"].eq(inner == 0),
            r["last"].eq(inner == geo.inner - 1),
            r["outer"].eq(outer),
            r["inner"].eq(inner),
        ]
        m.d.sync += [b[k].eq(r[k]) for k in b]
        m.d.sync += [c[k].eq(b[k]) for k in c]
        m.d.sync += [d[k].eq(c[k]) for k in d]

        # Stage R: the word is on the read port; take it into a register (the block RAM's
        # clock-to-output then ends at a flip-flop, not in front of the operand multiplexer
        # and the multiplier: the routed digits system's critical path).
        word = Signal.like(sweep.data, name="word")
        # On a shared pool the operands must be zero while this unit does not multiply (the
        # pool ORs its users'): a clear of the register, the flip-flops' own reset.
        idle_zero = self.external_multipliers
        m.d.sync += word.eq(Mux(r["valid"], sweep.data, 0) if idle_zero else sweep.data)

        # Stage B: multiply the registered word, register the products.
        products = [Signal(signed(cw + ww), name=f"product{lane}") for lane in range(lanes)]
        if self.fetch:
            # Named a clock after the address (stage R), taken into a register beside the
            # word: the element's pick and its PMPY difference then end at a register, not at
            # the multiplier (and a memory-held source could answer in the same clock).
            m.d.comb += [
                self.fetch_inner.eq(r["inner"]),
                self.fetch_first.eq(r["valid"] & ~r["outer"].any()),
            ]
            fetched = [
                Signal(signed(cw), name=f"fetched{lane}") for lane in range(self.fetch_lanes)
            ]
            m.d.sync += [
                fetched[k].eq(Mux(r["valid"], self.fetched[k], 0) if idle_zero else self.fetched[k])
                for k in range(self.fetch_lanes)
            ]
        seg, span = geo.segment, geo.span
        zero = Const(0, signed(cw))
        for lane in range(lanes):
            weight = word[lane * ww : (lane + 1) * ww].as_signed()
            line, offset = divmod(lane, seg)  # the word's line and the lane's place in it
            if line >= span:
                operand = zero  # a padding lane: its weight is always 0
            elif self.fetch:
                operand = fetched[offset if self.layout == ROWS else line]
            else:
                element, step = (offset, seg) if self.layout == ROWS else (line, span)
                picks = [k * step + element for k in range(geo.inner)]
                operand = Array(self.source[j] if j < self.cols else zero for j in picks)[
                    b["inner"]
                ]
                if idle_zero:
                    operand = Mux(b["valid"], operand, 0)
            if self.external_multipliers:
                m.d.comb += [
                    self.mul_a[lane].eq(weight),
                    self.mul_b[lane].eq(operand),
                    products[lane].eq(self.mul_product[lane]),
                ]
            else:
                m.d.sync += products[lane].eq(weight * operand)

        # Stage C: sum each accumulator's products into a register (a tree of up to
        # log2(lanes) adders: at many lanes it was the longest path when it fed the
        # accumulator in the same clock). Stage D: accumulate; on a line's last word, round
        # and saturate into z. By rows an accumulator per row of the word (its `segment`
        # lanes), by columns one per lane of a line (summing the `span` lines' products);
        # accumulator `a` at outer step `o` writes row `o * accumulators + a`.
        acc_width = cw + ww + ceil_log2(self.cols + 1) + 1
        events = []
        if self.layout == ROWS:
            members = [range(j * seg, (j + 1) * seg) for j in range(span)]
        else:
            members = [range(e, span * seg, seg) for e in range(seg)]
        groups = []
        for a, lanes_of in enumerate(members):
            parts = [products[k] for k in lanes_of]
            partial = Signal(signed(cw + ww + ceil_log2(len(parts) + 1)), name=f"partial{a}")
            m.d.sync += partial.eq(adder_tree(m, parts, f"tree{a}"))
            groups.append((a, partial))
        # Each row keeps z as sign and magnitude: the magnitude is formed once, where z is
        # written, so the PMPY halves below need no negator per row.
        negative = [Signal(name=f"negative{r}") for r in range(self.rows)]
        magnitude = [Signal(unsigned(cw - 1), name=f"magnitude{r}") for r in range(self.rows)]
        for a, partial in groups:
            acc = Signal(signed(acc_width), name=f"acc{a}")
            # The accumulator starts at half an output step, so rounding half up is a
            # plain shift of the sum (no adder after the accumulator).
            half = self.rounding_offset()
            total = named(m, Mux(d["first"], half, acc) + partial, f"total{a}")
            with m.If(d["valid"]):
                m.d.sync += acc.eq(total)
            rounded = total >> arith.weight_frac
            value, event = saturate(rounded, cw)
            value_negative = is_negative(value)
            value_magnitude = Mux(value_negative, -value, value)[: cw - 1]
            targets = {o: o * len(members) + a for o in range(geo.outer)}
            targets = {o: t for o, t in targets.items() if t < self.rows}
            writing = (
                d["valid"]
                & d["last"]
                & Array([Const(o in targets) for o in range(max(geo.outer, 2))])[d["outer"]]
            )
            with m.If(writing):
                with m.Switch(d["outer"]):
                    for o, t in targets.items():
                        with m.Case(o):
                            m.d.sync += [
                                negative[t].eq(value_negative),
                                magnitude[t].eq(value_magnitude),
                            ]
            events.append(writing & event)
        m.d.comb += self.sat_events.eq(balanced_sum(events))
        count = self.sat_count + balanced_sum(events)
        m.d.sync += self.sat_count.eq(clamp_unsigned(count, COUNTER_WIDTH))

        if self.external_multipliers:
            m.d.comb += self.mul_valid.eq(b["valid"])
        m.d.comb += [
            self.busy.eq(issuing | r["valid"] | b["valid"] | c["valid"] | d["valid"]),
            self.done.eq(d["valid"] & d["last"] & (d["outer"] == geo.outer - 1)),
        ]
        for r in range(self.rows):
            open_ = self.gate[r]
            m.d.comb += [
                self.z[r].eq(Mux(negative[r], -magnitude[r], magnitude[r])),
                self.plus[r].eq(Mux(open_ & ~negative[r], magnitude[r], 0)),
                self.minus[r].eq(Mux(open_ & negative[r], magnitude[r], 0)),
            ]
        return m
