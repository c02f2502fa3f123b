"""The board top: the system (core, host link, UART, sample store) wired to a board's pins."""

from __future__ import annotations

from amaranth.build import ResourceError
from amaranth.hdl import Elaboratable, Module

from golden_model.config import Config

from .catalogue import store_slots
from .clocks import PllClock, pll_settings
from .store import StoreKind
from .system import PulsegateSystem

__all__ = ["BoardTop", "board_system", "store_latency_of", "uart_divisor"]


def uart_divisor(clock_hz: float, baud: int) -> int:
    """Clocks per UART bit at ``clock_hz`` (the core's clock: the PLL's when it has one)."""
    return round(clock_hz / baud)


#: Lanes above which an ECP5 system keeps the memory core's state and buffers in LUT RAM.
WIDE_PLAN = 32
#: Weight bits above which it does so at any plan: the weights then need most of the block
#: RAM (400-400-10: 2.7 Mbit of the ECP5-85F's 3.8; at 8 x 32 its state, input and buffer
#: banks in DP16KD made 210 blocks of 208, in LUT RAM 182).
LARGE_WEIGHTS = 1 << 20


def store_latency_of(family: str) -> int:
    """Clocks a board of ``family``'s sample store takes to read: 2 on the ECP5, whose
    DP16KD's clock-to-out (5.8 ns) and the bank multiplexer behind it were one path into the
    core's input register; 1 elsewhere (the UP5K's SPRAMs are three banks)."""
    return 2 if family == "ecp5" else 1


def board_system(
    cfg: Config,
    *,
    family: str,
    divisor: int,
    slots: int,
    lanes: int = 1,
    word_registers: bool = False,
    core: str = "spatial",
    store: StoreKind = "auto",
    simd: int | None = None,
) -> PulsegateSystem:
    """The system a board of ``family`` carries (core, host link, UART, sample store): what
    :class:`BoardTop` puts between the pins, and what the virtual board simulates
    (:mod:`boards.virtual_board`, with ``store="block"``: SPRAM primitives do not simulate)."""
    return PulsegateSystem(
        cfg,
        divisor=divisor,
        lanes=lanes,
        slots=slots,
        store=store,
        word_registers=word_registers,
        core=core,
        simd=simd,
        # iCE40: logic is what limits, and a load is a few % of a sample at the lanes
        # they hold; elsewhere the next sample loads while one runs
        input_banks=1 if family == "ice40" else 2,
        store_latency=store_latency_of(family) if store != "spram" else 1,
        # a DP16KD's slow output would sit in the sequencer's loop (ROM word -> next
        # address): the ROM in logic costs a few LUTs and flip-flops there
        rom_style="logic" if family == "ecp5" else None,
        # a wide plan's buffer banks are a few rows each: a DP16KD apiece would take the
        # block RAM its weights need (400-400-10 at 101 lanes: 303 more; folded wider, the
        # source buffer has a bank a multiplier); so are its state banks but where they
        # are deep (hw.mcore.DISTRIBUTED_ROWS: 400-400-10's stay in block RAM)
        ram_style="distributed"
        if family == "ecp5" and _small_memories_in_luts(cfg, lanes, simd)
        else None,
    )


def _small_memories_in_luts(cfg: Config, lanes, simd: int | None) -> bool:
    """Whether an ECP5 memory core keeps its state (where shallow), buffer and input banks in
    LUT RAM: a wide plan's banks are a few rows each (a DP16KD apiece would take the block RAM
    its weights need), and so does a network whose weights fill the block RAM."""
    if not isinstance(lanes, int):
        return False
    if max(lanes, simd or 0) > WIDE_PLAN:
        return True
    layers = cfg.layers  # each layer's weights and its bias
    weights = sum((n_in + 1) * n_out for n_in, n_out in zip(layers[:-1], layers[1:], strict=True))
    return weights * cfg.weight_width > LARGE_WEIGHTS


class BoardTop(Elaboratable):
    """The system on a board: UART pins to the host link, LEDs to its status.

    LEDs (as many as the board has): trained, the learned output (XOR: the last sample's
    output above 1/2), a run active, the last request failed.

    ``clock_mhz``: run the system from the board's PLL at the nearest frequency it makes
    (:mod:`boards.clocks`; reset held until it locks); ``None`` runs it at the board's
    oscillator. ``family`` and ``pll_pad`` (the oscillator's pin is the PLL's own) come from
    the board (:class:`boards.catalogue.Board`). The UART's divisor follows the clock.
    """

    def __init__(
        self,
        cfg: Config,
        *,
        baud: int = 115200,
        lanes: int = 1,
        slots: int | None = None,
        word_registers: bool = False,
        core: str = "spatial",
        clock_mhz: float | None = None,
        family: str = "ice40",
        pll_pad: bool = False,
        simd: int | None = None,
    ) -> None:
        self.cfg, self.baud, self.lanes, self.slots = cfg, baud, lanes, slots
        self.simd = simd
        self.word_registers, self.core = word_registers, core
        self.clock_mhz, self.family, self.pll_pad = clock_mhz, family, pll_pad
        self.system: PulsegateSystem | None = None
        self.pll = None  # the PLL's settings once elaborated with ``clock_mhz``

    def elaborate(self, platform):
        m = Module()
        frequency = platform.default_clk_frequency
        if self.clock_mhz is not None:
            self.pll = pll_settings(self.family, frequency / 1e6, self.clock_mhz)
            m.submodules.clock = clock = PllClock(self.family, self.pll, pad=self.pll_pad)
            frequency = clock.frequency
        self.system = system = board_system(
            self.cfg,
            family=self.family,
            divisor=uart_divisor(frequency, self.baud),
            slots=store_slots(self.cfg, platform, self.slots),
            lanes=self.lanes,
            word_registers=self.word_registers,
            core=self.core,
            simd=self.simd,
        )
        m.submodules.system = system
        uart = platform.request("uart", 0)
        m.d.comb += [system.rx.eq(uart.rx.i), uart.tx.o.eq(system.tx)]
        try:  # ULX3S: the FTDI chip listens to the FPGA's tx only when enabled
            m.d.comb += platform.request("uart_tx_enable", 0).o.eq(1)
        except ResourceError:
            pass
        leds = []
        for index in range(4):
            try:
                leds.append(platform.request("led", index).o)
            except ResourceError:
                break
        if not leds:
            try:
                rgb = platform.request("rgb_led", 0)
                leds = [rgb.g.o, rgb.b.o, rgb.r.o]
            except ResourceError:
                pass
        for k, led in enumerate(leds):
            m.d.comb += led.eq(system.leds[k])
        return m
