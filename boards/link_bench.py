"""What the host-link testbenches share: the host's end of the serial line (a UART model),
a transport for :class:`boards.host.HostClient` over it, the design's complete state through
its debug port, and the golden model beside the design (:class:`Setup`).

The host client runs in a thread (cocotb's ``bridge``); each byte it writes or reads is
bit-banged on the design's ``rx`` and ``tx`` pins by coroutines (``resume``).
"""

from __future__ import annotations

import collections
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.task import resume
from cocotb.triggers import ClockCycles, FallingEdge

from boards.host import HostClient
from boards.protocol import (
    IDLE_BITS,
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


async def read_state(dut, words: int) -> np.ndarray:
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

    async def compareread_state(self) -> str | None:
        hw = await read_state(self.dut, self.words)
        gold = self.golden.state_vector()
        if not np.array_equal(hw, gold):
            k = int(np.flatnonzero(hw != gold)[0])
            return f"state word {k}: golden {gold[k]}, RTL {hw[k]}"
        return None

    def finish(self, result: dict) -> None:
        result["seconds"] = time.perf_counter() - self.started
        result["simulated_clocks"] = int(cocotb.utils.get_sim_time("ns") / 10)
        write_result(result)


async def reset(dut) -> None:
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.rx.value = 1
    dut.debug_addr.value = 0
    await ClockCycles(dut.clk, 2)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)


def transpose_pairs(layout: StateLayout, schedule) -> list[tuple[int, int]]:
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
