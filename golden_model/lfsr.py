"""The seeded LFSR that drives stochastic rounding, in the golden model and in the RTL.

A 32-bit Galois LFSR for the maximal-length polynomial ``x^32 + x^22 + x^2 + x + 1``:
each step shifts right by one and, when the bit shifted out is 1, XORs the mask
``0x80200003``. One rounding event consumes one step; its random addend is the low ``bits``
bits of the state *after* the step. The state is never zero (the seed is ``cfg.seed + 1``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["LFSR_MASK", "lfsr_step", "Lfsr"]

LFSR_MASK = 0x80200003
_WORD = 0xFFFFFFFF


def lfsr_step(state: int) -> int:
    """One step of the Galois LFSR."""
    out = state & 1
    state >>= 1
    return state ^ LFSR_MASK if out else state


class Lfsr:
    """Stateful LFSR; ``draw(n, bits)`` returns the next ``n`` random addends."""

    def __init__(self, seed_state: int) -> None:
        if not 0 < seed_state <= _WORD:
            raise ValueError(f"LFSR state must be a non-zero 32-bit word, got {seed_state}")
        self.state = seed_state

    def draw(self, count: int, bits: int) -> np.ndarray:
        """Advance ``count`` steps; return the low ``bits`` bits of each new state (int64)."""
        if not 0 <= bits <= 32:
            raise ValueError(f"an LFSR draw gives at most 32 bits, asked for {bits}")
        mask = (1 << bits) - 1
        out = np.empty(count, dtype=np.int64)
        state = self.state
        for i in range(count):
            state = (state >> 1) ^ LFSR_MASK if state & 1 else state >> 1
            out[i] = state & mask
        self.state = state
        return out
