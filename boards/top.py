"""The board top: the system (core, host link, UART, sample store) wired to a board's pins."""

from __future__ import annotations

from amaranth.build import ResourceError
from amaranth.hdl import Elaboratable, Module

from golden_model.config import Config

from .catalogue import store_slots
from .system import PulsegateSystem

__all__ = ["BoardTop"]


class BoardTop(Elaboratable):
    """The system on a board: UART pins to the host link, LEDs to its status.

    LEDs (as many as the board has): trained, the learned output (XOR: the last sample's
    output above 1/2), a run active, the last request failed.
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
    ) -> None:
        self.cfg, self.baud, self.lanes, self.slots = cfg, baud, lanes, slots
        self.word_registers, self.core = word_registers, core
        self.system: PulsegateSystem | None = None

    def elaborate(self, platform):
        m = Module()
        divisor = round(platform.default_clk_frequency / self.baud)
        slots = store_slots(self.cfg, platform, self.slots)
        self.system = system = PulsegateSystem(
            self.cfg,
            divisor=divisor,
            lanes=self.lanes,
            slots=slots,
            word_registers=self.word_registers,
            core=self.core,
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
