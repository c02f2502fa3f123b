"""``pulsegate train digits|iris|digits20``: a classifier on real data, in the golden model
and, with ``--rtl``, in the RTL under the native Verilator harness. ``digits20`` (400-400-10)
takes MNIST from IDX files with ``--data-dir``."""

from __future__ import annotations

import argparse
from pathlib import Path

from golden_model.circuit import FIXED, FLOAT
from golden_model.config import Config

from .common import (
    CONFIG_HELP,
    LANES_HELP,
    UsageError,
    add_command,
    check_lanes,
    check_outputs,
    format_confusion,
    lane_setting,
    load_config,
    positive_int,
    write_json,
)
from .sim import add_core_option, add_simd_option, check_core


def train_rtl(
    cfg: Config,
    data,
    epochs: int,
    limit: int | None,
    lanes: int | dict[str, int],
    threads: int = 1,
    core: str = "spatial",
    simd: int | None = None,
) -> dict:
    """Train the core under the native Verilator harness on the samples
    :func:`~golden_model.classify.train_classifier` uses, in the same order; its complete
    state is compared with the golden model after every sample. ``threads``: the Verilated
    model's threads."""
    from golden_model.classify import training_samples
    from hw.network import lanes_label
    from sim.fast_run import run_fast

    samples = training_samples(cfg, data, epochs, limit)
    layers = "-".join(map(str, cfg.layers))
    print(
        f"RTL: building the {layers} {core} core at {lanes_label(lanes)} lane(s)"
        f"{f' x {simd} multipliers' if simd else ''} and "
        f"training {len(samples)} samples under Verilator (the first build of a large core "
        "takes minutes) ...",
        flush=True,
    )
    fold = f"x{simd}" if simd else ""
    work = Path("build") / "train-rtl" / f"{data.name}-{core}-lanes{lanes_label(lanes)}{fold}"

    def progress(done: int, total: int) -> None:
        print(f"RTL: {done:,} of {total:,} samples", flush=True)

    return run_fast(
        cfg,
        samples,
        lanes=lanes,
        work=work,
        threads=threads,
        progress=progress,
        core=core,
        simd=simd,
    )


def run(args: argparse.Namespace) -> int:
    from golden_model.classify import train_classifier
    from golden_model.datasets import dataset_config, default_epochs, load_dataset
    from golden_model.schedule import compile_backprop

    from .. import plots

    name = args.dataset
    if args.data_dir is not None:
        if name != "digits20":
            raise UsageError("--data-dir", "reads MNIST's IDX files for digits20 only")
        name = "mnist20"
    cfg = load_config(args, dataset_config(name), name)
    if args.simd is not None and not (args.rtl and args.core == "memory"):
        raise UsageError("--simd", "folds the memory core's RTL: add --rtl --core memory")
    if args.rtl and args.float:
        raise UsageError("--rtl", "trains the fixed-point model's RTL; leave out --float")
    if args.rtl:
        check_lanes(args.lanes, compile_backprop(cfg))
        if args.core != "spatial":
            check_core(args, cfg, compile_backprop(cfg))
    check_outputs(args)
    if args.data_dir is not None:
        from golden_model.datasets import load_mnist

        try:
            data = load_mnist(args.data_dir)
        except (OSError, ValueError) as exc:
            raise UsageError("--data-dir", str(exc)) from None
    else:
        data = load_dataset(name)
    epochs = args.epochs or default_epochs(name)
    mode = FLOAT if args.float else FIXED
    print(
        f"{data.name}: {len(data.x_train)} training and {len(data.x_test)} test samples, "
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
        verdict = train_rtl(
            cfg, data, epochs, limit, args.lanes, args.threads, args.core, args.simd
        )
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
        # Every sample was compared; the weights the RTL ended with are checked once more here.
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
        title = f"{data.name} {'-'.join(map(str, cfg.layers))}, {mode}, seed {cfg.seed}"
        curve = plots.accuracy_curve(result.curve, out / "accuracy.png", title)
        matrix = plots.confusion_figure(
            result.confusion, data.classes, out / "confusion.png", f"{title}\ntest set"
        )
        print(f"wrote {curve}\nwrote {matrix}")
    write_json(args.json, payload)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(
        subparsers,
        "train",
        "train a classifier on iris, the 8x8 digits, or 20x20 digits / MNIST (400-400-10)",
        "pulsegate train iris --epochs 5 --out out/iris",
        run,
    )
    p.add_argument("dataset", choices=("digits", "iris", "digits20"))
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        help="digits20: MNIST's four IDX files in DIR (plain or .gz; its own split, each image "
        "cropped to 20x20; nothing is downloaded)",
    )
    p.add_argument("--epochs", type=positive_int, help="passes over the training split (20)")
    p.add_argument("--seed", type=int, help="weights and sample order (config's, 1)")
    p.add_argument("--config", help=CONFIG_HELP)
    p.add_argument("--float", action="store_true", help="float model instead of fixed point")
    p.add_argument("--rtl", action="store_true", help="train the RTL under Verilator too")
    p.add_argument("--samples", type=positive_int, help="stop after this many training samples")
    p.add_argument("--lanes", type=lane_setting, default=1, help="--rtl: " + LANES_HELP)
    p.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="--rtl: threads of the Verilated model (1; 2 runs a 130-lane core 1.3 times "
        "faster, a one-lane core slower)",
    )
    add_core_option(p)
    add_simd_option(p)
    p.add_argument("--out", help="directory for accuracy.png and confusion.png")
    p.add_argument("--json", help="write the result as JSON")
