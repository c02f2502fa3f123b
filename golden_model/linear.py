"""The talk's first learning result: a linear transform learned by one layer of push-me
pull-you pairs (docs/model.md, section "The linear transform").

Signed inputs ``x`` (uniform in ``[-1, 1]``) and signed targets ``t = A x`` travel as PMPY
pairs through the one-layer backprop circuit (``layers = [inputs, outputs]``, linear output);
its Hebbian rule is then exact stochastic gradient descent on the squared error, and the
effective signed weights ``W`` approach ``A`` while the bias column approaches 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .circuit import FIXED, Circuit
from .config import Config, ConfigError
from .schedule import compile_backprop
from .trace import TraceRecorder

__all__ = [
    "DEFAULT_SCALE",
    "LinearResult",
    "check_linear",
    "linear_samples",
    "linear_target",
    "linear_tolerance",
    "split_weights",
    "train_linear",
]

#: Entries of ``A`` are drawn uniformly from ``[-scale, scale]``.
DEFAULT_SCALE = 1.0


@dataclass
class LinearResult:
    A: np.ndarray  # target matrix, outputs x inputs
    W: np.ndarray  # learned effective signed weights, without the bias column
    bias: np.ndarray  # learned bias column
    samples: int
    mode: str
    seed: int
    scale: float
    tolerance: float  # the bound max_abs_error must meet (docs/model.md)
    curve: list[tuple[int, float, float]] = field(default_factory=list)  # (samples, max|W-A|, mse)
    history: list[tuple[int, list[float]]] = field(default_factory=list)  # (samples, W.ravel())
    weight_flat: np.ndarray | None = None  # every weight code at the end, in trace order

    @property
    def max_abs_error(self) -> float:
        return float(np.max(np.abs(self.W - self.A)))

    @property
    def converged(self) -> bool:
        return self.max_abs_error <= self.tolerance

    def to_json(self) -> dict:
        return {
            "A": self.A.tolist(),
            "W": self.W.tolist(),
            "bias": self.bias.tolist(),
            "max_abs_error": self.max_abs_error,
            "tolerance": self.tolerance,
            "converged": self.converged,
            "samples": self.samples,
            "curve": [list(point) for point in self.curve],
            "mode": self.mode,
            "seed": self.seed,
            "scale": self.scale,
        }


def check_linear(cfg: Config, scale: float = DEFAULT_SCALE) -> None:
    """Raise :class:`ConfigError` naming the field unless the one-layer circuit can carry a
    transform of entries in ``[-scale, scale]``: a linear (signed) output, targets ``|A x| <=
    inputs x scale`` within the current range, and entries within the weight range."""
    if cfg.output != "linear":
        raise ConfigError(
            "output", f"the linear task needs a signed output 'linear', got {cfg.output!r}"
        )
    if not (math.isfinite(scale) and scale > 0):
        raise ConfigError("scale", f"must be a number > 0, got {scale}")
    weight_top = ((1 << (cfg.weight_width - 1)) - 1) / (1 << cfg.weight_frac)
    if scale > weight_top:
        raise ConfigError(
            "scale",
            f"entries up to {scale:g} do not fit the weight format (at most {weight_top:g} with "
            f"weight_width {cfg.weight_width}, weight_frac {cfg.weight_frac})",
        )
    current_top = ((1 << (cfg.current_width - 1)) - 1) / (1 << cfg.current_frac)
    largest = cfg.layers[0] * scale
    if largest > current_top:
        raise ConfigError(
            "scale",
            f"targets reach {cfg.layers[0]} inputs x {scale:g} = {largest:g}, beyond the current "
            f"range {current_top:g} (current_width {cfg.current_width}, current_frac "
            f"{cfg.current_frac}); use a smaller scale or fewer inputs",
        )


def linear_target(cfg: Config, scale: float = DEFAULT_SCALE) -> np.ndarray:
    """The target matrix ``A`` (outputs x inputs) of the configuration's seed."""
    inputs, outputs = cfg.layers
    return np.random.default_rng([cfg.seed, 7]).uniform(-scale, scale, (outputs, inputs))


def linear_samples(cfg: Config, count: int, scale: float = DEFAULT_SCALE) -> list[dict]:
    """``count`` training samples ``{"x": x, "t": A x}`` of the configuration's seed."""
    a = linear_target(cfg, scale)
    x = np.random.default_rng([cfg.seed, 8]).uniform(-1.0, 1.0, (count, cfg.layers[0]))
    return [{"x": row, "t": a @ row} for row in x]


def linear_tolerance(cfg: Config, mode: str) -> float:
    """How close ``W`` must come to ``A``: 1e-2 in float (exact SGD); in fixed point the
    update's dead zone plus the quantisation of the currents. A weight stops moving once
    ``eta d x`` rounds to 0 in weight units, i.e. once ``|d x| < 2^-(weight_frac + 1) / eta``;
    summed over the samples the residual error of a weight stays within twice that,
    ``2^(learning_rate_shift - weight_frac)``; the inputs and targets are quantised to
    ``2^-current_frac`` each (``inputs + 1`` terms). Default formats: 0.0029, measured
    0.0005-0.0006 (docs/model.md)."""
    if mode != FIXED:
        return 1e-2
    dead_zone = 2.0 ** (cfg.learning_rate_shift - cfg.weight_frac)
    return dead_zone + (cfg.layers[0] + 1) * 2.0**-cfg.current_frac


def split_weights(cfg: Config, w1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(W, bias)`` of the circuit's ``W1`` (float): the signed weights and the bias column."""
    inputs = cfg.layers[0]
    return w1[:, :inputs].copy(), w1[:, inputs].copy()


def train_linear(
    cfg: Config,
    mode: str = FIXED,
    samples: int = 4000,
    scale: float = DEFAULT_SCALE,
    progress: Callable[..., None] | None = None,
    recorder: TraceRecorder | None = None,
    checkpoints: int = 100,
) -> LinearResult:
    """Train the one-layer circuit on ``samples`` samples of ``t = A x``."""
    check_linear(cfg, scale)
    circuit = Circuit(compile_backprop(cfg), cfg, mode)
    a = linear_target(cfg, scale)
    every = max(1, samples // checkpoints)
    curve, history = [], []

    def checkpoint(done: int, error_sq: float, seen: int) -> None:
        w, _ = split_weights(cfg, circuit.weights_float()["W1"])
        curve.append((done, float(np.max(np.abs(w - a))), error_sq / max(seen, 1)))
        history.append((done, w.ravel().tolist()))

    checkpoint(0, 0.0, 0)
    error_sq, seen = 0.0, 0
    for done, sample in enumerate(linear_samples(cfg, samples, scale), start=1):
        circuit.load_signed("x", sample["x"])
        circuit.load_signed("t", sample["t"])
        circuit.run_sample(recorder)
        error_sq += float(np.sum((circuit.output() - sample["t"]) ** 2))
        seen += 1
        if done % every == 0 or done == samples:
            checkpoint(done, error_sq, seen)
            error_sq, seen = 0.0, 0
            if progress is not None:
                progress(done, samples, max_error=curve[-1][1])
    w, bias = split_weights(cfg, circuit.weights_float()["W1"])
    return LinearResult(
        A=a,
        W=w,
        bias=bias,
        samples=samples,
        mode=mode,
        seed=cfg.seed,
        scale=scale,
        tolerance=linear_tolerance(cfg, mode),
        curve=curve,
        history=history,
        weight_flat=circuit.weight_flat.copy(),
    )
