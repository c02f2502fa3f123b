"""The named choices of a configuration: each a string enum, so that JSON carries the plain
word and code compares against the member, never against a string literal."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Rounding", "OutputKind"]


class Rounding(StrEnum):
    """How a weight update's right shift rounds: half up, or stochastically from the LFSR."""

    NEAREST = "nearest"
    STOCHASTIC = "stochastic"


class OutputKind(StrEnum):
    """The backprop circuit's output layer: the signed PMPY pair, or rectified."""

    LINEAR = "linear"
    RELU = "relu"
