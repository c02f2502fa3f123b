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


def bench_golden(seconds: float = 2.0) -> dict:
    rows = []
    for name, cfg in NETWORKS.items():
        xs, ts = _data(cfg)
        row = {"network": name, "ticks_per_sample": compile_backprop(cfg).ticks_per_sample}
        for mode in (FIXED, FLOAT):
            circuit = Circuit(compile_backprop(cfg), cfg, mode)
            k = [0]

            def circuit_step(circuit=circuit, k=k) -> None:
                i = k[0] = (k[0] + 1) % len(xs)
                circuit.load_signed("x", xs[i])
                circuit.load_signed("t", ts[i])
                circuit.run_sample()

            row[f"circuit_{mode}_samples_per_s"] = _rate(circuit_step, seconds)
        initial = Circuit(compile_backprop(cfg), cfg, FLOAT).weights_float()
        state = {"w": [initial[f"W{i}"] for i in range(1, len(cfg.layers))]}
        k2 = [0]

        def numpy_step(state=state, k=k2, cfg=cfg) -> None:
            i = k[0] = (k[0] + 1) % len(xs)
            state["w"], _ = backprop.sgd_step(state["w"], xs[i], ts[i], cfg.eta)

        row["numpy_backprop_samples_per_s"] = _rate(numpy_step, seconds)
        rows.append(row)
    header = ("network", "ticks/sample", "circuit fixed (samples/s)", "circuit float (samples/s)",
              "numpy backprop (samples/s)", "fixed / numpy")
    print(f"golden model throughput on {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, numpy {np.__version__}")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        print(
            f"| {r['network']} | {r['ticks_per_sample']} | {r['circuit_fixed_samples_per_s']:,.0f} | "
            f"{r['circuit_float_samples_per_s']:,.0f} | {r['numpy_backprop_samples_per_s']:,.0f} | "
            f"{r['circuit_fixed_samples_per_s'] / r['numpy_backprop_samples_per_s']:.3f} |"
        )
    return {"rows": rows, "seconds_per_measurement": seconds}
