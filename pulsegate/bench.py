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
