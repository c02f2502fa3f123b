"""Fixed-point expression builders for the gateware, defined by :mod:`golden_model.fixed`.

Each function returns Amaranth expressions for one operation of the golden model: symmetric
saturation (with its event flag), round-half-up and stochastic right shifts. Used only by ``hw``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed

from golden_model.fixed import max_code

__all__ = [
    "named",
    "saturate",
    "clamp_unsigned",
    "prefix_mask",
    "is_positive",
    "is_negative",
    "scale_round_nearest",
    "balanced_sum",
    "adder_tree",
    "times_constant",
    "shift_round_nearest",
    "shift_round_stochastic",
    "max_code",
]


def named(m: Module, expression: Value, name: str) -> Signal:
    """``expression`` as a combinational signal called ``name``. The Verilog spells an unnamed
    expression out again at every read, and ``saturate`` reads its input five times: name a
    sum before clamping it (Verilator evaluates every copy, every clock)."""
    expression = Value.cast(expression)
    signal = Signal(expression.shape(), name=name)
    m.d.comb += signal.eq(expression)
    return signal


def saturate(value: Value, width: int) -> tuple[Value, Value]:
    """``(clamped, event)``: ``value`` clamped to ``+-(2**(width-1) - 1)``, as a
    ``signed(width)`` expression, and a 1-bit flag set when the clamp acted.

    The range test reads bits, not comparators: ``value`` fits when every bit from
    ``width - 1`` up equals the sign, except ``-2**(width-1)`` itself. A comparison with a
    constant would become a carry chain per clamp in Yosys, the largest part of a small core."""
    top = max_code(width)
    value = Value.cast(value)
    if not value.shape().signed:
        value = Cat(value, Const(0, 1)).as_signed()
    n = len(value)
    if n < width:
        return value.as_signed(), Const(0, 1)
    sign = value[n - 1]
    high = value[width - 1 :]
    low = value[: width - 1]
    over = ~sign & high.any()
    under = sign & (~high.all() | ~low.any())
    clamped = Mux(over, Const(top, signed(width)), Mux(under, Const(-top, signed(width)), value))
    return clamped.as_signed()[:width].as_signed(), over | under


def clamp_unsigned(value: Value, width: int) -> Value:
    """``min(value, 2**width - 1)`` for a non-negative ``value`` (a saturating counter's
    next count), from its high bits rather than a comparator."""
    value = Value.cast(value)
    if len(value) <= width:
        return value
    return Mux(value[width:].any(), Const((1 << width) - 1, width), value[:width])


def prefix_mask(value: Value, n: int) -> Value:
    """An ``n``-bit mask with bit ``k`` set where ``k < value`` (``value`` unsigned): built bit
    by bit of ``value`` as a thermometer code, not from ``n`` comparisons with constants (each
    a carry chain in Yosys: a sequencer's 2 x 32 valid lanes took 540 CCU2C so)."""
    value = Value.cast(value)
    mask = Const(0, 1)  # the mask of the value's low 0 bits (which are 0)
    bits = 0
    while 1 << bits < n:
        if bits < len(value):
            top = value[bits].replicate(1 << bits)
            mask = Cat(mask | top, mask & top)
        else:
            mask = Cat(mask, Const(0, 1 << bits))
        bits += 1
    mask = mask[:n]
    if len(value) > bits:  # a value of 2**bits or more: every bit
        mask = Mux(value[bits:].any(), Const((1 << n) - 1, n), mask)
    return mask


def is_positive(value: Value) -> Value:
    """``value > 0`` for a signed ``value``, without a comparator."""
    value = Value.cast(value)
    return ~value[-1] & value.any()


def is_negative(value: Value) -> Value:
    """``value < 0`` for a signed ``value``: its sign bit."""
    return Value.cast(value)[-1]


def shift_round_nearest(value: Value, shift: int) -> Value:
    """``floor((value + 2**(shift-1)) / 2**shift)``; ``value`` unchanged for ``shift == 0``."""
    if shift == 0:
        return value
    return (value + (1 << (shift - 1))) >> shift


def scale_round_nearest(value: Value, gain: int, shift: int) -> Value:
    """``shift_round_nearest(value * gain, shift)`` for a constant ``gain >= 0``, with the
    gain's trailing zero bits taken out of both the product and the shift first (exact:
    ``floor((a 2^k + 2^(s-1)) / 2^s) = floor((a + 2^(s-k-1)) / 2^(s-k))`` for ``k < s``, and
    ``a 2^(k-s)`` for ``k >= s``). A gain of exactly one then costs no adder at all."""
    if gain < 0:
        raise ValueError(f"gain must be >= 0, got {gain}")
    if gain == 0:
        return Const(0, 1)
    k = (gain & -gain).bit_length() - 1
    odd = gain >> k
    product = value if odd == 1 else value * odd
    if k >= shift:
        return product << (k - shift)
    return shift_round_nearest(product, shift - k)


def shift_round_stochastic(value: Value, shift: int, random: Value) -> Value:
    """``floor((value + random) / 2**shift)`` with ``random`` uniform on ``[0, 2**shift)``."""
    if shift == 0:
        return value
    return (value + random[:shift]) >> shift


def balanced_sum(values) -> Value:
    """The sum of ``values`` as a balanced tree of adders: depth ``log2(n)``, not ``n``. A
    left-deep ``sum()`` of a few hundred terms (the per-clock saturation events of a 64-32-10
    core) is deep enough to exhaust Python's recursion in Amaranth's simulator, and is a long
    combinational path in hardware."""
    terms = [Value.cast(v) for v in values]
    if not terms:
        return Const(0, 1)
    while len(terms) > 1:
        paired = [terms[k] + terms[k + 1] for k in range(0, len(terms) - 1, 2)]
        terms = paired + ([terms[-1]] if len(terms) % 2 else [])
    return terms[0]


def adder_tree(m: Module, values, name: str) -> Value:
    """The sum of wide ``values`` as :func:`balanced_sum` does, each adder's result a kept
    signal ``{name}_{level}_{k}``. Yosys merges an unbroken tree of adds into one
    multi-operand sum and builds it from full adders in LUTs (two LUT4 a bit and a level);
    kept, each add maps to the carry chain (one LUT4 a bit): the digits synapse unit at 130
    lanes took 12,314 LUT4 and 387 CCU2C so, 3,939 and 2,549 kept (about 31 % less logic)."""
    terms = [Value.cast(v) for v in values]
    if not terms:
        return Const(0, 1)
    level = 0
    while len(terms) > 1:
        paired = []
        for k in range(0, len(terms) - 1, 2):
            total = terms[k] + terms[k + 1]
            node = Signal(total.shape(), name=f"{name}_{level}_{k // 2}", attrs={"keep": 1})
            m.d.comb += node.eq(total)
            paired.append(node)
        terms = paired + ([terms[-1]] if len(terms) % 2 else [])
        level += 1
    return terms[0]


def times_constant(value: Value, constant: int) -> Value:
    """``value * constant`` for a constant ``constant >= 0``, as a sum of shifted copies of
    ``value`` (one per set bit). Yosys maps a product with a constant to a hard multiplier on
    the ECP5, one that the multiply-accumulate lanes could have used."""
    if constant < 0:
        raise ValueError(f"constant must be >= 0, got {constant}")
    value = Value.cast(value)
    shifted = [value << bit for bit in range(constant.bit_length()) if constant >> bit & 1]
    return balanced_sum(shifted)
