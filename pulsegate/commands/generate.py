"""``pulsegate generate``: the circuit's Verilog, its configuration and schedule table."""

from __future__ import annotations

import argparse

from .common import (
    CONFIG_HELP,
    LANES_HELP,
    add_command,
    check_lanes,
    check_outputs,
    lane_setting,
    load_config,
)


def run(args: argparse.Namespace) -> int:
    from sim.generate import generate, schedule_for

    cfg = load_config(args, args.circuit, "ar2" if args.circuit == "ar2" else "backprop")
    check_lanes(args.lanes, schedule_for(cfg, args.circuit))
    check_outputs(args)
    paths = generate(cfg, args.out, circuit=args.circuit, lanes=args.lanes)
    for path in paths.values():
        print(f"wrote {path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(
        subparsers,
        "generate",
        "write the circuit's Verilog (the same configuration gives the same bytes)",
        "pulsegate generate xor --lanes 4 --out out/rtl",
        run,
    )
    p.add_argument("circuit", choices=("xor", "ar2"), nargs="?", default="xor")
    p.add_argument("--config", help=CONFIG_HELP)
    p.add_argument("--lanes", type=lane_setting, default=1, help=LANES_HELP)
    p.add_argument("--out", required=True, help="output directory")
