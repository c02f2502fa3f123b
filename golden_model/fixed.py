"""Fixed-point arithmetic of the circuit: the operations the RTL implements, bit for bit.

Values are two's-complement integers held in int64 numpy arrays; a value ``q`` in a format
with ``frac`` fraction bits stands for ``q * 2**-frac``. Every operation below is exact integer
arithmetic followed by at most one rounding and one saturation, in that order.

Saturation is *symmetric*: a ``width``-bit word is clamped to
``[-(2**(width-1) - 1), 2**(width-1) - 1]``. The most negative code is never produced, so
negating a saturated value (the minus half of a push-me pull-you pair) can never overflow.
Each function that saturates returns ``(values, events)`` where ``events`` is the number of
elements that were clamped; the circuit adds these to its saturation counters.
"""

from __future__ import annotations

import numpy as np

from .choices import Rounding

__all__ = [
    "max_code",
    "saturate",
    "sat_add",
    "shift_round",
    "mul_shift",
    "rectify",
    "quantize",
    "to_float",
]


def max_code(width: int) -> int:
    """Largest code of a symmetric ``width``-bit word, ``2**(width-1) - 1``."""
    return (1 << (width - 1)) - 1


def saturate(x: np.ndarray, width: int) -> tuple[np.ndarray, int]:
    """Clamp ``x`` to ``[-max_code(width), max_code(width)]``.

    Returns the clamped int64 array and the number of elements that were out of range.
    """
    x = np.asarray(x, dtype=np.int64)
    top = max_code(width)
    over = (x > top) | (x < -top)
    events = int(np.count_nonzero(over))
    if events:
        x = np.clip(x, -top, top)
    return x, events


def sat_add(a: np.ndarray, b: np.ndarray, width: int) -> tuple[np.ndarray, int]:
    """``saturate(a + b, width)``; the sum is exact in int64 before the clamp."""
    return saturate(np.asarray(a, dtype=np.int64) + np.asarray(b, dtype=np.int64), width)


def shift_round(
    x: np.ndarray, shift: int, mode: str = Rounding.NEAREST, random: np.ndarray | None = None
) -> np.ndarray:
    """Divide by ``2**shift`` and round to an integer.

    ``"nearest"``: ``floor((x + 2**(shift-1)) / 2**shift)``, round half up (toward +inf).
    ``"stochastic"``: ``floor((x + r) / 2**shift)`` with ``r`` uniform on ``[0, 2**shift)``,
    taken elementwise from ``random`` (low ``shift`` bits of successive LFSR states, in the
    row-major order of ``x``); unbiased: ``E[result] = x / 2**shift``.
    ``shift == 0`` returns ``x`` unchanged in both modes (and consumes no random bits).
    No saturation here: callers saturate after the shift.
    """
    x = np.asarray(x, dtype=np.int64)
    if shift < 0:
        raise ValueError(f"shift must be >= 0, got {shift}")
    if shift == 0:
        return x.copy()
    if mode == Rounding.NEAREST:
        return (x + (1 << (shift - 1))) >> shift
    if mode == Rounding.STOCHASTIC:
        if random is None:
            raise ValueError("stochastic rounding needs random addends")
        return (x + np.asarray(random, dtype=np.int64).reshape(x.shape)) >> shift
    raise ValueError(f"unknown rounding mode {mode!r}")


def mul_shift(
    a: np.ndarray,
    b: np.ndarray,
    shift: int,
    width: int,
    mode: str = Rounding.NEAREST,
    random: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """``saturate(shift_round(a * b, shift, mode), width)``: the exact product, one rounding,
    one symmetric saturation. Broadcasts like numpy multiplication."""
    prod = np.asarray(a, dtype=np.int64) * np.asarray(b, dtype=np.int64)
    return saturate(shift_round(prod, shift, mode, random), width)


def rectify(x: np.ndarray) -> np.ndarray:
    """``[x]^+ = max(x, 0)``; exact, cannot saturate."""
    return np.maximum(np.asarray(x, dtype=np.int64), 0)


def quantize(x: np.ndarray, frac: int, width: int) -> tuple[np.ndarray, int]:
    """Float to fixed point: ``saturate(floor(x * 2**frac + 1/2), width)``.

    Rounds half up like :func:`shift_round`. Non-finite input is an error.
    """
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("cannot quantize non-finite values")
    scaled = np.floor(x * float(1 << frac) + 0.5)
    top = float(max_code(width))
    events = int(np.count_nonzero((scaled > top) | (scaled < -top)))
    return np.clip(scaled, -top, top).astype(np.int64), events


def to_float(q: np.ndarray, frac: int) -> np.ndarray:
    """Fixed point to float, exact for ``width <= 53``."""
    return np.asarray(q, dtype=np.float64) / float(1 << frac)
