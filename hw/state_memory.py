"""The memory-centric core's state memory: every group's currents in ``lanes`` banks.

Where each group sits is :class:`hw.microprogram.StateMap`'s: a group starts on a fresh row,
element ``j`` of it in bank ``j % lanes`` of row ``base + j // lanes``, so a block of ``lanes``
consecutive elements is one read or one write. A flag per group makes the group read as zero
(a clear, or the leak of ``alpha = 1``) without a pass over it; the sequencer sets it, and
clears it when a pass has written the whole group again.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Array, Const, Module, Mux, Signal, signed
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .ports import block_write, zero_flags

__all__ = ["StateMemory", "debug_address"]


def debug_address(row: int, bank: int, lanes: int) -> int:
    """The debug port's address of ``(row, bank)``: the bank in the low bits, so no divider
    by a lane count that is not a power of two is needed."""
    return (row << ceil_log2(max(lanes, 2))) | bank


class StateMemory(wiring.Component):
    """``lanes`` banks of ``rows`` signed words, a zero flag per group.

    Parameters
    ----------
    lanes : int
        Banks, and elements a block read or write moves.
    width : int
        Bits of a current.
    row_groups : list of int
        The group each row belongs to (``rows = len(row_groups)``): the zero flag of a row.
    init : numpy array, shape ``(rows, lanes)``
        Initial contents (the constants, such as the bias population's 1.0).
    ram_style : str, optional
        Yosys's ``ram_style`` for the banks (``"distributed"``: ECP5 LUT RAM, so that a wide
        plan leaves the block RAM to its weights).
    read_flags : bool
        Whether a read applies the zero flags (``read_data``, ``read_zero``): without, a
        read returns the row as stored and ``read_zero`` is 0, for a program none of whose
        reads meets a set flag (:func:`hw.microcode.reads_flagged`); the debug port applies
        them either way.
    late_zero : bool
        ``read_zero`` a clock after ``read_word`` (the row's group and the flags registered
        before the flag is picked), for a user that registers the word first anyway: a deep
        group ROM's block RAM clock-to-out and the pick among many groups were one path.
    row_bits : int, optional
        Width of :attr:`write`'s row (its user's row fields; enough for ``rows`` unless
        given).

    Attributes
    ----------
    read_row : In(range(rows))
        Row to read; ``read_data`` holds it a clock later (zeros if its group is flagged).
    read_data : Out(ArrayLayout(signed(width), lanes))
    read_word : Out(ArrayLayout(signed(width), lanes)), read_zero : Out(1)
        The same row as it is stored, and whether its group reads as zero (a clock later
        with ``late_zero``): a user that can apply the flag later (the lanes, by a zero
        multiplier) keeps the flag's lookup off the data's path.
    write : In(:func:`hw.ports.block_write`)
        A block into a row (``row_bits`` wide; the bits above ``rows`` unused), the banks
        its ``lanes`` enable.
    flags : In(:func:`hw.ports.zero_flags`)
        Set or clear groups' zero flags, a bit a group (at the clock's end; a read in the
        same clock sees the flags as they were, and this clock's sets). A group in both is
        cleared: a word's preset flags come before it, its clears after its last slot.
    zero : Out(groups)
        The flags.
    debug_addr : In(range(rows << bank bits)), debug_data : Out(signed(width))
        One element (:func:`debug_address`), a clock after its address, flags applied.

    Timing: reads and writes are one clock each and independent (a read of a row written in
    the same clock returns the old contents).
    """

    def __init__(
        self,
        lanes: int,
        width: int,
        row_groups: list[int],
        init=None,
        *,
        ram_style: str | None = None,
        read_flags: bool = True,
        late_zero: bool = False,
        row_bits: int | None = None,
    ) -> None:
        if lanes < 1:
            raise ValueError(f"lanes must be >= 1, got {lanes}")
        self.lanes, self.width, self.late_zero = lanes, width, late_zero
        self.read_flags = read_flags
        self.row_groups = list(row_groups)
        self.rows = len(self.row_groups)
        self.groups = max(self.row_groups, default=0) + 1
        self.bank_bits = ceil_log2(max(lanes, 2))
        contents = np.zeros((self.rows, lanes), np.int64) if init is None else np.asarray(init)
        if contents.shape != (self.rows, lanes):
            raise ValueError(f"init: shape {contents.shape}, expected {(self.rows, lanes)}")
        attrs = {"ram_style": ram_style} if ram_style else None
        self.banks = [
            memory.Memory(
                shape=signed(width),
                depth=max(self.rows, 2),
                init=[int(v) for v in contents[:, bank]] + [0] * (self.rows < 2),
                attrs=attrs,
            )
            for bank in range(lanes)
        ]
        self.group_rom = memory.Memory(
            shape=range(max(self.groups, 2)),
            depth=max(self.rows, 2),
            init=self.row_groups + [0] * (self.rows < 2),
        )
        rows = max(self.rows, 2)
        super().__init__(
            {
                "read_row": In(range(rows)),
                "read_data": Out(data.ArrayLayout(signed(width), lanes)),
                "read_word": Out(data.ArrayLayout(signed(width), lanes)),
                "read_zero": Out(1),
                "write": In(block_write(row_bits or ceil_log2(rows), lanes, width)),
                "flags": In(zero_flags(max(self.groups, 1))),
                "zero": Out(max(self.groups, 1)),
                "debug_addr": In(range(rows << self.bank_bits)),
                "debug_data": Out(signed(width)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        flags = Signal(max(self.groups, 1))
        m.d.comb += self.zero.eq(flags)
        m.d.sync += flags.eq((flags | self.flags.set) & ~self.flags.clear)

        # The group of the row read: its flag as it was in the clock of the read, with the
        # flags set in that clock (a word's preset flags apply to its first read).
        m.submodules.group_rom = self.group_rom
        if self.read_flags:
            group_read = self.group_rom.read_port()
            m.d.comb += group_read.addr.eq(self.read_row)
            read_flags = Signal.like(flags)
            m.d.sync += read_flags.eq(flags | self.flags.set)
            read_zero = (read_flags >> group_read.data)[0]
        else:
            read_zero = Const(0, 1)
        if self.late_zero and self.read_flags:
            group_held, flags_held = Signal.like(group_read.data), Signal.like(read_flags)
            m.d.sync += [group_held.eq(group_read.data), flags_held.eq(read_flags)]
            m.d.comb += self.read_zero.eq((flags_held >> group_held)[0])
        else:
            m.d.comb += self.read_zero.eq(read_zero)

        debug_group = self.group_rom.read_port()
        debug_row = self.debug_addr >> self.bank_bits
        debug_bank = Signal(range(max(self.lanes, 2)))
        m.d.comb += debug_group.addr.eq(debug_row)
        m.d.sync += debug_bank.eq(self.debug_addr[: self.bank_bits])
        debug_words = []
        for bank, mem in enumerate(self.banks):
            m.submodules[f"bank{bank}"] = mem
            read = mem.read_port()
            write = mem.write_port()
            debug = mem.read_port()
            m.d.comb += [
                read.addr.eq(self.read_row),
                self.read_data[bank].eq(Mux(read_zero, 0, read.data)),
                self.read_word[bank].eq(read.data),
                write.addr.eq(self.write.row),
                write.data.eq(self.write.data[bank]),
                write.en.eq(self.write.lanes[bank]),
                debug.addr.eq(debug_row),
            ]
            debug_words.append(debug.data)
        debug_zero = (flags >> debug_group.data)[0]
        picked = Array(debug_words)[debug_bank] if self.lanes > 1 else debug_words[0]
        m.d.comb += self.debug_data.eq(Mux(debug_zero, 0, picked))
        return m
