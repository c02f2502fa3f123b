"""The host link's frame format: one definition shared by the gateware and the host client.

A request is ``0xA5, command, length, payload[length], crc``; a reply is ``0x5A, code,
length, payload[length], crc``. ``crc`` is CRC-8 (polynomial 0x07, initial 0) over every byte
after the start byte. Multi-byte fields are little-endian; values are signed 32-bit.

Nothing takes effect before the checksum has been checked, and a request that fails any check
gets one error reply (its payload: the command byte, or 0) and changes nothing. After an error
the device ignores bytes until the line has been idle for :data:`IDLE_BITS` bit times, so a
burst of garbage costs one error reply and the next well-formed frame is understood.

Replies carry no request number, so the host matches them by order and by length
(:data:`REPLY_LENGTH`): after a timeout or a reply of the wrong length or checksum, the client
drains the line until it is quiet and starts afresh before its next request
(:class:`boards.host.HostClient`), so a late reply is dropped, never taken for the answer to
another request.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

__all__ = [
    "REQUEST_START",
    "REPLY_START",
    "MAX_PAYLOAD",
    "IDLE_BITS",
    "PROTOCOL_VERSION",
    "Command",
    "Code",
    "REQUEST_LENGTH",
    "REPLY_LENGTH",
    "ERROR_PAYLOAD",
    "crc8",
    "encode_request",
    "encode_reply",
    "Reply",
    "ReplyDecoder",
    "ProtocolError",
    "Info",
    "Status",
    "expected_error",
]

REQUEST_START = 0xA5
REPLY_START = 0x5A
#: Longest request payload (``LOAD_WORD``: slot, index, value); longer lengths are refused
#: as soon as the length byte arrives.
MAX_PAYLOAD = 7
#: Line idle time, in bit times, that ends a truncated frame or a drain after an error.
IDLE_BITS = 40
#: 2: a weight's index is 24-bit, INFO's input words 16-bit and its weights 32-bit (a
#: 400-400-10 network has 164,810 weights and 820 input words).
PROTOCOL_VERSION = 2


class Command(enum.IntEnum):
    INFO = 0x01  # -> version u8, input words u16, output words u8, weights u32, slots, widths
    STATUS = 0x02  # -> flags, samples, saturation counters, run position
    WRITE_WEIGHT = 0x03  # index u24, value i32 (W and its transposed copy together)
    READ_WEIGHT = 0x04  # index u24 -> value i32
    LOAD_WORD = 0x05  # slot u8, index u16, value i32: one input word of a stored sample
    START = 0x06  # count u16: train on slots 0 .. count-1, in order
    ABORT = 0x07  # stop at the next sample boundary
    READ_OUTPUT = 0x08  # index u8 -> the last sample's readout word, i32
    WRITE_CONFIG = 0x09  # register u8, value u32 (register 0: the rounding LFSR state)
    READ_CONFIG = 0x0A  # register u8 -> value u32


#: Exact payload length of each request.
REQUEST_LENGTH = {
    Command.INFO: 0,
    Command.STATUS: 0,
    Command.WRITE_WEIGHT: 7,
    Command.READ_WEIGHT: 3,
    Command.LOAD_WORD: 7,
    Command.START: 2,
    Command.ABORT: 0,
    Command.READ_OUTPUT: 1,
    Command.WRITE_CONFIG: 5,
    Command.READ_CONFIG: 1,
}
assert max(REQUEST_LENGTH.values()) == MAX_PAYLOAD


class Code(enum.IntEnum):
    OK = 0x00
    CHECKSUM = 0x01  # the crc byte did not match
    COMMAND = 0x02  # unknown command
    LENGTH = 0x03  # length over MAX_PAYLOAD or not the command's length
    RANGE = 0x04  # weight index, slot, word index, count or register out of range
    VALUE = 0x05  # value outside the word's symmetric range (or a zero LFSR state)
    BUSY = 0x06  # training runs: only STATUS, ABORT and READ_OUTPUT are served
    TRUNCATED = 0x07  # the line went idle inside a frame
    FRAMING = 0x08  # a byte arrived outside any frame


class ProtocolError(Exception):
    """A reply that is malformed, or an error code where success was expected."""

    def __init__(self, message: str, code: Code | None = None) -> None:
        super().__init__(message)
        self.code = code


def crc8(data: bytes) -> int:
    """CRC-8, polynomial x^8 + x^2 + x + 1, initial value 0, no reflection."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def encode_request(command: int, payload: bytes = b"") -> bytes:
    """A request frame (any command byte: tests send unknown ones on purpose)."""
    if len(payload) > 255:
        raise ValueError(f"payload of {len(payload)} bytes does not fit the length byte")
    body = bytes([command, len(payload)]) + payload
    return bytes([REQUEST_START]) + body + bytes([crc8(body)])


def encode_reply(code: int, payload: bytes = b"") -> bytes:
    body = bytes([code, len(payload)]) + payload
    return bytes([REPLY_START]) + body + bytes([crc8(body)])


@dataclass(frozen=True)
class Reply:
    code: Code
    payload: bytes

    @property
    def ok(self) -> bool:
        return self.code == Code.OK


class ReplyDecoder:
    """Turns received bytes into :class:`Reply` objects; raises on a corrupt reply."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Reply]:
        self._buffer.extend(data)
        replies = []
        while self._buffer:
            if self._buffer[0] != REPLY_START:
                bad = self._buffer[0]
                self._buffer.clear()
                raise ProtocolError(f"reply starts with 0x{bad:02x}, expected 0x{REPLY_START:02x}")
            if len(self._buffer) < 3 or len(self._buffer) < 4 + self._buffer[2]:
                break
            length = self._buffer[2]
            frame = bytes(self._buffer[: 4 + length])
            del self._buffer[: 4 + length]
            if crc8(frame[1:-1]) != frame[-1]:
                raise ProtocolError(f"reply with a bad checksum: {frame.hex()}")
            try:
                code = Code(frame[1])
            except ValueError:
                raise ProtocolError(f"reply with unknown code 0x{frame[1]:02x}") from None
            replies.append(Reply(code, frame[3:-1]))
        return replies

    @property
    def pending(self) -> int:
        """Bytes of an incomplete reply."""
        return len(self._buffer)


@dataclass(frozen=True)
class Info:
    version: int
    input_words: int
    output_words: int
    weights: int
    slots: int
    current_width: int
    weight_width: int

    FORMAT = "<BHBIBBB"

    @classmethod
    def unpack(cls, payload: bytes) -> Info:
        return cls(*struct.unpack(cls.FORMAT, payload))


@dataclass(frozen=True)
class Status:
    running: bool
    abort_pending: bool
    trained: bool  # the last run finished every sample (not aborted)
    samples: int
    sat_current: int
    sat_weight: int
    sat_copy: int
    run_done: int  # samples finished in the current or last run

    FORMAT = "<BIIIIH"

    @classmethod
    def unpack(cls, payload: bytes) -> Status:
        flags, samples, cur, wgt, cpy, done = struct.unpack(cls.FORMAT, payload)
        return cls(bool(flags & 1), bool(flags & 2), bool(flags & 4), samples, cur, wgt, cpy, done)


#: Exact payload length of each command's success reply: a reply of another length answers
#: some other request (or is corrupt), and the client resynchronises.
REPLY_LENGTH = {
    Command.INFO: struct.calcsize(Info.FORMAT),
    Command.STATUS: struct.calcsize(Status.FORMAT),
    Command.WRITE_WEIGHT: 0,
    Command.READ_WEIGHT: 4,
    Command.LOAD_WORD: 0,
    Command.START: 0,
    Command.ABORT: 0,
    Command.READ_OUTPUT: 4,
    Command.WRITE_CONFIG: 0,
    Command.READ_CONFIG: 4,
}
#: Payload length of every error reply (the command byte, or 0).
ERROR_PAYLOAD = 1


def expected_error(frame: bytes, info: Info) -> Code | None:
    """The error reply the device gives to ``frame`` sent alone on an idle line, or ``None``
    when ``frame`` is a well-formed request it would act on (the parser's reference model;
    bytes after the first error are drained and change nothing)."""
    if not frame:
        return None
    if frame[0] != REQUEST_START:
        return Code.FRAMING
    if len(frame) < 3:
        return Code.TRUNCATED
    command, length = frame[1], frame[2]
    if command not in iter(Command):
        return Code.COMMAND
    if length > MAX_PAYLOAD or length != REQUEST_LENGTH[Command(command)]:
        return Code.LENGTH
    if len(frame) < 4 + length:
        return Code.TRUNCATED
    if crc8(frame[1 : 3 + length]) != frame[3 + length]:
        return Code.CHECKSUM
    p = frame[3 : 3 + length]

    def fits(value: int, width: int) -> bool:
        return abs(value) <= (1 << (width - 1)) - 1

    command = Command(command)
    if command in (Command.WRITE_WEIGHT, Command.READ_WEIGHT):
        if int.from_bytes(p[:3], "little") >= info.weights:
            return Code.RANGE
        if command == Command.WRITE_WEIGHT:
            if not fits(int.from_bytes(p[3:7], "little", signed=True), info.weight_width):
                return Code.VALUE
    elif command == Command.LOAD_WORD:
        if p[0] >= info.slots or int.from_bytes(p[1:3], "little") >= info.input_words:
            return Code.RANGE
        if not fits(int.from_bytes(p[3:7], "little", signed=True), info.current_width):
            return Code.VALUE
    elif command == Command.START:
        if not 1 <= int.from_bytes(p, "little") <= info.slots:
            return Code.RANGE
    elif command == Command.READ_OUTPUT:
        if p[0] >= info.output_words:
            return Code.RANGE
    elif command in (Command.WRITE_CONFIG, Command.READ_CONFIG):
        if p[0] != 0:
            return Code.RANGE
        if command == Command.WRITE_CONFIG and int.from_bytes(p[1:5], "little") == 0:
            return Code.VALUE
    return None
