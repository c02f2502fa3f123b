"""``pulsegate build``: a board's bitstream and report with the open toolchain."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import (
    CONFIG_HELP,
    LANES_HELP,
    add_command,
    board_config,
    check_lanes,
    check_outputs,
    lanes_or_auto,
    minutes,
    positive_int,
    stage_printer,
    write_json,
)


def run(args: argparse.Namespace) -> int:
    import sys

    from boards.catalogue import BOARDS
    from boards.plans import build_auto
    from boards.pnr import BuildError, build, report_markdown
    from golden_model.schedule import compile_backprop

    from .sim import check_core

    cfg = board_config(args)
    schedule = compile_backprop(cfg)
    check_lanes(args.lanes, schedule)
    if args.core != "spatial" and args.lanes != "auto":
        check_core(args, cfg, schedule)
    check_outputs(args)
    names = list(BOARDS) if args.board == "all" else [args.board]
    results, failed = [], []
    for name in names:
        out = Path(args.out or "build/boards") / name
        print(f"building {name} ({'-'.join(map(str, cfg.layers))}) in {out} ...", flush=True)
        progress = stage_printer()
        try:
            if args.lanes == "auto":
                limit = {"time_limit": args.time_limit * 60} if args.time_limit else {}
                result = build_auto(
                    name,
                    cfg,
                    out,
                    baud=args.baud,
                    router=args.router,
                    progress=progress,
                    core=args.core,
                    **limit,
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
                    core=args.core,
                )
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


def register(subparsers: argparse._SubParsersAction) -> None:
    from boards.catalogue import BOARDS
    from boards.pnr import ROUTERS, Router

    from .sim import add_core_option

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
    add_core_option(p)
    p.add_argument("--out", help="build directory (build/boards/NAME)")
    p.add_argument("--json", help="write the report as JSON")
