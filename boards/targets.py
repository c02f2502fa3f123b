"""Supported boards, the board top, and builds with the open toolchain (YoWASP).

``build(board, cfg, out)`` writes the Verilog, the bitstream and a report: cells used against
what the device has (from nextpnr's JSON report), Fmax against the board clock, timing met or
not. iCE40 caveat: nextpnr-ice40 does not time the inside of SB_MAC16 blocks (placeholder
delays), so iCE40 Fmax with DSPs in use is optimistic about the multipliers themselves.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.build import ResourceError
from amaranth.hdl import Elaboratable, Module
from amaranth_boards.ice40_hx8k_b_evn import ICE40HX8KBEVNPlatform
from amaranth_boards.icebreaker import ICEBreakerPlatform
from amaranth_boards.orangecrab_r0_2 import OrangeCrabR0_2_25FPlatform
from amaranth_boards.resources import UARTResource
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from golden_model.config import Config
from golden_model.schedule import compile_backprop
from hw.network import POOLS, lanes_label, multiplier_count, resolve_lanes, sweep_depths
from hw.synapse import matrix_layout
from toolchain import tool_env

from .store import has_spram, spram_slots, store_kind
from .system import PulsegateSystem

__all__ = [
    "Board",
    "BOARDS",
    "BoardTop",
    "board_config",
    "build",
    "build_auto",
    "BuildError",
    "DoesNotFit",
    "core_logic",
    "core_resources",
    "logic_cells",
    "fastest_fitting_plan",
    "fits_logic",
    "lane_candidates",
    "lane_plans",
    "MULTIPLIERS",
    "ROUTERS",
    "report_markdown",
    "store_slots",
    "ICE40_TIMING_NOTE",
]

#: nextpnr's routers.
ROUTERS = ("router1", "router2")
#: Seconds one ``--lanes auto`` attempt may take (the digits system builds in 20-40 min here
#: when it routes at all).
AUTO_TIME_LIMIT = 60 * 60
ICE40_TIMING_NOTE = "nextpnr-ice40 does not time SB_MAC16 internals (placeholder delays)"

# The stock synth scripts map LUTs with abc9, which dies inside YoWASP's sandbox on designs of
# any size: stop before LUT mapping, map with the classic ``abc -lut 4``, finish the script.
_ICE40_AFTER = (
    "techmap -map +/ice40/latches_map.v; abc -lut 4 -dress; ice40_wrapcarry -unwrap; "
    "techmap -map +/ice40/ff_map.v; clean; opt_lut -tech ice40; "
    "synth_ice40 {dsp} -top top -run map_cells:"
)
_ECP5_AFTER = (
    "techmap -map +/lattice/latches_map.v; abc -lut 4 -dress; clean; "
    "synth_ecp5 -top top -run map_cells:"
)


class _OrangeCrabWithUart(OrangeCrabR0_2_25FPlatform):
    """OrangeCrab r0.2 (25F): its USB port goes to the FPGA, so the host link uses a USB-UART
    adapter on feather pins 0 (FPGA rx) and 1 (FPGA tx)."""

    resources = OrangeCrabR0_2_25FPlatform.resources + [
        UARTResource(0, rx="0", tx="1", conn=("io", 0)),
    ]


@dataclass(frozen=True)
class Board:
    name: str
    platform: type
    family: str  # "ice40" or "ecp5"
    device: str
    dsp: bool  # the device has hard multipliers
    notes: str = ""
    leds: tuple[str, ...] = field(default=("led",))


BOARDS = {
    "icebreaker": Board(
        "icebreaker", ICEBreakerPlatform, "ice40", "iCE40UP5K", True, ICE40_TIMING_NOTE
    ),
    "ice40-hx8k": Board(
        "ice40-hx8k",
        ICE40HX8KBEVNPlatform,
        "ice40",
        "iCE40HX8K",
        False,
        "no DSP blocks: multipliers are built from logic",
    ),
    "ulx3s-85f": Board("ulx3s-85f", ULX3S_85F_Platform, "ecp5", "LFE5U-85F", True),
    "orangecrab": Board(
        "orangecrab",
        _OrangeCrabWithUart,
        "ecp5",
        "LFE5U-25F",
        True,
        "host link on feather pins 0 (rx) and 1 (tx) through a USB-UART adapter",
        leds=("rgb_led",),
    ),
}


def board_config() -> Config:
    """The network boards are built with by default: XOR on 2-4-1 in 12-bit words (Q4.8
    currents and weights). It trains from each of seeds 1-10 in 48-476 samples, as the
    16-bit words do, and leaves a fifth of the iCE40UP5K free beside the host link (16-bit
    words fill 95 % of it)."""
    return Config(
        layers=(2, 4, 1), current_width=12, current_frac=8, weight_width=12, weight_frac=8
    )


def board_named(name: str) -> Board:
    if name not in BOARDS:
        raise ValueError(f"unknown board {name!r} (known: {', '.join(BOARDS)})")
    return BOARDS[name]


def store_slots(cfg: Config, platform, slots: int | None = None) -> int:
    """Samples the link's store holds on ``platform``: ``slots`` if given; on an iCE40UP
    device as many as its SPRAMs take (up to the protocol's 255: the store costs no block RAM
    there), else 16 in block RAM."""
    if slots is not None:
        return slots
    fitting = spram_slots(cfg.current_width, sample_words(cfg))
    return fitting if has_spram(platform) and fitting >= BLOCK_RAM_SLOTS else BLOCK_RAM_SLOTS


#: Samples the link's store holds in block RAM.
BLOCK_RAM_SLOTS = 16


def sample_words(cfg: Config) -> int:
    """Input words of one training sample (the schedule's input groups)."""
    schedule = compile_backprop(cfg)
    return sum(schedule.group(name).size for name in schedule.inputs)


class BoardTop(Elaboratable):
    """The system on a board: UART pins to the host link, LEDs to its status.

    LEDs (as many as the board has): trained, the learned output (XOR: the last sample's
    output above 1/2), a run active, the last request failed.
    """

    def __init__(
        self,
        cfg: Config,
        *,
        baud: int = 115200,
        lanes: int = 1,
        slots: int | None = None,
        word_registers: bool = False,
    ) -> None:
        self.cfg, self.baud, self.lanes, self.slots = cfg, baud, lanes, slots
        self.word_registers = word_registers
        self.system: PulsegateSystem | None = None

    def elaborate(self, platform):
        m = Module()
        divisor = round(platform.default_clk_frequency / self.baud)
        slots = store_slots(self.cfg, platform, self.slots)
        self.system = system = PulsegateSystem(
            self.cfg,
            divisor=divisor,
            lanes=self.lanes,
            slots=slots,
            word_registers=self.word_registers,
        )
        m.submodules.system = system
        uart = platform.request("uart", 0)
        m.d.comb += [system.rx.eq(uart.rx.i), uart.tx.o.eq(system.tx)]
        try:  # ULX3S: the FTDI chip listens to the FPGA's tx only when enabled
            m.d.comb += platform.request("uart_tx_enable", 0).o.eq(1)
        except ResourceError:
            pass
        leds = []
        for index in range(4):
            try:
                leds.append(platform.request("led", index).o)
            except ResourceError:
                break
        if not leds:
            try:
                rgb = platform.request("rgb_led", 0)
                leds = [rgb.g.o, rgb.b.o, rgb.r.o]
            except ResourceError:
                pass
        for k, led in enumerate(leds):
            m.d.comb += led.eq(system.leds[k])
        return m


class BuildError(RuntimeError):
    """A board build failed; the message says why (e.g. a tool's failure and its log)."""


class DoesNotFit(BuildError):
    """The design does not fit the device: cells over its capacity, or place and route
    longer than the time given (congestion). ``--lanes auto`` tries a smaller plan after
    this, and after nothing else."""


def _over_capacity(log: str) -> list[str]:
    """``"CELL used/available (N%)"`` for every cell type nextpnr found over 100 %."""
    import re

    found = []
    for cell, used, available in re.findall(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)", log):
        if int(used) > int(available):
            found.append(f"{cell} {used}/{available} ({100 * int(used) // int(available)} %)")
    return list(dict.fromkeys(found))


def build_stage(log: str | None) -> str:
    """Where a build is, from nextpnr's log so far (``top.tim``; ``None`` before nextpnr
    starts): packing, placing (with the placer's iteration), the placed estimate, routing
    (router1's arcs left or router2's iteration and overused wires), routed."""
    import re

    if log is None:
        return "synthesizing (Yosys)"
    stage, estimate, arcs = "packing", None, None
    for line in log.splitlines():
        if "Running main analytical placer" in line:
            stage = "placing (analytic)"
        elif "Running simulated annealing placer" in line:
            stage = "placing (annealing)"
        elif found := re.search(r"at iteration #(\d+)", line):
            stage = stage.split(",")[0] + f", iteration {found[1]}"
        elif found := re.search(r"Max frequency for clock '[^']*': ([\d.]+) MHz", line):
            if estimate is None:
                estimate, stage = found[1], f"placed at an estimated {found[1]} MHz"
            else:
                return f"routed: {found[1]} MHz (writing the bitstream)"
        elif found := re.search(r"Routing (\d+) arcs", line):
            arcs, stage = int(found[1]), "routing (router1)"
        elif "Running router2" in line:
            stage = "routing (router2)"
        elif found := re.search(r"iter=(\d+) wires=\d+ overused=(\d+)", line):
            stage = f"routing (router2): iteration {found[1]}, {int(found[2]):,} wires overused"
        elif arcs and (found := re.match(r"Info:\s+\d+ \|.*\|\s+(\d+)\|", line)):
            stage = f"routing (router1): {int(found[1]):,} of {arcs:,} arcs left"
    if estimate is not None and stage.startswith("routing"):
        stage = f"placed at an estimated {estimate} MHz; {stage}"
    return stage


def _flow(board: Board) -> dict:
    if board.family == "ice40":
        dsp = "-dsp" if board.dsp else ""
        return {
            "synth_opts": f"{dsp} -run begin:map_luts",
            "script_after_synth": _ICE40_AFTER.format(dsp=dsp),
        }
    return {"synth_opts": "-run begin:map_luts", "script_after_synth": _ECP5_AFTER}


def _run_script(
    plan,
    out: Path,
    time_limit: float | None,
    progress: Callable[[str], None] | None = None,
    poll: float = 60.0,
    env: dict[str, str] | None = None,
) -> None:
    """Run the build plan's script in ``out`` with ``env``; past ``time_limit`` seconds, stop
    it and every tool it started (they share its process group) and raise
    ``TimeoutExpired``. Every ``poll`` seconds ``progress`` gets :func:`build_stage` when it
    has changed."""
    plan.extract(str(out))
    process = subprocess.Popen(
        ["sh", f"{plan.script}.sh"], cwd=out, env=env, start_new_session=True
    )
    deadline = None if time_limit is None else time.monotonic() + time_limit
    shown = None
    while True:
        wait = poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic()))
        try:
            code = process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            if deadline is not None and time.monotonic() >= deadline:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                raise
        if progress is not None:
            log = out / "top.tim"
            stage = build_stage(log.read_text(errors="replace") if log.exists() else None)
            if stage != shown:
                progress(stage)
                shown = stage
    if code:
        raise subprocess.CalledProcessError(code, f"{plan.script}.sh")


def build(
    board: Board | str,
    cfg: Config,
    out: str | Path,
    *,
    lanes: int | dict[str, int] = 1,
    baud: int = 115200,
    router: str = "router1",
    time_limit: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Synthesize, place and route ``cfg``'s system for ``board``; return the report (also
    written to ``out/report.json`` and ``out/report.md``). ``router``: nextpnr's
    ``router1`` (its default) or ``router2`` (measured here on the XOR system: about as fast,
    56.73 against 60.80 MHz on the ECP5-85F; neither finished the digits system at 22 lanes
    and above). ``time_limit`` (seconds): stop the tools and raise
    :class:`BuildError` when the build takes longer (a congested design can route for hours).
    ``progress`` gets the build's stage (:func:`build_stage`) once a minute when it changed."""
    if router not in ROUTERS:
        raise ValueError(f"router must be one of {', '.join(ROUTERS)}, got {router!r}")
    board = board_named(board) if isinstance(board, str) else board
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    platform = board.platform()
    top = BoardTop(cfg, baud=baud, lanes=lanes, word_registers=WORD_REGISTERS[board.family])
    started = time.perf_counter()
    plan = platform.prepare(
        top,
        name="top",
        nextpnr_opts=f"--report report.json --timing-allow-fail --router {router}",
        **_flow(board),
    )
    env = tool_env(workdir=out)  # YoWASP's ABC wants TMPDIR inside the build
    env.setdefault("DFU_SUFFIX", "true")  # OrangeCrab: plain .bit, no DFU suffix tool
    try:
        _run_script(plan, out, time_limit, progress, env=env)
    except subprocess.TimeoutExpired as exc:
        raise DoesNotFit(
            f"the {board.name} build did not finish within {time_limit / 60:.0f} min "
            f"(stopped; progress in {out / 'top.tim'})"
        ) from exc
    except Exception as exc:
        log = out / "top.tim"
        over = _over_capacity(log.read_text()) if log.exists() else []
        if over:
            raise DoesNotFit(
                f"the design does not fit {board.device} ({board.name}): "
                + ", ".join(over)
                + f"; log {log}"
            ) from exc
        raise BuildError(f"the {board.name} build failed ({exc}); logs in {out}") from exc
    seconds = time.perf_counter() - started
    link = top.system.link
    memory = store_kind(cfg.current_width, link.slots * link.input_words, platform, link.store_kind)
    report = json.loads((out / "report.json").read_text())
    clock_mhz = platform.default_clk_frequency / 1e6
    fmax = report.get("fmax", {})
    achieved = min((v["achieved"] for v in fmax.values()), default=0.0)
    utilization = {
        cell: {"used": int(v["used"]), "available": int(v["available"])}
        for cell, v in sorted(report.get("utilization", {}).items())
        if int(v["used"]) > 0 or cell in _KEY_CELLS
    }
    result = {
        "board": board.name,
        "device": board.device,
        "family": board.family,
        "network": "-".join(str(n) for n in cfg.layers),
        "lanes": lanes,
        "router": router,
        "baud": baud,
        "clock_mhz": clock_mhz,
        "fmax_mhz": round(achieved, 2),
        "timing_met": achieved >= clock_mhz,
        "utilization": utilization,
        "sample_store": {"slots": link.slots, "memory": memory},
        "notes": board.notes,
        "build_seconds": round(seconds, 1),
        "bitstream": str(next(iter(sorted(out.glob("top.bi[tn]"))), "")),
    }
    (out / "report.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "nextpnr.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(report_markdown(result))
    return result


_KEY_CELLS = {
    "ICESTORM_LC",
    "ICESTORM_DSP",
    "ICESTORM_RAM",
    "ICESTORM_SPRAM",
    "TRELLIS_COMB",
    "TRELLIS_FF",
    "MULT18X18D",
    "DP16KD",
}


def report_markdown(result: dict) -> str:
    lines = [
        f"# {result['board']} ({result['device']}), network {result['network']}",
        "",
        f"Fmax {result['fmax_mhz']:.2f} MHz against the {result['clock_mhz']:g} MHz board clock: "
        f"timing {'met' if result['timing_met'] else 'NOT met'}."
        + (f" ({result['notes']})" if result["notes"] else ""),
        "",
        "| cell | used | available | % |",
        "| ---- | ---: | --------: | -: |",
    ]
    store = result.get("sample_store")
    tail = (
        [
            "",
            f"Sample store: {store['slots']} samples in "
            + ("SPRAM" if store["memory"] == "spram" else "RAM that Yosys infers (block or LUT)")
            + ".",
        ]
        if store
        else []
    )
    for cell, v in result["utilization"].items():
        share = 100 * v["used"] / v["available"] if v["available"] else 0
        lines.append(f"| {cell} | {v['used']:,} | {v['available']:,} | {share:.1f} |")
    return "\n".join(lines + tail) + "\n"


#: Hard multipliers per device (amaranth-boards' devices; the HX8K has none).
MULTIPLIERS = {"iCE40UP5K": 8, "iCE40HX8K": 0, "LFE5U-85F": 156, "LFE5U-25F": 28}
#: Logic cells per device: LUT4s (an iCE40 logic cell, an ECP5 TRELLIS_COMB).
LOGIC_CELLS = {"iCE40UP5K": 5280, "iCE40HX8K": 7680, "LFE5U-85F": 83640, "LFE5U-25F": 24288}
#: ``--lanes auto`` builds no plan whose core takes more than this share of the device's logic
#: cells by Yosys: nextpnr counted 5.5 % more than Yosys on the digits core (100,747 against
#: 95,513) and the host link adds its own, so above it the build fails at packing or leaves
#: the router too little room, after minutes to an hour; the check takes a few minutes.
AUTO_LOGIC_LIMIT = 0.85
#: Block RAMs per device (SB_RAM40_4K, DP16KD).
BLOCK_RAMS = {"iCE40UP5K": 30, "iCE40HX8K": 32, "LFE5U-85F": 208, "LFE5U-25F": 56}
#: A block RAM's shapes (width, depth, write-enable group in bits) with one read and one
#: write port, per family. The ECP5's DP16KD enables 9-bit bytes, so a 16-bit weight lane
#: (its own write enable: the Hebbian unit writes whole words, the host one lane) takes two
#: of them, and a 36-bit block holds two lanes, not 2.25 (Yosys at W1=130 lanes: 65 DP16KD,
#: not 58); the iCE40's SB_RAM40_4K masks single bits.
BLOCK_SHAPES = {
    "ice40": ((2, 2048, 1), (4, 1024, 1), (8, 512, 1), (16, 256, 1)),
    "ecp5": ((9, 2048, 9), (18, 1024, 9), (36, 512, 9)),
}


#: Families whose boards keep a weight memory of one word in flip-flops, not block RAM
#: (``NetworkCore(word_registers=True)``): an ECP5 slice's flip-flops are beside its LUTs, so
#: a word there costs no logic cell (Yosys, iris W1 at 40 lanes: 1,063 LUT4 and 0 DP16KD
#: against 1,702 and 20); an iCE40 flip-flop takes a logic cell of its own.
WORD_REGISTERS = {"ecp5": True, "ice40": False}


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
    read and one write port per memory). Wide words on short matrices waste blocks: the
    digits core at W1=130,W2=132 needs 197 DP16KD for 4,768 weights. A memory of one word
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


def core_resources(board: Board | str, cfg: Config, lanes):
    """The network core (host port on, debug port off) at ``lanes``, synthesized by Yosys for
    ``board``'s family: a :class:`boards.synth.Resources`."""
    from hw.network import NetworkCore

    from .synth import synthesize

    board = board_named(board) if isinstance(board, str) else board
    core = NetworkCore(
        compile_backprop(cfg),
        cfg,
        lanes=lanes,
        debug=False,
        host_port=True,
        word_registers=WORD_REGISTERS[board.family],
    )
    return synthesize(core, "core", board.family)


def logic_cells(family: str, counts: dict[str, int]) -> int:
    """Logic cells of synthesized ``counts``. ECP5: LUTs (a CCU2C carry cell counts two, it
    packs into two TRELLIS_COMB as nextpnr counts) or flip-flops, whichever are more (a slice
    has as many FFs as LUT4s, side by side). iCE40: LUTs plus flip-flops (a carry rides in
    its LUT's cell): a cell holds one of each, but nextpnr pairs a flip-flop only with the LUT
    that feeds it, and few do here (the 2-4-1 core's 2,083 LUT + 1,613 FF came to 4,172 cells
    with the host link; iris at W1=2,W2=1, 4,221 + 3,443, to 7,377 of the UP5K's 5,280)."""
    if family == "ecp5":
        return max(counts["LUT"] + 2 * counts["CARRY"], counts["FF"])
    return counts["LUT"] + counts["FF"]


def fits_logic(cells: int, device: int) -> bool:
    """Whether ``cells`` of a device's ``device`` logic cells are within
    :data:`AUTO_LOGIC_LIMIT` (the one test auto, the bench and ``pulsegate logic`` apply)."""
    return cells <= AUTO_LOGIC_LIMIT * device


def core_logic(board: Board | str, cfg: Config, lanes) -> tuple[int, int]:
    """``(cells, device cells)``: the logic cells (:func:`logic_cells`) the network core
    takes at ``lanes`` on ``board``'s device by Yosys (:func:`core_resources`), and the
    device's. The host link is not included."""
    board = board_named(board) if isinstance(board, str) else board
    counts = core_resources(board, cfg, lanes).counts
    return logic_cells(board.family, counts), LOGIC_CELLS[board.device]


def fastest_fitting_plan(
    board: Board | str,
    cfg: Config,
    on_checked: Callable[[str, int, int], None] | None = None,
) -> tuple[dict[str, int | str] | None, dict[str, tuple[int, int]]]:
    """The fastest lane plan (:func:`lane_plans` by datapath lanes) whose core is within
    :data:`AUTO_LOGIC_LIMIT` of the device's logic by Yosys (:func:`core_logic`), or ``None``,
    and ``{plan label: (cells, device cells)}`` for every plan synthesized. The fastest is
    tried first, then the rest halved (logic grows with the lanes): a handful of syntheses,
    not one per plan. ``on_checked(label, cells, device cells)`` is called after each (they
    take minutes for a large core)."""
    board = board_named(board) if isinstance(board, str) else board
    plans = lane_plans(board, cfg, frontier="lanes")
    checked: dict[str, tuple[int, int]] = {}

    def fits(index: int) -> bool:
        cells, device = core_logic(board, cfg, plans[index])
        checked[lanes_label(plans[index])] = (cells, device)
        if on_checked is not None:
            on_checked(lanes_label(plans[index]), cells, device)
        return fits_logic(cells, device)

    if fits(0):
        return plans[0], checked
    best, low, high = None, 1, len(plans) - 1
    while low <= high:
        middle = (low + high) // 2
        if fits(middle):
            best, high = middle, middle - 1
        else:
            low = middle + 1
    return (plans[best] if best is not None else None), checked


def build_auto(
    board: Board | str,
    cfg: Config,
    out: str | Path,
    *,
    baud: int = 115200,
    router: str = "router1",
    time_limit: float | None = AUTO_TIME_LIMIT,
    check_logic: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Build with the fastest lane plan (:func:`lane_plans`) that fits ``board`` and meets
    its clock. With ``check_logic`` the plans whose core takes more than
    :data:`AUTO_LOGIC_LIMIT` of the device's logic by Yosys are left out first
    (:func:`fastest_fitting_plan`: a few syntheses, minutes each; the digits core at
    W1=130,W2=132,pool=core is 91 % of the ECP5-85F). The fastest plan left is built first
    (it usually fits: one build); otherwise the search halves the slower ones at each build
    (area and delay grow with the lanes; with ``check_logic`` these are the plans of fewer
    datapath lanes, ``lane_plans(frontier="lanes")``, otherwise of fewer multipliers). A
    build that takes longer than ``time_limit`` seconds counts as not fitting (routing
    congestion). The report lists every attempt, the syntheses over the limit included.
    ``progress`` gets each logic check and each build's stages as they come."""
    board = board_named(board) if isinstance(board, str) else board
    # With the logic check: from the fastest plan within the logic on, the plans of fewer
    # lanes (less logic); without it, the plans of fewer multipliers.
    plans = lane_plans(board, cfg, frontier="lanes" if check_logic else "multipliers")
    tried, best = [], None
    if check_logic:

        def checked(label: str, cells: int, device: int) -> None:
            if progress is not None:
                progress(f"lanes {label}: core {cells:,} of {device:,} logic cells by Yosys")

        fastest, logic = fastest_fitting_plan(board, cfg, on_checked=checked)
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

    def attempt(plan: dict[str, int]) -> dict | None:
        label = lanes_label(plan)
        try:
            report = build(
                board,
                cfg,
                Path(out) / f"lanes-{label}",
                lanes=plan,
                baud=baud,
                router=router,
                time_limit=time_limit,
                progress=(lambda stage: progress(f"lanes {label}: {stage}")) if progress else None,
            )
            ok = report["timing_met"]
            outcome = "fits, timing met" if ok else f"timing not met ({report['fmax_mhz']} MHz)"
        except DoesNotFit as exc:  # a tool's crash or a bad option is not "does not fit"
            report, ok, outcome = None, False, str(exc)
        tried.append({"lanes": label, "result": outcome})
        return report if ok else None

    best = attempt(plans[0])
    if best is None:
        low, high = 1, len(plans) - 1
        while low <= high:
            middle = (low + high) // 2
            report = attempt(plans[middle])
            if report is not None:
                best, high = report, middle - 1  # the fastest success so far
            else:
                low = middle + 1
    if best is None:
        raise BuildError(
            f"no lane plan fits {board.device} ({board.name}) and meets timing: "
            + "; ".join(f"{t['lanes']}: {t['result']}" for t in tried)
        )
    best["lanes_tried"] = tried
    return best
