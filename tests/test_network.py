"""The whole circuit in gateware against the golden model, at every tick boundary."""

import numpy as np
import pytest

from golden_model.circuit import Circuit
from golden_model.config import Config
from golden_model.schedule import compile_backprop
from golden_model.tasks import XOR_INPUTS, XOR_TARGETS
from golden_model.trace import COUNTERS
from hw.network import NetworkCore
from sim.amaranth_run import run_core

from .faults import core_with_flooring
from .networks import SATURATING


def xor_samples(count: int, seed: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, 4, size=count)
    return [{"x": XOR_INPUTS[k], "t": XOR_TARGETS[k]} for k in picks]


def golden_trace(cfg, samples):
    return Circuit(compile_backprop(cfg), cfg).trace_samples(samples)


CONFIGS = {
    "N1": Config(layers=(2, 4, 1)),
    "N4-leak2-stochastic": Config(
        layers=(2, 4, 1), ticks_per_window=4, leak_shift=2, rounding="stochastic"
    ),
    "deep-relu-saturating": SATURATING,
}


# 12 lanes: words span rows (2-4-1's W1 in one word of 4 rows, W2T two columns a word).
# "core": one multiplier pool for every unit, the learning rules taking turns.
@pytest.mark.parametrize("lanes", [1, 3, 12, "1/pop1", "mixed", "3/own", "core"])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_core_is_bit_exact_at_every_tick(name, lanes):
    cfg = CONFIGS[name]
    samples = xor_samples(8, seed=1)  # the same samples at every lane count
    golden = golden_trace(cfg, samples)
    # "1/pop1": one MAC lane and one population step per clock (the board setting).
    population_lanes = 1 if lanes == "1/pop1" else None
    # "3/own": every unit with its own multipliers (the default shares them per matrix).
    share = lanes != "3/own"
    lanes = {"1/pop1": 1, "3/own": 3}.get(lanes, lanes)
    primaries = [m.name for m in compile_backprop(cfg).matrices if not m.transpose_of]
    if lanes == "mixed":  # a count per matrix: W1 (and its rule) 3 lanes, the others 2
        lanes = {name: 3 if name == "W1" else 2 for name in primaries}
    elif lanes == "core":  # W1 spanning rows, the others not, all on one pool
        lanes = {name: 9 if name == "W1" else 2 for name in primaries} | {"pool": "core"}
    core = NetworkCore(
        compile_backprop(cfg),
        cfg,
        lanes=lanes,
        population_lanes=population_lanes,
        share_multipliers=share,
    )
    trace, clocks = run_core(core, samples)
    mismatch = golden.first_mismatch(trace)
    assert mismatch is None, str(mismatch)
    if isinstance(lanes, dict) and "pool" in lanes:
        assert core.pool == "core" and list(core.families) == ["core"]
    assert len(trace) == len(samples) * compile_backprop(cfg).ticks_per_sample
    assert clocks > len(trace)
    if name == "deep-relu-saturating":  # the counters were exercised, not just compared at 0
        final = golden.counters[-1]
        assert final[COUNTERS.index("sat_current")] > 0
        assert final[COUNTERS.index("sat_weight")] > 0


def test_fault_in_the_rtl_is_reported_with_tick_phase_and_word():
    """Break the rounding of one synapse unit (W2: its sources are graded, so rounding shows;
    XOR's 0/1 inputs make W1's sums exact); the comparison names where it first shows."""
    cfg = Config(layers=(2, 4, 1))
    samples = xor_samples(6, seed=2)
    golden = golden_trace(cfg, samples)
    core = core_with_flooring("W2")(compile_backprop(cfg), cfg)
    trace, _ = run_core(core, samples)
    mismatch = golden.first_mismatch(trace)
    assert mismatch is not None
    assert mismatch.phase == "fwd2" and mismatch.name.startswith("n2")
    assert f"tick {mismatch.tick}" in str(mismatch)


def test_debug_port_reads_the_same_state():
    cfg = CONFIGS["N4-leak2-stochastic"]
    samples = xor_samples(3, seed=4)
    golden = golden_trace(cfg, samples)
    trace, _ = run_core(NetworkCore(compile_backprop(cfg), cfg, lanes=2), samples, via_port=True)
    mismatch = golden.first_mismatch(trace)
    assert mismatch is None, str(mismatch)


def test_ar2_core_is_bit_exact():
    from golden_model.config import default_config
    from golden_model.schedule import compile_ar2
    from golden_model.tasks import A1_TRUE, A2_TRUE, simulate_ar2

    cfg = default_config("ar2")
    x, _ = simulate_ar2(A1_TRUE, A2_TRUE, 40, np.random.default_rng(0))
    samples = [{"x": row} for row in x]
    schedule = compile_ar2(cfg)
    golden = Circuit(schedule, cfg).trace_samples(samples)
    trace, _ = run_core(NetworkCore(schedule, cfg, lanes=2), samples)
    mismatch = golden.first_mismatch(trace)
    assert mismatch is None, str(mismatch)
    assert len(set(golden.lfsr.tolist())) > 10  # stochastic rounding drew all along


def test_lanes_per_matrix_are_checked_and_copies_follow_their_primary():
    from hw.network import resolve_lanes, sweep_depths

    schedule = compile_backprop(Config(layers=(4, 8, 3)))  # W1 8x5, W2 3x9, W2T 8x3
    assert resolve_lanes(schedule, 2) == {"W1": 2, "W2": 2, "W2T": 2}
    assert resolve_lanes(schedule, {"W1": 5, "W2": 3}) == {"W1": 5, "W2": 3, "W2T": 3}
    cfg = Config(layers=(4, 8, 3))
    # forward 8 rows x 1 chunk, 3 rows x 3 chunks, backward 3 row chunks x 3 columns; learning
    # W1 and W2 at once (the longer, 9, counts)
    assert sweep_depths(schedule, cfg, {"W1": 5, "W2": 3}) == [8, 9, 9, 9]
    for bad, field in (
        ({"W1": 2, "W3": 1}, "W3"),  # no such matrix
        ({"W1": 2}, "W2"),  # no count
        ({"W1": 2, "W2": 2, "W2T": 3}, "W2T"),  # a copy must match its primary
        ({"W1": 0, "W2": 1}, "W1"),
    ):
        with pytest.raises(ValueError, match=field):
            resolve_lanes(schedule, bad)


@pytest.mark.parametrize("lanes", [{"W1": 2, "W2": 3}, {"W1": 6, "W2": 10}])
def test_host_port_writes_and_reads_every_weight_at_several_lanes(lanes):
    """Write a distinct value to every weight index through the host port (lane write enables
    at W1=2, W2=3; and with words spanning rows), then read all back through the host port and
    through the debug port: a copy's index and its primary's hold the last value written to
    either, in both memories."""
    from amaranth.sim import Simulator

    from sim.amaranth_run import read_state_via_port

    cfg = Config(layers=(2, 4, 1))
    schedule = compile_backprop(cfg)
    core = NetworkCore(schedule, cfg, lanes=lanes, host_port=True)
    n = core.layout.n_weights
    values = [((k * 37) % 2001) - 1000 for k in range(n)]
    # Which indices name the same synapse: a copy's (r, c) is its primary's (c, r).
    offsets, index = {}, 0
    for m in schedule.matrices:
        offsets[m.name] = index
        index += m.rows * m.cols
    twin = {}
    for m in schedule.matrices:
        if m.transpose_of:
            primary = schedule.matrix(m.transpose_of)
            for r in range(m.rows):
                for c in range(m.cols):
                    a = offsets[m.name] + r * m.cols + c
                    b = offsets[primary.name] + c * primary.cols + r
                    twin[a], twin[b] = b, a
    expected = [values[max(k, twin[k])] if k in twin else values[k] for k in range(n)]
    host = core.host
    got, via_debug = [], []

    async def access(ctx, k, write):
        while not ctx.get(host.ready):
            await ctx.tick()
        ctx.set(host.addr, k)
        ctx.set(host.wdata, values[k])
        ctx.set(host.write if write else host.read, 1)
        await ctx.tick()
        ctx.set(host.write if write else host.read, 0)
        for _ in range(100):
            if ctx.get(host.done):
                return ctx.get(host.rdata)
            await ctx.tick()
        raise AssertionError(f"no done for index {k}")

    async def bench(ctx):
        for k in range(n):
            await access(ctx, k, write=True)
        for k in range(n):
            got.append(await access(ctx, k, write=False))
        _, _, weights, _, _ = await read_state_via_port(ctx, core)
        via_debug.extend(int(w) for w in weights)

    sim = Simulator(core)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(twin) > 0 and len(set(values)) > n // 2
    assert got == expected
    assert via_debug == expected


@pytest.mark.parametrize("share", [True, False], ids=["shared", "own"])
@pytest.mark.parametrize("lanes", [1, 2, {"W1": 3, "W2": 2, "pool": "core"}], ids=str)
def test_a_samples_clocks_are_its_sweeps_and_four_a_tick(lanes, share):
    """The spatial core's clocks a sample are exactly its sweeps (``sweep_depths``, told
    whether the core shares multipliers: a pool=core plan without sharing learns its
    matrices at once) plus 4 control clocks a tick; boards' reports quote this."""
    from hw.network import sweep_depths

    cfg = Config(layers=(2, 4, 1))
    schedule = compile_backprop(cfg)
    samples = xor_samples(3, seed=5)
    core = NetworkCore(schedule, cfg, lanes=lanes, share_multipliers=share)
    _, clocks = run_core(core, samples)
    model = sum(sweep_depths(schedule, cfg, lanes, share_multipliers=share))
    assert clocks == len(samples) * (model + 4 * schedule.ticks_per_sample)
