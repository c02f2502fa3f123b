"""The fast simulation path: the core under a native Verilator harness, compared with the
golden model's complete state after every sample."""

import re

import numpy as np
import pytest

from golden_model.classify import epoch_order
from golden_model.datasets import dataset_config, load_dataset
from golden_model.schedule import compile_backprop
from hw.network import sweep_depths
from sim.fast_run import run_fast

from .faults import core_with_flooring


def _iris_samples(count: int):
    data, cfg = load_dataset("iris"), dataset_config("iris")
    order = np.concatenate(epoch_order(cfg, len(data.x_train), 2))[:count]
    targets = data.targets(data.y_train)
    return cfg, [{"x": data.x_train[i], "t": targets[i]} for i in order]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("fast")


def test_an_iris_epoch_is_bit_exact_at_every_sample(work):
    cfg, samples = _iris_samples(105)
    verdict = run_fast(cfg, samples, work=work / "lanes1")
    assert verdict["bit_exact"], verdict["first_mismatch"]
    assert verdict["samples_compared"] == 105
    assert verdict["cycles_per_sample"] > 0 and verdict["simulated_clocks"] > verdict["cycles"]


def test_lanes_1_2_and_the_auto_value_agree_with_each_other_and_the_golden_model(work):
    """One run of 30 samples at three lane settings: 1, 2 and the plan ``--lanes auto`` tries
    first for iris on the ULX3S-85F (W1 at 40 lanes, W2 at 27: every matrix one word or a few,
    its words spanning rows; test_slow repeats the search).
    Each is bit-exact with the golden model at every tenth sample; their final RTL states are
    identical."""
    from boards.plans import lane_plans
    from hw.network import lanes_label

    cfg, samples = _iris_samples(30)
    auto = lane_plans("ulx3s-85f", cfg)[0]
    assert auto == {"W1": 40, "W2": 27}
    runs = {
        lanes_label(lanes): run_fast(
            cfg, samples, lanes=lanes, work=work / f"lanes{lanes_label(lanes)}", read_every=10
        )
        for lanes in (1, 2, auto)
    }
    for lanes, run in runs.items():
        assert run["bit_exact"], (lanes, run["first_mismatch"])
        assert run["samples_compared"] == 3
    auto = lanes_label(auto)
    assert runs["1"]["rtl_state"] == runs["2"]["rtl_state"] == runs[auto]["rtl_state"]
    assert runs[auto]["cycles"] < runs["2"]["cycles"] < runs["1"]["cycles"]


def test_a_broken_rounding_is_caught_and_named(work):
    cfg, samples = _iris_samples(30)
    verdict = run_fast(cfg, samples, lanes=2, work=work / "fault", core=core_with_flooring("W1"))
    assert not verdict["bit_exact"]
    first = verdict["first_mismatch"]
    assert first["sample"] < 30 and first["golden"] != first["rtl"]
    # named like the golden trace's words: a group element or a weight (here md1+[0], the
    # error held for learning, which a floor-rounded W1 sum reaches first)
    assert re.fullmatch(r"[a-zA-Z]\w*[+-]?\[\d+(,\d+)?\]", first["word"]), first


# The first plan of the iCEBreaker (one pool of the UP5K's 8 DSPs; its core builds in half
# the time) in the default run; the ULX3S-85F's fastest (W1=130,W2=132 on one pool: words
# spanning rows, rules in turns) and one lane with the slow tests.
PLANS = {
    "icebreaker": {"W1": 8, "W2": 7, "pool": "core"},
    "ulx3s-85f": {"W1": 130, "W2": 132, "pool": "core"},
}


# The spatial core's digits build takes Verilator about a minute and a half: every plan under
# the slow marker. The memory core (the boards' core) runs digits in the default suite.
@pytest.mark.slow
@pytest.mark.parametrize("plan", ["icebreaker", "ulx3s-85f", "1"])
def test_a_digits_subset_is_bit_exact_at_every_sample(tmp_path, plan):
    """The 64-32-10 core on the first 20 training samples of the digits epoch, its 3,382
    state words compared after each (a full epoch is the benchmark in BENCHMARKS.md)."""
    from boards.plans import lane_plans

    data, cfg = load_dataset("digits"), dataset_config("digits")
    lanes = 1
    if plan in PLANS:
        lanes = lane_plans(plan, cfg)[0]
        assert lanes == PLANS[plan]
    order = epoch_order(cfg, len(data.x_train), 1)[0][:20]
    targets = data.targets(data.y_train)
    samples = [{"x": data.x_train[i], "t": targets[i]} for i in order]
    verdict = run_fast(cfg, samples, lanes=lanes, work=tmp_path / "digits")
    assert verdict["bit_exact"], verdict["first_mismatch"]
    assert verdict["samples_compared"] == 20 and verdict["state_words"] == 3382
    # no fewer clocks than the sweeps on the sample's critical path
    assert verdict["cycles_per_sample"] > sum(sweep_depths(compile_backprop(cfg), cfg, lanes))


def test_the_memory_core_trains_iris_under_the_native_harness(tmp_path):
    """The memory-centric core through the same harness: 60 iris samples at 4 lanes, every
    state word compared after each, and its cycles exactly its micro-code's without the
    per-tick drains (only the sample's last tick drains: the production clocks)."""
    from hw.microcode import encode, sample_clocks
    from hw.microprogram import compile_program

    data, cfg = load_dataset("iris"), dataset_config("iris")
    order = epoch_order(cfg, len(data.x_train), 1)[0][:60]
    targets = data.targets(data.y_train)
    samples = [{"x": data.x_train[i], "t": targets[i]} for i in order]
    verdict = run_fast(cfg, samples, lanes=4, work=tmp_path / "iris", core="memory")
    assert verdict["bit_exact"], verdict["first_mismatch"]
    assert verdict["samples_compared"] == 60
    program = compile_program(compile_backprop(cfg), 4)
    words, _ = encode(program, cfg, observe_ticks=False)
    assert verdict["cycles_per_sample"] == sample_clocks(words, 4) - 1  # from start's clock
    assert verdict["cycles_per_sample"] < sample_clocks(encode(program, cfg)[0], 4) - 1


@pytest.mark.parametrize(
    ("dataset", "lanes", "simd", "count"),
    [("digits", 2, 8, 30), pytest.param("digits", 16, 128, 30, marks=pytest.mark.slow)],
)
def test_the_memory_core_folded_wider_trains_digits_bit_exactly(
    tmp_path, dataset, lanes, simd, count
):
    """PE x SIMD under the native harness: digits at 2 element lanes and 8 multipliers (the
    UP5K's DSPs), every state word after every sample, in the micro-code's clocks."""
    from hw.microcode import encode, sample_clocks
    from hw.microprogram import compile_program

    data, cfg = load_dataset(dataset), dataset_config(dataset)
    order = epoch_order(cfg, len(data.x_train), 1)[0][:count]
    targets = data.targets(data.y_train)
    samples = [{"x": data.x_train[i], "t": targets[i]} for i in order]
    work = tmp_path / dataset
    verdict = run_fast(cfg, samples, lanes=lanes, work=work, core="memory", simd=simd)
    assert verdict["bit_exact"], verdict["first_mismatch"]
    assert verdict["samples_compared"] == count
    program = compile_program(compile_backprop(cfg), lanes, simd)
    words, _ = encode(program, cfg, observe_ticks=False)
    assert verdict["cycles_per_sample"] == sample_clocks(words, lanes, simd) - 1


# The seed's leaky windows on real data: N = 2 ticks a window with alpha = 1/2 (a leak pass
# over every undriven group), N = 3 with alpha = 1/4.
LEAKY = {
    "N2": {"ticks_per_window": 2, "leak_shift": 1},
    "N3": {"ticks_per_window": 3, "leak_shift": 2},
}


@pytest.mark.parametrize(
    ("dataset", "leak", "lanes", "count"),
    [
        ("iris", "N2", 3, 40),
        ("digits", "N2", 8, 6),
        pytest.param("iris", "N3", 8, 40, marks=pytest.mark.slow),
        pytest.param("digits", "N3", 13, 40, marks=pytest.mark.slow),
        pytest.param("iris", "N2", 1, 105, marks=pytest.mark.slow),
    ],
)
def test_leaky_windows_on_real_data_are_bit_exact_at_every_sample(
    tmp_path, dataset, leak, lanes, count
):
    """Iris and digits with the seed's leaky dynamics in the memory core under the native
    harness, every state word compared after every sample, at several lane counts."""
    data, cfg = load_dataset(dataset), dataset_config(dataset).replace(**LEAKY[leak])
    order = epoch_order(cfg, len(data.x_train), 1)[0][:count]
    targets = data.targets(data.y_train)
    samples = [{"x": data.x_train[i], "t": targets[i]} for i in order]
    verdict = run_fast(cfg, samples, lanes=lanes, work=tmp_path / dataset, core="memory")
    assert verdict["bit_exact"], verdict["first_mismatch"]
    assert verdict["samples_compared"] == count
