"""The RTL under Verilator (cocotb's Python runner) against the golden model, every tick.

Each distinct Verilog text is built once per session (about 15 s each on two cores).
"""

import json

import pytest

from golden_model.config import Config
from golden_model.tasks import xor_sample
from sim.generate import generate
from sim.tasks import rtl_xor
from sim.verilator_run import run_verilator

from .faults import core_with_flooring

RTL_CONFIGS = {
    "N1-alpha1": Config(),
    "N4-leak2": Config(ticks_per_window=4, leak_shift=2, rounding="stochastic"),
}


@pytest.fixture(scope="session")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("verilator")


# Seed 1 of the plain configuration in the default suite; the leaky one and seeds 2 and 3
# (about five more minutes of whole trainings of the spatial core compared tick by tick) with
# `make test-slow`. The leaky windows stay in the default suite on the memory core, the one the
# boards run (tests/test_mcore.py, tests/test_fast_run.py).
@pytest.mark.parametrize(
    ("name", "seed"),
    [
        ("N1-alpha1", 1),
        *(
            pytest.param(name, seed, marks=pytest.mark.slow)
            for name in sorted(RTL_CONFIGS)
            for seed in (1, 2, 3)
            if (name, seed) != ("N1-alpha1", 1)
        ),
    ],
)
def test_full_xor_training_is_bit_exact(name, seed, work):
    cfg = RTL_CONFIGS[name].replace(seed=seed)
    verdict, golden = rtl_xor(cfg, max_samples=2000, work=work)
    print(
        f"\n{name} seed {seed}: {verdict['samples']} samples, {verdict['cycles']} cycles, "
        f"{verdict['ticks_compared']} ticks compared"
    )
    assert verdict["bit_exact"], verdict["first_mismatch"]
    assert verdict["mismatches"] == 0
    assert verdict["ticks_compared"] == golden.ticks  # every training tick was compared
    assert verdict["converged"] and golden.converged
    assert verdict["samples"] == golden.samples


def test_fault_in_the_rtl_is_caught_and_located(work):
    cfg = Config(layers=(2, 4, 1))
    samples = [xor_sample(k) for k in (1, 2, 3, 0, 2, 1)]
    verdict = run_verilator(cfg, samples, work=work, core=core_with_flooring("W2"))
    assert not verdict["bit_exact"] and verdict["mismatches"] > 0
    report = verdict["first_mismatch"]
    assert "phase fwd2" in report and "n2" in report and "golden" in report


def test_generate_is_deterministic(tmp_path):
    cfg = Config(ticks_per_window=4, leak_shift=2, seed=7)
    first = generate(cfg, tmp_path / "a", lanes=2)["verilog"].read_bytes()
    second = generate(cfg, tmp_path / "b", lanes=2)["verilog"].read_bytes()
    assert first == second
    assert b"module pulsegate_core" in first
    other = generate(cfg.replace(seed=8), tmp_path / "c", lanes=2)["verilog"].read_bytes()
    assert other != first  # the seed sets the initial weights in the memories
    flooring = core_with_flooring("W2")
    broken = generate(cfg, tmp_path / "d", lanes=2, core=flooring)["verilog"].read_bytes()
    assert broken != first  # the test-only fault reaches the Verilog


def test_sim_ar2_command_runs_the_core_asked_for(tmp_path):
    """`pulsegate sim ar2 --core memory`: the memory core runs the predictive circuit,
    bit-exact at every tick, and the verdict says which core it was."""
    from pulsegate.cli import main

    out = tmp_path / "ar2.json"
    assert main(["sim", "ar2", "--samples", "30", "--core", "memory", "--json", str(out)]) == 0
    verdict = json.loads(out.read_text())
    assert verdict["core"] == "memory" and verdict["samples"] == 30
    assert verdict["bit_exact"] and verdict["mismatches"] == 0


def test_sim_xor_command_json(work, tmp_path, monkeypatch):
    from pulsegate.cli import main

    monkeypatch.setattr(
        "sim.tasks.run_verilator", lambda *a, **k: run_verilator(*a, **{**k, "work": work})
    )
    out = tmp_path / "sim.json"
    assert main(["sim", "xor", "--seed", "2", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    for key in (
        "bit_exact",
        "ticks_compared",
        "mismatches",
        "converged",
        "samples",
        "cycles",
        "outputs",
    ):
        assert key in data
    assert data["bit_exact"] is True and data["mismatches"] == 0
    assert len(data["outputs"]) == 4


def test_ar2_circuit_is_bit_exact_over_2000_samples(work):
    from golden_model.config import default_config
    from sim.tasks import rtl_ar2

    verdict, result = rtl_ar2(default_config("ar2"), samples=2000, work=work)
    assert verdict["bit_exact"], verdict["first_mismatch"]
    assert verdict["ticks_compared"] == 2000 * 3 and verdict["mismatches"] == 0
    assert max(result.cov_rel_error) < 0.10  # what the RTL learned is the covariance


@pytest.mark.slow  # a Verilator build with tracing of its own (a minute); `make test-slow`
def test_waves_are_written(tmp_path):
    from pathlib import Path

    verdict = run_verilator(Config(), [xor_sample(1)], work=tmp_path, waves=True)
    assert verdict["bit_exact"]
    dump = Path(verdict["waves"])
    assert dump.parent == tmp_path and dump.stat().st_size > 5_000
    if dump.suffix == ".fst":  # an FST file opens with its header block (type 0)
        assert dump.read_bytes()[0] == 0
    else:  # no liblz4 on this machine: the runner's VCD
        assert "$enddefinitions" in dump.read_text()[:200_000]


@pytest.mark.slow  # a Verilator build of the memory core takes a minute; tests/test_mcore.py
# checks it at every tick under Amaranth's simulator in the default suite
def test_the_memory_core_trains_xor_bit_exactly_under_verilator(tmp_path):
    """The memory-centric core through the same cocotb testbench, every tick of the first 24
    training samples (leaky N = 2 windows: the fused step reads the targets' currents)."""
    cfg = Config(ticks_per_window=2, leak_shift=2)
    verdict, golden = rtl_xor(cfg, max_samples=24, lanes=4, core="memory", work=tmp_path)
    assert verdict["bit_exact"], verdict["first_mismatch"]
    assert verdict["ticks_compared"] == golden.ticks >= 24 * 14
    assert verdict["core"] == "memory"


# Per tick under Verilator with the memory core (the boards' core for iris and digits):
# digits at 8 lanes and iris at one in the default suite (20 s each), the others under the
# slow marker.
@pytest.mark.parametrize(
    ("name", "lanes", "count"),
    [
        ("digits", 8, 2),
        ("iris", 1, 6),
        pytest.param("digits", 1, 2, marks=pytest.mark.slow),
        pytest.param("iris", 8, 6, marks=pytest.mark.slow),
    ],
)
def test_the_memory_core_is_bit_exact_per_tick_on_real_data(tmp_path, name, lanes, count):
    """Every current, mask, weight and counter at every tick of the first training samples
    of iris or digits, through the cocotb testbench's debug-port reads."""
    from golden_model.classify import training_samples
    from golden_model.datasets import dataset_config, load_dataset

    cfg = dataset_config(name)
    samples = training_samples(cfg, load_dataset(name), 1, count)
    verdict = run_verilator(cfg, samples, lanes=lanes, core="memory", work=tmp_path)
    assert verdict["bit_exact"], verdict["first_mismatch"]
    assert verdict["mismatches"] == 0
    assert verdict["ticks_compared"] == count * 7 * cfg.ticks_per_window
