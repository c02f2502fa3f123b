"""The two network cores and the one place that picks between them.

``spatial`` (:class:`hw.network.NetworkCore`): group state in flip-flops, step logic per
group; every configuration, the host port. ``memory`` (:class:`hw.mcore.MemoryCore`): group
state in memory, logic set by the lanes; one lane count for every matrix.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import NamedTuple

from amaranth.hdl import signed
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from golden_model.config import Config
from golden_model.schedule import Schedule

__all__ = ["CoreKind", "CoreChoice", "Fold", "make_core", "core_ports"]


def core_ports(current_width: int, output_size: int, state_words: int, debug: bool) -> dict:
    """The ports both network cores have (their contract with the testbenches, the native
    harness and the host link): ``load`` stream, ``start``, ``running``, ``sample_done``,
    ``state_valid``, ``hold``, the saturation counters, ``samples``, ``output`` and, with
    ``debug``, the debug port (``debug_addr`` -> ``debug_data`` a clock later)."""
    cw = current_width
    return {
        "output": Out(data.ArrayLayout(signed(cw + 1), max(output_size, 1))),
        "load": In(stream.Signature(signed(cw))),
        "start": In(1),
        "running": Out(1),
        "sample_done": Out(1),
        "state_valid": Out(1),
        "sat_current": Out(64),
        "sat_weight": Out(64),
        "sat_copy": Out(64),
        "samples": Out(32),
        "hold": In(1),
        **({"debug_addr": In(range(state_words)), "debug_data": Out(signed(64))} if debug else {}),
    }


class Fold(NamedTuple):
    """A memory core's plan folded wider (FINN's PE x SIMD): ``lanes`` element lanes beside
    ``simd`` multipliers (:class:`hw.mcore.MemoryCore`'s ``simd``)."""

    lanes: int
    simd: int

    def __str__(self) -> str:
        return f"{self.lanes}x{self.simd}"


class CoreKind(StrEnum):
    SPATIAL = "spatial"
    MEMORY = "memory"


#: A core kind, or a core class taking ``(schedule, cfg, lanes, debug=, host_port=, ...)``
#: (the tests' deliberately broken cores).
CoreChoice = str | type


def make_core(
    kind: CoreChoice,
    schedule: Schedule,
    cfg: Config,
    lanes: int | Mapping[str, int] = 1,
    *,
    debug: bool = True,
    host_port: bool = False,
    observe_ticks: bool | None = None,
    input_banks: int = 2,
    rom_style: str | None = None,
    ram_style: str | None = None,
    simd: int | None = None,
    **options,
):
    """The core of ``kind`` for ``schedule``; ``options`` go to the spatial core only, and
    ``observe_ticks``, ``input_banks``, ``rom_style``, ``ram_style`` and ``simd``
    (:class:`hw.mcore.MemoryCore`) to the memory core only: the spatial core's ticks are
    always observable and it loads only while idle. ``kind`` may be a core class (a
    subclass of either core), built with the options of the core it derives from."""
    from .mcore import MemoryCore

    memory = isinstance(kind, type) and issubclass(kind, MemoryCore)
    if not isinstance(kind, type) and CoreKind(kind) == CoreKind.MEMORY:
        if not isinstance(lanes, int):
            raise NotImplementedError("the memory core takes one lane count for every matrix")
        kind, memory = MemoryCore, True
    if memory:
        return kind(
            schedule, cfg, lanes, debug=debug, host_port=host_port,
            observe_ticks=observe_ticks, input_banks=input_banks, rom_style=rom_style,
            ram_style=ram_style, simd=simd,
        )  # fmt: skip
    if simd is not None:
        raise NotImplementedError("the spatial core has no fold (simd): use the memory core")
    if not isinstance(kind, type):
        from .network import NetworkCore

        kind = NetworkCore
    return kind(schedule, cfg, lanes=lanes, debug=debug, host_port=host_port, **options)
