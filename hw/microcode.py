"""The memory-centric core's micro-code: a compiled :class:`~hw.microprogram.Program` as the words
of the instruction ROM its sequencer steps through.

Every instruction is one of a few kinds, each a loop nest that issues one *slot* a clock into
the lanes' pipeline (read -> multiply -> accumulate -> step -> write back):

* ``GATHER``: for each block of a vector, read its signed parts (each through the multipliers
  as ``+-1 x part``, summed per lane), then send the block to its destination: a source buffer,
  the state memory (a copy or a leak), the mask memory (a capture: ``plus - minus > 0``), the
  output registers, or the step of a relay (``STEP``: then one or two step slots follow);
* ``ROWS``: a matrix row by row, a word of ``simd`` weights times ``simd`` source elements a
  clock into one adder tree, its ``z`` into the lane of its row; after each block of ``lanes``
  rows, the step slots of that block of targets;
* ``COLS``: a transposed copy, ``lanes`` targets at a time, one broadcast source element a
  clock (from the post-synaptic buffer) into ``lanes`` accumulators; then the block's step
  slots;
* ``LEARN``: the Hebbian rule over a matrix and its copy, a word of ``simd`` weights a clock;
* ``FLAGS``: set zero flags (clears, the leak of ``alpha = 1``), one clock; before a word
  that issues slots it is folded into that word (``preset``: set in its first clock);
* ``TICK``: set the flags of the tick's leaks, wait for the pipeline to drain, then hold the
  tick's state for the testbench.

``lanes`` is the element lanes (FINN's PE), ``simd`` the multipliers and the weights of a word
(FINN's SIMD): a multiple of ``lanes``, equal to it unless a program is folded wider
(:func:`~hw.microprogram.compile_program`).

Nothing in an instruction's kind depends on the network: its sizes and addresses are fields.
The compiler knows the clock of every read and write (:func:`timeline`), so each word carries
the clocks it must wait before its first slot (``delay``: until what it reads has landed, row
by row), the pipeline never drains but at a tick, and the clocks of a sample follow exactly
(:func:`sample_clocks`, checked against the gateware).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import IntEnum

from amaranth.hdl import unsigned
from amaranth.lib import data
from amaranth.utils import ceil_log2

from golden_model.choices import Rounding
from golden_model.config import Config
from golden_model.schedule import Schedule

from .microprogram import Capture, Clear, Copy, Leak, Learn, Program, Relay, Sweep

__all__ = [
    "Kind",
    "Dest",
    "Word",
    "DEPTH",
    "WRITE",
    "ISSUE",
    "TREE_LANES",
    "OPERAND_LANES",
    "operand_stages",
    "BANK_ROWS",
    "weight_bank_rows",
    "tree_levels",
    "pipeline_depth",
    "learn_write",
    "encode",
    "word_layout",
    "sample_clocks",
    "program_clocks",
    "clock_breakdown",
    "modelled_clocks",
    "reads_flagged",
    "lengths",
    "MemoryMap",
]

#: Pipeline stages behind the issuing one: a slot issued at clock ``t`` writes the state memory
#: at ``t + 6`` (a step's terms are summed a stage after the other writes), its saturation
#: events registered then and counted a clock later.
DEPTH = 6
#: The stage of every other write: the buffers, the masks, the output, a learning rule's
#: weights (a stage before the state memory's).
WRITE = DEPTH - 1
#: Above this many lanes a row's adder tree is cut by registers (a stage more for every slot
#: a level): a tree over 65 products in one stage held a digits system on the ECP5 near 38
#: MHz, one over 8 with the accumulator's adder was the ECP5's critical path at 8 lanes (94.9
#: MHz). Two products' sum ahead of the accumulator's split chains is the iCE40's path at 2
#: lanes (28.4 ns), but cut at 2 lanes the iCEBreaker's digits system took 4,855 cells (92 %)
#: for no faster clock.
TREE_LANES = 4
#: Terms a registered level of a split tree sums (each level a stage).
TREE_GROUP = 8


def tree_levels(lanes: int) -> int:
    """Registered levels of a row's adder tree over ``lanes`` products: none up to
    :data:`TREE_LANES`; above, groups of :data:`TREE_GROUP` summed into registers, level
    after level, until one sum is left for the accumulator. Stopping at four sums left them
    in the accumulator's stage: 16 of them (a 128-multiplier fold) placed a digits system on
    the ECP5 at 41.6 MHz, 4 of them (32 multipliers) were 8 x 32's critical path at 91.2
    MHz."""
    if lanes <= TREE_LANES:
        return 0
    levels, terms = 0, lanes
    while terms > 1:
        terms, levels = -(-terms // TREE_GROUP), levels + 1
    return levels


#: Above this many multipliers the memories' words are registered before the operand
#: multiplexers (a stage more for every slot): an ECP5 block RAM's output has a 5.8 ns
#: clock-to-out, and with a folded word's part pick and the slot's kind behind it, it was the
#: critical path of digits at 8 x 32 (12.77 ns, 78.3 MHz); 8 x 8 met 100 MHz without it.
OPERAND_LANES = 8


def operand_stages(lanes: int, banked: bool = False) -> int:
    """Registered stages between the memories' words and the multipliers' operand
    multiplexers where ``lanes`` multipliers take them: one above :data:`OPERAND_LANES`, and
    one more where the weights are read from banks (:class:`hw.weight_memory.WeightMemory`:
    each bank's word registered before the bank multiplexer; the other memories' words wait
    for it)."""
    return int(lanes > OPERAND_LANES) + int(banked)


def pipeline_depth(lanes: int, banked: bool = False) -> int:
    """Stages behind the issuing one where a row's adder tree sums ``lanes`` products (the
    multipliers: ``simd`` of a folded program): :data:`DEPTH`, one more for each registered
    stage of the operands (:func:`operand_stages`) and one for each registered level of its
    tree (:func:`tree_levels`). The other writes land a stage earlier (:data:`WRITE`), and a
    step reads its mask word a stage before them."""
    return DEPTH + operand_stages(lanes, banked) + tree_levels(lanes)


def learn_write(lanes: int, banked: bool = False) -> int:
    """The stage a learning rule writes its word of weights in, where ``lanes`` multipliers
    sum a row: :data:`WRITE` and the operands' stages (:func:`operand_stages`), not the tree's
    levels, which a rule does not wait for (its products go to it as they leave the
    multipliers)."""
    return WRITE + operand_stages(lanes, banked)


#: Words of a bank of the weight memory where a plan of more than :data:`OPERAND_LANES`
#: multipliers reads it from banks (:class:`hw.weight_memory.WeightMemory`): Yosys packs a
#: wide word's whole-word writes into PDPW16KD blocks of 512 x 36 bits, so a bank is one block
#: deep and nothing stands between a block's output and its bank's register (banks of 1,024
#: put a multiplexer of two blocks there: 400-400-10 at 8 x 32's critical path, 77.9 MHz).
BANK_ROWS = 512


def weight_bank_rows(simd: int, bank_rows: int | None = None) -> int:
    """Words a bank of the weight memory of a plan of ``simd`` multipliers (0: not banked):
    ``bank_rows`` if given, else :data:`BANK_ROWS` above :data:`OPERAND_LANES` multipliers
    (a narrow word is a few block RAMs, whose multiplexer is short)."""
    if bank_rows is not None:
        return bank_rows
    return BANK_ROWS if simd > OPERAND_LANES else 0


#: Clocks from a slot's write-back to its saturation events in the counters (a step's event
#: is decided a clock after its write, registered, summed with the clock's others into a
#: register, then counted).
COUNT = 3
#: Clocks from the sequencer's decision to the memories and lanes (its output register): every
#: read, write and flag moves alike, so only a tick's drain waits for it.
ISSUE = 1


class Kind(IntEnum):
    GATHER = 0
    ROWS = 1
    COLS = 2
    LEARN = 3
    FLAGS = 4
    TICK = 5


class Dest(IntEnum):
    """Where a ``GATHER`` sends each block."""

    SRC = 0  # the source buffer (of a sweep, or the pre-synaptic vector of a rule)
    POST = 1  # the post-synaptic buffer of a rule
    STATE = 2  # a copy
    LEAK = 3  # a leak in place
    MASK = 4  # a capture
    OUT = 5  # the readout
    STEP = 6  # a relay: the block is z, stepped into the targets


@dataclass(frozen=True)
class Word:
    """One instruction; fields a kind does not use stay zero."""

    kind: Kind
    delay: int = 0  # clocks to wait before the first slot (set by :func:`timeline`)
    length: int = 0  # clocks from its first to its last, the wait included (:func:`lengths`)
    fresh: bool = False  # GATHER to STEP: the one target reads zero, so no step slot reads it
    covariance: bool = False  # LEARN: the covariance rule (else the Hebbian one)
    last: bool = False  # TICK: the sample's last tick
    count: int = 0  # GATHER: blocks; ROWS, LEARN: rows; COLS: target blocks
    inner: int = 0  # GATHER: parts; ROWS, LEARN: words a row; COLS: source elements
    size: int = 0  # elements of the vector written (its valid lanes)
    size2: int = 0  # LEARN: rows of the copy (0: none): its saturation events
    parts: tuple[tuple[int, bool], ...] = ()  # GATHER: (first state row, negated)
    dest: Dest = Dest.SRC
    drow: int = 0  # GATHER: the destination's first row
    dpart: int = 0  # GATHER into the source buffer: the first block's part of its row
    dlane: int = 0  # GATHER: the one element of an unaligned single-element source
    single: bool = False
    steps: int = 0  # step slots a block: 0, 1 (plus), 2 (plus and minus)
    plus: int = 0
    minus: int = 0
    mask: int = 0
    gated: bool = False
    held: bool = False
    wbase: int = 0  # ROWS, COLS, LEARN: the matrix's first word
    stride: int = 0  # COLS: words a row of the primary
    flags: int = 0  # FLAGS: groups to set; others: groups to clear after the last slot
    preset: int = 0  # groups to set in the word's first clock (a FLAGS word folded in)

    def slots(self, lanes: int) -> int:
        """Clocks this instruction issues slots in (``FLAGS``: its one clock)."""
        if self.kind == Kind.GATHER:
            return self.count * (self.inner + self.steps)
        if self.kind == Kind.ROWS:
            return self.count * self.inner + -(-self.count // lanes) * self.steps
        if self.kind == Kind.COLS:
            return self.count * (self.inner + self.steps)
        if self.kind == Kind.LEARN:
            return self.count * self.inner
        return 1


@dataclass(frozen=True)
class MemoryMap:
    """Where everything sits: state rows, mask rows, and every matrix in one weight memory.

    A primary is stored row by row (a word: ``simd`` columns of a row) or, when its sweep and
    its rule take fewer clocks so and it has no transposed copy, column by column (a word:
    ``simd`` rows of a column; its sweep by columns takes ``lanes`` targets a clock). A
    transposed copy has no memory of its own: it is its primary read the other way (the golden
    model's copy starts equal and receives the same changes with the same saturation, so it
    stays equal; its saturation events are its primary's within its rows)."""

    lanes: int
    state: Mapping[str, int]  # group -> first row
    sizes: Mapping[str, int]
    group_index: Mapping[str, int]
    masks: Mapping[str, int]  # mask -> first row
    weights: Mapping[str, int]  # matrix (and copy) -> first word
    words: Mapping[str, int]  # matrix -> words a stored row (a copy: its primary's)
    primaries: tuple[str, ...]  # in address order
    transposed: frozenset[str]  # primaries stored by columns
    depth: int  # words of the weight memory
    simd: int = 0  # weights a word (``lanes`` unless the program folds wider)
    bank_rows: int = 0  # words a bank of the weight memory (0: one memory)

    def __post_init__(self) -> None:
        if not self.simd:
            object.__setattr__(self, "simd", self.lanes)

    @property
    def banked(self) -> bool:
        """Whether the weights are read from more than one bank (a clock more a read:
        :func:`operand_stages`)."""
        return 0 < self.bank_rows < max(self.depth, 2)

    @classmethod
    def of(cls, program: Program, row_major: bool = False) -> MemoryMap:
        """``row_major``: every primary by rows (stochastic rounding draws in the golden
        model's row-major order)."""
        s, lanes, simd = program.schedule, program.lanes, program.simd
        masks, row = {}, 0
        for name, size in s.masks:
            masks[name] = row
            row += -(-size // lanes)
        copies = {mat.transpose_of: mat.name for mat in s.matrices if mat.transpose_of}
        primaries = [mat for mat in s.matrices if mat.transpose_of is None]

        def by_rows_clocks(rows: int, cols: int) -> int:  # its sweep by rows and its rule
            return 2 * rows * -(-cols // simd)

        def by_columns_clocks(rows: int, cols: int) -> int:  # by columns, and its rule
            return -(-rows // lanes) * cols + cols * -(-rows // simd)

        by_columns = {
            mat.name
            for mat in primaries
            if mat.name not in copies
            and not row_major
            and by_columns_clocks(mat.rows, mat.cols) < by_rows_clocks(mat.rows, mat.cols)
        }
        weights, words, address = {}, {}, 0
        for mat in primaries:
            stored_rows, stored_cols = (mat.cols, mat.rows) if mat.name in by_columns else (
                mat.rows, mat.cols)  # fmt: skip
            weights[mat.name] = address
            words[mat.name] = -(-stored_cols // simd)
            address += stored_rows * words[mat.name]
        for primary, copy in copies.items():
            weights[copy], words[copy] = weights[primary], words[primary]
        return cls(
            lanes,
            dict(program.state.bases),
            dict(program.state.sizes),
            {g.name: k for k, g in enumerate(s.groups)},
            masks,
            weights,
            words,
            tuple(mat.name for mat in primaries),
            frozenset(by_columns),
            address,
            simd,
        )

    def blocks(self, group: str) -> int:
        return -(-self.sizes[group] // self.lanes)

    def flag(self, *groups: str | None) -> int:
        return sum(1 << self.group_index[g] for g in groups if g is not None)


def _primary(schedule: Schedule, matrix: str) -> str:
    mat = schedule.matrix(matrix)
    return mat.transpose_of or mat.name


def _gathers(where: MemoryMap, sources, dest: Dest) -> list[Word]:
    """``GATHER`` words writing signed source vectors into a buffer at their columns.

    The source buffer's rows hold ``simd`` elements (a word of weights' sources), the
    post-synaptic buffer's ``lanes`` (one is read at a time): a block of ``lanes`` elements
    is part ``dpart`` of its source buffer row."""
    lanes, words = where.lanes, []
    width = where.simd if dest == Dest.SRC else lanes  # elements a buffer row
    for col0, parts in sources:
        group = parts[0][0]
        size = where.sizes[group]
        if col0 % lanes and size != 1:
            raise NotImplementedError("a source vector that starts inside a word")
        words.append(
            Word(
                Kind.GATHER,
                count=where.blocks(group),
                inner=len(parts),
                size=size,
                parts=tuple((where.state[g], sign < 0) for g, sign in parts),
                dest=dest,
                drow=col0 // width,
                dpart=col0 % width // lanes,
                dlane=col0 % width,
                single=bool(col0 % lanes),
            )
        )
    return words


def _step_fields(where: MemoryMap, plus: str, minus: str | None, mask: str | None, held: bool):
    return {
        "steps": 1 + (minus is not None),
        "plus": where.state[plus],
        "minus": where.state[minus] if minus else 0,
        "mask": where.masks[mask] if mask else 0,
        "gated": mask is not None,
        "held": held,
        "size": where.sizes[plus],
        "flags": where.flag(plus, minus),
    }


def _move(where: MemoryMap, source: str, target: str, dest: Dest) -> Word:
    """A ``GATHER`` of ``source`` into ``target``'s rows: a copy, or a leak in place."""
    return Word(
        Kind.GATHER,
        count=where.blocks(source),
        inner=1,
        size=where.sizes[target],
        parts=((where.state[source], False),),
        dest=dest,
        drow=where.state[target],
        flags=where.flag(target),
    )


def _words_of(op, where: MemoryMap, schedule: Schedule, cfg: Config) -> list[Word]:
    lanes = where.lanes
    if isinstance(op, Clear):
        return [Word(Kind.FLAGS, flags=where.flag(op.group))]
    if isinstance(op, Leak):
        if cfg.leak_shift == 0:
            return [Word(Kind.FLAGS, flags=where.flag(op.group))]
        return [_move(where, op.group, op.group, Dest.LEAK)]
    if isinstance(op, Copy):
        return [_move(where, op.source, op.target, Dest.STATE)]
    if isinstance(op, Capture):
        return [
            Word(
                Kind.GATHER,
                count=where.blocks(op.plus),
                inner=2,
                size=where.sizes[op.plus],
                parts=((where.state[op.plus], False), (where.state[op.minus], True)),
                dest=Dest.MASK,
                drow=where.masks[op.mask],
            )
        ]
    if isinstance(op, Relay):
        return [
            Word(
                Kind.GATHER,
                count=where.blocks(op.plus),
                inner=len(op.parts),
                parts=tuple((where.state[g], sign < 0) for g, sign in op.parts),
                dest=Dest.STEP,
                **_step_fields(where, op.plus, op.minus, op.mask, op.held),
            )
        ]
    primary = _primary(schedule, op.matrix)
    mat = schedule.matrix(op.matrix)
    by_columns = primary in where.transposed
    if isinstance(op, Learn):
        # Stored by columns, a stored row is a column: the pre-synaptic element is the one
        # broadcast and the post-synaptic vector the word (such a primary has no copy).
        post_to, pre_to = (Dest.SRC, Dest.POST) if by_columns else (Dest.POST, Dest.SRC)
        count, size = (mat.cols, mat.rows) if by_columns else (mat.rows, mat.cols)
        return [
            *_gathers(where, [(0, op.post)], post_to),
            *_gathers(where, op.pre, pre_to),
            Word(
                Kind.LEARN,
                count=count,
                inner=where.words[primary],
                size=size,
                size2=schedule.matrix(op.copy).rows if op.copy else 0,
                wbase=where.weights[primary],
                covariance=op.rule == "covariance",
            ),
        ]
    assert isinstance(op, Sweep)
    by_rows = op.by_rows and not by_columns
    sweep = Word(
        Kind.ROWS if by_rows else Kind.COLS,
        count=mat.rows if by_rows else -(-mat.rows // lanes),
        inner=where.words[primary] if by_rows else mat.cols,
        wbase=where.weights[primary],
        stride=where.words[primary],
        **_step_fields(where, op.plus, op.minus, op.mask, op.held),
    )
    # A sweep by columns broadcasts one source element a clock: from the post-synaptic
    # buffer, ``lanes`` elements a row, so the element is picked from ``lanes`` (a row of the
    # source buffer holds ``simd``: a multiplexer that wide sat on every lane's operand).
    into = Dest.SRC if by_rows else Dest.POST
    return [*_gathers(where, op.sources, into), sweep]


def _readout(where: MemoryMap, schedule: Schedule) -> Word:
    readout = schedule.readout
    parts = [(where.state[readout.plus], False)]
    if readout.minus:
        parts.append((where.state[readout.minus], True))
    return Word(
        Kind.GATHER,
        count=where.blocks(readout.plus),
        inner=len(parts),
        size=where.sizes[readout.plus],
        parts=tuple(parts),
        dest=Dest.OUT,
    )


def _merge_flags(words: list[Word]) -> list[Word]:
    """Neighbouring ``FLAGS`` words as one (they only set flags), and the flags just before a
    ``TICK`` (the tick's leaks) set by the ``TICK`` itself."""
    merged: list[Word] = []
    for w in words:
        if w.kind == Kind.FLAGS and not w.flags:  # an unobserved tick with no leak
            continue
        if merged and merged[-1].kind == Kind.FLAGS and w.kind in (Kind.FLAGS, Kind.TICK):
            w = replace(w, flags=merged.pop().flags | w.flags)
        merged.append(w)
    return merged


def _mark_fresh(words: list[Word], where: MemoryMap) -> list[Word]:
    """Relays into one target that reads zero (flagged within this sample, not written
    since) step from zero in their gather's last slot: no slot reads the target."""
    zeroed = 0  # groups flagged, as a mask
    marked = []
    for w in words:
        if w.kind in (Kind.FLAGS, Kind.TICK):
            zeroed |= w.flags
        elif w.kind == Kind.GATHER and w.dest == Dest.STEP and w.steps == 1:
            if zeroed & w.flags == w.flags:
                w = replace(w, fresh=True, steps=0, drow=w.plus)
        if w.kind not in (Kind.FLAGS, Kind.TICK):
            zeroed &= ~w.flags  # the groups it wrote
        marked.append(w)
    return marked


def _fold_flags(words: list[Word]) -> list[Word]:
    """A ``FLAGS`` word before a word that issues slots becomes that word's ``preset``: the
    flags are set in its first clock (a read in that clock already sees them), so setting
    them costs no clock of its own."""
    folded: list[Word] = []
    for w in words:
        if folded and folded[-1].kind == Kind.FLAGS and w.kind not in (Kind.FLAGS, Kind.TICK):
            w = replace(w, preset=folded.pop().flags)
        folded.append(w)
    return folded


def encode(
    program: Program,
    cfg: Config,
    *,
    observe_ticks: bool = True,
    state_bases: Mapping[str, int] | None = None,
    bank_rows: int | None = None,
) -> tuple[list[Word], MemoryMap]:
    """The ROM words of one sample, every tick unrolled, and the memory map they address.

    ``state_bases``: groups moved to other state rows (the input groups' second bank: the
    same program reading the other copy of the inputs, clock for clock as the first).

    ``observe_ticks``: every tick drains the pipeline and holds its state for the debug port
    (the per-tick comparisons); without it only the sample's last tick does, and the others
    only set their flags (a ``FLAGS`` word, merged with its neighbours): nothing in a tick's
    end needs the pipeline empty, since every read already waits for the write it needs.

    ``bank_rows``: words a bank of the weight memory (:func:`weight_bank_rows`'s default for
    the program's multipliers if not given); the map's :attr:`MemoryMap.banked` says whether
    the words' timing counts the banks' clock."""
    schedule = program.schedule
    where = MemoryMap.of(program, row_major=cfg.rounding == Rounding.STOCHASTIC)
    where = replace(where, bank_rows=weight_bank_rows(program.simd, bank_rows))
    if state_bases:
        where = replace(where, state={**where.state, **state_bases})
    readout_at = schedule.readout.phase if schedule.readout else None
    words: list[Word] = []
    n_phases = len(schedule.phases)
    for phase, first, ops in program.ticks():
        if readout_at == phase and first:
            words.append(_readout(where, schedule))
        for op in ops:
            words += _words_of(op, where, schedule, cfg)
        words.append(Word(Kind.TICK) if observe_ticks else Word(Kind.FLAGS))
    # the sample's last tick: the readout of its end state, and the sample counted
    words.pop()
    if readout_at == n_phases:
        words.append(_readout(where, schedule))
    words.append(Word(Kind.TICK, last=True))
    words = _fold_flags(_mark_fresh(_merge_flags(words), where))
    banked = where.banked
    delays, _ = timeline(words, program.lanes, program.simd, banked=banked)
    words = [replace(w, delay=d) for w, d in zip(words, delays, strict=True)]
    spans = lengths(words, program.lanes, program.simd, banked=banked)
    return [replace(w, length=n) for w, n in zip(words, spans, strict=True)], where


def word_layout(words: list[Word], parts: int, groups: int) -> data.StructLayout:
    """The ROM word: every field as wide as its largest value needs."""

    def bits(*values: int) -> unsigned:
        return unsigned(max(ceil_log2(max(values, default=0) + 1), 1))

    rows = [p for w in words for p, _ in w.parts] + [w.drow for w in words]
    rows += [w.plus for w in words] + [w.minus for w in words] + [w.mask for w in words]
    return data.StructLayout(
        {
            "kind": unsigned(3),
            "delay": bits(*(w.delay for w in words)),
            "nodelay": unsigned(1),
            "length": bits(*(w.length for w in words)),
            "length_one": unsigned(1),
            "length_two": unsigned(1),
            "inner_one": unsigned(1),
            "count_one": unsigned(1),
            "fresh": unsigned(1),
            "covariance": unsigned(1),
            "last": unsigned(1),
            "count": bits(*(w.count for w in words)),
            "inner": bits(*(w.inner for w in words)),
            "size": bits(*(w.size for w in words)),
            "size2": bits(*(w.size2 for w in words)),
            "part_rows": data.ArrayLayout(bits(*rows), parts),
            "part_neg": unsigned(parts),
            "dest": unsigned(3),
            "drow": bits(*rows),
            "dpart": bits(*(w.dpart for w in words)),
            "dlane": bits(*(w.dlane for w in words)),
            "single": unsigned(1),
            "steps": unsigned(2),
            "plus": bits(*rows),
            "minus": bits(*rows),
            "mask": bits(*rows),
            "gated": unsigned(1),
            "held": unsigned(1),
            "wbase": bits(*(w.wbase for w in words)),
            "stride": bits(*(w.stride for w in words)),
            "flags": unsigned(max(groups, 1)),
            "preset": unsigned(max(groups, 1)),
        }
    )


def rom_value(word: Word, parts: int) -> dict:
    """``word`` as the ROM layout's field values."""
    rows = [r for r, _ in word.parts] + [0] * (parts - len(word.parts))
    negs = sum(1 << k for k, (_, neg) in enumerate(word.parts) if neg)
    return {
        "kind": int(word.kind),
        "delay": word.delay,
        "nodelay": int(word.delay == 0),
        "length": word.length,
        "length_one": int(word.length == 1),
        "length_two": int(word.length == 2),
        "inner_one": int(word.inner == 1),
        "count_one": int(word.count == 1),
        "fresh": int(word.fresh),
        "covariance": int(word.covariance),
        "last": int(word.last),
        "count": word.count,
        "inner": word.inner,
        "size": word.size,
        "size2": word.size2,
        "part_rows": rows,
        "part_neg": negs,
        "dest": int(word.dest),
        "drow": word.drow,
        "dpart": word.dpart,
        "dlane": word.dlane,
        "single": int(word.single),
        "steps": word.steps,
        "plus": word.plus,
        "minus": word.minus,
        "mask": word.mask,
        "gated": int(word.gated),
        "held": int(word.held),
        "wbase": word.wbase,
        "stride": word.stride,
        "flags": word.flags,
        "preset": word.preset,
    }


def _slot_accesses(
    w: Word,
    lanes: int,
    simd: int | None = None,
    banked: bool = False,
    step_reads: str = "state",
    shorter: int = 0,
):
    """Every slot of ``w`` in issue order: ``(reads, writes)``, each a list of ``(memory,
    address, stage)`` (the stage the address is presented in; a write lands at its clock's
    end). The sequencer's loops, clock for clock.

    ``simd`` (``lanes`` unless given): weights a word. The source buffer's rows are then
    ``simd`` elements, written a block of ``lanes`` at a time: block ``q`` of a vector's
    columns is row ``q // (simd // lanes)``; a sweep by columns takes its ``lanes`` targets
    from part ``b % (simd // lanes)`` of a word. ``step_reads``: the memory a step's read of
    its target is listed under (another name tells them apart from the other reads).
    ``shorter``: stages taken out of the pipeline (:func:`modelled_clocks`; 0 for the
    gateware)."""
    simd = lanes if simd is None else simd
    fold = simd // lanes
    depth = pipeline_depth(simd, banked) - shorter
    write = depth - 1  # every write but the state memory's and a rule's
    learned = learn_write(simd, banked) - shorter

    def steps(block):
        for st in range(w.steps):
            row = (w.plus if st == 0 else w.minus) + block
            mask = [("mask", w.mask + block, write - 1)] if w.gated else []
            yield [(step_reads, row, 0), *mask], [("state", row, depth)]

    if w.kind == Kind.GATHER:
        out = {Dest.SRC: "SRC", Dest.POST: "POST", Dest.MASK: "mask", Dest.OUT: None}
        memory = out.get(w.dest, "state")
        for b in range(w.count):
            drow = w.drow + (w.dpart + b) // fold if memory == "SRC" else w.drow + b
            for n, (row, _) in enumerate(w.parts):
                reads, writes = [("state", row + b, 0)], []
                if n == len(w.parts) - 1 and memory is not None and w.dest != Dest.STEP:
                    writes.append((memory, drow, depth if memory == "state" else write))
                if n == len(w.parts) - 1 and w.fresh:
                    writes.append(("state", w.drow + b, depth))
                    reads += [("mask", w.mask + b, write - 1)] if w.gated else []
                yield reads, writes
            yield from steps(b)
    elif w.kind == Kind.ROWS:
        for r in range(w.count):
            for c in range(w.inner):
                yield [("W", w.wbase + r * w.inner + c, 0), ("SRC", c, 0), ("port", 0, 0)], []
            if r % lanes == lanes - 1 or r == w.count - 1:
                yield from steps(r // lanes)
    elif w.kind == Kind.COLS:
        for b in range(w.count):
            for j in range(w.inner):
                address = w.wbase + j * w.stride + b // fold
                yield [("W", address, 0), ("POST", j // lanes, 0), ("port", 0, 0)], []
            yield from steps(b)
    elif w.kind == Kind.LEARN:
        for i in range(w.count):
            for c in range(w.inner):
                address = w.wbase + i * w.inner + c
                reads = [("SRC", c, 0), ("POST", i // lanes, 0), ("port", 0, 1), ("W", address, 1)]
                yield reads, [("W", address, learned)]


def _walk(
    words: list[Word], lanes: int, simd: int | None = None, banked: bool = False
) -> tuple[list[int], list[int], int]:
    """Every word's wait and its length in clocks, and the clocks of a sample: the one walk
    :func:`timeline` and :func:`lengths` report from."""
    simd = lanes if simd is None else simd
    clock = 1  # the start clock; the first word is presented in the next
    landed: dict[tuple[str, int], int] = {}  # the first clock a read sees the last write
    depth = pipeline_depth(simd, banked)
    last_issue = -depth - 1
    delays, spans = [], []
    for w in words:
        if w.kind == Kind.TICK:  # flags, then valid once drained, then the next word
            delays.append(0)
            valid = tick_valid(clock, last_issue, simd, banked)
            spans.append(valid - clock + 1)
            clock = valid + 1
            continue
        if w.kind == Kind.FLAGS:
            delays.append(0)
            spans.append(1)
            clock += 1
            continue
        slots = list(_slot_accesses(w, lanes, simd, banked))
        start = clock
        for i, (reads, _) in enumerate(slots):
            for memory, address, stage in reads:
                start = max(start, landed.get((memory, address), 0) - i - stage)
        for i, (reads, writes) in enumerate(slots):
            for memory, address, stage in writes:
                landed[memory, address] = start + i + stage + 1
            for memory, _, stage in reads:
                if memory == "port":
                    landed["port", 0] = start + i + stage + 1
        delays.append(start - clock)
        spans.append(start - clock + len(slots))
        last_issue = start + len(slots) - 1
        clock = start + len(slots)
    return delays, spans, clock


def modelled_clocks(
    words: list[Word],
    lanes: int,
    simd: int | None = None,
    banked: bool = False,
    *,
    streams: int = 1,
    shorter: int = 0,
    folded: bool = False,
) -> int:
    """Clocks of a sample of ``words`` under a sequencer that is *not built*: a model for
    deciding what to build next, over the same slots and the same reads and writes as the
    gateware's (:func:`_slot_accesses`).

    Each slot issues at the first clock its unit is free and what it reads has landed (and
    what it writes was read and written before it in program order: no hazard), in program
    order on its unit. ``streams=1``: one unit issues every slot, which is this core (the
    result equals :func:`sample_clocks`: tested). ``streams=2``: the element-wise slots
    (gathers, copies, leaks, captures and the steps of a block's targets) issue on a unit of
    their own beside the multipliers' (sweeps and rules), each in program order, so that
    element-wise work overlaps the sweeps it does not feed. ``shorter``: that many pipeline
    stages fewer between issue and write-back (the clock a shallower pipeline would reach
    is not modelled). ``folded``: a gather into a sweep's or a rule's buffers takes no
    unit's clock (its parts summed as the sweep reads them: a read port a part), its
    latency kept."""
    simd = lanes if simd is None else simd
    if streams not in (1, 2):
        raise ValueError(f"streams must be 1 or 2, got {streams}")
    if not 0 <= shorter < DEPTH:
        raise ValueError(f"shorter must be in [0, {DEPTH - 1}], got {shorter}")
    depth = pipeline_depth(simd, banked) - shorter
    landed: dict[tuple[str, int], int] = {}  # the first clock a read sees the last write
    read_by: dict[tuple[str, int], int] = {}  # the last clock an address was read in
    free = {"multiply": 1, "element": 1}  # the first clock each unit can issue in
    finished = 0  # the clock the last issued slot has written back in
    for w in words:
        multiplied = 0  # the clock after the word's last multiply slot: its z's, for a step
        if w.kind in (Kind.TICK, Kind.FLAGS):
            clock = max(free.values())
            if w.kind == Kind.TICK:  # drained and counted, as :func:`tick_valid`
                clock = max(clock, finished + ISSUE + COUNT + 1)
            free = dict.fromkeys(free, clock + 1)
            continue
        for reads, writes in _slot_accesses(w, lanes, simd, banked, shorter=shorter):
            element = w.kind == Kind.GATHER or any(m == "state" for m, _, _ in writes)
            unit = "element" if element and streams == 2 else "multiply"
            beside = folded and w.kind == Kind.GATHER and w.dest in (Dest.SRC, Dest.POST)
            t = 0 if beside else free[unit]
            if element and w.kind != Kind.GATHER:  # a step follows its block's products
                t = max(t, multiplied)
            for memory, address, stage in reads:
                t = max(t, landed.get((memory, address), 0) - stage)
            for memory, address, stage in writes:
                t = max(t, read_by.get((memory, address), 0) - stage)
                t = max(t, landed.get((memory, address), 0) - stage)
            for memory, address, stage in writes:
                landed[memory, address] = t + stage + 1
            for memory, address, stage in reads:
                key = (memory, address)
                read_by[key] = max(read_by.get(key, 0), t + stage)
                if memory == "port":  # the weights' port: one word's reads at a time
                    landed["port", 0] = t + stage + 1
            if not element:
                multiplied = t + 1
            if not beside:
                free[unit] = t + 1
            finished = max(finished, t + depth)
    return max(free.values())


def reads_flagged(
    words: list[Word],
    row_groups: list[int],
    lanes: int,
    simd: int | None = None,
    banked: bool = False,
    *,
    leaks: bool = True,
) -> bool:
    """Whether any slot of ``words`` reads a state row while its group's zero flag is set, in
    any sample of a run (the flags a sample ends with are the next one's at its start: the
    walk repeats from their union until it adds none). ``row_groups``: each state row's
    group (rows past it: the input memory's, which no word flags). Where none does, the
    lanes never need the flag of what they read. ``leaks``: a step keeps part of its
    target's current (``leak_shift > 0``); without a leak (``alpha = 1``) a step's read of its
    target is not used (:func:`hw.population.leak_term` is zero), so only the other reads
    count: in the shipped networks a cleared group is then read only by the steps that
    rewrite it. The debug port applies the flags either way."""
    step_reads = "state" if leaks else "unused"  # a step's read of its target, if used
    start, seen = 0, set()
    while start not in seen:
        seen.add(start)
        flags = start
        for w in words:
            if w.kind in (Kind.FLAGS, Kind.TICK):
                flags |= w.flags
                continue
            flags |= w.preset  # set in its first clock, before its first read
            for reads, _ in _slot_accesses(w, lanes, simd, banked, step_reads):
                for memory, row, _ in reads:
                    if memory == "state" and row < len(row_groups):
                        if flags >> row_groups[row] & 1:
                            return True
            if w.kind in (Kind.GATHER, Kind.ROWS, Kind.COLS):
                flags &= ~w.flags  # cleared after its last slot: the groups it wrote
        start |= flags
    return False


def timeline(
    words: list[Word], lanes: int, simd: int | None = None, banked: bool = False
) -> tuple[list[int], int]:
    """The clocks each word waits before its first slot (no read before the write it needs
    has landed; the weights' read port used by one word at a time), and the clocks of a
    sample as the testbenches count them: the ``start`` clock, and for every tick the clocks
    until its state is valid and the valid clock (no ``hold``). ``banked``: the weights are
    read from banks (:attr:`MemoryMap.banked`)."""
    delays, _, clocks = _walk(words, lanes, simd, banked)
    return delays, clocks


def tick_valid(clock: int, last_issue: int, lanes: int, banked: bool = False) -> int:
    """The clock a ``TICK`` presented at ``clock`` holds its state valid: its flags' clock
    first, then until the slot issued at ``last_issue`` has written back and its saturation
    events are counted (``lanes``: the multipliers a row's tree sums)."""
    return max(clock + 1, last_issue + ISSUE + pipeline_depth(lanes, banked) + COUNT + 1)


def lengths(
    words: list[Word], lanes: int, simd: int | None = None, banked: bool = False
) -> list[int]:
    """Clocks each word of :func:`timeline`'s words takes from its first clock to its last:
    its wait and its slots; a ``FLAGS`` word one; a ``TICK`` to its valid clock (without
    ``hold``). The sequencer counts them down, so that a word's end is a register, not a
    decision on the ROM's output."""
    return _walk(words, lanes, simd, banked)[1]


def sample_clocks(
    words: list[Word], lanes: int, simd: int | None = None, banked: bool = False
) -> int:
    """Clocks of one sample (:func:`timeline`)."""
    return timeline(words, lanes, simd, banked)[1]


def program_clocks(
    program: Program, cfg: Config, *, observe_ticks: bool = True, bank_rows: int | None = None
) -> int:
    """Clocks of one sample of ``program`` as the core built from it runs it (:func:`encode`
    and :func:`sample_clocks` with the weight memory's banks)."""
    words, where = encode(program, cfg, observe_ticks=observe_ticks, bank_rows=bank_rows)
    return sample_clocks(words, program.lanes, program.simd, where.banked)


def clock_breakdown(
    words: list[Word], lanes: int, simd: int | None = None, banked: bool = False
) -> dict[str, int]:
    """Where the clocks of a sample go (they sum to :func:`sample_clocks`): ``multiply``,
    the slots of sweeps and rules (a word of weights a clock); ``step``, the step slots
    that write a block's targets; ``gather``, the other slots of ``GATHER`` words (a block
    of a vector's parts a clock); ``wait``, clocks a word waits for what it reads to land
    (:func:`timeline`); ``control``, the start clock, ``FLAGS`` words and the ``TICK``
    words' drains."""
    delays, spans, clocks = _walk(words, lanes, simd, banked)
    out = dict.fromkeys(("multiply", "step", "gather", "wait", "control"), 0)
    out["control"] = 1  # the start clock
    for w, delay, span in zip(words, delays, spans, strict=True):
        out["wait"] += delay
        if w.kind in (Kind.FLAGS, Kind.TICK):
            out["control"] += span
            continue
        slots = span - delay
        if w.kind == Kind.ROWS:
            steps = -(-w.count // lanes) * w.steps
        elif w.kind in (Kind.COLS, Kind.GATHER):
            steps = w.count * w.steps
        else:
            steps = 0
        out["step"] += steps
        out["gather" if w.kind == Kind.GATHER else "multiply"] += slots - steps
    assert sum(out.values()) == clocks, (out, clocks)
    return out
