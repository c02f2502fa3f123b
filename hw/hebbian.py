"""Hebbian weight-update units: learning switched on by the gating chain."""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .arithmetic import Arithmetic
from .fixedpoint import (
    balanced_sum,
    clamp_unsigned,
    named,
    saturate,
    shift_round_nearest,
    shift_round_stochastic,
)
from .lfsr import MultiStepLfsr
from .population import COUNTER_WIDTH
from .sweep import Sweep
from .synapse import COLUMNS, ROWS, LearnPort, WeightLayout

__all__ = ["HebbianUnit"]


class HebbianUnit(wiring.Component):
    """``W <- saturate(W - round(eta * post * pre^T))`` for co-gated pre- and post-synaptic
    populations, and the same change on the transposed copy
    (:func:`golden_model.units.hebbian_update`).

    A pulse on ``start`` sweeps ``W`` (stored by rows) one word per clock in row-major order,
    through four stages: take ``post[r]`` and ``pre[c]`` into registers; compute ``lanes``
    products ``post[r] * pre[c]`` into registers while reading the words of ``W`` and ``W^T``
    (stored by columns, so the word is the same ``lanes`` synapses); round the products (half
    up, or stochastically with one LFSR step per synapse in row-major order) and subtract with
    saturation into registers; write both words back (only the lanes inside each matrix).
    ``done`` pulses with the last write: ``depth + 2`` clocks after ``start`` (the first word
    is named in the ``start`` clock). ``post`` and
    ``pre`` must stay stable while ``busy``. The copy is a separate synapse: its own read,
    its own saturation, its own counter.

    Parameters
    ----------
    arith : Arithmetic
        Formats, learning-rate shift, rounding mode and LFSR seed.
    rows, cols : int
        Shape of ``W`` (columns include the bias).
    lanes : int
        Synapses updated per clock (must match the synapse units).
    copy_rows : int, optional
        Rows of the transposed copy (``W``'s columns without the bias); ``None``: no copy.
    rule : {"hebbian", "covariance"}
        ``"covariance"``: ``K <- saturate(K + round((post pre^T - K 2**align) >> (align +
        rate_shift)))`` (:func:`golden_model.units.covariance_update`), ``align = 2
        current_frac - weight_frac``, ``rate_shift`` an input; no copy.
    shared_lfsr : bool
        Take random addends from an LFSR outside (``random_ahead`` in, ``random_advance`` out)
        instead of owning one, so that several units draw from one sequence in turn.
    fetch : bool
        Take ``post`` and ``pre`` elements by index instead of as vectors: in the clock a word
        is named, the unit names its row and chunk (``fetch_row``, ``fetch_chunk``,
        ``fetch_valid``) and takes ``fetched_post`` and ``fetched_pre`` (the column of
        :meth:`lane_columns` per lane) into a register for the product a clock later.
    external_multipliers : bool
        Multiply in a :class:`~hw.multipliers.MultiplierPool` shared with units that never
        multiply at the same time: the operands leave on ``mul_a``, ``mul_b`` while
        ``mul_valid`` (zero otherwise: the pool ORs its users' operands), and the products
        come back on ``mul_product`` a clock later.

    Attributes
    ----------
    start : In(1)
    post : In(ArrayLayout(signed(current_width), rows))
        (``fetch=False``)
    pre : In(ArrayLayout(signed(current_width), cols))
        (``fetch=False``)
    fetch_row : Out(range(outer)), fetch_chunk : Out(range(inner)), fetch_valid : Out(1)
        (``fetch=True``) The word addressed this clock: its row group (one row unless a word
        spans rows, :class:`~hw.synapse.WeightLayout`) and column chunk.
    fetched_post : In(ArrayLayout(signed(current_width), span))
        (``fetch=True``) The ``post`` element of each row of the word (:meth:`post_rows`).
    fetched_pre : In(ArrayLayout(signed(current_width), segment))
        (``fetch=True``) The ``pre`` element of each column of the word
        (:meth:`lane_columns`; 0 past the last column), shared by the rows it spans.
    w, wt : Out(LearnPort)
        Connect to the ``learn`` ports of the synapse units holding ``W`` and ``W^T``.
    busy, done : Out(1)
    issuing : Out(1)
        A word is named this clock (its operands are fetched now); low from the clock after
        ``ending``.
    ending : Out(1)
        High in the clock the last word is named: the unit multiplies for one more clock,
        so a unit sharing its multipliers (or the LFSR, drawn a clock later still) may name
        its first word in the next clock.
    sat_count, sat_copy_count : Out(32)
    sat_events, sat_copy_events : Out(range(lanes + 1))
        Saturation events of the word written this clock (the counters sum them).
    lfsr_state : Out(32)
        Own LFSR only.
    random_ahead : In(ArrayLayout(unsigned(32), lanes)), random_advance : Out(range(lanes + 1))
        Shared LFSR only: connect to a :class:`~hw.lfsr.MultiStepLfsr`.
    mul_valid : Out(1), mul_a, mul_b : Out(ArrayLayout(signed(current_width), lanes))
        (``external_multipliers=True``) ``post`` and each lane's ``pre``.
    mul_product : In(ArrayLayout(signed(2 * current_width), lanes))
        (``external_multipliers=True``) Their products, a clock after ``mul_valid``.
    """

    def __init__(
        self,
        arith: Arithmetic,
        rows: int,
        cols: int,
        lanes: int = 1,
        *,
        copy_rows: int | None = None,
        rule: str = "hebbian",
        shared_lfsr: bool = False,
        fetch: bool = False,
        external_multipliers: bool = False,
    ) -> None:
        if rule not in ("hebbian", "covariance"):
            raise ValueError(f"unknown learning rule {rule!r}")
        if rule == "covariance" and copy_rows is not None:
            raise ValueError("the covariance rule keeps no transposed copy")
        self.rule = rule
        self.align = 2 * arith.current_frac - arith.weight_frac
        if rule == "covariance" and self.align < 0:
            raise ValueError("the covariance rule needs 2 * current_frac >= weight_frac")
        if arith.rounding == "stochastic" and arith.update_shift > 32 and rule == "hebbian":
            raise ValueError("stochastic rounding draws at most 32 bits per synapse")
        self.arith, self.rows, self.cols, self.lanes = arith, rows, cols, lanes
        self.copy_rows = copy_rows
        self.shared_lfsr = shared_lfsr
        self.fetch = fetch
        self.geometry = WeightLayout(rows, cols, lanes, ROWS, arith.weight_width)
        cw = arith.current_width
        geo = self.geometry
        if fetch:
            vectors = {
                "fetch_row": Out(range(max(geo.outer, 2))),
                "fetch_chunk": Out(range(max(geo.inner, 2))),
                "fetch_valid": Out(1),
                "fetched_post": In(data.ArrayLayout(signed(cw), geo.span)),
                "fetched_pre": In(data.ArrayLayout(signed(cw), geo.segment)),
            }
        else:
            vectors = {
                "post": In(data.ArrayLayout(signed(cw), rows)),
                "pre": In(data.ArrayLayout(signed(cw), cols)),
            }
        ports = {
            "start": In(1),
            **vectors,
            "w": Out(
                LearnPort(ceil_log2(max(self.geometry.depth, 2)), self.geometry.word_width, lanes)
            ),
            "busy": Out(1),
            "issuing": Out(1),
            "ending": Out(1),
            "done": Out(1),
            "sat_count": Out(COUNTER_WIDTH),
            "sat_copy_count": Out(COUNTER_WIDTH),
            "sat_events": Out(range(lanes + 1)),
            "sat_copy_events": Out(range(lanes + 1)),
        }
        if rule == "covariance":
            ports["rate_shift"] = In(range(arith.learning_rate_shift + 1))
        if shared_lfsr:
            ports["random_ahead"] = In(data.ArrayLayout(unsigned(32), lanes))
            ports["random_advance"] = Out(range(lanes + 1))
        else:
            ports["lfsr_state"] = Out(32)
        self.external_multipliers = external_multipliers
        if external_multipliers:
            cw = arith.current_width
            ports["mul_valid"] = Out(1)
            ports["mul_a"] = Out(data.ArrayLayout(signed(cw), lanes))
            ports["mul_b"] = Out(data.ArrayLayout(signed(cw), lanes))
            ports["mul_product"] = In(data.ArrayLayout(signed(2 * cw), lanes))
        if copy_rows is not None:
            self.copy_geometry = WeightLayout(
                copy_rows, rows, lanes, COLUMNS, arith.weight_width, stride=cols
            )
            depth = self.copy_geometry.depth
            ports["wt"] = Out(LearnPort(ceil_log2(max(depth, 2)), self.geometry.word_width, lanes))
        super().__init__(ports)

    def lane_columns(self, element: int) -> list[int | None]:
        """The ``pre`` column fetched element ``element`` (of ``segment``) holds at each value
        of ``fetch_chunk`` (``None``: past the last column)."""
        seg = self.geometry.segment
        columns = [k * seg + element for k in range(self.geometry.inner)]
        return [c if c < self.cols else None for c in columns]

    def post_rows(self, element: int) -> list[int | None]:
        """The ``post`` row fetched element ``element`` (of ``span``) holds at each value of
        ``fetch_row`` (``None``: past the last row)."""
        span = self.geometry.span
        rows = [o * span + element for o in range(self.geometry.outer)]
        return [r if r < self.rows else None for r in rows]

    def saturate(self, value: Value, width: int) -> tuple[Value, Value]:
        """A Hebbian update clamped to the weights' range, and its saturation event (the
        tests' broken units override it)."""
        return saturate(value, width)

    def elaborate(self, platform):
        m = Module()
        arith, geo, lanes, ww = self.arith, self.geometry, self.lanes, self.arith.weight_width
        if self.shared_lfsr:
            ahead, advance = self.random_ahead, self.random_advance
        else:
            m.submodules.lfsr = lfsr = MultiStepLfsr(arith.lfsr_seed, lanes)
            m.d.comb += self.lfsr_state.eq(lfsr.state)
            ahead, advance = lfsr.ahead, lfsr.advance
        shift = arith.update_shift
        stochastic = arith.rounding == "stochastic"

        # Stage A: name word (r, k) of W (and word k * rows + r of W^T) and fetch its operands.
        m.submodules.steps = steps = Sweep(geo.outer, geo.inner)
        issuing, row, chunk, address = steps.issuing, steps.outer, steps.inner, steps.address
        m.d.comb += steps.start.eq(self.start)
        # W^T's address k * outer + r (chunk k, row group r), kept as a running sum in step
        # with the sweep: a product with a constant here took a hard multiplier on the ECP5
        # (three in a 2-layer core).
        # It rests at 0 between sweeps, as the sweep's own steps do.
        t_address = Signal(range(geo.inner * geo.outer + 1), name="t_address")
        with m.If(issuing):
            with m.If(steps.last):
                m.d.sync += t_address.eq(0)
            with m.Elif(chunk == geo.inner - 1):
                m.d.sync += t_address.eq(row + 1)
            with m.Else():
                m.d.sync += t_address.eq(t_address + geo.outer)

        def idle_zero(valid, value):
            """``value``, or 0 while not ``valid`` on a shared pool (it ORs its users'
            operands): in a register, the flip-flops' own clear."""
            return Mux(valid, value, 0) if self.external_multipliers else value

        # Stage B: the operands are in registers; form the products and address the words.
        b_valid, b_row = Signal(), Signal.like(row)
        b_chunk, b_address = Signal.like(chunk), Signal.like(address)
        b_t_address = Signal.like(t_address)
        m.d.sync += [
            b_valid.eq(issuing),
            b_row.eq(row),
            b_chunk.eq(chunk),
            b_address.eq(address),
            b_t_address.eq(t_address),
        ]
        m.d.comb += [self.w.re.eq(b_valid), self.w.raddr.eq(b_address)]
        if self.copy_rows is not None:
            m.d.comb += [self.wt.re.eq(b_valid), self.wt.raddr.eq(b_t_address)]
        if self.fetch:
            # The elements of the word being addressed, registered beside it.
            m.d.comb += [
                self.fetch_row.eq(row),
                self.fetch_chunk.eq(chunk),
                self.fetch_valid.eq(issuing),
            ]
            posts = [Signal(signed(arith.current_width), name=f"post{j}") for j in range(geo.span)]
            m.d.sync += [
                posts[j].eq(idle_zero(issuing, self.fetched_post[j])) for j in range(geo.span)
            ]
        else:
            zero = Const(0, signed(arith.current_width))
            posts = [
                Array(self.post[r] if r is not None else zero for r in self.post_rows(j))[b_row]
                for j in range(geo.span)
            ]

        # Stage C: the products are in registers and the words on the read ports; update.
        # (The register after the multiplier keeps it out of the update's path.)
        c_valid, c_row, c_chunk = Signal(), Signal.like(row), Signal.like(chunk)
        c_address, c_t_address = Signal.like(address), Signal.like(t_address)
        m.d.sync += [
            c_valid.eq(b_valid),
            c_row.eq(b_row),
            c_chunk.eq(b_chunk),
            c_address.eq(b_address),
            c_t_address.eq(b_t_address),
        ]
        w_words, t_words, w_events, t_events = [], [], [], []
        w_enables, t_enables = [], []
        zero = Const(0, signed(arith.current_width))
        if self.fetch:
            pres = [Signal(signed(arith.current_width), name=f"pre{e}") for e in range(geo.segment)]
            m.d.sync += [
                pres[e].eq(idle_zero(issuing, self.fetched_pre[e])) for e in range(geo.segment)
            ]
        else:
            pres = [
                Array(self.pre[c] if c is not None else zero for c in self.lane_columns(e))[b_chunk]
                for e in range(geo.segment)
            ]
        for lane in range(lanes):
            # Lane `lane` holds synapse (row group's row `line`, chunk's column `offset`).
            line, offset = divmod(lane, geo.segment)
            padding = line >= geo.span  # past the word's last whole row: never a synapse
            post = zero if padding else posts[line]
            pre = zero if padding else pres[offset]
            columns = self.lane_columns(offset)
            if padding:
                row_ok = Const(0)
            else:
                row_ok = Array(Const(r is not None) for r in self.post_rows(line))[c_row]
            in_w = row_ok & Array(Const(c is not None) for c in columns)[c_chunk]
            if self.external_multipliers:
                if not self.fetch:  # picked from the vectors, not from cleared registers
                    post, pre = idle_zero(b_valid, post), idle_zero(b_valid, pre)
                m.d.comb += [self.mul_a[lane].eq(post), self.mul_b[lane].eq(pre)]
                product = self.mul_product[lane]
            else:
                product = Signal(signed(2 * arith.current_width), name=f"product{lane}")
                m.d.sync += product.eq(post * pre)
            old = self.w.rdata[lane * ww : (lane + 1) * ww].as_signed()
            if self.rule == "covariance":
                width = max(2 * arith.current_width, ww + self.align) + 2
                error = Signal(signed(width), name=f"error{lane}")
                m.d.comb += error.eq(product - (old << self.align))
                amount = self.align + self.rate_shift
                if stochastic:
                    addend = ahead[lane] & ((Const(1, 33) << amount) - 1)
                else:
                    addend = Mux(amount == 0, 0, (Const(1, 33) << amount) >> 1)
                change = (error + addend) >> amount
                new, event = saturate(named(m, old + change, f"updated{lane}"), ww)
            else:
                if stochastic:
                    change = shift_round_stochastic(product, shift, ahead[lane])
                else:
                    change = shift_round_nearest(product, shift)
                new, event = self.saturate(named(m, old - change, f"updated{lane}"), ww)
            # A lane outside W (padding, or past the last row or column) is not written: its
            # lane write enable is off, so no multiplexer keeps the old value.
            w_words.append(new)
            w_enables.append(in_w)
            w_events.append(in_w & event)
            if self.copy_rows is not None:
                in_copy = [c is not None and c < self.copy_rows for c in columns]
                in_t = row_ok & Array(Const(ok) for ok in in_copy)[c_chunk]
                old_t = self.wt.rdata[lane * ww : (lane + 1) * ww].as_signed()
                new_t, event_t = saturate(named(m, old_t - change, f"updated_copy{lane}"), ww)
                t_words.append(new_t)
                t_enables.append(in_t)
                t_events.append(in_t & event_t)
        # Stage D: write the updated words back from registers (the update's saturating
        # subtract then ends at a register, not at the memory's write port; the next word
        # read is always another address, so nothing reads a word being written).
        d_valid, d_address = Signal(), Signal.like(address)
        w_data = Signal(self.geometry.word_width, name="w_data")
        w_lanes = Signal(lanes, name="w_lanes")
        m.d.sync += [
            d_valid.eq(c_valid),
            d_address.eq(c_address),
            w_data.eq(Cat(*(word[:ww] for word in w_words))),
            w_lanes.eq(Cat(*w_enables)),
        ]
        m.d.comb += [
            self.w.waddr.eq(d_address),
            self.w.wdata.eq(w_data),
            self.w.we.eq(d_valid.replicate(lanes) & w_lanes),
        ]
        if self.copy_rows is not None:
            # W's last chunk may hold only the bias column, which has no row in the copy.
            d_t_address, d_in_copy = Signal.like(t_address), Signal()
            t_data = Signal(self.geometry.word_width, name="t_data")
            t_lanes = Signal(lanes, name="t_lanes")
            m.d.sync += [
                d_t_address.eq(c_t_address),
                d_in_copy.eq(c_chunk < self.copy_geometry.outer),
                t_data.eq(Cat(*(word[:ww] for word in t_words))),
                t_lanes.eq(Cat(*t_enables)),
            ]
            m.d.comb += [
                self.wt.waddr.eq(d_t_address),
                self.wt.wdata.eq(t_data),
                self.wt.we.eq((d_valid & d_in_copy).replicate(lanes) & t_lanes),
            ]
        if stochastic:
            # The word's synapses are its first lanes, in row-major order: one draw each.
            if geo.span > 1:
                per_row = [min(geo.span, self.rows - o * geo.span) for o in range(geo.outer)]
                valid_lanes = Array(Const(n * self.cols) for n in per_row)[c_row]
            else:
                seg = geo.segment
                per_chunk = [min(seg, self.cols - k * seg) for k in range(geo.inner)]
                valid_lanes = Array(Const(n) for n in per_chunk)[c_chunk]
            m.d.comb += advance.eq(Mux(c_valid, valid_lanes, 0))
        # Saturation flags are registered with the words they belong to and counted in stage
        # D: the lanes' sum then starts at flip-flops, not after the memory read, the update
        # and its clamp (on the routed digits system that was the critical path).
        for counter, now, events, label in (
            (self.sat_count, self.sat_events, w_events, "w_saturated"),
            (self.sat_copy_count, self.sat_copy_events, t_events, "t_saturated"),
        ):
            if events:
                flags = Signal(len(events), name=label)
                m.d.sync += flags.eq(Mux(c_valid, Cat(*events), 0))
                count = balanced_sum(list(flags))
                m.d.comb += now.eq(count)
                m.d.sync += counter.eq(clamp_unsigned(counter + count, COUNTER_WIDTH))
        if self.external_multipliers:
            m.d.comb += self.mul_valid.eq(b_valid)
        m.d.comb += [
            self.busy.eq(issuing | b_valid | c_valid | d_valid),
            self.issuing.eq(issuing),
            self.ending.eq(issuing & (address == geo.depth - 1)),
            self.done.eq(d_valid & (d_address == geo.depth - 1)),
        ]
        return m
