"""Property-based differential tests: random small networks in the memory core, every tick
against the golden model (every current, mask bit, weight and counter).

A network is drawn as 1-3 layers of 1-9 populations, ``ticks_per_window`` 1-4 with a
``leak_shift`` (the seed's leaky windows; ``alpha = 1`` only at N = 1), half-up or
stochastic rounding, a linear or rectified output, a learning rate that may saturate, and any
lane count from 1 to 9 (powers of two or not) or a wide one (12, 17, 24: the adder tree cut
by a register). A few examples run in the default suite (the
CI profile draws the same ones every run); the slow target draws many more.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from golden_model.config import Config

from .test_mcore import compare


@st.composite
def networks(draw) -> tuple[Config, int, list[dict[str, np.ndarray]]]:
    """A configuration, a lane count and two training samples."""
    layers = tuple(draw(st.lists(st.integers(1, 9), min_size=2, max_size=4)))
    ticks = draw(st.integers(1, 4))
    leak = draw(st.integers(0 if ticks == 1 else 1, 3))
    cfg = Config(
        layers=layers,
        ticks_per_window=ticks,
        leak_shift=leak,
        rounding=draw(st.sampled_from(["nearest", "stochastic"])),
        output=draw(st.sampled_from(["linear", "relu"])),
        learning_rate_shift=draw(st.integers(0, 6)),
        seed=draw(st.integers(1, 1000)),
    )
    lanes = draw(st.one_of(st.integers(1, 9), st.sampled_from([12, 17, 24])))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    samples = [
        {"x": rng.uniform(-1, 1, layers[0]), "t": rng.uniform(-1, 1, layers[-1])} for _ in range(2)
    ]
    return cfg, lanes, samples


def check(case) -> None:
    cfg, lanes, samples = case
    mismatch, _ = compare(cfg, samples, lanes)
    assert mismatch is None, f"{cfg.layers} N={cfg.ticks_per_window} lanes={lanes}: {mismatch}"


@settings(max_examples=6, suppress_health_check=[HealthCheck.too_slow])
@given(networks())
def test_random_networks_are_bit_exact_at_every_tick(case):
    check(case)


@pytest.mark.slow
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(networks())
def test_many_random_networks_are_bit_exact_at_every_tick(case):
    check(case)
