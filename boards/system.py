"""The core, its host link and a UART: everything a board needs between two pins and LEDs."""

from __future__ import annotations

from amaranth.hdl import Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden_model.config import Config
from golden_model.schedule import compile_backprop
from hw.cores import CoreKind, make_core
from hw.network import sweep_depths

from .link import HostLink
from .store import StoreKind
from .uart import UartRx, UartTx

__all__ = ["PulsegateSystem"]


class PulsegateSystem(wiring.Component):
    """A trainable circuit behind a serial line.

    Parameters
    ----------
    cfg : Config
        The network (a backprop circuit).
    divisor : int
        Clocks per UART bit (clock frequency / baud rate).
    lanes : int
        Multiply-accumulate lanes of the core.
    population_lanes : int or None
        Population steps per clock (``None``: whole groups; boards use 1 to save area).
    slots : int
        Samples the link's store holds.
    store : {"auto", "block", "spram"}
        The store's memory (:class:`~boards.store.SampleStore`; ``auto``: SPRAM on an
        iCE40UP5K, block RAM elsewhere).
    debug : bool
        Bring the core's debug read port out (simulation: the full state, word by word).
    word_registers : bool
        Weight memories one word deep in flip-flops (:class:`~hw.network.NetworkCore`).
    core : CoreKind
        ``spatial`` (:class:`~hw.network.NetworkCore`) or ``memory``
        (:class:`~hw.mcore.MemoryCore`: one lane count for every matrix).

    Attributes
    ----------
    rx : In(1)
    tx : Out(1)
    leds : Out(4)
        See :class:`~boards.link.HostLink`.
    debug_addr, debug_data
        With ``debug``: the core's debug port.
    """

    def __init__(
        self,
        cfg: Config,
        *,
        divisor: int,
        lanes: int = 1,
        population_lanes: int | None = None,
        slots: int = 16,
        store: StoreKind = "auto",
        debug: bool = False,
        word_registers: bool = False,
        core: str = CoreKind.SPATIAL,
    ) -> None:
        self.cfg, self.lanes = cfg, lanes
        spatial = CoreKind(core) == CoreKind.SPATIAL
        self.core_kind = core
        options = {"population_lanes": population_lanes, "word_registers": word_registers}
        self.core = make_core(
            core,
            compile_backprop(cfg),
            cfg,
            lanes,
            debug=debug,
            host_port=True,
            # the link looks at a sample's end only: no drain at the other ticks
            **(options if spatial else {"observe_ticks": False}),
        )
        self.link = HostLink(self.core, divisor=divisor, slots=slots, store=store)
        self.uart_rx = UartRx(divisor)
        self.uart_tx = UartTx(divisor)
        ports = {"rx": In(1, init=1), "tx": Out(1, init=1), "leds": Out(4)}
        if debug:
            ports["debug_addr"] = In(range(self.core.state_words))
            ports["debug_data"] = Out(signed(64))
        super().__init__(ports)

    def cycles_per_sample(self) -> tuple[int, str]:
        """Clocks a training sample takes in a run, and how they are known (both exact, the
        link tests check them): the link loads the input words (the store's first read,
        then a word a clock), then the core runs the sample: the memory core's micro-code
        (:func:`hw.microcode.sample_clocks`), or the spatial core's sweeps plus 4 control
        clocks a tick (:func:`hw.network.sweep_depths`), whose ``start`` shares the load's
        last clock."""
        if CoreKind(self.core_kind) == CoreKind.MEMORY:
            return 1 + self.link.input_words + self.core.clocks_per_sample, "load + micro-code"
        schedule = self.core.schedule
        sweeps = sum(sweep_depths(schedule, self.cfg, self.lanes))
        control = 4 * schedule.ticks_per_sample
        return self.link.input_words + sweeps + control, "load + sweeps + 4 a tick"

    def elaborate(self, platform):
        m = Module()
        core, link = self.core, self.link
        m.submodules.core = core
        m.submodules.link = link
        m.submodules.uart_rx = self.uart_rx
        m.submodules.uart_tx = self.uart_tx
        wiring.connect(m, self.uart_rx.data, link.rx)
        wiring.connect(m, link.tx, self.uart_tx.data)
        wiring.connect(m, link.host, core.host)
        wiring.connect(m, link.load, core.load)
        m.d.comb += [
            self.uart_rx.rx.eq(self.rx),
            self.tx.eq(self.uart_tx.tx),
            self.leds.eq(link.leds),
            core.start.eq(link.start),
            core.hold.eq(0),
            link.running.eq(core.running),
            link.sample_done.eq(core.sample_done),
            link.samples.eq(core.samples),
            link.sat_current.eq(core.sat_current),
            link.sat_weight.eq(core.sat_weight),
            link.sat_copy.eq(core.sat_copy),
            link.output.eq(core.output),
        ]
        if core.debug:
            m.d.comb += [core.debug_addr.eq(self.debug_addr), self.debug_data.eq(core.debug_data)]
        return m
