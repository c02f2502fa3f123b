"""The circuit simulator: float equals SGD, fixed tracks float, invariants hold."""

import numpy as np
import pytest

from golden_model import backprop as bp
from golden_model.circuit import FIXED, FLOAT, Circuit, initial_weights
from golden_model.config import Config
from golden_model.fixed import max_code
from golden_model.schedule import (
    HELD,
    POP,
    Group,
    Learn,
    Matrix,
    Phase,
    PreTerm,
    Schedule,
    ScheduleError,
    Term,
    Transfer,
    compile_ar2,
    compile_backprop,
)
from golden_model.trace import COUNTERS

TIMINGS = [(1, 0), (4, 2), (16, 4)]  # (N, leak_shift)
SHAPES = [(2, 4, 1), (3, 5, 4, 2), (4, 3, 3)]


def layer_weights(circuit, layers):
    w = circuit.weights_float()
    return [w[f"W{i}"] for i in range(1, len(layers))]


@pytest.mark.parametrize("output", ["linear", "relu"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "-".join(map(str, s)))
@pytest.mark.parametrize(("n", "k"), TIMINGS, ids=lambda v: str(v))
def test_float_training_step_equals_sgd(n, k, shape, output):
    cfg = Config(layers=shape, ticks_per_window=n, leak_shift=k, output=output, seed=sum(shape) + n)
    circuit = Circuit(compile_backprop(cfg), cfg, FLOAT)
    rng = np.random.default_rng(7)
    weights = layer_weights(circuit, shape)
    for _ in range(5):
        x = rng.normal(size=shape[0])
        t = rng.normal(size=shape[-1])
        circuit.load_signed("x", x)
        circuit.load_signed("t", t)
        circuit.run_sample()
        weights, info = bp.sgd_step(weights, x, t, cfg.eta, output)
        np.testing.assert_allclose(circuit.output(), info["output"], atol=1e-12)
        for i in range(1, len(shape) - 1):  # the captured mask is the ReLU derivative
            np.testing.assert_array_equal(circuit.mask(f"p{i}"), info["masks"][i - 1])
        for i, delta in enumerate(info["deltas"], start=1):  # the kept error pair is delta
            kept = circuit.group(f"md{i}+") - circuit.group(f"md{i}-")
            np.testing.assert_allclose(kept, delta, atol=1e-12)
        for got, want in zip(layer_weights(circuit, shape), weights, strict=True):
            np.testing.assert_allclose(got, want, atol=1e-12)


@pytest.mark.parametrize("rounding", ["nearest", "stochastic"])
@pytest.mark.parametrize("mode", [FIXED, FLOAT])
def test_transposed_copies_stay_equal(mode, rounding):
    cfg = Config(layers=(3, 6, 5, 2), rounding=rounding, learning_rate_shift=4, seed=5)
    circuit = Circuit(compile_backprop(cfg), cfg, mode)
    rng = np.random.default_rng(1)
    for _ in range(60):
        circuit.load_signed("x", rng.uniform(-1, 1, 3))
        circuit.load_signed("t", rng.uniform(-1, 1, 2))
        circuit.run_sample()
    changed = False
    init = initial_weights(compile_backprop(cfg), cfg)
    for i in (2, 3):
        w, wt = circuit.weights[f"W{i}"], circuit.weights[f"W{i}T"]
        np.testing.assert_array_equal(wt, w[:, : wt.shape[0]].T)
        changed |= not np.allclose(circuit.weights_float()[f"W{i}"], init[f"W{i}"], atol=1e-3)
    assert changed, "training changed nothing: the invariant was not exercised"
    assert circuit.counters[COUNTERS.index("samples")] == 60


def error_bound(schedule, cfg, weights, inputs_peak):
    """Worst-case |fixed - float| per population group, tick by tick, from the rounding
    steps the fixed model takes: z rounding (1/2 LSB), gain quantization, drive rounding
    (1/2 LSB) and leak rounding (1/2 LSB), carried through the matrices' absolute row sums.

    The two halves of a PMPY pair come from one sum (``[z]^+``, ``[-z]^+`` is 1-Lipschitz in
    the L1 norm), so a pair read as ``plus - minus`` carries its *joint* error, not the sum of
    both halves' bounds."""
    from golden_model.dynamics import exact_gain, gain_word, held_gain

    lsb = 2.0**-cfg.current_frac
    gq = [w / 2**cfg.gain_frac for w in gain_word(cfg)]
    gains = [
        exact_gain(cfg.ticks_per_window, cfg.alpha),
        held_gain(cfg.ticks_per_window, cfg.alpha),
    ]
    err = {g.name: 0.0 for g in schedule.groups}
    joint = {}  # (plus, minus) -> bound on |d(plus)| + |d(minus)|

    def term_errors(tr):
        terms = list(tr.terms)
        total = 0.5 * lsb
        while terms:
            t = terms.pop(0)
            partner = next(
                (
                    u
                    for u in terms
                    if (t.source, u.source) in joint
                    and u.matrix == t.matrix
                    and u.col0 == t.col0
                    and u.sign == -t.sign
                ),
                None,
            )
            e = err[t.source]
            if partner is not None:
                terms.remove(partner)
                e = joint[(t.source, partner.source)]
            if t.matrix is not None:
                cols = slice(t.col0, t.col0 + schedule.group(t.source).size)
                e *= np.abs(weights[t.matrix][:, cols]).sum(axis=1).max()
            total += e
        return total

    bounds = []
    for phase in schedule.phases:
        copied = {c.source: c.target for c in phase.copies}
        for c in phase.copies:
            err[c.target] = err[c.source]
        for (p, m), e in list(joint.items()):
            if p in copied and m in copied:
                joint[(copied[p], copied[m])] = e
        for name in phase.cleared:
            err[name] = 0.0
        for tr in phase.transfers:
            if tr.minus:
                joint[(tr.plus, tr.minus)] = 0.0
        for _ in range(cfg.ticks_per_window):
            new, new_joint = {}, {}
            for tr in phase.transfers:
                held = schedule.group(tr.terms[0].source).kind == HELD
                g, g_q = (gains[1], gq[1]) if held else (gains[0], gq[0])
                drive = g * term_errors(tr) + abs(g - g_q) * inputs_peak
                for target in (tr.plus, tr.minus):
                    if target:  # + drive rounding + leak rounding
                        new[target] = (1 - cfg.alpha) * err[target] + drive + lsb
                if tr.minus:
                    key = (tr.plus, tr.minus)
                    new_joint[key] = (1 - cfg.alpha) * joint[key] + drive + 2 * lsb
            for grp in schedule.groups:
                if grp.kind == POP and grp.name not in new:
                    new[grp.name] = (1 - cfg.alpha) * err[grp.name] + 0.5 * lsb
            for key in joint:
                if key not in new_joint and schedule.group(key[0]).kind == POP:
                    new_joint[key] = (1 - cfg.alpha) * joint[key] + lsb
            err.update(new)
            joint.update(new_joint)
            bounds.append(dict(err))
    return bounds


@pytest.mark.parametrize(("n", "k"), TIMINGS, ids=lambda v: str(v))
def test_fixed_tracks_float_within_derived_bound(n, k):
    cfg = Config(layers=(2, 6, 3, 1), ticks_per_window=n, leak_shift=k, seed=3)
    schedule = compile_backprop(cfg)
    fixed = Circuit(schedule, cfg, FIXED)
    floating = Circuit(schedule, cfg, FLOAT)
    rng = np.random.default_rng(11)
    worst = 0.0
    for _ in range(8):
        # Same run: every sample starts from the same state in both models.
        floating.set_weights(fixed.weights_float())
        floating.currents[:] = fixed.decode(fixed.currents)
        floating.masks[:] = fixed.masks
        bounds = error_bound(schedule, cfg, fixed.weights_float(), inputs_peak=8.0)
        grid = 2.0**cfg.current_frac  # inputs on the fixed-point grid: both models see the same
        x, t = (
            np.round(rng.uniform(-1, 1, 2) * grid) / grid,
            np.round(rng.uniform(-1, 1, 1) * grid) / grid,
        )
        traces = []
        for c in (fixed, floating):
            c.load_signed("x", x)
            c.load_signed("t", t)
            rec = c.recorder()
            c.run_sample(rec)
            traces.append(rec.finish())
        got = traces[0].currents / 2.0**cfg.current_frac
        want = traces[1].currents
        for tick, bound in enumerate(bounds):
            for name, _, _ in traces[0].layout.currents:
                sl = traces[0].layout.slice_of(name)[1]
                diff = np.abs(got[tick, sl] - want[tick, sl]).max()
                assert diff <= bound[name] + 1e-12, (tick, name, diff, bound[name])
                worst = max(worst, diff)
    assert worst > 0  # rounding happened, so the comparison had something to bound
    assert worst < 64 * 2.0**-cfg.current_frac


def test_same_seed_same_trace_and_seed_matters():
    def trace(seed):
        cfg = Config(layers=(2, 4, 1), rounding="stochastic", seed=seed)
        c = Circuit(compile_backprop(cfg), cfg)
        rec = c.recorder()
        for x, t in (([1, 0], [1]), ([1, 1], [0]), ([0, 1], [1])):
            c.load_signed("x", x)
            c.load_signed("t", t)
            c.run_sample(rec)
        return rec.finish()

    a, b, c = trace(4), trace(4), trace(5)
    assert a.first_mismatch(b) is None
    for f in a.FIELDS:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert a.first_mismatch(c) is not None
    assert len(set(a.lfsr.tolist())) > 1  # stochastic rounding drew from the LFSR


def test_mismatch_report_names_tick_phase_and_word():
    cfg = Config(layers=(2, 3, 1))
    c = Circuit(compile_backprop(cfg), cfg)
    c.load_signed("x", [1, 1])
    c.load_signed("t", [0])
    rec = c.recorder()
    c.run_sample(rec)
    golden = rec.finish()
    other = rec.finish()
    other.currents = other.currents.copy()
    _, sl = golden.layout.slice_of("n1-")
    other.currents[3:, sl.start + 2] += 1
    m = golden.first_mismatch(other)
    assert (m.tick, m.phase, m.kind, m.name) == (3, "fwd2", "currents", "n1-[2]")
    assert m.actual == m.expected + 1
    assert "tick 3" in str(m) and "n1-[2]" in str(m)
    other = rec.finish()
    other.weights = other.weights.copy()
    other.weights[5, 0] -= 1
    m = golden.first_mismatch(other)
    assert (m.tick, m.kind, m.name) == (5, "weights", "W1[0,0]")


def test_forced_overflow_saturates_and_is_counted():
    cfg = Config(
        layers=(2, 2, 1),
        current_width=8,
        current_frac=4,
        weight_width=8,
        weight_frac=4,
        learning_rate_shift=0,
    )
    c = Circuit(compile_backprop(cfg), cfg)
    c.set_weights(
        {"W1": np.full((2, 3), 7.0), "W2": np.full((1, 3), 7.0), "W2T": np.full((2, 1), 7.0)}
    )
    c.load_signed("x", [7.0, 7.0])
    c.load_signed("t", [-7.0])
    rec = c.recorder()
    c.run_sample(rec)
    trace = rec.finish()
    top = max_code(cfg.current_width)
    assert trace.currents.max() == top and trace.currents.min() >= -top
    assert trace.counters[-1, COUNTERS.index("sat_current")] > 0
    n1 = trace.series("n1+")[1]
    np.testing.assert_array_equal(n1, [top, top])  # clamped, not wrapped negative
    assert trace.counters[-1, COUNTERS.index("sat_weight")] > 0
    assert trace.counters[-1, COUNTERS.index("sat_copy")] > 0
    assert np.abs(trace.weights).max() <= max_code(cfg.weight_width)


def test_input_out_of_range_is_an_error():
    cfg = Config(layers=(2, 2, 1))
    c = Circuit(compile_backprop(cfg), cfg)
    with pytest.raises(ValueError, match="x\\+"):
        c.load_signed("x", [100.0, 0.0])


def _group(name, kind=POP):
    return Group(name, 2, kind)


@pytest.mark.parametrize(
    ("phases", "message"),
    [
        ((Phase("a", transfers=(Transfer("p", (Term("h"), Term("q"))),)),), "mixes held"),
        ((Phase("a", transfers=(Transfer("p", (Term("q"),)),)),), "not at its peak"),
        (
            (
                Phase("a", transfers=(Transfer("q", (Term("h"),)),)),
                Phase(
                    "b",
                    transfers=(Transfer("p", (Term("q", "M"),)),),
                    learns=(Learn("M", "q", "q", (PreTerm("h"),)),),
                ),
            ),
            "read while it learns",
        ),
        ((Phase("a", transfers=(Transfer("h", (Term("h"),)),)),), "must be a population"),
        (
            (
                Phase("a", transfers=(Transfer("q", (Term("h"),)),)),
                Phase("b", transfers=(Transfer("p", (Term("q"),)),), clears=("q",)),
            ),
            "cleared and read",
        ),
    ],
)
def test_schedule_rejects_timing_violations(phases, message):
    with pytest.raises(ScheduleError, match=message):
        Schedule(
            "bad",
            (_group("p"), _group("q"), _group("h", HELD)),
            (Matrix("M", 2, 2),),
            (),
            phases,
            inputs=("h",),
        )


def test_compiled_schedules_have_expected_shape():
    s = compile_backprop(Config(layers=(2, 8, 1)))
    assert [p.name for p in s.phases] == ["load", "fwd1", "act1", "fwd2", "err", "bwd2", "learn"]
    deep = compile_backprop(Config(layers=(4, 5, 6, 7, 3), output="relu"))
    names = [p.name for p in deep.phases]
    assert names[-5:] == ["err", "bwd4", "bwd3", "bwd2", "learn"] and "act4" in names
    assert [p.name for p in compile_ar2(Config(layers=(2,))).phases] == ["relay", "learn", "shift"]
    assert "ticks per sample" in s.table()
