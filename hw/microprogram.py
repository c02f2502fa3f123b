"""The memory-centric core's micro-program: a compiled schedule as instructions over memories.

The memory-centric core keeps every group's currents in one state memory of ``lanes`` banks
(each group starts on a fresh row: element ``j`` of a group sits in bank ``j % lanes`` of row
``base + j // lanes``), masks in a mask memory of ``lanes``-bit words, and each matrix in a
weight memory whose word holds ``simd`` weights of one row (row-major, a row's last word partly
idle; ``simd`` is ``lanes`` unless the program is folded wider: :attr:`Program.simd`). A
transposed copy ``W^T`` lives at the same addresses as ``W``, transposed in the word: the word
of ``W[r, c0 .. c0+lanes-1]`` has ``W^T[c0 .. c0+lanes-1, r]`` beside it, so one learning pass
updates both with the same changes, in the golden model's row-major order (the stochastic-
rounding draws follow it). Hence two sweep shapes:

* ``by rows`` (``W``, lanes over sources): one target row at a time, a word of ``lanes``
  weights times ``lanes`` source elements per clock, summed in an adder tree;
* ``by columns`` (``W^T``, lanes over targets): ``lanes`` targets at a time, one broadcast
  source element per clock into ``lanes`` accumulators.

Mask captures and memory copies are the schedule's own :class:`~golden_model.schedule.Capture`
and :class:`~golden_model.schedule.Copy`, run as instructions.

A population steps as its drive leaves the accumulator (fused): a sweep's target is never a
source of its own tick, so the step can be written at once. Populations that no transfer
drives in a tick leak after the tick's sweeps (with ``leak_shift = 0`` they are zero: a flag
per group marks it, no pass over the group). Clears set the same flag.

:func:`compile_program` turns a schedule into the instructions of every tick (which
:mod:`hw.microcode` encodes for the gateware, with its exact clocks); :class:`ProgramModel`
executes them over the memories' contents, word by word, so that the micro-program is checked
against the golden model at every tick boundary before any gateware runs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from golden_model.choices import Rounding
from golden_model.circuit import FIXED, Circuit
from golden_model.config import Config
from golden_model.dynamics import gain_word, leak_fixed
from golden_model.fixed import saturate
from golden_model.lfsr import Lfsr
from golden_model.schedule import HELD, POP, Capture, Copy, Schedule
from golden_model.trace import COUNTERS, StateLayout
from golden_model.units import (
    capture_mask,
    covariance_rate_shift,
    covariance_update,
    hebbian_update,
    population_step,
    round_sum,
    threshold_pair,
)

__all__ = [
    "Parts",
    "Capture",
    "Copy",
    "Clear",
    "Learn",
    "Sweep",
    "Relay",
    "Leak",
    "StateMap",
    "Program",
    "compile_program",
    "ProgramModel",
]

#: ``((group, sign), ...)``: a signed source vector ``sat(sum(sign * group))``.
Parts = tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Clear:
    """A group reads as zero until it is written again: a flag, not a pass."""

    group: str


@dataclass(frozen=True)
class Learn:
    """One learning rule over ``matrix`` (and its transposed ``copy``), row by row."""

    matrix: str
    copy: str | None
    post: Parts
    pre: tuple[tuple[int, Parts], ...]  # (first column, parts)
    rule: str


@dataclass(frozen=True)
class Sweep:
    """A transfer through ``matrix``: ``z = round(W @ s)``, both halves of ``z`` stepped into
    ``plus`` and ``minus``. ``by_rows``: ``W`` row by row (lanes over sources); otherwise a
    transposed copy, lanes over targets."""

    matrix: str
    sources: tuple[tuple[int, Parts], ...]  # (first column, parts)
    plus: str
    minus: str | None
    mask: str | None
    held: bool  # relayed with the held gain
    by_rows: bool


@dataclass(frozen=True)
class Relay:
    """An identity transfer: ``z = sat(sum(sign * part))`` element by element."""

    parts: Parts
    plus: str
    minus: str | None
    mask: str | None
    held: bool


@dataclass(frozen=True)
class Leak:
    """A population no transfer drives this tick: ``I <- leak(I)`` (zero when
    ``leak_shift = 0``: a flag)."""

    group: str


Instruction = Capture | Copy | Clear | Learn | Sweep | Relay | Leak


@dataclass(frozen=True)
class StateMap:
    """Where each group sits in the state memory of ``lanes`` banks."""

    lanes: int
    bases: Mapping[str, int]  # group -> first row
    sizes: Mapping[str, int]

    @classmethod
    def of(cls, schedule: Schedule, lanes: int) -> StateMap:
        bases, row = {}, 0
        for g in schedule.groups:
            bases[g.name] = row
            row += -(-g.size // lanes)
        return cls(lanes, bases, {g.name: g.size for g in schedule.groups})

    @property
    def rows(self) -> int:
        return sum(-(-size // self.lanes) for size in self.sizes.values())

    def blocks(self, group: str) -> int:
        return -(-self.sizes[group] // self.lanes)

    def address(self, group: str, index: int) -> tuple[int, int]:
        """(row, bank) of element ``index`` of ``group``."""
        return self.bases[group] + index // self.lanes, index % self.lanes


@dataclass(frozen=True)
class Program:
    """The instructions of one sample, per phase (each runs ``ticks_per_window`` times; the
    phase-start instructions only in its first tick)."""

    schedule: Schedule
    lanes: int
    state: StateMap
    phase_start: tuple[tuple[Instruction, ...], ...]  # per phase
    every_tick: tuple[tuple[Instruction, ...], ...]  # per phase
    #: Multipliers, and weights a word of the weight memory (FINN's SIMD; ``lanes`` is its
    #: PE): the sweeps by rows and the learning rules take ``simd`` weights a clock, the
    #: element-wise work (gathers, steps, sweeps by columns) ``lanes`` elements.
    simd: int = 0

    def __post_init__(self) -> None:
        if not self.simd:
            object.__setattr__(self, "simd", self.lanes)

    def ticks(self):
        """``(phase index, first tick of the phase, instructions)`` for every tick of a
        sample, in order."""
        for p, (start, body) in enumerate(zip(self.phase_start, self.every_tick, strict=True)):
            for n in range(self.schedule.ticks_per_window):
                yield p, n == 0, (start if n == 0 else ()) + body


def _parts_by_columns(terms) -> tuple[tuple[int, Parts], ...]:
    """Terms grouped by the columns they feed, first-seen order (the golden model's)."""
    grouped: dict[int, list[tuple[str, int]]] = {}
    for source, sign, col0 in terms:
        grouped.setdefault(col0, []).append((source, sign))
    return tuple((col0, tuple(parts)) for col0, parts in grouped.items())


def _ordered_copies(copies) -> tuple[Copy, ...]:
    """Copies in an order where none overwrites what a later one reads (all read the state
    from before the copies, as the golden model latches them)."""
    pending, ordered = list(copies), []
    while pending:
        ready = [c for c in pending if all(c.target != o.source for o in pending if o is not c)]
        if not ready:
            raise NotImplementedError("copies that read each other's targets in a cycle")
        ordered.append(ready[0])
        pending.remove(ready[0])
    return tuple(ordered)


def compile_program(schedule: Schedule, lanes: int = 1, simd: int | None = None) -> Program:
    """The micro-program of ``schedule`` at ``lanes`` element lanes and ``simd`` multipliers
    (weights a word; ``lanes`` unless given, and a multiple of it)."""
    if lanes < 1:
        raise ValueError(f"lanes must be >= 1, got {lanes}")
    simd = lanes if simd is None else simd
    if simd < lanes or simd % lanes:
        raise ValueError(f"simd must be a multiple of lanes ({lanes}), got {simd}")
    pops = [g.name for g in schedule.groups if g.kind == POP]
    phase_start, every_tick = [], []
    for phase in schedule.phases:
        start: list[Instruction] = list(phase.captures)  # schedule.Capture: mask <- [+ > -]
        start += _ordered_copies(phase.copies)
        start += [Clear(name) for name in phase.cleared]
        start += [
            Learn(
                ln.matrix,
                ln.copy,
                ((ln.post_plus, 1), (ln.post_minus, -1)),
                _parts_by_columns((p.source, p.sign, p.col0) for p in ln.pre),
                ln.rule,
            )
            for ln in phase.learns
        ]
        body: list[Instruction] = []
        sources_read = set()
        for tr in phase.transfers:
            matrices = {t.matrix for t in tr.terms}
            held = schedule.group(tr.terms[0].source).kind == HELD
            sources_read |= {t.source for t in tr.terms}
            if matrices == {None}:
                parts = _parts_by_columns((t.source, t.sign, 0) for t in tr.terms)
                (_, grouped), *rest = parts
                if rest:
                    raise NotImplementedError("an identity transfer over column ranges")
                body.append(Relay(grouped, tr.plus, tr.minus, tr.mask, held))
                continue
            if len(matrices) != 1:
                raise NotImplementedError("a transfer mixing matrices or identity terms")
            (matrix,) = matrices
            mat = schedule.matrix(matrix)
            body.append(
                Sweep(
                    matrix,
                    _parts_by_columns((t.source, t.sign, t.col0) for t in tr.terms),
                    tr.plus,
                    tr.minus,
                    tr.mask,
                    held,
                    by_rows=mat.transpose_of is None,
                )
            )
        if sources_read & set(phase.targets):
            raise NotImplementedError(f"phase {phase.name}: a target is read in its own tick")
        body += [Leak(name) for name in pops if name not in phase.targets]
        phase_start.append(tuple(start))
        every_tick.append(tuple(body))
    return Program(
        schedule,
        lanes,
        StateMap.of(schedule, lanes),
        tuple(phase_start),
        tuple(every_tick),
        simd,
    )


# -- the model that executes it ---------------------------------------------------------------


class ProgramModel:
    """Executes a :class:`Program` over the memories' contents as the core holds them: the
    state memory (with its zero flags), masks, weights, counters and the LFSR. Its
    :meth:`state_vector` is in the golden trace's order, so it is compared word for word."""

    def __init__(self, program: Program, cfg: Config) -> None:
        self.program, self.cfg = program, cfg
        schedule = program.schedule
        golden = Circuit(schedule, cfg, FIXED)  # initial weights and constants: one home
        self.layout = StateLayout.of(schedule)
        self.values = {g.name: golden.group(g.name).copy() for g in schedule.groups}
        self.zero = {g.name: False for g in schedule.groups}
        self.masks = {name: np.zeros(size, np.int64) for name, size in schedule.masks}
        self.weights = {name: w.copy() for name, w in golden.weights.items()}
        self.counters = np.zeros(len(COUNTERS), np.int64)
        self.lfsr = Lfsr(cfg.lfsr_seed)
        self.gain_exact, self.gain_held = gain_word(cfg)
        self.drive: dict[str, np.ndarray] = {}

    # -- reading and writing groups ------------------------------------------------------------

    def read(self, group: str) -> np.ndarray:
        return np.zeros_like(self.values[group]) if self.zero[group] else self.values[group]

    def write(self, group: str, values: np.ndarray) -> None:
        self.values[group] = np.asarray(values, np.int64).copy()
        self.zero[group] = False

    def combined(self, parts: Parts) -> np.ndarray:
        """``sat(sum(sign * part))``, its saturation counted; one positive part as it is."""
        if len(parts) == 1 and parts[0][1] == 1:
            return self.read(parts[0][0])
        value = sum(self.read(name) * sign for name, sign in parts)
        value, events = saturate(value, self.cfg.current_width)
        self.counters[0] += events
        return value

    def load(self, sample: Mapping[str, np.ndarray]) -> None:
        """A sample's input codes into the input groups (as the ``load`` stream writes them)."""
        for name, codes in sample.items():
            self.write(name, codes)

    def state_vector(self) -> np.ndarray:
        currents = [self.read(g.name) for g in self.program.schedule.groups]
        masks = [self.masks[name] for name, _ in self.program.schedule.masks]
        weights = [self.weights[m.name].ravel() for m in self.program.schedule.matrices]
        return np.concatenate(
            [*currents, *masks, *weights, self.counters, [self.lfsr.state]]
        ).astype(np.int64)

    # -- instructions ------------------------------------------------------------------------

    def run_sample(self, on_tick=None) -> None:
        """Every tick of one sample; ``on_tick(tick index, phase)`` at each tick boundary."""
        ticks = list(self.program.ticks())
        for index, (phase, _, ops) in enumerate(ticks):
            for op in ops:
                getattr(self, f"_{type(op).__name__.lower()}")(op)
            if index == len(ticks) - 1:
                self.counters[3] += 1
            if on_tick is not None:
                on_tick(index, phase)

    def _capture(self, op: Capture) -> None:
        self.masks[op.mask] = capture_mask(self.read(op.plus), self.read(op.minus))

    def _copy(self, op: Copy) -> None:
        self.write(op.target, self.read(op.source))

    def _clear(self, op: Clear) -> None:
        self.zero[op.group] = True

    def _leak(self, op: Leak) -> None:
        if self.cfg.leak_shift == 0:
            self.zero[op.group] = True
        else:
            self.write(op.group, leak_fixed(self.read(op.group), self.cfg.leak_shift))

    def _step(self, z: np.ndarray, plus: str, minus: str | None, mask, held: bool) -> None:
        """Both halves of ``z``, gated, gained and stepped into their populations."""
        gate = self.masks[mask] if mask is not None else 1
        halves = threshold_pair(z, gate)
        gain = self.gain_held if held else self.gain_exact
        for target, u in zip((plus, minus), halves, strict=True):
            if target is None:
                continue
            new, events = population_step(
                self.read(target),
                u,
                gain_q=gain,
                gain_frac=self.cfg.gain_frac,
                leak_shift=self.cfg.leak_shift,
                width=self.cfg.current_width,
            )
            self.counters[0] += events
            self.write(target, new)

    def _relay(self, op: Relay) -> None:
        z = self.combined(op.parts)
        self._step(z, op.plus, op.minus, op.mask, op.held)

    def _sweep(self, op: Sweep) -> None:
        cfg = self.cfg
        w = self.weights[op.matrix]
        acc = np.zeros(w.shape[0], np.int64)
        for col0, parts in op.sources:
            value = self.combined(parts)
            acc = acc + w[:, col0 : col0 + len(value)] @ value
        z, events = round_sum(acc, weight_frac=cfg.weight_frac, width=cfg.current_width)
        self.counters[0] += events
        self._step(z, op.plus, op.minus, op.mask, op.held)

    def _learn(self, op: Learn) -> None:
        cfg = self.cfg
        w = self.weights[op.matrix]
        post = self.combined(op.post)
        pre = np.zeros(w.shape[1], np.int64)
        for col0, parts in op.pre:
            value = self.combined(parts)
            pre[col0 : col0 + len(value)] = value
        stochastic = cfg.rounding == Rounding.STOCHASTIC
        if op.rule == "covariance":
            shift = covariance_rate_shift(int(self.counters[3]) + 1, cfg.learning_rate_shift)
            align = 2 * cfg.current_frac - cfg.weight_frac
            bits = align + shift
            random = self.lfsr.draw(w.size, bits) if stochastic and bits else None
            w[...], events = covariance_update(
                w, post, pre, align=align, rate_shift=shift, width=cfg.weight_width,
                rounding=cfg.rounding, random=random,
            )  # fmt: skip
            self.counters[1] += events
            return
        shift = cfg.update_shift
        random = self.lfsr.draw(w.size, shift) if stochastic and shift else None
        w[...], change, events = hebbian_update(
            w, post, pre, shift=shift, width=cfg.weight_width, rounding=cfg.rounding,
            random=random,
        )  # fmt: skip
        self.counters[1] += events
        if op.copy is not None:
            copy = self.weights[op.copy]
            copy[...], events = saturate(copy - change[:, : copy.shape[0]].T, cfg.weight_width)
            self.counters[2] += events
