"""``pulsegate bench [roofline|golden|loihi|rtl|boards|cores|clocks|blocks]``: each a table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import (
    UsageError,
    add_command,
    check_outputs,
    minutes,
    positive_float,
    positive_int,
    write_json,
)


def run_roofline(args: argparse.Namespace) -> int:
    from boards.catalogue import BOARDS

    from ..roofline import DEFAULT_BOARDS, bench_roofline

    boards = tuple(getattr(args, "board", None) or DEFAULT_BOARDS)
    unknown = [b for b in boards if b not in BOARDS or BOARDS[b].family not in ("ice40", "ecp5")]
    if unknown:
        raise UsageError("--board", f"unknown board {unknown[0]!r}")
    check_outputs(args, directories=())
    limit = args.time_limit * 60 if args.time_limit else None
    data = bench_roofline(boards, epochs=args.epochs, time_limit=limit)
    write_json(getattr(args, "json", None), data)
    return 0


def run_golden(args: argparse.Namespace) -> int:
    from ..bench import bench_golden

    check_outputs(args, directories=())
    write_json(args.json, bench_golden(seconds=args.seconds))
    return 0


def run_loihi(args: argparse.Namespace) -> int:
    from ..bench import bench_loihi

    check_outputs(args, directories=())
    builds = []
    for path in args.build:
        try:
            report = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise UsageError("--build", f"cannot read a build report from {path}: {exc}") from exc
        missing = [k for k in BUILD_KEYS if k not in report]
        if missing:
            raise UsageError("--build", f"{path} is not a build report (no {missing[0]!r})")
        if report["network"] != "400-400-10":
            raise UsageError("--build", f"{path} built {report['network']}, not 400-400-10")
        builds.append(report)
    write_json(args.json, bench_loihi(seconds=args.seconds, builds=builds))
    return 0


#: What a ``pulsegate build --json`` report must hold for ``bench loihi --build``.
BUILD_KEYS = ("network", "device", "lanes", "clock_mhz", "timing_met", "cycles_per_sample",
              "samples_per_s")  # fmt: skip


def run_rtl(args: argparse.Namespace) -> int:
    from ..bench import bench_rtl

    check_outputs(args, directories=())
    write_json(args.json, bench_rtl(samples=args.samples))
    return 0


def run_boards(args: argparse.Namespace) -> int:
    from boards.catalogue import BOARDS

    from ..bench import bench_boards

    unknown = [b for b in args.board if b not in BOARDS]
    if unknown:
        raise UsageError("--board", f"unknown board {unknown[0]!r} (known: {', '.join(BOARDS)})")
    check_outputs(args)
    write_json(args.json, bench_boards(args.board or None, out=args.out))
    return 0


def run_blocks(args: argparse.Namespace) -> int:
    from ..bench import bench_blocks

    check_outputs(args, directories=())
    write_json(args.json, bench_blocks())
    return 0


def fold_plan(text: str) -> int | tuple[int, int]:
    """``8`` (lanes) or ``2x8`` (2 element lanes, 8 multipliers; a multiple of the lanes)."""
    lanes, x, simd = text.partition("x")
    if not (lanes.isdigit() and int(lanes) >= 1 and (not x or (simd.isdigit() and int(simd) >= 1))):
        raise argparse.ArgumentTypeError(f"must be N or NxK (e.g. 8 or 2x8), got {text!r}")
    if not x:
        return int(lanes)
    if int(simd) % int(lanes):
        raise argparse.ArgumentTypeError(f"{text}: K must be a multiple of N")
    return int(lanes), int(simd)


def run_cores(args: argparse.Namespace) -> int:
    from ..bench import bench_cores

    check_outputs(args, directories=(), files=("json", "plot"))
    networks = tuple(args.network or ("xor", "iris", "digits"))
    plans = tuple(args.lanes or (1, 8))
    data = bench_cores(plans, synth=not args.no_synth, networks=networks)
    write_json(args.json, data)
    if args.plot:
        from ..plots import clock_breakdown

        print(f"wrote {clock_breakdown(data['rows'], Path(args.plot))}")
    return 0


def run_clocks(args: argparse.Namespace) -> int:
    from boards.catalogue import BOARDS

    from ..bench import CLOCK_POINTS, bench_clocks

    points = CLOCK_POINTS
    if args.board:
        unknown = [b for b in args.board if b not in BOARDS]
        if unknown:
            raise UsageError(
                "--board", f"unknown board {unknown[0]!r} (known: {', '.join(BOARDS)})"
            )
        points = tuple(p for p in CLOCK_POINTS if p[0] in args.board)
    if args.network:
        points = tuple(p for p in points if p[1] in args.network)
    check_outputs(args)
    limit = args.time_limit * 60 if args.time_limit else None
    write_json(args.json, bench_clocks(points, out=args.out, time_limit=limit))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "bench",
        "benchmarks (no subcommand: boards x networks against the multiplier roofline)",
        "pulsegate bench golden --json out/bench_golden.json",
        run_roofline,
    )
    parser.add_argument("--json", help="write the roofline table as JSON")
    parser.set_defaults(epochs=None, time_limit=60.0)
    bench = parser.add_subparsers(dest="what")
    p = add_command(
        bench,
        "roofline",
        "boards x networks against the multiplier roofline",
        "pulsegate bench roofline --board icebreaker",
        run_roofline,
    )
    p.add_argument("--board", action="append", default=[], help="a board (repeat)")
    p.add_argument("--epochs", type=positive_int, help="training epochs for the accuracies (20)")
    p.add_argument("--time-limit", type=minutes, metavar="MIN", help="per build (60)", default=60.0)
    p.add_argument("--json", help="write the table as JSON")
    p = add_command(
        bench,
        "golden",
        "time the golden model against numpy backprop",
        "pulsegate bench golden --seconds 1",
        run_golden,
    )
    p.add_argument("--seconds", type=positive_float, default=2.0, help="time per measurement (2.0)")
    p.add_argument("--json", help="write the table as JSON")
    p = add_command(
        bench,
        "loihi",
        "400-400-10: Loihi's figure beside numpy float32 at batch 1 and 32, and core clocks",
        "pulsegate bench loihi --seconds 1",
        run_loihi,
    )
    p.add_argument("--seconds", type=positive_float, default=2.0, help="time per measurement (2.0)")
    p.add_argument(
        "--build",
        action="append",
        default=[],
        metavar="JSON",
        help="a routed 400-400-10 build's report (pulsegate build --json) as a row; repeatable",
    )
    p.add_argument("--json", help="write the table as JSON")
    p = add_command(
        bench,
        "rtl",
        "cycles per sample and simulation speed of the RTL",
        "pulsegate bench rtl --samples 8",
        run_rtl,
    )
    p.add_argument(
        "--samples", type=positive_int, default=24, help="training samples per setup (24)"
    )
    p.add_argument("--json", help="write the table as JSON")
    p = add_command(
        bench,
        "boards",
        "place and route per board, with cycles per sample",
        "pulsegate bench boards --board icebreaker",
        run_boards,
    )
    p.add_argument("--board", action="append", default=[], help="a board (repeat; all)")
    p.add_argument("--out", default="build/bench-boards", help="build directory")
    p.add_argument("--json", help="write the table as JSON")
    p = add_command(
        bench,
        "cores",
        "the memory-centric core beside the spatial core: clocks and logic",
        "pulsegate bench cores --lanes 8 --no-synth",
        run_cores,
    )
    p.add_argument(
        "--lanes",
        type=fold_plan,
        action="append",
        help="a plan: N lanes, or NxK (N element lanes, K multipliers: the memory core "
        "folded wider) (repeat; 1 and 8)",
    )
    p.add_argument(
        "--network",
        action="append",
        choices=("xor", "iris", "digits", "digits20"),
        help="a network (repeat; xor, iris and digits)",
    )
    p.add_argument("--no-synth", action="store_true", help="clocks only, no Yosys")
    p.add_argument("--json", help="write the table as JSON")
    p.add_argument(
        "--plot", metavar="PNG", help="draw where the memory core's clocks go, as stacked bars"
    )
    p = add_command(
        bench,
        "clocks",
        "systems routed at the highest PLL clock that meets timing, samples/s at that clock",
        "pulsegate bench clocks --board icebreaker --network xor",
        run_clocks,
    )
    p.add_argument("--board", action="append", default=[], help="a board (repeat; all)")
    p.add_argument(
        "--network",
        action="append",
        default=[],
        choices=("xor", "iris", "digits"),
        help="a network (repeat; all)",
    )
    p.add_argument("--time-limit", type=minutes, metavar="MIN", help="per build (60)", default=60.0)
    p.add_argument("--out", default="build/bench-clocks", help="build directory")
    p.add_argument("--json", help="write the table as JSON")
    p = add_command(
        bench,
        "blocks",
        "Yosys resources of each gateware block",
        "pulsegate bench blocks --json out/bench_blocks.json",
        run_blocks,
    )
    p.add_argument("--json", help="write the table as JSON")
