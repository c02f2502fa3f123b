"""``pulsegate sweep``: a grid of jobs (boards x configurations x lane plans x clocks x seeds)
on a local process pool or a Dask cluster, cached by content."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from .common import (
    UsageError,
    add_command,
    check_outputs,
    config_path,
    lane_setting,
    minutes,
    positive_float,
    positive_int,
    write_json,
)


def _grid_file(path: str) -> dict:
    """A small JSON file with the grid's lists (``kind``, ``board``, ``config``, ``lanes``,
    ``clock_mhz``, ``seed``, ``core``); the command line's options fill what it leaves out."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError("--grid", f"{path}: {exc}") from None
    known = {"kind", "board", "config", "lanes", "clock_mhz", "seed", "core"}
    if not isinstance(data, dict) or set(data) - known:
        unknown = sorted(set(data) - known) if isinstance(data, dict) else ["(not an object)"]
        raise UsageError("--grid", f"{path}: unknown field {unknown[0]!r} (known: {sorted(known)})")
    return data


def run(args: argparse.Namespace) -> int:
    from boards.catalogue import BOARDS

    from ..progress import Progress
    from ..sweep import KINDS, grid, pareto_plot, run_sweep, write_csv

    spec = _grid_file(args.grid) if args.grid else {}

    def listed(name: str, given, default):
        value = spec.get(name, given if given else default)
        return value if isinstance(value, list) else [value]

    kinds = listed("kind", args.kind, ["logic"])
    boards = listed("board", args.board, ["icebreaker"])
    configs = listed("config", args.config, ["board-xor"])
    plans = [str(p) for p in listed("lanes", args.lanes, ["1"])]
    clocks = listed("clock_mhz", args.clock_mhz, [None])
    seeds = listed("seed", args.seed, [None])
    core = spec.get("core", args.core)
    for kind in kinds:
        if kind not in KINDS:
            raise UsageError("--kind", f"unknown job kind {kind!r} (known: {', '.join(KINDS)})")
    for board in boards:
        if board not in BOARDS:
            raise UsageError("--board", f"unknown board {board!r} (known: {', '.join(BOARDS)})")
    for config in configs:
        if not config_path(config).exists():
            raise UsageError("--config", f"no configuration {config!r} (a file or a shipped name)")
    for plan in plans:
        try:
            lane_setting(plan)
        except argparse.ArgumentTypeError as exc:
            raise UsageError("--lanes", str(exc)) from None
    check_outputs(args)
    out = Path(args.out)
    cache = Path(args.cache) if args.cache else out / "cache"
    limit = args.time_limit * 60 if args.time_limit else None
    points = grid(kinds, boards, configs, plans, clocks, seeds, core, {"time_limit": limit})
    security = None
    if args.scheduler and args.scheduler.startswith("tls://"):
        from distributed.security import Security

        security = Security(
            tls_ca_file=args.tls_ca_file,
            tls_client_cert=args.tls_cert,
            tls_client_key=args.tls_key,
            require_encryption=True,
        )
    where = args.scheduler or f"a local pool of {args.jobs} process(es)"
    print(f"sweep: {len(points)} point(s) on {where}; cache {cache}", flush=True)
    progress = Progress("sweep", unit="points")
    try:
        rows = run_sweep(
            points,
            cache=cache,
            work=out / "work",
            jobs=args.jobs,
            scheduler=args.scheduler,
            security=security,
            force=args.force,
            progress=progress,
        )
    finally:
        progress.close()
    for row in rows:
        shown = row.get("error") or ", ".join(
            f"{k} {row[k]}"
            for k in ("logic_cells", "fmax_mhz", "cycles_per_sample", "samples_per_s", "accuracy")
            if row.get(k) is not None
        )
        cached = " (cached)" if row.get("cached") else ""
        print(f"{row['kind']} {row['board']} {row['config']} lanes {row['lanes']}: {shown}{cached}")
    failed = sum("error" in r for r in rows)
    print(f"{len(rows)} point(s), {sum(bool(r.get('cached')) for r in rows)} from the cache, "
          f"{failed} failed")  # fmt: skip
    write_json(args.json, {"rows": rows})
    if args.csv:
        write_csv(rows, args.csv)
        print(f"wrote {args.csv}")
    for figure in pareto_plot(rows, out):
        print(f"wrote {figure}")
    return 1 if failed == len(rows) else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(
        subparsers,
        "sweep",
        "a grid of logic, build, sim or train jobs on a local pool or a Dask cluster, cached",
        "pulsegate sweep --kind logic --board icebreaker --config board-xor,iris "
        "--lanes 1 --lanes 2 --csv out/sweep.csv",
        run,
    )

    def comma_list(text: str) -> list[str]:
        return [t for t in (part.strip() for part in text.split(",")) if t]

    p.add_argument("--kind", type=comma_list, help="logic, build, sim, train (logic)")
    p.add_argument("--board", type=comma_list, help="boards, comma-separated (icebreaker)")
    p.add_argument("--config", type=comma_list, help="configurations (board-xor)")
    p.add_argument("--lanes", action="append", help="a lane plan, one a --lanes (1)")
    p.add_argument("--clock-mhz", type=positive_float, action="append", help="PLL clocks")
    p.add_argument("--seed", type=int, action="append", help="seeds (the config's)")
    p.add_argument("--core", choices=("memory", "spatial"), default="memory")
    p.add_argument("--grid", help="a JSON file with the grid's lists (kind, board, config, ...)")
    p.add_argument(
        "--jobs", type=positive_int, default=len(os.sched_getaffinity(0)),
        help="local processes (the cores available)",
    )  # fmt: skip
    p.add_argument(
        "--scheduler",
        help="a Dask scheduler's address (tcp:// or tls://): run there instead "
        "(pip install 'pulsegate[dask]'; a cluster runs what clients send: a trusted network)",
    )
    p.add_argument("--tls-ca-file", help="with tls://: the CA certificate")
    p.add_argument("--tls-cert", help="with tls://: this client's certificate")
    p.add_argument("--tls-key", help="with tls://: this client's key")
    p.add_argument("--time-limit", type=minutes, metavar="MIN", help="per build job")
    p.add_argument("--cache", help="the results cache (OUT/cache)")
    p.add_argument("--force", action="store_true", help="run every point again")
    p.add_argument("--out", default="build/sweep", help="output folder (build/sweep)")
    p.add_argument("--json", help="write {'rows': [...]} here")
    p.add_argument("--csv", help="write the table as CSV here")
