"""What several subcommands share: configuration loading, option types, output checks.

Every bad input ends as one line on stderr naming the option or field, and exit status 2:
argparse does that for option types (:func:`positive_int`, :func:`lane_setting`, ...);
:class:`UsageError` and :class:`~golden_model.config.ConfigError` raised while a command runs
are printed by :func:`pulsegate.cli.main`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from golden_model.config import Config, check_task_shape, default_config
from golden_model.limits import excerpt

__all__ = [
    "UsageError",
    "EXAMPLE_FORMAT",
    "add_command",
    "load_config",
    "config_path",
    "CONFIG_HELP",
    "SHIPPED_CONFIGS",
    "board_config",
    "positive_int",
    "slot_count",
    "at_least",
    "positive_float",
    "minutes",
    "LANES_HELP",
    "lane_setting",
    "lanes_or_auto",
    "check_lanes",
    "check_outputs",
    "write_json",
    "format_confusion",
    "print_verdict",
    "stage_printer",
]


class UsageError(Exception):
    """A command-line value that cannot be used; ``option`` names it."""

    def __init__(self, option: str, reason: str) -> None:
        self.option = option
        super().__init__(f"{option}: {reason}")


EXAMPLE_FORMAT = argparse.RawDescriptionHelpFormatter


def add_command(
    subparsers: argparse._SubParsersAction,
    name: str,
    help_text: str,
    example: str,
    func: Callable[[argparse.Namespace], int] | None = None,
) -> argparse.ArgumentParser:
    """A subcommand's parser whose help ends with ``example``, running ``func`` (a parser
    with subcommands of its own has none)."""
    parser = subparsers.add_parser(
        name,
        help=help_text,
        description=help_text[0].upper() + help_text[1:] + ".",
        epilog=f"example:\n  {example}",
        formatter_class=EXAMPLE_FORMAT,
    )
    if func is not None:
        parser.set_defaults(func=func)
    return parser


# -- configurations ----------------------------------------------------------------------------


#: The configurations that ship with pulsegate (``--config digits``): every command of
#: README.md and BENCHMARKS.md runs as written from a fresh clone.
SHIPPED_CONFIGS = Path(__file__).resolve().parent.parent / "configs"
CONFIG_HELP = (
    "JSON configuration file, or a shipped one by name: "
    + ", ".join(sorted(p.stem for p in SHIPPED_CONFIGS.glob("*.json")))
    + " (missing keys take the defaults)"
)


def config_path(text: str) -> Path:
    """``text`` as a path; a name (``digits`` or ``digits.json``) that is no file here is one
    of :data:`SHIPPED_CONFIGS`."""
    path = Path(text)
    shipped = SHIPPED_CONFIGS / f"{path.name.removesuffix('.json')}.json"
    if not path.exists() and path.parent == Path(".") and shipped.exists():
        return shipped
    return path


def load_config(args: argparse.Namespace, base: Config | str, task: str) -> Config:
    """``base`` (a Config or a circuit's default) with ``--config`` over it and ``--seed``
    applied, checked to have the shape ``task`` needs (``layers``)."""
    cfg = default_config(base) if isinstance(base, str) else base
    if getattr(args, "config", None):
        cfg = Config.load(config_path(args.config), base=cfg)
    if getattr(args, "seed", None) is not None:
        cfg = cfg.replace(seed=args.seed)
    check_task_shape(cfg, task)
    return cfg


def board_config(args: argparse.Namespace, task: str = "backprop") -> Config:
    """The board network (2-4-1 XOR in 12-bit words) with ``--config`` over it."""
    from boards.catalogue import board_config as default_board_config

    return load_config(args, default_board_config(), task)


# -- option types (argparse reports their errors as one line naming the option) -------------


def at_least(smallest: int) -> Callable[[str], int]:
    """An option type for whole numbers >= ``smallest``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = smallest - 1
        if value < smallest:
            raise argparse.ArgumentTypeError(
                f"must be a whole number >= {smallest}, got {excerpt(text)}"
            )
        return value

    return parse


positive_int = at_least(1)


def slot_count(text: str) -> int:
    """Samples the host link's store holds: 1 to 255 (the protocol counts them in a byte)."""
    value = positive_int(text)
    if value > 255:
        raise argparse.ArgumentTypeError(f"the link's store holds at most 255 samples, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {excerpt(text)}")
    return value


def clock_or_auto(text: str) -> str | float:
    """``auto`` or a frequency in MHz."""
    if text == "auto":
        return text
    try:
        return positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be a frequency in MHz > 0 or 'auto', got {excerpt(text)}"
        ) from None


def minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of minutes > 0, got {excerpt(text)}")
    return value


LANES_HELP = (
    "multiply-accumulates per clock, for all matrices or per matrix: 4, W1=33,W2=17; "
    "add pool=core for one multiplier pool (1)"
)


def lane_setting(text: str) -> int | dict[str, int | str]:
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
                    f"pool must be one of {', '.join(POOLS)}, got {excerpt(count)}"
                )
            plan[name] = count
            continue
        if not (name and equals and count.isdigit() and int(count) >= 1):
            raise argparse.ArgumentTypeError(
                "must be a whole number >= 1 or MATRIX=N,... (e.g. W1=33,W2=17), "
                f"got {excerpt(text)}"
            )
        plan[name] = int(count)
    return plan


def lanes_or_auto(text: str) -> str | int | dict[str, int | str]:
    return "auto" if text == "auto" else lane_setting(text)


def check_lanes(lanes, schedule) -> None:
    """Refuse a lane count beyond the element count of the largest matrix: past that no sweep
    gets shorter, and the gateware would only grow (more lanes than a row are useful: a word
    then holds several rows)."""
    if lanes == "auto":
        return
    most = max((m.rows * m.cols for m in schedule.matrices), default=1)
    counts = [lanes] if isinstance(lanes, int) else [v for v in lanes.values() if v != "core"]
    for count in counts:
        if isinstance(count, int) and count > most:
            raise UsageError(
                "--lanes",
                f"{count:,} lanes is more than the largest matrix's {most:,} weights "
                f"(at most {most:,})",
            )


# -- outputs ---------------------------------------------------------------------------------


def shown(path: Path, limit: int = 160) -> str:
    """A path as an error line quotes it: whole unless it is absurdly long."""
    text = str(path)
    return text if len(text) <= limit else f"{text[: limit - 3]}... ({len(text):,} characters)"


def _make_directory(option: str, path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise UsageError(option, f"{shown(path)} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(option, f"cannot create {shown(path)}: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(option, f"cannot write in {shown(path)}")


def check_outputs(
    args: argparse.Namespace,
    *,
    directories: tuple[str, ...] = ("out",),
    files: tuple[str, ...] = ("json",),
) -> None:
    """Check, before any long work, that ``--out`` (a directory, made here if missing) and
    ``--json`` (a file; opened for appending and left as it was), or the options named, can
    be written."""
    for name in directories:
        value = getattr(args, name, None)
        if value:
            _make_directory(f"--{name.replace('_', '-')}", Path(value))
    for name in files:
        value = getattr(args, name, None)
        if not value:
            continue
        option, path = f"--{name.replace('_', '-')}", Path(value)
        if path.is_dir():
            raise UsageError(option, f"{shown(path)} is a directory, a file is wanted")
        _make_directory(option, path.parent)
        existed = path.exists()
        try:
            with open(path, "a"):
                pass
        except OSError as exc:
            raise UsageError(option, f"cannot write {shown(path)}: {exc.strerror}") from None
        if not existed:
            path.unlink()


def write_json(path: str | None, data: dict) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        print(f"wrote {path}")


# -- printing --------------------------------------------------------------------------------


def format_confusion(confusion, classes) -> str:
    """The confusion matrix as text: rows true, columns predicted."""
    width = max(4, max(len(c) for c in classes) + 1)
    head = " " * width + "".join(f"{c[: width - 1]:>{width}}" for c in classes)
    rows = [
        f"{cls[: width - 1]:>{width}}" + "".join(f"{int(v):>{width}}" for v in row)
        for cls, row in zip(classes, confusion, strict=True)
    ]
    return "\n".join([head, *rows])


def print_verdict(verdict: dict) -> None:
    """The bit-exact verdict of an RTL run, and where it first differed."""
    word = "BIT-EXACT" if verdict["bit_exact"] else "MISMATCH"
    print(
        f"\nRTL: {word}: {verdict['ticks_compared']} ticks compared, "
        f"{verdict['mismatches']} mismatching"
    )
    if verdict["first_mismatch"]:
        print(verdict["first_mismatch"])


def stage_printer(stream=None) -> Callable[[str], None]:
    """A build's stages on stderr, each with the minutes since the build began (a large
    system places and routes for hours; nothing else is printed meanwhile)."""
    started = time.monotonic()

    def show(stage: str) -> None:
        elapsed = (time.monotonic() - started) / 60
        print(f"  [{elapsed:5.1f} min] {stage}", file=stream or sys.stderr, flush=True)

    return show
