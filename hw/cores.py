"""The two network cores and the one place that picks between them.

``spatial`` (:class:`hw.network.NetworkCore`): group state in flip-flops, step logic per
group; every configuration, the host port. ``memory`` (:class:`hw.mcore.MemoryCore`): group
state in memory, logic set by the lanes; round-half-up Hebbian learning so far.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from golden_model.config import Config
from golden_model.schedule import Schedule

__all__ = ["CoreKind", "make_core"]


class CoreKind(StrEnum):
    SPATIAL = "spatial"
    MEMORY = "memory"


def make_core(
    kind: str,
    schedule: Schedule,
    cfg: Config,
    lanes: int | Mapping[str, int] = 1,
    *,
    debug: bool = True,
    **options,
):
    """The core of ``kind`` for ``schedule``; ``options`` go to the spatial core only."""
    if CoreKind(kind) == CoreKind.MEMORY:
        from .mcore import MemoryCore

        if not isinstance(lanes, int):
            raise NotImplementedError("the memory core takes one lane count for every matrix")
        return MemoryCore(schedule, cfg, lanes, debug=debug)
    from .network import NetworkCore

    return NetworkCore(schedule, cfg, lanes=lanes, debug=debug, **options)
