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
        initial = Circuit(schedule, cfg, FLOAT).weights_float()
        weights = [initial[f"W{i}"] for i in range(1, len(cfg.layers))]
        row["numpy_backprop_samples_per_s"] = _rate(_numpy_step(weights, xs, ts, cfg.eta), seconds)
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
    from hw.hebbian import HebbianUnit
    from hw.population import PopulationAccumulator
    from hw.sequencer import GatingSequencer
    from hw.synapse import COLUMNS, SynapseUnit

    cfg = Config()
    leaky = Config(ticks_per_window=4, leak_shift=2)  # a gain that is not 1 needs multipliers
    designs = []
    for rows, cols, lanes in ((8, 3, 1), (8, 9, 2), (32, 65, 4)):
        label = f"{rows}x{cols}, {lanes} lane{'s' if lanes > 1 else ''}"
        designs += [
            (
                "SynapseUnit (rows)",
                label,
                lambda r=rows, c=cols, n=lanes: SynapseUnit(cfg, r, c, n),
            ),
            (
                "SynapseUnit (columns)",
                label,
                lambda r=rows, c=cols, n=lanes: SynapseUnit(cfg, c - 1, r, n, layout=COLUMNS),
            ),
            (
                "HebbianUnit (+copy)",
                label,
                lambda r=rows, c=cols, n=lanes: HebbianUnit(cfg, r, c, n, copy_rows=c - 1),
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
