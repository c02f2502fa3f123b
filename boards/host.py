"""The host side of the link: a client for a board on a serial port or the RTL in simulation.

The client speaks :mod:`boards.protocol` over any *transport* with ``write(data)`` and
``read(count) -> bytes`` (``b""`` on timeout): :class:`SerialTransport` for a real board
(pyserial), or the UART model of the simulation testbench.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from .protocol import (
    ERROR_PAYLOAD,
    PROTOCOL_VERSION,
    REPLY_LENGTH,
    Command,
    Info,
    ProtocolError,
    Reply,
    ReplyDecoder,
    Status,
    encode_request,
)

__all__ = [
    "Transport",
    "SerialTransport",
    "HostClient",
    "check_board",
    "train_samples",
    "train_dataset",
]


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...

    def read(self, count: int) -> bytes: ...


class SerialTransport:
    """A serial port through pyserial (8N1)."""

    def __init__(self, port: str, baud: int = 115200, timeout: float = 1.0) -> None:
        try:
            import serial
        except ImportError as exc:  # pragma: no cover - pyserial is a dependency
            raise RuntimeError(
                "pyserial is needed to talk to a board: pip install pyserial"
            ) from exc
        self._port = serial.Serial(port, baudrate=baud, timeout=timeout)

    def write(self, data: bytes) -> None:
        self._port.write(data)

    def read(self, count: int) -> bytes:
        return self._port.read(count)

    def close(self) -> None:
        self._port.close()


#: Reads of a drain before the client gives up on a line that never goes quiet.
MAX_DRAIN_READS = 1024


class HostClient:
    """Requests to one board; every method waits for its reply.

    Error replies raise :class:`ProtocolError` (its ``code`` says which check failed)
    unless ``request(..., check=False)`` is used. After a timeout or a malformed reply
    (corrupt, or of a length its request does not get), the client drains the line until a
    read times out and starts its decoder afresh before the next request, so a late or
    truncated reply is never taken for the answer to another request. ``deadline``: the
    longest :meth:`wait_idle` waits for a run, in seconds.
    """

    def __init__(self, transport: Transport, *, deadline: float = 600.0) -> None:
        self.transport = transport
        self.deadline = deadline
        self._decoder = ReplyDecoder()
        self._info: Info | None = None
        self._stale = False  # bytes of an earlier exchange may still arrive

    # -- frames -----------------------------------------------------------------------------

    def receive(self) -> Reply:
        """The next reply (raises on a timeout or a corrupt reply)."""
        while True:
            need = 3 if self._decoder.pending < 3 else 1
            data = self.transport.read(need)
            if not data:
                raise ProtocolError("no reply (timeout)")
            replies = self._decoder.feed(data)
            if replies:
                return replies[0]

    def send(self, frame: bytes) -> None:
        self.transport.write(frame)

    def resynchronise(self) -> int:
        """Drop whatever the line still carries (read until a read times out) and start the
        decoder afresh. Returns the bytes dropped."""
        dropped = 0
        for _ in range(MAX_DRAIN_READS):
            data = self.transport.read(64)
            if not data:
                break
            dropped += len(data)
        else:
            raise ProtocolError("the line never went quiet while draining it")
        self._decoder = ReplyDecoder()
        self._stale = False
        return dropped

    def request(self, command: int, payload: bytes = b"", *, check: bool = True) -> Reply:
        if self._stale:
            self.resynchronise()
        name = Command(command).name if command in iter(Command) else f"0x{command:02x}"
        self.send(encode_request(command, payload))
        try:
            reply = self.receive()
        except ProtocolError:
            self._stale = True
            raise
        expected = REPLY_LENGTH.get(command) if reply.ok else ERROR_PAYLOAD
        if command == Command.INFO and reply.ok and reply.payload[:1] != bytes([PROTOCOL_VERSION]):
            # INFO's first byte is the version in every version: say so, not "wrong length"
            version = reply.payload[0] if reply.payload else "unknown"
            raise ProtocolError(
                f"the board speaks protocol version {version}, this host version "
                f"{PROTOCOL_VERSION}: build the board's bitstream with this pulsegate"
            )
        if expected is not None and len(reply.payload) != expected:
            self._stale = True
            raise ProtocolError(
                f"{name}: a reply of {len(reply.payload)} payload bytes, expected {expected} "
                "(a reply to another request, or a corrupt one)"
            )
        if check and not reply.ok:
            raise ProtocolError(f"{name} refused: {reply.code.name}", reply.code)
        return reply

    # -- commands -----------------------------------------------------------------------------

    def info(self) -> Info:
        if self._info is None:
            self._info = Info.unpack(self.request(Command.INFO).payload)
        return self._info

    def status(self) -> Status:
        return Status.unpack(self.request(Command.STATUS).payload)

    def write_weight(self, index: int, value: int) -> None:
        self.request(Command.WRITE_WEIGHT, index.to_bytes(3, "little") + struct.pack("<i", value))

    def read_weight(self, index: int) -> int:
        return struct.unpack(
            "<i", self.request(Command.READ_WEIGHT, index.to_bytes(3, "little")).payload
        )[0]

    def read_weights(self) -> np.ndarray:
        """Every weight (copies included) in trace order."""
        return np.array([self.read_weight(i) for i in range(self.info().weights)], np.int64)

    def write_weights(self, codes: Sequence[int]) -> None:
        for index, value in enumerate(codes):
            self.write_weight(index, int(value))

    def load_word(self, slot: int, index: int, value: int) -> None:
        self.request(Command.LOAD_WORD, struct.pack("<BHi", slot, index, value))

    def load_sample(self, slot: int, words: Sequence[int]) -> None:
        for index, value in enumerate(words):
            self.load_word(slot, index, int(value))

    def start(self, count: int) -> None:
        self.request(Command.START, struct.pack("<H", count))

    def abort(self) -> None:
        self.request(Command.ABORT)

    def read_output(self, index: int = 0) -> int:
        return struct.unpack("<i", self.request(Command.READ_OUTPUT, bytes([index])).payload)[0]

    def write_seed(self, state: int) -> None:
        self.request(Command.WRITE_CONFIG, struct.pack("<BI", 0, state))

    def read_seed(self) -> int:
        return struct.unpack("<I", self.request(Command.READ_CONFIG, bytes([0])).payload)[0]

    def wait_idle(self, poll: Callable[[], None] | None = None) -> Status:
        """Poll STATUS until no run is active, for at most :attr:`deadline` seconds."""
        end = time.monotonic() + self.deadline
        while True:
            status = self.status()
            if not status.running:
                return status
            if time.monotonic() > end:
                raise ProtocolError(
                    f"the run did not finish within {self.deadline:g} s "
                    f"({status.run_done} samples done)"
                )
            if poll is not None:
                poll()

    def train(
        self,
        samples: Sequence[Sequence[int]],
        progress: Callable[[int, int], None] | None = None,
        poll: Callable[[], None] | None = None,
    ) -> Status:
        """Train on ``samples`` (input words, in order), a store-full at a time."""
        slots = self.info().slots
        done = 0
        status = self.status()
        for first in range(0, len(samples), slots):
            chunk = samples[first : first + slots]
            for slot, words in enumerate(chunk):
                self.load_sample(slot, words)
            self.start(len(chunk))
            status = self.wait_idle(poll)
            if status.run_done != len(chunk):
                raise ProtocolError(
                    f"run ended after {status.run_done} of {len(chunk)} samples (aborted?)"
                )
            done += len(chunk)
            if progress is not None:
                progress(done, len(samples))
        return status


def sleep_poll(seconds: float = 0.01) -> Callable[[], None]:
    """A ``poll`` callback for real boards: wait a little between STATUS requests."""
    return lambda: time.sleep(seconds)


def check_board(client: HostClient, cfg) -> None:
    """Raise :class:`ProtocolError` naming the first field in which the board's INFO differs
    from what ``cfg``'s circuit needs (a board built for another network or word width)."""
    from golden_model.circuit import Circuit
    from golden_model.schedule import compile_backprop

    golden = Circuit(compile_backprop(cfg), cfg)
    info = client.info()
    expected = {
        "input_words": sum(golden.schedule.group(name).size for name in golden.schedule.inputs),
        "weights": golden.layout.n_weights,
        "current_width": cfg.current_width,
        "weight_width": cfg.weight_width,
    }
    for field, value in expected.items():
        if getattr(info, field) != value:
            raise ProtocolError(
                f"the board is not built for the {'-'.join(map(str, cfg.layers))} network: "
                f"INFO {field} {getattr(info, field)}, expected {value}"
            )


def train_samples(
    client: HostClient,
    cfg,
    samples: Sequence[dict[str, np.ndarray]],
    *,
    progress: Callable[[int, int], None] | None = None,
    poll: Callable[[], None] | None = None,
) -> dict:
    """Train a board on ``samples`` (signed vectors by name, as the golden model takes them)
    from the configuration's initial weights and LFSR state, as the golden model starts, so
    a board trained before gives the same result. Returns ``samples`` (the count),
    ``status`` and ``weights`` (codes, trace order, read back)."""
    from golden_model.circuit import Circuit
    from golden_model.schedule import compile_backprop

    check_board(client, cfg)
    golden = Circuit(compile_backprop(cfg), cfg)
    words = [golden.input_words(sample) for sample in samples]
    client.write_weights(golden.weight_flat)
    client.write_seed(golden.lfsr.state)
    status = client.train(words, progress=progress, poll=poll)
    return {"samples": len(words), "status": status, "weights": client.read_weights()}


def train_dataset(
    client: HostClient,
    cfg,
    data,
    epochs: int,
    *,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    poll: Callable[[], None] | None = None,
) -> dict:
    """Train a board on ``data``'s training split in the golden model's order
    (:func:`golden_model.classify.training_samples`, through :func:`train_samples`) and
    measure the test accuracy of the weights it reads back. Returns ``samples``, ``status``,
    ``weights`` (codes, trace order), ``test_accuracy`` and ``confusion``."""
    from golden_model.classify import test_with_weights, training_samples

    samples = training_samples(cfg, data, epochs, limit)
    run = train_samples(client, cfg, samples, progress=progress, poll=poll)
    accuracy, confusion = test_with_weights(cfg, data, run["weights"])
    return {**run, "test_accuracy": accuracy, "confusion": confusion}
