"""``pulsegate build``: a board's bitstream and report with the open toolchain."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import (
    CONFIG_HELP,
    LANES_HELP,
    UsageError,
    add_command,
    board_config,
    check_lanes,
    check_outputs,
    clock_or_auto,
    lanes_or_auto,
    minutes,
    positive_int,
    slot_count,
    stage_printer,
    write_json,
)


def run(args: argparse.Namespace) -> int:
    import sys

    from boards.catalogue import BOARDS
    from boards.plans import build_auto
    from boards.pnr import BuildError, build, build_at_best_clock, report_markdown
    from golden_model.schedule import compile_backprop

    from .sim import check_core

    cfg = board_config(args)
    schedule = compile_backprop(cfg)
    check_lanes(args.lanes, schedule)
    if args.simd is not None and (args.lanes == "auto" or args.core == "spatial"):
        raise UsageError("--simd", "folds a memory core at a given --lanes (not auto)")
    if args.core != "spatial" and args.lanes != "auto":
        check_core(args, cfg, schedule)
    check_outputs(args)
    names = list(BOARDS) if args.board == "all" else [args.board]
    if isinstance(args.clock_mhz, float):  # a clock no PLL makes fails now, not after synthesis
        check_clock(args.clock_mhz, [BOARDS[n] for n in names])
    results, failed = [], []
    for name in names:
        out = Path(args.out or "build/boards") / name
        print(f"building {name} ({'-'.join(map(str, cfg.layers))}) in {out} ...", flush=True)
        progress = stage_printer()
        limit = {"time_limit": args.time_limit * 60} if args.time_limit else {}
        fixed_clock = args.clock_mhz if isinstance(args.clock_mhz, float) else None
        try:
            if args.lanes == "auto":
                result = build_auto(
                    name,
                    cfg,
                    out,
                    baud=args.baud,
                    router=args.router,
                    progress=progress,
                    core=args.core,
                    clock_mhz=fixed_clock,
                    **limit,
                )
                for attempt in result["lanes_tried"]:
                    print(f"  lanes {attempt['lanes']}: {attempt['result']}")
                lanes, simd = result["lanes"], result.get("simd")  # a fold: its multipliers
            else:
                lanes, simd = args.lanes, args.simd
            options = {
                "lanes": lanes,
                "baud": args.baud,
                "router": args.router,
                "progress": progress,
                "core": args.core,
                "time_limit": args.time_limit * 60 if args.time_limit else None,
                "slots": args.slots,
                "placement_seed": args.placement_seed,
                "simd": simd,
            }
            if args.clock_mhz == "auto":  # on the plan --lanes auto chose, if it chose
                result = build_at_best_clock(name, cfg, out / "clock", **options)
                for step in result["clock_search"]:
                    asked = step["requested_mhz"]
                    print(
                        f"  clock {'oscillator' if asked is None else f'{asked:g} MHz'}: "
                        f"built at {step['clock_mhz']:g} MHz, Fmax {step['fmax_mhz']} MHz, "
                        f"timing {'met' if step['timing_met'] else 'NOT met'}"
                    )
            elif args.lanes != "auto":
                result = build(name, cfg, out, clock_mhz=fixed_clock, **options)
        except BuildError as exc:  # the other boards still build
            print(f"pulsegate: error: {exc}", file=sys.stderr)
            failed.append(name)
            continue
        print(report_markdown(result))
        print(f"bitstream: {result['bitstream']}  ({result['build_seconds']} s)")
        results.append(result)
    if results:
        write_json(args.json, results[0] if len(names) == 1 else {"boards": results})
    return 0 if not failed and all(r["timing_met"] for r in results) else 1


def check_clock(mhz: float, boards) -> None:
    """Every board's PLL makes a clock near ``mhz`` (within its output range)."""
    from boards.clocks import pll_settings

    for board in boards:
        try:
            pll_settings(board.family, board.platform().default_clk_frequency / 1e6, mhz)
        except ValueError as exc:
            raise UsageError("--clock-mhz", f"{board.name}: {exc}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    from boards.catalogue import BOARDS
    from boards.pnr import ROUTERS, Router

    from .sim import add_core_option, add_simd_option

    p = add_command(
        subparsers,
        "build",
        "bitstream and report for a board (open toolchain)",
        "pulsegate build --board icebreaker --json out/icebreaker.json",
        run,
    )
    p.add_argument("--board", required=True, choices=[*BOARDS, "all"])
    p.add_argument("--config", help=CONFIG_HELP)
    p.add_argument(
        "--lanes",
        type=lanes_or_auto,
        default="1",
        help=LANES_HELP[:-4] + ", or 'auto': the fastest plan that fits and meets timing (1)",
    )
    p.add_argument("--baud", type=positive_int, default=115200, help="host link baud rate (115200)")
    p.add_argument(
        "--slots",
        type=slot_count,
        metavar="N",
        help="samples the host link's store holds (default: as many as the iCE40UP5K's SPRAM "
        "takes, up to 255; 16 in block RAM elsewhere)",
    )
    p.add_argument(
        "--router",
        choices=ROUTERS,
        default=Router.ROUTER1,
        help="nextpnr's router (router1; router2 is the other choice for congested designs)",
    )
    p.add_argument(
        "--time-limit",
        type=minutes,
        metavar="MIN",
        help="stop a build after MIN minutes (default: none; 60 per attempt with --lanes auto)",
    )
    p.add_argument(
        "--clock-mhz",
        type=clock_or_auto,
        metavar="F",
        help="run the core from the board's PLL at F MHz (the nearest it makes), or 'auto': "
        "the highest clock that meets timing, by a bounded search of builds (default: the "
        "board's oscillator, no PLL)",
    )
    p.add_argument(
        "--placement-seed",
        type=int,
        metavar="N",
        help="nextpnr's placement seed (default: nextpnr's own); placement moves Fmax by a "
        "few %%, so compare two designs at a few seeds",
    )
    add_core_option(p)
    add_simd_option(p)
    p.add_argument("--out", help="build directory (build/boards/NAME)")
    p.add_argument("--json", help="write the report as JSON")
