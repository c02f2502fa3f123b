"""The memory-centric core's lanes: one multiplier, accumulator and population step per lane,
in a pipeline behind the sequencer (:class:`hw.microsequencer.MicroSequencer`).

====== ======================================================================================
stage  what happens to a slot
====== ======================================================================================
1      the memories' words arrive: each lane's multiplier operands are registered (a weight
       and a source element; a post- and a pre-synaptic element; or 1.0 and a current, so
       that gathers, relays and steps pass the same multipliers)
2      the products are registered (with stage 1's, the iCE40 DSP's own registers)
3      accumulate (per lane, or one adder tree for a row); a learning rule registers its
       products shifted and their rounding carries (a covariance rule: its changes)
4      round and saturate what leaves the accumulators (registered); a learning rule takes
       its changes from its word of weights (registered); a step's mask word is read
5      write back: a buffer block, a mask word, the output, a learning rule's word; a
       population step's two terms (the leaked current, the gated drive times the gain) or a
       copy's or a leak's block are registered for the state memory
6      the state memory's write-back: the two terms summed and saturated
====== ======================================================================================

Above :data:`hw.microcode.OPERAND_LANES` multipliers a stage 1b sits between 1 and 2: the
memories' words registered as they arrive, and the operands chosen from those registers (an
ECP5 block RAM's clock-to-out and a wide word's multiplexers were one path).

Above :data:`hw.microcode.TREE_LANES` multipliers a stage 2b sits between 2 and 3: a row's
products summed in groups of eight (registered), the other slots' products passed through a
register, so that a wide plan's adder tree is two short ones; above 8 a stage 2c sums the
group sums in eights again, and so on until one sum is left (:func:`hw.microcode.tree_levels`);
stages 3 to 5 are a clock later a level (:func:`hw.microcode.pipeline_depth`), but for a
learning rule's: it takes its products as they leave the multipliers and writes its word at
:func:`hw.microcode.learn_write`, so that only the element lanes' products wait for the tree.

A step was one path at stage 5 (z's sign, the mask, the gain's adders, the leak, the
saturating sum, the state memory's write data): the critical one on both families. Split at
its two terms it costs a stage more for the state memory only, which the micro-code's
timeline waits for where a later read needs it (1 to 13 clocks a digits sample).
"""

from __future__ import annotations

import functools
import operator

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from golden_model.choices import Rounding
from golden_model.fixed import max_code

from .arithmetic import Arithmetic
from .fixedpoint import (
    adder_tree,
    balanced_sum,
    prefix_mask,
    saturate,
    shift_round_nearest,
)
from .microcode import DEPTH, TREE_GROUP, Dest, operand_stages, pipeline_depth, tree_levels
from .microsequencer import Slot, slot_layout
from .multipliers import RegisteredMultiplier, register_copies
from .population import drive_term, leak_term
from .ports import block_write, word_write

__all__ = ["LanePipeline", "REPLICA_GROUP", "STAGES"]

#: Multipliers that share a copy of the operand selects and the broadcast element (above
#: stage 1b).
REPLICA_GROUP = 8

#: Stages behind the issuing one without a split tree (:data:`hw.microcode.DEPTH`).
STAGES = DEPTH


def _extended(value, width: int) -> Value:
    """A signed ``value`` sign-extended to ``width`` bits (as plain bits)."""
    value = Value.cast(value).as_signed()
    return Cat(value, value[-1].replicate(width - len(value)))


def step_sum(m: Module, base, addend, width: int, name: str) -> tuple[Value, Value]:
    """A population step's write-back (stage 6): ``base + addend`` saturated to ``width``
    bits in this clock, and whether it clamped **a clock later**, decided from the sum's
    registered top bits (after the sum's carry chain its bit tests were the iCE40's critical
    path; :data:`hw.microcode.COUNT` counts the clock).

    ``base`` is a current, leaked or not (within ``+-(2**(width-1) - 1)``: every current is
    written saturated, and a leak keeps its sign and shrinks it), ``addend`` a gained drive
    (never negative) or zero: the sum is never below the range, so only its top clamps and
    no test looks at the bottom. ``sim.formal``'s ``step-sum-saturates`` proves the clamp
    and the event against the exact sum, both sides, for every current and drive."""
    base, addend = Value.cast(base), Value.cast(addend)
    total = Signal(signed(max(len(base), len(addend)) + 2), name=name)
    m.d.comb += total.eq(base + addend)
    over = ~total[-1] & total[width - 1 : -1].any()
    clamped = Mux(over, Const(max_code(width), signed(width)), total[:width].as_signed())
    top = Signal(len(total) - width + 1, name=f"{name}_top")
    m.d.sync += top.eq(total[width - 1 :])
    return clamped.as_signed(), ~top[-1] & top[:-1].any()


class SplitAccumulator:
    """An accumulator ``width`` bits wide in two halves, the low half's carry registered into
    the high half's next addition: two carry chains of half the length (a 41-bit chain was the
    iCE40's critical path).

    The halves split where the rounded sum's saturation looks: the low half holds the
    ``shift`` rounding bits and the ``width_out - 1`` bits below the sign of the result, the
    high half the rest. The last addition's carry is still pending when the sum is read;
    :meth:`rounded` takes it into account without adding it (no third chain): the result's
    tests need only the high half's few patterns that a carry changes (zero, -1, -2)."""

    def __init__(self, width: int, start: int, shift: int, width_out: int) -> None:
        self.shift, self.width_out = shift, width_out
        self.low_width = shift + width_out - 1
        self.high_width = width - self.low_width
        assert self.high_width >= 2 and 0 <= start < 1 << self.low_width
        self.start = start  # the value a sum starts from
        self.low = Signal(self.low_width, name="acc_low")
        self.carry = Signal(name="acc_carry")
        self.high = Signal(signed(self.high_width), name="acc_high")

    def add(self, m: Module, addend, first) -> None:
        """Add ``addend`` (signed, narrower than ``width``) at this clock's edge; ``first``:
        to :attr:`start` instead of the sum so far."""
        low, high_width = self.low_width, self.high_width
        addend = Value.cast(addend).as_signed()
        upper = Signal(signed(high_width), name="acc_addend_high")
        m.d.comb += upper.eq(addend >> low)  # sign-extended
        low_sum = Signal(low + 1, name="acc_low_sum")
        m.d.comb += low_sum.eq(Mux(first, self.start, self.low) + addend[:low])
        # high + upper + carry in one chain: the carry enters as the sum of two low bits
        base = Mux(first, 0, self.high)
        carry_in = self.carry & ~first
        high_sum = Signal(signed(high_width), name="acc_high_sum")
        m.d.comb += high_sum.eq((Cat(Const(1, 1), base) + Cat(carry_in, upper))[1 : high_width + 1])
        m.d.sync += [
            self.low.eq(low_sum[:low]),
            self.carry.eq(low_sum[low]),
            self.high.eq(high_sum),
        ]

    def rounded(self) -> tuple[Value, Value, Value, Value]:
        """``(out, value, saturated, positive)`` of the sum shifted right by ``shift``:
        its low ``width_out + 1`` bits (unsaturated), the value saturated to ``width_out``
        bits (:func:`~hw.fixedpoint.saturate`'s symmetric range), whether it clamped, and
        whether the sum is above zero."""
        cw, c, high = self.width_out, self.carry, self.high
        below = self.low[self.shift :]  # the result's bits below its sign bit: final
        low_any = below.any()
        # the rest of the result is hs = high + carry: its tests from high's few patterns
        negative, zero, m1 = high[-1], ~high.any(), high.all()
        m2 = high[1:].all() & ~high[0]
        hs_positive = ~negative & (~zero | c)
        hs_negative = negative & ~(m1 & c)
        hs_m1 = (m1 & ~c) | (m2 & c)
        hs_zero = (zero & ~c) | (m1 & c)
        over = hs_positive
        under = hs_negative & (~hs_m1 | ~low_any)
        top = max_code(cw)
        plain = Cat(below, self.high[0] ^ c).as_signed()
        value = Mux(over, Const(top, signed(cw)), Mux(under, Const(-top, signed(cw)), plain))
        two = (self.high[:2] + c)[:2]
        out = Cat(below, two).as_signed()
        positive = hs_positive | (hs_zero & low_any)
        return out, value.as_signed()[:cw].as_signed(), over | under, positive


class LanePipeline(wiring.Component):
    """Stages 1 to 4 of the memory-centric core, ``lanes`` wide.

    Parameters
    ----------
    arith : Arithmetic
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
    simd : int, optional
        Multipliers (a multiple of ``lanes``; ``lanes`` unless given): a sweep by rows
        multiplies ``simd`` weights by ``simd`` source elements into one adder tree, a
        learning rule updates ``simd`` weights a clock; the element-wise slots (gathers,
        steps, sweeps by columns) use the first ``lanes``, a sweep by columns takes its
        weights from part ``slot.part`` of the word.
    whole_words : bool
        The weight memory's word has one write enable (:attr:`weight_write`).
    banked : bool
        The weights come from banks (:class:`hw.weight_memory.WeightMemory`), a clock after
        the other memories' words: those wait a register for them, and every stage from the
        operands on is a clock later (:func:`hw.microcode.operand_stages`). ``state_zero``
        then comes a clock after ``state_data`` too (the state memory's ``late_zero``).

    Attributes
    ----------
    slot : In(slot_layout)
        The slot the sequencer issues (stage 0).
    state_data, post_data : In(ArrayLayout(signed(current_width), lanes))
    src_data : In(ArrayLayout(signed(current_width), simd))
    weight_data : In(ArrayLayout(signed(weight_width), simd))
    state_zero : In(1)
        ``state_data`` reads as zero (its group's flag): the multipliers' other operand is
        then zero, so the flag's lookup stays off the data's path.
    mask_data : In(lanes)
        The memories' read data, a clock after the address (stage 1; the weights at stage 2
        for a learning rule, held to stage 3; the mask word at stage 5).
    weight_learn_addr : Out, weight_learn : Out(1)
        A learning rule reads its word of weights here at stage 1.
    mask_addr : Out
        The mask word of the slot in stage 4.
    state_write : Out(:func:`hw.ports.block_write`)
        A step's, a copy's or a leak's block into the state memory (stage 6).
    weight_write : Out(:func:`hw.ports.word_write`)
        A rule's word of ``simd`` weights (stage 5): one enable for the whole word
        (``whole_words``: the lanes past the rule's row written back as they were read), or
        one a weight (the rule's row's).
    buffer_write_addr, buffer_write_data, buffer_write_lanes : Out, buffer_post : Out(1)
        A gathered block into the source buffer (``simd`` elements a row: the block in its
        part), or into the post-synaptic one (its first ``lanes``).
    mask_write_addr, mask_write_data, mask_write : Out
    output : Out(ArrayLayout(signed(current_width + 1), output_size))
    samples : In(32)
        Samples completed (the covariance rule's rate).
    random : In(ArrayLayout(unsigned(32), simd)), random_advance : Out(range(simd + 1))
        The LFSR states 1 to ``simd`` steps on; the steps a rule's word draws.
    current_events : Out(2 * lanes), weight_events, copy_events : Out(simd)
        Saturation events, registered: a step's two clocks after its write; a rule's a
        clock after its word's write.
    """

    def __init__(
        self,
        arith: Arithmetic,
        lanes: int,
        row_bits: int,
        *,
        output_size: int,
        widest: int,
        rules: set[str],
        simd: int | None = None,
        whole_words: bool = False,
        banked: bool = False,
    ) -> None:
        self.arith, self.lanes, self.output_size, self.rules = arith, lanes, output_size, rules
        self.banked, self.whole_words = banked, whole_words
        self.simd = simd = lanes if simd is None else simd
        if simd < lanes or simd % lanes:
            raise ValueError(f"simd must be a multiple of lanes ({lanes}), got {simd}")
        cw, ww = arith.current_width, arith.weight_width
        self.a_width = max(cw, ww)  # +-1.0, a weight or a current: one 16 x 16 iCE40 DSP
        self.acc_width = self.a_width + cw + ceil_log2(widest + 1) + 2
        currents = data.ArrayLayout(signed(cw), lanes)
        sources = data.ArrayLayout(signed(cw), simd)
        weights = data.ArrayLayout(signed(ww), simd)
        super().__init__(
            {
                "slot": In(slot_layout(lanes, row_bits, simd)),
                "state_data": In(currents),
                "state_zero": In(1),
                "src_data": In(sources),
                "post_data": In(currents),
                "weight_data": In(weights),
                "mask_data": In(lanes),
                "weight_learn_addr": Out(row_bits),
                "weight_learn": Out(1),
                "mask_addr": Out(row_bits),
                "state_write": Out(block_write(row_bits, lanes, cw)),
                "weight_write": Out(word_write(row_bits, weights, 1 if whole_words else simd)),
                "buffer_write_addr": Out(row_bits),
                "buffer_write_data": Out(sources),
                "buffer_write_lanes": Out(simd),
                "buffer_post": Out(1),
                "mask_write_addr": Out(row_bits),
                "mask_write_data": Out(lanes),
                "mask_write": Out(1),
                "output": Out(data.ArrayLayout(signed(cw + 1), max(output_size, 1))),
                "samples": In(32),
                "random": In(data.ArrayLayout(unsigned(32), simd)),
                "random_advance": Out(range(simd + 1)),
                "current_events": Out(2 * lanes),
                "weight_events": Out(simd),
                "copy_events": Out(simd),
            }
        )

    def elaborate(self, platform):
        m = Module()
        arith, lanes, simd = self.arith, self.lanes, self.simd
        cw = arith.current_width
        banked = int(self.banked)  # the weights' extra clock (their banks' registers)
        stages = pipeline_depth(simd, self.banked)
        early = operand_stages(simd, self.banked)  # stage 1b (1c): the words registered
        levels = tree_levels(simd)  # stages 2b, 2c, ...: the row's adder tree cut by registers
        tags = [self.slot] + [
            Signal.like(self.slot, name=f"stage{n}") for n in range(1, stages + 1)
        ]
        for n in range(stages):
            m.d.sync += tags[n + 1].eq(tags[n])
        # the valid lanes' masks from the sequencer's counts, entering stage 2 (read from 3)
        m.d.sync += [
            tags[2].valid.eq(prefix_mask(tags[1].left, simd)),
            tags[2].valid2.eq(prefix_mask(tags[1].left2, simd)),
        ]
        self.tags = tags
        t3, t4, t5 = tags[-4:-1]  # accumulate, round, write back (stage 6: the state's)
        # A learning rule reads its weights at stage 1 and holds the word a clock, so that its
        # arithmetic at stage 3 starts from a register, not from the memory's output (the
        # micro-code keeps sweeps off the weights' port meanwhile).
        read = tags[1]
        m.d.comb += [
            self.weight_learn.eq(read.op == Slot.LEARN),
            self.weight_learn_addr.eq(read.row),
        ]
        self.held_word = Signal.like(self.weight_data)
        word = self.weight_data
        for level in range(early - banked):  # the rule a stage later: the word waits
            waiting = Signal.like(self.weight_data, name=f"waiting{level}")
            m.d.sync += waiting.eq(word)
            word = waiting
        m.d.sync += self.held_word.eq(word)

        # stage 1: operands. Currents pass the multipliers as 1.0 in weight units: every
        # block then leaves the accumulators through one rounding (exact for them) and one
        # saturation per lane.
        # The operands of each multiplier, registered in it (RegisteredMultiplier: the DSP's
        # own registers on the iCE40 and the ECP5), every clock: zero where it is idle.
        mul_a = [Signal(signed(self.a_width), name=f"operand_a{k}") for k in range(simd)]
        mul_b = [Signal(signed(cw), name=f"operand_b{k}") for k in range(simd)]
        one = 1 << arith.weight_frac
        src, state, zero = self.src_data, self.state_data, self.state_zero
        post, weights = self.post_data, self.weight_data
        # the broadcast element (a sweep by columns' source, a rule's post-synaptic factor),
        # picked where the other words wait for banked weights
        for level in range(early - 1):
            post = self._registered(m, post, f"post{level}")
        post_element = Array(post[k] for k in range(lanes))[tags[max(early, 1)].lane]
        # What every multiplier reads (the selects below, the broadcast element) is
        # registered once a group of eight multipliers above stage 1b: one flip-flop had
        # driven 16 LUTs a multiplier (hw.multipliers.register_copies).
        copies = -(-simd // REPLICA_GROUP) if early else 1
        post_elements = [post_element]
        if early:  # the words registered as they leave the memories (stage 1b); the
            # broadcast element picked before its registers, so that they drive the
            # multipliers (the pick behind one, routed to 32 of them, was 8 x 32's path at
            # 85 MHz: 11.27 ns, 9.25 of it routing)
            for level in range(early):
                src, state = (
                    self._registered(m, value, f"{name}{level or ''}")
                    for value, name in ((src, "src"), (state, "state"))
                )
            for level in range(early - banked):  # banked: the flag comes a clock later
                zero = self._registered(m, zero, f"zero{level or ''}")
            for level in range(early - banked):
                weights = self._registered(m, weights, f"weights{level or ''}")
            post_elements = [
                copy.as_signed()
                for copy in register_copies(m, platform, post_element, copies, "post_element")
            ]

        fold = simd // lanes
        # The slot's kind (and a sweep by columns' part) decoded a stage ahead into one-hot
        # selects: the operands are then an AND-OR of registered bits and the words. Decoded
        # at this stage, the kind was six LUTs ahead of the route to all the multipliers
        # (digits at 8 x 32 with the ECP5's registered multipliers: 11.37 ns, 88 MHz).
        ahead = tags[early]
        selects = data.StructLayout(
            {
                "element": 1,  # a gather or a step: +-1.0 (or 0) times a current
                "negate": 1,  # a gathered part enters negated
                "rows": 1,
                "learn": 1,
                "part": fold,  # a sweep by columns: its part of the word
                "no_src": 1,  # neither rows nor a rule: the source operands are zero
            }
        )
        decoded = Signal(selects, name="decoded")
        m.d.comb += [
            decoded.element.eq((ahead.op == Slot.GATHER) | (ahead.op == Slot.STEP)),
            decoded.negate.eq((ahead.op == Slot.GATHER) & ahead.neg),
            decoded.rows.eq(ahead.op == Slot.ROWS),
            decoded.learn.eq(ahead.op == Slot.LEARN),
            decoded.no_src.eq((ahead.op != Slot.ROWS) & (ahead.op != Slot.LEARN)),
            decoded.part.eq(Mux(ahead.op == Slot.COLS, 1 << ahead.part, 0)),
        ]
        select_copies = [
            data.View(selects, copy)
            for copy in register_copies(m, platform, decoded, copies, "select")
        ]
        # an element's factor (the element lanes: the first group's selects)
        unit = Mux(zero, 0, Mux(select_copies[0].negate, -one, one))

        def any_of(width: int, terms: list[tuple[Value, Value]]) -> Value:
            """The value of the one term whose select is high (zero if none)."""
            picked = [Mux(chosen, value, 0) for chosen, value in terms]
            total = Signal(signed(width), name="picked")
            m.d.comb += total.eq(functools.reduce(operator.or_, picked))
            return total

        for k in range(simd):
            group = k // REPLICA_GROUP if early else 0
            select, post_element = select_copies[group], post_elements[group]
            word = select.rows | select.part[0] if k < lanes else select.rows
            a_terms = [(word, weights[k]), (select.learn, post_element)]
            b_terms = [(select.rows | select.learn, src[k])]
            if k < lanes:  # the element-wise slots take the first ``lanes``
                a_terms += [(select.part[p], weights[p * lanes + k]) for p in range(1, fold)]
                a_terms.append((select.element, unit))
                b_terms += [(select.element, state[k]), (select.part.any(), post_element)]
            m.d.comb += mul_a[k].eq(any_of(self.a_width, a_terms))
            if k < lanes:
                m.d.comb += mul_b[k].eq(any_of(cw, b_terms))
            else:  # the source or zero: the multiplier's register clears (no AND)
                m.d.comb += mul_b[k].eq(src[k])

        # stage 2: products
        products = []
        for k in range(simd):
            m.submodules[f"multiplier{k}"] = multiplier = RegisteredMultiplier(self.a_width, cw)
            m.d.comb += [multiplier.a.eq(mul_a[k]), multiplier.b.eq(mul_b[k])]
            if k >= lanes:
                m.d.comb += multiplier.clear_b.eq(select_copies[k // REPLICA_GROUP].no_src)
            products.append(multiplier.p)

        # A learning rule takes its products as they leave the multipliers (stage 3 of a
        # pipeline without tree levels: hw.microcode.learn_write): only the element lanes'
        # products wait for the row's tree (digits at 16 x 64: 3,712 flip-flops fewer).
        learned = products
        products = products[:lanes]
        row_terms = list(learned)
        for level in range(levels):  # a level: groups of eight summed; the rest a clock later
            delayed = [Signal.like(p, name=f"delayed{level}_{k}") for k, p in enumerate(products)]
            m.d.sync += [d.eq(p) for d, p in zip(delayed, products, strict=True)]
            groups = [row_terms[g : g + TREE_GROUP] for g in range(0, len(row_terms), TREE_GROUP)]
            width = max(len(Value.cast(t)) for t in row_terms) + ceil_log2(TREE_GROUP)
            partial = [
                Signal(signed(width), name=f"partial{level}_{n}") for n in range(len(groups))
            ]
            for n, (sums, group) in enumerate(zip(partial, groups, strict=True)):
                m.d.sync += sums.eq(adder_tree(m, group, f"tree{level}_{n}"))
            products, row_terms = delayed, partial

        # stage 3: accumulate; learn; a step's mask word. An accumulator starts from half an
        # output step, not zero, so that stage 4's rounding half up is a shift: no carry chain
        # there (floor((sum + half) / 2**weight_frac) either way).
        wf = arith.weight_frac
        half = (1 << (wf - 1)) if wf else 0
        accumulators = [SplitAccumulator(self.acc_width, half, wf, cw) for _ in range(lanes)]
        with m.Switch(t3.op):
            with m.Case(Slot.GATHER, Slot.COLS, Slot.STEP):
                for k in range(lanes):
                    accumulators[k].add(m, products[k], t3.first)
            with m.Case(Slot.ROWS):
                # a few products (no tree levels) merge with the accumulator's add; the
                # group sums of a wide tree are kept adds (carry chains, not full adders)
                row_sum = adder_tree(m, row_terms, "row_sum") if levels else balanced_sum(row_terms)
                accumulators[0].add(m, row_sum, t3.first)
        self._learn(m, tags[3 + early], tags[4 + early], learned)

        # stage 4: round and saturate, registered (the accumulators' carry chains and the
        # steps' would otherwise be one path into the state memory)
        m.d.comb += self.mask_addr.eq(t4.mrow)
        out = Signal(data.ArrayLayout(signed(cw + 1), lanes))  # plus - minus: one bit more
        value = Signal(data.ArrayLayout(signed(cw), lanes))
        saturated, positive = Signal(lanes), Signal(lanes)
        for k in range(lanes):
            # rounded: the half is in the sum
            wide, clamped, event, above = accumulators[k].rounded()
            m.d.sync += [
                out[k].eq(wide),
                value[k].eq(clamped),
                saturated[k].eq(event),
                # a capture's sum: currents, whole multiples of 2**weight_frac, so it is
                # above zero exactly when its rounding is
                positive[k].eq(above),
            ]

        # stages 5 and 6: write back
        self._write_back(m, t5, out, value, saturated, positive)
        return m

    @staticmethod
    def _registered(m: Module, value, name: str):
        """``value`` a clock later, in a register without reset (a memory's word)."""
        held = Signal.like(value, name=f"{name}_held", reset_less=True)
        m.d.sync += held.eq(value)
        return held

    def _learn(self, m: Module, t3, t4, products) -> None:
        """Stage 3 of a learning slot: the rule on a word of weights, written back at once.

        Hebbian: ``W - round(post pre >> update_shift)``; covariance: ``K + round((post pre -
        K 2**align) >> (align + rate_shift))``, the rate halving at every power of two of the
        sample count. Stochastic rounding takes lane ``k``'s addend from the LFSR state ``k + 1``
        steps on, and steps it once per weight of the word (its valid lanes: a prefix)."""
        arith, lanes, ww = self.arith, self.simd, self.arith.weight_width  # a rule a multiplier
        stochastic = arith.rounding == Rounding.STOCHASTIC
        covariance, hebbian = "covariance" in self.rules, "hebbian" in self.rules
        shift = arith.update_shift
        ahead = self.random
        draws = Signal()
        if covariance:
            align = 2 * arith.current_frac - arith.weight_frac
            t, log2 = Signal(33), Signal(range(34))
            m.d.comb += t.eq(self.samples + 1)
            for bit in range(33):  # eta_t = 2^-floor(log2 t), floored at 2^-shift
                with m.If(t[bit]):
                    m.d.comb += log2.eq(bit)
            limit = arith.learning_rate_shift
            amount = Signal(range(align + limit + 1))
            m.d.comb += amount.eq(align + Mux(log2 > limit, limit, log2))
            m.d.comb += draws.eq(Mux(t3.covariance, amount != 0, shift != 0))
        else:
            m.d.comb += draws.eq(shift != 0)
        # The rule's change is registered at stage 3 and the new word at stage 4, written at
        # stage 5: the products' rounding and the saturating add would otherwise be one path
        # (two carry chains) from the multiplier into the weights. The change is clamped to
        # two bits more than a weight first: any larger one saturates the weight all the same.
        old = Signal.like(self.held_word)  # the word the rule read, a stage on
        m.d.sync += old.eq(self.held_word)
        wide = ww + 2
        changes = [Signal(signed(wide), name=f"change{k}") for k in range(lanes)]
        # Hebbian: the product's shifted bits and its rounding's carry (registered), so that
        # ``old - round(p >> shift)`` is one carry chain at stage 4 with the carry as its
        # borrow, not a rounding adder, a clamp and a subtraction (a rule a multiplier:
        # the largest logic of a wide fold).
        width = len(Value.cast(products[0])) - shift
        shifted = [Signal(signed(width), name=f"shifted{k}") for k in range(lanes)]
        carries = Signal(lanes, name="round_carries")
        with m.If(t3.op == Slot.LEARN):
            for k in range(lanes):
                # a lane past the row's end changes nothing: its weight is written back
                if covariance:
                    m.d.sync += changes[k].eq(0)
                if hebbian:
                    m.d.sync += [shifted[k].eq(0), carries[k].eq(0)]
                with m.If(t3.valid[k]):
                    if hebbian:
                        product = Value.cast(products[k])
                        if not shift:
                            carry = Const(0, 1)
                        elif stochastic:  # floor((p + r) / 2**s): p's low bits' carry
                            carry = (product[:shift] + ahead[k][:shift])[shift]
                        else:  # floor((p + 2**(s-1)) / 2**s): the bit below the shift
                            carry = product[shift - 1]
                        m.d.sync += [shifted[k].eq(product[shift:]), carries[k].eq(carry)]
                    if covariance:
                        error_width = max(2 * arith.current_width, ww + align) + 2
                        error = Signal(signed(error_width), name=f"error{k}")
                        m.d.comb += error.eq(products[k] - (self.held_word[k] << align))
                        if stochastic:
                            addend = ahead[k] & ((Const(1, 33) << amount) - 1)
                        else:
                            addend = Mux(amount == 0, 0, (Const(1, 33) << amount) >> 1)
                        with m.If(t3.covariance):
                            change = ((error + addend) >> amount).as_signed()
                            m.d.sync += changes[k].eq(saturate(change, wide)[0])
            if stochastic:
                m.d.comb += self.random_advance.eq(Mux(draws, balanced_sum(list(t3.valid)), 0))
        # The new weight before its saturation is registered at stage 4 and saturated on its
        # way into the memory at stage 5: the subtraction and the clamp were one path (the
        # iCE40's critical one) into the word's register and the events'.
        sums = [Signal(signed(max(wide, width) + 2), name=f"unclamped{k}") for k in range(lanes)]
        valid2 = Signal(lanes)
        written = Signal(lanes, name="weight_written")  # the rule's row's lanes
        m.d.sync += written.eq(0)
        with m.If(t4.op == Slot.LEARN):
            m.d.sync += [
                self.weight_write.addr.eq(t4.row),
                written.eq(t4.valid),
                valid2.eq(t4.valid2),
            ]
            for k in range(lanes):
                if hebbian:  # (2 old - (2 q + c)) >> 1 = old - q - c: c as the borrow in
                    n = len(sums[k]) + 1
                    total = Cat(Const(0, 1), _extended(old[k], n - 1)) - Cat(
                        carries[k], _extended(shifted[k], n - 1)
                    )
                    m.d.sync += sums[k].eq(total[1:n])
                if covariance:
                    with m.If(t4.covariance):
                        m.d.sync += sums[k].eq(old[k] + changes[k])
        flags = []
        for k in range(lanes):
            new, event = saturate(sums[k], ww)
            m.d.comb += self.weight_write.data[k].eq(new)
            flags.append(event)
        # one enable: any lane of the rule's row (a prefix), the first
        m.d.comb += self.weight_write.en.eq(written[0] if self.whole_words else written)
        # the transposed copy's events: its primary's within the copy's rows. Registered:
        # the clamp's tests and the events' sum were one path (the ECP5's, 10 ns); a tick
        # still waits for the steps' events, which come a stage later.
        m.d.sync += [
            self.weight_events.eq(Cat(*flags) & written),
            self.copy_events.eq(Cat(*flags) & valid2 & written),
        ]

    def _write_back(self, m: Module, t5, out, value, saturated, positive) -> None:
        """Stage 5: a block, a row's ``z`` or a step leaves the pipeline (``value``: rounded
        and saturated, ``saturated`` where it clamped; ``out``: unsaturated, for the readout;
        ``positive``: the block above zero, for a capture). What goes to the state memory
        (a step, a copy, a leak) is registered as two terms and written at stage 6."""
        arith, lanes = self.arith, self.lanes
        cw = arith.current_width
        zbuf = Signal(data.ArrayLayout(signed(cw), lanes))
        events = Signal(lanes)
        # What stage 5 sends to the state memory, decoded from the slot a stage ahead: a
        # step of a STEP slot, a relay's step from zero (its z the block itself), a copy or
        # a leak. These choices head the step's path (z's sign, the gate, the gain).
        t4 = self.tags[-3]
        gathered = (t4.op == Slot.GATHER) & t4.last
        step_slot, fresh_step = Signal(name="step_slot"), Signal(name="fresh_step")
        to_state, leaking = Signal(name="to_state"), Signal(name="leaking")
        m.d.sync += [
            step_slot.eq(t4.op == Slot.STEP),
            fresh_step.eq(gathered & (t4.dest == Dest.STEP) & t4.fresh),
            to_state.eq(gathered & ((t4.dest == Dest.STATE) | (t4.dest == Dest.LEAK))),
            leaking.eq(t4.dest == Dest.LEAK),
        ]
        # The readout's blocks, decoded a stage ahead too: the slot's decode reached the
        # enables of every output register in one path (the iCE40's, 28 ns at 2 lanes).
        blocks = -(-self.output_size // lanes)
        to_output = Signal(blocks, name="to_output")
        m.d.sync += to_output.eq(
            Cat(*(gathered & (t4.dest == Dest.OUT) & (t4.row == b) for b in range(blocks)))
        )
        for b in range(blocks):
            with m.If(to_output[b]):
                for k in range(lanes):
                    if b * lanes + k < self.output_size:
                        m.d.sync += self.output[b * lanes + k].eq(out[k])
        stepping = step_slot | fresh_step
        step_current = [Mux(step_slot, value[k], 0) for k in range(lanes)]
        step_z = [Mux(fresh_step, value[k], zbuf[k]) for k in range(lanes)]
        state_block = self._copy_or_leak(value, leaking)
        with m.Switch(t5.op):
            with m.Case(Slot.GATHER):
                with m.If(t5.last):
                    self._gather_out(m, t5, out, value, saturated, positive, zbuf, events)
            with m.Case(Slot.ROWS):
                with m.If(t5.last):
                    m.d.sync += Array(zbuf[k] for k in range(lanes))[t5.lane].eq(value[0])
                    m.d.comb += events.eq(saturated[0])
            with m.Case(Slot.COLS):
                with m.If(t5.last):
                    m.d.sync += zbuf.eq(value)
                    m.d.comb += events.eq(saturated & t5.valid[:lanes])
        step_events = self._state_write(
            m, t5, stepping, to_state, step_current, step_z, state_block
        )
        # registered before they are summed: a step's event tests and the events' sum were
        # one path (the ECP5's, 10.7 ns; hw.microcode.COUNT counts the clock)
        m.d.sync += self.current_events.eq(Cat(events, step_events))

    def _state_write(self, m: Module, t5, stepping, to_state, current, z, block) -> Value:
        """Stages 5 and 6 of the state memory's writes: a population step per lane
        (:class:`~hw.population.PopulationStep`'s arithmetic, its terms registered before the
        saturating sum), or a copy's or a leak's ``block`` (plus zero). Returns the steps'
        saturation events (stage 6)."""
        arith, lanes = self.arith, self.lanes
        cw = arith.current_width
        write, counted = Signal(name="state_write"), Signal(name="state_counted")
        row = Signal.like(self.state_write.row)
        m.d.sync += [write.eq(stepping | to_state), counted.eq(stepping)]
        # a written block's valid lanes are a prefix that is never empty: lane 0 always is
        valid_above = Signal(lanes - 1, name="state_valid_above")
        m.d.sync += [row.eq(t5.row), valid_above.eq(t5.valid[1:lanes])]
        valid = Cat(Const(1, 1), valid_above)
        flags = []
        for k in range(lanes):
            # [z]+ or [-z]+ by z's sign bit alone (no comparison after the negation)
            negative = Value.cast(z[k])[-1]
            drive = Mux(t5.half, Mux(negative, -z[k], 0), Mux(negative, 0, z[k]))
            gate = ~t5.gated | self.mask_data[k]
            leaked = leak_term(arith, current[k])
            scaled = drive_term(arith, drive[: cw - 1], gate, t5.held)
            base = Signal(signed(max(len(Value.cast(leaked)), cw)), name=f"base{k}")
            addend = Signal(Value.cast(scaled).shape(), name=f"addend{k}")
            with m.If(stepping):
                m.d.sync += [base.eq(leaked), addend.eq(scaled)]
            with m.Else():
                m.d.sync += [base.eq(block[k]), addend.eq(0)]
            clamped, event = step_sum(m, base, addend, cw, f"total{k}")
            m.d.comb += self.state_write.data[k].eq(clamped)
            flags.append(event)
        with m.If(write):
            m.d.comb += [self.state_write.row.eq(row), self.state_write.lanes.eq(valid)]
        events, counting = Signal(lanes), Signal(lanes)
        m.d.sync += counting.eq(valid & counted.replicate(lanes))
        m.d.comb += events.eq(Cat(*flags) & counting)
        return events

    def _copy_or_leak(self, value, leaking) -> list:
        """A gathered block into the state memory as it is (a copy) or leaked in place."""
        shift = self.arith.leak_shift
        if not shift:
            return [value[k] for k in range(self.lanes)]
        return [
            Mux(leaking, value[k] - shift_round_nearest(value[k], shift), value[k])
            for k in range(self.lanes)
        ]

    def _gather_out(self, m: Module, t5, out, value, saturated, positive, zbuf, events) -> None:
        """A gathered block to its destination (into the source buffer: part ``t5.part`` of
        its row of ``simd`` elements)."""
        lanes, simd = self.lanes, self.simd
        valid = t5.valid[:lanes]
        if simd == lanes:
            block = valid
        else:
            block = Cat(*(Mux(t5.part == p, valid, 0) for p in range(simd // lanes)))
        with m.Switch(t5.dest):
            with m.Case(Dest.SRC, Dest.POST):
                m.d.comb += [
                    self.buffer_post.eq(t5.dest == Dest.POST),
                    self.buffer_write_addr.eq(t5.row),
                    self.buffer_write_lanes.eq(Mux(t5.single, 1 << t5.lane, block)),
                    events.eq(saturated & valid),
                ]
                for k in range(simd):
                    element = Mux(t5.single, value[0], value[k % lanes])
                    m.d.comb += self.buffer_write_data[k].eq(element)
            with m.Case(Dest.MASK):
                m.d.comb += [
                    self.mask_write_addr.eq(t5.row),
                    self.mask_write_data.eq(positive & valid),
                    self.mask_write.eq(1),
                ]
            with m.Case(Dest.STEP):  # z of a relay (a fresh one steps it at once)
                m.d.sync += zbuf.eq(value)
                m.d.comb += events.eq(saturated & valid)
