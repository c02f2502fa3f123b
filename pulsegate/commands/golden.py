"""``pulsegate golden xor|ar2``: a task on the golden model (fixed point or float)."""

from __future__ import annotations

import argparse
from pathlib import Path

from golden_model.circuit import FIXED, FLOAT
from golden_model.tasks import AR2_MIN_SAMPLES

from ..progress import Progress
from .common import (
    CONFIG_HELP,
    add_command,
    at_least,
    check_outputs,
    load_config,
    positive_int,
    write_json,
)


def run_xor(args: argparse.Namespace) -> int:
    from golden_model.schedule import compile_backprop
    from golden_model.tasks import train_xor

    from .. import plots

    cfg = load_config(args, "xor", "xor")
    check_outputs(args)
    mode = FLOAT if args.float else FIXED
    print(compile_backprop(cfg).table())
    bar = Progress(
        f"xor [{mode}]",
        stops=f"all four outputs are within 0.25 of their targets, or at {args.max_samples:,}",
    )
    result = train_xor(cfg, mode, max_samples=args.max_samples, progress=bar, keep_step_trace=True)
    bar.close()
    verdict = "converged" if result.converged else "did NOT converge"
    print(f"\n{verdict} after {result.samples} samples ({result.ticks} ticks)")
    print(f"mode {mode}, seed {cfg.seed}")
    print(" x1  x2  output  target")
    for (x1, x2, out), t in zip(result.outputs, (0, 1, 1, 0), strict=True):
        print(f" {x1:.0f}   {x2:.0f}   {out:+.4f}  {t}")
    data = result.to_json()
    data["config"] = cfg.to_dict()
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        curve = plots.learning_curve(
            result.curve, out / "learning_curve.png", f"XOR, {mode}, seed {cfg.seed}"
        )
        scale = float(1 << cfg.current_frac) if mode == FIXED else 1.0
        raster = plots.raster(
            result.step_trace,
            compile_backprop(cfg),
            out / "raster.png",
            scale,
            f"one training step (the first), XOR {'-'.join(map(str, cfg.layers))}, "
            f"N={cfg.ticks_per_window}",
        )
        print(f"wrote {curve}\nwrote {raster}")
    write_json(args.json, data)
    return 0 if result.converged else 1


def run_ar2(args: argparse.Namespace) -> int:
    import numpy as np

    from golden_model.schedule import compile_ar2
    from golden_model.tasks import A1_TRUE, A2_TRUE, run_ar2

    from .. import plots

    cfg = load_config(args, "ar2", "ar2")
    check_outputs(args)
    mode = FLOAT if args.float else FIXED
    print(compile_ar2(cfg).table())
    bar = Progress(f"ar2 [{mode}]")
    result = run_ar2(cfg, mode, samples=args.samples, progress=bar)
    bar.close()
    np.set_printoptions(precision=3, suppress=True)
    print(f"\n{result.samples} samples, mode {mode}, seed {cfg.seed}")
    for lag, err in enumerate(result.cov_rel_error):
        print(f"K{lag} vs empirical C{lag}: relative Frobenius error {err:.4f}")
    print(f"Yule-Walker on K: A1 = {np.round(result.A1, 3).tolist()}")
    print(f"                  A2 = {np.round(result.A2, 3).tolist()}")
    print(f"true:             A1 = {A1_TRUE.tolist()}")
    print(f"                  A2 = {A2_TRUE.tolist()}")
    print(
        f"prediction MSE {result.prediction_mse:.4f} "
        f"(true coefficients {result.true_prediction_mse:.4f}, "
        f"noise variance {result.noise_variance:.4f}, predicting 0: {result.baseline_mse:.4f})"
    )
    data = result.to_json()
    data["config"] = cfg.to_dict()
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        print(f"wrote {plots.ar2_figure(result, out / 'covariances.png')}")
    write_json(args.json, data)
    return 0


def print_linear(result, cfg) -> None:
    """The learned matrix beside the target, the largest error and the samples taken."""
    print(f"\n{result.samples} samples, mode {result.mode}, seed {cfg.seed}")
    print("learned W                      | target A")
    for w_row, a_row in zip(result.W, result.A, strict=True):
        print(
            " ".join(f"{v:+8.4f}" for v in w_row).ljust(30)
            + " | "
            + " ".join(f"{v:+8.4f}" for v in a_row)
        )
    print(f"bias column: {' '.join(f'{v:+.5f}' for v in result.bias)}")
    verdict = "within" if result.converged else "NOT within"
    print(
        f"largest |W - A| {result.max_abs_error:.5f}: {verdict} the tolerance "
        f"{result.tolerance:.5f}"
    )


def run_linear(args: argparse.Namespace) -> int:
    from golden_model.linear import check_linear, train_linear

    from .. import plots

    cfg = load_config(args, "linear", "linear")
    check_linear(cfg, args.scale)
    check_outputs(args)
    mode = FLOAT if args.float else FIXED
    bar = Progress(f"linear [{mode}]")
    result = train_linear(cfg, mode, samples=args.samples, scale=args.scale, progress=bar)
    bar.close()
    print_linear(result, cfg)
    data = result.to_json()
    data["config"] = cfg.to_dict()
    if args.out:
        out = Path(args.out)
        title = f"linear transform {cfg.layers[0]} -> {cfg.layers[1]}, {mode}, seed {cfg.seed}"
        print(f"wrote {plots.linear_figure(result, out / 'linear.png', title)}")
    write_json(args.json, data)
    return 0 if result.converged else 1


def add_linear_options(parser: argparse.ArgumentParser) -> None:
    """The linear task's own options (the golden model's and the RTL's)."""
    parser.add_argument(
        "--samples", type=positive_int, default=2000, help="training samples (2000)"
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="entries of A are drawn from [-scale, scale] (1.0)",
    )


def add_task_options(parser: argparse.ArgumentParser) -> None:
    """The options every golden-model task takes."""
    parser.add_argument("--config", help=CONFIG_HELP)
    parser.add_argument("--seed", type=int, help="override the configuration's seed")
    parser.add_argument("--float", action="store_true", help="float model, not fixed point")
    parser.add_argument("--out", help="directory for plots")
    parser.add_argument("--json", help="write the result as JSON")


RUNS = {"xor": run_xor, "ar2": run_ar2, "linear": run_linear}
TASKS = {
    "xor": ("train XOR on the two-layer circuit", "pulsegate golden xor --out out/xor"),
    "ar2": (
        "learn lagged covariances of an AR(2) process",
        "pulsegate golden ar2 --samples 5000 --json out/ar2.json",
    ),
    "linear": (
        "learn a linear transform t = A x with one layer of PMPY pairs",
        "pulsegate golden linear --out out/linear",
    ),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "golden",
        "run a task on the golden model (fixed point unless --float)",
        "pulsegate golden xor --out out/xor",
    )
    tasks = parser.add_subparsers(dest="task", required=True)
    for name, (help_text, example) in TASKS.items():
        p = add_command(tasks, name, help_text, example, RUNS[name])
        add_task_options(p)
        if name == "xor":
            p.add_argument(
                "--max-samples", type=positive_int, default=4000, help="sample budget (4000)"
            )
        elif name == "linear":
            add_linear_options(p)
        else:
            p.add_argument(
                "--samples",
                type=at_least(AR2_MIN_SAMPLES),
                default=20000,
                help="samples of the process (20000)",
            )
