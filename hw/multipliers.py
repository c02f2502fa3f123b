"""One set of hard multipliers shared by units that never multiply in the same clock.

A weight matrix has up to three units: its synapse unit (the forward sweep), its transposed
copy's (the backward sweep) and its learning rule. A tick learns, then sweeps, then steps, and
each matrix is read by one transfer, so the three never multiply at once; giving each its own
``lanes`` multipliers leaves two thirds of them idle. Sharing them lets the same device run
twice or three times the lanes.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Module, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["MultiplierPool"]


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
