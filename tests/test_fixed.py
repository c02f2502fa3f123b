"""Each fixed-point operation against exact (unbounded) Python integer arithmetic."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golden_model.fixed import (
    max_code,
    mul_shift,
    quantize,
    rectify,
    sat_add,
    saturate,
    shift_round,
)
from golden_model.lfsr import LFSR_MASK, Lfsr, lfsr_step

widths = st.integers(min_value=2, max_value=24)
words = st.integers(min_value=-(2**30), max_value=2**30)


def exact_clamp(value: int, width: int) -> int:
    top = 2 ** (width - 1) - 1
    return max(-top, min(top, value))


def exact_floor_div(value: int, shift: int) -> int:
    return value // (2**shift)  # Python // is floor division for every sign


@settings(max_examples=300)
@given(st.lists(words, min_size=1, max_size=20), widths)
def test_saturate(values, width):
    out, events = saturate(np.array(values), width)
    assert out.tolist() == [exact_clamp(v, width) for v in values]
    assert events == sum(exact_clamp(v, width) != v for v in values)


@settings(max_examples=300)
@given(words, words, widths)
def test_sat_add(a, b, width):
    out, events = sat_add(np.array([a]), np.array([b]), width)
    assert out[0] == exact_clamp(a + b, width)
    assert events == int(exact_clamp(a + b, width) != a + b)


@settings(max_examples=300)
@given(words, st.integers(min_value=0, max_value=30))
def test_shift_round_nearest_is_round_half_up(value, shift):
    out = shift_round(np.array([value]), shift)[0]
    expected = exact_floor_div(2 * value + 2**shift, shift + 1) if shift else value
    assert out == expected
    # Within half an LSB of the true quotient, ties going up.
    assert abs(out - value / 2**shift) <= 0.5


@settings(max_examples=300)
@given(words, st.integers(min_value=1, max_value=30), st.integers(min_value=0))
def test_shift_round_stochastic(value, shift, r):
    r %= 2**shift
    out = shift_round(np.array([value]), shift, "stochastic", np.array([r]))[0]
    assert out == exact_floor_div(value + r, shift)
    assert exact_floor_div(value, shift) <= out <= exact_floor_div(value, shift) + 1


def test_stochastic_rounding_is_unbiased_over_all_addends():
    shift = 5
    for value in (-37, -1, 0, 3, 17, 100):
        addends = np.arange(2**shift)
        out = shift_round(np.full(2**shift, value), shift, "stochastic", addends)
        assert out.sum() == value  # mean over every addend is exactly value / 2**shift


@settings(max_examples=300)
@given(
    st.integers(min_value=-(2**23), max_value=2**23),
    st.integers(min_value=-(2**23), max_value=2**23),
    st.integers(min_value=0, max_value=30),
    widths,
)
def test_mul_shift(a, b, shift, width):
    out, events = mul_shift(np.array([a]), np.array([b]), shift, width)
    rounded = exact_floor_div(a * b + (2 ** (shift - 1) if shift else 0), shift)
    assert out[0] == exact_clamp(rounded, width)
    assert events == int(exact_clamp(rounded, width) != rounded)


@given(st.lists(words, min_size=1, max_size=10))
def test_rectify(values):
    assert rectify(np.array(values)).tolist() == [max(v, 0) for v in values]


@settings(max_examples=300)
@given(st.floats(min_value=-1e6, max_value=1e6), st.integers(min_value=0, max_value=20), widths)
def test_quantize(x, frac, width):
    import math
    from fractions import Fraction

    out, events = quantize(np.array([x]), frac, width)
    rounded = math.floor(Fraction(x) * 2**frac + Fraction(1, 2))
    assert out[0] == exact_clamp(rounded, width)
    assert events == int(exact_clamp(rounded, width) != rounded)


def test_quantize_rejects_non_finite():
    with pytest.raises(ValueError, match="non-finite"):
        quantize(np.array([np.nan]), 4, 8)


def test_forced_overflow_saturates_counts_and_never_wraps():
    width = 8
    top = max_code(width)
    big = np.array([top, top, -top, 100, -100])
    out, events = sat_add(big, np.array([1, 200, -5, 27, -27]), width)
    assert out.tolist() == [top, top, -top, top, -top]
    assert events == 3
    assert np.all(np.sign(out) == np.sign(big))  # no wrap-around to the other sign
    prod, events = mul_shift(np.array([top, -top]), np.array([top, top]), 0, width)
    assert prod.tolist() == [top, -top] and events == 2
    # The symmetric range means negation never overflows.
    assert (-out).min() >= -top


def test_lfsr_reference_and_properties():
    # An independent bit-serial description of the same polynomial x^32 + x^22 + x^2 + x + 1.
    state = 0xACE1
    lf = Lfsr(state)
    seen = set()
    for _ in range(5000):
        bit = state & 1
        state >>= 1
        if bit:
            state ^= (1 << 31) | (1 << 21) | (1 << 1) | 1
        assert lf.draw(1, 32)[0] == state
        assert state not in seen and state != 0
        seen.add(state)
    assert LFSR_MASK == 0x80200003
    assert lfsr_step(1) == LFSR_MASK
    with pytest.raises(ValueError):
        Lfsr(0)
    draws = Lfsr(12345).draw(20000, 4)
    assert draws.min() == 0 and draws.max() == 15
    assert abs(draws.mean() - 7.5) < 0.15
