"""The exact gains of a gating window, and their quantized words.

Two gains make a window of ``N`` ticks an exact thresholded linear map ``I_d[N] = [K a]^+``
(:mod:`golden_model.dynamics` has the tick they scale):

* :func:`exact_gain`, for sources that peak at the window's start and leak with the target:
  ``G = 1 / (N (1 - alpha)**(N - 1))``;
* :func:`held_gain`, for sources held constant through the window:
  ``G = alpha / (1 - (1 - alpha)**N)``.

Both are 1 for ``N = 1, alpha = 1``. Imports only :mod:`golden_model.limits`, so that the
configuration can check its gains without importing the dynamics.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .limits import MAX_WIDTH, ConfigError

if TYPE_CHECKING:
    from .config import Config

__all__ = ["exact_gain", "held_gain", "continuous_gain", "gain_word"]


def exact_gain(n: int, alpha: float) -> float:
    """``G = alpha * S`` with which a window of ``n`` ticks relays a leaking source exactly."""
    if n < 1:
        raise ValueError(f"ticks per window must be >= 1, got {n}")
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    if alpha == 1.0 and n > 1:
        raise ValueError("alpha = 1 leaves nothing of the source after one tick: needs n = 1")
    denominator = n * (1.0 - alpha) ** (n - 1)
    # A long window at a fast leak underflows the decay: its gain is beyond any word.
    return 1.0 / denominator if denominator > 0.0 else math.inf


def held_gain(n: int, alpha: float) -> float:
    """``G`` with which a window of ``n`` ticks relays a *held* (constant) source exactly."""
    if n < 1:
        raise ValueError(f"ticks per window must be >= 1, got {n}")
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    return alpha / (1.0 - (1.0 - alpha) ** n)


def continuous_gain(window_over_tau: float) -> float:
    """Continuous limit ``S = (tau / T) exp(T / tau)`` of ``exact_gain / alpha``."""
    x = window_over_tau
    return math.exp(x) / x


def gain_word(cfg: Config) -> tuple[int, int]:
    """The exact and held gains quantized to ``cfg.gain_frac`` fraction bits (unsigned).

    Raises :class:`~golden_model.limits.ConfigError` when a gain does not fit ``MAX_WIDTH``
    bits or quantizes to zero.
    """
    words = []
    for name, gain in (
        ("exact", exact_gain(cfg.ticks_per_window, cfg.alpha)),
        ("held", held_gain(cfg.ticks_per_window, cfg.alpha)),
    ):
        scaled = gain * (1 << cfg.gain_frac)
        word = math.floor(scaled + 0.5) if math.isfinite(scaled) else 1 << MAX_WIDTH
        if word >= 1 << MAX_WIDTH:
            raise ConfigError(
                "ticks_per_window",
                f"the {name} gain {gain:.4g} (N={cfg.ticks_per_window}, leak_shift="
                f"{cfg.leak_shift}) needs more than {MAX_WIDTH} bits with gain_frac="
                f"{cfg.gain_frac}; use a larger leak_shift",
            )
        if word == 0:
            raise ConfigError("gain_frac", f"the {name} gain {gain:.4g} quantizes to 0")
        words.append(word)
    return words[0], words[1]
