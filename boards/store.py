"""The host link's sample store: block RAM, or the iCE40UP5K's single-port SPRAM.

The store is written only by ``LOAD_WORD`` and read only by a run, and the link refuses
``LOAD_WORD`` while a run is active, so it never needs a read and a write in the same clock:
one port serves both, which is what an SPRAM offers. On the UP5K that keeps the store out of
the 30 block RAMs the weight memories need, and makes it large for free: one SPRAM (16,384
words of 16 bits) holds the protocol's 255 samples of the 2-4-1 network's 6 words, three hold
255 of digits' 148.
"""

from __future__ import annotations

from math import ceil
from typing import Literal

from amaranth.hdl import Array, ClockSignal, Const, Instance, Module, Mux, Signal, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

__all__ = [
    "BANK_DEPTH",
    "SPRAM_COUNT",
    "SPRAM_DEPTH",
    "SPRAM_WIDTH",
    "SampleStore",
    "has_spram",
    "spram_blocks",
    "spram_slots",
    "store_kind",
]

#: SB_SPRAM256KA: 16,384 words of 16 bits; an iCE40UP5K has four.
SPRAM_DEPTH = 16384
SPRAM_WIDTH = 16
SPRAM_COUNT = 4

StoreKind = Literal["auto", "block", "spram"]

#: Words of one bank of a block store read in two clocks: a DP16KD's 1,024 words of 18 bits.
BANK_DEPTH = 1024


def spram_blocks(width: int, depth: int) -> int:
    """SB_SPRAM256KA blocks a store of ``depth`` words of ``width`` bits takes (side by side
    for width, in banks for depth)."""
    return ceil(width / SPRAM_WIDTH) * ceil(depth / SPRAM_DEPTH)


def spram_slots(width: int, words_per_sample: int, limit: int = 255) -> int:
    """The most samples (up to ``limit``) whose store fits the iCE40UP5K's SPRAMs; 0 when
    not even one does."""
    slots = limit
    while slots > 0 and spram_blocks(width, slots * words_per_sample) > SPRAM_COUNT:
        slots -= 1
    return slots


def has_spram(platform) -> bool:
    """Whether ``platform``'s device is an iCE40UP (the family with SB_SPRAM256KA)."""
    return str(getattr(platform, "device", "")).upper().startswith("ICE40UP")


def store_kind(width: int, depth: int, platform, kind: StoreKind = "auto") -> str:
    """``block`` or ``spram``: where a store of ``depth`` words of ``width`` bits lives on
    ``platform`` (``auto``: SPRAM on an iCE40UP device when it fits its four blocks)."""
    if kind != "auto":
        return kind
    fits = spram_blocks(width, depth) <= SPRAM_COUNT
    return "spram" if has_spram(platform) and fits else "block"


class SampleStore(wiring.Component):
    """One port: a word is written at ``write_addr`` when ``we``, and ``rdata`` holds the
    word at the ``read_addr`` of the previous clock when it did not write. The two addresses
    are separate so that a write's bank select comes from the write address alone (SPRAM:
    ``WREN`` from registers, not through the choice of address; chip selects always on).

    Parameters
    ----------
    width : int
        Bits of a stored (signed) word.
    depth : int
        Words.
    kind : {"auto", "block", "spram"}
        ``block``: an Amaranth :class:`~amaranth.lib.memory.Memory` (block RAM on every
        family); ``spram``: SB_SPRAM256KA instances (iCE40UP only; simulate with the vendor
        model, :func:`toolchain.spram_model`); ``auto``: SPRAM when the platform is an
        iCE40UP device and the store fits its four blocks, else block RAM.
    latency : {1, 2}
        Clocks from ``read_addr`` to ``rdata``. 2 (block RAM only): the store is banks of
        :data:`BANK_DEPTH` words, each bank's output registered before the choice of bank,
        so that the block RAM's slow clock-to-out (5.8 ns on the ECP5) and the bank
        multiplexer are not one path.

    Attributes
    ----------
    read_addr, write_addr : In(range(depth))
    we : In(1)
    wdata : In(signed(width))
    rdata : Out(signed(width))
        ``latency`` clocks after ``read_addr``. After a clock that wrote, it is undefined (an
        SPRAM drives no data in a write): read only in clocks that do not write.

    Raises
    ------
    ValueError
        ``kind`` unknown, ``spram`` for a store larger than four SPRAMs, or a latency the
        kind does not have.
    """

    def __init__(
        self, width: int, depth: int, *, kind: StoreKind = "auto", latency: int = 1
    ) -> None:
        if kind not in ("auto", "block", "spram"):
            raise ValueError(f"store kind must be 'auto', 'block' or 'spram', got {kind!r}")
        if width < 1 or depth < 1:
            raise ValueError(f"a store needs width and depth >= 1, got {width} x {depth}")
        if latency not in (1, 2) or (latency == 2 and kind == "spram"):
            raise ValueError(
                f"store latency must be 1, or 2 for a block store, got {latency} ({kind!r})"
            )
        blocks = spram_blocks(width, depth)
        if kind == "spram" and blocks > SPRAM_COUNT:
            raise ValueError(
                f"store: {depth} words of {width} bits need {blocks} SPRAMs, "
                f"the iCE40UP5K has {SPRAM_COUNT}"
            )
        self.width, self.depth, self.kind, self.latency = width, depth, kind, latency
        super().__init__(
            {
                "read_addr": In(range(depth)),
                "write_addr": In(range(depth)),
                "we": In(1),
                "wdata": In(signed(width)),
                "rdata": Out(signed(width)),
            }
        )

    def resolved_kind(self, platform) -> str:
        """``block`` or ``spram``: what ``kind`` means on ``platform``."""
        return store_kind(self.width, self.depth, platform, self.kind)

    def elaborate(self, platform):
        m = Module()
        if self.latency == 2:
            if self.resolved_kind(platform) != "block":
                raise ValueError("store latency 2 needs a block store; this one is SPRAM")
            return self._banked(m)
        if self.resolved_kind(platform) == "block":
            m.submodules.memory = mem = memory.Memory(
                shape=signed(self.width), depth=self.depth, init=[]
            )
            write, read = mem.write_port(), mem.read_port()
            m.d.comb += [
                write.addr.eq(self.write_addr),
                write.data.eq(self.wdata),
                write.en.eq(self.we),
                read.addr.eq(self.read_addr),
                self.rdata.eq(read.data),
            ]
            return m
        columns = ceil(self.width / SPRAM_WIDTH)
        banks = ceil(self.depth / SPRAM_DEPTH)
        padded = Signal(columns * SPRAM_WIDTH)
        m.d.comb += padded.eq(self.wdata)
        word = Signal(14)
        address = Mux(self.we, self.write_addr, self.read_addr)
        m.d.comb += word.eq(address[: min(14, len(self.read_addr))])
        bank = self.read_addr[14:] if banks > 1 else Const(0)
        write_bank = self.write_addr[14:] if banks > 1 else Const(0)
        read_bank = Signal.like(bank, name="read_bank")  # the bank whose DATAOUT is valid
        m.d.sync += read_bank.eq(bank)
        outputs = []
        for b in range(banks):
            out = Signal(columns * SPRAM_WIDTH, name=f"bank{b}_data")
            for c in range(columns):
                m.submodules[f"spram_{b}_{c}"] = Instance(
                    "SB_SPRAM256KA",
                    i_ADDRESS=word,
                    i_DATAIN=padded[c * SPRAM_WIDTH : (c + 1) * SPRAM_WIDTH],
                    i_MASKWREN=Const(0b1111, 4),
                    i_WREN=self.we & (write_bank == b),
                    i_CHIPSELECT=Const(1),  # every bank reads; rdata takes read_bank's
                    i_CLOCK=ClockSignal(),
                    i_STANDBY=Const(0),
                    i_SLEEP=Const(0),
                    i_POWEROFF=Const(1),  # active low: powered
                    o_DATAOUT=out[c * SPRAM_WIDTH : (c + 1) * SPRAM_WIDTH],
                )
            outputs.append(out)
        data = outputs[0]
        for b in range(1, banks):
            data = Mux(read_bank == b, outputs[b], data)
        m.d.comb += self.rdata.eq(data[: self.width])
        return m

    def _banked(self, m: Module) -> Module:
        """Banks of :data:`BANK_DEPTH` words, each read into a register; the bank's number
        follows the read two clocks, and picks among the registers."""
        bits = (BANK_DEPTH - 1).bit_length()
        banks = ceil(self.depth / BANK_DEPTH)
        bank = Signal(range(max(banks, 2)))
        m.d.sync += bank.eq(self.read_addr[bits:])
        chosen = Signal.like(bank)
        m.d.sync += chosen.eq(bank)
        outputs = []
        for b in range(banks):
            size = min(BANK_DEPTH, self.depth - b * BANK_DEPTH)
            m.submodules[f"bank{b}"] = mem = memory.Memory(
                shape=signed(self.width), depth=size, init=[]
            )
            write, read = mem.write_port(), mem.read_port()
            out = Signal(signed(self.width), name=f"bank{b}_data")
            m.d.comb += [
                write.addr.eq(self.write_addr[:bits]),
                write.data.eq(self.wdata),
                write.en.eq(self.we & (self.write_addr[bits:] == b)),
                read.addr.eq(self.read_addr[:bits]),
            ]
            m.d.sync += out.eq(read.data)
            outputs.append(out)
        m.d.comb += self.rdata.eq(Array(outputs)[chosen])
        return m
