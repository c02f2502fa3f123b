"""``pulsegate``: the command line's dispatcher.

Each subcommand lives in its own module of :mod:`pulsegate.commands`; this module only finds
them and dispatches. A bad input ends with one line naming the option or configuration field
and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading

from golden_model.config import ConfigError

from .commands import COMMANDS
from .commands.common import EXAMPLE_FORMAT, UsageError

__all__ = ["build_parser", "main"]

DESCRIPTION = """\
pulsegate generates, simulates, builds and drives FPGA hardware for a pulse-gated neural
circuit that learns by backpropagation. Each command has its own --help."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line naming the option:
    ``pulsegate: error: --epochs: must be ... (see pulsegate train --help)``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        message = message.removeprefix("argument ")
        self.exit(2, f"pulsegate: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="pulsegate",
        description=DESCRIPTION,
        epilog="example:\n  pulsegate golden xor --out out/xor",
        formatter_class=EXAMPLE_FORMAT,
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__package__}.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a bad option (2, its line already printed)
        return exc.code if isinstance(exc.code, int) else 2
    # a terminated command unwinds as an exit does, so that a build stops the tools it runs
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        return args.func(args)
    except (ConfigError, UsageError) as exc:
        print(f"pulsegate: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `pulsegate schedule | head`: the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
