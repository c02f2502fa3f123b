"""Tasks on the RTL: train under Verilator on the golden model's own sample sequence."""

from __future__ import annotations

import numpy as np

from golden_model.circuit import FIXED, Circuit
from golden_model.config import Config
from golden_model.fixed import to_float
from golden_model.linear import LinearResult, linear_samples, split_weights, train_linear
from golden_model.schedule import compile_backprop
from golden_model.tasks import (
    Ar2Result,
    XorResult,
    ar2_data,
    ar2_result,
    evaluate_xor,
    train_xor,
    xor_sample,
)

from .verilator_run import run_verilator

__all__ = ["rtl_xor", "rtl_ar2", "rtl_linear"]


def rtl_xor(
    cfg: Config,
    *,
    max_samples: int = 4000,
    lanes: int = 1,
    waves: bool = False,
    work=None,
    progress=None,
    live: bool = False,
    core: str = "spatial",
) -> tuple[dict, XorResult]:
    """Train XOR in the RTL under Verilator, beside the golden model.

    The golden model trains first and fixes the sample sequence (and where it converged); the
    RTL then trains on exactly those samples, compared at every tick. The outputs are computed
    from the weights the RTL holds at the end. Returns the verdict and the golden result.
    """
    golden = train_xor(cfg, FIXED, max_samples, keep_step_trace=True, progress=progress)
    samples = [xor_sample(k) for k in golden.order]
    options = {"lanes": lanes, "waves": waves, "live": live, "core": core}
    if work is not None:
        options["work"] = work
    verdict = run_verilator(cfg, samples, **options)
    evaluator = Circuit(compile_backprop(cfg, train=False), cfg, FIXED)
    for name, codes in verdict.pop("weights").items():
        if name in evaluator.weights:
            evaluator.weights[name][...] = np.asarray(codes, dtype=np.int64)
    outputs = evaluate_xor(evaluator)
    targets = np.array([0.0, 1.0, 1.0, 0.0])
    verdict.update(
        converged=bool(np.all(np.abs(outputs - targets) < 0.25)),
        outputs=[
            [float(a), float(b), float(o)]
            for (a, b), o in zip(((0, 0), (0, 1), (1, 0), (1, 1)), outputs, strict=True)
        ],
        seed=cfg.seed,
        lanes=lanes,
        mode="rtl",
        core=str(core),
    )
    return verdict, golden


def rtl_ar2(
    cfg: Config,
    *,
    samples: int = 2000,
    lanes: int = 1,
    waves: bool = False,
    work=None,
    live: bool = False,
    core: str = "spatial",
) -> tuple[dict, Ar2Result]:
    """Feed the AR(2) process to the predictive circuit (a network core of kind ``core``) in
    the RTL under Verilator, compared with the golden model at every tick; analyse the
    covariances the RTL learned."""
    x, e = ar2_data(cfg, samples)
    options = {"lanes": lanes, "waves": waves, "circuit": "ar2", "live": live, "core": core}
    if work is not None:
        options["work"] = work
    verdict = run_verilator(cfg, [{"x": row} for row in x], **options)
    weights = verdict.pop("weights")
    learned = [to_float(np.asarray(weights[f"K{lag}"]), cfg.weight_frac) for lag in range(3)]
    result = ar2_result(learned, x, e, cfg, "rtl")
    verdict.update(result.to_json())
    verdict.update(lanes=lanes, samples=samples, core=str(core))
    return verdict, result


def rtl_linear(
    cfg: Config,
    *,
    samples: int = 2000,
    scale: float = 1.0,
    lanes: int = 1,
    waves: bool = False,
    work=None,
    live: bool = False,
    core: str = "spatial",
) -> tuple[dict, LinearResult]:
    """Learn the linear transform in the RTL under Verilator, compared with the golden model
    at every tick; the verdict carries the RTL's own effective weights and their error."""
    golden = train_linear(cfg, FIXED, samples=samples, scale=scale)
    options = {"lanes": lanes, "waves": waves, "live": live, "core": core}
    if work is not None:
        options["work"] = work
    verdict = run_verilator(cfg, linear_samples(cfg, samples, scale), **options)
    w1 = to_float(np.asarray(verdict.pop("weights")["W1"]), cfg.weight_frac)
    w, bias = split_weights(cfg, w1)
    verdict.update(
        A=golden.A.tolist(),
        W=w.tolist(),
        bias=bias.tolist(),
        max_abs_error=float(np.max(np.abs(w - golden.A))),
        tolerance=golden.tolerance,
        samples=samples,
        seed=cfg.seed,
        lanes=lanes,
        core=str(core),
        mode="rtl",
    )
    return verdict, golden
