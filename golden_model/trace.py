"""The complete circuit state at every tick boundary, as arrays, and how to compare two traces.

A row is the state *after* one tick: every population current and held value, every mask bit,
every weight (learned matrices and their transposed copies), the counters and the LFSR state.
The golden model writes one; the RTL testbenches write another; :meth:`Trace.first_mismatch`
names the first tick, phase and state word where they differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .schedule import Schedule

__all__ = ["COUNTERS", "StateLayout", "Mismatch", "Trace", "TraceRecorder"]

#: Counters kept by the circuit, in trace column order.
COUNTERS = ("sat_current", "sat_weight", "sat_copy", "samples")


@dataclass(frozen=True)
class StateLayout:
    """Where each named piece of state sits in a trace row."""

    currents: tuple[tuple[str, int, int], ...]  # (group, offset, size)
    masks: tuple[tuple[str, int, int], ...]  # (mask, offset, size)
    weights: tuple[tuple[str, int, int, int], ...]  # (matrix, offset, rows, cols)
    phases: tuple[str, ...]

    @classmethod
    def of(cls, schedule: Schedule) -> StateLayout:
        currents, masks, weights = [], [], []
        offset = 0
        for g in schedule.groups:
            currents.append((g.name, offset, g.size))
            offset += g.size
        offset = 0
        for name, size in schedule.masks:
            masks.append((name, offset, size))
            offset += size
        offset = 0
        for m in schedule.matrices:
            weights.append((m.name, offset, m.rows, m.cols))
            offset += m.rows * m.cols
        return cls(
            tuple(currents), tuple(masks), tuple(weights), tuple(p.name for p in schedule.phases)
        )

    @property
    def n_currents(self) -> int:
        return sum(size for _, _, size in self.currents)

    @property
    def n_masks(self) -> int:
        return sum(size for _, _, size in self.masks)

    @property
    def n_weights(self) -> int:
        return sum(r * c for _, _, r, c in self.weights)

    @property
    def n_words(self) -> int:
        """Words of one complete state: currents, masks, weights, counters, the LFSR state
        (a trace row; the debug port's address space)."""
        return self.n_currents + self.n_masks + self.n_weights + len(COUNTERS) + 1

    def name_of(self, kind: str, column: int) -> str:
        """Human name of a state word, e.g. ``n2+[0]`` or ``W2[0,3]``."""
        if kind == "currents" or kind == "masks":
            for name, offset, size in getattr(self, kind):
                if offset <= column < offset + size:
                    return f"{name}[{column - offset}]"
        elif kind == "weights":
            for name, offset, rows, cols in self.weights:
                if offset <= column < offset + rows * cols:
                    r, c = divmod(column - offset, cols)
                    return f"{name}[{r},{c}]"
        elif kind == "counters":
            return COUNTERS[column]
        elif kind == "lfsr":
            return "lfsr"
        return f"{kind}[{column}]"

    def slice_of(self, name: str) -> tuple[str, slice]:
        """``(kind, slice)`` of a group, mask or matrix by name."""
        for kind in ("currents", "masks"):
            for n, offset, size in getattr(self, kind):
                if n == name:
                    return kind, slice(offset, offset + size)
        for n, offset, rows, cols in self.weights:
            if n == name:
                return "weights", slice(offset, offset + rows * cols)
        raise KeyError(name)


@dataclass(frozen=True)
class Mismatch:
    tick: int
    phase: str
    kind: str
    name: str
    expected: float
    actual: float

    def __str__(self) -> str:
        return (
            f"first mismatch at tick {self.tick} (phase {self.phase}): {self.kind} {self.name}: "
            f"golden {self.expected}, other {self.actual}"
        )


@dataclass
class Trace:
    """State rows at tick boundaries. Integer arrays in fixed point, float64 in float mode."""

    layout: StateLayout
    tick: np.ndarray  # (T,) global tick index, counted from reset
    phase: np.ndarray  # (T,) phase index of the tick
    currents: np.ndarray  # (T, n_currents)
    masks: np.ndarray  # (T, n_masks) uint8
    weights: np.ndarray  # (T, n_weights)
    counters: np.ndarray  # (T, len(COUNTERS)) int64
    lfsr: np.ndarray  # (T,) int64

    FIELDS = ("currents", "masks", "weights", "counters", "lfsr")

    def __len__(self) -> int:
        return len(self.tick)

    def series(self, name: str) -> np.ndarray:
        """All rows of one group, mask or matrix: shape (T, size)."""
        kind, sl = self.layout.slice_of(name)
        return getattr(self, kind)[:, sl]

    def first_mismatch(self, other: Trace, atol: float = 0.0) -> Mismatch | None:
        """The earliest differing state word (ties in one tick: currents, masks, weights,
        counters, lfsr, then column order), or None. ``atol`` > 0 compares floats."""
        if len(self) != len(other):
            n = min(len(self), len(other))
            first = self._first_in(other, n, atol)
            if first is not None:
                return first
            return Mismatch(n, "-", "length", "ticks", len(self), len(other))
        return self._first_in(other, len(self), atol)

    def _first_in(self, other: Trace, n: int, atol: float) -> Mismatch | None:
        best: tuple[int, int, str, int] | None = None
        for order, kind in enumerate(self.FIELDS):
            a, b = getattr(self, kind)[:n], getattr(other, kind)[:n]
            if a.ndim == 1:
                a, b = a[:, None], b[:, None]
            diff = np.abs(a.astype(np.float64) - b.astype(np.float64)) > atol
            rows = np.flatnonzero(diff.any(axis=1))
            if rows.size:
                row = int(rows[0])
                col = int(np.flatnonzero(diff[row])[0])
                if best is None or (row, order) < (best[0], best[1]):
                    best = (row, order, kind, col)
        if best is None:
            return None
        row, _, kind, col = best
        a, b = getattr(self, kind), getattr(other, kind)
        pick = (lambda arr: arr[row]) if a.ndim == 1 else (lambda arr: arr[row, col])
        return Mismatch(
            tick=int(self.tick[row]),
            phase=self.layout.phases[int(self.phase[row])],
            kind=kind,
            name=self.layout.name_of(kind, col),
            expected=pick(a).item(),
            actual=pick(b).item(),
        )

    def select(self, rows: np.ndarray) -> Trace:
        """The rows ``rows`` picks (indices or a boolean mask), such as the samples' ends."""
        return Trace(
            self.layout,
            *(
                getattr(self, f)[rows]
                for f in ("tick", "phase", "currents", "masks", "weights", "counters", "lfsr")
            ),
        )

    @classmethod
    def concatenate(cls, traces: list[Trace]) -> Trace:
        first = traces[0]
        return cls(
            first.layout,
            *(
                np.concatenate([getattr(t, f) for t in traces])
                for f in ("tick", "phase", "currents", "masks", "weights", "counters", "lfsr")
            ),
        )


class TraceRecorder:
    """Collects rows during a run; :meth:`finish` stacks them into a :class:`Trace`."""

    def __init__(self, layout: StateLayout) -> None:
        self.layout = layout
        self._rows: dict[str, list] = {
            k: [] for k in ("tick", "phase", "currents", "masks", "weights", "counters", "lfsr")
        }

    def record(self, tick: int, phase: int, currents, masks, weights, counters, lfsr) -> None:
        rows = self._rows
        rows["tick"].append(tick)
        rows["phase"].append(phase)
        rows["currents"].append(currents.copy())
        rows["masks"].append(masks.copy())
        rows["weights"].append(weights.copy())
        rows["counters"].append(counters.copy())
        rows["lfsr"].append(lfsr)

    def absorb(self, other: TraceRecorder) -> None:
        """Append every row ``other`` recorded."""
        for key, rows in other._rows.items():
            self._rows[key].extend(rows)

    def finish(self) -> Trace:
        r = self._rows
        layout = self.layout

        def stack(key: str, width: int, dtype) -> np.ndarray:
            if not r[key]:
                return np.zeros((0, width), dtype=dtype)
            return np.stack(r[key])

        dtype = r["currents"][0].dtype if r["currents"] else np.int64
        return Trace(
            layout,
            np.asarray(r["tick"], dtype=np.int64),
            np.asarray(r["phase"], dtype=np.int32),
            stack("currents", layout.n_currents, dtype),
            stack("masks", layout.n_masks, np.uint8),
            stack("weights", layout.n_weights, dtype),
            stack("counters", len(COUNTERS), np.int64),
            np.asarray(r["lfsr"], dtype=np.int64),
        )
