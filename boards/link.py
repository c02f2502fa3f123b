"""The host link: framed commands over a byte stream, a sample store and the training run.

:mod:`boards.protocol` defines the frames. Every check (start byte, command, length, checksum,
ranges, busy) happens before anything is written, so a rejected frame changes nothing.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.fixedpoint import saturate, times_constant
from hw.network import HostPort, NetworkCore

from .protocol import (
    IDLE_BITS,
    MAX_PAYLOAD,
    PROTOCOL_VERSION,
    REPLY_START,
    REQUEST_LENGTH,
    REQUEST_START,
    Code,
    Command,
)
from .store import SampleStore, StoreKind

__all__ = ["HostLink", "MAX_REPLY", "crc8_next"]

#: Longest reply payload (STATUS).
MAX_REPLY = 19


def _crc8_table() -> list[list[int]]:
    """For each output bit of one CRC-8 byte step, the bits of ``crc ^ byte`` it XORs
    (the step is linear over GF(2), so unit vectors find the matrix)."""
    from .protocol import crc8

    taps = [[] for _ in range(8)]
    for j in range(8):
        out = crc8(bytes([1 << j]))  # crc 0, byte with bit j: the step applied to e_j
        for i in range(8):
            if out >> i & 1:
                taps[i].append(j)
    return taps


_CRC8_TAPS = _crc8_table()


def crc8_next(crc, byte):
    """CRC-8 (polynomial 0x07) after one more byte: the gateware twin of
    :func:`boards.protocol.crc8`, as eight XOR trees (a linear-size expression)."""
    value = crc ^ byte
    bits = []
    for taps in _CRC8_TAPS:
        bit = value[taps[0]]
        for j in taps[1:]:
            bit = bit ^ value[j]
        bits.append(bit)
    return Cat(*bits)


def _le(value, count: int) -> list:
    """``count`` little-endian bytes of ``value``."""
    return [value[8 * k : 8 * (k + 1)] for k in range(count)]


class HostLink(wiring.Component):
    """Serves :mod:`boards.protocol` requests for one :class:`~hw.network.NetworkCore`.

    Received bytes are parsed into a payload buffer and checked; only then does a request
    act. ``LOAD_WORD`` fills a sample store of ``slots`` samples; ``START n`` streams slots
    ``0 .. n-1`` into the core one sample at a time; ``ABORT`` ends the run at the next
    sample boundary (the core always finishes a sample, learning included, so ``W`` and its
    transposed copy stay equal). While a run is active only STATUS, ABORT and READ_OUTPUT are
    served; anything else gets a BUSY error. With a core that ``loads_while_running`` (the
    memory core) the next sample streams in while one runs, so a run costs its first load
    and then the core's clocks a sample; a sample loaded but not started when ABORT arrives
    is dropped.

    Parameters
    ----------
    core : NetworkCore
        The core (built with ``host_port=True``) whose sizes and widths the link serves.
    divisor : int
        Clocks per UART bit: sets the idle time that ends a truncated frame.
    slots : int
        Samples the store holds.
    store : {"auto", "block", "spram"}
        Where the store lives (:class:`~boards.store.SampleStore`): ``auto`` takes an
        iCE40UP5K's SPRAM and block RAM elsewhere.
    store_latency : {1, 2}
        Clocks the store takes to read (2: a block store's banks registered before their
        multiplexer; each sample's load then starts a clock later).

    Attributes
    ----------
    rx : In(stream.Signature(8))
        Received bytes (always accepted).
    tx : Out(stream.Signature(8))
        Reply bytes.
    host : Out(HostPort)
        To the core's weight and LFSR port.
    load : Out(stream.Signature(signed(current_width)))
        Sample words to the core.
    start : Out(1)
    running, sample_done : In(1)
    samples : In(32)
    sat_current, sat_weight, sat_copy : In(64)
    output : In(ArrayLayout(signed(current_width + 1), outputs))
    leds : Out(4)
        Trained (the last run finished), the first output above 1/2, a run active, the last
        request failed.
    """

    def __init__(
        self,
        core: NetworkCore,
        *,
        divisor: int,
        slots: int = 16,
        store: StoreKind = "auto",
        store_latency: int = 1,
    ) -> None:
        if not 1 <= slots <= 255:
            raise ValueError(f"slots must be in [1, 255], got {slots}")
        cfg = core.cfg
        self.cfg, self.slots, self.divisor, self.store_kind = cfg, slots, divisor, store
        self.input_words = core.input_size
        # a core that takes a sample's inputs while it runs another (the memory core's two
        # input banks): the link loads the next sample during the run
        self.prefetch = core.loads_while_running
        self.output_words = max(core.output_size, 1)
        self.weights = core.layout.n_weights
        if self.weights > 0xFFFFFF:
            raise ValueError(f"the link addresses at most 16,777,215 weights, got {self.weights:,}")
        if self.input_words > 0xFFFF:
            raise ValueError(f"the link loads at most 65,535 input words, got {self.input_words:,}")
        cw, ww = cfg.current_width, cfg.weight_width
        super().__init__(
            {
                "rx": In(stream.Signature(8)),
                "tx": Out(stream.Signature(8)),
                "host": Out(HostPort(self.weights, ww)),
                "load": Out(stream.Signature(signed(cw))),
                "start": Out(1),
                "running": In(1),
                "sample_done": In(1),
                "samples": In(32),
                "sat_current": In(64),
                "sat_weight": In(64),
                "sat_copy": In(64),
                "output": In(data.ArrayLayout(signed(cw + 1), self.output_words)),
                "leds": Out(4),
            }
        )
        #: The sample store (one port: a run never reads while LOAD_WORD writes).
        self.store = SampleStore(cw, slots * self.input_words, kind=store, latency=store_latency)
        #: The run's state, for the formal checks (:mod:`boards.link_formal`): a run is
        #: active, an ABORT is pending, the samples the run's START asked for.
        self.run_active, self.abort, self.run_count = Signal(), Signal(), Signal(16)

    def _in_range(self, index, limit: int):
        """Whether a request's ``index`` is below ``limit`` (a weight, a slot, a word): the
        check that keeps every write inside the memory it names."""
        return index < limit

    def _last_of_run(self, slot, count):
        """Whether the sample of ``slot`` is a run of ``count``'s last."""
        return slot == count - 1

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        cw, ww = cfg.current_width, cfg.weight_width

        # -- the sample store: one port (a run never reads while LOAD_WORD writes) ---------
        m.submodules.store = store = self.store
        store_write_addr = Signal.like(store.write_addr)
        store_read_addr = Signal.like(store.read_addr)
        # A LOAD_WORD's write is registered and lands a clock after the request is checked:
        # the parser's checks would otherwise reach the store's address and chip selects.
        store_write, store_write_data = Signal(), Signal.like(store.wdata)
        m.d.sync += store_write.eq(0)
        m.d.comb += [
            store.we.eq(store_write),
            store.wdata.eq(store_write_data),
            store.write_addr.eq(store_write_addr),
            store.read_addr.eq(store_read_addr),
        ]

        # -- line idle timer: ends truncated frames and drains --------------------------------
        idle_clocks = IDLE_BITS * self.divisor
        quiet = Signal(range(idle_clocks + 1))
        line_idle = Signal()
        m.d.comb += [self.rx.ready.eq(1), line_idle.eq(quiet == idle_clocks)]
        with m.If(self.rx.valid):
            m.d.sync += quiet.eq(0)
        with m.Elif(~line_idle):
            m.d.sync += quiet.eq(quiet + 1)

        # -- reply transmitter ----------------------------------------------------------------
        reply_code = Signal(8)
        reply_length = Signal(range(MAX_REPLY + 1))
        reply_data = Signal(8 * MAX_REPLY)
        reply_send = Signal()  # pulse: send the reply registers (only while tx_idle)
        tx_index = Signal(range(MAX_REPLY + 5))
        tx_active = Signal()
        tx_crc = Signal(8)
        tx_idle = Signal()
        m.d.comb += tx_idle.eq(~tx_active)
        frame_bytes = [Const(REPLY_START, 8), reply_code, reply_length] + _le(reply_data, MAX_REPLY)
        byte = Mux(tx_index == reply_length + 3, tx_crc, Array(frame_bytes)[tx_index])
        m.d.comb += [self.tx.payload.eq(byte), self.tx.valid.eq(tx_active)]
        with m.If(reply_send):
            m.d.sync += [tx_active.eq(1), tx_index.eq(0), tx_crc.eq(0)]
        with m.Elif(tx_active & self.tx.ready):
            m.d.sync += tx_index.eq(tx_index + 1)
            with m.If(tx_index != 0):
                m.d.sync += tx_crc.eq(crc8_next(tx_crc, byte))
            with m.If(tx_index == reply_length + 3):
                m.d.sync += tx_active.eq(0)

        # -- the training run -------------------------------------------------------------------
        run_active, abort, run_count = self.run_active, self.abort, self.run_count
        trained = Signal()
        run_slot = Signal(16)
        run_done = Signal(16)
        run_word = Signal(range(max(self.input_words, 2)))
        # run_word == input_words - 1, kept a clock ahead: the comparison stood before the
        # store's address
        last_word = Signal()
        # The samples of a run sit one after another in the store, so the word to read is a
        # count of the words taken; it and the next are both kept, so that the choice between
        # them (the core took a word or not) is the only logic before the store's address.
        read_addr = Signal(range(self.slots * self.input_words + 3))
        read_next, read_after = Signal.like(read_addr), Signal.like(read_addr)
        # START's request, registered: the parser's decision (command, checks, busy) reached
        # the store's read address and the core's load enables in one path
        begin_run = Signal()
        m.d.sync += begin_run.eq(0)
        in_flight = Signal()  # a sample started and not yet done
        with m.If(self.sample_done):
            m.d.sync += [run_done.eq(run_done + 1), in_flight.eq(0)]
        # One word a clock: the store is read `latency` clocks ahead, the address of the
        # word `latency` places on while this one is taken. When the core does not take it,
        # the read starts over from this word (with a latency of 1: the same word again).
        latency = self.store.latency
        ahead = Signal(2)  # the address read: this word's, the next's, the one after
        m.d.comb += [
            store_read_addr.eq(
                Mux(ahead == 2, read_after, Mux(ahead == 1, read_next, read_addr))
                if latency == 2
                else Mux(ahead[0], read_next, read_addr)
            ),
            self.load.payload.eq(store.rdata),
        ]
        with m.FSM(name="run"):
            with m.State("idle"):
                with m.If(begin_run):
                    m.d.sync += [
                        run_active.eq(1),
                        abort.eq(0),  # an ABORT in the clock the last run ended is stale
                        trained.eq(0),
                        run_slot.eq(0),
                        run_done.eq(0),
                        read_addr.eq(0),
                        read_next.eq(1),
                        read_after.eq(2),
                        run_word.eq(0),
                        last_word.eq(self.input_words == 1),
                    ]
                    m.next = "fetch"
            with m.State("fetch"):  # the store's read port takes the first address
                m.next = "fetch2" if latency == 2 else "push"
            if latency == 2:
                with m.State("fetch2"):  # and the next word's
                    m.d.comb += ahead.eq(1)
                    m.next = "push"
            with m.State("push"):
                m.d.comb += self.load.valid.eq(1)
                with m.If(self.load.ready):
                    m.d.sync += [
                        read_addr.eq(read_next),
                        read_next.eq(read_after if latency == 2 else read_next + 1),
                        read_after.eq(read_after + 1),
                    ]
                    with m.If(last_word):
                        m.d.sync += [run_word.eq(0), last_word.eq(self.input_words == 1)]
                        m.next = "staged"
                    with m.Else():
                        m.d.comb += ahead.eq(latency)
                        m.d.sync += [
                            run_word.eq(run_word + 1),
                            last_word.eq(run_word == self.input_words - 2),
                        ]
                if latency == 2:
                    with m.Else():
                        m.next = "fetch2"  # this word read again now, the next one then
            with m.State("staged"):  # a whole sample in the core: start it when the core is free
                with m.If(abort):
                    m.next = "finish"  # a prefetched sample is dropped (the next load replaces it)
                with m.Elif(~in_flight):
                    m.d.comb += self.start.eq(1)
                    m.d.sync += in_flight.eq(1)
                    with m.If(self._last_of_run(run_slot, run_count)):
                        m.next = "finish"
                    with m.Else():
                        m.d.sync += run_slot.eq(run_slot + 1)
                        # the next sample loads while this one runs, if the core can take it
                        m.next = "fetch" if self.prefetch else "wait"
            with m.State("wait"):
                with m.If(self.sample_done | ~in_flight):
                    with m.If(abort):
                        m.next = "finish"
                    with m.Else():
                        m.next = "fetch"
            with m.State("finish"):
                with m.If(~in_flight):
                    m.d.sync += [run_active.eq(0), abort.eq(0), trained.eq(~abort)]
                    m.next = "idle"

        # -- request parser -------------------------------------------------------------------
        command = Signal(8)
        length = Signal(8)
        count = Signal(range(MAX_PAYLOAD + 1))
        crc = Signal(8)
        buffer = [Signal(8, name=f"payload{k}") for k in range(MAX_PAYLOAD)]
        error_code = Signal(8)
        error_command = Signal(8)
        failed = Signal()  # the last request got an error reply
        known = Signal()
        expected = Signal(8)
        with m.Switch(command):
            for cmd in Command:
                with m.Case(int(cmd)):
                    m.d.comb += [known.eq(1), expected.eq(REQUEST_LENGTH[cmd])]

        # A received byte reaches the parser a clock late, with its comparisons registered
        # beside it: they went from the UART's register through carry chains and the parser's
        # choice of error code in one path (the iCE40's critical one). What they compare
        # with (the command's length, the checksum so far) holds still between bytes.
        got, rx_byte = Signal(), Signal(8)
        is_start, length_bad, length_zero, crc_good = Signal(), Signal(), Signal(), Signal()
        incoming = self.rx.payload
        m.d.sync += [
            got.eq(self.rx.valid),
            rx_byte.eq(incoming),
            is_start.eq(incoming == REQUEST_START),
            length_bad.eq((incoming > MAX_PAYLOAD) | (incoming != expected)),
            length_zero.eq(incoming == 0),
            crc_good.eq(incoming == crc),
        ]

        def fail(code: Code, cmd=None):
            m.d.sync += [
                error_code.eq(int(code)),
                error_command.eq(command if cmd is None else cmd),
            ]
            m.next = "error"

        def i32(first: int):
            return Cat(*buffer[first : first + 4]).as_signed()

        def u16(first: int):
            return Cat(buffer[first], buffer[first + 1])

        def u24(first: int):
            return Cat(*buffer[first : first + 3])

        def in_range(value, width: int):
            # The symmetric range saturation produces: in range when it would not clamp.
            return ~saturate(value, width)[1]

        def reply(code: Code, payload: list):
            """Load the reply registers (payload: byte-wide values) and send."""
            m.d.sync += [
                reply_code.eq(int(code)),
                reply_length.eq(len(payload)),
                reply_data.eq(Cat(*payload) if payload else 0),
            ]

        # The payload's checks, registered: the buffer holds still from the last payload byte
        # through the checksum byte to "execute", so they are ready there, off its path.
        def checked(name: str, condition) -> Signal:
            flag = Signal(name=name)
            m.d.sync += flag.eq(condition)
            return flag

        weight_index_bad = checked("weight_index_bad", ~self._in_range(u24(0), self.weights))
        weight_value_bad = checked("weight_value_bad", ~in_range(i32(3), ww))
        word_place_bad = checked(
            "word_place_bad",
            ~self._in_range(buffer[0], self.slots) | ~self._in_range(u16(1), self.input_words),
        )
        word_value_bad = checked("word_value_bad", ~in_range(i32(3), cw))
        count_bad = checked("count_bad", (u16(0) == 0) | (u16(0) > self.slots))
        output_index_bad = checked("output_index_bad", buffer[0] >= self.output_words)
        register_bad = checked("register_bad", buffer[0] != 0)
        seed_zero = checked("seed_zero", Cat(*buffer[1:5]) == 0)

        weight_value = Signal(signed(32))
        m.d.comb += weight_value.eq(self.host.rdata)
        # registered like the checks (the buffer holds still): the pick of an output by the
        # payload's index and the reply's choice were one path into the reply registers
        # (the index, cut to the outputs' bits, registered first: an out-of-range one is
        # refused by output_index_bad anyway)
        output_value = Signal(signed(32))
        output_pick = Signal(range(max(self.output_words, 2)))
        m.d.sync += [
            output_pick.eq(buffer[0][: len(output_pick)]),
            output_value.eq(Array(self.output[j] for j in range(self.output_words))[output_pick]),
        ]
        status_flags = Cat(run_active, abort, trained)
        info = [
            Const(PROTOCOL_VERSION, 8),
            *_le(Const(self.input_words, 16), 2),
            Const(self.output_words, 8),
            *_le(Const(self.weights, 32), 4),
            Const(self.slots, 8),
            Const(cw, 8),
            Const(ww, 8),
        ]
        status = [
            status_flags.as_unsigned() | Const(0, 8),
            *_le(self.samples, 4),
            *_le(self.sat_current, 4),
            *_le(self.sat_weight, 4),
            *_le(self.sat_copy, 4),
            *_le(run_done, 2),
        ]

        with m.FSM(name="parser"):
            with m.State("hunt"):
                with m.If(got):
                    with m.If(is_start):
                        m.next = "command"
                    with m.Else():
                        fail(Code.FRAMING, 0)
            with m.State("command"):
                with m.If(got):
                    m.d.sync += [command.eq(rx_byte), crc.eq(crc8_next(0, rx_byte))]
                    m.next = "length"
                with m.Elif(line_idle):
                    fail(Code.TRUNCATED, 0)
            with m.State("length"):
                with m.If(got):
                    m.d.sync += [length.eq(rx_byte), crc.eq(crc8_next(crc, rx_byte)), count.eq(0)]
                    with m.If(~known):
                        fail(Code.COMMAND)
                    with m.Elif(length_bad):
                        fail(Code.LENGTH)
                    with m.Elif(length_zero):
                        m.next = "check"
                    with m.Else():
                        m.next = "payload"
                with m.Elif(line_idle):
                    fail(Code.TRUNCATED)
            with m.State("payload"):
                with m.If(got):
                    m.d.sync += [crc.eq(crc8_next(crc, rx_byte)), count.eq(count + 1)]
                    with m.Switch(count):
                        for k in range(MAX_PAYLOAD):
                            with m.Case(k):
                                m.d.sync += buffer[k].eq(rx_byte)
                    with m.If(count == length - 1):
                        m.next = "check"
                with m.Elif(line_idle):
                    fail(Code.TRUNCATED)
            with m.State("check"):
                with m.If(got):
                    with m.If(crc_good):
                        m.next = "execute"
                    with m.Else():
                        fail(Code.CHECKSUM)
                with m.Elif(line_idle):
                    fail(Code.TRUNCATED)

            with m.State("execute"):
                needs_idle = Cat(
                    *(
                        command == int(c)
                        for c in (
                            Command.WRITE_WEIGHT,
                            Command.READ_WEIGHT,
                            Command.LOAD_WORD,
                            Command.START,
                            Command.WRITE_CONFIG,
                            Command.READ_CONFIG,
                        )
                    )
                ).any()
                with m.If(~tx_idle):
                    pass  # the last reply is still going out of the reply registers
                with m.Elif(needs_idle & run_active):
                    fail(Code.BUSY)
                with m.Else():
                    with m.Switch(command):
                        with m.Case(Command.INFO):
                            reply(Code.OK, info)
                            m.next = "reply"
                        with m.Case(Command.STATUS):
                            reply(Code.OK, status)
                            m.next = "reply"
                        with m.Case(Command.WRITE_WEIGHT, Command.READ_WEIGHT):
                            with m.If(weight_index_bad):
                                fail(Code.RANGE)
                            with m.Elif((command == Command.WRITE_WEIGHT) & weight_value_bad):
                                fail(Code.VALUE)
                            with m.Else():
                                m.next = "weight"
                        with m.Case(Command.LOAD_WORD):
                            with m.If(word_place_bad):
                                fail(Code.RANGE)
                            with m.Elif(word_value_bad):
                                fail(Code.VALUE)
                            with m.Else():
                                slot_base = times_constant(buffer[0], self.input_words)
                                m.d.sync += [
                                    store_write_addr.eq(slot_base + u16(1)),
                                    store_write_data.eq(i32(3)),
                                    store_write.eq(1),
                                ]
                                reply(Code.OK, [])
                                m.next = "reply"
                        with m.Case(Command.START):
                            with m.If(count_bad):
                                fail(Code.RANGE)
                            with m.Else():
                                m.d.sync += begin_run.eq(1)
                                m.d.sync += run_count.eq(u16(0))
                                reply(Code.OK, [])
                                m.next = "reply"
                        with m.Case(Command.ABORT):
                            m.d.sync += abort.eq(run_active)
                            reply(Code.OK, [])
                            m.next = "reply"
                        with m.Case(Command.READ_OUTPUT):
                            with m.If(output_index_bad):
                                fail(Code.RANGE)
                            with m.Else():
                                reply(Code.OK, _le(output_value, 4))
                                m.next = "reply"
                        with m.Case(Command.WRITE_CONFIG):
                            with m.If(register_bad):
                                fail(Code.RANGE)
                            with m.Elif(seed_zero):
                                fail(Code.VALUE)  # an LFSR never leaves state 0
                            with m.Else():
                                m.next = "seed"
                        with m.Case(Command.READ_CONFIG):
                            with m.If(register_bad):
                                fail(Code.RANGE)
                            with m.Else():
                                reply(Code.OK, _le(self.host.lfsr_state, 4))
                                m.next = "reply"
            with m.State("weight"):
                m.d.comb += [
                    self.host.addr.eq(u24(0)),
                    self.host.wdata.eq(i32(3)),
                    self.host.read.eq(command == Command.READ_WEIGHT),
                    self.host.write.eq(command == Command.WRITE_WEIGHT),
                ]
                with m.If(self.host.ready):
                    m.next = "weight_wait"
            with m.State("weight_wait"):
                with m.If(self.host.done):
                    with m.If(command == Command.READ_WEIGHT):
                        reply(Code.OK, _le(weight_value, 4))
                    with m.Else():
                        reply(Code.OK, [])
                    m.next = "reply"
            with m.State("seed"):
                m.d.comb += [self.host.seed.eq(Cat(*buffer[1:5])), self.host.seed_write.eq(1)]
                with m.If(self.host.ready):
                    m.next = "seeded"
            with m.State("seeded"):  # the reply a clock later: the core's ready (its run
                # state) reached the reply registers' enable in one path
                reply(Code.OK, [])
                m.next = "reply"
            with m.State("reply"):
                with m.If(tx_idle):
                    m.d.comb += reply_send.eq(1)
                    m.d.sync += failed.eq(0)
                    m.next = "hunt"
            with m.State("error"):  # later bytes are dropped until the line goes idle
                with m.If(tx_idle):
                    reply(Code.OK, [error_command])
                    m.d.sync += reply_code.eq(error_code)
                    m.next = "error_send"
            with m.State("error_send"):
                m.d.comb += reply_send.eq(1)
                m.d.sync += failed.eq(1)
                m.next = "drain"
            with m.State("drain"):
                with m.If(line_idle):
                    m.next = "hunt"

        first_output = self.output[0]
        m.d.comb += self.leds.eq(
            Cat(trained, first_output > (1 << (cfg.current_frac - 1)), run_active, failed)
        )
        return m
