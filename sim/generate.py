"""Verilog emission: the same configuration always gives the same bytes."""

from __future__ import annotations

from pathlib import Path

from amaranth.back import verilog

from golden_model.config import Config
from golden_model.schedule import Schedule, compile_ar2, compile_backprop
from hw.cores import CoreChoice, CoreKind, make_core

__all__ = ["TOP", "schedule_for", "core_for", "generate"]

TOP = "pulsegate_core"


def schedule_for(cfg: Config, circuit: str = "xor") -> Schedule:
    if circuit == "xor":
        return compile_backprop(cfg)
    if circuit == "ar2":
        return compile_ar2(cfg)
    raise ValueError(f"unknown circuit {circuit!r} (known: xor, ar2)")


def core_for(
    cfg: Config,
    circuit: str = "xor",
    lanes: int = 1,
    debug: bool = True,
    *,
    population_lanes: int | None = None,
    core: CoreChoice = CoreKind.SPATIAL,
    observe_ticks: bool | None = None,
    simd: int | None = None,
):
    """The network core of ``circuit`` (``core``: :class:`hw.cores.CoreKind`, or a core class
    such as the tests' broken ones; ``observe_ticks`` and ``simd``:
    :class:`hw.mcore.MemoryCore`)."""
    options = {"population_lanes": population_lanes}
    if core == CoreKind.MEMORY:
        options = {"observe_ticks": observe_ticks, "simd": simd}
    return make_core(core, schedule_for(cfg, circuit), cfg, lanes, debug=debug, **options)


def generate(
    cfg: Config,
    out: str | Path,
    circuit: str = "xor",
    lanes: int = 1,
    *,
    population_lanes: int | None = None,
    core: CoreChoice = CoreKind.SPATIAL,
    observe_ticks: bool | None = None,
    simd: int | None = None,
) -> dict[str, Path]:
    """Write ``pulsegate_core.v``, the configuration and the schedule table into ``out``.
    ``population_lanes``: see :class:`hw.network.NetworkCore`; ``core``: see
    :func:`core_for`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    network = core_for(
        cfg,
        circuit,
        lanes,
        population_lanes=population_lanes,
        core=core,
        observe_ticks=observe_ticks,
        simd=simd,
    )
    paths = {
        "verilog": out / f"{TOP}.v",
        "config": out / "config.json",
        "schedule": out / "schedule.txt",
    }
    # No source locations: the Verilog must not depend on where the checkout lives.
    paths["verilog"].write_text(verilog.convert(network, name=TOP, emit_src=False))
    paths["config"].write_text(cfg.to_json())
    paths["schedule"].write_text(network.schedule.table() + "\n")
    return paths
