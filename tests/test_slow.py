"""Long runs, outside the default suite (`make test-slow`): the measurements that
docs/model.md quotes, reproduced."""

import numpy as np
import pytest

from golden_model.circuit import FIXED
from golden_model.config import Config, default_config
from golden_model.tasks import run_ar2, train_xor

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("output", "hidden", "at_least"),
    [("linear", 4, 37), ("linear", 8, 38), ("relu", 4, 8), ("relu", 8, 4)],
)
def test_xor_convergence_table_of_the_model_docs(output, hidden, at_least):
    results = [
        train_xor(Config(layers=(2, hidden, 1), output=output, seed=s), FIXED, 4000)
        for s in range(40)
    ]
    wins = sum(r.converged for r in results)
    print(
        f"\n{output} H={hidden}: {wins}/40, median "
        f"{np.median([r.samples for r in results if r.converged]):.0f} samples"
    )
    assert wins >= at_least


def test_ar2_long_run_recovers_coefficients_closely():
    result = run_ar2(default_config("ar2"), FIXED, samples=40_000)
    assert max(result.cov_rel_error) < 0.05
    assert result.prediction_mse < 1.01 * result.true_prediction_mse


def test_auto_lanes_for_iris_on_the_ulx3s_are_bit_exact(tmp_path):
    """The search itself (several ECP5 builds), then the lanes it chose trained under the
    fast path beside one lane: both bit-exact with the golden model, same final state."""
    from boards.plans import build_auto
    from golden_model.classify import epoch_order
    from golden_model.datasets import dataset_config, load_dataset
    from hw.network import lanes_label
    from sim.fast_run import run_fast

    data, cfg = load_dataset("iris"), dataset_config("iris")
    report = build_auto("ulx3s-85f", cfg, tmp_path / "auto")
    assert report["timing_met"]
    order = epoch_order(cfg, len(data.x_train), 1)[0][:30]
    targets = data.targets(data.y_train)
    samples = [{"x": data.x_train[i], "t": targets[i]} for i in order]
    runs = [
        run_fast(
            cfg, samples, lanes=lanes, work=tmp_path / f"lanes{lanes_label(lanes)}", read_every=10
        )
        for lanes in (1, report["lanes"])
    ]
    assert all(run["bit_exact"] for run in runs), [run["first_mismatch"] for run in runs]
    assert runs[0]["rtl_state"] == runs[1]["rtl_state"]


# -- 400-400-10 on the 20x20 digits in the RTL (a Verilator build of 7-8 minutes each) ------


def test_the_400_400_10_core_is_bit_exact_per_tick_on_the_20x20_digits(tmp_path):
    """Two training samples, every state word at every tick, through the cocotb testbench."""
    from golden_model.classify import training_samples
    from golden_model.datasets import dataset_config, load_dataset
    from sim.verilator_run import run_verilator

    cfg = dataset_config("digits20")
    samples = training_samples(cfg, load_dataset("digits20"), 1, 2)
    verdict = run_verilator(cfg, samples, lanes=16, core="memory", work=tmp_path)
    assert verdict["bit_exact"], verdict["first_mismatch"]
    assert verdict["ticks_compared"] == 2 * 7 * cfg.ticks_per_window


def test_a_whole_epoch_of_the_20x20_digits_is_bit_exact_in_the_native_harness(tmp_path):
    """1,347 samples, the complete state compared after every one (BENCHMARKS.md has the
    wall time), and the RTL's weights at the end are the golden model's."""
    from golden_model.classify import train_classifier, training_samples
    from golden_model.datasets import dataset_config, load_dataset
    from sim.fast_run import run_fast

    cfg, data = dataset_config("digits20"), load_dataset("digits20")
    samples = training_samples(cfg, data, 1)
    verdict = run_fast(cfg, samples, lanes=16, work=tmp_path, core="memory")
    assert verdict["bit_exact"], verdict["first_mismatch"]
    assert verdict["samples"] == len(data.x_train) == 1347
    golden = train_classifier(cfg, data, 1)
    assert verdict["weights"] == {name: w.tolist() for name, w in golden.weights.items()}
