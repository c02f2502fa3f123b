"""Run a :class:`hw.network.NetworkCore` under Amaranth's simulator and record its trace.

The trace has the golden model's layout (:class:`golden_model.trace.StateLayout`), so the two
compare with :meth:`golden_model.trace.Trace.first_mismatch`. State is read once per tick, at
the clock the core marks with ``state_valid``.
"""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from golden_model.circuit import FIXED, Circuit
from golden_model.trace import StateLayout, Trace, TraceRecorder
from hw.network import NetworkCore

__all__ = ["encode_sample", "read_state", "read_state_via_port", "split_state", "run_core"]


def encode_sample(core: NetworkCore, values: dict[str, np.ndarray]) -> np.ndarray:
    """The load words of one sample: signed float values per input pair (``{"x": ..., "t":
    ...}``) as the PMPY halves of the core's input groups, in load order."""
    encoder = Circuit(core.schedule, core.cfg, FIXED)
    words = []
    for name in core.input_groups:
        base, half = name[:-1], name[-1]
        v = np.asarray(values[base], dtype=np.float64)
        words.append(
            encoder.encode(np.maximum(v, 0.0) if half == "+" else np.maximum(-v, 0.0), name)
        )
    return np.concatenate(words)


def read_state(
    ctx, core: NetworkCore
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Every current, mask bit, weight and counter of the core, in the golden layout."""
    s = core.schedule
    currents = np.array(
        [ctx.get(core.value(g.name)[j]) for g in s.groups for j in range(g.size)], dtype=np.int64
    )
    masks = np.array(
        [
            (ctx.get(getattr(core.sequencer.masks, name)) >> j) & 1
            for name, size in s.masks
            for j in range(size)
        ],
        dtype=np.uint8,
    )
    weights = []
    for matrix in s.matrices:
        unit = core.synapses[matrix.name]
        words = [ctx.get(unit.memory.data[i]) for i in range(unit.geometry.depth)]
        weights.append(unit.geometry.unpack(words).ravel())
    counters = np.array(
        [
            ctx.get(core.sat_current),
            ctx.get(core.sat_weight),
            ctx.get(core.sat_copy),
            ctx.get(core.samples),
        ],
        dtype=np.int64,
    )
    return currents, masks, np.concatenate(weights), counters, ctx.get(core.lfsr.state)


def split_state(core: NetworkCore, words: list[int]):
    """Debug-port words (golden order) into (currents, masks, weights, counters, lfsr)."""
    lay = core.layout
    a = lay.n_currents
    b = a + lay.n_masks
    c = b + lay.n_weights
    words = np.asarray(words, dtype=np.int64)
    return words[:a], words[a:b].astype(np.uint8), words[b:c], words[c : c + 4], int(words[c + 4])


async def read_state_via_port(ctx, core: NetworkCore):
    """Hold the core at its tick boundary and read every state word through the debug port."""
    ctx.set(core.hold, 1)
    words = []
    for address in range(core.state_words):
        ctx.set(core.debug_addr, address)
        await ctx.tick()
        words.append(ctx.get(core.debug_data))
    ctx.set(core.hold, 0)
    return split_state(core, words)


def run_core(
    core: NetworkCore,
    samples: list[dict[str, np.ndarray]],
    max_clocks: int = 100_000,
    via_port: bool = False,
) -> tuple[Trace, int]:
    """Train ``core`` on ``samples`` under Amaranth's simulator; return its trace and the
    clock cycles the samples took (from each ``start`` to the last tick's state, not counting
    the clocks spent reading state; a core whose ``observe_ticks`` is false shows, and the
    trace holds, each sample's last tick only). ``via_port`` reads the state through the debug port
    (as the Verilator testbench does) instead of peeking at the signals."""
    layout = StateLayout.of(core.schedule)
    recorder = TraceRecorder(layout)
    ticks_per_sample = core.schedule.ticks_per_sample
    n_ticks = core.cfg.ticks_per_window
    # a core that drains only at a sample's end shows its state there only
    observed = ticks_per_sample if getattr(core, "observe_ticks", True) else 1
    clocks = [0]

    async def bench(ctx):
        tick = 0
        for sample in samples:
            for word in encode_sample(core, sample):
                ctx.set(core.load.valid, 1)
                ctx.set(core.load.payload, int(word))
                await ctx.tick()
            ctx.set(core.load.valid, 0)
            ctx.set(core.start, 1)
            await ctx.tick()
            ctx.set(core.start, 0)
            clocks[0] += 1
            tick += ticks_per_sample - observed
            for _ in range(observed):
                waited = 0
                while not ctx.get(core.state_valid):
                    await ctx.tick()
                    waited += 1
                    if waited > max_clocks:
                        raise RuntimeError(f"tick {tick}: no state after {max_clocks} clocks")
                clocks[0] += waited
                phase = (tick % ticks_per_sample) // n_ticks
                if via_port:
                    state = await read_state_via_port(ctx, core)
                else:
                    state = read_state(ctx, core)
                recorder.record(tick, phase, *state)
                tick += 1
                await ctx.tick()  # leave the state_valid clock
                clocks[0] += 1

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return recorder.finish(), clocks[0]
