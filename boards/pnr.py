"""A board build with the open toolchain (YoWASP Yosys and nextpnr), and its report.

``build(board, cfg, out)`` writes the Verilog, the bitstream and a report: cells used against
what the device has (from nextpnr's JSON report), Fmax against the board clock, timing met or
not. iCE40 caveat: nextpnr-ice40 does not time the inside of SB_MAC16 blocks (placeholder
delays), so iCE40 Fmax with DSPs in use is optimistic about the multipliers themselves.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from golden_model.config import Config
from toolchain import tool_env

from .catalogue import WORD_REGISTERS, Board, board_named
from .store import store_kind
from .top import BoardTop

__all__ = [
    "Router",
    "ROUTERS",
    "BuildError",
    "DoesNotFit",
    "build",
    "build_at_best_clock",
    "build_stage",
    "critical_path",
    "over_capacity",
    "parse_report",
    "report_markdown",
    "timing_met",
    "run_script",
]


class Router(StrEnum):
    """nextpnr's routers: router2 is the other choice for congested designs."""

    ROUTER1 = "router1"
    ROUTER2 = "router2"


ROUTERS = tuple(Router)

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


class BuildError(RuntimeError):
    """A board build failed; the message says why (e.g. a tool's failure and its log)."""


class DoesNotFit(BuildError):
    """The design does not fit the device: cells over its capacity, or place and route
    longer than the time given (congestion). ``--lanes auto`` tries a smaller plan after
    this, and after nothing else."""


def parse_report(report: dict) -> tuple[float, dict[str, dict[str, int]]]:
    """nextpnr's JSON report (``--report``) as ``(Fmax in MHz, utilization)``: the slowest
    clock domain's achieved frequency (0 when none is reported), and ``cell -> {"used",
    "available"}`` for every cell type in use and the key ones (logic, DSP, RAM) always."""
    fmax = report.get("fmax", {})
    achieved = min((float(v["achieved"]) for v in fmax.values()), default=0.0)
    utilization = {
        cell: {"used": int(v["used"]), "available": int(v["available"])}
        for cell, v in sorted(report.get("utilization", {}).items())
        if int(v["used"]) > 0 or cell in _KEY_CELLS
    }
    return achieved, utilization


def timing_met(report: dict, clock_mhz: float) -> bool:
    """Every clock nextpnr timed reaches its constraint (``clock_mhz`` where the report gives
    none); False when no clock is reported."""
    fmax = report.get("fmax", {})
    return bool(fmax) and all(
        float(v["achieved"]) >= float(v.get("constraint", clock_mhz)) for v in fmax.values()
    )


def critical_path(report: dict) -> dict | None:
    """The slowest clock-to-clock critical path in nextpnr's JSON report (a pad's only when
    there is none): ``delay_ns`` in all,
    ``logic_ns`` and ``routing_ns`` (with setup and clock-to-out), ``source`` and ``sink``
    (cell names), ``cells`` (those it passes, in order); ``None`` when the report has no
    path. A cell's name is the netlist's: Amaranth's hierarchy, so it says which block."""
    paths = report.get("critical_paths") or []
    timed = [p for p in paths if p.get("path")]
    # a pad's path (to or from "<async>", an LED say) does not set the clock's Fmax
    clocked = [p for p in timed if "<async>" not in (p.get("from"), p.get("to"))]
    timed = clocked or timed
    if not timed:
        return None
    worst = max(timed, key=lambda p: sum(float(step.get("delay", 0)) for step in p["path"]))
    steps = worst["path"]
    routing = sum(float(s.get("delay", 0)) for s in steps if s.get("type") == "routing")
    total = sum(float(s.get("delay", 0)) for s in steps)
    cells = []
    for step in steps:
        for end in ("from", "to"):
            name = step.get(end, {}).get("cell")
            if name and (not cells or cells[-1] != name):
                cells.append(name)
    return {
        "delay_ns": round(total, 2),
        "logic_ns": round(total - routing, 2),
        "routing_ns": round(routing, 2),
        "source": cells[0] if cells else "",
        "sink": cells[-1] if cells else "",
        "cells": cells,
    }


def over_capacity(log: str) -> list[str]:
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


def run_script(
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
    try:
        while True:
            wait = poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic()))
            try:
                code = process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                if deadline is not None and time.monotonic() >= deadline:
                    raise
            if progress is not None:
                log = out / "top.tim"
                stage = build_stage(log.read_text(errors="replace") if log.exists() else None)
                if stage != shown:
                    progress(stage)
                    shown = stage
    except BaseException:  # past the limit, Ctrl-C or a terminated build: its tools go too
        # (in a session of their own, no signal to this process reaches them)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    if code:
        raise subprocess.CalledProcessError(code, f"{plan.script}.sh")


def build(
    board: Board | str,
    cfg: Config,
    out: str | Path,
    *,
    lanes: int | dict[str, int] = 1,
    baud: int = 115200,
    router: str = Router.ROUTER1,
    time_limit: float | None = None,
    progress: Callable[[str], None] | None = None,
    core: str = "spatial",
    clock_mhz: float | None = None,
    slots: int | None = None,
    placement_seed: int | None = None,
    simd: int | None = None,
) -> dict:
    """Synthesize, place and route ``cfg``'s system for ``board`` (its network core of kind
    ``core``, :class:`hw.cores.CoreKind`), its core clock from the board's PLL at
    ``clock_mhz`` (the nearest the PLL makes; ``None``: the board's oscillator, no PLL), its
    sample store ``slots`` samples deep (``None``: :func:`boards.catalogue.store_slots`);
    return the report (also
    written to ``out/report.json`` and ``out/report.md``). ``router``: nextpnr's
    ``router1`` (its default) or ``router2``. ``time_limit`` (seconds): stop the tools and raise
    :class:`BuildError` when the build takes longer (a congested design can route for hours).
    ``progress`` gets the build's stage (:func:`build_stage`) once a minute when it changed.
    ``placement_seed``: nextpnr's ``--seed`` (``None``: its own default); placement moves Fmax
    by a few % from seed to seed, so a comparison of two designs' clocks takes a few seeds."""
    if router not in ROUTERS:
        raise ValueError(f"router must be one of {', '.join(ROUTERS)}, got {router!r}")
    board = board_named(board) if isinstance(board, str) else board
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    platform = board.platform()
    top = BoardTop(
        cfg,
        baud=baud,
        lanes=lanes,
        word_registers=WORD_REGISTERS[board.family],
        core=core,
        clock_mhz=clock_mhz,
        family=board.family,
        pll_pad=board.pll_pad,
        slots=slots,
        simd=simd,
    )
    started = time.perf_counter()
    plan = platform.prepare(
        top,
        name="top",
        nextpnr_opts=f"--report report.json --timing-allow-fail --router {router}"
        + ("" if placement_seed is None else f" --seed {placement_seed}"),
        **_flow(board),
    )
    env = tool_env(workdir=out)  # YoWASP's ABC wants TMPDIR inside the build
    env.setdefault("DFU_SUFFIX", "true")  # OrangeCrab: plain .bit, no DFU suffix tool
    try:
        run_script(plan, out, time_limit, progress, env=env)
    except subprocess.TimeoutExpired as exc:
        raise DoesNotFit(
            f"the {board.name} build did not finish within {time_limit / 60:.0f} min "
            f"(stopped; progress in {out / 'top.tim'})"
        ) from exc
    except Exception as exc:
        log = out / "top.tim"
        over = over_capacity(log.read_text()) if log.exists() else []
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
    achieved, utilization = parse_report(report)
    oscillator_mhz = platform.default_clk_frequency / 1e6
    clock = top.pll.output_mhz if top.pll is not None else oscillator_mhz
    cycles, basis = top.system.cycles_per_sample()
    result = {
        "board": board.name,
        "device": board.device,
        "family": board.family,
        "network": "-".join(str(n) for n in cfg.layers),
        "lanes": lanes,
        **({"simd": simd} if simd is not None else {}),
        "core": str(core),
        "router": router,
        "placement_seed": placement_seed,
        "baud": baud,
        "clock_mhz": round(clock, 4),
        "pll_requested_mhz": clock_mhz,
        "oscillator_mhz": oscillator_mhz,
        "fmax_mhz": round(achieved, 2),
        "timing_met": timing_met(report, clock),
        "cycles_per_sample": cycles,
        "cycles_basis": basis,
        "samples_per_s": round(clock * 1e6 / cycles),
        "utilization": utilization,
        "critical_path": critical_path(report),
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
        f"Fmax {result['fmax_mhz']:.2f} MHz against the {result['clock_mhz']:g} MHz "
        + (
            f"PLL clock ({result['pll_requested_mhz']:g} MHz requested)"
            if result.get("pll_requested_mhz")
            else "board clock"
        )
        + f": timing {'met' if result['timing_met'] else 'NOT met'}."
        + (f" ({result['notes']})" if result["notes"] else ""),
        "",
        f"{result['cycles_per_sample']:,} clocks a training sample ({result['cycles_basis']}): "
        f"{result['samples_per_s']:,} samples/s at {result['clock_mhz']:g} MHz.",
        "",
    ]
    path = result.get("critical_path")
    if path:
        period = 1e3 / result["clock_mhz"]
        lines += [
            f"Critical path {path['delay_ns']:.2f} ns (logic {path['logic_ns']:.2f}, routing "
            f"{path['routing_ns']:.2f}) against the {period:.2f} ns period"
            + (f", {path['delay_ns'] - period:.2f} ns over" if path["delay_ns"] > period else "")
            + f": from `{path['source']}` to `{path['sink']}`.",
            "",
        ]
    lines += [
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


#: Place-and-route runs the clock search makes at most, the first at the oscillator.
CLOCK_SEARCH_STEPS = 4
#: The search asks for this share of the last Fmax: nextpnr's Fmax moves a little with the
#: constraint it places for.
CLOCK_MARGIN = 0.97


def build_at_best_clock(
    board: Board | str,
    cfg: Config,
    out: str | Path,
    *,
    steps: int = CLOCK_SEARCH_STEPS,
    progress: Callable[[str], None] | None = None,
    **options,
) -> dict:
    """The build at the highest PLL clock that met timing in a bounded search: first at the
    board's oscillator (no PLL), then at the highest PLL frequency within :data:`CLOCK_MARGIN` of
    the last Fmax (after a PLL build that met timing, at its Fmax itself: a miss only costs
    a build, the best one is kept), at most ``steps`` builds, stopping when the next request
    would repeat one (within 1 %). ``options`` go to :func:`build`. The report is the best
    build's, with ``clock_search``: every step's requested and built clock, Fmax and whether
    timing met."""
    from .clocks import PLL_OUTPUT_MHZ, pll_at_most

    board = board_named(board) if isinstance(board, str) else board
    oscillator = board.platform().default_clk_frequency / 1e6
    low, high = PLL_OUTPUT_MHZ[board.family]
    out = Path(out)
    steps_taken: list[dict] = []
    best: dict | None = None
    request: float | None = None  # the first build runs at the oscillator
    for _ in range(steps):
        label = "oscillator" if request is None else f"{request:g} MHz"
        shown = None
        if progress is not None:
            shown = lambda stage, label=label: progress(f"clock {label}: {stage}")  # noqa: E731
        where = out / ("clock-oscillator" if request is None else f"clock-{request:g}")
        report = build(board, cfg, where, clock_mhz=request, progress=shown, **options)
        steps_taken.append(
            {
                "requested_mhz": request,
                "clock_mhz": report["clock_mhz"],
                "fmax_mhz": report["fmax_mhz"],
                "timing_met": report["timing_met"],
            }
        )
        if report["timing_met"] and (best is None or report["clock_mhz"] > best["clock_mhz"]):
            best = report
        # The margin guards the first jump (from the oscillator, where nextpnr placed for a
        # slow clock) and a retry after a miss; a met PLL build's Fmax is asked as it is.
        margin = 1.0 if report["timing_met"] and request is not None else CLOCK_MARGIN
        wanted = min(max(report["fmax_mhz"] * margin, low), high)
        if not report["timing_met"] and request is not None:
            wanted = min(wanted, request * CLOCK_MARGIN)  # below what failed
        following = pll_at_most(board.family, oscillator, wanted).output_mhz
        done = [s["clock_mhz"] for s in steps_taken]
        if any(abs(following - c) <= 0.01 * c for c in done) or following < low:
            break
        if best is not None and following <= best["clock_mhz"]:
            break
        request = round(following, 4)  # the PLL makes this one exactly
    if best is None:
        raise BuildError(
            f"no clock met timing on {board.name} in {len(steps_taken)} builds: "
            + "; ".join(
                f"{s['requested_mhz'] or 'oscillator'}: Fmax {s['fmax_mhz']} MHz"
                for s in steps_taken
            )
        )
    best["clock_search"] = steps_taken
    return best
