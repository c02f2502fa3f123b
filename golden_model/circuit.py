"""The circuit simulator: runs a compiled schedule tick by tick, in float or in fixed point.

Fixed point is the executable specification of the RTL. One tick, in order:

1. (first tick of a phase) phase-start actions, all reading the state the previous phase left:
   mask captures ``p = [plus > minus]``, latched copies into memories, then clears of the
   phase's transfer targets;
2. (first tick of a phase) learning: ``post = plus - minus``, ``pre`` assembled from its terms,
   the product ``post * pre^T`` exact, one rounding (nearest, or stochastic with one LFSR step
   per synapse in row-major order), a saturating add; the transposed copy gets the same change;
3. transfers: terms through the same matrix columns are first combined into one signed
   source ``s = saturate(sum(sign * src))`` (a PMPY pair read as one number, see
   :func:`~golden_model.units.signed_value`); then ``acc = sum(W @ s)`` exact (identity terms
   count as weight 1.0), ``z = saturate(shift_round(acc, weight_frac))``, ``u+ = [z]^+``,
   ``u- = [-z]^+``, zeroed where a gating mask is 0, then gained:
   ``d = shift_round(G * u, gain_frac)`` with the exact gain (leaking sources) or the held
   gain (held sources);
4. every population: ``I' = saturate(leak(I) + d)`` (``d = 0`` when not gated); held groups
   keep their value.

Saturation events go to counters ``sat_current`` (steps 3-4), ``sat_weight`` and ``sat_copy``
(step 2); ``samples`` counts completed samples. All of them are state and part of the trace.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .choices import Rounding
from .config import Config
from .dynamics import drive_fixed, exact_gain, gain_word, held_gain
from .fixed import quantize, saturate, to_float
from .lfsr import Lfsr
from .schedule import HELD, POP, Schedule
from .trace import COUNTERS, StateLayout, Trace, TraceRecorder
from .units import (
    capture_mask,
    covariance_rate_shift,
    covariance_update,
    hebbian_update,
    population_step,
    round_sum,
    threshold_pair,
)

__all__ = ["FIXED", "FLOAT", "Circuit", "initial_weights"]

FIXED = "fixed"
FLOAT = "float"


def initial_weights(schedule: Schedule, cfg: Config) -> dict[str, np.ndarray]:
    """Float initial weights: He-scaled normal for Hebbian matrices (bias column ``bias_init``),
    zero for covariance matrices; transposed copies equal their originals."""
    rng = np.random.default_rng(cfg.seed)
    covariance = {
        ln.matrix for ph in schedule.phases for ln in ph.learns if ln.rule == "covariance"
    }
    out: dict[str, np.ndarray] = {}
    for m in schedule.matrices:
        if m.transpose_of is not None:
            continue
        if m.name in covariance:
            out[m.name] = np.zeros((m.rows, m.cols))
        else:
            fan_in = m.cols - 1
            w = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(m.rows, m.cols))
            w[:, -1] = cfg.bias_init
            out[m.name] = w
    for m in schedule.matrices:
        if m.transpose_of is not None:
            out[m.name] = out[m.transpose_of][:, : m.rows].T.copy()
    return out


@dataclass(frozen=True)
class _Source:
    """``sum(sign * state[slice])`` over ``parts``, through ``matrix[:, cols]`` (or identity)."""

    matrix: str | None
    cols: slice
    parts: tuple[tuple[slice, int], ...]


@dataclass(frozen=True)
class _Transfer:
    plus: slice
    minus: slice | None
    sources: tuple[_Source, ...]
    mask: slice | None
    held: bool


@dataclass(frozen=True)
class _Learn:
    matrix: str
    copy: str | None
    post_plus: slice
    post_minus: slice
    pre: tuple[_Source, ...]  # matrix unused: columns and parts of the pre-synaptic vector
    rule: str


@dataclass(frozen=True)
class _Phase:
    captures: tuple[tuple[slice, slice, slice], ...]
    copies: tuple[tuple[slice, slice], ...]
    clears: tuple[slice, ...]
    transfers: tuple[_Transfer, ...]
    learns: tuple[_Learn, ...]


class Circuit:
    """State and stepping of one compiled schedule.

    Parameters
    ----------
    schedule : Schedule
        The compiled phases.
    cfg : Config
        Formats, timing, learning rate, rounding and seed.
    mode : {"fixed", "float"}
        Bit-exact fixed point (the RTL's arithmetic) or float (the mathematical model).
    weights : dict of str to ndarray, optional
        Float initial weights (default :func:`initial_weights`); quantized in fixed mode.
    share_weights_with : Circuit, optional
        Use another circuit's weight memory (same matrices), e.g. an inference schedule
        evaluating a training circuit's weights.
    """

    def __init__(
        self,
        schedule: Schedule,
        cfg: Config,
        mode: str = FIXED,
        weights: dict[str, np.ndarray] | None = None,
        share_weights_with: Circuit | None = None,
    ) -> None:
        if mode not in (FIXED, FLOAT):
            raise ValueError(f"mode must be 'fixed' or 'float', got {mode!r}")
        self.schedule = schedule
        self.cfg = cfg
        self.mode = mode
        self.fixed = mode == FIXED
        self.layout = StateLayout.of(schedule)
        self.dtype = np.int64 if self.fixed else np.float64
        self.currents = np.zeros(self.layout.n_currents, dtype=self.dtype)
        self.masks = np.zeros(self.layout.n_masks, dtype=np.uint8)
        self.counters = np.zeros(len(COUNTERS), dtype=np.int64)
        self.lfsr = Lfsr(cfg.lfsr_seed)
        self.tick = 0
        self.last_output: np.ndarray | None = None
        self._slices = {name: slice(o, o + s) for name, o, s in self.layout.currents}
        self._mask_slices = {name: slice(o, o + s) for name, o, s in self.layout.masks}
        self._pop_index = np.concatenate(
            [
                np.arange(o, o + s)
                for name, o, s in self.layout.currents
                if schedule.group(name).kind == POP
            ]
            or [np.zeros(0, dtype=np.int64)]
        )
        if self.fixed:
            self.gain_exact, self.gain_held = gain_word(cfg)
        else:
            self.gain_exact = exact_gain(cfg.ticks_per_window, cfg.alpha)
            self.gain_held = held_gain(cfg.ticks_per_window, cfg.alpha)
        if share_weights_with is not None:
            self.weight_flat = share_weights_with.weight_flat
            self.weights = share_weights_with.weights
        else:
            self.weight_flat = np.zeros(self.layout.n_weights, dtype=self.dtype)
            self.weights = {
                name: self.weight_flat[o : o + r * c].reshape(r, c)
                for name, o, r, c in self.layout.weights
            }
            self.set_weights(weights if weights is not None else initial_weights(schedule, cfg))
        for name, value in schedule.constants:
            self.currents[self._slices[name]] = self.encode(
                np.full(schedule.group(name).size, value), name
            )
        self._plan = [self._compile_phase(ph) for ph in schedule.phases]

    # -- values in and out --------------------------------------------------------------------

    def encode(self, values: np.ndarray, name: str = "value") -> np.ndarray:
        """Float values to the circuit's representation; out-of-range input is an error."""
        values = np.asarray(values, dtype=np.float64)
        if not self.fixed:
            return values.copy()
        codes, events = quantize(values, self.cfg.current_frac, self.cfg.current_width)
        if events:
            top = to_float(np.int64((1 << (self.cfg.current_width - 1)) - 1), self.cfg.current_frac)
            raise ValueError(f"{name}: {events} value(s) outside the current range +-{top:g}")
        return codes

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return to_float(codes, self.cfg.current_frac) if self.fixed else np.asarray(codes, float)

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Load float weights (quantized with saturation in fixed mode)."""
        for name, w in weights.items():
            target = self.weights[name]
            w = np.asarray(w, dtype=np.float64)
            if w.shape != target.shape:
                raise ValueError(f"weights {name}: shape {w.shape}, expected {target.shape}")
            if self.fixed:
                target[...] = quantize(w, self.cfg.weight_frac, self.cfg.weight_width)[0]
            else:
                target[...] = w

    def weights_float(self) -> dict[str, np.ndarray]:
        if self.fixed:
            return {k: to_float(v, self.cfg.weight_frac) for k, v in self.weights.items()}
        return {k: v.copy() for k, v in self.weights.items()}

    def load(self, name: str, values: np.ndarray) -> None:
        """Write float values into a held input group."""
        if name not in self.schedule.inputs:
            raise ValueError(f"{name} is not an input of {self.schedule.name}")
        sl = self._slices[name]
        self.currents[sl] = self.encode(np.broadcast_to(values, (sl.stop - sl.start,)), name)

    def input_words(self, sample: dict[str, np.ndarray]) -> np.ndarray:
        """The codes of a sample's signed vectors as the schedule's input groups hold them
        (``x+ x- t+ t-``, in input order): what a host streams into the hardware."""
        words = []
        for name in self.schedule.inputs:
            base, half = name[:-1], name[-1]
            values = np.asarray(sample[base], dtype=np.float64)
            part = np.maximum(values, 0.0) if half == "+" else np.maximum(-values, 0.0)
            sl = self._slices[name]
            words.append(self.encode(np.broadcast_to(part, (sl.stop - sl.start,)), name))
        return np.concatenate(words).astype(np.int64)

    def load_signed(self, base: str, values: np.ndarray) -> None:
        """Write a signed vector as the PMPY pair ``base+ = [v]^+``, ``base- = [-v]^+``."""
        values = np.asarray(values, dtype=np.float64)
        self.load(base + "+", np.maximum(values, 0.0))
        self.load(base + "-", np.maximum(-values, 0.0))

    def group(self, name: str) -> np.ndarray:
        return self.currents[self._slices[name]]

    def mask(self, name: str) -> np.ndarray:
        return self.masks[self._mask_slices[name]]

    def state_vector(self) -> np.ndarray:
        """The complete state as one int64 vector, in the order of the trace and of the
        core's debug port: currents, masks, weights, counters, LFSR state."""
        return np.concatenate(
            [self.currents, self.masks, self.weight_flat, self.counters, [self.lfsr.state]]
        ).astype(np.int64)

    def output(self) -> np.ndarray:
        """Float value of the readout captured during the last sample."""
        if self.last_output is None:
            raise RuntimeError("no sample has been run")
        return self.decode(self.last_output)

    # -- running ------------------------------------------------------------------------------

    def run_sample(self, recorder: TraceRecorder | None = None) -> None:
        """Run every phase of the schedule once (one training or inference sample)."""
        readout = self.schedule.readout
        n_ticks = self.cfg.ticks_per_window
        for index, phase in enumerate(self._plan):
            if readout is not None and readout.phase == index:
                self._read_output()
            for n in range(n_ticks):
                self._tick(phase, n == 0)
                if index == len(self._plan) - 1 and n == n_ticks - 1:
                    self.counters[3] += 1
                if recorder is not None:
                    recorder.record(
                        self.tick,
                        index,
                        self.currents,
                        self.masks,
                        self.weight_flat,
                        self.counters,
                        self.lfsr.state,
                    )
                self.tick += 1
        if readout is not None and readout.phase == len(self._plan):
            self._read_output()

    def run(self, samples: int, recorder: TraceRecorder | None = None) -> None:
        for _ in range(samples):
            self.run_sample(recorder)

    def recorder(self) -> TraceRecorder:
        return TraceRecorder(self.layout)

    def trace_samples(self, samples: list[dict[str, np.ndarray]]) -> Trace:
        """Train on ``samples`` in order (each a mapping of signed input names to values)
        and return the state at every tick boundary they pass."""
        recorder = self.recorder()
        for sample in samples:
            for name, values in sample.items():
                self.load_signed(name, values)
            self.run_sample(recorder)
        return recorder.finish()

    def _read_output(self) -> None:
        r = self.schedule.readout
        value = self.currents[self._slices[r.plus]].copy()
        if r.minus is not None:
            value = value - self.currents[self._slices[r.minus]]
        self.last_output = value

    def _tick(self, phase: _Phase, first: bool) -> None:
        cur = self.currents
        if first:
            for mask, plus, minus in phase.captures:
                self.masks[mask] = capture_mask(cur[plus], cur[minus])
            latched = [cur[src].copy() for _, src in phase.copies]
            for (target, _), value in zip(phase.copies, latched, strict=True):
                cur[target] = value
            for target in phase.clears:
                cur[target] = 0
            for learn in phase.learns:
                self._learn(learn)
        drive = np.zeros_like(cur)
        for tr in phase.transfers:
            self._transfer(tr, drive)
        pops = self._pop_index
        if self.fixed:
            # Each transfer has already gained its drive: unit gain here.
            new, events = population_step(
                cur[pops],
                drive[pops],
                gain_q=1,
                gain_frac=0,
                leak_shift=self.cfg.leak_shift,
                width=self.cfg.current_width,
            )
            self.counters[0] += events
        else:
            new = (1.0 - self.cfg.alpha) * cur[pops] + drive[pops]
        cur[pops] = new

    def _combine(self, source: _Source) -> np.ndarray:
        """A signed source vector: ``sum(sign * part)``, saturated in fixed point."""
        cur = self.currents
        if len(source.parts) == 1 and source.parts[0][1] == 1:
            return cur[source.parts[0][0]]  # one positive part cannot leave the range
        value = sum(cur[sl] * sign for sl, sign in source.parts)
        if not self.fixed:
            return value
        value, events = saturate(value, self.cfg.current_width)
        self.counters[0] += events
        return value

    def _transfer(self, tr: _Transfer, drive: np.ndarray) -> None:
        cfg = self.cfg
        acc = 0
        for source in tr.sources:
            value = self._combine(source)
            if source.matrix is not None:
                acc = acc + self.weights[source.matrix][:, source.cols] @ value
            elif self.fixed:
                acc = acc + (value << cfg.weight_frac)  # identity: weight 1.0
            else:
                acc = acc + value
        if self.fixed:
            z, events = round_sum(acc, weight_frac=cfg.weight_frac, width=cfg.current_width)
            self.counters[0] += events
        else:
            z = acc
        gate = self.masks[tr.mask] if tr.mask is not None else 1
        if self.fixed:
            plus, minus = threshold_pair(z, gate)
        else:
            plus, minus = np.maximum(z, 0.0) * gate, np.maximum(-z, 0.0) * gate
        gain = self.gain_held if tr.held else self.gain_exact
        for target, u in ((tr.plus, plus), (tr.minus, minus)):
            if target is None:
                continue
            if self.fixed:
                drive[target] = drive_fixed(u, gain, cfg.gain_frac)
            else:
                drive[target] = gain * u

    def _learn(self, ln: _Learn) -> None:
        cfg = self.cfg
        w = self.weights[ln.matrix]
        post = self._combine(_Source(None, slice(0), ((ln.post_plus, 1), (ln.post_minus, -1))))
        pre = np.zeros(w.shape[1], dtype=self.dtype)
        for source in ln.pre:
            pre[source.cols] = self._combine(source)
        if ln.rule == "covariance":
            rate_shift = covariance_rate_shift(int(self.counters[3]) + 1, cfg.learning_rate_shift)
            if not self.fixed:
                w += 2.0**-rate_shift * (np.outer(post, pre) - w)
                return
            align = 2 * cfg.current_frac - cfg.weight_frac
            w[...], events = covariance_update(
                w,
                post,
                pre,
                align=align,
                rate_shift=rate_shift,
                width=cfg.weight_width,
                rounding=cfg.rounding,
                random=self._random(w.size, align + rate_shift),
            )
            self.counters[1] += events
            return
        copy = self.weights[ln.copy] if ln.copy is not None else None
        if not self.fixed:
            change = cfg.eta * np.outer(post, pre)
            w -= change
            if copy is not None:
                copy -= change[:, : copy.shape[0]].T
            return
        shift = cfg.update_shift
        w[...], change, events = hebbian_update(
            w,
            post,
            pre,
            shift=shift,
            width=cfg.weight_width,
            rounding=cfg.rounding,
            random=self._random(w.size, shift),
        )
        self.counters[1] += events
        if copy is not None:
            # A separate synapse receiving the same change: its own saturation, its own count.
            copy[...], events = saturate(copy - change[:, : copy.shape[0]].T, cfg.weight_width)
            self.counters[2] += events

    def _random(self, count: int, bits: int) -> np.ndarray | None:
        if self.cfg.rounding != Rounding.STOCHASTIC or bits == 0:
            return None
        return self.lfsr.draw(count, bits)

    # -- plan ---------------------------------------------------------------------------------

    def _compile_phase(self, phase) -> _Phase:
        s = self.schedule
        sl = self._slices

        def sources(items) -> tuple[_Source, ...]:
            """Group (source, matrix, sign, col0) terms by matrix columns."""
            grouped: dict[tuple, list] = {}
            for name, matrix, sign, col0 in items:
                cols = slice(col0, col0 + s.group(name).size)
                grouped.setdefault((matrix, cols.start, cols.stop), []).append((sl[name], sign))
            return tuple(
                _Source(matrix, slice(start, stop), tuple(parts))
                for (matrix, start, stop), parts in grouped.items()
            )

        transfers = tuple(
            _Transfer(
                sl[tr.plus],
                sl[tr.minus] if tr.minus else None,
                sources((t.source, t.matrix, t.sign, t.col0) for t in tr.terms),
                self._mask_slices[tr.mask] if tr.mask else None,
                s.group(tr.terms[0].source).kind == HELD,
            )
            for tr in phase.transfers
        )
        learns = tuple(
            _Learn(
                ln.matrix,
                ln.copy,
                sl[ln.post_plus],
                sl[ln.post_minus],
                sources((p.source, None, p.sign, p.col0) for p in ln.pre),
                ln.rule,
            )
            for ln in phase.learns
        )
        return _Phase(
            captures=tuple(
                (self._mask_slices[c.mask], sl[c.plus], sl[c.minus]) for c in phase.captures
            ),
            copies=tuple((sl[c.target], sl[c.source]) for c in phase.copies),
            clears=tuple(sl[name] for name in phase.cleared),
            transfers=transfers,
            learns=learns,
        )
