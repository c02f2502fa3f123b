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

__all__ = ["PulsegateSystem", "board_cycles_per_sample"]


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
    input_banks : {2, 1}
        The memory core's input banks (:class:`~hw.mcore.MemoryCore`): two let the link load
        the next sample while one runs.
    rom_style : str, optional
        Yosys's ``ram_style`` for the memory core's instruction ROM.
    ram_style : str, optional
        Yosys's ``ram_style`` for the memory core's state memory and source buffers.
    simd : int, optional
        The memory core's multipliers, a multiple of ``lanes`` (:class:`~hw.mcore.MemoryCore`).

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
        input_banks: int = 2,
        rom_style: str | None = None,
        ram_style: str | None = None,
        store_latency: int = 1,
        simd: int | None = None,
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
            **(
                options
                if spatial
                else {
                    "observe_ticks": False,
                    "input_banks": input_banks,
                    "rom_style": rom_style,
                    "ram_style": ram_style,
                    "simd": simd,
                }
            ),
        )
        self.link = HostLink(
            self.core, divisor=divisor, slots=slots, store=store, store_latency=store_latency
        )
        self.uart_rx = UartRx(divisor)
        self.uart_tx = UartTx(divisor)
        ports = {"rx": In(1, init=1), "tx": Out(1, init=1), "leds": Out(4)}
        if debug:
            ports["debug_addr"] = In(range(self.core.state_words))
            ports["debug_data"] = Out(signed(64))
        super().__init__(ports)

    def cycles_per_sample(self) -> tuple[int, str]:
        """Clocks a training sample takes in a run (:func:`board_cycles_per_sample`)."""
        return board_cycles_per_sample(
            self.core, self.cfg, self.lanes, store_latency=self.link.store.latency
        )

    def run_clocks(self, samples: int) -> int:
        """Clocks a run of ``samples`` samples keeps the run LED lit (START to the last
        sample's end): with two input banks the first load, then a sample every
        :meth:`cycles_per_sample`, the last one's micro-code; otherwise the samples, each
        with its load, back to back. Exact (the link tests check it)."""
        period, _ = self.cycles_per_sample()
        if self.core.loads_while_running:
            first_load = self.link.store.latency + self.link.input_words
            return first_load + (samples - 1) * period + self.core.clocks_per_sample + 1
        return samples * period + 1

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


def board_cycles_per_sample(core, cfg: Config, lanes, *, store_latency: int = 1) -> tuple[int, str]:
    """Clocks a training sample takes in a board's run, from one ``start`` to the next, and
    how they are known (both exact; the link tests check :meth:`PulsegateSystem.run_clocks`,
    built on them). ``core``: the system's network core (its kind decides).

    The memory core takes the next sample's inputs while it runs one (its second input
    bank), so a sample costs its micro-code (:func:`hw.microcode.sample_clocks`) unless the
    load takes longer: the store's first read (``store_latency`` clocks), then a word a
    clock. With one input bank it loads while idle: the store's first read and the input words,
    then the micro-code. The spatial core loads only while idle: the input words, then its
    sweeps plus 4 control clocks a tick (:func:`hw.network.sweep_depths`), its ``start``
    sharing the load's last clock."""
    from hw.mcore import MemoryCore

    input_words = core.input_size
    if isinstance(core, MemoryCore) and not core.loads_while_running:
        return store_latency + input_words + core.clocks_per_sample, "load + micro-code"
    if core.loads_while_running:
        run = core.clocks_per_sample
        # start (clock 0), the store's first read, then a word a clock into the input
        # memory's own port: the next sample may start the clock after the last
        loaded = 1 + store_latency + input_words
        if loaded <= run:
            return run, "micro-code (the next load hidden)"
        return loaded, "the next load (longer than the micro-code)"
    schedule = core.schedule
    sweeps = sum(sweep_depths(schedule, cfg, lanes))
    control = 4 * schedule.ticks_per_sample
    return store_latency - 1 + input_words + sweeps + control, "load + sweeps + 4 a tick"
