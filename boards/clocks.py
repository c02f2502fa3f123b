"""The core clock of a board: PLL settings for a requested frequency, and the clock domain.

The settings are found by the same searches as IceStorm's ``icepll`` (iCE40 ``SB_PLL40``,
simple feedback) and Project Trellis' ``ecppll`` (ECP5 ``EHXPLLL``, feedback from ``CLKOP``),
so a build's PLL is the one those tools would give (the tests compare them over a range of
frequencies). :class:`PllClock` makes the ``sync`` domain from the PLL's output and holds it in
reset until the PLL locks and for a while after (the iCE40's block RAMs read as zero for a
few microseconds after configuration).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = [
    "Ice40Pll",
    "Ecp5Pll",
    "ice40_pll",
    "ecp5_pll",
    "pll_settings",
    "pll_at_most",
    "PLL_OUTPUT_MHZ",
    "PllClock",
    "LockReset",
    "RESET_HOLD_US",
]

#: The range of a PLL's output (MHz): iCE40 ``PLLOUT`` and ECP5 ``CLKOP``.
PLL_OUTPUT_MHZ = {"ice40": (16.0, 275.0), "ecp5": (3.125, 400.0)}


@dataclass(frozen=True)
class Ice40Pll:
    """``SB_PLL40`` in simple feedback: ``f_out = f_in / (DIVR + 1) * (DIVF + 1) / 2**DIVQ``."""

    input_mhz: float
    divr: int
    divf: int
    divq: int

    @property
    def pfd_mhz(self) -> float:
        return self.input_mhz / (self.divr + 1)

    @property
    def vco_mhz(self) -> float:
        return self.pfd_mhz * (self.divf + 1)

    @property
    def output_mhz(self) -> float:
        return self.vco_mhz / 2**self.divq

    @property
    def filter_range(self) -> int:
        """The loop filter's range for the phase detector's frequency (iCE40 sysCLOCK)."""
        for limit, code in ((17, 1), (26, 2), (44, 3), (66, 4), (101, 5)):
            if self.pfd_mhz < limit:
                return code
        return 6


@dataclass(frozen=True)
class Ecp5Pll:
    """``EHXPLLL`` with ``CLKOP`` fed back: ``f_out = f_in / CLKI_DIV * CLKFB_DIV``, the VCO
    at ``f_out * CLKOP_DIV``; ``CLKOP_CPHASE`` shifts ``CLKOP`` by half a period."""

    input_mhz: float
    clki_div: int
    clkfb_div: int
    clkop_div: int
    output_mhz: float
    vco_mhz: float
    clkop_cphase: int


def _check_request(family: str, input_mhz: float, output_mhz: float) -> None:
    low, high = PLL_OUTPUT_MHZ[family]
    if not input_mhz > 0:
        raise ValueError(f"the PLL's input must be above 0 MHz, got {input_mhz}")
    if not low <= output_mhz <= high:
        raise ValueError(
            f"{output_mhz:g} MHz is outside the {family} PLL's output range "
            f"({low:g} to {high:g} MHz)"
        )


def ice40_pll(input_mhz: float, output_mhz: float) -> Ice40Pll:
    """The ``SB_PLL40`` settings whose output is nearest ``output_mhz`` (``icepll``'s search:
    phase detector 10-133 MHz, VCO 533-1066 MHz, ``DIVQ`` 1-6; the first of equals)."""
    _check_request("ice40", input_mhz, output_mhz)
    best: Ice40Pll | None = None
    for divr in range(16):
        pfd = input_mhz / (divr + 1)
        if not 10 <= pfd <= 133:
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not 533 <= vco <= 1066:
                continue
            for divq in range(1, 7):
                found = Ice40Pll(input_mhz, divr, divf, divq)
                error = abs(found.output_mhz - output_mhz)
                if best is None or error < abs(best.output_mhz - output_mhz):
                    best = found
    if best is None:
        raise ValueError(f"no iCE40 PLL setting takes {input_mhz:g} MHz in")
    return best


def ecp5_pll(input_mhz: float, output_mhz: float) -> Ecp5Pll:
    """The ``EHXPLLL`` settings whose output is nearest ``output_mhz`` (``ecppll``'s search in
    single precision, as it runs: phase detector 3.125-400 MHz, VCO 400-800 MHz; of equals,
    the VCO nearest 600 MHz)."""
    _check_request("ecp5", input_mhz, output_mhz)
    f32 = np.float32
    # every (input, feedback, output) divisor at once, in the tool's loop order
    clki, clkfb, clkop = np.meshgrid(
        np.arange(1, 129), np.arange(1, 81), np.arange(1, 129), indexing="ij"
    )
    pfd = f32(input_mhz) / clki.astype(f32)
    vco = pfd * clkfb.astype(f32) * clkop.astype(f32)
    fout = vco / clkop.astype(f32)
    valid = (pfd >= f32(3.125)) & (pfd <= f32(400)) & (vco >= f32(400)) & (vco <= f32(800))
    if not valid.any():
        raise ValueError(f"no ECP5 PLL setting takes {input_mhz:g} MHz in")
    # the tool keeps the first of the least error, then one strictly nearer a 600 MHz VCO
    miss = np.where(valid, np.abs(fout - f32(output_mhz)), np.inf)
    nearest = valid & (miss == miss.min())
    off = np.where(nearest, np.abs(vco - f32(600)), np.inf)
    index = np.unravel_index(np.argmax(nearest & (off == off.min())), miss.shape)
    best = (int(clki[index]), int(clkfb[index]), int(clkop[index]), fout[index], vco[index])
    clki_div, clkfb_div, clkop_div, fout, vco = best
    # half a period as the tool holds it: a single-precision time times a double VCO rate
    half_period = float(f32(1 / (float(fout) * 1e6) * 0.5))
    cphase = int(half_period * (float(vco) * 1e6))
    return Ecp5Pll(input_mhz, clki_div, clkfb_div, clkop_div, float(fout), float(vco), cphase)


def pll_settings(family: str, input_mhz: float, output_mhz: float) -> Ice40Pll | Ecp5Pll:
    if family == "ice40":
        return ice40_pll(input_mhz, output_mhz)
    if family == "ecp5":
        return ecp5_pll(input_mhz, output_mhz)
    raise ValueError(f"unknown family {family!r} (known: ice40, ecp5)")


def pll_at_most(family: str, input_mhz: float, output_mhz: float) -> Ice40Pll | Ecp5Pll:
    """The settings of the highest output the PLL makes at or below ``output_mhz`` (asking a
    little lower until the nearest is not above): a clock search must not step past the
    Fmax it aims under."""
    low = PLL_OUTPUT_MHZ[family][0]
    target = output_mhz
    while True:
        found = pll_settings(family, input_mhz, target)
        if found.output_mhz <= output_mhz * (1 + 1e-9):
            return found
        target = max(low, min(target, found.output_mhz) * 0.998)
        if target == low:
            return pll_settings(family, input_mhz, low)


#: How long the ``sync`` domain stays in reset after the PLL locks: the iCE40's block RAMs
#: read as zero for about 3 us after configuration (Amaranth's own reset waits as long).
RESET_HOLD_US = 15.0


class LockReset(wiring.Component):
    """The ``sync`` domain's reset from a PLL's lock: high while unlocked (asynchronously:
    before the lock the clock is not to be trusted) and ``hold_clocks`` clocks after.

    Parameters
    ----------
    hold_clocks : int

    Attributes
    ----------
    locked : In(1)
        The PLL's ``LOCK``.
    reset : Out(1)
        Drives the ``sync`` domain's reset; falls ``hold_clocks + 1`` rising edges of the
        ``sync`` clock after ``locked`` rises (the count, then its registered end).
    """

    def __init__(self, hold_clocks: int) -> None:
        if hold_clocks < 0:
            raise ValueError(f"hold_clocks must be >= 0, got {hold_clocks}")
        self.hold_clocks = hold_clocks
        super().__init__({"locked": In(1), "reset": Out(1)})

    def elaborate(self, platform):
        m = Module()
        # its own domain on the same clock, reset by the lock, not by ``sync``'s reset
        m.domains.hold = hold = ClockDomain("hold", local=True, async_reset=True)
        m.d.comb += [hold.clk.eq(ClockSignal("sync")), hold.rst.eq(~self.locked)]
        timer = Signal(range(self.hold_clocks + 1))
        ready = Signal()
        with m.If(timer == self.hold_clocks):
            m.d.hold += ready.eq(1)
        with m.Else():
            m.d.hold += timer.eq(timer + 1)
        m.d.comb += self.reset.eq(~ready)
        return m


class PllClock(Elaboratable):
    """The ``sync`` domain at a PLL's output, in reset until the PLL locks and
    :data:`RESET_HOLD_US` after.

    Parameters
    ----------
    family : str
        ``"ice40"`` or ``"ecp5"``.
    settings : Ice40Pll or Ecp5Pll
    pad : bool
        iCE40: the reference clock comes straight from the PLL's own pin
        (``SB_PLL40_PAD``, as on the iCEBreaker, whose 12 MHz pin is the PLL's); otherwise
        ``SB_PLL40_CORE`` takes it from the clock network.

    Attributes
    ----------
    locked : Signal
        The PLL's ``LOCK``.

    The board's default clock is requested here: without a pad, as an input; with one, as
    the bare pin.
    """

    def __init__(self, family: str, settings: Ice40Pll | Ecp5Pll, *, pad: bool = False) -> None:
        self.family, self.settings, self.pad = family, settings, pad
        self.locked = Signal()

    @property
    def frequency(self) -> float:
        """The clock the ``sync`` domain runs at (Hz)."""
        return self.settings.output_mhz * 1e6

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = sync = ClockDomain("sync")
        platform.add_clock_constraint(sync.clk, self.frequency)
        if self.family == "ice40":
            m.submodules.pll = self._ice40(platform)
        else:
            m.submodules.pll = self._ecp5(platform)
        hold_clocks = math.ceil(RESET_HOLD_US * self.settings.output_mhz)
        m.submodules.reset = reset = LockReset(hold_clocks)
        m.d.comb += [reset.locked.eq(self.locked), sync.rst.eq(reset.reset)]
        return m

    def _ice40(self, platform) -> Instance:
        s = self.settings
        params = {
            "p_FEEDBACK_PATH": "SIMPLE",
            "p_DIVR": s.divr,
            "p_DIVF": s.divf,
            "p_DIVQ": s.divq,
            "p_FILTER_RANGE": s.filter_range,
            "i_RESETB": 1,
            "i_BYPASS": 0,
            "o_PLLOUTGLOBAL": ClockSignal("sync"),
            "o_LOCK": self.locked,
        }
        if self.pad:
            pin = platform.request(platform.default_clk, dir="-")
            return Instance("SB_PLL40_PAD", i_PACKAGEPIN=pin.io, **params)
        pin = platform.request(platform.default_clk, dir="i")
        return Instance("SB_PLL40_CORE", i_REFERENCECLK=pin.i, **params)

    def _ecp5(self, platform) -> Instance:
        s = self.settings
        pin = platform.request(platform.default_clk, dir="i")
        return Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=f"{s.input_mhz:g}",
            a_FREQUENCY_PIN_CLKOP=f"{s.output_mhz:g}",
            a_ICP_CURRENT="12",
            a_LPF_RESISTOR="8",
            a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED",
            p_INTFB_WAKE="DISABLED",
            p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED",
            p_OUTDIVIDER_MUXA="DIVA",
            p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC",
            p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=s.clki_div,
            p_CLKOP_ENABLE="ENABLED",
            p_CLKOP_DIV=s.clkop_div,
            p_CLKOP_CPHASE=s.clkop_cphase,
            p_CLKOP_FPHASE=0,
            p_FEEDBK_PATH="CLKOP",
            p_CLKFB_DIV=s.clkfb_div,
            i_RST=0,
            i_STDBY=0,
            i_CLKI=pin.i,
            o_CLKOP=ClockSignal("sync"),
            i_CLKFB=ClockSignal("sync"),
            i_PHASESEL0=0,
            i_PHASESEL1=0,
            i_PHASEDIR=1,
            i_PHASESTEP=1,
            i_PHASELOADREG=1,
            i_PLLWAKESYNC=0,
            i_ENCLKOP=0,
            o_LOCK=self.locked,
        )
