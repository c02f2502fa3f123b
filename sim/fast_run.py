"""The fast simulation path: the core under a native Verilator harness (``sim/harness.cpp``).

No Python runs while the design does: the harness streams every sample in, waits for
``sample_done`` and dumps the complete state through the debug port at sample boundaries;
Python then runs the golden model over the same samples and compares every dump, word by word.
Per-tick comparisons stay with the cocotb testbench (``sim/cocotb_bench.py``); this path is for
runs of thousands of samples (an epoch of digits).
"""

from __future__ import annotations

import hashlib
import struct
import subprocess
import time
from pathlib import Path

import numpy as np

from golden_model.circuit import FIXED, Circuit
from golden_model.config import Config
from golden_model.trace import COUNTERS

from .generate import TOP, generate, schedule_for
from .toolchain import tool_env

__all__ = ["build_harness", "run_fast", "state_names"]

HARNESS = Path(__file__).with_name("harness.cpp")
DEFAULT_WORK = Path("build") / "verilator-fast"


def build_harness(
    cfg: Config, work: str | Path, lanes: int = 1, circuit: str = "xor", *, _fault=None
) -> Path:
    """Generate the core's Verilog and build the harness around it (cached by the Verilog's
    and the harness's digest); returns the executable. ``_fault`` (tests only) breaks a
    synapse unit on purpose."""
    work = Path(work).resolve()
    paths = generate(cfg, work / "src", circuit=circuit, lanes=lanes, _fault=_fault)
    flags = [
        "verilator",
        "--cc",
        "--exe",
        "--build",
        "-j",
        "0",  # compile the model's C++ files on every core
        "-O3",
        "--x-assign",
        "fast",
        "--x-initial",
        "fast",
        "--threads",
        "2",
        "-Wno-fatal",
        "-Wno-lint",
        "--top-module",
        TOP,
        "-CFLAGS",
        "-O3",
    ]
    # The executable is cached by everything that makes it: Verilog, harness and flags.
    digest = hashlib.sha256(
        paths["verilog"].read_bytes() + HARNESS.read_bytes() + " ".join(flags).encode()
    ).hexdigest()
    build = work / f"harness-{digest[:16]}"
    exe = build / "Vpulsegate_core"
    if exe.exists():
        return exe
    build.mkdir(parents=True, exist_ok=True)
    command = [*flags, "-Mdir", str(build), str(paths["verilog"]), str(HARNESS)]
    proc = subprocess.run(command, capture_output=True, text=True, env=tool_env(), cwd=build)
    (build / "build.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0 or not exe.exists():
        raise RuntimeError(f"the harness did not build; see {build / 'build.log'}")
    return exe


def state_names(circuit: Circuit) -> list[str]:
    """A name for every word of the debug port's state, in its order."""
    layout = circuit.layout
    names = [layout.name_of("currents", k) for k in range(layout.n_currents)]
    names += [layout.name_of("masks", k) for k in range(layout.n_masks)]
    names += [layout.name_of("weights", k) for k in range(layout.n_weights)]
    return names + list(COUNTERS) + ["lfsr"]


def run_fast(
    cfg: Config,
    samples: list[dict[str, np.ndarray]],
    *,
    lanes: int = 1,
    work: str | Path = DEFAULT_WORK,
    read_every: int = 1,
    _fault: dict[str, str] | None = None,
) -> dict:
    """Train the RTL on ``samples`` under the native harness and compare its complete state
    with the golden model after every ``read_every``-th sample (and the last).

    Returns ``bit_exact``, ``samples_compared``, ``first_mismatch`` (sample, word name, golden,
    RTL), ``cycles`` (compute clocks, start to ``sample_done``), ``cycles_per_sample``,
    ``simulated_clocks`` (with loads and state reads), ``sim_seconds`` and
    ``clocks_per_second``."""
    work = Path(work).resolve()
    started = time.perf_counter()
    exe = build_harness(cfg, work, lanes, _fault=_fault)
    build_seconds = time.perf_counter() - started
    golden = Circuit(schedule_for(cfg, "xor"), cfg, FIXED)
    words = [golden.input_words(sample) for sample in samples]
    per_sample = len(words[0]) if words else 0
    state_words = len(golden.state_vector())
    run = work / "run"
    run.mkdir(parents=True, exist_ok=True)
    source, dump = run / "input.bin", run / "state.bin"
    header = struct.pack(
        "<5i", len(samples), per_sample, state_words, cfg.current_width, read_every
    )
    source.write_bytes(header + np.asarray(words, dtype="<i4").tobytes())
    t0 = time.perf_counter()
    proc = subprocess.run([str(exe), str(source), str(dump)], capture_output=True, text=True)
    sim_seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"the harness failed: {proc.stderr.strip()}")
    raw = dump.read_bytes()
    offset, dumps = 0, {}
    while True:
        (k,) = struct.unpack_from("<i", raw, offset)
        offset += 4
        if k < 0:
            break
        dumps[k] = np.frombuffer(raw, dtype="<i8", count=state_words, offset=offset)
        offset += 8 * state_words
    cycles = np.frombuffer(raw, dtype="<i8", count=len(samples), offset=offset)
    (clocks,) = struct.unpack_from("<q", raw, offset + 8 * len(samples))
    names = state_names(golden)
    first = None
    for k, sample in enumerate(samples):
        for name, values in sample.items():
            golden.load_signed(name, values)
        golden.run_sample()
        if k in dumps:
            expected = golden.state_vector()
            differ = np.flatnonzero(dumps[k] != expected)
            if differ.size:
                w = int(differ[0])
                first = {
                    "sample": k,
                    "word": names[w],
                    "golden": int(expected[w]),
                    "rtl": int(dumps[k][w]),
                }
                break
    return {
        "bit_exact": first is None,
        "samples": len(samples),
        "samples_compared": len(dumps)
        if first is None
        else sum(1 for k in dumps if k <= first["sample"]),
        "state_words": state_words,
        "first_mismatch": first,
        "cycles": int(cycles.sum()),
        "cycles_per_sample": float(cycles.mean()) if len(cycles) else 0.0,
        "simulated_clocks": int(clocks),
        "sim_seconds": sim_seconds,
        "clocks_per_second": clocks / sim_seconds if sim_seconds else 0.0,
        "build_seconds": build_seconds,
        "weights": {name: w.tolist() for name, w in golden.weights.items()},
    }
