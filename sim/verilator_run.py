"""Build the core with Verilator through ``cocotb_tools.runner`` and run the cocotb testbench.

The build is cached per Verilog text (a hash in the build directory name), so repeated runs of
one configuration build once.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np

from golden_model.config import Config
from hw.cores import CoreChoice
from toolchain import fst_build_args

from .cocotb_job import run_cocotb_job
from .generate import TOP, generate

__all__ = ["run_verilator"]

DEFAULT_WORK = Path("build") / "verilator"
VERILATOR_ARGS = ["-Wno-fatal", "-O3"]


def run_verilator(
    cfg: Config,
    samples: list[dict[str, np.ndarray]],
    *,
    circuit: str = "xor",
    lanes: int | dict[str, int] = 1,
    work: str | Path = DEFAULT_WORK,
    waves: bool = False,
    live: bool = False,
    core: CoreChoice = "spatial",
) -> dict:
    """Train the RTL on ``samples`` under Verilator, comparing every tick with the golden
    model. Returns the testbench's verdict (``bit_exact``, ``ticks_compared``, ``mismatches``,
    ``first_mismatch``, ``cycles``, ...). ``waves`` writes a VCD of the run; ``live`` shows
    the simulator's output (with the testbench's progress) instead of writing it to
    ``test.log``. ``core``: which network core (:class:`hw.cores.CoreKind`, or a core
    class: the tests' broken ones)."""
    work = Path(work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    # generated in a directory of its own (another run in the same work directory must not
    # overwrite it first), then kept in the build directory its digest names
    with tempfile.TemporaryDirectory(dir=work, prefix="src-") as source_dir:
        paths = generate(cfg, source_dir, circuit=circuit, lanes=lanes, core=core)
        text = paths["verilog"].read_bytes()
    digest = hashlib.sha256(text).hexdigest()[:16]
    build_dir = work / f"build-{digest}{'-waves' if waves else ''}"
    verilog = build_dir / f"{TOP}.v"
    build_dir.mkdir(parents=True, exist_ok=True)
    verilog.write_bytes(text)
    job = {
        "config": cfg.to_dict(),
        "circuit": circuit,
        "lanes": lanes,
        "samples": [{k: np.asarray(v).tolist() for k, v in s.items()} for s in samples],
    }
    # FST where the machine has liblz4 (through fst_build_args); otherwise the runner's VCD.
    wave_args = (fst_build_args(work) or []) if waves else []
    verdict = run_cocotb_job(
        verilog,
        TOP,
        "sim.cocotb_bench",
        job,
        build_dir=build_dir,
        run_dir=work,
        build_args=VERILATOR_ARGS + wave_args,
        waves=waves,
        live=live,
    )
    if waves:
        dumps = sorted(
            path
            for pattern in ("*.fst", "*.vcd")
            for folder in (work, build_dir)
            for path in folder.glob(pattern)
        )
        verdict["waves"] = str(dumps[0]) if dumps else None
    return verdict
