"""The memory-centric core's state memory against a Python model of its banks and flags."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden_model.config import default_config
from golden_model.schedule import compile_backprop
from hw.microprogram import StateMap
from hw.state_memory import StateMemory, debug_address


def row_groups(state: StateMap, schedule) -> list[int]:
    return [index for index, g in enumerate(schedule.groups) for _ in range(state.blocks(g.name))]


@pytest.mark.parametrize("lanes", [1, 3, 8])
def test_blocks_flags_and_debug_reads_follow_the_model(lanes):
    schedule = compile_backprop(default_config("xor"))
    state = StateMap.of(schedule, lanes)
    groups = row_groups(state, schedule)
    rng = np.random.default_rng(lanes)
    init = rng.integers(-2000, 2000, (state.rows, lanes))
    dut = StateMemory(lanes, 16, groups, init)
    model = init.copy()
    flags = np.zeros(len(schedule.groups), bool)
    problems = []

    async def bench(ctx):
        for step in range(300):
            row, wrow = int(rng.integers(state.rows)), int(rng.integers(state.rows))
            words = rng.integers(-30000, 30000, lanes)
            enables = int(rng.integers(0, 1 << lanes))
            sets = rng.random(len(flags)) < 0.1
            clears = rng.random(len(flags)) < 0.1
            ctx.set(dut.read_row, row)
            ctx.set(dut.write.row, wrow)
            ctx.set(dut.write.data, [int(v) for v in words])
            ctx.set(dut.write.lanes, enables)
            ctx.set(dut.flags.set, sum(1 << int(g) for g in np.flatnonzero(sets)))
            ctx.set(dut.flags.clear, sum(1 << int(g) for g in np.flatnonzero(clears)))
            # a read sees the flags set in its own clock (a word's preset flags)
            zeroed = flags[groups[row]] or sets[groups[row]]
            expected = np.zeros(lanes, np.int64) if zeroed else model[row].copy()
            await ctx.tick()
            got = [ctx.get(dut.read_data[b]) for b in range(lanes)]
            if list(got) != expected.tolist():
                problems.append((step, "read", row, got, expected.tolist()))
            for b in range(lanes):
                if enables >> b & 1:
                    model[wrow, b] = words[b]
            flags[:] = (flags | sets) & ~clears  # a group in both is cleared
        ctx.set(dut.write.lanes, 0)
        ctx.set(dut.flags.set, 0)
        ctx.set(dut.flags.clear, 0)
        for g in schedule.groups:  # every element through the debug port
            for j in range(g.size):
                row, bank = state.address(g.name, j)
                ctx.set(dut.debug_addr, debug_address(row, bank, lanes))
                await ctx.tick()
                index = [x.name for x in schedule.groups].index(g.name)
                want = 0 if flags[index] else int(model[row, bank])
                if ctx.get(dut.debug_data) != want:
                    problems.append(("debug", g.name, j, ctx.get(dut.debug_data), want))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert not problems, problems[:3]
