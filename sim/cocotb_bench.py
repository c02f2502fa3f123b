"""cocotb testbench: the core under Verilator beside the golden model, tick by tick.

Run by :func:`sim.verilator_run.run_verilator` (never by pytest directly). The job (config,
circuit, lanes, samples) comes from the JSON file named by ``PULSEGATE_JOB``; the verdict goes to
``PULSEGATE_RESULT``. At every tick boundary the testbench holds the core and reads its whole
state through the debug port; Python runs at tick boundaries, the design runs on its own.
"""

from __future__ import annotations

import time

import cocotb
import cocotb.utils
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge

from golden_model.circuit import FIXED, Circuit
from golden_model.config import Config
from golden_model.trace import StateLayout, TraceRecorder

from .cocotb_job import read_job, write_result


def _schedule(cfg: Config, circuit: str):
    from golden_model.schedule import compile_ar2, compile_backprop

    return compile_ar2(cfg) if circuit == "ar2" else compile_backprop(cfg)


@cocotb.test()
async def train_and_compare(dut):
    job = read_job()
    cfg = Config.from_dict(job["config"])
    schedule = _schedule(cfg, job["circuit"])
    samples = [{k: np.asarray(v, float) for k, v in s.items()} for s in job["samples"]]

    golden = Circuit(schedule, cfg, FIXED)
    layout = StateLayout.of(schedule)
    golden_rec = golden.recorder()
    loads = []
    for sample in samples:
        words = []
        for name in schedule.inputs:
            base, half = name[:-1], name[-1]
            v = sample[base]
            words.append(
                golden.encode(np.maximum(v, 0) if half == "+" else np.maximum(-v, 0), name)
            )
        loads.append(np.concatenate(words))
        for base, v in sample.items():
            golden.load_signed(base, v)
        golden.run_sample(golden_rec)
    golden_trace = golden_rec.finish()

    n_words = layout.n_words
    cut = np.cumsum([layout.n_currents, layout.n_masks, layout.n_weights, 4])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    for name in ("load__valid", "load__payload", "start", "hold", "debug_addr"):
        getattr(dut, name).value = 0
    await ClockCycles(dut.clk, 2)
    await FallingEdge(dut.clk)  # drive and sample at falling edges: no races with the design
    dut.rst.value = 0
    recorder = TraceRecorder(layout)
    design_cycles = 0
    started = time.perf_counter()
    start_ns = cocotb.utils.get_sim_time("ns")
    tick = 0
    every = max(1, len(loads) // 10)
    for sample, words in enumerate(loads):
        if sample % every == 0 or sample == len(loads) - 1:
            dut._log.info(f"RTL sample {sample + 1}/{len(loads)}, {tick} ticks compared")
        for word in words:  # the core is idle between samples, so load.ready is high
            dut.load__valid.value = 1
            dut.load__payload.value = int(word)
            await FallingEdge(dut.clk)
        dut.load__valid.value = 0
        dut.start.value = 1
        await FallingEdge(dut.clk)
        dut.start.value = 0
        for _ in range(schedule.ticks_per_sample):
            while not int(dut.state_valid.value):
                await FallingEdge(dut.clk)
                design_cycles += 1
            dut.hold.value = 1  # keep the tick boundary while reading
            state = []
            for address in range(n_words):
                dut.debug_addr.value = address
                await FallingEdge(dut.clk)
                state.append(dut.debug_data.value.to_signed())
            dut.hold.value = 0
            await FallingEdge(dut.clk)
            design_cycles += 1
            state = np.asarray(state, dtype=np.int64)
            recorder.record(
                tick,
                int(golden_trace.phase[tick]),
                state[: cut[0]],
                state[cut[0] : cut[1]].astype(np.uint8),
                state[cut[1] : cut[2]],
                state[cut[2] : cut[3]],
                int(state[cut[3]]),
            )
            tick += 1
    elapsed = time.perf_counter() - started
    clocks_total = (cocotb.utils.get_sim_time("ns") - start_ns) / 10
    hw = recorder.finish()
    mismatch = golden_trace.first_mismatch(hw)
    differing = int(
        sum(
            np.any(
                getattr(golden_trace, f).reshape(len(hw), -1)
                != getattr(hw, f).reshape(len(hw), -1),
                axis=1,
            )
            for f in ("currents", "masks", "weights", "counters", "lfsr")
        )
        .astype(bool)
        .sum()
    )
    result = {
        "bit_exact": mismatch is None,
        "ticks_compared": len(hw),
        "mismatches": differing,
        "first_mismatch": None if mismatch is None else str(mismatch),
        "cycles": design_cycles,
        "simulated_clocks": int(clocks_total),
        "samples": len(samples),
        "seconds": elapsed,
        "weights": {k: v.tolist() for k, v in _weights(hw, layout).items()},
    }
    write_result(result)
    assert mismatch is None, str(mismatch)


def _weights(trace, layout):
    last = trace.weights[-1]
    return {
        name: last[offset : offset + rows * cols].reshape(rows, cols)
        for name, offset, rows, cols in layout.weights
    }
