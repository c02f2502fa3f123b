"""The memory-centric core's weight memory: words of ``simd`` weights, in banks where it is deep.

A deep memory of wide words is many block RAMs a word deep and a multiplexer over them; the
block RAM's clock-to-out, the multiplexer and the route across the chip to the lanes were one
path (400-400-10 at 8 x 32 on the ECP5: the critical one, 65 MHz). In banks, each bank's word is
registered where it leaves its block RAMs and the multiplexer starts from those registers: a
clock more a read (:func:`hw.microcode.operand_stages`), the same contents and writes.
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Signal, Value, signed
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .ports import word_write

__all__ = ["WeightMemory", "weight_banks"]


def weight_banks(depth: int, bank_rows: int) -> int:
    """Banks of ``bank_rows`` words a memory of ``depth`` words takes (one if ``bank_rows`` is
    0: not banked)."""
    if bank_rows < 0:
        raise ValueError(f"bank_rows must be >= 0, got {bank_rows}")
    return -(-depth // bank_rows) if bank_rows else 1


class WeightMemory(wiring.Component):
    """Words of ``simd`` signed weights, one read port for the lanes and the host, one write
    port, and a read port for the debug port.

    Parameters
    ----------
    simd : int
        Weights a word.
    width : int
        Bits of a weight.
    init : list of list of int
        The words' initial weights (``depth = len(init)``, at least 2).
    bank_rows : int
        Words a bank (a power of two); 0 or ``>= depth``: one memory, read in one clock.
    granularity : int or None
        The write port's granularity: ``None`` (a whole word, one enable) or 1 (an enable a
        weight).
    debug : bool
        Whether the debug read port exists.
    addr_bits : int, optional
        Width of :attr:`write`'s address (its user's; enough for ``depth`` unless given).

    Attributes
    ----------
    read_addr : In(range(depth))
    read_data : Out(ArrayLayout(signed(width), simd))
        The word :attr:`latency` clocks after its address.
    write : In(:func:`hw.ports.word_write`)
        ``addr`` (``addr_bits`` wide), ``data``, ``en`` (one, or one a weight): written at the
        clock's end (a read of the same word in that clock sees the old one).
    debug_addr : In(range(depth)), debug_data : Out(ArrayLayout(signed(width), simd))
        (``debug``) A word a clock after its address, from every bank's second port.

    Timing: :attr:`latency` is 1, or 2 in banks (each bank's word registered before the bank
    multiplexer; the bank's choice follows the address).
    """

    def __init__(
        self,
        simd: int,
        width: int,
        init: list[list[int]],
        *,
        bank_rows: int = 0,
        granularity: int | None = None,
        debug: bool = False,
        addr_bits: int | None = None,
    ) -> None:
        depth = max(len(init), 2)
        if bank_rows and bank_rows & (bank_rows - 1):
            raise ValueError(f"bank_rows must be a power of two, got {bank_rows}")
        self.simd, self.width, self.depth, self.debug = simd, width, depth, debug
        self.banks = weight_banks(depth, bank_rows) if bank_rows < depth else 1
        self.bank_rows = bank_rows if self.banks > 1 else depth
        self.latency = 2 if self.banks > 1 else 1
        self.granularity = granularity
        self._init = list(init)
        word = data.ArrayLayout(signed(width), simd)
        ports = {
            "read_addr": In(range(depth)),
            "read_data": Out(word),
            "write": In(
                word_write(addr_bits or ceil_log2(depth), word, 1 if granularity is None else simd)
            ),
        }
        if debug:
            ports |= {"debug_addr": In(range(depth)), "debug_data": Out(word)}
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        word = data.ArrayLayout(signed(self.width), self.simd)
        banked = self.banks > 1
        row_bits = ceil_log2(self.bank_rows)  # one memory: the whole address
        # the bank a read chose, a clock on (the memory's read) and two on (its register)
        chosen, picked = Signal(range(self.banks)), Signal(range(self.banks))
        m.d.sync += [chosen.eq(self.read_addr[row_bits:]), picked.eq(chosen)]
        debug_chosen = Signal(range(self.banks))
        if self.debug:
            m.d.sync += debug_chosen.eq(self.debug_addr[row_bits:])
        words, debug_words = [], []
        for b in range(self.banks):
            contents = self._init[b * self.bank_rows : (b + 1) * self.bank_rows]
            rows = min(self.bank_rows, self.depth - b * self.bank_rows)
            mem = memory.Memory(shape=word, depth=max(rows, 2), init=contents)
            m.submodules[f"bank{b}"] = mem
            read, write = mem.read_port(), mem.write_port(granularity=self.granularity)
            if banked:  # registered where it leaves the bank's blocks
                held = Signal(word, name=f"bank{b}_word")
                m.d.sync += held.eq(read.data)
                words.append(held)
            else:
                words.append(read.data)
            here = self.write.addr[row_bits:] == b
            m.d.comb += [
                read.addr.eq(self.read_addr[:row_bits]),
                write.addr.eq(self.write.addr[:row_bits]),
                write.data.eq(self.write.data),
                write.en.eq(Mux(here, self.write.en, 0)),
            ]
            if self.debug:
                port = mem.read_port()
                m.d.comb += port.addr.eq(self.debug_addr[:row_bits])
                debug_words.append(port.data)
        m.d.comb += self.read_data.eq(Array(Value.cast(w) for w in words)[picked])
        if self.debug:
            m.d.comb += self.debug_data.eq(Array(Value.cast(d) for d in debug_words)[debug_chosen])
        return m
