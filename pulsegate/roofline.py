"""``pulsegate bench``: each board and network against the device's multiplier roofline.

Everything in the table is measured in the run that prints it: each network's own board system
placed and routed at the highest PLL clock that meets timing, its exact clocks a sample, numpy
float backprop of the same network on this CPU, and the fixed-point test accuracies. The
400-400-10 row is a projection and says how it was made.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from golden_model.config import Config
from golden_model.schedule import compile_backprop

from .bench import macs_per_sample, numpy_backprop_rate

__all__ = ["bench_roofline", "unit_depths", "projected_cycles", "LOIHI"]

#: Renner et al. 2024, on-chip backprop on Loihi: 1.5 ms per training sample, 400-400-10.
LOIHI = {"board": "Loihi (Renner et al. 2024)", "network": "400-400-10", "seconds": 1.5e-3}
#: ECP5 DP16KD as 1,024 x 18: one 16-bit weight word per address; the ECP5-85F has 208.
DP16KD_WORDS = 1024
DP16KD_BLOCKS = 208
DEFAULT_BOARDS = ("icebreaker", "ulx3s-85f")


def networks() -> dict[str, Config]:
    from boards.catalogue import board_config
    from golden_model.datasets import dataset_config

    return {
        "xor 2-4-1 (12-bit)": board_config(),
        "iris 4-8-3": dataset_config("iris"),
        "digits 64-32-10": dataset_config("digits"),
    }


def unit_depths(cfg: Config, lanes: int | dict[str, int]) -> list[int]:
    """Clocks of every weight sweep in one training sample at ``lanes`` multiply-accumulates
    per clock (:func:`hw.network.sweep_depths` of the backprop schedule)."""
    from hw.network import sweep_depths

    return sweep_depths(compile_backprop(cfg), cfg, lanes)


def projected_cycles(cfg: Config, lanes: int | dict[str, int], overhead: float) -> float:
    """Cycles per sample if every sweep runs at ``lanes`` MACs per clock, one after another,
    plus a fixed ``overhead`` per sample (control, pipeline latencies, population steps;
    the same whether rules learn at once or in turns)."""
    return sum(unit_depths(cfg, lanes)) + overhead


def measure_cycles(cfg: Config, lanes: int | dict[str, int] = 1) -> int:
    from golden_model.tasks import xor_sample
    from sim.amaranth_run import run_core
    from sim.generate import core_for

    x = np.linspace(0.0, 1.0, cfg.layers[0]) if cfg.layers[0] != 2 else xor_sample(1)["x"]
    t = np.eye(cfg.layers[-1])[0]
    _, clocks = run_core(core_for(cfg, lanes=lanes, debug=False), [{"x": x, "t": t}], 10**7)
    return clocks


def bench_roofline(
    boards: tuple[str, ...] = DEFAULT_BOARDS,
    out: str | Path = "build/bench-roofline",
    seconds: float = 1.0,
    epochs: int | None = None,
    time_limit: float | None = 3600.0,
) -> dict:
    """Every network on every board as a system placed and routed for it, at the highest
    PLL clock that meets timing (:func:`pulsegate.bench.bench_clocks`'s points for these
    boards): samples/s at that clock beside the device's multiplier roofline there and numpy
    float backprop on this CPU; a network with no point on a board, or whose build failed or
    ran out of ``time_limit`` seconds, is a row that says so. Then the fixed-point test
    accuracies and the 400-400-10 projection."""
    from boards.catalogue import BOARDS, MULTIPLIERS
    from golden_model.classify import train_classifier
    from golden_model.datasets import dataset_config, default_epochs, load_dataset

    from .bench import CLOCK_POINTS, bench_clocks

    started = time.perf_counter()
    nets = networks()
    labels = {label.split()[0]: label for label in nets}
    numpy_rate = {label: numpy_backprop_rate(cfg, seconds) for label, cfg in nets.items()}
    points = tuple(p for p in CLOCK_POINTS if p[0] in boards)
    routed = {(r["board"], r["network"]): r for r in bench_clocks(points, out, time_limit)["rows"]}
    rows = []
    for board in boards:
        multipliers = MULTIPLIERS[BOARDS[board].device]
        for short, label in labels.items():
            cfg = nets[label]
            macs = macs_per_sample(compile_backprop(cfg), cfg)
            row = {"board": board, "network": label, "macs_per_sample": macs}
            row |= {"multipliers": multipliers, "numpy_samples_per_s": numpy_rate[label]}
            r = routed.get((board, short))
            if r is None:
                rows.append(row | {"error": "not built: no plan of this network fits the board"})
                continue
            if "error" in r:
                rows.append(row | {"lanes": r["lanes"], "error": r["error"]})
                continue
            roof = r["roofline_samples_per_s"]
            rows.append(
                row
                | {
                    "core": r["core"],
                    "lanes": r["lanes"],
                    "cycles_per_sample": r["cycles_per_sample"],
                    "clock_mhz": r["clock_mhz"],
                    "fmax_mhz": r["fmax_mhz"],
                    "timing_met": r["timing_met"],
                    "samples_per_s": r["samples_per_s"],
                    "roofline_samples_per_s": roof,
                    "roofline_fraction": r["samples_per_s"] / roof if roof else None,
                    "logic": r["logic"],
                }
            )
    loihi = {
        "board": LOIHI["board"],
        "network": LOIHI["network"],
        "samples_per_s": 1.0 / LOIHI["seconds"],
        "us_per_sample": LOIHI["seconds"] * 1e6,
    }
    # Accuracy of the fixed-point model, seed 1, default epochs.
    accuracy = {}
    for name in ("digits", "iris"):
        n = epochs or default_epochs(name)
        result = train_classifier(dataset_config(name), load_dataset(name), n)
        accuracy[f"{name}_test"] = result.test_accuracy
        accuracy[f"{name}_epochs"] = n
        print(f"trained {name}: {result.test_accuracy:.4f} after {n} epochs", flush=True)
    digits = nets["digits 64-32-10"]
    digits_cycles = measure_cycles(digits, 1)
    ulx3s = routed.get(("ulx3s-85f", "digits"), {})
    clock = {"fmax_mhz": ulx3s["clock_mhz"]} if "clock_mhz" in ulx3s else None
    projection = project_mnist({"cycles": digits_cycles}, clock)
    # The projection's cycle model, checked against a measurement it was not fitted to.
    iris = nets["iris 4-8-3"]
    overhead = digits_cycles - sum(unit_depths(digits, 1))
    projection["model_check"] = {
        "network": "iris 4-8-3",
        "lanes": 4,
        "measured_cycles": measure_cycles(iris, lanes=4),
        "projected_cycles": projected_cycles(iris, 4, overhead),
    }
    data = {
        "rows": rows,
        "loihi": loihi,
        "accuracy": accuracy,
        "projection_400_400_10": projection,
        "seconds": time.perf_counter() - started,
    }
    print()
    print(roofline_table(data))
    return data


def project_mnist(digits: dict, ecp5_report: dict | None) -> dict:
    """400-400-10 on the ECP5-85F: do its weights fit the block RAM, and how many samples per
    second with the fastest lane plan its multipliers allow (the digits run's per-sample
    control clocks added)."""
    from boards.plans import lane_plans, weight_blocks
    from hw.network import lanes_label, multiplier_count

    cfg = Config(layers=(400, 400, 10))
    schedule = compile_backprop(cfg)
    words = sum(m.rows * m.cols for m in schedule.matrices)
    capacity = DP16KD_BLOCKS * DP16KD_WORDS
    overhead = digits["cycles"] - sum(unit_depths(Config(layers=(64, 32, 10)), 1))
    # The fastest plan whose memories fit beside the sample store (wide words on short
    # matrices waste block RAM, so the plans count it).
    plan = lane_plans("ulx3s-85f", cfg)[0]
    cycles = projected_cycles(cfg, plan, overhead)
    blocks = weight_blocks(schedule, cfg, plan, "ecp5")
    fmax = ecp5_report["fmax_mhz"] if ecp5_report else None
    out = {
        "weight_words": words,
        "block_ram_words": capacity,
        "block_ram_blocks": blocks,
        "fits_block_ram": blocks <= DP16KD_BLOCKS,
        "block_ram_fraction": blocks / DP16KD_BLOCKS,
        "lanes": lanes_label(plan),
        "multipliers_used": multiplier_count(schedule, plan),
        "overhead_cycles": overhead,
        "projected_cycles_per_sample": cycles,
        "macs_per_sample": macs_per_sample(schedule, cfg),
    }
    for label, mhz in (("measured_fmax", fmax), ("goal_100mhz", 100.0)):
        if mhz:
            out[f"samples_per_s_{label}"] = mhz * 1e6 / cycles
            out[f"us_per_sample_{label}"] = cycles / mhz
            out[f"fmax_mhz_{label}"] = mhz
    return out


def roofline_table(data: dict) -> str:
    lines = [
        "| board | network | core, lanes | clocks/sample | MACs/sample | multipliers | "
        "clock MHz (Fmax; timing) | samples/s | roofline samples/s | of roofline | logic | "
        "numpy samples/s (this CPU) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in data["rows"]:
        head = f"| {r['board']} | {r['network']} |"
        if "error" in r:
            lanes = f" lanes {r['lanes']}:" if "lanes" in r else ""
            lines.append(f"{head}{lanes} {r['error']} |||||||||")
            continue
        roof = r["roofline_samples_per_s"]
        timing = "met" if r["timing_met"] else "NOT met"
        lines.append(
            f"{head} {r['core']}, {r['lanes']} | {r['cycles_per_sample']:,} | "
            f"{r['macs_per_sample']:,} | {r['multipliers']} | "
            f"{r['clock_mhz']:g} ({r['fmax_mhz']:.2f}; {timing}) | {r['samples_per_s']:,.0f} | "
            + (f"{roof:,.0f} | {r['roofline_fraction'] * 100:.2f} % | " if roof else "- | - | ")
            + f"{r['logic']} | {r['numpy_samples_per_s']:,.0f} |"
        )
    loihi = data["loihi"]
    lines.append(
        f"| {loihi['board']} | {loihi['network']} | - | - | - | - | - | "
        f"{loihi['samples_per_s']:,.0f} | - | - | - | - |"
    )
    p = data["projection_400_400_10"]
    text = [
        "\n".join(lines),
        "",
        "Every row is its own system (core, host link, sample store) placed and routed for "
        "that board at the highest PLL clock that met timing (`pulsegate bench clocks`), its "
        "samples/s at that clock; the roofline is every multiplier of the device busy every "
        "clock at the same clock.",
        "",
        f"accuracy (fixed point, seed 1): digits {data['accuracy']['digits_test'] * 100:.2f} % "
        f"after {data['accuracy']['digits_epochs']} epochs, iris "
        f"{data['accuracy']['iris_test'] * 100:.2f} % after {data['accuracy']['iris_epochs']}",
        "",
        f"400-400-10 on ECP5-85F (projection): {p['weight_words']:,} weight words in "
        f"{p['block_ram_blocks']} of 208 DP16KD at its lane plan's word widths "
        f"({p['block_ram_fraction'] * 100:.0f} %, "
        f"{'fits' if p['fits_block_ram'] else 'does NOT fit'}); {p['multipliers_used']} of 156 "
        f"multipliers at lanes {p['lanes']}: {p['projected_cycles_per_sample']:,.0f} cycles/sample "
        f"({p['overhead_cycles']:.0f} of them control, from the digits run)",
    ]
    check = p["model_check"]
    text.append(
        f"  cycle model check: {check['network']} at {check['lanes']} lanes, projected "
        f"{check['projected_cycles']:,.0f}, measured {check['measured_cycles']:,}"
    )
    for label in ("measured_fmax", "goal_100mhz"):
        if f"us_per_sample_{label}" in p:
            text.append(
                f"  at {p[f'fmax_mhz_{label}']:.2f} MHz: {p[f'samples_per_s_{label}']:,.0f} "
                f"samples/s, {p[f'us_per_sample_{label}']:.1f} us per sample "
                f"(Loihi: {LOIHI['seconds'] * 1e6:,.0f} us)"
            )
    return "\n".join(text)
