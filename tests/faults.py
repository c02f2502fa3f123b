"""Deliberately broken units and cores: each test that shows a check can fail builds one.

The production constructors take no fault parameters; each broken unit is a subclass that
overrides the one hook its fault needs (:meth:`hw.population.PopulationStep.saturate`,
:meth:`hw.synapse.SynapseUnit.rounding_offset`, :meth:`hw.hebbian.HebbianUnit.saturate`,
:meth:`hw.network.NetworkCore.synapse_class`)."""

from __future__ import annotations

from amaranth.hdl import Const

from boards.link import HostLink
from hw.fixedpoint import saturate
from hw.hebbian import HebbianUnit
from hw.lanes import SplitAccumulator, step_sum
from hw.lfsr import MultiStepLfsr
from hw.mcore import MemoryCore
from hw.network import NetworkCore
from hw.population import PopulationAccumulator, PopulationStep
from hw.synapse import SynapseUnit

__all__ = [
    "WrappingStep",
    "CarrylessAccumulator",
    "FlaglessCore",
    "wrapping_sum",
    "early_event_sum",
    "WrappingAccumulator",
    "FlooringSynapse",
    "WrappingHebbian",
    "core_with_flooring",
]


class WrappingStep(PopulationStep):
    """A population step that wraps instead of saturating, and never reports an event."""

    def saturate(self, total, width):
        return total[:width].as_signed(), Const(0)


class SilentStep(PopulationStep):
    """A population step that saturates but never reports the event."""

    def saturate(self, total, width):
        return super().saturate(total, width)[0], Const(0)


class CarrylessAccumulator(SplitAccumulator):
    """A lane accumulator that rounds its sum as if no carry were pending from the low half
    (wrong just after an addition that carried across the split)."""

    def rounded(self):
        carry, self.carry = self.carry, Const(0, 1)
        try:
            return super().rounded()
        finally:
            self.carry = carry


def wrapping_sum(m, base, addend, width: int, name: str):
    """The step's write-back sum wrapping to ``width`` bits (its event still counted)."""
    _, event = step_sum(m, base, addend, width, name)
    return (base + addend)[:width].as_signed(), event


def early_event_sum(m, base, addend, width: int, name: str):
    """The step's write-back sum with its event a clock early (the clock the sum's)."""
    clamped, _ = step_sum(m, base, addend, width, name)
    return clamped, saturate(base + addend, width)[1]


class FlaglessCore(MemoryCore):
    """A memory core whose lanes read the state memory without its zero flags, whatever its
    program reads (``MemoryCore.reads_flags`` forced off)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reads_flags = False


class TruncatingLfsr(MultiStepLfsr):
    """A rounding LFSR whose load keeps only the low 16 bits (a width slip): a seed of
    ``0x10000`` locks it at zero."""

    def loaded(self, value):
        return value[:16]


class UncheckedLink(HostLink):
    """A host link that takes every index as in range: a write past the store's last word
    or a read of a weight that does not exist goes through."""

    def _in_range(self, index, limit: int):
        return Const(1)


class StaleReadLink(HostLink):
    """A host link whose run reads its store as if it answered in one clock while it takes
    two (the ECP5 boards' store): the core is handed each word a clock early."""

    def elaborate(self, platform):
        latency, self.store.latency = self.store.latency, 1
        try:
            return super().elaborate(platform)
        finally:
            self.store.latency = latency  # the store itself elaborates after the link


class OneMoreSampleLink(HostLink):
    """A host link whose run starts one sample more than its START asked for."""

    def _last_of_run(self, slot, count):
        return slot == count


class WrappingAccumulator(PopulationAccumulator):
    Step = WrappingStep


class FlooringSynapse(SynapseUnit):
    """A synapse unit that rounds its sums down instead of half up."""

    def rounding_offset(self) -> int:
        return 0


class WrappingHebbian(HebbianUnit):
    """A Hebbian unit whose weight updates wrap instead of saturating."""

    def saturate(self, value, width):
        return value[:width].as_signed(), Const(0)


def core_with_flooring(*matrices: str) -> type[NetworkCore]:
    """A spatial core whose synapse units for ``matrices`` round down (a core class for
    :func:`hw.cores.make_core` and the ``core`` parameter of the simulation runners)."""

    class FlooringCore(NetworkCore):
        def synapse_class(self, matrix: str) -> type[SynapseUnit]:
            return FlooringSynapse if matrix in matrices else super().synapse_class(matrix)

    FlooringCore.__name__ = FlooringCore.__qualname__ = f"FlooringCore_{'_'.join(matrices)}"
    return FlooringCore
