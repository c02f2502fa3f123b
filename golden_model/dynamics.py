"""Mean-field population dynamics (docs/model.md, sections 1-2) in float and in fixed point.

One tick of a population with current ``I`` and rectified drive ``u = [K I_u]^+``::

    I[n+1] = (1 - alpha) * I[n] + G * u[n],        G = alpha * S

(the discrete form of ``tau dI/dt = -I + S u``). Two gains make a window of ``N`` ticks an
exact thresholded linear map ``I_d[N] = [K a]^+``:

* :func:`exact_gain`, for sources that peak at the window's start and leak with the target
  (``I_u[n] = a (1 - alpha)**n``): ``G = 1 / (N (1 - alpha)**(N - 1))``;
* :func:`held_gain`, for sources that are held constant through the window (memories, the
  target, the bias constant): ``G = alpha / (1 - (1 - alpha)**N)``.

Both are 1 for ``N = 1, alpha = 1``.
"""

from __future__ import annotations

import numpy as np

from .choices import Rounding
from .fixed import saturate, shift_round
from .gains import continuous_gain, exact_gain, gain_word, held_gain

__all__ = [
    "exact_gain",
    "held_gain",
    "continuous_gain",
    "gain_word",
    "leak_float",
    "leak_fixed",
    "drive_fixed",
    "step_float",
    "step_fixed",
]


def leak_float(current: np.ndarray, alpha: float) -> np.ndarray:
    """``(1 - alpha) * I``."""
    return (1.0 - alpha) * current


def leak_fixed(current: np.ndarray, leak_shift: int) -> np.ndarray:
    """``I - round(I * 2**-leak_shift)`` (round half up); exactly 0 when ``leak_shift == 0``.

    Never changes sign and never grows in magnitude, so it cannot saturate.
    """
    if leak_shift == 0:
        return np.zeros_like(current)
    return current - shift_round(current, leak_shift, Rounding.NEAREST)


def step_float(current: np.ndarray, drive: np.ndarray, gain: float, alpha: float) -> np.ndarray:
    """One tick in float: ``(1 - alpha) I + G u``."""
    return leak_float(current, alpha) + gain * drive


def drive_fixed(drive: np.ndarray, gain_q: int, gain_frac: int) -> np.ndarray:
    """``shift_round(G_q * u, gain_frac)`` (round half up): the gained drive in current units."""
    return shift_round(np.asarray(drive, dtype=np.int64) * gain_q, gain_frac, Rounding.NEAREST)


def step_fixed(
    current: np.ndarray, drive: np.ndarray, gain_q: int, gain_frac: int, leak_shift: int, width: int
) -> tuple[np.ndarray, int]:
    """One tick in fixed point::

        I' = saturate(leak_fixed(I) + shift_round(G_q * u, gain_frac), width)

    ``drive`` is the rectified input ``u >= 0`` in current units; ``G_q`` the quantized gain.
    Returns the new currents and the number of saturation events.
    """
    return saturate(leak_fixed(current, leak_shift) + drive_fixed(drive, gain_q, gain_frac), width)
