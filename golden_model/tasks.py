"""The two tasks of the talk on the circuit model: XOR by backprop, and the AR(2) predictive
circuit that learns lagged covariances (docs/model.md, section 3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .circuit import FIXED, Circuit
from .config import Config
from .schedule import compile_ar2, compile_backprop
from .trace import Trace, TraceRecorder

__all__ = [
    "XOR_INPUTS",
    "XOR_TARGETS",
    "XorResult",
    "train_xor",
    "evaluate_xor",
    "xor_sample",
    "A1_TRUE",
    "A2_TRUE",
    "simulate_ar2",
    "lag_covariances",
    "yule_walker",
    "Ar2Result",
    "run_ar2",
    "ar2_data",
    "ar2_result",
]

#: ``progress(done, total, **status)`` is called now and then during long runs (``status``:
#: figures worth showing, such as the current error).
Progress = Callable[[int, int], None]

XOR_INPUTS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_TARGETS = np.array([[0.0], [1.0], [1.0], [0.0]])


@dataclass
class XorResult:
    converged: bool
    samples: int  # training samples run when all four outputs were first within tolerance
    outputs: list[list[float]]  # [x1, x2, output] for the four inputs, at the end
    mode: str
    seed: int
    ticks: int  # ticks simulated in training
    curve: list[tuple[int, float]] = field(default_factory=list)  # (samples, mean squared error)
    step_trace: Trace | None = None  # the first training sample, tick by tick
    order: list[int] = field(default_factory=list)  # pattern index of every training sample

    def to_json(self) -> dict:
        return {
            "converged": self.converged,
            "samples": self.samples,
            "outputs": self.outputs,
            "mode": self.mode,
            "seed": self.seed,
            "ticks": self.ticks,
            "curve": [[s, e] for s, e in self.curve],
        }


def xor_sample(k: int) -> dict[str, np.ndarray]:
    """Pattern ``k`` of XOR as the circuit's signed inputs."""
    return {"x": XOR_INPUTS[k], "t": XOR_TARGETS[k]}


def evaluate_xor(evaluator: Circuit) -> np.ndarray:
    """Outputs of the inference circuit for the four XOR inputs."""
    out = np.empty(len(XOR_INPUTS))
    for k, x in enumerate(XOR_INPUTS):
        evaluator.load_signed("x", x)
        evaluator.run_sample()
        out[k] = evaluator.output()[0]
    return out


def train_xor(
    cfg: Config,
    mode: str = FIXED,
    max_samples: int = 4000,
    tolerance: float = 0.25,
    progress: Progress | None = None,
    recorder: TraceRecorder | None = None,
    keep_step_trace: bool = False,
) -> XorResult:
    """Train XOR on the circuit until every output is within ``tolerance`` of its target.

    Samples come in epochs: a seeded random permutation of the four patterns. After every
    epoch the inference schedule (same weights, no learning) evaluates the four inputs; the
    run stops at the first epoch boundary where all four are within tolerance.
    ``recorder`` receives every training tick (for comparisons with the RTL);
    ``keep_step_trace`` keeps the first training sample's trace for the raster plot.
    """
    if cfg.layers[0] != 2 or cfg.layers[-1] != 1:
        raise ValueError(f"XOR needs layers (2, ..., 1), got {cfg.layers}")
    circuit = Circuit(compile_backprop(cfg), cfg, mode)
    evaluator = Circuit(compile_backprop(cfg, train=False), cfg, mode, share_weights_with=circuit)
    order = np.random.default_rng([cfg.seed, 1])
    targets = XOR_TARGETS[:, 0]
    curve: list[tuple[int, float]] = []
    samples = 0
    converged = False
    last: TraceRecorder | None = None
    trained: list[int] = []
    while True:
        outputs = evaluate_xor(evaluator)
        curve.append((samples, float(np.mean((outputs - targets) ** 2))))
        if np.all(np.abs(outputs - targets) < tolerance):
            converged = True
            break
        if samples >= max_samples:
            break
        for k in order.permutation(len(XOR_INPUTS)):
            trained.append(int(k))
            circuit.load_signed("x", XOR_INPUTS[k])
            circuit.load_signed("t", XOR_TARGETS[k])
            if keep_step_trace and samples == 0:
                last = circuit.recorder()
                circuit.run_sample(last)
                if recorder is not None:
                    recorder.absorb(last)
            else:
                circuit.run_sample(recorder)
            samples += 1
        if progress is not None:
            progress(samples, max_samples, error=curve[-1][1])
    return XorResult(
        converged=converged,
        samples=samples,
        outputs=[
            [float(a), float(b), float(o)] for (a, b), o in zip(XOR_INPUTS, outputs, strict=True)
        ],
        mode=mode,
        seed=cfg.seed,
        ticks=circuit.tick,
        curve=curve,
        step_trace=last.finish() if last is not None else None,
        order=trained,
    )


# -- AR(2) -------------------------------------------------------------------------------------

#: A stable 2-D AR(2) process (companion spectral radius about 0.66).
A1_TRUE = np.array([[0.5, 0.2], [-0.2, 0.4]])
A2_TRUE = np.array([[-0.3, 0.1], [0.1, -0.25]])


def simulate_ar2(
    a1: np.ndarray, a2: np.ndarray, samples: int, rng: np.random.Generator, burn_in: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """``x_t = A1 x_{t-1} + A2 x_{t-2} + e_t`` with unit Gaussian noise; returns ``(x, e)``."""
    d = a1.shape[0]
    e = rng.standard_normal((samples + burn_in, d))
    x = np.zeros((samples + burn_in, d))
    for t in range(2, samples + burn_in):
        x[t] = a1 @ x[t - 1] + a2 @ x[t - 2] + e[t]
    return x[burn_in:], e[burn_in:]


def lag_covariances(x: np.ndarray, lags: int = 3) -> list[np.ndarray]:
    """``C_l = (1/T) sum_t x_t x_{t-l}^T`` with ``x_{t-l} = 0`` before the start: the same
    data, in the same order, that the circuit's memories see."""
    T = len(x)
    return [x[lag:].T @ x[: T - lag] / T for lag in range(lags)]


def yule_walker(c0: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``[C1 C2] = [A1 A2] [[C0, C1], [C1^T, C0]]`` for the AR(2) coefficients."""
    d = c0.shape[0]
    big = np.block([[c0, c1], [c1.T, c0]])
    rhs = np.concatenate([c1, c2], axis=1)
    a = np.linalg.solve(big.T, rhs.T).T
    return a[:, :d], a[:, d:]


@dataclass
class Ar2Result:
    K: list[np.ndarray]
    C: list[np.ndarray]
    cov_rel_error: list[float]
    A1: np.ndarray
    A2: np.ndarray
    prediction_mse: float
    noise_variance: float
    baseline_mse: float  # error of predicting 0
    true_prediction_mse: float  # error of the true A1, A2 on the same data
    samples: int
    mode: str
    seed: int
    curve: list[tuple[int, list[float]]] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "cov_rel_error": self.cov_rel_error,
            "A1": self.A1.tolist(),
            "A2": self.A2.tolist(),
            "A1_true": A1_TRUE.tolist(),
            "A2_true": A2_TRUE.tolist(),
            "prediction_mse": self.prediction_mse,
            "noise_variance": self.noise_variance,
            "baseline_mse": self.baseline_mse,
            "true_prediction_mse": self.true_prediction_mse,
            "K": [k.tolist() for k in self.K],
            "C": [c.tolist() for c in self.C],
            "samples": self.samples,
            "mode": self.mode,
            "seed": self.seed,
            "curve": [[s, e] for s, e in self.curve],
        }


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


#: Fewest samples of the process that give lag-2 covariances and one prediction.
AR2_MIN_SAMPLES = 3


def run_ar2(
    cfg: Config,
    mode: str = FIXED,
    samples: int = 20000,
    progress: Progress | None = None,
    recorder: TraceRecorder | None = None,
    checkpoints: int = 40,
) -> Ar2Result:
    """Feed an AR(2) process through the predictive circuit; compare what it learned.
    ``samples`` must be at least :data:`AR2_MIN_SAMPLES`."""
    if samples < AR2_MIN_SAMPLES:
        raise ValueError(f"samples must be >= {AR2_MIN_SAMPLES}, got {samples}")
    x, e = ar2_data(cfg, samples)
    circuit = Circuit(compile_ar2(cfg), cfg, mode)
    every = max(1, samples // checkpoints)
    curve = []
    for t in range(samples):
        circuit.load_signed("x", x[t])
        circuit.run_sample(recorder)
        if (t + 1) % every == 0 or t + 1 == samples:
            learned = circuit.weights_float()
            seen = lag_covariances(x[: t + 1])
            curve.append((t + 1, [_rel(learned[f"K{lag}"], seen[lag]) for lag in range(3)]))
            if progress is not None:
                progress(t + 1, samples)
    learned = circuit.weights_float()
    return ar2_result([learned[f"K{lag}"] for lag in range(3)], x, e, cfg, mode, curve)


def ar2_data(cfg: Config, samples: int) -> tuple[np.ndarray, np.ndarray]:
    """The AR(2) process the task feeds (seeded by ``cfg.seed``): ``(x, e)``."""
    d = cfg.layers[0]
    if d != A1_TRUE.shape[0]:
        raise ValueError(f"the AR(2) task is {A1_TRUE.shape[0]}-dimensional, layers[0] = {d}")
    return simulate_ar2(A1_TRUE, A2_TRUE, samples, np.random.default_rng([cfg.seed, 2]))


def ar2_result(
    K: list[np.ndarray], x: np.ndarray, e: np.ndarray, cfg: Config, mode: str, curve=()
) -> Ar2Result:
    """Compare learned lag covariances with the data's: errors, Yule-Walker, prediction."""
    C = lag_covariances(x)
    a1, a2 = yule_walker(*K)
    residual = x[2:] - x[1:-1] @ a1.T - x[:-2] @ a2.T
    true_residual = x[2:] - x[1:-1] @ A1_TRUE.T - x[:-2] @ A2_TRUE.T
    return Ar2Result(
        K=K,
        C=C,
        cov_rel_error=[_rel(k, c) for k, c in zip(K, C, strict=True)],
        A1=a1,
        A2=a2,
        prediction_mse=float(np.mean(residual**2)),
        noise_variance=float(np.var(e)),
        baseline_mse=float(np.mean(x**2)),
        true_prediction_mse=float(np.mean(true_residual**2)),
        samples=len(x),
        mode=mode,
        seed=cfg.seed,
        curve=list(curve),
    )
