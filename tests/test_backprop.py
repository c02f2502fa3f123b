"""The PMPY protocol of the talk's table equals plain backprop."""

import numpy as np
import pytest

from golden_model import backprop as bp

SHAPES = [(2, 3, 1), (3, 5, 2), (4, 6, 5, 3), (1, 2, 2, 2, 1), (6, 4, 4)]
CASES_PER_SHAPE = 24  # 5 shapes x 24 = 120 random networks, inputs of both signs


def random_case(rng, shape):
    weights = [rng.normal(0, 1.0, size=(shape[i + 1], shape[i] + 1)) for i in range(len(shape) - 1)]
    x = rng.normal(0, 1.5, size=shape[0])  # negative entries exercise the x- half
    t = rng.normal(0, 1.0, size=shape[-1])
    return weights, x, t


@pytest.mark.parametrize("output", ["linear", "relu"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "-".join(map(str, s)))
def test_pmpy_equals_backprop_on_doubled_input(shape, output):
    """Untied W'_1 on [r(x); r(-x)]: the table is standard backprop of that network."""
    rng = np.random.default_rng(sum(shape))
    for _ in range(CASES_PER_SHAPE):
        weights, x, t = random_case(rng, shape)
        doubled = [rng.normal(size=(shape[1], 2 * shape[0] + 1))] + weights[1:]
        plain_w, plain = bp.sgd_step(doubled, bp.pmpy_input(x), t, 0.05, output)
        pmpy_w, pmpy = bp.pmpy_step(doubled, x, t, 0.05, output)
        np.testing.assert_allclose(pmpy["output"], plain["output"], atol=1e-12)
        for a, b in zip(pmpy["deltas"], plain["deltas"], strict=True):
            np.testing.assert_allclose(a, b, atol=1e-12)
        for a, b in zip(pmpy_w, plain_w, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "-".join(map(str, s)))
def test_tied_pmpy_equals_backprop_on_x(shape):
    """W'_1 = [W_1, -W_1] (one stored matrix, as in the circuit): forward, deltas and the
    update folded back onto W_1 (dW_1 = dA - dB) equal plain backprop on x itself."""
    rng = np.random.default_rng(100 + sum(shape))
    for _ in range(CASES_PER_SHAPE):
        weights, x, t = random_case(rng, shape)
        plain_w, plain = bp.sgd_step(weights, x, t, 0.05)
        tied = [bp.tie_input_layer(weights[0])] + weights[1:]
        pmpy_w, pmpy = bp.pmpy_step(tied, x, t, 0.05)
        n0 = shape[0]
        change = pmpy_w[0] - tied[0]
        folded = weights[0] + np.concatenate(
            [change[:, :n0] - change[:, n0 : 2 * n0], change[:, 2 * n0 :]], axis=1
        )
        np.testing.assert_allclose(pmpy["output"], plain["output"], atol=1e-12)
        for a, b in zip(pmpy["deltas"], plain["deltas"], strict=True):
            np.testing.assert_allclose(a, b, atol=1e-12)
        np.testing.assert_allclose(folded, plain_w[0], atol=1e-12)
        for a, b in zip(pmpy_w[1:], plain_w[1:], strict=True):
            np.testing.assert_allclose(a, b, atol=1e-12)


def test_pmpy_p_minus_vanishes_for_relu():
    rng = np.random.default_rng(3)
    weights, x, t = random_case(rng, (3, 5, 2))
    _, info = bp.pmpy_step([bp.tie_input_layer(weights[0])] + weights[1:], x, t, 0.1)
    for mask in info["masks"]:
        assert set(np.unique(mask)) <= {0.0, 1.0}  # p = p+ - p-, with p- identically 0
