"""Run the board system (core + host link + UART) under Verilator with the link testbenches."""

from __future__ import annotations

import hashlib
from pathlib import Path

from amaranth.back import verilog

from golden_model.config import Config
from sim.cocotb_job import run_cocotb_job
from toolchain import spram_model

__all__ = ["SYSTEM_TOP", "run_link_bench", "run_store_bench"]

SYSTEM_TOP = "pulsegate_system"
DEFAULT_WORK = Path("build") / "verilator-link"


def run_link_bench(
    cfg: Config,
    test: str,
    *,
    divisor: int = 4,
    store: str = "block",
    work: str | Path = DEFAULT_WORK,
    core: str = "spatial",
    lanes: int = 1,
    input_banks: int = 2,
    store_latency: int = 1,
    **job,
) -> dict:
    """Run one testbench of :mod:`boards.cocotb_link` (``train``, ``malformed`` or ``abort``)
    on the system with a network core of kind ``core`` at ``lanes`` (the memory core with
    ``input_banks``; the store read in ``store_latency`` clocks), and return its verdict.
    ``store="spram"`` builds the link's sample store from iCE40UP5K SPRAMs, simulated with the
    vendor's cell model (:func:`toolchain.spram_model`). ``job`` entries (``order``, ``seed``,
    ``frames``, ...) are passed to the testbench."""
    from .system import PulsegateSystem

    work = Path(work).resolve()
    system = PulsegateSystem(
        cfg, divisor=divisor, store=store, debug=True, core=core, lanes=lanes,
        input_banks=input_banks, store_latency=store_latency,
    )  # fmt: skip
    text = verilog.convert(system, name=SYSTEM_TOP)
    if store == "spram":
        text += spram_model()
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    build_dir = work / f"build-{digest}"
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{SYSTEM_TOP}.v"
    source.write_text(text)
    verdict = run_cocotb_job(
        source,
        SYSTEM_TOP,
        "boards.cocotb_link,boards.cocotb_link_faults",
        {"config": cfg.to_dict(), "divisor": divisor, **job},
        build_dir=build_dir,
        run_dir=work / test,
        build_args=["-Wno-fatal", "-O3"],
        testcase=test,
    )
    # what a build's report quotes, beside what the run measured: the run LED's clocks, a
    # run a store-full of samples
    verdict["reported_cycles_per_sample"] = system.cycles_per_sample()[0]
    if "samples" in verdict:
        full, rest = divmod(verdict["samples"], system.link.slots)
        runs = [system.link.slots] * full + ([rest] if rest else [])
        verdict["reported_run_clocks"] = sum(system.run_clocks(n) for n in runs)
    return verdict


def run_store_bench(
    width: int,
    depth: int,
    *,
    kind: str = "spram",
    writes: int = 200,
    seed: int = 1,
    work: str | Path = Path("build") / "verilator-store",
) -> dict:
    """Write ``writes`` random words into a :class:`boards.store.SampleStore` of ``depth``
    words of ``width`` bits (``kind``: ``spram`` with the vendor's cell model, or ``block``),
    read them back, and return the verdict (``checked``, ``bad``, ``mismatches``)."""
    from .store import SampleStore

    work = Path(work).resolve()
    store = SampleStore(width, depth, kind=kind)
    text = verilog.convert(store, name="store")
    if kind == "spram":
        text += spram_model()
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    build_dir = work / f"build-{digest}"
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / "store.v"
    source.write_text(text)
    return run_cocotb_job(
        source,
        "store",
        "boards.cocotb_store",
        {"width": width, "depth": depth, "writes": writes, "seed": seed},
        build_dir=build_dir,
        run_dir=work / f"run-{digest}",
        build_args=["-Wno-fatal"],
    )
