"""8N1 UART receiver and transmitter for the host link."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UartRx", "UartTx"]


def _check_divisor(divisor: int) -> None:
    if divisor < 4:
        raise ValueError(f"UART divisor (clocks per bit) must be >= 4, got {divisor}")


class UartRx(wiring.Component):
    """Receives 8N1 bytes; a byte with a bad stop bit is dropped.

    Parameters
    ----------
    divisor : int
        Clocks per bit (clock frequency / baud rate), at least 4.

    Attributes
    ----------
    rx : In(1)
        The line (idles high); synchronized inside.
    data : Out(stream.Signature(8))
        One transfer per received byte; ``ready`` is ignored (the consumer keeps up).
    """

    rx: In(1, init=1)
    data: Out(stream.Signature(8))

    def __init__(self, divisor: int) -> None:
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1)
        timer = Signal(range(self.divisor))
        bits = Signal(range(10))
        shift = Signal(8)
        m.d.sync += self.data.valid.eq(0)
        with m.FSM():
            with m.State("idle"):
                with m.If(~line):
                    m.d.sync += timer.eq(self.divisor // 2 - 1)
                    m.next = "start"
            with m.State("start"):  # confirm the start bit in its middle
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):
                    m.next = "idle"  # a glitch
                with m.Else():
                    m.d.sync += [timer.eq(self.divisor - 1), bits.eq(0)]
                    m.next = "bits"
            with m.State("bits"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [timer.eq(self.divisor - 1), bits.eq(bits + 1)]
                    with m.If(bits == 8):  # the stop bit
                        with m.If(line):
                            m.d.sync += [self.data.payload.eq(shift), self.data.valid.eq(1)]
                        m.next = "idle"
                    with m.Else():
                        m.d.sync += shift.eq(Cat(shift[1:], line))
        return m


class UartTx(wiring.Component):
    """Sends 8N1 bytes.

    Parameters
    ----------
    divisor : int
        Clocks per bit, at least 4.

    Attributes
    ----------
    data : In(stream.Signature(8))
        Bytes to send; ``ready`` while the transmitter is idle.
    tx : Out(1)
        The line (idles high).
    """

    data: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, divisor: int) -> None:
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        bits = Signal(range(11))
        shift = Signal(10, init=0x3FF)
        m.d.comb += [self.data.ready.eq(bits == 0), self.tx.eq(shift[0])]
        with m.If(bits == 0):
            with m.If(self.data.valid):
                # start bit, data LSB first, stop bit
                m.d.sync += [
                    shift.eq(Cat(0, self.data.payload, 1)),
                    bits.eq(10),
                    timer.eq(self.divisor - 1),
                ]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Else():
            m.d.sync += [
                shift.eq(Cat(shift[1:], 1)),
                bits.eq(bits - 1),
                timer.eq(self.divisor - 1),
            ]
        return m
