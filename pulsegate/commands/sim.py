"""``pulsegate sim xor|linear|ar2``: a task in the RTL under Verilator, compared with the golden
model at every tick; ``pulsegate sim board``: a board's system behind a pseudo-terminal."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from golden_model.tasks import AR2_MIN_SAMPLES

from ..progress import Progress
from .common import (
    CONFIG_HELP,
    LANES_HELP,
    UsageError,
    add_command,
    at_least,
    check_lanes,
    check_outputs,
    lane_setting,
    load_config,
    positive_float,
    positive_int,
    print_verdict,
    slot_count,
    write_json,
)
from .golden import add_linear_options


def _checked(args: argparse.Namespace, cfg, schedule) -> None:
    """What every task's run checks before it builds anything (its lanes, its core, where its
    files go), then the schedule it runs, printed."""
    check_lanes(args.lanes, schedule)
    check_core(args, cfg, schedule)
    check_outputs(args)
    print(schedule.table())


def _rtl_options(args: argparse.Namespace) -> dict:
    """What every task's RTL run takes from the command line, in one place (a task that
    forgot ``--core`` ran the spatial core whatever was asked)."""
    return {"lanes": args.lanes, "waves": args.waves, "live": args.verbose, "core": args.core}


def _report(args: argparse.Namespace, verdict: dict, cfg) -> None:
    """The verdict, with the configuration it ran, as JSON where ``--json`` says."""
    verdict["config"] = cfg.to_dict()
    write_json(args.json, verdict)


def run_xor(args: argparse.Namespace) -> int:
    from golden_model.schedule import compile_backprop
    from hw.network import lanes_label
    from sim.tasks import rtl_xor

    from .. import plots

    cfg = load_config(args, "xor", "xor")
    schedule = compile_backprop(cfg)
    _checked(args, cfg, schedule)
    bar = Progress("golden model fixes the sample sequence")
    print("building the RTL with Verilator and training it beside the golden model ...")
    verdict, golden = rtl_xor(cfg, max_samples=args.max_samples, progress=bar, **_rtl_options(args))
    bar.close()
    print_verdict(verdict)
    state = "converged" if verdict["converged"] else "did NOT converge"
    per_sample = verdict["cycles"] / max(verdict["samples"], 1)
    print(
        f"{state} after {verdict['samples']} samples, {verdict['cycles']} clock cycles "
        f"({per_sample:.0f} per sample, lanes={lanes_label(args.lanes)})"
    )
    print(" x1  x2  output (RTL weights)  target")
    for (x1, x2, out), t in zip(verdict["outputs"], (0, 1, 1, 0), strict=True):
        print(f" {x1:.0f}   {x2:.0f}   {out:+.4f}               {t}")
    if verdict.get("waves"):
        print(f"waves: {verdict['waves']}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        curve = plots.learning_curve(
            golden.curve, out / "learning_curve.png", f"XOR, seed {cfg.seed}"
        )
        raster = plots.raster(
            golden.step_trace,
            schedule,
            out / "raster.png",
            float(1 << cfg.current_frac),
            "one training step (the first), as the RTL runs it",
        )
        print(f"wrote {curve}\nwrote {raster}")
    _report(args, verdict, cfg)
    return 0 if verdict["bit_exact"] and verdict["converged"] else 1


def run_ar2(args: argparse.Namespace) -> int:
    from golden_model.schedule import compile_ar2
    from sim.tasks import rtl_ar2

    from .. import plots

    cfg = load_config(args, "ar2", "ar2")
    schedule = compile_ar2(cfg)
    _checked(args, cfg, schedule)
    print(f"building the RTL with Verilator and feeding it {args.samples} samples ...")
    verdict, result = rtl_ar2(cfg, samples=args.samples, **_rtl_options(args))
    print_verdict(verdict)
    print(f"{verdict['cycles']} clock cycles")
    for lag, err in enumerate(result.cov_rel_error):
        print(f"K{lag} (RTL) vs empirical C{lag}: relative Frobenius error {err:.4f}")
    print(f"prediction MSE {result.prediction_mse:.4f} (noise {result.noise_variance:.4f})")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        print(f"wrote {plots.ar2_figure(result, out / 'covariances.png')}")
    _report(args, verdict, cfg)
    return 0 if verdict["bit_exact"] else 1


def run_linear(args: argparse.Namespace) -> int:
    from golden_model.linear import check_linear
    from golden_model.schedule import compile_backprop
    from sim.tasks import rtl_linear

    from .. import plots
    from .golden import print_linear

    cfg = load_config(args, "linear", "linear")
    check_linear(cfg, args.scale)
    schedule = compile_backprop(cfg)
    _checked(args, cfg, schedule)
    print(f"building the RTL with Verilator and training it on {args.samples} samples ...")
    verdict, golden = rtl_linear(cfg, samples=args.samples, scale=args.scale, **_rtl_options(args))
    print_verdict(verdict)
    print(f"{verdict['cycles']} clock cycles")
    learned = dataclasses.replace(  # the RTL's weights in the golden result's clothes
        golden, W=np.asarray(verdict["W"]), bias=np.asarray(verdict["bias"])
    )
    print_linear(learned, cfg)
    if args.out:
        title = f"linear transform in the RTL, seed {cfg.seed}"
        print(f"wrote {plots.linear_figure(learned, Path(args.out) / 'linear.png', title)}")
    _report(args, verdict, cfg)
    return 0 if verdict["bit_exact"] and learned.converged else 1


def run_board(args: argparse.Namespace) -> int:
    """``sim board``: build the board's system into the native harness, serve its UART on a
    pty until interrupted."""
    import sys

    from boards.catalogue import BOARDS
    from boards.virtual_board import build_virtual_board, serve
    from golden_model.schedule import compile_backprop

    from .common import board_config

    cfg = board_config(args)
    schedule = compile_backprop(cfg)
    check_lanes(args.lanes, schedule)
    if args.core != "spatial":
        check_core(args, cfg, schedule)
    family = BOARDS[args.board].family
    print(
        f"building the virtual {args.board} ({'-'.join(map(str, cfg.layers))}, {args.core} "
        f"core, {family}) ...",
        flush=True,
    )
    try:
        virtual = build_virtual_board(
            args.board,
            cfg,
            lanes=args.lanes,
            core=args.core,
            clock_mhz=args.clock_mhz,
            baud=args.baud,
            slots=args.slots,
        )
    except ValueError as exc:
        raise UsageError("--baud", str(exc)) from None

    def ready(path: str) -> None:
        write_json(args.json, {"port": path, **virtual.describe()})
        print(
            f"{virtual.board} at {virtual.clock_hz / 1e6:g} MHz, {virtual.baud} baud "
            f"({virtual.divisor} clocks a bit), {virtual.slots} sample slots; Ctrl-C stops it",
            file=sys.stderr,
        )
        print(path, flush=True)

    status, stats = serve(virtual, ready)
    if stats:
        print(stats, file=sys.stderr)
    return 0 if status in (0, -2) else 1


def check_core(args: argparse.Namespace, cfg, schedule) -> None:
    """Refuse, in one line, what the chosen core cannot run (before any build)."""
    from hw.cores import make_core

    simd = getattr(args, "simd", None)
    try:
        core = make_core(args.core, schedule, cfg, args.lanes, debug=False, simd=simd)
        core._MustUse__silence = True  # built only to hear what it refuses
    except NotImplementedError as exc:
        raise UsageError("--simd" if simd else "--core", f"{args.core}: {exc}") from None
    except ValueError as exc:
        if simd is None:
            raise
        raise UsageError("--simd", str(exc)) from None


def add_core_option(parser: argparse.ArgumentParser) -> None:
    """``--core``: which network core the RTL is."""
    from hw.cores import CoreKind

    parser.add_argument(
        "--core",
        choices=list(CoreKind),
        default=CoreKind.SPATIAL,
        help="the network core: spatial (every configuration) or memory (group state in "
        "memory; one lane count for every matrix) (spatial)",
    )


def add_simd_option(parser: argparse.ArgumentParser) -> None:
    """``--simd``: the memory core's multipliers beside its element lanes."""
    parser.add_argument(
        "--simd",
        type=positive_int,
        metavar="N",
        help="memory core: N multipliers beside the --lanes element lanes (FINN's SIMD x PE): "
        "sweeps by rows and learning rules take N weights a clock; a multiple of --lanes "
        "(default: --lanes)",
    )


def add_rtl_options(parser: argparse.ArgumentParser) -> None:
    """The options every RTL task takes."""
    parser.add_argument("--config", help=CONFIG_HELP)
    parser.add_argument("--seed", type=int, help="override the configuration's seed")
    parser.add_argument("--lanes", type=lane_setting, default=1, help=LANES_HELP)
    parser.add_argument("--waves", action="store_true", help="write an FST waveform of the run")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show the simulator's log (cocotb and Verilator) instead of writing it to "
        "build/verilator/test.log",
    )
    parser.add_argument("--out", help="directory for plots")
    parser.add_argument("--json", help="write the result as JSON")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "sim",
        "train in the RTL under Verilator, compared with the golden model at every tick",
        "pulsegate sim xor --lanes 2 --out out/xor",
    )
    tasks = parser.add_subparsers(dest="task", required=True)
    p = add_command(
        tasks,
        "xor",
        "train XOR in the RTL, compared with the golden model",
        "pulsegate sim xor --json out/xor.json",
        run_xor,
    )
    add_rtl_options(p)
    add_core_option(p)
    p.add_argument("--max-samples", type=positive_int, default=4000, help="sample budget (4000)")
    p = add_command(
        tasks,
        "linear",
        "learn the linear transform in the RTL, compared with the golden model",
        "pulsegate sim linear --samples 400",
        run_linear,
    )
    add_rtl_options(p)
    add_core_option(p)
    add_linear_options(p)
    p = add_command(
        tasks,
        "ar2",
        "the AR(2) predictive circuit in the RTL",
        "pulsegate sim ar2 --samples 500",
        run_ar2,
    )
    add_rtl_options(p)
    add_core_option(p)
    p.add_argument(
        "--samples",
        type=at_least(AR2_MIN_SAMPLES),
        default=2000,
        help="samples of the process (2000)",
    )
    add_board_task(tasks)


def add_board_task(tasks: argparse._SubParsersAction) -> None:
    """``sim board``: the virtual board."""
    from boards.catalogue import BOARDS

    p = add_command(
        tasks,
        "board",
        "a board's system under Verilator behind a pseudo-terminal, for pulsegate host",
        "pulsegate sim board --board icebreaker   # then: pulsegate host info --port /dev/pts/N",
        run_board,
    )
    p.add_argument("--board", required=True, choices=list(BOARDS))
    p.add_argument("--config", help=CONFIG_HELP)
    p.add_argument("--lanes", type=lane_setting, default=1, help=LANES_HELP)
    add_core_option(p)
    p.add_argument(
        "--clock-mhz",
        type=positive_float,
        metavar="F",
        help="the virtual board's clock (default: the board's oscillator)",
    )
    p.add_argument(
        "--baud",
        type=positive_int,
        default=115200,
        help="the UART's baud rate, which sets its divisor; the host's --baud has no effect "
        "on a pty (115200)",
    )
    p.add_argument("--slots", type=slot_count, help="samples the store holds (the board's)")
    p.add_argument("--json", help="write the port's path and the board's settings as JSON")
