"""The exact function of each hardware unit, in fixed point.

The circuit simulator is built from these, and each gateware block in ``hw/`` is tested against
the one it implements, so a block and the whole circuit cannot drift apart. All values are int64
arrays of codes (see :mod:`golden_model.fixed`); every function returns the number of
saturation events beside its result.
"""

from __future__ import annotations

import numpy as np

from .dynamics import drive_fixed, leak_fixed
from .fixed import saturate, shift_round

__all__ = [
    "signed_value",
    "population_step",
    "synapse_sum",
    "round_sum",
    "threshold_pair",
    "capture_mask",
    "hebbian_update",
    "covariance_update",
    "covariance_rate_shift",
]


def signed_value(plus: np.ndarray, minus: np.ndarray, width: int) -> tuple[np.ndarray, int]:
    """A PMPY pair read as one number: ``saturate(plus - minus, width)``.

    Every value that enters a multiplier (a transfer's source, a learning rule's pre or post)
    is read this way, so multiplier inputs are ``width`` bits. Exactly one half of a pair is
    non-zero in normal operation, so this only saturates on corrupted pairs.
    """
    return saturate(np.asarray(plus, np.int64) - np.asarray(minus, np.int64), width)


def population_step(
    current: np.ndarray,
    drive: np.ndarray,
    *,
    gain_q: int,
    gain_frac: int,
    leak_shift: int,
    width: int,
    gate: np.ndarray | bool = True,
    clear: bool = False,
    hold: bool = False,
) -> tuple[np.ndarray, int]:
    """One tick of a group of populations (the population accumulator).

    ``hold``: the value is kept (a memory). Otherwise
    ``I' = saturate(leak(0 if clear else I) + shift_round(G_q * u * gate, gain_frac), width)``:
    a cleared population starts its window from 0; a closed gate leaves only the leak.
    ``drive`` is the rectified input ``u >= 0``.
    """
    current = np.asarray(current, np.int64)
    if hold:
        return current.copy(), 0
    base = np.zeros_like(current) if clear else current
    gated = np.asarray(drive, np.int64) * np.asarray(gate, np.int64)
    return saturate(leak_fixed(base, leak_shift) + drive_fixed(gated, gain_q, gain_frac), width)


def synapse_sum(
    weights: np.ndarray, source: np.ndarray, *, weight_frac: int, width: int
) -> tuple[np.ndarray, int]:
    """``z = saturate(shift_round(W @ s, weight_frac), width)`` (round half up).

    The sum is exact (int64), so the order of the multiply-accumulates, and therefore the
    number of lanes, cannot change it.
    """
    acc = np.asarray(weights, np.int64) @ np.asarray(source, np.int64)
    return round_sum(acc, weight_frac=weight_frac, width=width)


def round_sum(acc: np.ndarray, *, weight_frac: int, width: int) -> tuple[np.ndarray, int]:
    """An exact weighted sum back to current units: ``saturate(shift_round(acc, weight_frac))``."""
    return saturate(shift_round(acc, weight_frac), width)


def threshold_pair(z: np.ndarray, gate: np.ndarray | int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Both halves of a PMPY pair from one sum, gated: ``([z]^+ g, [-z]^+ g)``."""
    z = np.asarray(z, np.int64)
    gate = np.asarray(gate, np.int64)
    return np.maximum(z, 0) * gate, np.maximum(-z, 0) * gate


def capture_mask(plus: np.ndarray, minus: np.ndarray) -> np.ndarray:
    """The separatrix: mask bit ``[plus > minus]``."""
    return (np.asarray(plus) > np.asarray(minus)).astype(np.uint8)


def hebbian_update(
    weights: np.ndarray,
    post: np.ndarray,
    pre: np.ndarray,
    *,
    shift: int,
    width: int,
    rounding: str,
    random: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """``W' = saturate(W - shift_round(post pre^T, shift, rounding), width)``.

    Returns the new weights, the rounded change (which the transposed copy also receives) and
    the saturation events. ``random`` holds one LFSR addend per synapse, row-major.
    """
    change = shift_round(np.outer(post, pre), shift, rounding, random)
    new, events = saturate(np.asarray(weights, np.int64) - change, width)
    return new, change, events


def covariance_rate_shift(sample_index: int, floor_shift: int) -> int:
    """``floor(log2(t))`` for the ``t``-th sample (1-based), at most ``floor_shift``: the
    rate ``2**-shift`` halves at every power of two."""
    return min(int(sample_index).bit_length() - 1, floor_shift)


def covariance_update(
    weights: np.ndarray,
    post: np.ndarray,
    pre: np.ndarray,
    *,
    align: int,
    rate_shift: int,
    width: int,
    rounding: str,
    random: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """``K' = saturate(K + shift_round(post pre^T - K 2**align, align + rate_shift), width)``
    with ``align = 2 current_frac - weight_frac``: one step of ``K += eta (x y^T - K)``."""
    weights = np.asarray(weights, np.int64)
    error = np.outer(post, pre) - (weights << align)
    change = shift_round(error, align + rate_shift, rounding, random)
    return saturate(weights + change, width)
