"""The memory-centric core's lanes: one multiplier, accumulator and population step per lane,
in a pipeline behind the sequencer (:class:`hw.microsequencer.MicroSequencer`).

====== ======================================================================================
stage  what happens to a slot
====== ======================================================================================
1      the memories' words arrive: each lane's multiplier operands are registered (a weight
       and a source element; a post- and a pre-synaptic element; or 1.0 and a current, so
       that gathers, relays and steps pass the same multipliers)
2      the products are registered (the iCE40 DSP's own registers)
3      accumulate (per lane, or one adder tree for a row); a learning rule computes its word
       of weights; a step's mask word is read
4      write back: a population step, a buffer block, a copy, a leak, a mask word, the output,
       a learning rule's word
====== ======================================================================================
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from golden_model.choices import Rounding
from golden_model.config import Config

from .fixedpoint import balanced_sum, saturate, shift_round_nearest, shift_round_stochastic
from .microcode import Dest
from .microsequencer import Slot, slot_layout
from .population import PopulationStep

__all__ = ["LanePipeline", "STAGES"]

#: Stages behind the issuing one (:data:`hw.microcode.DEPTH`).
STAGES = 4


class LanePipeline(wiring.Component):
    """Stages 1 to 4 of the memory-centric core, ``lanes`` wide.

    Parameters
    ----------
    cfg : Config
        Formats, shifts, gains and rounding (the steps' :class:`~hw.population.PopulationStep`).
    lanes : int
    row_bits : int
        Width of a slot's row fields and of the write addresses.
    output_size : int
        Elements of the readout.
    widest : int
        The longest sum a lane accumulates (a matrix's rows or columns): the accumulators'
        width.
    rules : set of str
        The learning rules the micro-code uses (``"hebbian"``, ``"covariance"``).

    Attributes
    ----------
    slot : In(slot_layout)
        The slot the sequencer issues (stage 0).
    busy : Out(1)
        Slots are in stages 1 to 4.
    state_data, src_data, post_data : In(ArrayLayout(signed(current_width), lanes))
    weight_data : In(ArrayLayout(signed(weight_width), lanes))
    mask_data : In(lanes)
        The memories' read data, a clock after the address (stage 1; the weights at stage 3
        for a learning rule, the mask word at stage 4).
    weight_learn_addr : Out, weight_learn : Out(1)
        A learning rule reads its word of weights here at stage 2.
    mask_addr : Out
        The mask word of the slot in stage 3.
    state_write_row, state_write_data, state_write_lanes : Out
    weight_write_addr, weight_write_data, weight_write_lanes : Out
    buffer_write_addr, buffer_write_data, buffer_write_lanes : Out, buffer_post : Out(1)
        A gathered block into the source buffer, or the post-synaptic one.
    mask_write_addr, mask_write_data, mask_write : Out
    output : Out(ArrayLayout(signed(current_width + 1), output_size))
    samples : In(32)
        Samples completed (the covariance rule's rate).
    random : In(ArrayLayout(unsigned(32), lanes)), random_advance : Out(range(lanes + 1))
        The LFSR states 1 to ``lanes`` steps on; the steps a rule's word draws.
    current_events : Out(2 * lanes), weight_events, copy_events : Out(lanes)
        Saturation events of this clock.
    """

    def __init__(
        self,
        cfg: Config,
        lanes: int,
        row_bits: int,
        *,
        output_size: int,
        widest: int,
        rules: set[str],
    ) -> None:
        self.cfg, self.lanes, self.output_size, self.rules = cfg, lanes, output_size, rules
        cw, ww = cfg.current_width, cfg.weight_width
        self.a_width = max(cw, ww)  # +-1.0, a weight or a current: one 16 x 16 iCE40 DSP
        self.acc_width = self.a_width + cw + ceil_log2(widest + 1) + 2
        currents = data.ArrayLayout(signed(cw), lanes)
        weights = data.ArrayLayout(signed(ww), lanes)
        super().__init__(
            {
                "slot": In(slot_layout(lanes, row_bits)),
                "busy": Out(1),
                "state_data": In(currents),
                "src_data": In(currents),
                "post_data": In(currents),
                "weight_data": In(weights),
                "mask_data": In(lanes),
                "weight_learn_addr": Out(row_bits),
                "weight_learn": Out(1),
                "mask_addr": Out(row_bits),
                "state_write_row": Out(row_bits),
                "state_write_data": Out(currents),
                "state_write_lanes": Out(lanes),
                "weight_write_addr": Out(row_bits),
                "weight_write_data": Out(weights),
                "weight_write_lanes": Out(lanes),
                "buffer_write_addr": Out(row_bits),
                "buffer_write_data": Out(currents),
                "buffer_write_lanes": Out(lanes),
                "buffer_post": Out(1),
                "mask_write_addr": Out(row_bits),
                "mask_write_data": Out(lanes),
                "mask_write": Out(1),
                "output": Out(data.ArrayLayout(signed(cw + 1), max(output_size, 1))),
                "samples": In(32),
                "random": In(data.ArrayLayout(unsigned(32), lanes)),
                "random_advance": Out(range(lanes + 1)),
                "current_events": Out(2 * lanes),
                "weight_events": Out(lanes),
                "copy_events": Out(lanes),
            }
        )

    def elaborate(self, platform):
        m = Module()
        cfg, lanes = self.cfg, self.lanes
        cw = cfg.current_width
        tags = [self.slot] + [Signal.like(self.slot, name=f"stage{n}") for n in range(1, 5)]
        for n in range(STAGES):
            m.d.sync += tags[n + 1].eq(tags[n])
        t1, t2, t3, t4 = tags[1:]
        m.d.comb += self.busy.eq(Cat(*(t.op != Slot.NONE for t in tags[1:])).any())
        # A learning rule reads its weights at stage 2: its products are ready at stage 3,
        # when it writes (the micro-code keeps sweeps off the weights' port meanwhile).
        m.d.comb += [self.weight_learn.eq(t2.op == Slot.LEARN), self.weight_learn_addr.eq(t2.row)]

        # stage 1: operands. Currents pass the multipliers as 1.0 in weight units: every
        # block then leaves the accumulators through one rounding (exact for them) and one
        # saturation per lane.
        mul_a = Signal(data.ArrayLayout(signed(self.a_width), lanes))
        mul_b = Signal(data.ArrayLayout(signed(cw), lanes))
        one = 1 << cfg.weight_frac
        src, state = self.src_data, self.state_data
        src_element = Array(src[k] for k in range(lanes))[t1.lane]
        post_element = Array(self.post_data[k] for k in range(lanes))[t1.lane]
        for k in range(lanes):
            with m.Switch(t1.op):
                with m.Case(Slot.GATHER):
                    m.d.sync += [mul_a[k].eq(Mux(t1.neg, -one, one)), mul_b[k].eq(state[k])]
                with m.Case(Slot.STEP):
                    m.d.sync += [mul_a[k].eq(one), mul_b[k].eq(state[k])]
                with m.Case(Slot.ROWS):
                    m.d.sync += [mul_a[k].eq(self.weight_data[k]), mul_b[k].eq(src[k])]
                with m.Case(Slot.COLS):
                    m.d.sync += [mul_a[k].eq(self.weight_data[k]), mul_b[k].eq(src_element)]
                with m.Case(Slot.LEARN):
                    m.d.sync += [mul_a[k].eq(post_element), mul_b[k].eq(src[k])]
                with m.Default():  # registered every clock, no enable: the DSP's own registers
                    m.d.sync += [mul_a[k].eq(0), mul_b[k].eq(0)]

        # stage 2: products
        products = Signal(data.ArrayLayout(signed(self.a_width + cw), lanes))
        for k in range(lanes):
            m.d.sync += products[k].eq(mul_a[k] * mul_b[k])

        # stage 3: accumulate; learn; a step's mask word
        acc = Signal(data.ArrayLayout(signed(self.acc_width), lanes))
        with m.Switch(t3.op):
            with m.Case(Slot.GATHER, Slot.COLS, Slot.STEP):
                for k in range(lanes):
                    m.d.sync += acc[k].eq(Mux(t3.first, 0, acc[k]) + products[k])
            with m.Case(Slot.ROWS):
                total = balanced_sum([products[k] for k in range(lanes)])
                m.d.sync += acc[0].eq(Mux(t3.first, 0, acc[0]) + total)
        self._learn(m, t3, products)
        m.d.comb += self.mask_addr.eq(t3.mrow)

        # stage 4: write back
        self._write_back(m, t4, acc)
        return m

    def _learn(self, m: Module, t3, products) -> None:
        """Stage 3 of a learning slot: the rule on a word of weights, written back at once.

        Hebbian: ``W - round(post pre >> update_shift)``; covariance: ``K + round((post pre -
        K 2**align) >> (align + rate_shift))``, the rate halving at every power of two of the
        sample count. Stochastic rounding takes lane ``k``'s addend from the LFSR state ``k + 1``
        steps on, and steps it once per weight of the word (its valid lanes: a prefix)."""
        cfg, lanes, ww = self.cfg, self.lanes, self.cfg.weight_width
        stochastic = cfg.rounding == Rounding.STOCHASTIC
        covariance, hebbian = "covariance" in self.rules, "hebbian" in self.rules
        shift = cfg.update_shift
        ahead = self.random
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
            m.d.comb += draws.eq(Mux(t3.covariance, amount != 0, shift != 0))
        else:
            m.d.comb += draws.eq(shift != 0)
        # The new word is registered and written at stage 4: the memory's output, the rule and
        # the saturation would otherwise be one path back into the memory.
        word = Signal.like(self.weight_write_data)
        m.d.sync += [self.weight_write_lanes.eq(0), self.weight_write_data.eq(word)]
        with m.If(t3.op == Slot.LEARN):
            m.d.sync += [
                self.weight_write_addr.eq(t3.row),
                self.weight_write_lanes.eq(t3.valid),
            ]
            flags = []
            for k in range(lanes):
                old = self.weight_data[k]
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
                m.d.comb += word[k].eq(new)
                flags.append(event)
            # the transposed copy's events: its primary's within the copy's rows
            m.d.comb += [
                self.weight_events.eq(Cat(*flags) & t3.valid),
                self.copy_events.eq(Cat(*flags) & t3.valid2),
            ]
            if stochastic:
                m.d.comb += self.random_advance.eq(Mux(draws, balanced_sum(list(t3.valid)), 0))

    def _write_back(self, m: Module, t4, acc) -> None:
        """Stage 4: a block, a row's ``z`` or a step leaves the accumulators."""
        cfg, lanes = self.cfg, self.lanes
        cw = cfg.current_width
        zbuf = Signal(data.ArrayLayout(signed(cw), lanes))
        events = Signal(lanes)
        shifted = [shift_round_nearest(acc[k], cfg.weight_frac) for k in range(lanes)]
        values = [saturate(shifted[k], cw) for k in range(lanes)]
        stepping = Signal()
        step_current = Signal(data.ArrayLayout(signed(cw), lanes))
        step_z = Signal(data.ArrayLayout(signed(cw), lanes))
        step_events = Signal(lanes)
        self._step_units(m, t4, step_current, step_z, stepping, step_events)
        m.d.comb += self.current_events.eq(Cat(events, step_events))
        with m.Switch(t4.op):
            with m.Case(Slot.GATHER):
                with m.If(t4.last):
                    self._gather_out(m, t4, acc, shifted, values, zbuf, events)
                    with m.If((t4.dest == Dest.STEP) & t4.fresh):  # a relay from zero
                        m.d.comb += stepping.eq(1)
                        for k in range(lanes):
                            m.d.comb += step_z[k].eq(values[k][0])
            with m.Case(Slot.ROWS):
                with m.If(t4.last):
                    z, event = values[0]
                    m.d.sync += Array(zbuf[k] for k in range(lanes))[t4.lane].eq(z)
                    m.d.comb += events.eq(event)
            with m.Case(Slot.COLS):
                with m.If(t4.last):
                    for k in range(lanes):
                        m.d.sync += zbuf[k].eq(values[k][0])
                    m.d.comb += events.eq(Cat(*(e for _, e in values)) & t4.valid)
            with m.Case(Slot.STEP):
                m.d.comb += stepping.eq(1)
                for k in range(lanes):
                    m.d.comb += [step_current[k].eq(values[k][0]), step_z[k].eq(zbuf[k])]
        with m.If(stepping):
            m.d.comb += [self.state_write_row.eq(t4.row), self.state_write_lanes.eq(t4.valid)]

    def _step_units(self, m: Module, t4, current, z, stepping, events) -> None:
        """A population step per lane: ``current`` and the half of ``z`` of ``t4``, gated by
        the mask word read at stage 3, into the state memory's write data."""
        flags = []
        for k in range(self.lanes):
            unit = PopulationStep(self.cfg)
            m.submodules[f"step{k}"] = unit
            signed_drive = Mux(t4.half, -z[k], z[k])
            drive = Mux(signed_drive > 0, signed_drive, 0)
            m.d.comb += [
                unit.current.eq(current[k]),
                unit.drive.eq(drive),
                unit.gate.eq(~t4.gated | self.mask_data[k]),
                unit.held_gain.eq(t4.held),
            ]
            with m.If(stepping):
                m.d.comb += self.state_write_data[k].eq(unit.next)
            flags.append(unit.saturated)
        m.d.comb += events.eq(Cat(*flags) & t4.valid & stepping.replicate(self.lanes))

    def _gather_out(self, m: Module, t4, acc, shifted, values, zbuf, events) -> None:
        """A gathered block to its destination."""
        lanes = self.lanes
        sums = Cat(*(e for _, e in values))
        with m.Switch(t4.dest):
            with m.Case(Dest.SRC, Dest.POST):
                m.d.comb += [
                    self.buffer_post.eq(t4.dest == Dest.POST),
                    self.buffer_write_addr.eq(t4.row),
                    self.buffer_write_lanes.eq(Mux(t4.single, 1 << t4.lane, t4.valid)),
                    events.eq(sums & t4.valid),
                ]
                for k in range(lanes):
                    value = Mux(t4.single, values[0][0], values[k][0])
                    m.d.comb += self.buffer_write_data[k].eq(value)
            with m.Case(Dest.STATE, Dest.LEAK):
                m.d.comb += [self.state_write_row.eq(t4.row), self.state_write_lanes.eq(t4.valid)]
                shift = self.cfg.leak_shift
                for k in range(lanes):
                    value = values[k][0]
                    if shift:
                        value = Mux(
                            t4.dest == Dest.LEAK, value - shift_round_nearest(value, shift), value
                        )
                    m.d.comb += self.state_write_data[k].eq(value)
            with m.Case(Dest.MASK):
                bits = Cat(*(acc[k] > 0 for k in range(lanes)))
                m.d.comb += [
                    self.mask_write_addr.eq(t4.row),
                    self.mask_write_data.eq(bits & t4.valid),
                    self.mask_write.eq(1),
                ]
            with m.Case(Dest.OUT):
                for b in range(-(-self.output_size // lanes)):
                    with m.If(t4.row == b):
                        for k in range(lanes):
                            j = b * lanes + k
                            if j < self.output_size:
                                m.d.sync += self.output[j].eq(shifted[k])
            with m.Case(Dest.STEP):  # z of a relay (a fresh one steps it at once)
                for k in range(lanes):
                    m.d.sync += zbuf[k].eq(values[k][0])
                m.d.comb += events.eq(sums & t4.valid)
