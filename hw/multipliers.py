"""One set of hard multipliers shared by units that never multiply in the same clock.

A weight matrix has up to three units: its synapse unit (the forward sweep), its transposed
copy's (the backward sweep) and its learning rule. A tick learns, then sweeps, then steps, and
each matrix is read by one transfer, so the three never multiply at once; giving each its own
``lanes`` multipliers leaves two thirds of them idle. Sharing them lets the same device run
twice or three times the lanes.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import (
    ClockSignal,
    Const,
    Instance,
    Module,
    Mux,
    ResetSignal,
    Signal,
    Value,
    signed,
)
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["MultiplierPool", "RegisteredMultiplier", "register_copies"]


class MultiplierPool(wiring.Component):
    """``lanes`` multipliers, each taking the OR of its users' operands.

    A user holds its operands at zero while it does not multiply (the units' ``mul_a`` and
    ``mul_b`` come from registers cleared outside ``mul_valid``), so the OR of all users is
    the valid one's: two LUT4 a bit for five users, where a chain of multiplexers took four
    (16,768 LUT4 in front of the digits core's 132 multipliers).

    Parameters
    ----------
    users : int
        Units that multiply here, never two in the same clock.
    lanes : int
        Multipliers.
    a_width, b_width : int
        Signed operand widths (the widest of the users').
    user_lanes : sequence of int, optional
        Lanes each user drives (its first ones; default ``lanes`` for all): a narrower user
        leaves the multipliers past its own out of their OR.

    Attributes
    ----------
    a, b : In(ArrayLayout(ArrayLayout(signed, lanes), users))
        Each user's operands; zero while it does not multiply.
    product : Out(ArrayLayout(signed(a_width + b_width), lanes))
        ``a * b`` of the multiplying user one clock later (a register after each
        multiplier, as in the units that own theirs).
    """

    def __init__(
        self,
        users: int,
        lanes: int,
        a_width: int,
        b_width: int,
        user_lanes: Sequence[int] | None = None,
    ) -> None:
        if users < 1 or lanes < 1:
            raise ValueError(f"a multiplier pool needs users, lanes >= 1, got {users}, {lanes}")
        user_lanes = [lanes] * users if user_lanes is None else list(user_lanes)
        if len(user_lanes) != users or not all(1 <= n <= lanes for n in user_lanes):
            raise ValueError(f"user_lanes must be {users} counts in 1..{lanes}, got {user_lanes}")
        self.users, self.lanes, self.user_lanes = users, lanes, user_lanes
        super().__init__(
            {
                "a": In(data.ArrayLayout(data.ArrayLayout(signed(a_width), lanes), users)),
                "b": In(data.ArrayLayout(data.ArrayLayout(signed(b_width), lanes), users)),
                "product": Out(data.ArrayLayout(signed(a_width + b_width), lanes)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        for lane in range(self.lanes):
            users = [u for u in range(self.users) if lane < self.user_lanes[u]]
            a, b = self.a[users[0]][lane], self.b[users[0]][lane]
            for user in users[1:]:
                a, b = a | self.a[user][lane], b | self.b[user][lane]
            m.d.sync += self.product[lane].eq(a * b)
        return m


class RegisteredMultiplier(wiring.Component):
    """``p = a * b`` two clocks on: the operands registered, then the product.

    On the ECP5 the three registers are a MULT18X18D's own (its input and output registers):
    Yosys maps a multiplication to the block but leaves registers around it in the fabric, so
    the operands' flip-flops, the multiplier's array and the route back to the product's
    flip-flops were one path (digits at 8 x 32: 10.45 ns, 95.7 MHz). Elsewhere they are
    registers without reset, which Yosys moves into the iCE40 DSP's own.

    Parameters
    ----------
    a_width, b_width : int
        Signed operand widths (at most 18 each on the ECP5's block).

    Attributes
    ----------
    a : In(signed(a_width)), b : In(signed(b_width))
        The operands, registered at the clock's edge.
    clear_b : In(1)
        ``b``'s register takes zero instead (the ECP5 block's synchronous reset of its B
        register: a multiplier idle on one side needs no AND in front of it).
    p : Out(signed(a_width + b_width))
        Their product, registered a clock later.
    """

    def __init__(self, a_width: int, b_width: int) -> None:
        self.a_width, self.b_width = a_width, b_width
        super().__init__(
            {
                "a": In(signed(a_width)),
                "b": In(signed(b_width)),
                "clear_b": In(1),
                "p": Out(signed(a_width + b_width)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        if getattr(platform, "family", None) == "ecp5" and max(self.a_width, self.b_width) <= 18:
            self._mult18x18d(m)
            return m
        # registers without reset: only those does Yosys move into the iCE40 DSP's own
        a = Signal.like(self.a, name="a_reg", reset_less=True)
        b = Signal.like(self.b, name="b_reg", reset_less=True)
        p = Signal.like(self.p, name="p_reg", reset_less=True)
        m.d.sync += [a.eq(self.a), b.eq(Mux(self.clear_b, 0, self.b)), p.eq(a * b)]
        m.d.comb += self.p.eq(p)
        return m

    def _mult18x18d(self, m: Module) -> None:
        """The ECP5's block, its A, B and output registers on (no pipeline register); B's
        register reset (synchronous) by ``clear_b``."""
        a, b, p = Signal(signed(18), name="a18"), Signal(signed(18), name="b18"), Signal(36)
        m.d.comb += [a.eq(self.a), b.eq(self.b), self.p.eq(p[: len(self.p)])]
        ports = {"i_SIGNEDA": 1, "i_SIGNEDB": 1, "i_SOURCEA": 0, "i_SOURCEB": 0}
        ports |= {"i_CLK0": ClockSignal(), "i_CE0": 1, "i_RST0": 0, "i_RST1": self.clear_b}
        ports |= {"i_CLK1": 0, "i_CE1": 0}
        for n in (2, 3):
            ports |= {f"i_CLK{n}": 0, f"i_CE{n}": 0, f"i_RST{n}": 0}
        for bit in range(18):
            ports |= {f"i_A{bit}": a[bit], f"i_B{bit}": b[bit], f"i_C{bit}": 0}
        ports |= {f"o_P{bit}": p[bit] for bit in range(36)}
        registers = {"p_REG_INPUTC_CLK": "NONE", "p_REG_PIPELINE_CLK": "NONE"}
        for reg in ("INPUTA", "INPUTB", "OUTPUT"):
            registers |= {f"p_REG_{reg}_CLK": "CLK0", f"p_REG_{reg}_CE": "CE0"}
            registers[f"p_REG_{reg}_RST"] = "RST1" if reg == "INPUTB" else "RST0"
        m.submodules.block = Instance(
            "MULT18X18D", p_GSR="DISABLED", p_RESETMODE="SYNC", **registers, **ports
        )


def register_copies(m: Module, platform, value, count: int, name: str) -> list[Signal]:
    """``value`` registered ``count`` times over (reset to zero with the domain), so that
    each copy drives a group of multipliers rather than one flip-flop all of them.

    Yosys merges flip-flops with the same input, ``keep`` or not; on the ECP5 the copies are
    ``TRELLIS_FF`` instances, which it leaves alone. Elsewhere they are plain registers (and
    merge): the simulators see the same values either way."""
    value = Value.cast(value)
    copies = [Signal(len(value), name=f"{name}_copy{c}") for c in range(count)]
    if count == 1 or getattr(platform, "family", None) != "ecp5":
        m.d.sync += [copy.eq(value) for copy in copies]
        return copies
    flop = {"p_GSR": "DISABLED", "p_CEMUX": "1", "p_CLKMUX": "CLK", "p_LSRMUX": "LSR"}
    flop |= {"p_REGSET": "RESET", "p_SRMODE": "LSR_OVER_CE"}
    for c, copy in enumerate(copies):
        for bit in range(len(value)):
            m.submodules[f"{name}_copy{c}_{bit}"] = Instance(
                "TRELLIS_FF",
                **flop,
                i_CLK=ClockSignal(),
                i_CE=Const(1),
                i_LSR=ResetSignal(),
                i_DI=value[bit],
                o_Q=copy[bit],
            )
    return copies
