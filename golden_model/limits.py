"""The limits a configuration must respect, derived in one place, and the error that names a field.

Each limit is what the golden model's int64 arithmetic and the gateware can carry exactly:

* ``MAX_WIDTH``: widest current or weight word. Two words' product summed over the widest fan-in
  must fit the golden model's exact int64 arithmetic; 24 bits also covers an 18x18 or 16x16 DSP.
* ``MAX_POPULATIONS``: largest layer; also bounds the fan-in of one accumulation.
* ``MAX_LAYERS``: most layers, input included (the schedule has four phases per layer).
* ``MAX_WEIGHTS``: most weights of all matrices together, bias columns included (a 400-400-10
  network has 164,810): the golden model keeps a transposed copy of each, the gateware a memory.
* ``MAX_UPDATE_SHIFT``: the weight update's right shift ``2 current_frac + learning_rate_shift -
  weight_frac``; stochastic rounding draws that many bits from the 32-bit LFSR.
* ``MAX_TICKS_PER_WINDOW``, ``MAX_LEAK_SHIFT``, ``MAX_GAIN_FRAC``, ``MAX_LEARNING_RATE_SHIFT``;
  and the quantized gains must fit ``MAX_WIDTH`` bits (:mod:`golden_model.gains`).
* ``MAX_SEED``: the LFSR starts at ``seed + 1``, a non-zero 32-bit word.
* ``MAX_CONFIG_BYTES``: a configuration file larger than this is refused before it is parsed.
"""

from __future__ import annotations

__all__ = [
    "MAX_WIDTH",
    "MAX_POPULATIONS",
    "MAX_LAYERS",
    "MAX_WEIGHTS",
    "MAX_TICKS_PER_WINDOW",
    "MAX_LEAK_SHIFT",
    "MAX_GAIN_FRAC",
    "MAX_LEARNING_RATE_SHIFT",
    "MAX_UPDATE_SHIFT",
    "MAX_SEED",
    "MAX_CONFIG_BYTES",
    "ConfigError",
    "excerpt",
]

MAX_WIDTH = 24
MAX_POPULATIONS = 4096
MAX_LAYERS = 16
MAX_WEIGHTS = 1 << 20
MAX_TICKS_PER_WINDOW = 1024
MAX_LEAK_SHIFT = 16
MAX_GAIN_FRAC = 20
MAX_LEARNING_RATE_SHIFT = 30
MAX_UPDATE_SHIFT = 32
MAX_SEED = 2**32 - 2
MAX_CONFIG_BYTES = 1 << 20

#: Longest excerpt of a bad value that an error message quotes.
EXCERPT_CHARS = 40


def excerpt(value: object) -> str:
    """``repr(value)``, cut to a short excerpt so that an error line stays one short line."""
    try:
        text = repr(value)
    except ValueError:  # an int too long for Python's str conversion
        return f"<{type(value).__name__} too large to print>"
    if len(text) <= EXCERPT_CHARS:
        return text
    return f"{text[: EXCERPT_CHARS - 3]}... ({len(text):,} characters)"


class ConfigError(ValueError):
    """A configuration value is malformed; ``field`` names it."""

    def __init__(self, field_name: str, reason: str) -> None:
        self.field = field_name
        self.reason = reason
        super().__init__(f"config field '{field_name}': {reason}")
