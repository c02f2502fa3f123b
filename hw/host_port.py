"""Weight access from outside the core: the port's signature and its address decoder.

A host names a weight by its index in the golden trace's order (matrix after matrix, row-major).
The core keeps each matrix in a memory of ``lanes``-weight words, ``W`` by rows and its
transposed copy by columns, so an index has to become a memory, an address and a lane (two of
each for a weight with a copy). A table of every index is large (one case per weight: about
2,600 LUT4 for the digits network), so :class:`WeightAddressDecoder` computes the spot with a
few subtractions a clock instead: host accesses are rare and slow (a link frame takes
thousands of clocks), so tens of clocks of decoding cost nothing that matters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden_model.schedule import Matrix

from .synapse import WeightLayout

__all__ = [
    "HostPort",
    "HostRequest",
    "serve_requests",
    "WeightAddressDecoder",
    "WordLaneDecoder",
    "weight_spots",
    "word_lane_spots",
]


def HostPort(weights: int, weight_width: int) -> wiring.Signature:
    """Weight and LFSR access from outside the core, seen from the side that drives it.

    A request (``read`` or ``write`` with ``addr``; a weight's index in trace order, a copy's
    index reaching its primary) is taken while ``ready``; ``done`` pulses when it is complete
    (a read's value on ``rdata``): a number of clocks that depends on the address, never on
    data. A write updates ``W`` and its transposed copy together, so no sequence of writes can
    make them differ. ``seed_write`` (while ``ready``) replaces the rounding LFSR state with
    ``seed``.
    """
    return wiring.Signature(
        {
            "addr": Out(range(max(weights, 2))),
            "wdata": Out(signed(weight_width)),
            "read": Out(1),
            "write": Out(1),
            "seed": Out(32),
            "seed_write": Out(1),
            "ready": In(1),
            "done": In(1),
            "rdata": In(signed(weight_width)),
            "lfsr_state": In(32),
        }
    )


@dataclass(frozen=True)
class HostRequest:
    """What :func:`serve_requests` tells the access unit around it: the request's ``value``
    and whether it is a ``write`` (both registered when it is taken), ``busy`` from its
    decode to its end, and ``phase[name]`` high in each named clock after the decode."""

    value: Signal
    write: Signal
    busy: Signal
    phase: Mapping[str, Signal]


def serve_requests(m: Module, host, decoder, idle, phases: Sequence[str]) -> HostRequest:
    """The host's weight requests through both cores' access units: one is taken while
    ``idle`` (the core neither runs nor starts) and no other is under way; its address goes
    to ``decoder`` (started then; ``valid`` ends the decode), then one clock for each of
    ``phases`` (named as the unit's FSM states), ``host.done`` pulsing after the last. The
    LFSR's port is the unit's own."""
    request = HostRequest(
        Signal.like(host.wdata, name="value"),
        Signal(name="writing"),
        Signal(name="busy"),
        {name: Signal(name=name) for name in phases},
    )
    m.d.comb += [host.ready.eq(idle & ~request.busy), decoder.addr.eq(host.addr)]
    m.d.sync += host.done.eq(0)
    with m.FSM(name="host"):
        with m.State("idle"):
            with m.If(host.ready & (host.read | host.write)):
                m.d.comb += decoder.start.eq(1)
                m.d.sync += [request.value.eq(host.wdata), request.write.eq(host.write)]
                m.next = "decode"
        with m.State("decode"):
            m.d.comb += request.busy.eq(1)
            with m.If(decoder.valid):
                m.next = phases[0]
        for name, following in zip(phases, [*phases[1:], "idle"], strict=True):
            with m.State(name):
                m.d.comb += [request.busy.eq(1), request.phase[name].eq(1)]
                if following == "idle":
                    m.d.sync += host.done.eq(1)
                m.next = following
    return request


def _table(values) -> Array:
    """Constants indexed by a signal (a value per matrix)."""
    return Array(Const(v) for v in values)


def _offsets(matrices: Sequence[Matrix]) -> list[int]:
    """Each matrix's first trace index."""
    offsets, total = [], 0
    for mat in matrices:
        offsets.append(total)
        total += mat.rows * mat.cols
    return offsets


def weight_spots(
    matrices: Sequence[Matrix], geometry: Mapping[str, WeightLayout]
) -> list[tuple[str, int, int, str | None, int, int]]:
    """For every weight in trace order: ``(matrix, address, lane, copy, address, lane)`` of
    the word that holds it and of its transposed copy (``copy`` is ``None`` when it has none).
    A copy's weight is reached through its primary's spot. The reference for the decoder."""
    copies = {m.transpose_of: m.name for m in matrices if m.transpose_of}
    rows_of = {m.name: m.rows for m in matrices}
    spots = []
    for mat in matrices:
        primary = mat.transpose_of or mat.name
        for r in range(mat.rows):
            for c in range(mat.cols):
                pr, pc = (c, r) if mat.transpose_of else (r, c)
                address, lane = geometry[primary].locate(pr, pc)
                copy = copies.get(primary)
                if copy is not None and pc < rows_of[copy]:
                    ca, cl = geometry[copy].locate(pc, pr)
                    spots.append((primary, address, lane, copy, ca, cl))
                else:
                    spots.append((primary, address, lane, None, 0, 0))
    return spots


class WeightAddressDecoder(wiring.Component):
    """The memory spots of a weight named by its trace index, a few subtractions a clock.

    Steps (one clock each): take the index; pick the matrix (index minus its offset); subtract
    the matrix's columns until a row remains (``r``, ``c``; a copy's weight swaps to its
    primary's ``(c, r)``); subtract the segment until the column's place remains (chunk ``q``);
    subtract the span until the row's line remains (row group ``g``, when words span rows); then
    add up addresses and lane. A primary stores ``(r, c)`` by rows at ``g * inner + q``, its
    copy by columns at ``q * copy_inner + g``; both at lane ``line * segment + c mod segment``
    (:class:`~hw.synapse.WeightLayout`). This is :func:`weight_spots`, computed.

    Parameters
    ----------
    matrices : sequence of Matrix
        The schedule's matrices, in trace order (a copy after its primary, or before).
    geometry : mapping of str to WeightLayout
        Each matrix's memory layout (a primary by rows, a copy by columns, same lanes).

    Attributes
    ----------
    addr : In(range(weights))
        The index, taken with ``start``.
    start : In(1)
    busy : Out(1)
        From the clock after ``start`` until the clock ``valid`` rises.
    valid : Out(1)
        The outputs hold the spot of the last index started, until the next ``start``.
        Fewer than ``2 * (rows + cols) + 5`` clocks of the largest matrix after ``start``.
    select, address, lane : Out
        The primary memory (index into the schedule's matrices), word and lane.
    has_copy : Out(1)
    copy_select, copy_address, copy_lane : Out
        The transposed copy's memory, word and lane (when ``has_copy``).
    """

    def __init__(self, matrices: Sequence[Matrix], geometry: Mapping[str, WeightLayout]) -> None:
        self.matrices = list(matrices)
        self.geometry = dict(geometry)
        self.weights = sum(m.rows * m.cols for m in self.matrices)
        names = [m.name for m in self.matrices]
        depth = max(g.depth for g in self.geometry.values())
        lanes = max(g.lanes for g in self.geometry.values())
        super().__init__(
            {
                "addr": In(range(max(self.weights, 2))),
                "start": In(1),
                "busy": Out(1),
                "valid": Out(1),
                "select": Out(range(max(len(names), 2))),
                "address": Out(range(max(depth, 2))),
                "lane": Out(range(max(lanes, 2))),
                "has_copy": Out(1),
                "copy_select": Out(range(max(len(names), 2))),
                "copy_address": Out(range(max(depth, 2))),
                "copy_lane": Out(range(max(lanes, 2))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        mats = self.matrices
        names = [mat.name for mat in mats]
        index = {name: k for k, name in enumerate(names)}
        copy_of = {mat.transpose_of: mat.name for mat in mats if mat.transpose_of}
        primary = [index[mat.transpose_of or mat.name] for mat in mats]

        table, offsets = _table, _offsets(mats)
        cols = table(mat.cols for mat in mats)
        is_copy = table(int(mat.transpose_of is not None) for mat in mats)
        # Per primary (indexed by a matrix's primary): lanes per line and lines per word,
        # words per row group, its copy.
        geo = [self.geometry[names[p]] for p in range(len(mats))]
        segment = table(g.segment for g in geo)
        span = table(g.span for g in geo)
        inner = table(g.inner for g in geo)
        copy_name = [copy_of.get(name) for name in names]
        has_copy = table(int(c is not None) for c in copy_name)
        copy_select = table(index[c] if c else 0 for c in copy_name)
        copy_rows = table(self.geometry[c].rows if c else 0 for c in copy_name)
        copy_inner = table(self.geometry[c].inner if c else 0 for c in copy_name)

        width = max(self.weights, 2).bit_length() + 1
        sel = Signal(range(max(len(mats), 2)))
        p = Signal.like(sel)
        rest = Signal(width)  # index within the matrix, then the column, then the lane
        r = Signal(width)
        pr, pc = Signal(width), Signal(width)
        q = Signal(width)
        group = Signal(width)
        address = Signal(width)
        copy_address = Signal(width)

        # The matrix: the last whose offset is at most the index (registered first: the
        # index comes from the host link's parser, a long path already).
        held = Signal.like(self.addr)
        pick = Signal.like(sel)
        for k, offset in enumerate(offsets):
            with m.If(held >= offset):
                m.d.comb += pick.eq(k)
        m.d.comb += [
            self.select.eq(p),
            self.address.eq(address),
            self.lane.eq(rest),
            self.has_copy.eq(has_copy[p] & (pc < copy_rows[p])),
            self.copy_select.eq(copy_select[p]),
            self.copy_address.eq(copy_address),
            self.copy_lane.eq(rest),
        ]
        with m.FSM():
            with m.State("idle"):
                m.d.comb += self.valid.eq(1)
                with m.If(self.start):
                    m.d.sync += held.eq(self.addr)
                    m.next = "matrix"
            with m.State("matrix"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [sel.eq(pick), rest.eq(held - table(offsets)[pick]), r.eq(0)]
                m.next = "row"
            with m.State("row"):
                m.d.comb += self.busy.eq(1)
                with m.If(rest >= cols[sel]):
                    m.d.sync += [rest.eq(rest - cols[sel]), r.eq(r + 1)]
                with m.Else():
                    # (r, rest) in this matrix; a copy's weight is its primary's (rest, r).
                    swap = is_copy[sel]
                    m.d.sync += [
                        p.eq(table(primary)[sel]),
                        pr.eq(Mux(swap, rest, r)),
                        pc.eq(Mux(swap, r, rest)),
                        rest.eq(Mux(swap, r, rest)),
                        q.eq(0),
                        address.eq(0),
                        copy_address.eq(0),
                    ]
                    m.next = "chunk"
            with m.State("chunk"):
                m.d.comb += self.busy.eq(1)
                with m.If(rest >= segment[p]):
                    m.d.sync += [rest.eq(rest - segment[p]), q.eq(q + 1)]
                with m.Elif(span[p] == 1):
                    # A row a word: the row group is the row, and the lane the column's place.
                    m.d.sync += [group.eq(pr), pr.eq(0)]
                    m.next = "multiply"
                with m.Else():
                    m.d.sync += group.eq(0)
                    m.next = "group"
            with m.State("group"):
                # Words spanning rows: row pr is line pr mod span of row group pr div span.
                m.d.comb += self.busy.eq(1)
                with m.If(pr >= span[p]):
                    m.d.sync += [pr.eq(pr - span[p]), group.eq(group + 1)]
                with m.Else():
                    m.next = "multiply"
            with m.State("multiply"):
                # address = group * inner + q; copy_address = q * copy_inner + group;
                # lane = line * segment + the column's place (pr holds the line).
                m.d.comb += self.busy.eq(1)
                with m.If(group != 0):
                    m.d.sync += [
                        address.eq(address + inner[p]),
                        copy_address.eq(copy_address + 1),
                        group.eq(group - 1),
                    ]
                with m.Elif(q != 0):
                    m.d.sync += [
                        address.eq(address + 1),
                        copy_address.eq(copy_address + copy_inner[p]),
                        q.eq(q - 1),
                    ]
                with m.Elif(pr != 0):
                    m.d.sync += [rest.eq(rest + segment[p]), pr.eq(pr - 1)]
                with m.Else():
                    m.next = "idle"
        return m


def word_lane_spots(
    matrices: Sequence[Matrix],
    bases: Mapping[str, int],
    words: Mapping[str, int],
    by_columns: frozenset[str],
    lanes: int,
) -> list[tuple[int, int]]:
    """For every weight in trace order: ``(address, lane)`` in one memory of ``lanes``-weight
    words where each primary is stored from ``bases[name]``, ``words[name]`` words a stored
    row, by rows (or by columns, if in ``by_columns``), and a transposed copy is its primary
    read the other way (:class:`hw.microcode.MemoryMap`). The reference for
    :class:`WordLaneDecoder`."""
    spots = []
    for mat in matrices:
        primary = mat.transpose_of or mat.name
        swap = mat.transpose_of is not None or mat.name in by_columns
        for r in range(mat.rows):
            for c in range(mat.cols):
                row, col = (c, r) if swap else (r, c)
                spots.append((bases[primary] + row * words[primary] + col // lanes, col % lanes))
    return spots


class WordLaneDecoder(wiring.Component):
    """The word and lane of a weight named by its trace index, in the memory core's one weight
    memory (:func:`word_lane_spots`): a subtraction a clock.

    Steps (one clock each): take the index; pick the matrix (index minus its offset); subtract
    the matrix's columns until the column remains, adding a stored row's words to the address
    each time; when the matrix is stored the other way (a transposed copy, or a primary by
    columns), count the column's stored rows into the address instead. A copy and its primary
    are one memory, so a copy's index reaches its primary's spot.

    Parameters
    ----------
    matrices : sequence of Matrix
        The schedule's matrices, in trace order.
    bases, words : mapping of str to int
        A primary's first word and its words a stored row.
    by_columns : frozenset of str
        Primaries stored column by column.
    lanes : int
        Weights a word. A power of two splits the place in the row into word and lane by
        wires; any other count by a subtraction of ``lanes`` a clock.
    depth : int
        Words of the memory.

    Attributes
    ----------
    addr : In(range(weights))
        The index, taken with ``start``.
    start : In(1)
    valid : Out(1)
        ``address`` and ``lane`` hold the spot of the last index started, until the next
        ``start``; low from the clock after ``start`` for ``rows + columns + 3`` clocks of
        its matrix at most (and ``place // lanes`` more where ``lanes`` is not a power of
        two).
    address : Out(range(depth)), lane : Out(range(lanes))
    """

    def __init__(
        self,
        matrices: Sequence[Matrix],
        bases: Mapping[str, int],
        words: Mapping[str, int],
        by_columns: frozenset[str],
        lanes: int,
        depth: int,
    ) -> None:
        if lanes < 1:
            raise ValueError(f"lanes must be >= 1, got {lanes}")
        self.matrices, self.lanes = list(matrices), lanes
        primary = [m.transpose_of or m.name for m in self.matrices]
        self.base_of = [bases[p] for p in primary]
        self.words_of = [words[p] for p in primary]
        self.swapped = [m.transpose_of is not None or m.name in by_columns for m in self.matrices]
        self.weights = sum(m.rows * m.cols for m in self.matrices)
        super().__init__(
            {
                "addr": In(range(max(self.weights, 2))),
                "start": In(1),
                "valid": Out(1),
                "address": Out(range(max(depth, 2))),
                "lane": Out(range(max(lanes, 2))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        mats = self.matrices
        lanes = self.lanes
        power = not lanes & (lanes - 1)
        shift = lanes.bit_length() - 1

        table, offsets = _table, _offsets(mats)
        cols, words = table(m_.cols for m_ in mats), table(self.words_of)
        swapped = table(int(s) for s in self.swapped)

        held = Signal.like(self.addr)  # registered: the index comes from a long path
        pick = Signal(range(max(len(mats), 2)))
        sel = Signal.like(pick)
        rest = Signal(range(max(self.weights, 2)))  # index in the matrix, then the column
        line = Signal.like(rest)  # the element's place in its stored row
        words_in = Signal.like(self.address)  # the stored rows' words before the element
        word_in_row = Signal.like(self.address)  # not a power of two: line // lanes
        for k, offset in enumerate(offsets):
            with m.If(held >= offset):
                m.d.comb += pick.eq(k)
        # The spot is summed into registers, a clock after the counts settle: the matrix's
        # base, the sum and the weight memory's address decode were one path (the ECP5's).
        if power:
            m.d.sync += [
                self.address.eq(table(self.base_of)[sel] + words_in + (line >> shift)),
                self.lane.eq(line[:shift] if shift else 0),
            ]
        else:
            m.d.sync += [
                self.address.eq(table(self.base_of)[sel] + words_in + word_in_row),
                self.lane.eq(line),
            ]
        # where the place in the row is known: split it into word and lane
        split = "settle" if power else "lane"
        with m.FSM():
            with m.State("idle"):
                m.d.comb += self.valid.eq(1)
                with m.If(self.start):
                    m.d.sync += held.eq(self.addr)
                    m.next = "matrix"
            with m.State("matrix"):
                m.d.sync += [
                    sel.eq(pick),
                    rest.eq(held - table(offsets)[pick]),
                    line.eq(0),
                    words_in.eq(0),
                    word_in_row.eq(0),
                ]
                m.next = "row"
            with m.State("row"):  # rest: the index in the row; line counts the rows
                with m.If(rest >= cols[sel]):
                    m.d.sync += [rest.eq(rest - cols[sel]), line.eq(line + 1)]
                    with m.If(~swapped[sel]):
                        m.d.sync += words_in.eq(words_in + words[sel])
                with m.Elif(swapped[sel]):
                    m.next = "column"  # the column is the stored row, the row its place
                with m.Else():
                    m.d.sync += line.eq(rest)
                    m.next = split
            with m.State("column"):
                with m.If(rest != 0):
                    m.d.sync += [rest.eq(rest - 1), words_in.eq(words_in + words[sel])]
                with m.Else():
                    m.next = split
            if not power:
                with m.State("lane"):
                    with m.If(line >= lanes):
                        m.d.sync += [line.eq(line - lanes), word_in_row.eq(word_in_row + 1)]
                    with m.Else():
                        m.next = "settle"
            with m.State("settle"):  # the counts hold: the spot's registers take them
                m.next = "idle"
        return m
