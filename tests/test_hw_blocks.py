"""Each gateware block under Amaranth's simulator against the golden unit it implements.

Every comparison covers the outputs and the internal state the golden model also has
(currents, z, weights of both copies, masks, counters, LFSR state), over at least 200 random
cases per block, with values at the saturation edges and every rounding mode. The fault tests
build a block with one detail broken on purpose and show that the same comparison reports it.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from golden_model.circuit import Circuit
from golden_model.config import Config
from golden_model.dynamics import gain_word
from golden_model.fixed import max_code, saturate
from golden_model.lfsr import Lfsr
from golden_model.schedule import POP, compile_ar2, compile_backprop
from golden_model.units import hebbian_update, population_step, synapse_sum, threshold_pair
from hw.arithmetic import Arithmetic
from hw.hebbian import HebbianUnit
from hw.population import PopulationAccumulator
from hw.sequencer import GatingSequencer, port_name
from hw.synapse import COLUMNS, ROWS, SynapseUnit
from toolchain import verilator_lint

from .faults import FlooringSynapse, WrappingAccumulator, WrappingHebbian


def edgy(rng: np.random.Generator, width: int, size, low: int | None = None) -> np.ndarray:
    """Random codes, a third of them at or next to the saturation edges."""
    top = max_code(width)
    low = -top if low is None else low
    values = rng.integers(low, top + 1, size=size)
    edges = np.array([top, top - 1, low, low + 1, 0])
    pick = rng.random(size) < 0.33
    values[pick] = rng.choice(edges, size=int(pick.sum()))
    return values


def simulate(dut, bench) -> None:
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


async def wait_while(ctx, signal, value: int = 1, limit: int = 10_000) -> None:
    """Clock until ``signal != value``; a hang fails the test instead of stalling it."""
    for _ in range(limit):
        if ctx.get(signal) != value:
            return
        await ctx.tick()
    raise AssertionError(f"{signal} stayed {value} for {limit} clocks")


def bits(values) -> int:
    return sum(int(v) << j for j, v in enumerate(values))


# -- population accumulator -----------------------------------------------------------------

POPULATION_SETUPS = [  # (config, size, lanes)
    (Config(), 5, 5),
    (Config(ticks_per_window=4, leak_shift=2), 6, 2),
    (Config(ticks_per_window=16, leak_shift=4, current_width=12, current_frac=8), 7, 3),
    (Config(ticks_per_window=2, leak_shift=1, gain_frac=10), 3, 1),
]


def population_mismatches(cfg, size, lanes, cases, seed, fault=None) -> tuple[list[str], int]:
    block = WrappingAccumulator if fault == "wrap" else PopulationAccumulator
    dut = block(Arithmetic.of(cfg), size, lanes)
    rng = np.random.default_rng(seed)
    width = cfg.current_width
    problems, saturations = [], [0]

    async def bench(ctx):
        for case in range(cases):
            current = edgy(rng, width, size)
            drive = edgy(rng, width, size, low=0)
            gate = rng.integers(0, 2, size)
            clear, hold, held = (bool(v) for v in rng.integers(0, 2, 3))
            for j in range(size):
                ctx.set(dut.load_en, 1)
                ctx.set(dut.load_index, j)
                ctx.set(dut.load_value, int(current[j]))
                await ctx.tick()
            ctx.set(dut.load_en, 0)
            for j in range(size):
                ctx.set(dut.drive[j], int(drive[j]))
            ctx.set(dut.gate, bits(gate))
            ctx.set(dut.clear, clear)
            ctx.set(dut.hold, hold)
            ctx.set(dut.held_gain, held)
            before = ctx.get(dut.sat_count)
            ctx.set(dut.tick, 1)
            await ctx.tick()
            ctx.set(dut.tick, 0)
            await wait_while(ctx, dut.busy)
            want, events = population_step(
                current,
                drive,
                gain_q=gain_word(cfg)[held],
                gain_frac=cfg.gain_frac,
                leak_shift=cfg.leak_shift,
                width=width,
                gate=gate,
                clear=clear,
                hold=hold,
            )
            got = np.array([ctx.get(dut.currents[j]) for j in range(size)])
            if not np.array_equal(got, want):
                problems.append(f"case {case}: currents {got.tolist()} != {want.tolist()}")
            if ctx.get(dut.sat_count) - before != events:
                problems.append(
                    f"case {case}: sat_count +{ctx.get(dut.sat_count) - before} != +{events}"
                )
            saturations[0] += events

    simulate(dut, bench)
    return problems, saturations[0]


@pytest.mark.parametrize(("cfg", "size", "lanes"), POPULATION_SETUPS)
def test_population_accumulator_matches_golden(cfg, size, lanes):
    problems, saturations = population_mismatches(cfg, size, lanes, cases=60, seed=size)
    assert problems == []
    if cfg.leak_shift > 0:  # with alpha = 1 and G = 1, I' = u cannot exceed the range
        assert saturations > 0  # the saturation edge was exercised


def test_population_fault_is_caught():
    cfg = Config(ticks_per_window=4, leak_shift=2)  # leak + drive can exceed the range
    problems, _ = population_mismatches(cfg, 4, 2, cases=40, seed=1, fault="wrap")
    assert problems, "a wrapping accumulator went unnoticed"
    assert any("currents" in p for p in problems) and any("sat_count" in p for p in problems)


# -- synapse unit ---------------------------------------------------------------------------

# 5x7 at 10 and 16 lanes: a line and padding by rows, words of 2 and 3 lines by columns;
# at 16 by rows two rows a word.
SYNAPSE_SETUPS = [(layout, lanes) for layout in (ROWS, COLUMNS) for lanes in (1, 2, 3, 10, 16)]


def synapse_mismatches(cfg, rows, cols, lanes, layout, cases, seed, fault=None):
    rng = np.random.default_rng(seed)
    weights = edgy(rng, cfg.weight_width, (rows, cols))
    unit = FlooringSynapse if fault == "floor" else SynapseUnit
    dut = unit(Arithmetic.of(cfg), rows, cols, lanes, layout=layout, init=weights)
    problems, saturations = [], [0]

    async def bench(ctx):
        for case in range(cases):
            scale = (
                cfg.current_width if case % 2 else 8
            )  # small sources: no saturation, fine rounding
            source = edgy(rng, scale, cols)
            gate = rng.integers(0, 2, rows)
            for j in range(cols):
                ctx.set(dut.source[j], int(source[j]))
            ctx.set(dut.gate, bits(gate))
            before = ctx.get(dut.sat_count)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            await wait_while(ctx, dut.busy)
            z, events = synapse_sum(
                weights, source, weight_frac=cfg.weight_frac, width=cfg.current_width
            )
            plus, minus = threshold_pair(z, gate)
            got = {
                "z": [ctx.get(dut.z[r]) for r in range(rows)],
                "plus": [ctx.get(dut.plus[r]) for r in range(rows)],
                "minus": [ctx.get(dut.minus[r]) for r in range(rows)],
            }
            for name, want in (("z", z), ("plus", plus), ("minus", minus)):
                if got[name] != want.tolist():
                    problems.append(f"case {case}: {name} {got[name]} != {want.tolist()}")
            if ctx.get(dut.sat_count) - before != events:
                problems.append(f"case {case}: sat_count")
            saturations[0] += events

    simulate(dut, bench)
    return problems, saturations[0]


@pytest.mark.parametrize(("layout", "lanes"), SYNAPSE_SETUPS)
def test_synapse_unit_matches_golden(layout, lanes):
    problems, saturations = synapse_mismatches(Config(), 5, 7, lanes, layout, cases=36, seed=lanes)
    assert problems == []
    assert saturations > 0


def test_synapse_fault_is_caught():
    problems, _ = synapse_mismatches(Config(), 4, 5, 2, ROWS, cases=30, seed=3, fault="floor")
    assert problems, "rounding down instead of half up went unnoticed"


def test_weight_layouts_hold_the_same_words_transposed():
    from hw.synapse import WeightLayout

    rng = np.random.default_rng(0)
    w = rng.integers(-1000, 1000, (5, 7))
    for lanes in (1, 2, 3, 4, 7, 13, 14, 16, 35):
        rows = WeightLayout(5, 7, lanes, ROWS, 16)
        cols = WeightLayout(7, 5, lanes, COLUMNS, 16)
        by_rows, by_cols = rows.pack(w), cols.pack(w.T)
        np.testing.assert_array_equal(rows.unpack(by_rows), w)
        np.testing.assert_array_equal(cols.unpack(by_cols), w.T)
        assert rows.depth == cols.depth == -(-5 // rows.span) * -(-7 // rows.segment)
        for g in range(rows.outer):
            for k in range(rows.inner):
                assert by_rows[g * rows.inner + k] == by_cols[k * rows.outer + g]
        # A copy without the bias column, strided by its primary's rows: the same words with
        # the bias lanes left empty.
        copy = WeightLayout(6, 5, lanes, COLUMNS, 16, stride=7)
        biasless = w.copy()
        biasless[:, 6] = 0
        by_copy, by_biasless = copy.pack(w[:, :6].T), rows.pack(biasless)
        assert copy.inner == rows.outer
        for g in range(rows.outer):
            for k in range(copy.outer):
                assert by_copy[k * copy.inner + g] == by_biasless[g * rows.inner + k]


# -- Hebbian unit ----------------------------------------------------------------------------


class LearningPair(Elaboratable):
    """W (by rows) and its transposed copy (by columns), with the Hebbian unit on both."""

    def __init__(self, cfg, rows, cols, lanes, weights, fault=None):
        arith = Arithmetic.of(cfg)
        self.w = SynapseUnit(arith, rows, cols, lanes, init=weights)
        self.wt = SynapseUnit(
            arith, cols - 1, rows, lanes, layout=COLUMNS, stride=cols, init=weights[:, :-1].T
        )
        unit = WrappingHebbian if fault == "wrap" else HebbianUnit
        self.hebbian = unit(arith, rows, cols, lanes, copy_rows=cols - 1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.w, m.submodules.wt, m.submodules.hebbian = self.w, self.wt, self.hebbian
        wiring.connect(m, self.hebbian.w, self.w.learn)
        wiring.connect(m, self.hebbian.wt, self.wt.learn)
        return m


def memory_codes(ctx, unit: SynapseUnit) -> np.ndarray:
    geo = unit.geometry
    return geo.unpack([ctx.get(unit.memory.data[i]) for i in range(geo.depth)])


def hebbian_mismatches(cfg, rows, cols, lanes, cases, seed, fault=None):
    rng = np.random.default_rng(seed)
    weights = edgy(rng, cfg.weight_width, (rows, cols))
    pair = LearningPair(cfg, rows, cols, lanes, weights, fault)
    unit = pair.hebbian
    lfsr = Lfsr(cfg.lfsr_seed)
    problems, saturations = [], [0]

    async def bench(ctx):
        w, wt = weights.copy(), weights[:, :-1].T.copy()
        for case in range(cases):
            post = edgy(rng, cfg.current_width, rows)
            pre = edgy(rng, cfg.current_width, cols)
            for r in range(rows):
                ctx.set(unit.post[r], int(post[r]))
            for c in range(cols):
                ctx.set(unit.pre[c], int(pre[c]))
            before = ctx.get(unit.sat_count), ctx.get(unit.sat_copy_count)
            ctx.set(unit.start, 1)
            await ctx.tick()
            ctx.set(unit.start, 0)
            await wait_while(ctx, unit.busy)
            random = (
                lfsr.draw(rows * cols, cfg.update_shift) if cfg.rounding == "stochastic" else None
            )
            w, change, events = hebbian_update(
                w,
                post,
                pre,
                shift=cfg.update_shift,
                width=cfg.weight_width,
                rounding=cfg.rounding,
                random=random,
            )
            wt, copy_events = saturate(wt - change[:, :-1].T, cfg.weight_width)
            if not np.array_equal(memory_codes(ctx, pair.w), w):
                problems.append(f"case {case}: W differs")
            if not np.array_equal(memory_codes(ctx, pair.wt), wt):
                problems.append(f"case {case}: W^T differs")
            got = (ctx.get(unit.sat_count) - before[0], ctx.get(unit.sat_copy_count) - before[1])
            if got != (events, copy_events):
                problems.append(f"case {case}: saturation counts {got} != {(events, copy_events)}")
            if ctx.get(unit.lfsr_state) != lfsr.state:
                problems.append(f"case {case}: LFSR state")
            saturations[0] += events

    simulate(pair, bench)
    return problems, saturations[0]


# 13 and 18 lanes: words spanning 2 and 3 rows of 6 or 7 columns, with padding lanes and a
# last word only partly filled (4 rows at 3 a word).
HEBBIAN_SETUPS = [
    (rounding, lanes) for rounding in ("nearest", "stochastic") for lanes in (1, 2, 3, 13, 18)
]


@pytest.mark.parametrize(("rounding", "lanes"), HEBBIAN_SETUPS)
def test_hebbian_unit_matches_golden(rounding, lanes):
    # learning_rate_shift 0 makes eta * post * pre large enough to reach the weight edges.
    # 4x7 and 1x4: where lanes divide the copy's rows, the bias column sits alone in W's last
    # chunk, which the copy does not have (1x4 at 3 lanes: a one-word copy memory).
    for (rows, cols), shift, cases in (
        ((4, 6), 0, 12),
        ((4, 6), 5, 12),
        ((4, 7), 5, 6),
        ((1, 4), 0, 6),
    ):
        cfg = Config(rounding=rounding, learning_rate_shift=shift)
        problems, saturations = hebbian_mismatches(
            cfg, rows, cols, lanes, cases, seed=lanes + shift
        )
        assert problems == []
        if shift == 0:
            assert saturations > 0


@pytest.mark.parametrize("rounding", ["nearest", "stochastic"])
def test_covariance_rule_matches_golden(rounding):
    """The AR(2) circuit's rule: K <- sat(K + round(eta_t (x y^T - K))), eta_t = 2^-shift."""
    from golden_model.config import default_config
    from golden_model.units import covariance_update

    cfg = default_config("ar2").replace(rounding=rounding)
    rows, cols, lanes, cases = 3, 4, 3, 70
    rng = np.random.default_rng(5)
    weights = edgy(rng, cfg.weight_width, (rows, cols))
    unit = HebbianUnit(Arithmetic.of(cfg), rows, cols, lanes, rule="covariance")
    memory = SynapseUnit(Arithmetic.of(cfg), rows, cols, lanes, init=weights)

    class Pair(Elaboratable):
        def elaborate(self, platform):
            m = Module()
            m.submodules.unit, m.submodules.memory = unit, memory
            wiring.connect(m, unit.w, memory.learn)
            return m

    lfsr = Lfsr(cfg.lfsr_seed)
    problems, saturations = [], [0]

    async def bench(ctx):
        k = weights.copy()
        for case in range(cases):
            post = edgy(rng, cfg.current_width, rows)
            pre = edgy(rng, cfg.current_width, cols)
            shift = int(rng.integers(0, cfg.learning_rate_shift + 1))
            for r in range(rows):
                ctx.set(unit.post[r], int(post[r]))
            for c in range(cols):
                ctx.set(unit.pre[c], int(pre[c]))
            ctx.set(unit.rate_shift, shift)
            before = ctx.get(unit.sat_count)
            ctx.set(unit.start, 1)
            await ctx.tick()
            ctx.set(unit.start, 0)
            await wait_while(ctx, unit.busy)
            align = 2 * cfg.current_frac - cfg.weight_frac
            random = lfsr.draw(rows * cols, align + shift) if rounding == "stochastic" else None
            k, events = covariance_update(
                k,
                post,
                pre,
                align=align,
                rate_shift=shift,
                width=cfg.weight_width,
                rounding=rounding,
                random=random,
            )
            if not np.array_equal(memory_codes(ctx, memory), k):
                problems.append(f"case {case}: K differs")
            if ctx.get(unit.sat_count) - before != events:
                problems.append(f"case {case}: saturation count")
            if ctx.get(unit.lfsr_state) != lfsr.state:
                problems.append(f"case {case}: LFSR state")
            saturations[0] += events

    simulate(Pair(), bench)
    assert problems == []
    assert saturations[0] > 0


def test_hebbian_fault_is_caught():
    cfg = Config(learning_rate_shift=0)
    problems, _ = hebbian_mismatches(cfg, 3, 5, 2, cases=10, seed=2, fault="wrap")
    assert any("W differs" in p for p in problems)


# -- gating sequencer ----------------------------------------------------------------------


def sequencer_mismatches(cfg, schedule, samples, seed, inputs) -> tuple[list[str], int]:
    rng = np.random.default_rng(seed)
    circuit = Circuit(schedule, cfg)
    recorder = circuit.recorder()
    for _ in range(samples):
        for name, size in inputs:
            circuit.load_signed(name, rng.uniform(-1, 1, size))
        circuit.run_sample(recorder)
    trace = recorder.finish()
    layout = trace.layout
    dut = GatingSequencer(schedule, cfg)
    captured_from = {c.mask: c for ph in schedule.phases for c in ph.captures}
    problems, ticks = [], [0]

    async def bench(ctx):
        t = 0
        for sample in range(samples):
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            for _ in range(schedule.ticks_per_sample):
                before = trace.currents[t - 1] if t else np.zeros(layout.n_currents, np.int64)
                for name, capture in captured_from.items():
                    port = getattr(dut.capture, name)
                    plus = before[layout.slice_of(capture.plus)[1]]
                    minus = before[layout.slice_of(capture.minus)[1]]
                    for j in range(len(plus)):
                        ctx.set(port.plus[j], int(plus[j]))
                        ctx.set(port.minus[j], int(minus[j]))
                await wait_while(ctx, dut.tick_valid, 0)
                phase = schedule.phases[trace.phase[t]]
                first = (t % schedule.ticks_per_sample) % cfg.ticks_per_window == 0
                if (ctx.get(dut.phase), ctx.get(dut.first_tick)) != (trace.phase[t], first):
                    problems.append(f"tick {t}: phase/first_tick")
                await ctx.tick()  # masks (and the gates they mask) hold from the next clock
                for name, _ in schedule.masks:
                    if ctx.get(getattr(dut.masks, name)) != bits(trace.series(name)[t]):
                        problems.append(f"tick {t}: mask {name}")
                for group in schedule.groups:
                    if group.kind != POP:
                        continue
                    transfer = [tr for tr in phase.transfers if group.name in (tr.plus, tr.minus)]
                    if transfer and transfer[0].mask:
                        want = bits(trace.series(transfer[0].mask)[t])
                    else:
                        want = (1 << group.size) - 1 if transfer else 0
                    if ctx.get(getattr(dut.gates, port_name(group.name))) != want:
                        problems.append(f"tick {t}: gates of {group.name}")
                for _ in range(int(rng.integers(0, 3))):  # the datapath takes its time
                    await ctx.tick()
                ctx.set(dut.tick_done, 1)
                await ctx.tick()
                ctx.set(dut.tick_done, 0)
                t += 1
                ticks[0] += 1
            if ctx.get(dut.samples) != trace.counters[t - 1][3]:
                problems.append(f"sample {sample}: samples counter")

    simulate(dut, bench)
    return problems, ticks[0]


@pytest.mark.parametrize(
    ("cfg", "samples"),
    [
        (Config(layers=(2, 4, 1)), 12),
        (Config(layers=(3, 4, 5, 2), ticks_per_window=2, leak_shift=1), 4),
        (Config(layers=(2, 3, 3, 3, 1), output="relu", ticks_per_window=3, leak_shift=2), 2),
    ],
)
def test_sequencer_replays_schedule_and_captures_masks(cfg, samples):
    schedule = compile_backprop(cfg)
    problems, ticks = sequencer_mismatches(
        cfg,
        schedule,
        samples,
        seed=len(cfg.layers),
        inputs=[("x", cfg.layers[0]), ("t", cfg.layers[-1])],
    )
    assert problems == []
    assert ticks >= 60


def test_sequencer_step_and_stop():
    cfg = Config(layers=(2, 3, 1), ticks_per_window=2, leak_shift=1)
    dut = GatingSequencer(compile_backprop(cfg), cfg)

    async def bench(ctx):
        ctx.set(dut.step, 1)
        await ctx.tick()
        ctx.set(dut.step, 0)
        await wait_while(ctx, dut.tick_valid, 0)
        ctx.set(dut.tick_done, 1)
        await ctx.tick()
        ctx.set(dut.tick_done, 0)
        for _ in range(5):
            await ctx.tick()
        assert not ctx.get(dut.running) and (ctx.get(dut.phase), ctx.get(dut.tick)) == (0, 1)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        await wait_while(ctx, dut.tick_valid, 0)
        ctx.set(dut.stop, 1)
        ctx.set(dut.tick_done, 1)
        await ctx.tick()
        ctx.set(dut.stop, 0)
        ctx.set(dut.tick_done, 0)
        for _ in range(5):
            await ctx.tick()
        assert not ctx.get(dut.running) and (ctx.get(dut.phase), ctx.get(dut.tick)) == (1, 0)

    simulate(dut, bench)


# -- Verilog and Verilator lint --------------------------------------------------------------

LINT_CASES = {
    "population": lambda cfg: PopulationAccumulator(Arithmetic.of(cfg), 5, 2),
    "synapse_rows": lambda cfg: SynapseUnit(Arithmetic.of(cfg), 3, 5, 2),
    "synapse_columns": lambda cfg: SynapseUnit(Arithmetic.of(cfg), 5, 3, 2, layout=COLUMNS),
    "hebbian": lambda cfg: HebbianUnit(Arithmetic.of(cfg), 3, 5, 2, copy_rows=4),
    "sequencer_xor": lambda cfg: GatingSequencer(compile_backprop(cfg), cfg),
    "sequencer_ar2": lambda cfg: GatingSequencer(compile_ar2(cfg.replace(layers=(2,))), cfg),
}


@pytest.mark.parametrize("name", sorted(LINT_CASES))
def test_block_verilog_passes_verilator_lint(name):
    cfg = Config(rounding="stochastic", ticks_per_window=4, leak_shift=2)
    text = verilog.convert(LINT_CASES[name](cfg), name=name)
    assert f"module {name}" in text
    result = verilator_lint(text, name)
    assert result.ok, result.errors or result.output[-2000:]


def test_same_configuration_same_verilog():
    arith = Arithmetic.of(Config(rounding="stochastic"))
    first = verilog.convert(HebbianUnit(arith, 3, 5, 2, copy_rows=4), name="h")
    second = verilog.convert(HebbianUnit(arith, 3, 5, 2, copy_rows=4), name="h")
    assert first == second


def test_multistep_lfsr_is_exact_and_stays_small():
    """Up to 16 steps per clock, each the golden LFSR's; the Verilog grows linearly with the
    steps (a chain of bare expressions would double with each step)."""
    from hw.lfsr import MultiStepLfsr

    # Linear growth first (cheap even where it fails): 6 steps cost about twice 3 steps.
    small, large = (len(verilog.convert(MultiStepLfsr(0xACE1, n), name="l")) for n in (3, 6))
    assert large < 3 * small, (small, large)
    lanes = 16
    dut = MultiStepLfsr(0xACE1, lanes)
    golden = Lfsr(0xACE1)
    rng = np.random.default_rng(0)

    async def bench(ctx):
        for _ in range(50):
            steps = int(rng.integers(0, lanes + 1))
            ahead = [ctx.get(dut.ahead[i]) for i in range(lanes)]
            expected = Lfsr(golden.state).draw(lanes, 32).tolist()
            assert ahead == expected
            ctx.set(dut.advance, steps)
            await ctx.tick()
            golden.draw(steps, 32)
            assert ctx.get(dut.state) == golden.state

    simulate(dut, bench)


@pytest.mark.parametrize("constant", [0, 1, 6, 37, 148])
def test_times_constant_is_a_product_without_a_multiplier(constant):
    """Every 8-bit input times the constant, simulated; the Verilog has no multiplication."""
    from amaranth.hdl import Signal

    from hw.fixedpoint import times_constant

    m = Module()
    x = Signal(8)
    y = Signal(16)
    m.d.comb += y.eq(times_constant(x, constant))
    sim = Simulator(m)
    seen = []

    async def bench(ctx):
        for value in range(256):
            ctx.set(x, value)
            seen.append((value, ctx.get(y)))

    sim.add_testbench(bench)
    sim.run()
    assert all(product == value * constant for value, product in seen)
    assert " * " not in verilog.convert(m, ports=[x, y])


@pytest.mark.parametrize("shift", [1, 2, 5, 9])
def test_shift_round_nearest_matches_the_golden_rounding(shift):
    """Every signed 10-bit input, simulated: the narrowed adder (only the kept bits) rounds
    exactly as the golden model's round half up."""
    from amaranth.hdl import Signal, signed

    from golden_model.fixed import shift_round
    from hw.fixedpoint import shift_round_nearest

    m = Module()
    x = Signal(signed(10))
    y = Signal(signed(11))
    m.d.comb += y.eq(shift_round_nearest(x, shift))
    sim = Simulator(m)
    seen = []

    async def bench(ctx):
        for value in range(-512, 512):
            ctx.set(x, value)
            seen.append(ctx.get(y))

    sim.add_testbench(bench)
    sim.run()
    expected = shift_round(np.arange(-512, 512), shift, "nearest")
    assert seen == expected.tolist()


@pytest.mark.parametrize(
    "layers, lanes",
    [
        ((2, 4, 1), {"W1": 2, "W2": 3}),
        ((4, 8, 3), {"W1": 3, "W2": 2}),
        ((4, 8, 3), 1),
        ((2, 4, 1), 9),
        ((4, 8, 3), {"W1": 10, "W2": 27}),
    ],
)
def test_weight_address_decoder_matches_every_spot(layers, lanes):
    """Every trace index decodes to the memory, word and lane of ``weight_spots`` (and of its
    transposed copy), including copies reached through their primary and bias columns."""
    from hw.host_port import WeightAddressDecoder, weight_spots
    from hw.network import resolve_lanes
    from hw.synapse import matrix_layout

    cfg = Config(layers=layers)
    schedule = compile_backprop(cfg)
    counts = resolve_lanes(schedule, lanes)
    geometry = {
        m.name: matrix_layout(schedule, m.name, counts[m.name], cfg.weight_width)
        for m in schedule.matrices
    }
    spots = weight_spots(schedule.matrices, geometry)
    names = [m.name for m in schedule.matrices]
    dut = WeightAddressDecoder(schedule.matrices, geometry)
    longest = max(2 * (m.rows + m.cols) + 5 for m in schedule.matrices)
    got = []

    async def bench(ctx):
        for index in range(len(spots)):
            ctx.set(dut.addr, index)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            clocks = 0
            while not ctx.get(dut.valid) and clocks <= longest:
                await ctx.tick()
                clocks += 1
            assert clocks < longest, f"index {index} took {clocks} clocks"
            spot = (
                names[ctx.get(dut.select)],
                ctx.get(dut.address),
                ctx.get(dut.lane),
                names[ctx.get(dut.copy_select)] if ctx.get(dut.has_copy) else None,
                ctx.get(dut.copy_address) if ctx.get(dut.has_copy) else 0,
                ctx.get(dut.copy_lane) if ctx.get(dut.has_copy) else 0,
            )
            got.append(spot)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(got) == len(spots) > 0
    wrong = [(k, g, w) for k, (g, w) in enumerate(zip(got, spots, strict=True)) if g != w]
    assert not wrong, wrong[:5]


@pytest.mark.parametrize(
    ("layers", "lanes"),
    [((2, 4, 1), 1), ((4, 8, 3), 8), ((64, 32, 10), 4), ((4, 8, 3), 3), ((9, 7, 3), 5)],
)
def test_word_lane_decoder_matches_every_spot(layers, lanes):
    """The memory core's decoder: every trace index decodes to the word and lane of
    ``word_lane_spots`` over the core's memory map (primaries by rows and by columns, copies
    reached through their primary), in at most ``rows + columns + 3`` clocks (and a clock
    per word before the element's where ``lanes`` is not a power of two)."""
    from hw.host_port import WordLaneDecoder, word_lane_spots
    from hw.microcode import MemoryMap
    from hw.microprogram import compile_program

    cfg = Config(layers=layers)
    schedule = compile_backprop(cfg)
    where = MemoryMap.of(compile_program(schedule, lanes))
    args = (schedule.matrices, where.weights, where.words, where.transposed, lanes)
    spots = word_lane_spots(*args)
    dut = WordLaneDecoder(*args, where.depth)
    longest = max(m.rows + m.cols + 3 for m in schedule.matrices)
    if lanes & (lanes - 1):
        longest += max(max(m.rows, m.cols) // lanes for m in schedule.matrices)
    got = []
    if lanes == 8:
        assert where.transposed, "no primary stored by columns: the case goes untested"

    async def bench(ctx):
        for index in range(len(spots)):
            ctx.set(dut.addr, index)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            clocks = 0
            while not ctx.get(dut.valid):
                await ctx.tick()
                clocks += 1
                assert clocks <= longest, f"index {index} took more than {longest} clocks"
            got.append((ctx.get(dut.address), ctx.get(dut.lane)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(got) == len(spots) > 0
    wrong = [(k, g, w) for k, (g, w) in enumerate(zip(got, spots, strict=True)) if g != w]
    assert not wrong, wrong[:5]


def test_the_split_accumulator_rounds_and_saturates_like_one_wide_sum():
    """The lanes' accumulator in two halves with a pending carry (``hw.lanes``): after every
    addition its rounded, saturated output equals the exact sum's, for sums aimed at the
    corners a pending carry changes (the high half at 0, -1 and -2, the result at exactly
    ``-2**(cw-1)``, just inside and outside the range)."""
    from amaranth.hdl import signed
    from amaranth.lib.wiring import In, Out

    from hw.lanes import SplitAccumulator

    width, shift, cw, addend_width = 30, 4, 8, 24
    start = 1 << (shift - 1)
    top = max_code(cw)

    class Wrapper(wiring.Component):
        def __init__(self):
            super().__init__(
                {
                    "addend": In(signed(addend_width)),
                    "first": In(1),
                    "add": In(1),
                    "out": Out(signed(cw + 1)),
                    "value": Out(signed(cw)),
                    "saturated": Out(1),
                    "positive": Out(1),
                }
            )

        def elaborate(self, platform):
            m = Module()
            acc = SplitAccumulator(width, start, shift, cw)
            with m.If(self.add):
                acc.add(m, self.addend, self.first)
            out, value, saturated, positive = acc.rounded()
            m.d.comb += [
                self.out.eq(out),
                self.value.eq(value),
                self.saturated.eq(saturated),
                self.positive.eq(positive),
            ]
            return m

    dut = Wrapper()
    rng = np.random.default_rng(5)
    step = 1 << shift
    # targets: rounded results around the range's edges and the halves' split
    targets = [0, 1, -1, top, top + 1, -top, -top - 1, -top - 2, 2 * top, -2 * top - 2]
    sums, checks = [], []
    for _ in range(300):
        target = int(rng.choice(targets)) * step + int(rng.integers(-step, step))
        parts = int(rng.integers(1, 5))
        # split the target into addends, one of them large enough to carry across the split
        noise = rng.integers(-(1 << 20), 1 << 20, size=parts - 1).tolist()
        addends = [*noise, target - start - sum(noise)]
        sums.append(addends)

    async def bench(ctx):
        for addends in sums:
            total = start
            for n, a in enumerate(addends):
                ctx.set(dut.addend, a)
                ctx.set(dut.first, n == 0)
                ctx.set(dut.add, 1)
                await ctx.tick()
                total += a
                exact = total >> shift  # floor: the half is in ``start``
                (clamped,), events = saturate(np.array([exact]), cw)
                wrapped = ((exact + (1 << cw)) % (1 << (cw + 1))) - (1 << cw)
                got = (
                    ctx.get(dut.out),
                    ctx.get(dut.value),
                    ctx.get(dut.saturated),
                    ctx.get(dut.positive),
                )
                checks.append(got == (wrapped, int(clamped), events, int(exact > 0)))
            ctx.set(dut.add, 0)

    simulate(dut, bench)
    assert len(checks) > 600 and all(checks)
