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
