"""``pulsegate``: the command line."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from golden_model.circuit import FIXED, FLOAT
from golden_model.config import Config, ConfigError, default_config

from .progress import ProgressLine


def _config(args: argparse.Namespace, circuit: str) -> Config:
    cfg = default_config(circuit)
    if getattr(args, "config", None):
        cfg = Config.load(args.config, base=cfg)
    if getattr(args, "seed", None) is not None:
        cfg = cfg.replace(seed=args.seed)
    return cfg


def _write_json(path: str | None, data: dict) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        print(f"wrote {path}")


def cmd_golden_xor(args: argparse.Namespace) -> int:
    from golden_model.schedule import compile_backprop
    from golden_model.tasks import train_xor

    from . import plots

    cfg = _config(args, "xor")
    mode = FLOAT if args.float else FIXED
    print(compile_backprop(cfg).table())
    bar = ProgressLine(f"xor [{mode}]")
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
    _write_json(args.json, data)
    return 0 if result.converged else 1


def format_confusion(confusion, classes) -> str:
    """The confusion matrix as text: rows true, columns predicted."""
    width = max(4, max(len(c) for c in classes) + 1)
    head = " " * width + "".join(f"{c[: width - 1]:>{width}}" for c in classes)
    rows = [
        f"{cls[: width - 1]:>{width}}" + "".join(f"{int(v):>{width}}" for v in row)
        for cls, row in zip(classes, confusion, strict=True)
    ]
    return "\n".join([head, *rows])


def _train_rtl(
    cfg: Config,
    data,
    epochs: int,
    limit: int | None,
    lanes: int | dict[str, int],
    threads: int = 1,
) -> dict:
    """Train the core under the native Verilator harness on the samples
    :func:`train_classifier` uses, in the same order; its complete state is compared with the
    golden model after every sample. ``threads``: the Verilated model's threads."""
    from golden_model.classify import training_samples
    from hw.network import lanes_label
    from sim.fast_run import run_fast

    samples = training_samples(cfg, data, epochs, limit)
    layers = "-".join(map(str, cfg.layers))
    print(
        f"RTL: building the {layers} core at {lanes_label(lanes)} lane(s) and "
        f"training {len(samples)} samples under Verilator (the first build of a large core "
        "takes minutes) ...",
        flush=True,
    )
    work = Path("build") / "train-rtl" / f"{data.name}-lanes{lanes_label(lanes)}"

    def progress(done: int, total: int) -> None:
        print(f"RTL: {done:,} of {total:,} samples", flush=True)

    return run_fast(cfg, samples, lanes=lanes, work=work, threads=threads, progress=progress)


def cmd_train(args: argparse.Namespace) -> int:
    from golden_model.classify import train_classifier
    from golden_model.datasets import dataset_config, default_epochs, load_dataset

    from . import plots

    for option, value in (
        ("--epochs", args.epochs),
        ("--samples", args.samples),
        ("--threads", args.threads),
    ):
        if value is not None and value < 1:
            print(f"pulsegate: error: {option} must be >= 1, got {value}", file=sys.stderr)
            return 2
    cfg = dataset_config(args.dataset)
    if args.config:
        cfg = Config.load(args.config, base=cfg)
    if args.seed is not None:
        cfg = cfg.replace(seed=args.seed)
    data = load_dataset(args.dataset)
    epochs = args.epochs or default_epochs(args.dataset)
    mode = FLOAT if args.float else FIXED
    print(
        f"{args.dataset}: {len(data.x_train)} training and {len(data.x_test)} test samples, "
        f"network {'-'.join(map(str, cfg.layers))}, eta 2^-{cfg.learning_rate_shift}, "
        f"{mode}, seed {cfg.seed}, {epochs} epochs"
    )

    def progress(epoch: int, total: int, result) -> None:
        _, train, test = result.curve[-1]
        print(
            f"epoch {epoch:3d}/{total}: training {train * 100:5.1f} %, test {test * 100:5.1f} %",
            flush=True,
        )

    limit = args.samples
    if args.rtl:
        if mode != FIXED:
            print("pulsegate: error: --rtl trains the fixed-point model's RTL", file=sys.stderr)
            return 2
        verdict = _train_rtl(cfg, data, epochs, limit, args.lanes, args.threads)
        if not verdict["bit_exact"]:
            print(f"RTL differs from the golden model: {verdict['first_mismatch']}")
            return 1
        print(
            f"RTL: {verdict['samples']} samples, complete state ({verdict['state_words']:,} "
            f"words) bit-exact with the golden model after every one; "
            f"{verdict['cycles_per_sample']:,.0f} cycles per sample; simulated "
            f"{verdict['simulated_clocks']:,} clocks in {verdict['sim_seconds']:.1f} s "
            f"({verdict['clocks_per_second']:,.0f} clocks/s; "
            f"build {verdict['build_seconds']:.0f} s)"
        )
    result = train_classifier(cfg, data, epochs, mode, progress=progress, limit=limit)
    if args.rtl:
        # Every tick was compared; the weights the RTL ended with are checked once more here.
        golden = {name: w.tolist() for name, w in result.weights.items()}
        if verdict["weights"] != golden:
            print("RTL final weights differ from the golden model's")
            return 1
        print("RTL: the accuracy below is that of the weights the RTL reached")
    print(f"\ntest accuracy {result.test_accuracy * 100:.2f} % after {result.samples} samples")
    print("confusion matrix (test; rows true, columns predicted):")
    print(format_confusion(result.confusion, data.classes))
    if result.counters[:3] != [0, 0, 0]:
        print(f"saturation events: currents, weights, copies = {result.counters[:3]}")
    payload = result.to_json()
    payload["config"] = cfg.to_dict()
    payload["classes"] = list(data.classes)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        title = f"{args.dataset} {'-'.join(map(str, cfg.layers))}, {mode}, seed {cfg.seed}"
        curve = plots.accuracy_curve(result.curve, out / "accuracy.png", title)
        matrix = plots.confusion_figure(
            result.confusion, data.classes, out / "confusion.png", f"{title}\ntest set"
        )
        print(f"wrote {curve}\nwrote {matrix}")
    _write_json(args.json, payload)
    return 0


def cmd_golden_ar2(args: argparse.Namespace) -> int:
    import numpy as np

    from golden_model.schedule import compile_ar2
    from golden_model.tasks import A1_TRUE, A2_TRUE, run_ar2

    from . import plots

    cfg = _config(args, "ar2")
    mode = FLOAT if args.float else FIXED
    print(compile_ar2(cfg).table())
    bar = ProgressLine(f"ar2 [{mode}]")
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
    _write_json(args.json, data)
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    from golden_model.schedule import compile_ar2, compile_backprop

    cfg = _config(args, args.circuit)
    schedule = (
        compile_ar2(cfg)
        if args.circuit == "ar2"
        else compile_backprop(cfg, train=not args.inference)
    )
    print(schedule.table())
    return 0


def cmd_bench_golden(args: argparse.Namespace) -> int:
    from .bench import bench_golden

    data = bench_golden(seconds=args.seconds)
    _write_json(args.json, data)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from sim.generate import generate

    cfg = _config(args, args.circuit)
    paths = generate(cfg, args.out, circuit=args.circuit, lanes=args.lanes)
    for path in paths.values():
        print(f"wrote {path}")
    return 0


def _print_verdict(verdict: dict) -> None:
    """The bit-exact verdict of an RTL run, and where it first differed."""
    word = "BIT-EXACT" if verdict["bit_exact"] else "MISMATCH"
    print(
        f"\nRTL: {word}: {verdict['ticks_compared']} ticks compared, "
        f"{verdict['mismatches']} mismatching"
    )
    if verdict["first_mismatch"]:
        print(verdict["first_mismatch"])


def cmd_sim_xor(args: argparse.Namespace) -> int:
    from golden_model.schedule import compile_backprop
    from hw.network import lanes_label
    from sim.tasks import rtl_xor

    from . import plots

    cfg = _config(args, "xor")
    print(compile_backprop(cfg).table())
    bar = ProgressLine("golden model fixes the sample sequence")
    print("building the RTL with Verilator and training it beside the golden model ...")
    verdict, golden = rtl_xor(
        cfg,
        max_samples=args.max_samples,
        lanes=args.lanes,
        waves=args.waves,
        progress=bar,
        live=True,
    )
    bar.close()
    _print_verdict(verdict)
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
            compile_backprop(cfg),
            out / "raster.png",
            float(1 << cfg.current_frac),
            "one training step (the first), as the RTL runs it",
        )
        print(f"wrote {curve}\nwrote {raster}")
    verdict["config"] = cfg.to_dict()
    _write_json(args.json, verdict)
    return 0 if verdict["bit_exact"] and verdict["converged"] else 1


def cmd_sim_ar2(args: argparse.Namespace) -> int:
    from golden_model.schedule import compile_ar2
    from sim.tasks import rtl_ar2

    from . import plots

    cfg = _config(args, "ar2")
    print(compile_ar2(cfg).table())
    print(f"building the RTL with Verilator and feeding it {args.samples} samples ...")
    verdict, result = rtl_ar2(
        cfg, samples=args.samples, lanes=args.lanes, waves=args.waves, live=True
    )
    _print_verdict(verdict)
    print(f"{verdict['cycles']} clock cycles")
    for lag, err in enumerate(result.cov_rel_error):
        print(f"K{lag} (RTL) vs empirical C{lag}: relative Frobenius error {err:.4f}")
    print(f"prediction MSE {result.prediction_mse:.4f} (noise {result.noise_variance:.4f})")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        print(f"wrote {plots.ar2_figure(result, out / 'covariances.png')}")
    verdict["config"] = cfg.to_dict()
    _write_json(args.json, verdict)
    return 0 if verdict["bit_exact"] else 1


def cmd_bench_rtl(args: argparse.Namespace) -> int:
    from .bench import bench_rtl

    _write_json(args.json, bench_rtl(samples=args.samples))
    return 0


def cmd_bench_roofline(args: argparse.Namespace) -> int:
    from boards.targets import BOARDS

    from .roofline import DEFAULT_BOARDS, bench_roofline

    boards = tuple(getattr(args, "board", None) or DEFAULT_BOARDS)
    unknown = [b for b in boards if b not in BOARDS or BOARDS[b].family not in ("ice40", "ecp5")]
    if unknown:
        print(f"pulsegate: error: unknown board {unknown[0]!r}", file=sys.stderr)
        return 2
    data = bench_roofline(boards, epochs=getattr(args, "epochs", None))
    _write_json(getattr(args, "json", None), data)
    return 0


def cmd_bench_boards(args: argparse.Namespace) -> int:
    from boards.targets import BOARDS

    from .bench import bench_boards

    unknown = [b for b in args.board if b not in BOARDS]
    if unknown:
        print(
            f"pulsegate: error: unknown board {unknown[0]!r} (known: {', '.join(BOARDS)})",
            file=sys.stderr,
        )
        return 2
    _write_json(args.json, bench_boards(args.board or None, out=args.out))
    return 0


def cmd_bench_blocks(args: argparse.Namespace) -> int:
    from .bench import bench_blocks

    _write_json(args.json, bench_blocks())
    return 0


def _board_config(args: argparse.Namespace) -> Config:
    from boards.targets import board_config

    cfg = board_config()
    if getattr(args, "config", None):
        cfg = Config.load(args.config, base=cfg)
    return cfg


LANES_HELP = (
    "multiply-accumulates per clock, for all matrices or per matrix: 4, W1=33,W2=17; "
    "add pool=core for one multiplier pool (1)"
)


def _lane_setting(text: str) -> int | dict[str, int | str]:
    """``4`` (every matrix) or ``W1=33,W2=17`` (per matrix; a copy follows its primary),
    optionally with ``pool=core`` (one multiplier pool for the whole core)."""
    from hw.network import POOLS

    if text.isdigit() and int(text) >= 1:
        return int(text)
    plan: dict[str, int | str] = {}
    for part in text.split(","):
        name, equals, count = (item.strip() for item in part.partition("="))
        if name == "pool" and equals:
            if count not in POOLS:
                raise argparse.ArgumentTypeError(
                    f"pool must be one of {', '.join(POOLS)}, got {count!r} in {text!r}"
                )
            plan[name] = count
            continue
        if not (name and equals and count.isdigit() and int(count) >= 1):
            raise argparse.ArgumentTypeError(
                f"must be a whole number >= 1 or MATRIX=N,... (e.g. W1=33,W2=17), got {text!r}"
            )
        plan[name] = int(count)
    return plan


def _minutes(text: str) -> float:
    try:
        minutes = float(text)
    except ValueError:
        minutes = 0.0
    if not minutes > 0:
        raise argparse.ArgumentTypeError(f"must be a number of minutes > 0, got {text!r}")
    return minutes


def _lanes(text: str) -> str | int | dict[str, int]:
    return "auto" if text == "auto" else _lane_setting(text)


def _stage_printer(stream=None):
    """A build's stages on stderr, each with the minutes since the build began (a large
    system places and routes for hours; nothing else is printed meanwhile)."""
    started = time.monotonic()

    def show(stage: str) -> None:
        minutes = (time.monotonic() - started) / 60
        print(f"  [{minutes:5.1f} min] {stage}", file=stream or sys.stderr, flush=True)

    return show


def cmd_build(args: argparse.Namespace) -> int:
    from boards.targets import BOARDS, BuildError, build, build_auto, report_markdown

    cfg = _board_config(args)
    names = list(BOARDS) if args.board == "all" else [args.board]
    results, failed = [], []
    for name in names:
        out = Path(args.out or "build/boards") / name
        print(f"building {name} ({'-'.join(map(str, cfg.layers))}) in {out} ...", flush=True)
        progress = _stage_printer()
        try:
            if args.lanes == "auto":
                limit = {"time_limit": args.time_limit * 60} if args.time_limit else {}
                result = build_auto(
                    name, cfg, out, baud=args.baud, router=args.router, progress=progress, **limit
                )
                for attempt in result["lanes_tried"]:
                    print(f"  lanes {attempt['lanes']}: {attempt['result']}")
            else:
                result = build(
                    name,
                    cfg,
                    out,
                    lanes=args.lanes,
                    baud=args.baud,
                    router=args.router,
                    time_limit=args.time_limit * 60 if args.time_limit else None,
                    progress=progress,
                )
        except BuildError as exc:  # the other boards still build
            print(f"pulsegate: error: {exc}", file=sys.stderr)
            failed.append(name)
            continue
        print(report_markdown(result))
        print(f"bitstream: {result['bitstream']}  ({result['build_seconds']} s)")
        results.append(result)
    if results:
        _write_json(args.json, results[0] if len(names) == 1 else {"boards": results})
    return 0 if not failed and all(r["timing_met"] for r in results) else 1


def cmd_logic(args: argparse.Namespace) -> int:
    from boards.targets import (
        AUTO_LOGIC_LIMIT,
        LOGIC_CELLS,
        board_named,
        core_resources,
        fits_logic,
        logic_cells,
    )
    from hw.network import lanes_label

    board = board_named(args.board)
    cfg = _board_config(args)
    if args.lanes == "auto":
        return _logic_auto(board, cfg, args.json)
    print(f"synthesizing the {'-'.join(map(str, cfg.layers))} core for {board.device} ...")
    res = core_resources(board, cfg, args.lanes)
    cells, device = logic_cells(board.family, res.counts), LOGIC_CELLS[board.device]
    verdict = "within" if fits_logic(cells, device) else "over"
    print(
        f"lanes {lanes_label(args.lanes)}: "
        + ", ".join(f"{k} {v:,}" for k, v in res.counts.items())
    )
    print(
        f"logic cells {cells:,} of {device:,} ({cells / device:.1%}): {verdict} the "
        f"{AUTO_LOGIC_LIMIT:.0%} that --lanes auto builds (the host link not counted)"
    )
    _write_json(
        args.json,
        {
            "board": board.name,
            "device": board.device,
            "lanes": lanes_label(args.lanes),
            "counts": res.counts,
            "cells": res.cells,
            "logic_cells": cells,
            "device_cells": device,
            "fits_logic": fits_logic(cells, device),
        },
    )
    return 0


def _logic_auto(board, cfg, json_path: str | None) -> int:
    """The plan ``--lanes auto`` would build first: the halving search's syntheses, each
    printed, then the fastest plan within the limit (exit status 1 when there is none)."""
    from boards.targets import AUTO_LOGIC_LIMIT, fastest_fitting_plan, fits_logic
    from hw.network import lanes_label

    print(
        f"searching the {'-'.join(map(str, cfg.layers))} core's lane plans for the fastest "
        f"within {AUTO_LOGIC_LIMIT:.0%} of {board.device}'s logic (a synthesis each) ...",
        flush=True,
    )
    rows = []

    def show(label: str, cells: int, device: int) -> None:
        verdict = "within" if fits_logic(cells, device) else "over"
        print(
            f"  lanes {label}: {cells:,} of {device:,} logic cells ({cells / device:.1%}), "
            + verdict,
            flush=True,
        )
        rows.append(
            {
                "lanes": label,
                "logic_cells": cells,
                "device_cells": device,
                "fits_logic": fits_logic(cells, device),
            }
        )

    plan, _ = fastest_fitting_plan(board, cfg, on_checked=show)
    chosen = lanes_label(plan) if plan is not None else None
    print(f"fastest within the limit: {chosen}" if chosen else "no plan is within the limit")
    _write_json(
        json_path,
        {"board": board.name, "device": board.device, "plans": rows, "fastest_fitting": chosen},
    )
    return 0 if chosen else 1


def _host_train_dataset(client, args: argparse.Namespace, poll) -> int:
    """``host train-iris|train-digits``: train the board in the golden model's order, read its
    weights back, print the test accuracy they give and whether they are the golden model's."""
    import numpy as np

    from boards.host import train_dataset
    from golden_model.classify import train_classifier
    from golden_model.datasets import dataset_config, default_epochs, load_dataset

    dataset = args.action.removeprefix("train-")
    cfg = dataset_config(dataset)
    if args.config:
        cfg = Config.load(args.config, base=cfg)
    epochs = args.epochs or default_epochs(dataset)  # cmd_host refused 0 and below
    data = load_dataset(dataset)
    run = train_dataset(
        client,
        cfg,
        data,
        epochs,
        limit=args.samples,
        progress=ProgressLine(f"training {dataset} on the board"),
        poll=poll,
    )
    print(run["status"])
    print(
        f"test accuracy of the board's weights: {run['test_accuracy'] * 100:.2f} % "
        f"after {run['samples']} samples"
    )
    print(format_confusion(run["confusion"], data.classes))
    golden = train_classifier(cfg, data, epochs, limit=args.samples)
    same = np.array_equal(
        run["weights"], np.concatenate([w.ravel() for w in golden.weights.values()])
    )
    print(
        "the board's weights are the golden model's, bit for bit"
        if same
        else "the board's weights differ from the golden model's (another seed or build?)"
    )
    return 0 if same else 1


def cmd_host(args: argparse.Namespace) -> int:
    from boards.host import HostClient, SerialTransport, sleep_poll
    from boards.protocol import ProtocolError

    for option, value in (("--epochs", args.epochs), ("--samples", args.samples)):
        if value is not None and value < 1:  # before the port is opened
            print(f"pulsegate: error: {option} must be >= 1, got {value}", file=sys.stderr)
            return 2
    try:
        transport = SerialTransport(args.port, args.baud, timeout=args.timeout)
    except OSError as exc:  # pyserial's SerialException is one
        print(f"pulsegate: error: --port {args.port}: {exc}", file=sys.stderr)
        return 2
    client = HostClient(transport)
    try:
        if args.action == "info":
            print(client.info())
        elif args.action == "status":
            print(client.status())
        elif args.action == "weights":
            print(" ".join(str(int(w)) for w in client.read_weights()))
        elif args.action == "abort":
            client.abort()
            print(client.wait_idle(sleep_poll()))
        elif args.action == "train-xor":
            from golden_model.circuit import Circuit
            from golden_model.schedule import compile_backprop
            from golden_model.tasks import xor_sample

            cfg = _board_config(args)
            golden = Circuit(compile_backprop(cfg), cfg)
            info = client.info()
            if info.input_words != golden.schedule.group("x+").size * 2 + 2:
                print(
                    f"pulsegate: error: the board serves {info}, not {cfg.layers}", file=sys.stderr
                )
                return 2
            import numpy as np

            samples = 400 if args.samples is None else args.samples
            order = np.random.default_rng([cfg.seed, 1]).integers(0, 4, samples)
            words = [golden.input_words(xor_sample(int(k))) for k in order]
            line = ProgressLine("training on the board")
            status = client.train(words, progress=line, poll=sleep_poll())
            print(status)
        elif args.action in ("train-iris", "train-digits"):
            return _host_train_dataset(client, args, sleep_poll())
    except ProtocolError as exc:
        print(f"pulsegate: error: {exc}", file=sys.stderr)
        return 1
    finally:
        transport.close()
    return 0


def _task_options(p: argparse.ArgumentParser, *, rtl: bool) -> None:
    """The options every task command takes; ``rtl`` adds the simulation ones."""
    p.add_argument("--config", help="JSON configuration (missing keys take the defaults)")
    p.add_argument("--seed", type=int, help="override the configuration's seed")
    if rtl:
        p.add_argument("--lanes", type=_lane_setting, default=1, help=LANES_HELP)
        p.add_argument("--waves", action="store_true", help="write an FST waveform of the run")
    else:
        p.add_argument("--float", action="store_true", help="float model instead of fixed point")
    p.add_argument("--out", help="directory for plots")
    p.add_argument("--json", help="write the result as JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pulsegate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    golden = sub.add_parser("golden", help="run a task on the golden model").add_subparsers(
        dest="task", required=True
    )
    for name, func, help_text in (
        ("xor", cmd_golden_xor, "train XOR on the two-layer circuit"),
        ("ar2", cmd_golden_ar2, "learn lagged covariances of an AR(2) process"),
    ):
        p = golden.add_parser(name, help=help_text)
        _task_options(p, rtl=False)
        if name == "xor":
            p.add_argument("--max-samples", type=int, default=4000, help="sample budget (4000)")
        else:
            p.add_argument(
                "--samples", type=int, default=20000, help="samples of the process (20000)"
            )
        p.set_defaults(func=func)

    gen = sub.add_parser("generate", help="write the circuit's Verilog (deterministic)")
    gen.add_argument("circuit", choices=("xor", "ar2"), nargs="?", default="xor")
    gen.add_argument("--config", help="JSON configuration")
    gen.add_argument("--lanes", type=_lane_setting, default=1, help=LANES_HELP)
    gen.add_argument("--out", required=True, help="output directory")
    gen.set_defaults(func=cmd_generate)

    simulate = sub.add_parser("sim", help="train in the RTL under Verilator").add_subparsers(
        dest="task", required=True
    )
    p = simulate.add_parser("xor", help="train XOR in the RTL, compared with the golden model")
    _task_options(p, rtl=True)
    p.add_argument("--max-samples", type=int, default=4000, help="sample budget (4000)")
    p.set_defaults(func=cmd_sim_xor)
    p = simulate.add_parser("ar2", help="the AR(2) predictive circuit in the RTL")
    _task_options(p, rtl=True)
    p.add_argument("--samples", type=int, default=2000, help="samples of the process (2000)")
    p.set_defaults(func=cmd_sim_ar2)

    sched = sub.add_parser("schedule", help="print the compiled gating schedule")
    sched.add_argument("circuit", choices=("xor", "ar2"), nargs="?", default="xor")
    sched.add_argument("--config", help="JSON configuration")
    sched.add_argument("--inference", action="store_true", help="the inference schedule")
    sched.set_defaults(func=cmd_schedule)

    from boards.targets import BOARDS, ROUTERS

    p = sub.add_parser("build", help="bitstream and report for a board (open toolchain)")
    p.add_argument("--board", required=True, choices=[*BOARDS, "all"])
    p.add_argument("--config", help="JSON configuration (default: the 2-4-1 XOR board network)")
    p.add_argument(
        "--lanes",
        type=_lanes,
        default="1",
        help=LANES_HELP[:-4] + ", or 'auto': the fastest plan that fits and meets timing (1)",
    )
    p.add_argument("--baud", type=int, default=115200, help="host link baud rate (115200)")
    p.add_argument(
        "--router",
        choices=ROUTERS,
        default="router1",
        help="nextpnr's router (router1; router2 is the other choice for congested designs)",
    )
    p.add_argument(
        "--time-limit",
        type=_minutes,
        metavar="MIN",
        help="stop a build after MIN minutes (default: none; 60 per attempt with --lanes auto)",
    )
    p.add_argument("--out", help="build directory (build/boards/NAME)")
    p.add_argument("--json", help="write the report as JSON")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("logic", help="the core's logic by Yosys against a board's device")
    p.add_argument("--board", required=True, choices=BOARDS)
    p.add_argument("--config", help="JSON configuration (default: the 2-4-1 XOR board network)")
    p.add_argument(
        "--lanes",
        type=_lanes,
        default=1,
        help=LANES_HELP[:-4]
        + ", or 'auto': search for the fastest plan within the logic limit (1)",
    )
    p.add_argument("--json", help="write the counts as JSON")
    p.set_defaults(func=cmd_logic)

    p = sub.add_parser("train", help="train a classifier on iris or the 8x8 digits")
    p.add_argument("dataset", choices=("digits", "iris"))
    p.add_argument("--epochs", type=int, help="passes over the training split (20)")
    p.add_argument("--seed", type=int, help="weights and sample order (config's, 1)")
    p.add_argument("--config", help="JSON configuration over the data set's default")
    p.add_argument("--float", action="store_true", help="float model instead of fixed point")
    p.add_argument("--rtl", action="store_true", help="train the RTL under Verilator too")
    p.add_argument("--samples", type=int, help="stop after this many training samples")
    p.add_argument("--lanes", type=_lane_setting, default=1, help="--rtl: " + LANES_HELP)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="--rtl: threads of the Verilated model (1; 2 runs a 130-lane core 1.3 times "
        "faster, a one-lane core slower)",
    )
    p.add_argument("--out", help="directory for accuracy.png and confusion.png")
    p.add_argument("--json", help="write the result as JSON")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("host", help="talk to a board over its serial port")
    p.add_argument(
        "action",
        choices=("info", "status", "weights", "abort", "train-xor", "train-iris", "train-digits"),
    )
    p.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB1")
    p.add_argument("--baud", type=int, default=115200, help="baud rate (115200)")
    p.add_argument("--timeout", type=float, default=1.0, help="reply timeout in s (1.0)")
    p.add_argument("--config", help="JSON configuration the board was built with")
    p.add_argument(
        "--samples",
        type=int,
        help="train-xor: samples (400); train-iris, train-digits: stop after this many",
    )
    p.add_argument("--epochs", type=int, help="train-iris, train-digits: epochs (20)")
    p.set_defaults(func=cmd_host)

    bench_parser = sub.add_parser(
        "bench", help="benchmarks (no subcommand: boards x networks against the roofline)"
    )
    bench_parser.add_argument("--json", help="write the roofline table as JSON")
    bench_parser.set_defaults(func=cmd_bench_roofline)
    bench = bench_parser.add_subparsers(dest="what")
    p = bench.add_parser("roofline", help="boards x networks against the multiplier roofline")
    p.add_argument("--board", action="append", default=[], help="a board (repeat)")
    p.add_argument("--epochs", type=int, help="training epochs for the accuracies (20)")
    p.add_argument("--json", help="write the table as JSON")
    p.set_defaults(func=cmd_bench_roofline)
    p = bench.add_parser("golden", help="time the golden model against numpy backprop")
    p.add_argument("--seconds", type=float, default=2.0, help="time per measurement (2.0)")
    p.add_argument("--json", help="write the table as JSON")
    p.set_defaults(func=cmd_bench_golden)
    p = bench.add_parser("rtl", help="cycles per sample and simulation speed of the RTL")
    p.add_argument("--samples", type=int, default=24, help="training samples per setup (24)")
    p.add_argument("--json", help="write the table as JSON")
    p.set_defaults(func=cmd_bench_rtl)
    p = bench.add_parser("boards", help="place and route per board, with cycles per sample")
    p.add_argument("--board", action="append", default=[], help="a board (repeat; all)")
    p.add_argument("--out", default="build/bench-boards", help="build directory")
    p.add_argument("--json", help="write the table as JSON")
    p.set_defaults(func=cmd_bench_boards)
    p = bench.add_parser("blocks", help="Yosys resources of each gateware block")
    p.add_argument("--json", help="write the table as JSON")
    p.set_defaults(func=cmd_bench_blocks)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"pulsegate: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
