"""The boards pulsegate builds for, the facts of their devices, and the network a board is
built with by default.

A :class:`Board` names an amaranth-boards platform, its FPGA family and device; the device
tables (:data:`MULTIPLIERS`, :data:`LOGIC_CELLS`, :data:`BLOCK_RAMS`, :data:`BLOCK_SHAPES`)
are what the lane plans (:mod:`boards.plans`) count against.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from amaranth_boards.ice40_hx8k_b_evn import ICE40HX8KBEVNPlatform
from amaranth_boards.icebreaker import ICEBreakerPlatform
from amaranth_boards.orangecrab_r0_2 import OrangeCrabR0_2_25FPlatform
from amaranth_boards.resources import UARTResource
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from golden_model.config import Config
from golden_model.schedule import compile_backprop

from .store import has_spram, spram_slots

__all__ = [
    "Board",
    "BOARDS",
    "board_config",
    "board_named",
    "store_slots",
    "sample_words",
    "BLOCK_RAM_SLOTS",
    "MULTIPLIERS",
    "LOGIC_CELLS",
    "BLOCK_RAMS",
    "BLOCK_SHAPES",
    "WORD_REGISTERS",
    "ICE40_TIMING_NOTE",
]

ICE40_TIMING_NOTE = "nextpnr-ice40 does not time SB_MAC16 internals (placeholder delays)"


class _OrangeCrabWithUart(OrangeCrabR0_2_25FPlatform):
    """OrangeCrab r0.2 (25F): its USB port goes to the FPGA, so the host link uses a USB-UART
    adapter on feather pins 0 (FPGA rx) and 1 (FPGA tx)."""

    resources = OrangeCrabR0_2_25FPlatform.resources + [
        UARTResource(0, rx="0", tx="1", conn=("io", 0)),
    ]


@dataclass(frozen=True)
class Board:
    name: str
    platform: type
    family: str  # "ice40" or "ecp5"
    device: str
    dsp: bool  # the device has hard multipliers
    notes: str = ""
    leds: tuple[str, ...] = field(default=("led",))
    pll_pad: bool = False  # the oscillator's pin is the PLL's own (iCE40 SB_PLL40_PAD)


BOARDS = {
    "icebreaker": Board(
        "icebreaker",
        ICEBreakerPlatform,
        "ice40",
        "iCE40UP5K",
        True,
        ICE40_TIMING_NOTE,
        pll_pad=True,
    ),
    "ice40-hx8k": Board(
        "ice40-hx8k",
        ICE40HX8KBEVNPlatform,
        "ice40",
        "iCE40HX8K",
        False,
        "no DSP blocks: multipliers are built from logic",
    ),
    "ulx3s-85f": Board("ulx3s-85f", ULX3S_85F_Platform, "ecp5", "LFE5U-85F", True),
    "orangecrab": Board(
        "orangecrab",
        _OrangeCrabWithUart,
        "ecp5",
        "LFE5U-25F",
        True,
        "host link on feather pins 0 (rx) and 1 (tx) through a USB-UART adapter",
        leds=("rgb_led",),
    ),
}


def board_config() -> Config:
    """The network boards are built with by default: XOR on 2-4-1 in 12-bit words (Q4.8
    currents and weights), small enough for the iCE40UP5K beside the host link
    (BENCHMARKS.md has what it takes and how it trains)."""
    return Config(
        layers=(2, 4, 1), current_width=12, current_frac=8, weight_width=12, weight_frac=8
    )


def board_named(name: str) -> Board:
    if name not in BOARDS:
        raise ValueError(f"unknown board {name!r} (known: {', '.join(BOARDS)})")
    return BOARDS[name]


def store_slots(cfg: Config, platform, slots: int | None = None) -> int:
    """Samples the link's store holds on ``platform``: ``slots`` if given; on an iCE40UP
    device as many as its SPRAMs take (up to the protocol's 255: the store costs no block RAM
    there), else 16 in block RAM."""
    if slots is not None:
        return slots
    fitting = spram_slots(cfg.current_width, sample_words(cfg))
    return fitting if has_spram(platform) and fitting >= BLOCK_RAM_SLOTS else BLOCK_RAM_SLOTS


#: Samples the link's store holds in block RAM.
BLOCK_RAM_SLOTS = 16


def sample_words(cfg: Config) -> int:
    """Input words of one training sample (the schedule's input groups)."""
    schedule = compile_backprop(cfg)
    return sum(schedule.group(name).size for name in schedule.inputs)


#: Hard multipliers per device (amaranth-boards' devices; the HX8K has none).
MULTIPLIERS = {"iCE40UP5K": 8, "iCE40HX8K": 0, "LFE5U-85F": 156, "LFE5U-25F": 28}
#: Logic cells per device: LUT4s (an iCE40 logic cell, an ECP5 TRELLIS_COMB).
LOGIC_CELLS = {"iCE40UP5K": 5280, "iCE40HX8K": 7680, "LFE5U-85F": 83640, "LFE5U-25F": 24288}
#: Block RAMs per device (SB_RAM40_4K, DP16KD).
BLOCK_RAMS = {"iCE40UP5K": 30, "iCE40HX8K": 32, "LFE5U-85F": 208, "LFE5U-25F": 56}
#: A block RAM's shapes (width, depth, write-enable group in bits) with one read and one
#: write port, per family. The ECP5's DP16KD enables 9-bit bytes, so a 16-bit weight lane
#: (its own write enable: the Hebbian unit writes whole words, the host one lane) takes two
#: of them, and a 36-bit block holds two lanes, not 2.25 (Yosys at W1=130 lanes: 65 DP16KD,
#: not 58); the iCE40's SB_RAM40_4K masks single bits.
BLOCK_SHAPES = {
    "ice40": ((2, 2048, 1), (4, 1024, 1), (8, 512, 1), (16, 256, 1)),
    "ecp5": ((9, 2048, 9), (18, 1024, 9), (36, 512, 9)),
}


#: Families whose boards keep a weight memory of one word in flip-flops, not block RAM
#: (``NetworkCore(word_registers=True)``): an ECP5 slice's flip-flops are beside its LUTs, so
#: a word there costs no logic cell; an iCE40 flip-flop takes a logic cell of its own.
WORD_REGISTERS = {"ecp5": True, "ice40": False}
