"""The numbers a datapath block takes from a configuration, and nothing else of it."""

from __future__ import annotations

from dataclasses import dataclass

from golden_model.choices import Rounding
from golden_model.config import Config
from golden_model.dynamics import gain_word

__all__ = ["Arithmetic"]


@dataclass(frozen=True)
class Arithmetic:
    """Word widths, fraction bits and the constants of the population step and the learning
    rule: what the population, synapse, Hebbian and lane blocks compute with. The cores
    take the whole :class:`~golden_model.config.Config` (they also build the golden model's
    initial state); their blocks take this.

    Attributes
    ----------
    current_width, current_frac : int
        A current's bits and fraction bits.
    weight_width, weight_frac : int
        A weight's bits and fraction bits.
    gain_frac, exact_gain, held_gain : int
        The step's gains as words of ``gain_frac`` fraction bits
        (:func:`golden_model.dynamics.gain_word`).
    leak_shift : int
        A tick keeps ``I - round(I >> leak_shift)`` of a current (0: none, ``alpha = 1``).
    rounding : Rounding
        The learning rule's rounding.
    update_shift, learning_rate_shift : int
        The rule's scale (``eta = 2**-update_shift``) and the covariance rule's floor.
    lfsr_seed : int
        The rounding LFSR's first state.
    """

    current_width: int
    current_frac: int
    weight_width: int
    weight_frac: int
    gain_frac: int
    exact_gain: int
    held_gain: int
    leak_shift: int
    rounding: Rounding
    update_shift: int
    learning_rate_shift: int
    lfsr_seed: int

    @classmethod
    def of(cls, cfg: Config) -> Arithmetic:
        """The numbers of ``cfg`` (a :class:`~golden_model.limits.ConfigError` naming the
        field if a gain does not fit its word)."""
        exact, held = gain_word(cfg)
        return cls(
            current_width=cfg.current_width,
            current_frac=cfg.current_frac,
            weight_width=cfg.weight_width,
            weight_frac=cfg.weight_frac,
            gain_frac=cfg.gain_frac,
            exact_gain=exact,
            held_gain=held,
            leak_shift=cfg.leak_shift,
            rounding=Rounding(cfg.rounding),
            update_shift=cfg.update_shift,
            learning_rate_shift=cfg.learning_rate_shift,
            lfsr_seed=cfg.lfsr_seed,
        )
