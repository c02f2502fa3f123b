"""The talk's two results on the circuit model: XOR learned, lag covariances learned."""

import numpy as np
import pytest

from golden_model.circuit import FIXED, FLOAT
from golden_model.config import Config, default_config
from golden_model.tasks import A1_TRUE, A2_TRUE, lag_covariances, run_ar2, train_xor, yule_walker

XOR_SEEDS = range(20)
XOR_BUDGET = 2000  # training samples allowed per seed
XOR_TOLERANCE = 0.25


@pytest.mark.parametrize("mode", [FLOAT, FIXED])
def test_xor_converges_for_most_seeds(mode):
    results = [
        train_xor(default_config("xor").replace(seed=s), mode, XOR_BUDGET, XOR_TOLERANCE)
        for s in XOR_SEEDS
    ]
    converged = [r for r in results if r.converged]
    used = [r.samples for r in converged]
    print(
        f"\nXOR {mode}: {len(converged)}/{len(results)} seeds within {XOR_TOLERANCE} "
        f"in <= {XOR_BUDGET} samples; median {np.median(used):.0f}, max {max(used)} samples"
    )
    assert len(converged) >= 18
    for r in converged:
        targets = [0, 1, 1, 0]
        assert all(
            abs(o - t) < XOR_TOLERANCE for (_, _, o), t in zip(r.outputs, targets, strict=True)
        )
        assert r.samples <= XOR_BUDGET


def test_xor_rectified_output_option_runs():
    """The talk's rectified output is kept as an option; its convergence rate is lower
    (measured in docs/model.md), so this only checks that it learns for some seeds."""
    wins = sum(train_xor(Config(output="relu", seed=s), FIXED, 1000).converged for s in range(6))
    assert wins >= 1


@pytest.mark.parametrize("mode", [FLOAT, FIXED])
def test_ar2_learns_lag_covariances(mode):
    result = run_ar2(default_config("ar2"), mode, samples=20000)
    print(
        f"\nAR(2) {mode}: relative errors {np.round(result.cov_rel_error, 4).tolist()}, "
        f"prediction MSE {result.prediction_mse:.4f} (noise {result.noise_variance:.4f}, "
        f"predicting 0 {result.baseline_mse:.4f})"
    )
    assert all(err < 0.10 for err in result.cov_rel_error)
    assert np.abs(result.A1 - A1_TRUE).max() < 0.1
    assert np.abs(result.A2 - A2_TRUE).max() < 0.1
    # Prediction from the learned coefficients approaches the noise floor.
    assert result.prediction_mse < 1.02 * result.true_prediction_mse
    assert result.prediction_mse < 0.85 * result.baseline_mse


def test_yule_walker_recovers_known_coefficients():
    from golden_model.tasks import simulate_ar2

    x, _ = simulate_ar2(A1_TRUE, A2_TRUE, 100_000, np.random.default_rng(0))
    a1, a2 = yule_walker(*lag_covariances(x))
    assert np.abs(a1 - A1_TRUE).max() < 0.02 and np.abs(a2 - A2_TRUE).max() < 0.02


def test_ar2_is_deterministic():
    a = run_ar2(default_config("ar2"), FIXED, samples=500)
    b = run_ar2(default_config("ar2"), FIXED, samples=500)
    for ka, kb in zip(a.K, b.K, strict=True):
        np.testing.assert_array_equal(ka, kb)
