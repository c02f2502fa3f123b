"""The gating chain as data: a network description compiled into an ordered list of phases.

A phase is one gating window of ``N`` ticks (docs/model.md, section 3). What happens in it:

* at its start (before its first tick, reading the state left by the previous phase):
  mask captures, latched copies into memories, clears of every transfer target;
* on each of its ``N`` ticks: every transfer drives its gated targets, every other population
  only leaks, held groups keep their value;
* on its first tick only: the learning updates it enables, computed from the state at the
  tick's start and written at the tick's end.

The golden model simulates this list and the hardware sequencer replays it from a ROM, so the
two cannot disagree about timing. :meth:`Schedule.check` enforces the timing rule that makes a
window exact: every source of a transfer is either a population that was a target in the
previous phase (it peaks at the window's start and leaks with the others) or, for a whole
transfer, a held group (it is relayed with the held gain).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import Config

__all__ = [
    "POP",
    "HELD",
    "Group",
    "Matrix",
    "Term",
    "Transfer",
    "Copy",
    "Capture",
    "PreTerm",
    "Learn",
    "Phase",
    "Readout",
    "Schedule",
    "ScheduleError",
    "compile_backprop",
    "compile_ar2",
]

POP = "pop"  # a leaky population: integrates its gated drive, leaks otherwise
HELD = "held"  # short-term memory, input or constant: keeps its value, no leak


class ScheduleError(ValueError):
    """A schedule breaks a structural or timing rule."""


@dataclass(frozen=True)
class Group:
    """A vector of populations. ``kind`` is :data:`POP` or :data:`HELD`."""

    name: str
    size: int
    kind: str
    doc: str = ""


@dataclass(frozen=True)
class Matrix:
    """A synaptic matrix. ``learned`` ones are initialised from the configuration's seed;
    ``transpose_of`` names the matrix this one is a transposed copy of (its first ``rows``
    columns: bias columns have no backward path)."""

    name: str
    rows: int
    cols: int
    learned: bool = True
    transpose_of: str | None = None


@dataclass(frozen=True)
class Term:
    """``sign * M[:, col0:col0+size] @ source``, or ``sign * source`` when ``matrix`` is None."""

    source: str
    matrix: str | None = None
    sign: int = 1
    col0: int = 0


@dataclass(frozen=True)
class Transfer:
    """Gated transfer ``z = sum(terms)``; ``plus`` receives ``[z]^+`` and ``minus`` (if any)
    ``[-z]^+``: both halves of a PMPY pair from one sum. With ``mask``, target population ``j``
    is gated only where mask bit ``j`` is 1 (the Hadamard product by gating)."""

    plus: str
    terms: tuple[Term, ...]
    minus: str | None = None
    mask: str | None = None


@dataclass(frozen=True)
class Copy:
    """Latch ``target <- source`` at the phase start (a short-term memory write)."""

    target: str
    source: str


@dataclass(frozen=True)
class Capture:
    """``mask <- [plus > minus]`` at the phase start: the separatrix of the gating chain."""

    mask: str
    plus: str
    minus: str


@dataclass(frozen=True)
class PreTerm:
    """``sign * source`` contributes to pre-synaptic columns ``col0 .. col0+size``."""

    source: str
    sign: int = 1
    col0: int = 0


@dataclass(frozen=True)
class Learn:
    """Learning enable for ``matrix`` (and the same change on its transposed ``copy``).

    ``rule="hebbian"``: ``W <- sat(W - round(eta * post * pre^T))`` with ``post = plus - minus``.
    ``rule="covariance"``: ``K <- sat(K + round(eta_t * (post * pre^T - K)))``, ``eta_t``
    halving at every power of two of the sample count down to ``2**-learning_rate_shift``.
    """

    matrix: str
    post_plus: str
    post_minus: str
    pre: tuple[PreTerm, ...]
    rule: str = "hebbian"
    copy: str | None = None


@dataclass(frozen=True)
class Phase:
    name: str
    transfers: tuple[Transfer, ...] = ()
    copies: tuple[Copy, ...] = ()
    captures: tuple[Capture, ...] = ()
    clears: tuple[str, ...] = ()
    learns: tuple[Learn, ...] = ()

    @property
    def targets(self) -> tuple[str, ...]:
        out: list[str] = []
        for t in self.transfers:
            out.append(t.plus)
            if t.minus is not None:
                out.append(t.minus)
        return tuple(out)

    @property
    def cleared(self) -> tuple[str, ...]:
        """Every transfer target starts its window from 0, plus explicit clears."""
        return tuple(dict.fromkeys(self.targets + self.clears))


@dataclass(frozen=True)
class Readout:
    """The circuit's output ``plus - minus`` (or ``plus``) at the start of phase ``phase``
    (``phase == len(phases)``: after the last phase)."""

    plus: str
    minus: str | None
    phase: int


@dataclass(frozen=True)
class Schedule:
    """Groups, matrices, masks and the ordered phases of one sample of a circuit."""

    name: str
    groups: tuple[Group, ...]
    matrices: tuple[Matrix, ...]
    masks: tuple[tuple[str, int], ...]
    phases: tuple[Phase, ...]
    inputs: tuple[str, ...] = ()
    constants: tuple[tuple[str, float], ...] = ()
    readout: Readout | None = None
    ticks_per_window: int = 1
    _group: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._group.update({g.name: g for g in self.groups})
        self.check()

    def group(self, name: str) -> Group:
        try:
            return self._group[name]
        except KeyError:
            raise ScheduleError(f"unknown group {name!r}") from None

    def matrix(self, name: str) -> Matrix:
        for m in self.matrices:
            if m.name == name:
                return m
        raise ScheduleError(f"unknown matrix {name!r}")

    def mask_size(self, name: str) -> int:
        for m, size in self.masks:
            if m == name:
                return size
        raise ScheduleError(f"unknown mask {name!r}")

    @property
    def ticks_per_sample(self) -> int:
        return len(self.phases) * self.ticks_per_window

    # -- checking ------------------------------------------------------------------------------

    def check(self) -> None:
        """Raise :class:`ScheduleError` on any structural or timing violation."""
        names = [g.name for g in self.groups]
        if len(set(names)) != len(names):
            raise ScheduleError("duplicate group names")
        for g in self.groups:
            if g.kind not in (POP, HELD):
                raise ScheduleError(f"group {g.name}: unknown kind {g.kind!r}")
        for name in self.inputs + tuple(c for c, _ in self.constants):
            if self.group(name).kind != HELD:
                raise ScheduleError(f"input/constant {name} must be a held group")
        previous_targets: set[str] = set()
        for index, phase in enumerate(self.phases):
            where = f"phase {index} ({phase.name})"
            targets = phase.targets
            if len(set(targets)) != len(targets):
                raise ScheduleError(f"{where}: a group is the target of two transfers")
            read: set[str] = set()
            for tr in phase.transfers:
                self._check_transfer(tr, previous_targets, where)
                read.update(t.source for t in tr.terms)
            for cp in phase.copies:
                if self.group(cp.source).kind == POP and cp.source not in previous_targets:
                    raise ScheduleError(f"{where}: copy source {cp.source} is not at its peak")
                if self.group(cp.target).kind != HELD:
                    raise ScheduleError(f"{where}: copy target {cp.target} must be held")
                if self.group(cp.source).size != self.group(cp.target).size:
                    raise ScheduleError(f"{where}: copy {cp.source}->{cp.target} sizes differ")
                read.add(cp.source)
            for cap in phase.captures:
                size = self.mask_size(cap.mask)
                if not self.group(cap.plus).size == self.group(cap.minus).size == size:
                    raise ScheduleError(f"{where}: capture {cap.mask} sizes differ")
                read.update((cap.plus, cap.minus))
            learned = set()
            for ln in phase.learns:
                self._check_learn(ln, previous_targets, where)
                learned.add(ln.matrix)
                if ln.copy:
                    learned.add(ln.copy)
                read.update(p.source for p in ln.pre)
                read.update((ln.post_plus, ln.post_minus))
            for tr in phase.transfers:
                for t in tr.terms:
                    if t.matrix in learned:
                        raise ScheduleError(f"{where}: matrix {t.matrix} is read while it learns")
            for name in phase.cleared:
                if self.group(name).kind != POP:
                    raise ScheduleError(f"{where}: cannot clear held group {name}")
                if name in read:
                    raise ScheduleError(f"{where}: group {name} is cleared and read")
            previous_targets = set(targets)

    def _check_transfer(self, tr: Transfer, previous_targets: set[str], where: str) -> None:
        size = self.group(tr.plus).size
        for target in (tr.plus, tr.minus):
            if target is not None and self.group(target).kind != POP:
                raise ScheduleError(f"{where}: transfer target {target} must be a population")
        if tr.minus is not None and self.group(tr.minus).size != size:
            raise ScheduleError(f"{where}: PMPY targets {tr.plus}/{tr.minus} sizes differ")
        if tr.mask is not None and self.mask_size(tr.mask) != size:
            raise ScheduleError(f"{where}: mask {tr.mask} does not match target {tr.plus}")
        if not tr.terms:
            raise ScheduleError(f"{where}: transfer into {tr.plus} has no terms")
        kinds = {self.group(t.source).kind for t in tr.terms}
        if len(kinds) != 1:
            raise ScheduleError(
                f"{where}: transfer into {tr.plus} mixes held and leaking sources; "
                f"relay the held ones first (timing rule)"
            )
        for t in tr.terms:
            src = self.group(t.source)
            if t.sign not in (1, -1):
                raise ScheduleError(f"{where}: term sign must be +1 or -1")
            if src.kind == POP and t.source not in previous_targets:
                raise ScheduleError(
                    f"{where}: source {t.source} is not at its peak (it was not a target of "
                    f"the previous phase)"
                )
            if t.matrix is None:
                if src.size != size:
                    raise ScheduleError(f"{where}: identity term {t.source} size mismatch")
            else:
                m = self.matrix(t.matrix)
                if m.rows != size or t.col0 < 0 or t.col0 + src.size > m.cols:
                    raise ScheduleError(
                        f"{where}: {t.matrix} ({m.rows}x{m.cols}) does not map "
                        f"{t.source} ({src.size}) at column {t.col0} to {tr.plus} ({size})"
                    )

    def _check_learn(self, ln: Learn, previous_targets: set[str], where: str) -> None:
        m = self.matrix(ln.matrix)
        if not m.learned:
            raise ScheduleError(f"{where}: {ln.matrix} is not a learned matrix")
        if ln.rule not in ("hebbian", "covariance"):
            raise ScheduleError(f"{where}: unknown learning rule {ln.rule!r}")
        for name in (ln.post_plus, ln.post_minus):
            if self.group(name).size != m.rows:
                raise ScheduleError(f"{where}: post {name} does not match {ln.matrix} rows")
        sources = [ln.post_plus, ln.post_minus] + [p.source for p in ln.pre]
        for name in sources:
            g = self.group(name)
            if g.kind == POP and name not in previous_targets:
                raise ScheduleError(f"{where}: learning reads {name}, which is not at its peak")
        for p in ln.pre:
            if p.col0 < 0 or p.col0 + self.group(p.source).size > m.cols:
                raise ScheduleError(f"{where}: pre {p.source} falls outside {ln.matrix}")
        if ln.copy is not None:
            c = self.matrix(ln.copy)
            if c.transpose_of != ln.matrix:
                raise ScheduleError(f"{where}: {ln.copy} is not the transposed copy of {m.name}")

    # -- printing ------------------------------------------------------------------------------

    def table(self) -> str:
        """The schedule as a text table, one row per phase."""
        header = ("#", "phase", "transfers (gated targets <- sources)", "start", "learn")
        rows = []
        for i, ph in enumerate(self.phases):
            transfers = []
            for tr in ph.transfers:
                tgt = tr.plus if tr.minus is None else f"{tr.plus}/{tr.minus}"
                src = " ".join(
                    ("+" if t.sign > 0 else "-") + (f"{t.matrix}*" if t.matrix else "") + t.source
                    for t in tr.terms
                )
                mask = f" [gate {tr.mask}]" if tr.mask else ""
                transfers.append(f"{tgt} <- {src}{mask}")
            start = [f"{c.mask}=[{c.plus}>{c.minus}]" for c in ph.captures]
            start += [f"{c.target}:={c.source}" for c in ph.copies]
            learn = [ln.matrix + (f"+{ln.copy}" if ln.copy else "") for ln in ph.learns]
            rows.append(
                (
                    str(i),
                    ph.name,
                    "; ".join(transfers) or "-",
                    ", ".join(start) or "-",
                    ", ".join(learn) or "-",
                )
            )
        widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]

        def line(cells) -> str:
            return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()

        out = [
            f"schedule {self.name}: {len(self.phases)} phases x N={self.ticks_per_window} "
            f"ticks = {self.ticks_per_sample} ticks per sample",
            line(header),
            line(["-" * w for w in widths]),
        ]
        out += [line(r) for r in rows]
        return "\n".join(out)


# -- compilers --------------------------------------------------------------------------------


def compile_backprop(cfg: Config, *, train: bool = True) -> Schedule:
    """Compile the PMPY backprop circuit (docs/model.md, section 3) for ``cfg.layers``.

    ``train=False`` gives the inference schedule (forward phases only; output after the last).
    Groups: held ``x+ x- t+ t- one``, memories ``m{i}`` (kept ``o_i``) and ``md{i}+-`` (kept
    deltas); populations ``o0+- b{i} n{i}+- o{i} tr+- d{i}+-``. Matrices ``W{i}`` of shape
    ``n_i x (n_{i-1} + 1)`` (bias column last) and their transposed copies ``W{i}T``.
    """
    sizes = cfg.layers
    if len(sizes) < 2:
        raise ScheduleError("the backprop circuit needs at least an input and an output layer")
    L = len(sizes) - 1
    relu_out = cfg.output == "relu"
    groups = [
        Group("x+", sizes[0], HELD, "input, positive half"),
        Group("x-", sizes[0], HELD, "input, negative half"),
        Group("t+", sizes[L], HELD, "target, positive half"),
        Group("t-", sizes[L], HELD, "target, negative half"),
        Group("one", 1, HELD, "bias constant 1"),
        Group("o0+", sizes[0], POP, "input relay, positive half"),
        Group("o0-", sizes[0], POP, "input relay, negative half"),
    ]
    matrices = []
    masks = []
    for i in range(1, L + 1):
        groups += [
            Group(f"b{i - 1}", 1, POP, f"bias relay into layer {i}"),
            Group(f"n{i}+", sizes[i], POP, f"layer {i} net input, positive half"),
            Group(f"n{i}-", sizes[i], POP, f"layer {i} net input, negative half"),
        ]
        if i < L or relu_out:
            groups.append(Group(f"o{i}", sizes[i], POP, f"layer {i} output"))
            masks.append((f"p{i}", sizes[i]))
        matrices.append(Matrix(f"W{i}", sizes[i], sizes[i - 1] + 1))
        if train and i >= 2:
            matrices.append(
                Matrix(f"W{i}T", sizes[i - 1], sizes[i], learned=True, transpose_of=f"W{i}")
            )
    if train:
        groups += [
            Group("tr+", sizes[L], POP, "target relay, positive half"),
            Group("tr-", sizes[L], POP, "target relay, negative half"),
        ]
        for i in range(1, L + 1):
            groups += [
                Group(f"d{i}+", sizes[i], POP, f"layer {i} error, positive half"),
                Group(f"d{i}-", sizes[i], POP, f"layer {i} error, negative half"),
                Group(f"md{i}+", sizes[i], HELD, f"layer {i} error memory, positive half"),
                Group(f"md{i}-", sizes[i], HELD, f"layer {i} error memory, negative half"),
            ]
        for i in range(1, L):
            groups.append(Group(f"m{i}", sizes[i], HELD, f"layer {i} output memory"))

    target_relay = (
        Transfer("tr+", (Term("t+"),)),
        Transfer("tr-", (Term("t-"),)),
    )
    phases = [
        Phase(
            "load",
            transfers=(
                Transfer("o0+", (Term("x+"),)),
                Transfer("o0-", (Term("x-"),)),
                Transfer("b0", (Term("one"),)),
            ),
        )
    ]
    for i in range(1, L + 1):
        prev = sizes[i - 1]
        if i == 1:
            terms = (Term("o0+", "W1", 1), Term("o0-", "W1", -1), Term("b0", "W1", 1, prev))
        else:
            terms = (Term(f"o{i - 1}", f"W{i}", 1), Term(f"b{i - 1}", f"W{i}", 1, prev))
        transfers = [Transfer(f"n{i}+", terms, minus=f"n{i}-")]
        copies = (Copy(f"m{i - 1}", f"o{i - 1}"),) if train and i >= 2 else ()
        if train and i == L and not relu_out:
            transfers += target_relay
        phases.append(Phase(f"fwd{i}", transfers=tuple(transfers), copies=copies))
        if i < L or relu_out:
            transfers = [Transfer(f"o{i}", (Term(f"n{i}+"), Term(f"n{i}-", sign=-1)))]
            if i < L:
                transfers.append(Transfer(f"b{i}", (Term("one"),)))
            elif train:
                transfers += target_relay
            phases.append(
                Phase(
                    f"act{i}",
                    transfers=tuple(transfers),
                    captures=(Capture(f"p{i}", f"n{i}+", f"n{i}-"),),
                )
            )
    if relu_out:
        readout = Readout(f"o{L}", None, len(phases))
    else:
        readout = Readout(f"n{L}+", f"n{L}-", len(phases))
    if train:
        if relu_out:
            err_terms = (Term(f"o{L}"), Term("tr+", sign=-1), Term("tr-"))
            err_mask = f"p{L}"
        else:
            err_terms = (Term(f"n{L}+"), Term(f"n{L}-", sign=-1), Term("tr+", sign=-1), Term("tr-"))
            err_mask = None
        phases.append(Phase("err", transfers=(Transfer(f"d{L}+", err_terms, f"d{L}-", err_mask),)))
        for i in range(L, 1, -1):
            back = (Term(f"d{i}+", f"W{i}T", 1), Term(f"d{i}-", f"W{i}T", -1))
            phases.append(
                Phase(
                    f"bwd{i}",
                    transfers=(Transfer(f"d{i - 1}+", back, f"d{i - 1}-", f"p{i - 1}"),),
                    copies=(Copy(f"md{i}+", f"d{i}+"), Copy(f"md{i}-", f"d{i}-")),
                )
            )
        learns = []
        for i in range(1, L + 1):
            prev = sizes[i - 1]
            if i == 1:
                pre = (PreTerm("x+", 1), PreTerm("x-", -1), PreTerm("one", 1, prev))
            else:
                pre = (PreTerm(f"m{i - 1}", 1), PreTerm("one", 1, prev))
            learns.append(
                Learn(f"W{i}", f"md{i}+", f"md{i}-", pre, copy=f"W{i}T" if i >= 2 else None)
            )
        phases.append(
            Phase(
                "learn",
                copies=(Copy("md1+", "d1+"), Copy("md1-", "d1-")),
                learns=tuple(learns),
            )
        )
    return Schedule(
        name=f"backprop{'-'.join(map(str, sizes))}" + ("" if train else "-inference"),
        groups=tuple(groups),
        matrices=tuple(matrices),
        masks=tuple(masks),
        phases=tuple(phases),
        inputs=("x+", "x-") + (("t+", "t-") if train else ()),
        constants=(("one", 1.0),),
        readout=readout,
        ticks_per_window=cfg.ticks_per_window,
    )


def compile_ar2(cfg: Config) -> Schedule:
    """Compile the predictive circuit (docs/model.md, section 3, "The AR(2) predictive
    circuit") for a process of dimension ``cfg.layers[0]``: three phases per sample.

    ``relay``: the loaded ``x_t`` pair is relayed into populations ``x~+-``.
    ``learn``: ``x~`` (post, at its peak) and ``x``, ``lag1``, ``lag2`` (pre, held) are gated
    together: ``K0``, ``K1``, ``K2`` take one covariance step each.
    ``shift``: the memories move on, ``lag2 := lag1``, ``lag1 := x``.
    """
    d = cfg.layers[0]
    if 2 * cfg.current_frac < cfg.weight_frac:
        raise ScheduleError("the covariance rule needs 2*current_frac >= weight_frac")
    groups = (
        Group("x+", d, HELD, "x_t, positive half"),
        Group("x-", d, HELD, "x_t, negative half"),
        Group("lag1+", d, HELD, "x_{t-1}, positive half"),
        Group("lag1-", d, HELD, "x_{t-1}, negative half"),
        Group("lag2+", d, HELD, "x_{t-2}, positive half"),
        Group("lag2-", d, HELD, "x_{t-2}, negative half"),
        Group("x~+", d, POP, "x_t relay, positive half"),
        Group("x~-", d, POP, "x_t relay, negative half"),
    )
    matrices = tuple(Matrix(f"K{lag}", d, d) for lag in range(3))
    learns = tuple(
        Learn(
            f"K{lag}",
            "x~+",
            "x~-",
            (PreTerm(src + "+", 1), PreTerm(src + "-", -1)),
            rule="covariance",
        )
        for lag, src in enumerate(("x", "lag1", "lag2"))
    )
    phases = (
        Phase("relay", transfers=(Transfer("x~+", (Term("x+"),)), Transfer("x~-", (Term("x-"),)))),
        Phase("learn", learns=learns),
        Phase(
            "shift",
            copies=(
                Copy("lag2+", "lag1+"),
                Copy("lag2-", "lag1-"),
                Copy("lag1+", "x+"),
                Copy("lag1-", "x-"),
            ),
        ),
    )
    return Schedule(
        name=f"ar2-dim{d}",
        groups=groups,
        matrices=matrices,
        masks=(),
        phases=phases,
        inputs=("x+", "x-"),
        readout=None,
        ticks_per_window=cfg.ticks_per_window,
    )
