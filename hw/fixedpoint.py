"""Fixed-point expression builders for the gateware, defined by :mod:`golden_model.fixed`.

Each function returns Amaranth expressions for one operation of the golden model: symmetric
saturation (with its event flag), round-half-up and stochastic right shifts. Used only by ``hw``.
"""

from __future__ import annotations

from amaranth.hdl import Const, Mux, Value, signed

from golden_model.fixed import max_code

__all__ = ["saturate", "shift_round_nearest", "shift_round_stochastic", "max_code"]


def saturate(value: Value, width: int) -> tuple[Value, Value]:
    """``(clamped, event)``: ``value`` clamped to ``+-(2**(width-1) - 1)``, as a
    ``signed(width)`` expression, and a 1-bit flag set when the clamp acted."""
    top = max_code(width)
    over = value > top
    under = value < -top
    clamped = Mux(over, Const(top, signed(width)), Mux(under, Const(-top, signed(width)), value))
    return clamped.as_signed()[:width].as_signed(), over | under


def shift_round_nearest(value: Value, shift: int) -> Value:
    """``floor((value + 2**(shift-1)) / 2**shift)``; ``value`` unchanged for ``shift == 0``."""
    if shift == 0:
        return value
    return (value + (1 << (shift - 1))) >> shift


def shift_round_stochastic(value: Value, shift: int, random: Value) -> Value:
    """``floor((value + random) / 2**shift)`` with ``random`` uniform on ``[0, 2**shift)``."""
    if shift == 0:
        return value
    return (value + random[:shift]) >> shift
