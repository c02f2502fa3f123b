"""Formal properties of the host link (:class:`boards.link.HostLink`), proved like
:mod:`sim.formal`'s (SymbiYosys, Boolector): ``python -m boards.link_formal``.

The link's every input is free: any byte on the line in any clock, any state of the core
(running or not, a sample ending at any clock, any weight read back). For all of them:

* ``link-writes-in-range``: a sample store write lands inside the store (a slot and word it
  holds), and a weight read or write names a weight that exists.
* ``link-runs-its-count``: a run begins with no ABORT pending, and one that no ABORT reached
  starts exactly the samples its START asked for (the core ends each sample it started
  once, at any clock after; a sample never ends unstarted). ``-latency2``: the same with
  the store read in two clocks (the ECP5 boards').
* ``link-streams-in-order``: every word the core takes was read at the run's next place in
  the store, whether the core takes each word at once or refuses some (``-latency2``: the
  ECP5 boards' store, which reads a refused word again).
"""

from __future__ import annotations

import sys

from amaranth.hdl import Assert, Assume, Elaboratable, Module, Signal, Value
from amaranth.lib.wiring import In

from golden_model.schedule import compile_backprop
from hw.mcore import MemoryCore
from sim.formal import Property, main

from .catalogue import board_config
from .link import HostLink

__all__ = ["LINK_PROPERTIES", "LinkWritesInRange", "LinkRunsItsCount", "LinkStreamsInOrder"]


class LinkWritesInRange(Elaboratable):
    """The XOR board's link (12-bit, a store of 3 slots of 6 words, the memory core's 21
    weights: neither count a power of two, so an address field can name more than exists)."""

    SLOTS = 3

    def __init__(self, link: type[HostLink] = HostLink, store_latency: int = 1) -> None:
        cfg = board_config()
        # the core only tells the link its sizes; it is not part of the harness
        core = MemoryCore(compile_backprop(cfg), cfg, 2, debug=False, host_port=True)
        core._MustUse__silence = True
        self.link = link(
            core, divisor=2, slots=self.SLOTS, store="block", store_latency=store_latency
        )
        self.inputs = {}
        for path, member, value in self.link.signature.flatten(self.link):
            if member.flow == In:
                name = "__".join(map(str, path))
                port = Value.cast(value)  # a free signal of the member's bits
                self.inputs[name] = (Signal(port.shape(), name=name), port)

    def ports(self) -> list[Signal]:
        return [free for free, _ in self.inputs.values()]

    def elaborate(self, platform):
        m = Module()
        m.submodules.link = link = self.link
        m.d.comb += [port.eq(free) for free, port in self.inputs.values()]
        store = link.store
        m.d.comb += Assert(~store.we | (store.write_addr < link.slots * link.input_words))
        host = link.host
        m.d.comb += Assert(~(host.read | host.write) | (host.addr < link.weights))
        return m


class LinkRunsItsCount(LinkWritesInRange):
    """:class:`LinkWritesInRange`'s link, its run watched: samples started between the run's
    first and last clock against the count it began with, and whether an ABORT was pending
    in any clock of it."""

    def elaborate(self, platform):
        m = Module()
        m.submodules.link = link = self.link
        m.d.comb += [port.eq(free) for free, port in self.inputs.values()]
        # the core: a sample ends (once) only after it started
        in_flight = Signal()
        with m.If(link.start):
            m.d.sync += in_flight.eq(1)
        with m.Elif(self.inputs["sample_done"][0]):
            m.d.sync += in_flight.eq(0)
        m.d.comb += Assume(~self.inputs["sample_done"][0] | in_flight)
        was_active, count, started, aborted = Signal(), Signal(16), Signal(17), Signal()
        m.d.sync += was_active.eq(link.run_active)
        beginning = link.run_active & ~was_active
        ending = was_active & ~link.run_active
        m.d.comb += Assert(~beginning | ~link.abort)
        with m.If(beginning):
            m.d.sync += [count.eq(link.run_count), started.eq(link.start), aborted.eq(0)]
        with m.Elif(link.run_active):
            m.d.sync += [started.eq(started + link.start), aborted.eq(aborted | link.abort)]
        m.d.comb += Assert(~ending | aborted | (started == count))
        return m


class LinkStreamsInOrder(LinkWritesInRange):
    """:class:`LinkWritesInRange`'s link, its load stream watched: every word the core takes
    was read from the store at the run's next place (its samples sit one after another from
    slot 0), whenever the core takes or refuses words."""

    def elaborate(self, platform):
        m = Module()
        m.submodules.link = link = self.link
        m.d.comb += [port.eq(free) for free, port in self.inputs.values()]
        store = link.store
        # the address of the read whose data is on the store's output now
        delayed = store.read_addr
        for k in range(store.latency):
            later = Signal.like(store.read_addr, name=f"read_addr_{k + 1}")
            m.d.sync += later.eq(delayed)
            delayed = later
        was_active, taken = Signal(), Signal(16)
        m.d.sync += was_active.eq(link.run_active)
        with m.If(link.run_active & ~was_active):
            m.d.sync += taken.eq(0)
        with m.If(link.load.valid & link.load.ready):
            m.d.comb += Assert(delayed == taken)
            m.d.sync += taken.eq(taken + 1)
        return m


LINK_PROPERTIES: dict[str, Property] = {
    p.name: p
    for p in (
        Property(
            "link-writes-in-range",
            lambda unit: LinkWritesInRange(unit or HostLink),
            "prove",
            16,
            "k-induction (closes at depth 4; 16 so that the base case also reaches a whole "
            "WRITE_WEIGHT or LOAD_WORD frame and its write, a byte a clock); any core state",
        ),
        Property(
            "link-runs-its-count",
            lambda unit: LinkRunsItsCount(unit or HostLink),
            "bmc",
            40,
            "bounded: every byte sequence and core timing of 40 clocks, a START frame and a "
            "run of up to three samples of six words (the store's), with or without an ABORT",
        ),
        Property(
            "link-runs-its-count-latency2",
            lambda unit: LinkRunsItsCount(unit or HostLink, store_latency=2),
            "bmc",
            44,
            "the same with the ECP5 boards' store, read in two clocks (a word the core does "
            "not take read again), any load.ready: 44 clocks, a clock more a sample",
        ),
        *(
            Property(
                f"link-streams-in-order{suffix}",
                lambda unit, latency=latency: LinkStreamsInOrder(unit or HostLink, latency),
                "bmc",
                36,
                f"bounded: 36 clocks, a START frame and the words of two samples, the store "
                f"read in {latency} clock(s), the core taking or refusing any word",
            )
            for latency, suffix in ((1, ""), (2, "-latency2"))
        ),
    )
}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], LINK_PROPERTIES))
