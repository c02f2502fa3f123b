"""Benchmarks that print tables: every figure is measured in the same run as its baseline."""

from __future__ import annotations

import platform
import time

import numpy as np

from golden_model import backprop
from golden_model.circuit import FIXED, FLOAT, Circuit
from golden_model.config import Config
from golden_model.schedule import compile_backprop

NETWORKS = {
    "xor 2-8-1": Config(layers=(2, 8, 1)),
    "64-32-10": Config(layers=(64, 32, 10), learning_rate_shift=6),
}


def _rate(step, seconds: float) -> float:
    """Samples per second of ``step()``, measured for about ``seconds``."""
    step()  # warm-up
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        step()
        done += 1
    return done / elapsed


def _data(cfg: Config, count: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    xs = rng.uniform(0.0, 1.0, size=(count, cfg.layers[0]))
    ts = np.eye(cfg.layers[-1])[rng.integers(0, cfg.layers[-1], size=count)]
    return xs, ts


def _circuit_step(circuit: Circuit, xs: np.ndarray, ts: np.ndarray):
    samples = iter(range(10**12))

    def step() -> None:
        i = next(samples) % len(xs)
        circuit.load_signed("x", xs[i])
        circuit.load_signed("t", ts[i])
        circuit.run_sample()

    return step


def _numpy_step(weights: list[np.ndarray], xs: np.ndarray, ts: np.ndarray, eta: float):
    samples = iter(range(10**12))
    state = {"w": weights}

    def step() -> None:
        i = next(samples) % len(xs)
        state["w"], _ = backprop.sgd_step(state["w"], xs[i], ts[i], eta)

    return step


def numpy_backprop_rate(cfg: Config, seconds: float) -> float:
    """Training samples per second of plain numpy float backprop of ``cfg``'s network (the
    circuit's initial weights, 64 fixed random samples) on this CPU."""
    xs, ts = _data(cfg)
    initial = Circuit(compile_backprop(cfg), cfg, FLOAT).weights_float()
    weights = [initial[f"W{i}"] for i in range(1, len(cfg.layers))]
    return _rate(_numpy_step(weights, xs, ts, cfg.eta), seconds)


def numpy_minibatch_rate(cfg: Config, batch: int, seconds: float) -> float:
    """Training samples per second of numpy float32 backprop of ``cfg``'s network (relu
    hidden layers, linear output, a bias column a layer) in mini-batches of ``batch``
    samples, one weight update a batch, on this CPU: the reference a CPU gives when it may
    batch, which the circuit (one sample at a time, learning after each) does not."""
    rng = np.random.default_rng(0)
    sizes = cfg.layers
    weights = [
        (rng.standard_normal((n_out, n_in + 1)) / np.sqrt(n_in)).astype(np.float32)
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    xs = rng.uniform(0, 1, (batch, sizes[0])).astype(np.float32)
    ts = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], batch)]
    eta = np.float32(cfg.eta / batch)
    ones = np.ones((batch, 1), np.float32)

    def step() -> None:
        acts, nets = [xs], []
        for k, w in enumerate(weights):
            net = np.hstack([acts[-1], ones]) @ w.T
            nets.append(net)
            acts.append(net if k == len(weights) - 1 else np.maximum(net, 0))
        delta = acts[-1] - ts
        for k in range(len(weights) - 1, -1, -1):
            grad = delta.T @ np.hstack([acts[k], ones])
            if k:
                delta = (delta @ weights[k][:, :-1]) * (nets[k - 1] > 0)
            weights[k] -= eta * grad

    return batch * _rate(step, seconds)


def bench_loihi(seconds: float = 2.0, builds: list[dict] | None = None) -> dict:
    """The 400-400-10 network a training sample at a time: Loihi's published figure beside
    numpy float32 backprop on this CPU at batch 1 and 32, the memory core's clocks a sample
    (exact, from its micro-code) at the lane counts the ECP5-85F could hold, and a row for
    each routed build given (``pulsegate build --json`` reports of the 400-400-10 network:
    its samples/s at the clock its PLL runs, and whether timing met there)."""
    from golden_model.datasets import dataset_config
    from golden_model.schedule import compile_backprop
    from hw.microcode import program_clocks
    from hw.microprogram import compile_program

    from .roofline import LOIHI

    cfg = dataset_config("digits20")
    rows = [{"system": LOIHI["board"], "samples_per_s": 1.0 / LOIHI["seconds"]}]
    for batch in (1, 32):
        rate = numpy_minibatch_rate(cfg, batch, seconds)
        rows.append({"system": f"numpy float32, batch {batch} (this CPU)", "samples_per_s": rate})
    for build in builds or []:
        plan = build.get("lanes")
        if build.get("simd") and build["simd"] != plan:
            plan = f"{plan}x{build['simd']}"
        met = "timing met" if build.get("timing_met") else "timing NOT met"
        rows.append(
            {
                "system": (
                    f"pulsegate on the {build['device']}, memory core {plan}, "
                    f"{build['clock_mhz']:g} MHz ({met})"
                ),
                "samples_per_s": float(build["samples_per_s"]),
                "cycles_per_sample": build["cycles_per_sample"],
                "clock_mhz": build["clock_mhz"],
                "timing_met": bool(build.get("timing_met")),
            }
        )
    schedule = compile_backprop(cfg)
    clocks = {}
    for lanes in (16, 32, 64, 128):
        clocks[lanes] = program_clocks(compile_program(schedule, lanes), cfg, observe_ticks=False)
    print("| system | samples/s | us a sample |")
    print("|---|---:|---:|")
    for r in rows:
        r["us_per_sample"] = 1e6 / r["samples_per_s"]
        print(f"| {r['system']} | {r['samples_per_s']:,.0f} | {r['us_per_sample']:,.1f} |")
    shown = ", ".join(f"{n} lanes {c:,}" for n, c in clocks.items())
    print(f"\nmemory core, 400-400-10, clocks a sample (micro-code, exact): {shown}; at 50 us a")
    print("sample that needs " + ", ".join(f"{c / 50:,.0f} MHz at {n}" for n, c in clocks.items()))
    return {"rows": rows, "memory_core_clocks": clocks}


def bench_golden(seconds: float = 2.0) -> dict:
    """Training samples per second of the circuit model (fixed and float) and of plain numpy
    backprop on the same network and data, measured in one run."""
    rows = []
    for name, cfg in NETWORKS.items():
        xs, ts = _data(cfg)
        schedule = compile_backprop(cfg)
        row = {"network": name, "ticks_per_sample": schedule.ticks_per_sample}
        for mode in (FIXED, FLOAT):
            step = _circuit_step(Circuit(schedule, cfg, mode), xs, ts)
            row[f"circuit_{mode}_samples_per_s"] = _rate(step, seconds)
        row["numpy_backprop_samples_per_s"] = numpy_backprop_rate(cfg, seconds)
        rows.append(row)
    header = (
        "network",
        "ticks/sample",
        "circuit fixed (samples/s)",
        "circuit float (samples/s)",
        "numpy backprop (samples/s)",
        "fixed / numpy",
    )
    print(
        f"golden model throughput on {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        fixed, floating = r["circuit_fixed_samples_per_s"], r["circuit_float_samples_per_s"]
        numpy_rate = r["numpy_backprop_samples_per_s"]
        cells = (
            r["network"],
            str(r["ticks_per_sample"]),
            f"{fixed:,.0f}",
            f"{floating:,.0f}",
            f"{numpy_rate:,.0f}",
            f"{fixed / numpy_rate:.3f}",
        )
        print("| " + " | ".join(cells) + " |")
    return {"rows": rows, "seconds_per_measurement": seconds}


def block_designs() -> list[tuple[str, str, object]]:
    """(block, size label, component factory) for the resource table."""
    from golden_model.schedule import compile_backprop
    from hw.arithmetic import Arithmetic
    from hw.hebbian import HebbianUnit
    from hw.population import PopulationAccumulator
    from hw.sequencer import GatingSequencer
    from hw.synapse import COLUMNS, SynapseUnit

    arith = Arithmetic.of(Config())
    # a gain that is not 1 needs multipliers
    leaky = Arithmetic.of(Config(ticks_per_window=4, leak_shift=2))
    designs = []
    for rows, cols, lanes in ((8, 3, 1), (8, 9, 2), (32, 65, 4)):
        label = f"{rows}x{cols}, {lanes} lane{'s' if lanes > 1 else ''}"
        designs += [
            (
                "SynapseUnit (rows)",
                label,
                lambda r=rows, c=cols, n=lanes: SynapseUnit(arith, r, c, n),
            ),
            (
                "SynapseUnit (columns)",
                label,
                lambda r=rows, c=cols, n=lanes: SynapseUnit(arith, c - 1, r, n, layout=COLUMNS),
            ),
            (
                "HebbianUnit (+copy)",
                label,
                lambda r=rows, c=cols, n=lanes: HebbianUnit(arith, r, c, n, copy_rows=c - 1),
            ),
        ]
    for size, lanes in ((8, 1), (8, 2), (32, 4)):
        designs.append(
            (
                "PopulationAccumulator",
                f"{size} pops, {lanes} lanes, N=4",
                lambda s=size, n=lanes: PopulationAccumulator(leaky, s, n),
            )
        )
    for layers in ((2, 8, 1), (64, 32, 10)):
        c = Config(layers=layers)
        designs.append(
            (
                "GatingSequencer",
                "-".join(map(str, layers)),
                lambda c=c: GatingSequencer(compile_backprop(c), c),
            )
        )
    return designs


def bench_blocks() -> dict:
    """Yosys resources of every block at two or three sizes on iCE40UP5K and ECP5-85F."""
    from boards.synth import synthesize

    rows = []
    for block, label, factory in block_designs():
        row = {"block": block, "size": label}
        for family in ("ice40", "ecp5"):
            top = "".join(ch for ch in block.lower() if ch.isalnum())
            row[family] = synthesize(factory(), top, family).counts
        rows.append(row)
        print(f"synthesized {block} {label}", flush=True)
    print(
        "| block | size | iCE40UP5K LUT | FF | carry | SB_MAC16 | BRAM | ECP5-85F LUT | FF | "
        "carry | MULT18X18D | DP16KD | LUTRAM |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        i, e = r["ice40"], r["ecp5"]
        cells = [
            r["block"],
            r["size"],
            i["LUT"],
            i["FF"],
            i["CARRY"],
            i["DSP"],
            i["BRAM"],
            e["LUT"],
            e["FF"],
            e["CARRY"],
            e["DSP"],
            e["BRAM"],
            e["LUTRAM"],
        ]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    return {"rows": rows}


def macs_per_sample(schedule, cfg: Config) -> int:
    """Multiply-accumulates of one training sample: every matrix transfer on each of its
    phase's N ticks, plus every learning update once."""
    shapes = {m.name: m.rows * m.cols for m in schedule.matrices}
    total = 0
    for phase in schedule.phases:
        for tr in phase.transfers:
            matrices = {t.matrix for t in tr.terms} - {None}
            total += cfg.ticks_per_window * sum(shapes[m] for m in matrices)
        total += sum(shapes[ln.matrix] for ln in phase.learns)
    return total


def bench_rtl(samples: int = 24) -> dict:
    """Cycles per training sample against the MAC minimum; simulated clocks per second under
    cocotb + Verilator and under Amaranth's simulator, on the same samples in one run."""
    import time

    from golden_model.circuit import FIXED
    from golden_model.tasks import train_xor, xor_sample
    from sim.amaranth_run import run_core
    from sim.generate import core_for
    from sim.verilator_run import run_verilator

    setups = [
        ("xor 2-8-1, N=1", Config(), 1),
        ("xor 2-8-1, N=1", Config(), 3),
        ("xor 2-8-1, N=1", Config(), 9),
        ("xor 2-8-1, N=4, leak 2", Config(ticks_per_window=4, leak_shift=2), 1),
    ]
    order = np.random.default_rng(0).integers(0, 4, size=samples)
    inputs = [xor_sample(int(k)) for k in order]
    rows = []
    for label, cfg, lanes in setups:
        schedule = compile_backprop(cfg)
        macs = macs_per_sample(schedule, cfg)
        t0 = time.perf_counter()
        verdict = run_verilator(cfg, inputs, lanes=lanes)
        verilator_wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, amaranth_clocks = run_core(core_for(cfg, lanes=lanes), inputs[:4])
        amaranth_seconds = time.perf_counter() - t0
        per_sample = verdict["cycles"] / samples
        converged = [train_xor(cfg.replace(seed=s), FIXED, 4000) for s in range(20)]
        median_samples = float(np.median([r.samples for r in converged if r.converged]))
        rows.append(
            {
                "setup": label,
                "lanes": lanes,
                "bit_exact": verdict["bit_exact"],
                "cycles_per_sample": per_sample,
                "macs_per_sample": macs,
                "minimum_cycles": macs / lanes,
                "overhead": per_sample / (macs / lanes),
                "verilator_clocks_per_s": verdict["simulated_clocks"] / verdict["seconds"],
                "verilator_wall_s_with_build": verilator_wall,
                "amaranth_clocks_per_s": amaranth_clocks / amaranth_seconds,
                "xor_median_samples": median_samples,
                "xor_median_cycles": median_samples * per_sample,
            }
        )
        print(f"measured {label}, lanes {lanes}", flush=True)
    print(
        "| setup | lanes | bit-exact | cycles/sample | MACs/sample | MACs/lanes | ratio | "
        "cocotb+Verilator clocks/s | Amaranth sim clocks/s | XOR median samples | "
        "XOR median cycles |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['setup']} | {r['lanes']} | {r['bit_exact']} | {r['cycles_per_sample']:.0f} | "
            f"{r['macs_per_sample']} | {r['minimum_cycles']:.0f} | {r['overhead']:.1f} | "
            f"{r['verilator_clocks_per_s']:,.0f} | {r['amaranth_clocks_per_s']:,.0f} | "
            f"{r['xor_median_samples']:.0f} | {r['xor_median_cycles']:,.0f} |"
        )
    return {"rows": rows, "samples": samples}


#: The cell types that say how full a device is, per family (LUT or logic cell, FF, DSP, RAM).
_BOARD_CELLS = {
    "ice40": ("ICESTORM_LC", None, "ICESTORM_DSP", "ICESTORM_RAM", "ICESTORM_SPRAM"),
    "ecp5": ("TRELLIS_COMB", "TRELLIS_FF", "MULT18X18D", "DP16KD", None),
}


def bench_boards(boards: list[str] | None = None, out: str = "build/bench-boards") -> dict:
    """For every board: place and route the XOR system (resources, Fmax), and the cycles one
    training sample takes through the host link, measured in the RTL under Verilator; samples
    per second follow as Fmax (and board clock) over cycles per sample."""
    from pathlib import Path

    from boards.board_sim import run_link_bench
    from boards.catalogue import BOARDS, board_config
    from boards.pnr import BuildError, build
    from golden_model.tasks import train_xor

    cfg = board_config()
    names = list(BOARDS) if not boards else boards
    order = train_xor(cfg).order
    started = time.perf_counter()
    verdict = run_link_bench(cfg, "train", order=order, work=Path(out) / "verilator")
    if not verdict["bit_exact"]:
        raise RuntimeError(f"the link run is not bit-exact: {verdict['problems']}")
    cycles = verdict["cycles_per_sample"]
    print(
        f"measured {cycles:.1f} cycles per training sample over the link "
        f"({verdict['samples']} samples, {verdict['runs']} runs, "
        f"{time.perf_counter() - started:.0f} s)",
        flush=True,
    )
    rows = []
    for name in names:
        board = BOARDS[name]
        try:
            report = build(name, cfg, Path(out) / name)
        except BuildError as exc:
            rows.append({"board": name, "device": board.device, "error": str(exc)})
            print(f"{name}: {exc}", flush=True)
            continue
        used = report["utilization"]
        logic, ff, dsp, ram, spram = _BOARD_CELLS[board.family]

        def cell(kind, used=used):
            return used.get(kind, {"used": 0, "available": 0}) if kind else None

        rows.append(
            {
                "board": name,
                "device": board.device,
                "network": report["network"],
                "logic": {"cell": logic, **cell(logic)},
                "ff": {"cell": ff, **cell(ff)} if ff else None,
                "dsp": {"cell": dsp, **cell(dsp)},
                "ram": {"cell": ram, **cell(ram)},
                "spram": {"cell": spram, **cell(spram)} if spram else None,
                "fmax_mhz": report["fmax_mhz"],
                "clock_mhz": report["clock_mhz"],
                "timing_met": report["timing_met"],
                "cycles_per_sample": cycles,
                "samples_per_s_fmax": report["fmax_mhz"] * 1e6 / cycles,
                "samples_per_s_clock": min(report["fmax_mhz"], report["clock_mhz"]) * 1e6 / cycles,
                "build_seconds": report["build_seconds"],
            }
        )
        print(f"built {name} ({report['build_seconds']} s)", flush=True)
    print()
    print(boards_table(rows))
    return {
        "config": cfg.to_dict(),
        "cycles_per_sample": cycles,
        "link_samples": verdict["samples"],
        "rows": rows,
    }


def boards_table(rows: list[dict]) -> str:
    """The markdown table of :func:`bench_boards`' rows."""

    def frac(entry) -> str:
        if not entry:
            return "-"
        return f"{entry['used']:,}/{entry['available']:,} {entry['cell']}"

    lines = [
        "| board | device | logic | FF | DSP | block RAM | SPRAM | Fmax / clock MHz | "
        "timing | cycles/sample | samples/s at Fmax | samples/s at board clock |",
        "|---|---|---|---|---|---|---|---|---|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['board']} | {r['device']} | {r['error']} |||||||||| ")
            continue
        lines.append(
            f"| {r['board']} | {r['device']} | {frac(r['logic'])} | {frac(r['ff'])} | "
            f"{frac(r['dsp'])} | {frac(r['ram'])} | {frac(r['spram'])} | "
            f"{r['fmax_mhz']:.2f} / {r['clock_mhz']:g} | "
            f"{'met' if r['timing_met'] else 'NOT met'} | {r['cycles_per_sample']:.1f} | "
            f"{r['samples_per_s_fmax']:,.0f} | {r['samples_per_s_clock']:,.0f} |"
        )
    return "\n".join(lines)


def bench_cores(
    lanes: tuple[int | tuple[int, int], ...] = (1, 8),
    synth: bool = True,
    networks: tuple[str, ...] = ("xor", "iris", "digits"),
) -> dict:
    """The memory-centric core beside the spatial core for XOR (the board's 12-bit one), iris and
    digits (and ``digits20``, 400-400-10, if named in ``networks``) at each plan of ``lanes``:
    a lane count, or ``(lanes, simd)`` for the memory core folded wider (the spatial core's
    figures are then at ``simd`` lanes): clocks per training sample (the memory core's are
    exactly its micro-code's, :func:`hw.microcode.sample_clocks`, which the tests hold the
    gateware to; the spatial core's are its sweeps plus 4 control clocks a tick), multiplier
    use, and with ``synth`` the memory core's Yosys counts on the iCE40 and the ECP5 (the core
    alone, no host link) with each network's logic cells over XOR's."""
    from boards.catalogue import board_config
    from boards.plans import logic_cells
    from boards.synth import synthesize
    from boards.system import board_cycles_per_sample
    from golden_model.datasets import dataset_config
    from hw.mcore import MemoryCore
    from hw.microcode import clock_breakdown, encode, modelled_clocks, program_clocks
    from hw.microprogram import compile_program
    from hw.network import sweep_depths

    from .progress import Progress

    known = {
        "xor": board_config,
        "iris": lambda: dataset_config("iris"),
        "digits": lambda: dataset_config("digits"),
        "digits20": lambda: dataset_config("digits20"),
    }
    configs = {name: known[name]() for name in networks}
    families = ("ice40", "ecp5") if synth else ()
    plans = [(p, p) if isinstance(p, int) else tuple(p) for p in lanes]
    rows = []
    progress, total = Progress("cores", unit="cores"), len(configs) * len(plans)
    try:
        for name, cfg in configs.items():
            schedule = compile_backprop(cfg)
            macs = macs_per_sample(schedule, cfg)
            for n, simd in plans:
                program = compile_program(schedule, n, simd)
                # a board's micro-code drains only at a sample's end; the per-tick checks'
                # drains at every tick
                words, where = encode(program, cfg, observe_ticks=False)
                breakdown = clock_breakdown(words, n, simd, where.banked)
                clocks = sum(breakdown.values())
                observed = program_clocks(program, cfg)
                spatial = sum(sweep_depths(schedule, cfg, simd)) + 4 * schedule.ticks_per_sample
                # on a board: the spatial core loads while idle, the memory core during a run
                core = MemoryCore(schedule, cfg, n, debug=False, simd=simd)
                core._MustUse__silence = True  # built for its clocks only
                inputs = sum(schedule.group(g).size for g in schedule.inputs)
                board = {
                    "memory": board_cycles_per_sample(core, cfg, n)[0],
                    "spatial": inputs + spatial,  # as board_cycles_per_sample counts it
                }
                row = {
                    "network": f"{name} {'-'.join(map(str, cfg.layers))}",
                    "lanes": n,
                    "simd": simd,
                    "macs": macs,
                    "memory_clocks": clocks,
                    "memory_clocks_observed": observed,
                    "spatial_clocks": spatial,
                    "board_clocks": board,
                    "multiplier_use": macs / (simd * clocks),
                    "clock_breakdown": breakdown,
                    "modelled": {
                        name: modelled_clocks(words, n, simd, where.banked, **kw)
                        for name, kw in WHAT_IF.items()
                    },
                }
                for family in families:
                    fresh = MemoryCore(schedule, cfg, n, debug=False, simd=simd)  # one each
                    res = synthesize(fresh, "core", family)
                    row[family] = dict(res.counts, cells=logic_cells(family, res.counts))
                rows.append(row)
                progress(len(rows), total)
    finally:
        progress.close()
    for row in rows:
        plan = (row["lanes"], row["simd"])
        xor = [
            r for r in rows if r["network"].startswith("xor") and (r["lanes"], r["simd"]) == plan
        ]
        for family in families:
            row[family]["over_xor"] = (
                row[family]["cells"] / xor[0][family]["cells"] if xor else float("nan")
            )
    print(
        "| network | lanes x simd | MACs | memory core clocks (drained every tick) "
        "| spatial core clocks | on a board: memory / spatial | multiplier use |"
        + "".join(f" {f} LUT / FF / BRAM | {f} cells (/ XOR) |" for f in families)
    )
    print("|---|---:|---:|---:|---:|---:|---:|" + "---:|---:|" * len(families))
    for r in rows:
        cells = [
            r["network"], f"{r['lanes']} x {r['simd']}", f"{r['macs']:,}",
            f"{r['memory_clocks']:,} ({r['memory_clocks_observed']:,})",
            f"{r['spatial_clocks']:,}",
            f"{r['board_clocks']['memory']:,} / {r['board_clocks']['spatial']:,}",
            f"{r['multiplier_use']:.0%}",
        ]  # fmt: skip
        for f in families:
            c = r[f]
            cells += [
                f"{c['LUT']:,} / {c['FF']:,} / {c['BRAM']}",
                f"{c['cells']:,} ({c['over_xor']:.2f})",
            ]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    print("\nWhere the memory core's clocks of a sample go (a board's micro-code):\n")
    print(breakdown_table(rows))
    print(
        "\nWhat other sequencers would take (hw.microcode.modelled_clocks: modelled, not "
        "built; the same slots, reads and writes):\n"
    )
    print(what_if_table(rows))
    return {"rows": rows}


#: The sequencers :func:`what_if_table` models (:func:`hw.microcode.modelled_clocks`), by name.
WHAT_IF = {
    "two streams": {"streams": 2},
    "two streams, folded gathers": {"streams": 2, "folded": True},
    "two streams, folded, 4 stages fewer": {"streams": 2, "folded": True, "shorter": 4},
}


def what_if_table(rows: list[dict]) -> str:
    """Clocks of a sample (a board's micro-code) as built and under the sequencers of
    :data:`WHAT_IF`, each with its change against the built one."""
    lines = [
        "| network | lanes x simd | built | " + " | ".join(WHAT_IF) + " |",
        "|---|---:|---:|" + "---:|" * len(WHAT_IF),
    ]
    for r in rows:
        built = sum(r["clock_breakdown"].values())
        cells = [f"{r['modelled'][k]:,} ({r['modelled'][k] / built - 1:+.0%})" for k in WHAT_IF]
        lines.append(
            f"| {r['network']} | {r['lanes']} x {r['simd']} | {built:,} | " + " | ".join(cells)
            + " |"
        )  # fmt: skip
    return "\n".join(lines)


def breakdown_table(rows: list[dict]) -> str:
    """The memory core's clocks of a sample by what fills them
    (:func:`hw.microcode.clock_breakdown`), a row a network and plan: the multiply slots
    (sweeps and rules), the step slots, the gathers, the waits for what a word reads, the
    control clocks."""
    kinds = ("multiply", "step", "gather", "wait", "control")
    lines = [
        "| network | lanes x simd | " + " | ".join(kinds) + " | clocks |",
        "|---|---:|" + "---:|" * (len(kinds) + 1),
    ]
    for r in rows:
        parts = r["clock_breakdown"]
        total = sum(parts.values())
        shares = [f"{parts[k]:,} ({parts[k] / total:.0%})" for k in kinds]
        lines.append(
            f"| {r['network']} | {r['lanes']} x {r['simd']} | " + " | ".join(shares)
            + f" | {total:,} |"
        )  # fmt: skip
    return "\n".join(lines)


#: The clocking benchmark's default points: (board, network, core, lanes), the memory core at
#: the lanes each board holds for each network.
CLOCK_POINTS = (
    ("icebreaker", "xor", "memory", 1),
    ("icebreaker", "iris", "memory", 1),
    ("icebreaker", "digits", "memory", 2),
    ("ice40-hx8k", "xor", "memory", 1),
    ("ice40-hx8k", "iris", "memory", 1),
    ("ulx3s-85f", "xor", "memory", 8),
    ("ulx3s-85f", "iris", "memory", 8),
    ("ulx3s-85f", "digits", "memory", 8),
    ("orangecrab", "xor", "memory", 8),
    ("orangecrab", "iris", "memory", 8),
)


def bench_clocks(
    points: tuple[tuple[str, str, str, int], ...] = CLOCK_POINTS,
    out: str = "build/bench-clocks",
    time_limit: float | None = 3600.0,
) -> dict:
    """Each point placed and routed at the highest PLL clock that meets timing
    (:func:`boards.pnr.build_at_best_clock`: first at the oscillator, then searched): clocks
    a training sample (the link's load and the core's run), samples/s at the oscillator (the
    baseline) and at the PLL clock, beside the device's multiplier roofline at that clock
    (every multiplier busy every clock). A point that fails is a row with its error."""
    from pathlib import Path

    from boards.catalogue import BOARDS, MULTIPLIERS, board_config
    from boards.pnr import BuildError, build_at_best_clock
    from golden_model.datasets import dataset_config

    from .progress import Progress

    configs = {"xor": board_config(), "iris": dataset_config("iris")}
    configs["digits"] = dataset_config("digits")
    rows = []
    progress = Progress("clocks", unit="points")
    try:
        for index, (board, network, core, lanes) in enumerate(points):
            cfg = configs[network]
            row = {"board": board, "device": BOARDS[board].device, "network": network}
            row |= {"core": core, "lanes": lanes}
            where = Path(out) / f"{board}-{network}-{core}-{lanes}"
            try:
                report = build_at_best_clock(
                    board, cfg, where, lanes=lanes, core=core, time_limit=time_limit
                )
            except BuildError as exc:
                rows.append(row | {"error": str(exc).splitlines()[0]})
                progress(index + 1, len(points))
                continue
            first = report["clock_search"][0]  # the oscillator's build
            cycles = report["cycles_per_sample"]
            macs = macs_per_sample(compile_backprop(cfg), cfg)
            multipliers = MULTIPLIERS[BOARDS[board].device]
            row |= {
                "oscillator_mhz": report["oscillator_mhz"],
                "oscillator_timing_met": first["timing_met"],
                "clock_mhz": report["clock_mhz"],
                "pll_requested_mhz": report["pll_requested_mhz"],
                "fmax_mhz": report["fmax_mhz"],
                "timing_met": report["timing_met"],
                "cycles_per_sample": cycles,
                "cycles_basis": report["cycles_basis"],
                "samples_per_s_oscillator": round(report["oscillator_mhz"] * 1e6 / cycles),
                "samples_per_s": report["samples_per_s"],
                "roofline_samples_per_s": (
                    round(multipliers * report["clock_mhz"] * 1e6 / macs) if multipliers else None
                ),
                "logic": _logic_used(report["utilization"]),
                "clock_search": report["clock_search"],
            }
            rows.append(row)
            progress(index + 1, len(points))
    finally:
        progress.close()
    print(clocks_table(rows))
    return {"rows": rows}


def _logic_used(utilization: dict) -> str:
    for cell in ("ICESTORM_LC", "TRELLIS_COMB"):
        if cell in utilization:
            used, available = utilization[cell]["used"], utilization[cell]["available"]
            return f"{used:,} {cell} ({100 * used / available:.1f} %)"
    return "-"


def clocks_table(rows: list[dict]) -> str:
    """The markdown table of :func:`bench_clocks`' rows."""
    lines = [
        "| board | network | core, lanes | logic | oscillator MHz | samples/s at the oscillator "
        "| PLL clock MHz (asked) | Fmax MHz | timing | clocks a sample | samples/s at the PLL "
        "clock | multiplier roofline samples/s |",
        "|---|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        head = f"| {r['board']} | {r['network']} | {r['core']}, {r['lanes']} |"
        if "error" in r:
            lines.append(f"{head} {r['error']} ||||||||| ")
            continue
        asked = r["pll_requested_mhz"]
        roof = r["roofline_samples_per_s"]
        lines.append(
            f"{head} {r['logic']} | {r['oscillator_mhz']:g} | "
            f"{r['samples_per_s_oscillator']:,}"
            f"{'' if r['oscillator_timing_met'] else ' (timing not met)'} | "
            f"{r['clock_mhz']:g} ({'-' if asked is None else f'{asked:g}'}) | "
            f"{r['fmax_mhz']:.2f} | {'met' if r['timing_met'] else 'NOT met'} | "
            f"{r['cycles_per_sample']:,} | {r['samples_per_s']:,} | "
            f"{'-' if roof is None else f'{roof:,}'} |"
        )
    return "\n".join(lines)
