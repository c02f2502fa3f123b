"""``pulsegate schedule``: the compiled gating schedule as a table."""

from __future__ import annotations

import argparse

from .common import CONFIG_HELP, add_command, load_config


def run(args: argparse.Namespace) -> int:
    from golden_model.schedule import compile_ar2, compile_backprop

    if args.circuit == "ar2":
        schedule = compile_ar2(load_config(args, "ar2", "ar2"))
    else:
        cfg = load_config(args, "xor", "backprop")
        schedule = compile_backprop(cfg, train=not args.inference)
    print(schedule.table())
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(
        subparsers,
        "schedule",
        "print the compiled gating schedule, one row per phase",
        "pulsegate schedule xor --inference",
        run,
    )
    p.add_argument("circuit", choices=("xor", "ar2"), nargs="?", default="xor")
    p.add_argument("--config", help=CONFIG_HELP)
    p.add_argument("--inference", action="store_true", help="the inference schedule")
