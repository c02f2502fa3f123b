"""Build the core with Verilator through ``cocotb_tools.runner`` and run the cocotb testbench.

The build is cached per Verilog text (a hash in the build directory name), so repeated runs of
one configuration build once.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from golden_model.config import Config

from .generate import TOP, generate
from .toolchain import fst_build_args, tool_env

__all__ = ["run_verilator"]

DEFAULT_WORK = Path("build") / "verilator"
VERILATOR_ARGS = ["-Wno-fatal", "-O3"]


def run_verilator(
    cfg: Config,
    samples: list[dict[str, np.ndarray]],
    *,
    circuit: str = "xor",
    lanes: int = 1,
    work: str | Path = DEFAULT_WORK,
    waves: bool = False,
    _fault: dict[str, str] | None = None,
    live: bool = False,
) -> dict:
    """Train the RTL on ``samples`` under Verilator, comparing every tick with the golden
    model. Returns the testbench's verdict (``bit_exact``, ``ticks_compared``, ``mismatches``,
    ``first_mismatch``, ``cycles``, ...). ``waves`` writes a VCD of the run; ``live`` shows
    the simulator's output (with the testbench's progress) instead of writing it to
    ``test.log``. ``_fault`` (tests only) breaks the RTL on purpose."""
    from cocotb_tools.runner import get_runner

    os.environ.update(tool_env())  # the runner looks for verilator on PATH
    work = Path(work).resolve()
    source_dir = work / "src"
    paths = generate(cfg, source_dir, circuit=circuit, lanes=lanes, _fault=_fault)
    digest = hashlib.sha256(paths["verilog"].read_bytes()).hexdigest()[:16]
    build_dir = work / f"build-{digest}{'-waves' if waves else ''}"
    verilog = build_dir / f"{TOP}.v"
    build_dir.mkdir(parents=True, exist_ok=True)
    verilog.write_bytes(paths["verilog"].read_bytes())
    job = work / "job.json"
    result = work / "result.json"
    job.write_text(
        json.dumps(
            {
                "config": cfg.to_dict(),
                "circuit": circuit,
                "lanes": lanes,
                "samples": [{k: np.asarray(v).tolist() for k, v in s.items()} for s in samples],
            }
        )
    )
    result.unlink(missing_ok=True)
    # FST where the machine has liblz4 (through fst_build_args); otherwise the runner's VCD.
    wave_args = (fst_build_args(work) or []) if waves else []
    runner = get_runner("verilator")
    runner.build(
        sources=[verilog],
        hdl_toplevel=TOP,
        build_dir=build_dir,
        build_args=VERILATOR_ARGS + wave_args,
        timescale=("1ns", "1ps"),
        waves=waves,
        log_file=build_dir / "build.log",
    )
    # A failing comparison fails the cocotb test, and the runner then exits; the verdict
    # file is written before that, so it still tells what differed.
    try:
        runner.test(
            test_module="sim.cocotb_bench",
            hdl_toplevel=TOP,
            build_dir=build_dir,
            test_dir=work,
            extra_env={"PULSEGATE_JOB": str(job), "PULSEGATE_RESULT": str(result)},
            waves=waves,
            log_file=None if live else work / "test.log",
        )
    except SystemExit:
        pass
    if not result.exists():
        raise RuntimeError(f"the testbench wrote no result; see {work / 'test.log'}")
    verdict = json.loads(result.read_text())
    if waves:
        dumps = sorted(
            path
            for pattern in ("*.fst", "*.vcd")
            for folder in (work, build_dir)
            for path in folder.glob(pattern)
        )
        verdict["waves"] = str(dumps[0]) if dumps else None
    return verdict
