"""Run the board system (core + host link + UART) under Verilator with the link testbenches."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from amaranth.back import verilog

from golden_model.config import Config

from .toolchain import tool_env

__all__ = ["SYSTEM_TOP", "run_link_bench"]

SYSTEM_TOP = "pulsegate_system"
DEFAULT_WORK = Path("build") / "verilator-link"


def run_link_bench(
    cfg: Config,
    test: str,
    *,
    divisor: int = 4,
    work: str | Path = DEFAULT_WORK,
    **job,
) -> dict:
    """Run one testbench of :mod:`sim.cocotb_link` (``train``, ``malformed`` or ``abort``)
    and return its verdict. ``job`` entries (``order``, ``seed``, ``frames``, ...) are passed
    to the testbench."""
    from cocotb_tools.runner import get_runner

    from boards.system import PulsegateSystem

    os.environ.update(tool_env())
    work = Path(work).resolve()
    system = PulsegateSystem(cfg, divisor=divisor, debug=True)
    text = verilog.convert(system, name=SYSTEM_TOP)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    build_dir = work / f"build-{digest}"
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{SYSTEM_TOP}.v"
    source.write_text(text)
    run_dir = work / test
    run_dir.mkdir(parents=True, exist_ok=True)
    job_file, result = run_dir / "job.json", run_dir / "result.json"
    job_file.write_text(json.dumps({"config": cfg.to_dict(), "divisor": divisor, **job}))
    result.unlink(missing_ok=True)
    runner = get_runner("verilator")
    runner.build(
        sources=[source],
        hdl_toplevel=SYSTEM_TOP,
        build_dir=build_dir,
        build_args=["-Wno-fatal", "-O3"],
        timescale=("1ns", "1ps"),
        log_file=build_dir / "build.log",
    )
    try:
        runner.test(
            test_module="sim.cocotb_link",
            testcase=test,
            hdl_toplevel=SYSTEM_TOP,
            build_dir=build_dir,
            test_dir=run_dir,
            extra_env={"PULSEGATE_JOB": str(job_file), "PULSEGATE_RESULT": str(result)},
            log_file=run_dir / "test.log",
        )
    except SystemExit:
        pass
    if not result.exists():
        raise RuntimeError(f"the link testbench wrote no result; see {run_dir / 'test.log'}")
    return json.loads(result.read_text())
