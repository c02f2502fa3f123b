"""cocotb testbenches: the board system (core, host link, UART) under Verilator, driven by the
real host client through a UART model.

Run by :func:`boards.board_sim.run_link_bench`. The job comes from ``PULSEGATE_JOB``; each test
writes its verdict to ``PULSEGATE_RESULT``. The host client runs in a thread (cocotb's
``bridge``); each byte it writes or reads is bit-banged on the design's ``rx`` and ``tx``
pins by coroutines (``resume``). The design's debug port gives the complete state (every
current, mask, weight, counter and the LFSR) for the comparisons with the golden model.
"""

from __future__ import annotations

import collections
import struct
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles, FallingEdge

from boards.host import HostClient
from boards.protocol import (
    IDLE_BITS,
    Code,
    Command,
    ProtocolError,
    ReplyDecoder,
    encode_request,
    expected_error,
)
from golden_model.circuit import FIXED, Circuit
from golden_model.config import Config
from golden_model.schedule import compile_backprop
from golden_model.trace import StateLayout
from sim.cocotb_job import read_job, write_result


class UartModel:
    """The host's end of the serial line, ``divisor`` clocks per bit."""

    def __init__(self, dut, divisor: int) -> None:
        self.dut, self.divisor = dut, divisor
        self.received: collections.deque[int] = collections.deque()
        dut.rx.value = 1
        cocotb.start_soon(self._monitor())

    async def _monitor(self) -> None:
        d = self.divisor
        while True:
            await FallingEdge(self.dut.tx)
            await ClockCycles(self.dut.clk, d // 2)  # middle of the start bit
            value = 0
            for bit in range(8):
                await ClockCycles(self.dut.clk, d)
                value |= int(self.dut.tx.value) << bit
            await ClockCycles(self.dut.clk, d)  # middle of the stop bit
            if int(self.dut.tx.value) == 1:
                self.received.append(value)

    async def send(self, data: bytes) -> None:
        for byte in data:
            for bit in [0] + [(byte >> k) & 1 for k in range(8)] + [1]:
                self.dut.rx.value = bit
                await ClockCycles(self.dut.clk, self.divisor)

    async def read(self, count: int, timeout: int) -> bytes:
        """Up to ``count`` received bytes; fewer when ``timeout`` clocks pass without one."""
        out = bytearray()
        waited = 0
        while len(out) < count and waited < timeout:
            if self.received:
                out.append(self.received.popleft())
                waited = 0
            else:
                await ClockCycles(self.dut.clk, self.divisor)
                waited += self.divisor
        return bytes(out)

    async def settle(self) -> None:
        """Wait until the line has been idle long enough for the device to be ready again."""
        await ClockCycles(self.dut.clk, (IDLE_BITS + 12) * self.divisor)


class SimTransport:
    """A :class:`boards.host.Transport` over the UART model (called from the host thread)."""

    def __init__(self, uart: UartModel, timeout_clocks: int) -> None:
        self.uart, self.timeout = uart, timeout_clocks
        self._send = resume(uart.send)
        self._read = resume(uart.read)

    def write(self, data: bytes) -> None:
        self._send(data)

    def read(self, count: int) -> bytes:
        return self._read(count, self.timeout)


async def _state(dut, words: int) -> np.ndarray:
    """Every state word through the debug port (one clock per word)."""
    out = []
    await FallingEdge(dut.clk)  # drive the address between rising edges
    for address in range(words):
        dut.debug_addr.value = address
        await FallingEdge(dut.clk)
        out.append(dut.debug_data.value.to_signed())
    return np.asarray(out, dtype=np.int64)


class Setup:
    def __init__(self, dut) -> None:
        job = read_job()
        self.job = job
        self.cfg = Config.from_dict(job["config"])
        self.schedule = compile_backprop(self.cfg)
        self.layout = StateLayout.of(self.schedule)
        self.words = self.layout.n_words
        self.golden = Circuit(self.schedule, self.cfg, FIXED)
        self.uart = UartModel(dut, job["divisor"])
        self.client = HostClient(SimTransport(self.uart, timeout_clocks=job["divisor"] * 400))
        self.dut = dut
        self.started = time.perf_counter()

    def samples(self, order):
        """XOR samples by their index; with a ``dataset`` in the job, the first
        ``len(order)`` of that data set's training order; with ``linear_scale``, the first
        ``len(order)`` samples of the linear task (``order`` then only counts)."""
        if "linear_scale" in self.job:
            from golden_model.linear import linear_samples

            return linear_samples(self.cfg, len(order), self.job["linear_scale"])
        if "dataset" in self.job:
            from golden_model.classify import training_samples
            from golden_model.datasets import load_dataset

            return training_samples(self.cfg, load_dataset(self.job["dataset"]), 1, len(order))
        from golden_model.tasks import xor_sample

        return [xor_sample(k) for k in order]

    def golden_train(self, samples) -> None:
        for sample in samples:
            for name, values in sample.items():
                self.golden.load_signed(name, values)
            self.golden.run_sample()

    async def compare_state(self) -> str | None:
        hw = await _state(self.dut, self.words)
        gold = self.golden.state_vector()
        if not np.array_equal(hw, gold):
            k = int(np.flatnonzero(hw != gold)[0])
            return f"state word {k}: golden {gold[k]}, RTL {hw[k]}"
        return None

    def finish(self, result: dict) -> None:
        result["seconds"] = time.perf_counter() - self.started
        result["simulated_clocks"] = int(cocotb.utils.get_sim_time("ns") / 10)
        write_result(result)


async def _reset(dut) -> None:
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.rx.value = 1
    dut.debug_addr.value = 0
    await ClockCycles(dut.clk, 2)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)


def _transpose_pairs(layout: StateLayout, schedule) -> list[tuple[int, int]]:
    """(index of W[r, c], index of W^T[c, r]) for every matrix with a transposed copy."""
    where = {name: (offset, rows, cols) for name, offset, rows, cols in layout.weights}
    pairs = []
    for mat in schedule.matrices:
        if mat.transpose_of:
            t_off, t_rows, t_cols = where[mat.name]
            w_off, _, w_cols = where[mat.transpose_of]
            for r in range(t_rows):
                for c in range(t_cols):
                    pairs.append((w_off + c * w_cols + r, t_off + r * t_cols + c))
    return pairs


class RunClock:
    """Clocks during which the run LED (``leds[2]``) is lit: the time runs take, sample
    store to last ``sample_done``, measured from the LED's edges (no per-clock coroutine)."""

    def __init__(self, dut) -> None:
        self.dut, self.clocks, self.runs = dut, 0, 0
        cocotb.start_soon(self._watch())

    async def _watch(self) -> None:
        lit_since = None
        while True:
            await self.dut.leds.value_change
            lit = bool((int(self.dut.leds.value) >> 2) & 1)
            now = cocotb.utils.get_sim_time("ns") / 10
            if lit and lit_since is None:
                lit_since = now
            elif not lit and lit_since is not None:
                self.clocks += int(now - lit_since)
                self.runs += 1
                lit_since = None


@cocotb.test()
async def train(dut):
    """The host client trains XOR from scratch; the result is bit-exact with the golden model."""
    await _reset(dut)
    s = Setup(dut)
    samples = s.samples(s.job["order"])
    words = [s.golden.input_words(sample) for sample in samples]
    s.golden_train(samples)
    client = s.client
    log = dut._log
    run_clock = RunClock(dut)

    def host() -> dict:
        info = client.info()
        seed = client.read_seed()
        trained = {}
        if "linear_scale" in s.job:  # host train-linear: initial weights written first
            from boards.host import train_samples

            run = train_samples(client, s.cfg, samples)
            trained = {"trained_samples": run["samples"]}
        elif "dataset" in s.job:  # the host's data-set training, initial weights written first
            from boards.host import train_dataset
            from golden_model.datasets import load_dataset

            run = train_dataset(client, s.cfg, load_dataset(s.job["dataset"]), 1, limit=len(words))
            trained = {"test_accuracy": run["test_accuracy"], "trained_samples": run["samples"]}
        else:
            client.train(words, progress=lambda d, n: log.info(f"host trained {d}/{n} samples"))
        return {
            **trained,
            "info": info.__dict__,
            "seed_before": seed,
            "status": client.status().__dict__,
            "weights": client.read_weights().tolist(),
            "output": client.read_output(0),
            "seed_after": client.read_seed(),
        }

    got = await bridge(host)()
    problems = []
    if got["weights"] != s.golden.weight_flat.tolist():
        problems.append("weights read over the link differ from the golden model")
    st = got["status"]
    gold_counters = s.golden.counters.tolist()
    if [st["sat_current"], st["sat_weight"], st["sat_copy"], st["samples"]] != gold_counters:
        problems.append(f"status counters {st} != golden {gold_counters}")
    if got["output"] != int(s.golden.last_output[0]):
        problems.append(f"output {got['output']} != golden {int(s.golden.last_output[0])}")
    if got["seed_after"] != s.golden.lfsr.state:
        problems.append("LFSR state differs")
    mismatch = await s.compare_state()
    if mismatch:
        problems.append(f"full state: {mismatch}")
    got.update(
        bit_exact=not problems,
        problems=problems,
        leds=int(dut.leds.value),
        samples=len(samples),
        run_clocks=run_clock.clocks,
        runs=run_clock.runs,
        cycles_per_sample=run_clock.clocks / len(samples),
    )
    s.finish(got)
    assert not problems, problems


def malformed_frames(rng: np.random.Generator, info, count: int) -> list[tuple[str, bytes]]:
    """``count`` malformed requests of every kind, each refused by :func:`expected_error`."""
    from boards.protocol import MAX_PAYLOAD, REQUEST_LENGTH, Command, encode_request

    def payload(cmd):
        return bytes(rng.integers(0, 256, REQUEST_LENGTH[cmd], dtype=np.uint8))

    def le(value, n, signed=False):
        return int(value).to_bytes(n, "little", signed=signed)

    frames: list[tuple[str, bytes]] = []
    commands = list(Command)
    unknown = [c for c in range(256) if c not in {int(x) for x in commands}]
    max_w = (1 << (info.weight_width - 1)) - 1
    max_c = (1 << (info.current_width - 1)) - 1
    makers = {
        "bad checksum": lambda: (
            lambda cmd: (lambda f: f[:-1] + bytes([f[-1] ^ int(rng.integers(1, 256))]))(
                encode_request(cmd, payload(cmd))
            )
        )(commands[int(rng.integers(len(commands)))]),
        "truncated": lambda: (lambda f: f[: int(rng.integers(1, len(f)))])(
            encode_request(
                *(lambda cmd: (cmd, payload(cmd)))(commands[int(rng.integers(len(commands)))])
            )
        ),
        "unknown command": lambda: encode_request(
            unknown[int(rng.integers(len(unknown)))],
            bytes(rng.integers(0, 256, int(rng.integers(0, MAX_PAYLOAD + 1)), dtype=np.uint8)),
        ),
        "oversized length": lambda: encode_request(
            commands[int(rng.integers(len(commands)))],
            bytes(rng.integers(0, 256, int(rng.integers(MAX_PAYLOAD + 1, 24)), dtype=np.uint8)),
        ),
        "address out of range": lambda: [
            encode_request(Command.READ_WEIGHT, le(rng.integers(info.weights, 1 << 16), 2)),
            encode_request(
                Command.WRITE_WEIGHT, le(rng.integers(info.weights, 1 << 16), 2) + le(1, 4, True)
            ),
            encode_request(
                Command.LOAD_WORD,
                le(rng.integers(info.slots, 256), 1) + le(0, 2) + le(1, 4, True),
            ),
            encode_request(
                Command.LOAD_WORD,
                le(0, 1) + le(rng.integers(info.input_words, 1 << 16), 2) + le(1, 4, True),
            ),
            encode_request(Command.START, le(rng.choice([0, info.slots + 1, 65535]), 2)),
            encode_request(Command.READ_OUTPUT, le(rng.integers(info.output_words, 256), 1)),
            encode_request(Command.WRITE_CONFIG, le(rng.integers(1, 256), 1) + le(5, 4)),
        ][int(rng.integers(7))],
        "value out of range": lambda: [
            encode_request(
                Command.WRITE_WEIGHT,
                le(rng.integers(0, info.weights), 2)
                + le(rng.choice([-1, 1]) * rng.integers(max_w + 1, 1 << 31), 4, True),
            ),
            encode_request(
                Command.LOAD_WORD,
                le(0, 1)
                + le(0, 2)
                + le(rng.choice([-1, 1]) * rng.integers(max_c + 1, 1 << 31), 4, True),
            ),
            encode_request(Command.WRITE_CONFIG, le(0, 1) + le(0, 4)),
        ][int(rng.integers(3))],
        "random bytes": lambda: bytes(
            rng.integers(0, 256, int(rng.integers(1, 20)), dtype=np.uint8)
        ),
    }
    names = list(makers)
    while len(frames) < count:
        kind = names[len(frames) % len(names)]
        frame = makers[kind]()
        if expected_error(frame, info) is not None:
            frames.append((kind, frame))
    return frames


@cocotb.test()
async def malformed(dut):
    """Malformed frames: each gets its error reply and changes nothing; the next good frame
    is served."""
    await _reset(dut)
    s = Setup(dut)
    client, uart = s.client, s.uart
    rng = np.random.default_rng(s.job["seed"])
    info = await bridge(client.info)()
    # Some state worth protecting: trained weights, a stored sample, a reseeded LFSR.
    warm = s.samples(s.job["order"])
    words = [s.golden.input_words(sample) for sample in warm]
    await bridge(client.train)(words)
    s.golden_train(warm)
    frames = malformed_frames(rng, info, s.job["frames"])
    before = await _state(dut, s.words)
    kinds: dict[str, int] = collections.Counter()
    problems = []
    for number, (kind, frame) in enumerate(frames):
        uart.received.clear()
        await uart.send(frame)
        await uart.settle()
        replies = ReplyDecoder().feed(await uart.read(64, 30 * s.job["divisor"]))
        want = expected_error(frame, info)
        if [r.code for r in replies] != [want]:
            problems.append(
                f"frame {number} ({kind}, {frame.hex()}): replies "
                f"{[r.code.name for r in replies]}, expected [{want.name}]"
            )
        state = await _state(dut, s.words)
        if not np.array_equal(state, before):
            k = int(np.flatnonzero(state != before)[0])
            problems.append(
                f"frame {number} ({kind}, {frame.hex()}) changed state word {k}: "
                f"{before[k]} -> {state[k]}"
            )
        # The link recovers: a good request right after is served.
        seed = await bridge(client.read_seed)()
        if seed != s.golden.lfsr.state:
            problems.append(f"frame {number}: READ_CONFIG after it gave {seed}")
        kinds[kind] += 1
        if len(problems) > 10:
            break
        if number % 200 == 0:
            dut._log.info(f"{number}/{len(frames)} malformed frames")
    # The stored samples are intact: training on them again matches the golden model.
    await bridge(client.start)(len(words))
    await bridge(client.wait_idle)()
    s.golden_train(warm)
    mismatch = await s.compare_state()
    if mismatch:
        problems.append(f"after retraining on the stored samples: {mismatch}")
    result = {"frames": len(frames), "kinds": dict(kinds), "problems": problems, "ok": not problems}
    s.finish(result)
    assert not problems, problems[:5]


@cocotb.test()
async def abort(dut):
    """ABORT in the middle of a sample: the run stops at the sample boundary, ``W == W^T``
    and everything matches the golden model after the samples that ran."""
    await _reset(dut)
    s = Setup(dut)
    client = s.client
    samples = s.samples(s.job["order"])
    words = [s.golden.input_words(sample) for sample in samples]
    info = await bridge(client.info)()
    count = min(info.slots, len(words))

    def load_and_start():
        for slot in range(count):
            client.load_sample(slot, words[slot])
        client.start(count)

    await bridge(load_and_start)()
    # Wait into the middle of a later sample (the run-active LED is on), then abort.
    while not int(dut.leds.value) >> 2 & 1:
        await ClockCycles(dut.clk, 1)
    await ClockCycles(dut.clk, s.job["abort_after_clocks"])
    running_at_abort = int(dut.leds.value) >> 2 & 1
    busy = await bridge(lambda: client.request(0x04, b"\x00\x00", check=False).code)()
    await bridge(client.abort)()
    status = await bridge(client.wait_idle)()
    s.golden_train(samples[: status.run_done])
    weights = await bridge(client.read_weights)()
    pairs = _transpose_pairs(s.layout, s.schedule)
    problems = []
    if not running_at_abort:
        problems.append("the run had already ended when ABORT was sent")
    if busy != Code.BUSY:
        problems.append(f"READ_WEIGHT during the run: {busy}, expected BUSY")
    if not 0 < status.run_done < count:
        problems.append(f"run_done {status.run_done} of {count}: not stopped in the middle")
    if status.trained:
        problems.append("an aborted run reports trained")
    unequal = [(a, b) for a, b in pairs if weights[a] != weights[b]]
    if unequal:
        problems.append(f"W != W^T at {unequal[:3]}")
    if weights.tolist() != s.golden.weight_flat.tolist():
        problems.append("weights differ from the golden model after the completed samples")
    mismatch = await s.compare_state()
    if mismatch:
        problems.append(f"full state: {mismatch}")
    result = {
        "run_done": status.run_done,
        "count": count,
        "pairs_checked": len(pairs),
        "problems": problems,
        "ok": not problems,
    }
    s.finish(result)
    assert not problems, problems


@cocotb.test()
async def stale_abort(dut):
    """ABORT landing at every clock offset of a short run (``offsets``: ``"end"``, the clocks
    around the run's last one, or ``"all"``, from the run's first clock to past its end):
    whatever clock it hits, the next START begins with ``abort`` clear and runs all of its
    samples. Records which offsets left ``abort`` set on an idle link (the clock in which the
    last sample completes) so the test shows it reached that clock."""
    await _reset(dut)
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
    await _reset(dut)
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
    mismatch = await s.compare_state()
    if mismatch:
        problems.append(f"full state: {mismatch}")
    got.update(ok=not problems, problems=problems)
    s.finish(got)
    assert not problems, problems
