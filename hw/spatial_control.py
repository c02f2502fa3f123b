"""The spatial core's control, outside its datapath: the input load, the tick's control
states, the saturation counters, the host's weight access and the debug port.

:class:`~hw.network.NetworkCore` joins these to its populations, synapse units and learning
rules; each takes explicit sizes and widths, not the whole configuration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from golden_model.schedule import Matrix

from .fixedpoint import balanced_sum, clamp_unsigned
from .host_port import HostPort, WeightAddressDecoder, serve_requests
from .sequencer import port_name
from .synapse import LearnPort, WeightLayout

__all__ = ["InputLoader", "TickControl", "SaturationCounter", "HostWeightAccess", "DebugPort"]


class InputLoader(wiring.Component):
    """Input words, in order, into the input groups' registers while the core is idle.

    Parameters
    ----------
    size : int
        Input words a sample (every input group's elements, in the schedule's order).
    width : int
        Bits a word.

    Attributes
    ----------
    load : In(stream.Signature(signed(width)))
        The words; ready while not ``running``.
    running : In(1)
    write : Out(size)
        One-hot: element ``j`` takes ``word`` at the clock's end.
    word : Out(signed(width))

    Timing: a word is written in the clock it is accepted; the index wraps after the last.
    """

    def __init__(self, size: int, width: int) -> None:
        self.size = size
        super().__init__(
            {
                "load": In(stream.Signature(signed(width))),
                "running": In(1),
                "write": Out(max(size, 1)),
                "word": Out(signed(width)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        index = Signal(range(max(self.size, 2)), name="load_index")
        m.d.comb += [self.load.ready.eq(~self.running), self.word.eq(self.load.payload)]
        with m.If(self.load.valid & self.load.ready):
            for j in range(self.size):
                m.d.comb += self.write[j].eq(index == j)
            m.d.sync += index.eq(Mux(index == self.size - 1, 0, index + 1))
        return m


class TickControl(wiring.Component):
    """The states of one tick of the spatial core: issue, learn (the rules at once or in
    turns), sweep, step, then the boundary where the state is valid.

    Parameters
    ----------
    rules : int
        Learning rules (0: no learn states).
    in_turns : bool
        The rules learn one after another (stochastic rounding, or one multiplier pool):
        ``learn_index`` says which, ``handoff`` passes to ``after``.

    Attributes
    ----------
    tick_valid, first_tick : In(1)
        From the sequencer: a tick is ready; it is its phase's first.
    learns_now, sweeps_now, copying : In(1)
        What the tick does (a rule learns, a matrix is swept, copies are written).
    start_at, after : In(range(rules + 1))
        In turns: the first enabled rule; the next after the one learning.
    handoff : In(1)
        In turns: the rule learning names its last word and another follows.
    rules_idle, rules_naming : In(1)
        Every rule is idle; some rule names a word this clock.
    sweeps_finished, steps_finished : In(1)
        Every synapse unit, every population is done or idle.
    hold : In(1)
        Keep the boundary (the testbench reads the state).
    issuing : Out(1)
        The clock a tick begins (copies are written now, in its first tick).
    first : Out(1)
        The tick being run is its phase's first (registered at issue).
    step_tick, synapse_start, learn_start : Out(1)
        Pulses: every population steps; the tick's sweep starts; ``learn_target`` starts.
    learn_index, learn_target : Out(range(rules + 1))
        In turns: the rule learning; the rule ``learn_start`` starts.
    tick_done, state_valid, pause : Out(1)
        To the sequencer and the testbench: the boundary is reached; the state is valid;
        the sequencer waits (``hold``).
    """

    def __init__(self, rules: int, in_turns: bool) -> None:
        self.rules, self.in_turns = rules, in_turns
        index = range(rules + 1)
        super().__init__(
            {
                "tick_valid": In(1),
                "first_tick": In(1),
                "learns_now": In(1),
                "sweeps_now": In(1),
                "copying": In(1),
                "start_at": In(index),
                "after": In(index),
                "handoff": In(1),
                "rules_idle": In(1),
                "rules_naming": In(1),
                "sweeps_finished": In(1),
                "steps_finished": In(1),
                "hold": In(1),
                "issuing": Out(1),
                "first": Out(1),
                "step_tick": Out(1),
                "synapse_start": Out(1),
                "learn_start": Out(1),
                "learn_index": Out(index),
                "learn_target": Out(index),
                "tick_done": Out(1),
                "state_valid": Out(1),
                "pause": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        learning = self.rules > 0
        turns = learning and self.in_turns

        def issue():
            """Begin the tick the sequencer raises ``tick_valid`` for, in that clock."""
            m.d.comb += self.issuing.eq(1)
            m.d.sync += self.first.eq(self.first_tick)
            # A sweep starts at once (it fetches its first operands a clock after naming the
            # word, when a copy written now is in its register); learning a clock later, as
            # a rule fetches in the clock it names a word.
            with m.If(self.learns_now):
                if learning:
                    m.next = "learn"
                if turns:
                    m.d.sync += self.learn_index.eq(self.start_at)
            with m.Elif(self.sweeps_now):
                m.d.comb += self.synapse_start.eq(1)
                m.next = "sweeping"
            with m.Elif(self.copying):
                m.next = "step"  # identity sums latch a clock after the copies
            with m.Else():
                m.d.comb += self.step_tick.eq(1)
                m.next = "stepping"

        with m.FSM():
            with m.State("idle"):
                with m.If(self.tick_valid):
                    issue()
            if learning:  # entered only in ticks where some rule learns
                with m.State("learn"):
                    m.d.comb += self.learn_start.eq(1)
                    if turns:
                        m.d.comb += self.learn_target.eq(self.learn_index)
                    m.next = "learning"
                with m.State("learning"):
                    if turns:
                        with m.If(self.handoff):
                            m.d.comb += [self.learn_start.eq(1), self.learn_target.eq(self.after)]
                            m.d.sync += self.learn_index.eq(self.after)
                    # On a clock after the last word is written: a sweep reads its first
                    # word in the clock it starts, so it reads the new weights.
                    naming = self.rules_naming | self.learn_start
                    with m.If(self.sweeps_now):
                        with m.If(self.rules_idle & ~self.learn_start):
                            m.d.comb += self.synapse_start.eq(1)
                            m.next = "sweeping"
                    with m.Elif(~naming):
                        # Every operand is in the rules' registers: the populations may step
                        # while the last words drain (they read no weight), and the boundary
                        # waits for both.
                        m.d.comb += self.step_tick.eq(1)
                        m.next = "draining"
                with m.State("draining"):
                    # A clock after the last write: its saturation events, registered on their
                    # way to the shared counter, are counted by then.
                    with m.If(self.rules_idle & self.steps_finished):
                        m.d.comb += self.tick_done.eq(1)
                        m.next = "boundary"
            with m.State("step"):
                m.d.comb += self.step_tick.eq(1)
                m.next = "stepping"
            with m.State("sweeping"):
                # The populations step from the clock after the last z is written.
                with m.If(self.sweeps_finished):
                    m.d.comb += self.step_tick.eq(1)
                    m.next = "stepping"
            with m.State("stepping"):
                # The boundary follows the clock the last currents are written.
                with m.If(self.steps_finished):
                    m.d.comb += self.tick_done.eq(1)
                    m.next = "boundary"
            with m.State("boundary"):
                # Unless the core is held here, the sequencer issues the next tick in this
                # clock (its mask captures read the boundary's currents) and it begins at
                # once: nothing of it is written before the clock ends.
                m.d.comb += [self.state_valid.eq(1), self.pause.eq(self.hold)]
                with m.If(~self.hold):
                    with m.If(self.tick_valid):
                        issue()
                    with m.Else():
                        m.next = "idle"
        return m


class SaturationCounter(wiring.Component):
    """One kind's saturation events of every block, summed a clock and counted.

    Parameters
    ----------
    early : sequence of int
        Bits of each event count that arises two clocks or more before a tick's boundary:
        registered where it arises, so the sum starts at flip-flops.
    late : sequence of int
        Bits of each count that arises in a tick's last clock (the populations' steps).
    width : int
        Bits of the saturating counter.

    Attributes
    ----------
    early, late : In(StructLayout)
        The counts of the clock, ``e0``, ``e1``, ... in the order given.
    count : Out(64)
        The counter with the events still pending: a tick's count is complete in the clock
        after its last event (the boundary's).

    Timing: the clock's events are summed into a register and added a clock later, so the
    counter's carry chain starts at a flip-flop, not at the end of a datapath's flag.
    """

    def __init__(self, early: Sequence[int], late: Sequence[int], width: int) -> None:
        self.width = width

        def layout(widths):
            return data.StructLayout({f"e{k}": unsigned(w) for k, w in enumerate(widths)})

        self.n_early, self.n_late = len(early), len(late)
        super().__init__({"early": In(layout(early)), "late": In(layout(late)), "count": Out(64)})

    def elaborate(self, platform):
        m = Module()
        counter = Signal(self.width, name="counter")
        now = []
        for k in range(self.n_early):
            value = self.early[f"e{k}"]
            held = Signal(value.shape(), name=f"early_event{k}")
            m.d.sync += held.eq(value)
            now.append(held)
        now += [self.late[f"e{k}"] for k in range(self.n_late)]
        if not now:
            m.d.comb += self.count.eq(counter)
            return m
        events_now = balanced_sum(now)
        pending = Signal(events_now.shape(), name="pending")
        m.d.sync += [
            pending.eq(events_now),
            counter.eq(clamp_unsigned(counter + pending, self.width)),
        ]
        m.d.comb += self.count.eq(clamp_unsigned(counter + pending, self.width))
        return m


class HostWeightAccess(wiring.Component):
    """The host's reads and writes of single weights while the core is idle, between the
    learning rules and the weight memories.

    A write goes to ``W`` and to its transposed copy in the same clock, whichever of the two
    was addressed, so ``W == W^T`` holds after any sequence of host writes. It writes one lane
    of each word (the memories' lane write enables): no read-modify-write.

    Parameters
    ----------
    matrices : sequence of Matrix
        Every matrix, in trace order.
    geometry : mapping of str to WeightLayout
        Where each matrix keeps its weights.
    learned : set of str
        The matrices a learning rule writes while the core runs.

    Attributes
    ----------
    host : In(HostPort)
        The requests (:func:`hw.host_port.HostPort`).
    running, start : In(1)
        The core's state: requests wait while it runs or starts.
    memory_<matrix> : Out(LearnPort)
        The access to each matrix's memory (the unit's ``learn`` port).
    rule_<matrix> : In(LearnPort)
        A learned matrix's rule, passed through while the host is not using the memory.
    lfsr_load, lfsr_seed : Out(1), Out(32); lfsr_state : In(32)
        The rounding LFSR's state, written by ``host.seed_write``.

    Timing: a request takes the decoder's clocks, then one clock to present the address
    (a write happens then) and one for the read's word; ``done`` follows.
    """

    def __init__(
        self,
        matrices: Sequence[Matrix],
        geometry: Mapping[str, WeightLayout],
        learned: set[str],
    ) -> None:
        self.matrices, self.geometry, self.learned = list(matrices), dict(geometry), set(learned)
        self.weight_width = next(iter(self.geometry.values())).width
        n_weights = sum(mat.rows * mat.cols for mat in self.matrices)
        ports = {
            "host": In(HostPort(n_weights, self.weight_width)),
            "running": In(1),
            "start": In(1),
            "lfsr_load": Out(1),
            "lfsr_seed": Out(32),
            "lfsr_state": In(32),
        }
        for mat in self.matrices:
            geo = self.geometry[mat.name]
            port = LearnPort(_address_bits(geo), geo.word_width, geo.lanes)
            ports[f"memory_{port_name(mat.name)}"] = Out(port)
            if mat.name in self.learned:
                ports[f"rule_{port_name(mat.name)}"] = In(port)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        ww = self.weight_width
        m.submodules.host_decoder = decoder = WeightAddressDecoder(self.matrices, self.geometry)
        host = self.host
        # a clock to present the address (a write happens then), one for the read's word
        request = serve_requests(
            m, host, decoder, ~self.running & ~self.start, phases=("access", "data")
        )
        value, writing, busy = request.value, request.write, request.busy
        access, answer = request.phase["access"], request.phase["data"]
        for k, mat in enumerate(self.matrices):
            port = getattr(self, f"memory_{port_name(mat.name)}")
            count = self.geometry[mat.name].lanes
            mine = busy & (decoder.select == k)
            theirs = busy & decoder.has_copy & (decoder.copy_select == k)
            at = Mux(mine, decoder.address, decoder.copy_address)
            at_lane = Mux(mine, decoder.lane, decoder.copy_lane)
            with m.If(mine | theirs):
                m.d.comb += [
                    port.re.eq(1),
                    port.raddr.eq(at),
                    port.waddr.eq(at),
                    port.wdata.eq(value.replicate(count)),
                    port.we.eq(Mux(access & writing, Const(1, count) << at_lane, 0)),
                ]
            if mat.name in self.learned:
                rule = getattr(self, f"rule_{port_name(mat.name)}")
                with m.Else():
                    m.d.comb += [
                        port.re.eq(rule.re),
                        port.raddr.eq(rule.raddr),
                        port.waddr.eq(rule.waddr),
                        port.wdata.eq(rule.wdata),
                        port.we.eq(rule.we),
                    ]
                m.d.comb += rule.rdata.eq(port.rdata)
            with m.If(mine & answer):
                lanes = [port.rdata[i * ww : (i + 1) * ww] for i in range(count)]
                m.d.sync += host.rdata.eq(Array(lanes)[at_lane].as_signed())
        m.d.comb += [
            self.lfsr_load.eq(host.seed_write & host.ready),
            self.lfsr_seed.eq(host.seed),
            host.lfsr_state.eq(self.lfsr_state),
        ]
        return m


def _address_bits(geo: WeightLayout) -> int:
    """Bits of a weight memory's address (as :class:`~hw.synapse.SynapseUnit`'s ports)."""
    return ceil_log2(max(geo.depth, 2))


class DebugPort(wiring.Component):
    """Any state word of the spatial core, one clock after its address, in the golden trace's
    order: registers (currents, masks), weights through each memory's debug read port, then
    the counters.

    Parameters
    ----------
    registers : int
        Words held in registers (every group's elements, then every mask bit).
    width : int
        Bits of a register word (a current's; masks are 0 or 1).
    weights : sequence of (WeightLayout, list of (int, int))
        Each matrix's memory and, for its weights in trace order, ``(address, lane)``.
    counters : int
        Words after the weights (saturation counters, samples, the LFSR).

    Attributes
    ----------
    addr : In(range(words)); data : Out(signed(64))
        The address and its word a clock later.
    register : In(ArrayLayout(signed(width), registers))
    counter : In(ArrayLayout(unsigned(64), counters))
    weight_addr<k> : Out(address bits); weight_data<k> : In(word width)
        Matrix ``k``'s debug read port (its word a clock after the address).
    """

    def __init__(
        self,
        registers: int,
        width: int,
        weights: Sequence[tuple[WeightLayout, list[tuple[int, int]]]],
        counters: int,
    ) -> None:
        self.n_registers, self.weights, self.n_counters = registers, list(weights), counters
        words = registers + sum(len(spots) for _, spots in self.weights) + counters
        ports = {
            "addr": In(range(words)),
            "data": Out(signed(64)),
            "register": In(data.ArrayLayout(signed(width), max(registers, 1))),
            "counter": In(data.ArrayLayout(unsigned(64), counters)),
        }
        for k, (geo, _) in enumerate(self.weights):
            ports[f"weight_addr{k}"] = Out(_address_bits(geo))
            ports[f"weight_data{k}"] = In(geo.word_width)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        address = Signal.like(self.addr)
        m.d.sync += address.eq(self.addr)
        weight_value = Signal(signed(64))
        offset = self.n_registers
        for k, (geo, spots) in enumerate(self.weights):
            count = len(spots)
            local = self.addr - offset
            m.d.comb += getattr(self, f"weight_addr{k}").eq(
                Array(Const(a) for a, _ in spots)[local[: max(1, count.bit_length())]]
            )
            later = address - offset
            lane = Array(Const(lane) for _, lane in spots)[later[: max(1, count.bit_length())]]
            word = getattr(self, f"weight_data{k}")
            with m.If((address >= offset) & (address < offset + count)):
                m.d.comb += weight_value.eq(word.word_select(lane, geo.width).as_signed())
            offset += count
        registers = Array(self.register[j] for j in range(self.n_registers))
        tail = Array(self.counter[j] for j in range(self.n_counters))
        with m.If(address < self.n_registers):
            m.d.comb += self.data.eq(registers[address])
        with m.Elif(address < offset):
            m.d.comb += self.data.eq(weight_value)
        with m.Else():
            m.d.comb += self.data.eq(tail[address - offset])
        return m
