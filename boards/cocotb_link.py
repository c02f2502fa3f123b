"""cocotb testbenches: the board system (core, host link, UART) under Verilator, driven by the
real host client through a UART model (:mod:`boards.link_bench`): training, malformed frames,
ABORT in the middle of a run. The link's fault tests are in :mod:`boards.cocotb_link_faults`.

Run by :func:`boards.board_sim.run_link_bench`. The job comes from ``PULSEGATE_JOB``; each test
writes its verdict to ``PULSEGATE_RESULT``. The design's debug port gives the complete state
(every current, mask, weight, counter and the LFSR) for the comparisons with the golden model.
"""

from __future__ import annotations

import collections

import cocotb
import numpy as np
from cocotb.task import bridge
from cocotb.triggers import ClockCycles

from boards.link_bench import RunClock, Setup, read_state, reset, transpose_pairs
from boards.protocol import (
    Code,
    Command,
    ReplyDecoder,
    encode_request,
    expected_error,
)


@cocotb.test()
async def train(dut):
    """The host client trains XOR from scratch; the result is bit-exact with the golden model."""
    await reset(dut)
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
    mismatch = await s.compareread_state()
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
    from boards.protocol import MAX_PAYLOAD, REQUEST_LENGTH

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
            encode_request(Command.READ_WEIGHT, le(rng.integers(info.weights, 1 << 24), 3)),
            encode_request(
                Command.WRITE_WEIGHT, le(rng.integers(info.weights, 1 << 24), 3) + le(1, 4, True)
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
                le(rng.integers(0, info.weights), 3)
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
    await reset(dut)
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
    before = await read_state(dut, s.words)
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
        state = await read_state(dut, s.words)
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
    mismatch = await s.compareread_state()
    if mismatch:
        problems.append(f"after retraining on the stored samples: {mismatch}")
    result = {"frames": len(frames), "kinds": dict(kinds), "problems": problems, "ok": not problems}
    s.finish(result)
    assert not problems, problems[:5]


@cocotb.test()
async def abort(dut):
    """ABORT in the middle of a sample: the run stops at the sample boundary, ``W == W^T``
    and everything matches the golden model after the samples that ran."""
    await reset(dut)
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
    busy = await bridge(lambda: client.request(0x04, b"\x00\x00\x00", check=False).code)()
    await bridge(client.abort)()
    status = await bridge(client.wait_idle)()
    s.golden_train(samples[: status.run_done])
    weights = await bridge(client.read_weights)()
    pairs = transpose_pairs(s.layout, s.schedule)
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
    mismatch = await s.compareread_state()
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
