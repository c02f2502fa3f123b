"""The memory-centric core's micro-program, executed over the memories' contents
(:class:`hw.microprogram.ProgramModel`), against the golden model at every tick boundary."""

from __future__ import annotations

import numpy as np
import pytest

from golden_model.circuit import FIXED, Circuit
from golden_model.classify import training_samples
from golden_model.config import default_config
from golden_model.datasets import dataset_config, load_dataset
from golden_model.schedule import compile_ar2, compile_backprop
from golden_model.tasks import ar2_data, xor_sample
from hw.microprogram import (
    Clear,
    Copy,
    Leak,
    Learn,
    ProgramModel,
    StateMap,
    Sweep,
    compile_program,
)


def first_mismatch(cfg, schedule, samples, lanes=1) -> str | None:
    """Run the golden model and the micro-program side by side; the first differing word."""
    golden = Circuit(schedule, cfg, FIXED)
    model = ProgramModel(compile_program(schedule, lanes), cfg)
    tick = 0
    for sample in samples:
        for base, values in sample.items():
            golden.load_signed(base, values)
        model.load({name: golden.group(name).copy() for name in schedule.inputs})
        recorder = golden.recorder()
        golden.run_sample(recorder)
        trace = recorder.finish()
        states: list[np.ndarray] = []
        model.run_sample(lambda index, phase, seen=states: seen.append(model.state_vector()))
        assert len(states) == len(trace)
        for i, state in enumerate(states):
            want = np.concatenate(
                [trace.currents[i], trace.masks[i], trace.weights[i], trace.counters[i],
                 [trace.lfsr[i]]]
            )  # fmt: skip
            if not np.array_equal(want, state):
                k = int(np.flatnonzero(want != state)[0])
                return f"tick {tick + i}, word {k}: golden {want[k]}, program {state[k]}"
        tick += len(states)
    return None


XOR = [xor_sample(int(k)) for k in np.random.default_rng(0).integers(0, 4, 40)]


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"ticks_per_window": 3, "leak_shift": 2},
        {"rounding": "stochastic", "learning_rate_shift": 5},
        {"output": "relu"},
        {"layers": (2, 5, 4, 1)},
        {"layers": (2, 1)},
    ],
    ids=["xor", "leaky-N3", "stochastic", "relu-output", "three-layers", "one-layer"],
)
def test_the_program_is_the_golden_model_at_every_tick(changes):
    cfg = default_config("xor").replace(**changes)
    if cfg.layers[-1] != 1:
        pytest.fail("the XOR samples need one output")
    assert first_mismatch(cfg, compile_backprop(cfg), XOR) is None


@pytest.mark.parametrize("dataset", ["iris", "digits"])
def test_the_program_trains_real_data_bit_exactly(dataset):
    cfg = dataset_config(dataset)
    samples = training_samples(cfg, load_dataset(dataset), 1, 12)
    assert first_mismatch(cfg, compile_backprop(cfg), samples) is None


def test_the_program_runs_the_ar2_covariance_circuit():
    cfg = default_config("ar2")
    x, _ = ar2_data(cfg, 70)
    assert first_mismatch(cfg, compile_ar2(cfg), [{"x": row} for row in x]) is None


def test_a_broken_program_is_caught():
    """The comparison can fail: a program that forgets the copies into the memories."""
    cfg = default_config("xor")
    schedule = compile_backprop(cfg)
    program = compile_program(schedule)
    broken = type(program)(
        program.schedule,
        program.lanes,
        program.state,
        tuple(tuple(op for op in ops if not isinstance(op, Copy)) for ops in program.phase_start),
        program.every_tick,
    )
    golden = Circuit(schedule, cfg, FIXED)
    model = ProgramModel(broken, cfg)
    golden.load_signed("x", XOR[0]["x"])
    golden.load_signed("t", XOR[0]["t"])
    model.load({name: golden.group(name).copy() for name in schedule.inputs})
    golden.run_sample()
    model.run_sample()
    assert not np.array_equal(golden.state_vector(), model.state_vector())


def test_copies_are_ordered_so_that_none_overwrites_what_another_reads():
    """AR(2)'s shift phase: lag2 := lag1 must read lag1 before lag1 := x writes it."""
    program = compile_program(compile_ar2(default_config("ar2")))
    copies = [op for ops in program.phase_start for op in ops if isinstance(op, Copy)]
    order = [(c.target, c.source) for c in copies]
    assert order.index(("lag2+", "lag1+")) < order.index(("lag1+", "x+"))


def test_instructions_follow_the_schedule():
    cfg = dataset_config("digits")
    program = compile_program(compile_backprop(cfg), lanes=8)
    kinds = [type(op).__name__ for ops in program.every_tick for op in ops]
    assert kinds.count("Sweep") == 3  # W1 and W2 forward, W2T backward
    sweeps = [op for ops in program.every_tick for op in ops if isinstance(op, Sweep)]
    assert [(op.matrix, op.by_rows) for op in sweeps] == [
        ("W1", True),
        ("W2", True),
        ("W2T", False),
    ]
    learns = [op for ops in program.phase_start for op in ops if isinstance(op, Learn)]
    assert [(op.matrix, op.copy) for op in learns] == [("W1", None), ("W2", "W2T")]
    # Every phase clears its targets (a flag) and leaks every population it does not drive.
    first = program.phase_start[0]
    assert {op.group for op in first if isinstance(op, Clear)} == {"o0+", "o0-", "b0"}
    assert "o0+" in {op.group for op in program.every_tick[1] if isinstance(op, Leak)}


def test_the_state_memory_puts_each_group_on_its_own_rows():
    schedule = compile_backprop(dataset_config("digits"))
    state = StateMap.of(schedule, 8)
    assert state.address("x+", 0) == (0, 0) and state.address("x+", 63) == (7, 7)
    assert state.address("x-", 0) == (8, 0)  # the next group starts on a fresh row
    assert state.rows == sum(-(-g.size // 8) for g in schedule.groups)


def test_clocks_fall_with_lanes_and_digits_fits_the_up5k_budget_at_eight():
    from hw.microcode import encode, sample_clocks

    cfg = dataset_config("digits")
    schedule = compile_backprop(cfg)
    clocks = []
    for lanes in (1, 2, 8, 64):
        # as a board runs it: the pipeline drained only at the sample's end (a drain at every
        # tick is what the per-tick testbenches run)
        words, _ = encode(compile_program(schedule, lanes), cfg, observe_ticks=False)
        clocks.append(sample_clocks(words, lanes))
    assert clocks == sorted(clocks, reverse=True)
    assert clocks[2] <= 900  # the UP5K goal: 8 DSPs, at most 900 clocks a digits sample
