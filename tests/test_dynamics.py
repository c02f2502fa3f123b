"""The exact gain makes a gated window a thresholded linear map, window after window."""

import math

import numpy as np
import pytest

from golden_model.circuit import FLOAT, Circuit
from golden_model.config import Config
from golden_model.dynamics import continuous_gain, exact_gain, held_gain
from golden_model.schedule import HELD, POP, Group, Matrix, Phase, Schedule, Term, Transfer

WINDOWS = 8
SIZE = 5


def relay_chain(n: int, leak_shift: int) -> tuple[Schedule, Config]:
    """A held input relayed into a population, then carried through 8 gated windows, each
    through its own matrix K_k: the synfire-gated synfire chain of the talk."""
    cfg = Config(layers=(SIZE,), ticks_per_window=n, leak_shift=leak_shift)
    groups = [Group("in", SIZE, HELD), Group("a0", SIZE, POP)]
    groups += [Group(f"a{k}", SIZE, POP) for k in range(1, WINDOWS + 1)]
    matrices = [Matrix(f"K{k}", SIZE, SIZE, learned=False) for k in range(1, WINDOWS + 1)]
    phases = [Phase("relay", transfers=(Transfer("a0", (Term("in"),)),))]
    phases += [
        Phase(f"w{k}", transfers=(Transfer(f"a{k}", (Term(f"a{k - 1}", f"K{k}"),)),))
        for k in range(1, WINDOWS + 1)
    ]
    schedule = Schedule(
        "relay",
        tuple(groups),
        tuple(matrices),
        (),
        tuple(phases),
        inputs=("in",),
        ticks_per_window=n,
    )
    return schedule, cfg


@pytest.mark.parametrize("n", [1, 2, 4, 8, 16, 64])
def test_relay_through_windows_is_the_thresholded_map(n):
    leak_shift = int(math.log2(n)) if n > 1 else 0  # N * alpha = 1
    schedule, cfg = relay_chain(n, leak_shift)
    rng = np.random.default_rng(n)
    ks = {
        f"K{k}": np.eye(SIZE) + 0.4 * rng.normal(size=(SIZE, SIZE)) for k in range(1, WINDOWS + 1)
    }
    circuit = Circuit(schedule, cfg, FLOAT, weights=ks)
    a = rng.uniform(0.2, 1.0, size=SIZE)
    circuit.load("in", a)
    trace = None
    rec = circuit.recorder()
    circuit.run_sample(rec)
    trace = rec.finish()
    expected = a
    alive = 0
    for k in range(1, WINDOWS + 1):
        expected = np.maximum(ks[f"K{k}"] @ expected, 0.0)
        peak = trace.series(f"a{k}")[(k + 1) * n - 1]  # the end of window k
        np.testing.assert_allclose(
            peak, expected, rtol=0, atol=1e-9 * max(1.0, np.abs(expected).max())
        )
        alive += int(np.count_nonzero(expected))
    assert np.count_nonzero(expected) > 0, "the test vector died; choose another seed"
    assert alive > WINDOWS  # the comparison is not between zeros


def test_gain_tends_to_e():
    gains = [exact_gain(2**k, 2.0**-k) / 2.0**-k for k in range(1, 16)]
    errors = [abs(g - math.e) for g in gains]
    assert all(b < a for a, b in zip(errors, errors[1:], strict=False))
    assert errors[-1] < 1e-4
    assert continuous_gain(1.0) == pytest.approx(math.e)
    assert continuous_gain(0.5) == pytest.approx(2 * math.exp(0.5))


def test_gain_edge_cases():
    assert exact_gain(1, 1.0) == 1.0 and held_gain(1, 1.0) == 1.0
    assert held_gain(4, 0.25) == pytest.approx(0.25 / (1 - 0.75**4))
    with pytest.raises(ValueError):
        exact_gain(4, 1.0)
    with pytest.raises(ValueError):
        exact_gain(0, 0.5)
