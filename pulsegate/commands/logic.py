"""``pulsegate logic``: the network core's logic by Yosys against a board's device."""

from __future__ import annotations

import argparse
import sys

from .common import (
    CONFIG_HELP,
    LANES_HELP,
    UsageError,
    add_command,
    board_config,
    check_lanes,
    check_outputs,
    lanes_or_auto,
    write_json,
)
from .sim import add_core_option, add_simd_option, check_core


def run(args: argparse.Namespace) -> int:
    from boards.catalogue import LOGIC_CELLS, board_named
    from boards.plans import AUTO_LOGIC_LIMIT, core_resources, fits_logic, logic_cells
    from golden_model.schedule import compile_backprop
    from hw.network import lanes_label

    board = board_named(args.board)
    cfg = board_config(args)
    schedule = compile_backprop(cfg)
    check_lanes(args.lanes, schedule)
    check_outputs(args, directories=())
    if args.simd is not None and (args.lanes == "auto" or args.core == "spatial"):
        raise UsageError("--simd", "folds a memory core at a given --lanes (not auto)")
    if args.core != "spatial" and args.lanes != "auto":
        check_core(args, cfg, schedule)
    if args.lanes == "auto":
        return run_auto(board, cfg, args.json, args.core)
    print(
        f"synthesizing the {'-'.join(map(str, cfg.layers))} {args.core} core for {board.device} ..."
    )
    res = core_resources(board, cfg, args.lanes, core=args.core, simd=args.simd)
    cells, device = logic_cells(board.family, res.counts), LOGIC_CELLS[board.device]
    verdict = "within" if fits_logic(cells, device) else "over"
    print(
        f"lanes {lanes_label(args.lanes)}{f' x simd {args.simd}' if args.simd else ''}: "
        + ", ".join(f"{k} {v:,}" for k, v in res.counts.items())
    )
    print(
        f"logic cells {cells:,} of {device:,} ({cells / device:.1%}): {verdict} the "
        f"{AUTO_LOGIC_LIMIT:.0%} that --lanes auto builds (the host link not counted)"
    )
    write_json(
        args.json,
        {
            "board": board.name,
            "device": board.device,
            "lanes": lanes_label(args.lanes),
            **({"simd": args.simd} if args.simd else {}),
            "core": str(args.core),
            "counts": res.counts,
            "cells": res.cells,
            "logic_cells": cells,
            "device_cells": device,
            "fits_logic": fits_logic(cells, device),
        },
    )
    return 0


def run_auto(board, cfg, json_path: str | None, core: str = "spatial") -> int:
    """The plan ``--lanes auto`` would build first: the halving search's syntheses, each
    printed, then the fastest plan within the limit (exit status 1 when there is none)."""
    from boards.plans import AUTO_LOGIC_LIMIT, fastest_fitting_plan, fits_logic
    from boards.pnr import BuildError
    from hw.network import lanes_label

    print(
        f"searching the {'-'.join(map(str, cfg.layers))} {core} core's lane plans for the fastest "
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

    try:
        plan, _ = fastest_fitting_plan(board, cfg, on_checked=show, core=core)
    except BuildError as exc:  # not even the smallest plan's weights fit the device
        print(f"pulsegate: error: {exc}", file=sys.stderr)
        return 1
    chosen = lanes_label(plan) if plan is not None else None
    print(f"fastest within the limit: {chosen}" if chosen else "no plan is within the limit")
    write_json(
        json_path,
        {"board": board.name, "device": board.device, "plans": rows, "fastest_fitting": chosen},
    )
    return 0 if chosen else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    from boards.catalogue import BOARDS

    p = add_command(
        subparsers,
        "logic",
        "the core's logic by Yosys against a board's device (no place and route)",
        "pulsegate logic --board ulx3s-85f --config configs/iris.json --lanes 4",
        run,
    )
    p.add_argument("--board", required=True, choices=BOARDS)
    p.add_argument("--config", help=CONFIG_HELP)
    p.add_argument(
        "--lanes",
        type=lanes_or_auto,
        default=1,
        help=LANES_HELP[:-4]
        + ", or 'auto': search for the fastest plan within the logic limit (1)",
    )
    add_core_option(p)
    add_simd_option(p)
    p.add_argument("--json", help="write the counts as JSON")
