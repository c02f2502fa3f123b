"""cocotb testbenches of the host link's faults: ABORT at every clock around a run's end, and
a host client recovering from dropped, duplicated, flipped, truncated, late and corrupt
bytes (run by :func:`boards.board_sim.run_link_bench`, like :mod:`boards.cocotb_link`).
"""

from __future__ import annotations

import collections
import struct

import cocotb
from cocotb.task import bridge
from cocotb.triggers import ClockCycles

from boards.host import HostClient
from boards.link_bench import Setup, SimTransport, reset
from boards.protocol import (
    Command,
    ProtocolError,
    encode_request,
)


@cocotb.test()
async def stale_abort(dut):
    """ABORT landing at every clock offset of a short run (``offsets``: ``"end"``, the clocks
    around the run's last one, or ``"all"``, from the run's first clock to past its end):
    whatever clock it hits, the next START begins with ``abort`` clear and runs all of its
    samples. Records which offsets left ``abort`` set on an idle link (the clock in which the
    last sample completes) so the test shows it reached that clock."""
    await reset(dut)
    s = Setup(dut)
    client, uart, divisor = s.client, s.uart, s.job["divisor"]
    words = [s.golden.input_words(sample) for sample in s.samples(s.job["order"])]
    info = await bridge(client.info)()
    count = min(info.slots, len(words))

    def load():
        for slot in range(count):
            client.load_sample(slot, words[slot])

    await bridge(load)()
    start = encode_request(Command.START, struct.pack("<H", count))
    abort_frame = encode_request(Command.ABORT)
    frame_clocks = 10 * divisor * len(abort_frame)  # an ABORT acts after its last bit
    reply_clocks = 30 * divisor

    # The run's length in clocks, counted from the end of the START frame (its reply goes
    # out while the run goes on; the parser takes the next request meanwhile).
    await uart.send(start)
    run_clocks = 0

    def running() -> bool:
        return bool(int(dut.leds.value) >> 2 & 1)

    for wanted in (True, False):  # the run LED lights once START is parsed, then goes dark
        while running() != wanted and run_clocks < 100_000:
            await ClockCycles(dut.clk, 1)
            run_clocks += 1
    await ClockCycles(dut.clk, reply_clocks)
    if s.job.get("offsets") == "all":
        first, last = 0, run_clocks + 4 * divisor
    else:
        first, last = (run_clocks - frame_clocks + k * divisor for k in (-6, 6))
    problems, stale_hits, outcomes = [], [], collections.Counter()
    for offset in range(max(first, 0), last):
        uart.received.clear()
        await uart.send(start)
        await ClockCycles(dut.clk, offset)
        await uart.send(abort_frame)
        await uart.read(8, reply_clocks)  # the replies to START and ABORT
        status = await bridge(client.wait_idle)()
        if status.abort_pending:
            stale_hits.append(offset)
        outcomes[f"run_done={status.run_done},trained={status.trained}"] += 1
        # The next run must begin with abort clear and run every sample.
        await bridge(client.start)(count)
        check = await bridge(client.wait_idle)()
        if check.run_done != count or not check.trained:
            problems.append(
                f"ABORT {offset} clocks after START's reply (abort left set: "
                f"{status.abort_pending}): the next run did {check.run_done} of {count} "
                f"samples, trained={check.trained}"
            )
            if len(problems) > 5:
                break
    result = {
        "run_clocks": run_clocks,
        "offsets": [max(first, 0), last],
        "stale_hits": stale_hits,
        "outcomes": dict(outcomes),
        "problems": problems,
        "ok": not problems,
    }
    s.finish(result)
    assert not problems, problems


class FaultyTransport:
    """A transport that spoils the next exchange on request (:meth:`arm`), then behaves.

    Request faults (on the next write): ``drop`` (one byte left out), ``duplicate`` (one byte
    sent twice), ``flip`` (one bit inverted), ``truncate`` (the frame cut short). Reply faults
    (on the next read): ``late`` (the read times out while the reply is still on its way,
    as when the host's timeout is too short) and ``corrupt`` (one bit of the reply inverted).
    """

    REQUEST_FAULTS = ("drop", "duplicate", "flip", "truncate")
    REPLY_FAULTS = ("late", "corrupt")

    def __init__(self, inner: SimTransport) -> None:
        self.inner = inner
        self.fault: str | None = None

    def arm(self, fault: str) -> None:
        assert fault in self.REQUEST_FAULTS + self.REPLY_FAULTS, fault
        self.fault = fault

    def write(self, data: bytes) -> None:
        fault = self.fault if self.fault in self.REQUEST_FAULTS else None
        if fault:
            self.fault = None
            middle = len(data) // 2
            data = {
                "drop": data[:middle] + data[middle + 1 :],
                "duplicate": data[: middle + 1] + data[middle:],
                "flip": data[:middle] + bytes([data[middle] ^ 0x10]) + data[middle + 1 :],
                "truncate": data[:middle],
            }[fault]
        self.inner.write(data)

    def read(self, count: int) -> bytes:
        if self.fault == "late":
            self.fault = None
            return b""
        data = self.inner.read(count)
        if self.fault == "corrupt" and data:
            self.fault = None
            data = bytes([data[0] ^ 0x01]) + data[1:]
        return data


@cocotb.test()
async def faults(dut):
    """Every kind of fault of :class:`FaultyTransport`, on reads and writes of weights: the
    faulty request may fail, the next one must succeed with the right answer, and the weights,
    outputs and every state word stay the golden model's, through more training after."""
    await reset(dut)
    s = Setup(dut)
    transport = FaultyTransport(s.client.transport)
    client = HostClient(transport)
    samples = s.samples(s.job["order"])
    half = len(samples) // 2
    words = [s.golden.input_words(sample) for sample in samples]
    golden = s.golden

    def host() -> dict:
        client.train(words[:half])
        outcomes, problems = [], []
        index = 0
        for fault in FaultyTransport.REQUEST_FAULTS + FaultyTransport.REPLY_FAULTS:
            for request in ("read", "write"):
                index = (index + 5) % len(golden.weight_flat)
                expected = int(golden.weight_flat[index])
                transport.arm(fault)
                try:
                    if request == "read":
                        value = client.read_weight(index)
                        outcome = "answered" if value == expected else f"wrong value {value}"
                    else:
                        client.write_weight(index, expected)
                        outcome = "answered"
                except ProtocolError as exc:
                    outcome = f"error: {exc}"
                if outcome.startswith("wrong"):
                    problems.append(f"{fault} on {request} of weight {index}: {outcome}")
                try:  # the one request in which the client must have recovered
                    again = client.read_weight(index)
                    if again != expected:
                        problems.append(f"after {fault} on {request}: weight {index} = {again}")
                except ProtocolError as exc:
                    problems.append(f"after {fault} on {request}: not recovered ({exc})")
                outcomes.append({"fault": fault, "request": request, "outcome": outcome})
        weights = client.read_weights().tolist()
        client.train(words[half:])
        return {
            "outcomes": outcomes,
            "problems": problems,
            "weights_after_faults": weights,
            "weights": client.read_weights().tolist(),
            "output": client.read_output(0),
        }

    s.golden_train(samples[:half])
    before = golden.weight_flat.tolist()
    got = await bridge(host)()
    s.golden_train(samples[half:])
    problems = got["problems"]
    if got["weights_after_faults"] != before:
        problems.append("the faults changed the weights")
    if got["weights"] != golden.weight_flat.tolist():
        problems.append("weights after training on differ from the golden model")
    if got["output"] != int(golden.last_output[0]):
        problems.append(f"output {got['output']} != golden {int(golden.last_output[0])}")
    mismatch = await s.compareread_state()
    if mismatch:
        problems.append(f"full state: {mismatch}")
    got.update(ok=not problems, problems=problems)
    s.finish(got)
    assert not problems, problems
