"""Lane plans: how many multiply-accumulates per clock each matrix gets on a board, whether
its weights fit the device's block RAM and its core the device's logic, and ``--lanes auto``,
which builds the fastest plan that fits and meets timing.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

from golden_model.config import Config
from golden_model.schedule import compile_backprop
from hw.cores import Fold
from hw.network import POOLS, lanes_label, multiplier_count, resolve_lanes, sweep_depths
from hw.synapse import matrix_layout

from .catalogue import (
    BLOCK_RAM_SLOTS,
    BLOCK_RAMS,
    BLOCK_SHAPES,
    LOGIC_CELLS,
    MULTIPLIERS,
    WORD_REGISTERS,
    Board,
    board_named,
    sample_words,
)
from .pnr import BuildError, DoesNotFit, Router, build

__all__ = [
    "AUTO_LOGIC_LIMIT",
    "AUTO_TIME_LIMIT",
    "weight_blocks",
    "lane_candidates",
    "lane_plans",
    "core_resources",
    "core_logic",
    "logic_cells",
    "fits_logic",
    "first_that_works",
    "fastest_fitting_plan",
    "build_auto",
    "memory_plans",
    "FOLDS",
    "LANE_CELLS",
    "MULTIPLIER_CELLS",
]

#: Seconds one ``--lanes auto`` attempt may take (the digits system builds in 20-40 min here
#: when it routes at all).
AUTO_TIME_LIMIT = 60 * 60
#: ``--lanes auto`` builds no plan whose core takes more than this share of the device's logic
#: cells by Yosys: nextpnr counts a little more than Yosys and the host link adds its own, so
#: above it a build fails at packing or leaves the router too little room (BENCHMARKS.md).
AUTO_LOGIC_LIMIT = 0.85


def _blocks(width: int, depth: int, family: str, lane_width: int | None = None) -> int:
    """Block RAMs for a ``width x depth`` memory in the block's best shape; with
    ``lane_width``, its words are lanes of that many bits, each with its own write enable
    (every lane then starts on an enable group of the block)."""
    best = None
    for w, d, group in BLOCK_SHAPES[family]:
        if lane_width is None:
            across = -(-width // w)
        else:
            groups = (width // lane_width) * -(-lane_width // group)
            across = -(-groups // (w // group))
        blocks = across * -(-depth // d)
        best = blocks if best is None else min(best, blocks)
    return best


def _store_blocks(board: Board, cfg: Config) -> int:
    """Block RAMs of the host link's sample store (none in an iCE40UP's SPRAM)."""
    if board.device.startswith("iCE40UP"):
        return 0
    return _blocks(cfg.current_width, BLOCK_RAM_SLOTS * sample_words(cfg), board.family)


def weight_blocks(schedule, cfg: Config, lanes, family: str) -> int:
    """Block RAMs the weight memories take at ``lanes``: each memory's words split across
    blocks side by side, its depth across blocks end to end, in the block's best shape (one
    read and one write port per memory). Wide words on short matrices waste blocks. A
    memory of one word
    takes none where the family keeps it in flip-flops (:data:`WORD_REGISTERS`)."""
    counts = resolve_lanes(schedule, lanes)
    layouts = [
        matrix_layout(schedule, m.name, counts[m.name], cfg.weight_width) for m in schedule.matrices
    ]
    ww = cfg.weight_width
    return sum(
        _blocks(geo.word_width, geo.depth, family, ww)
        for geo in layouts
        if not (WORD_REGISTERS[family] and geo.depth == 1)
    )


def lane_candidates(board: Board | str, cfg: Config) -> list[int]:
    """Lane counts worth trying for ``cfg`` on ``board``, largest first: the device's
    multipliers bound the count (a matrix's units share ``lanes`` of them,
    :func:`~hw.network.multiplier_count`), and only counts that shorten some sweep are kept
    (the fewest lanes for each sample length: digits at 31 lanes splits its 65 columns into 3
    chunks, as at 22, so 23-31 would only add idle multipliers and routing)."""
    board = board_named(board) if isinstance(board, str) else board
    schedule = compile_backprop(cfg)
    widest = max(m.rows if m.transpose_of else m.cols for m in schedule.matrices)
    budget = MULTIPLIERS.get(board.device, 0) if board.dsp else None
    # Past a row's length words span rows, so up to the largest matrix can help.
    most = max(m.rows * m.cols for m in schedule.matrices) if budget else widest
    fitting = [
        n for n in range(1, most + 1) if budget is None or multiplier_count(schedule, n) <= budget
    ]
    top = max(fitting, default=1)
    clocks = {lanes: sum(sweep_depths(schedule, cfg, lanes)) for lanes in range(1, top + 1)}
    return [n for n in range(top, 0, -1) if n == 1 or clocks[n] < clocks[n - 1]]


def lane_plans(
    board: Board | str,
    cfg: Config,
    pools: tuple[str, ...] = POOLS,
    frontier: str = "multipliers",
) -> list[dict[str, int | str]]:
    """Lane counts per matrix worth trying for ``cfg`` on ``board``, fastest first: each
    plan gives every weight matrix (with its transposed copy and its learning rule, which share
    the count) as many lanes as shortens its sweeps, within the device's multipliers, and no
    plan uses more multipliers than a faster one. A matrix's units share its multipliers
    (:func:`~hw.network.multiplier_count`); with ``"core"`` among ``pools`` (the default,
    on boards with hard multipliers) plans with one pool for the whole core are weighed too,
    their learning rules taking turns (each starting as the one before names its last word, so
    turns cost no clock beyond the sweeps). Digits on the
    ECP5-85F: one pool of 132, W1 at 130 lanes (two rows a word) and W2 at 132 (four), 41
    sweep clocks per sample; per matrix, W1 at 65 and W2 at 66 (74).

    With ``frontier="lanes"`` a plan is kept when it has fewer datapath lanes (every unit's
    lanes summed, ``multiplier_count(..., share=False)``) than every faster one instead: the
    logic grows with those, not with the shared multipliers, so this is the list to search
    for the fastest plan within a device's logic (on the UP5K iris at one lane per matrix,
    131 sweep clocks, is as small as one pool of one lane, 158)."""
    if frontier not in ("multipliers", "lanes"):
        raise ValueError(f"frontier: expected 'multipliers' or 'lanes', got {frontier!r}")
    board = board_named(board) if isinstance(board, str) else board
    schedule = compile_backprop(cfg)
    primaries = [m for m in schedule.matrices if not m.transpose_of]
    copies = {m.transpose_of: m for m in schedule.matrices if m.transpose_of}

    def useful(m) -> list[int]:
        """Counts that shorten one of the matrix's sweeps (by rows; its copy by columns)."""
        copy = copies.get(m.name)

        def depths(n: int) -> tuple[int, ...]:
            names = [m.name] + ([copy.name] if copy else [])
            return tuple(matrix_layout(schedule, k, n, cfg.weight_width).depth for k in names)

        # Past a row's length a word spans rows, so every lane count up to the whole
        # matrix can shorten a sweep; the device's multipliers bound it (logic, without).
        most = min(m.rows * m.cols, budget) if budget else max(m.cols, copy.rows if copy else 0)
        return [n for n in range(1, most + 1) if n == 1 or depths(n) != depths(n - 1)]

    budget = MULTIPLIERS.get(board.device, 0) if board.dsp else None
    # The weights must fit beside the host link's sample store (its block RAMs, if any).
    blocks = BLOCK_RAMS.get(board.device, 0) - _store_blocks(board, cfg)
    plans = []
    # One pool for the core only counts where multipliers are hard (and few).
    settings = [{} if pool == "matrix" else {"pool": pool} for pool in pools]
    settings = settings if budget else [{}]
    for counts in itertools.product(*(useful(m) for m in primaries)):
        for pool in settings:
            plan = {m.name: n for m, n in zip(primaries, counts, strict=True)} | pool
            multipliers = multiplier_count(schedule, plan)
            if budget is not None and multipliers > budget:
                continue
            if weight_blocks(schedule, cfg, plan, board.family) <= blocks:
                clocks = sum(sweep_depths(schedule, cfg, plan))
                size = multipliers
                if frontier == "lanes":
                    size = multiplier_count(schedule, plan, share=False)
                plans.append((clocks, size, plan))
    if not plans:
        need = weight_blocks(schedule, cfg, 1, board.family)
        raise BuildError(
            f"no lane plan fits {board.device} ({board.name}): the "
            f"{'-'.join(map(str, cfg.layers))} weights need {need:,} block RAMs at one lane, "
            f"{max(blocks, 0):,} are free beside the sample store"
        )
    kept, fewest = [], None
    for _, size, plan in sorted(plans, key=lambda p: (p[0], p[1])):
        if fewest is None or size < fewest:
            kept.append(plan)
            fewest = size
    return kept


def core_resources(
    board: Board | str, cfg: Config, lanes, core: str = "spatial", simd: int | None = None
):
    """The network core (debug port off; the spatial core with its host port) at ``lanes``
    (and the memory core's ``simd``), synthesized by Yosys for ``board``'s family: a
    :class:`boards.synth.Resources`. ``core``: :class:`hw.cores.CoreKind`."""
    from hw.cores import CoreKind, make_core

    from .synth import synthesize

    board = board_named(board) if isinstance(board, str) else board
    options = {}
    if CoreKind(core) == CoreKind.SPATIAL:
        options = {"host_port": True, "word_registers": WORD_REGISTERS[board.family]}
    if simd is not None:
        options["simd"] = simd
    network = make_core(core, compile_backprop(cfg), cfg, lanes, debug=False, **options)
    return synthesize(network, "core", board.family)


def logic_cells(family: str, counts: dict[str, int]) -> int:
    """Logic cells of synthesized ``counts``. ECP5: LUTs (a CCU2C carry cell counts two, it
    packs into two TRELLIS_COMB as nextpnr counts; a TRELLIS_DPR16X4 of LUT RAM four, the
    LUTs of the two slices it occupies) or flip-flops, whichever are more (a slice has as
    many FFs as LUT4s, side by side). iCE40: LUTs plus flip-flops (a carry rides in its
    LUT's cell): a cell holds one of each, but nextpnr pairs a flip-flop only with the LUT
    that feeds it, and few do in these cores (BENCHMARKS.md has the packed counts)."""
    if family == "ecp5":
        luts = counts["LUT"] + 2 * counts["CARRY"] + 4 * counts.get("LUTRAM", 0)
        return max(luts, counts["FF"])
    return counts["LUT"] + counts["FF"]


def fits_logic(cells: int, device: int) -> bool:
    """Whether ``cells`` of a device's ``device`` logic cells are within
    :data:`AUTO_LOGIC_LIMIT` (the one test auto, the bench and ``pulsegate logic`` apply)."""
    return cells <= AUTO_LOGIC_LIMIT * device


def core_logic(board: Board | str, cfg: Config, lanes, core: str = "spatial") -> tuple[int, int]:
    """``(cells, device cells)``: the logic cells (:func:`logic_cells`) the network core
    (of kind ``core``) takes at ``lanes`` on ``board``'s device by Yosys
    (:func:`core_resources`), and the device's. The host link is not included. A memory
    core whose memories want more block RAMs than the device has beside the sample store
    counts as filling the device."""
    board = board_named(board) if isinstance(board, str) else board
    if isinstance(lanes, Fold):
        counts = core_resources(board, cfg, lanes.lanes, core, lanes.simd).counts
    else:
        counts = core_resources(board, cfg, lanes, core=core).counts
    cells, device = logic_cells(board.family, counts), LOGIC_CELLS[board.device]
    if core != "spatial" and counts["BRAM"] > BLOCK_RAMS[board.device] - _store_blocks(board, cfg):
        cells = max(cells, device + 1)
    return cells, device


def memory_lane_counts(board: Board | str, cfg: Config) -> list[int]:
    """Lane counts worth trying for the memory-centric core on ``board``, fastest first.

    The candidates are the powers of two up to the device's multipliers (any on a device
    without them), and for each of them and each matrix dimension ``d`` the fewest lanes
    that split ``d`` into as many words (``ceil(d / ceil(d / n))``: 400 at 128 lanes is four
    words, as it is at 100). A count is kept only when it takes fewer clocks a sample
    (:func:`hw.microcode.sample_clocks`) than every smaller one: digits at 65 lanes takes
    the clocks it takes at 128."""
    from hw.microcode import program_clocks
    from hw.microprogram import compile_program

    board = board_named(board) if isinstance(board, str) else board
    schedule = compile_backprop(cfg)
    dims = {d for m in schedule.matrices for d in (m.rows, m.cols)}
    widest = max(dims)
    budget = MULTIPLIERS.get(board.device, 0) if board.dsp else None
    powers, n = [], 1
    while n <= (budget if budget is not None else widest) and n < 2 * widest:
        powers.append(n)
        n *= 2
    counts = sorted({n for n in powers} | {-(-d // -(-d // n)) for n in powers for d in dims})
    kept, best = [], None
    for n in counts:
        clocks = program_clocks(compile_program(schedule, n), cfg)
        if best is None or clocks < best:
            kept.append(n)
            best = clocks
    return kept[::-1]


#: Folds ``--lanes auto`` weighs for the memory core: multipliers a lane (powers of two).
FOLDS = (2, 4, 8, 16)
#: What an element lane and a multiplier cost the memory core, in ECP5 logic cells by Yosys
#: (digits: 16 x 16 12,271 cells, 8 x 32 13,917, 32 x 32 21,253; BENCHMARKS.md): the weights
#: :func:`memory_plans` compares plans of different shapes by.
LANE_CELLS, MULTIPLIER_CELLS = 306, 256


def memory_plans(board: Board | str, cfg: Config) -> list[int | Fold]:
    """Plans worth trying for the memory-centric core on ``board``, fastest first: the lane
    counts of :func:`memory_lane_counts` and folds (:class:`~hw.cores.Fold`: ``lanes`` a
    power of two, :data:`FOLDS` multipliers a lane, within the device's multipliers). A plan
    is kept only when it takes fewer clocks a sample than every plan that costs as much or
    less (:data:`LANE_CELLS` a lane, :data:`MULTIPLIER_CELLS` a multiplier): so the list,
    fastest first, runs from the costliest plan to the cheapest, which the halving searches
    of ``--lanes auto`` assume. A fold is kept where it is the cheaper way to its clocks:
    digits on the ECP5-85F keeps 8 x 16, 4 x 16, 4 x 8 and 2 x 8 between the full counts
    (16 full lanes take about the clocks of 8 x 32 for less)."""
    from hw.microcode import program_clocks
    from hw.microprogram import compile_program

    board = board_named(board) if isinstance(board, str) else board
    schedule = compile_backprop(cfg)
    budget = MULTIPLIERS.get(board.device, 0) if board.dsp else None
    counts = memory_lane_counts(board, cfg)
    widest = max(d for m in schedule.matrices for d in (m.rows, m.cols))
    candidates: list[int | Fold] = list(counts)
    lanes = 1
    while lanes <= max(counts):
        for fold in FOLDS:
            simd = lanes * fold
            if (budget is None or simd <= budget) and simd < 2 * widest:
                candidates.append(Fold(lanes, simd))
        lanes *= 2

    def shape(plan: int | Fold) -> tuple[int, int]:
        return (plan.lanes, plan.simd) if isinstance(plan, Fold) else (plan, plan)

    def cost(plan: int | Fold) -> int:
        lanes, simd = shape(plan)
        return lanes * LANE_CELLS + simd * MULTIPLIER_CELLS

    def clocks(plan: int | Fold) -> int:
        lanes, simd = shape(plan)
        return program_clocks(compile_program(schedule, lanes, simd), cfg)

    measured = sorted((cost(p), clocks(p), shape(p), p) for p in candidates)
    kept, best = [], None
    for _, taken, _, plan in measured:
        if best is None or taken < best:
            kept.append(plan)
            best = taken
    return kept[::-1]


def first_that_works(count: int, works: Callable[[int], bool]) -> int | None:
    """The first index in ``range(count)`` for which ``works`` holds, when it holds for every
    index past the first that does (plans ordered fastest first; slower ones are smaller):
    index 0 alone first (it usually works: one try), then a halving search of the rest."""
    if count and works(0):
        return 0
    best, low, high = None, 1, count - 1
    while low <= high:
        middle = (low + high) // 2
        if works(middle):
            best, high = middle, middle - 1
        else:
            low = middle + 1
    return best


def fastest_fitting_plan(
    board: Board | str,
    cfg: Config,
    on_checked: Callable[[str, int, int], None] | None = None,
    core: str = "spatial",
) -> tuple[dict[str, int | str] | int | None, dict[str, tuple[int, int]]]:
    """The fastest lane plan (:func:`lane_plans` by datapath lanes) whose core is within
    :data:`AUTO_LOGIC_LIMIT` of the device's logic by Yosys (:func:`core_logic`), or ``None``,
    and ``{plan label: (cells, device cells)}`` for every plan synthesized. The fastest is
    tried first, then the rest halved (logic grows with the lanes): a handful of syntheses,
    not one per plan. ``on_checked(label, cells, device cells)`` is called after each (they
    take minutes for a large core). The memory core (``core="memory"``) tries
    :func:`memory_lane_counts`."""
    board = board_named(board) if isinstance(board, str) else board
    if core == "spatial":
        plans = lane_plans(board, cfg, frontier="lanes")
    else:
        plans = memory_plans(board, cfg)
    checked: dict[str, tuple[int, int]] = {}

    def fits(index: int) -> bool:
        cells, device = core_logic(board, cfg, plans[index], core=core)
        checked[lanes_label(plans[index])] = (cells, device)
        if on_checked is not None:
            on_checked(lanes_label(plans[index]), cells, device)
        return fits_logic(cells, device)

    best = first_that_works(len(plans), fits)
    return (plans[best] if best is not None else None), checked


def build_auto(
    board: Board | str,
    cfg: Config,
    out: str | Path,
    *,
    baud: int = 115200,
    router: str = Router.ROUTER1,
    time_limit: float | None = AUTO_TIME_LIMIT,
    check_logic: bool = True,
    progress: Callable[[str], None] | None = None,
    core: str = "spatial",
    clock_mhz: float | None = None,
) -> dict:
    """Build with the fastest lane plan (:func:`lane_plans`) that fits ``board`` and meets
    its clock. With ``check_logic`` the plans whose core takes more than
    :data:`AUTO_LOGIC_LIMIT` of the device's logic by Yosys are left out first
    (:func:`fastest_fitting_plan`: a few syntheses, minutes each). The fastest plan left is
    built first
    (it usually fits: one build); otherwise the search halves the slower ones at each build
    (area and delay grow with the lanes; with ``check_logic`` these are the plans of fewer
    datapath lanes, ``lane_plans(frontier="lanes")``, otherwise of fewer multipliers). A
    build that takes longer than ``time_limit`` seconds counts as not fitting (routing
    congestion). The report lists every attempt, the syntheses over the limit included.
    ``progress`` gets each logic check and each build's stages as they come. The memory core
    (``core="memory"``) searches :func:`memory_lane_counts` the same way."""
    board = board_named(board) if isinstance(board, str) else board
    # With the logic check: from the fastest plan within the logic on, the plans of fewer
    # lanes (less logic); without it, the plans of fewer multipliers.
    if core == "spatial":
        plans = lane_plans(board, cfg, frontier="lanes" if check_logic else "multipliers")
    else:
        plans = memory_plans(board, cfg)
    tried: list[dict[str, str]] = []
    if check_logic:

        def checked(label: str, cells: int, device: int) -> None:
            if progress is not None:
                progress(f"lanes {label}: core {cells:,} of {device:,} logic cells by Yosys")

        fastest, logic = fastest_fitting_plan(board, cfg, on_checked=checked, core=core)
        for label, (cells, device) in logic.items():
            if not fits_logic(cells, device):
                outcome = (
                    f"not built: the core takes {cells:,} of {device:,} logic cells "
                    f"({cells / device:.0%}, over {AUTO_LOGIC_LIMIT:.0%}) by Yosys"
                )
                tried.append({"lanes": label, "result": outcome})
        if fastest is None:
            raise BuildError(
                f"no lane plan's core fits {board.device} ({board.name}) within "
                f"{AUTO_LOGIC_LIMIT:.0%} of its logic: "
                + "; ".join(f"{t['lanes']}: {t['result']}" for t in tried)
            )
        plans = plans[plans.index(fastest) :]

    def attempt(plan: dict[str, int] | int | Fold) -> dict | None:
        label = lanes_label(plan)
        lanes, simd = plan if isinstance(plan, Fold) else (plan, None)
        try:
            report = build(
                board,
                cfg,
                Path(out) / f"lanes-{label}",
                lanes=lanes,
                simd=simd,
                baud=baud,
                router=router,
                time_limit=time_limit,
                progress=(lambda stage: progress(f"lanes {label}: {stage}")) if progress else None,
                core=core,
                clock_mhz=clock_mhz,
            )
            ok = report["timing_met"]
            outcome = "fits, timing met" if ok else f"timing not met ({report['fmax_mhz']} MHz)"
        except DoesNotFit as exc:  # a tool's crash or a bad option is not "does not fit"
            report, ok, outcome = None, False, str(exc)
        tried.append({"lanes": label, "result": outcome})
        return report if ok else None

    reports: dict[int, dict] = {}

    def builds(index: int) -> bool:
        report = attempt(plans[index])
        if report is not None:
            reports[index] = report
        return report is not None

    found = first_that_works(len(plans), builds)
    best = reports[found] if found is not None else None
    if best is None:
        raise BuildError(
            f"no lane plan fits {board.device} ({board.name}) and meets timing: "
            + "; ".join(f"{t['lanes']}: {t['result']}" for t in tried)
        )
    best["lanes_tried"] = tried
    return best
