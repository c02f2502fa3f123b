"""Build a Verilog top with Verilator and run one cocotb testbench on it, as a job.

The testbench reads its job (a JSON file named by ``PULSEGATE_JOB``) and writes its verdict
(``PULSEGATE_RESULT``); a failing comparison fails the cocotb test and the runner then exits,
but the verdict is written before that, so it still tells what differed.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from unittest import mock

from toolchain import tool_env

__all__ = ["run_cocotb_job", "read_job", "write_result"]


def run_cocotb_job(
    source: Path,
    toplevel: str,
    test_module: str,
    job: dict,
    *,
    build_dir: Path,
    run_dir: Path,
    build_args: list[str],
    testcase: str | None = None,
    waves: bool = False,
    live: bool = False,
) -> dict:
    """Build ``source`` in ``build_dir`` (the runner skips an unchanged build), run
    ``test_module`` (``testcase`` of it, or all) in ``run_dir`` with ``job``, and return the
    verdict. ``live`` shows the simulator's output instead of writing ``run_dir/test.log``."""
    from cocotb_tools.runner import get_runner

    run_dir.mkdir(parents=True, exist_ok=True)
    job_file, result = run_dir / "job.json", run_dir / "result.json"
    job_file.write_text(json.dumps(job))
    result.unlink(missing_ok=True)
    # cocotb's runner takes its subprocesses' environment (and finds verilator) from
    # os.environ alone: the tools' environment is lent to it for this call, then restored.
    with mock.patch.dict(os.environ, tool_env()):
        runner = get_runner("verilator")
        runner.build(
            sources=[source],
            hdl_toplevel=toplevel,
            build_dir=build_dir,
            build_args=build_args,
            timescale=("1ns", "1ps"),
            waves=waves,
            log_file=build_dir / "build.log",
        )
        try:
            runner.test(
                test_module=test_module,
                # The runner's own testcase filter also matches names that end in this one.
                test_filter=None if testcase is None else rf"\.{re.escape(testcase)}$",
                hdl_toplevel=toplevel,
                build_dir=build_dir,
                test_dir=run_dir,
                extra_env={
                    "PULSEGATE_JOB": str(job_file),
                    "PULSEGATE_RESULT": str(result),
                    # A file a testbench leaves open shows in its log (test_boards checks).
                    "PYTHONWARNINGS": "error::ResourceWarning",
                },
                waves=waves,
                log_file=None if live else run_dir / "test.log",
            )
        except SystemExit:  # a failing testbench; its verdict file says what differed
            pass
    if not result.exists():
        raise RuntimeError(f"the testbench wrote no result; see {run_dir / 'test.log'}")
    return json.loads(result.read_text())


def read_job() -> dict:
    """The job of the testbench running in this cocotb process (from ``PULSEGATE_JOB``)."""
    return json.loads(Path(os.environ["PULSEGATE_JOB"]).read_text())


def write_result(result: dict) -> None:
    """The testbench's verdict, for :func:`run_cocotb_job` (to ``PULSEGATE_RESULT``)."""
    Path(os.environ["PULSEGATE_RESULT"]).write_text(json.dumps(result))
