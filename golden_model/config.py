"""The one configuration object shared by the golden model and the hardware.

Every numeric choice of the circuit (sizes, timing, fixed-point formats, learning rate, rounding,
seed) is a field here. The configuration is validated on construction: a bad value raises
:class:`ConfigError` naming the field and the reason, so nothing downstream sees it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ROUNDING_MODES",
    "OUTPUT_KINDS",
    "MAX_WIDTH",
    "MAX_POPULATIONS",
    "MAX_TICKS_PER_WINDOW",
    "ConfigError",
    "Config",
    "default_config",
]

ROUNDING_MODES = ("nearest", "stochastic")
OUTPUT_KINDS = ("linear", "relu")
#: Widest current or weight word. Products of two words, summed over the widest fan-in, must fit
#: the golden model's int64 arithmetic exactly; 24 bits also covers an 18x18 or 16x16 DSP.
MAX_WIDTH = 24
#: Largest group size; also bounds the fan-in of an accumulation.
MAX_POPULATIONS = 4096
MAX_TICKS_PER_WINDOW = 1024
MAX_LEAK_SHIFT = 16
MAX_GAIN_FRAC = 20
MAX_LEARNING_RATE_SHIFT = 30
MAX_SEED = 2**32 - 2  # the LFSR seed is seed + 1, which must be a non-zero 32-bit word


class ConfigError(ValueError):
    """A configuration value is malformed; ``field`` names it."""

    def __init__(self, field_name: str, reason: str) -> None:
        self.field = field_name
        self.reason = reason
        super().__init__(f"config field '{field_name}': {reason}")


@dataclass(frozen=True)
class Config:
    """Network sizes, timing, fixed-point formats and learning settings.

    Parameters
    ----------
    layers : tuple of int
        Population counts per layer, input first (``(2, 8, 1)`` is the XOR circuit 2-8-1).
        The AR(2) circuit uses ``layers[0]`` as the dimension of the process.
    output : {"linear", "relu"}
        Output layer of the backprop circuit. ``"linear"`` reads the signed PMPY pair itself
        (``o_L = n_L+ - n_L-``); ``"relu"`` rectifies it as in the talk's table.
    ticks_per_window : int
        ``N``, ticks in one gating window (one phase).
    leak_shift : int
        ``alpha = 2**-leak_shift``; 0 means ``alpha = 1`` (no memory, requires ``N = 1``).
    current_width, current_frac : int
        Signed word width and fraction bits of every population current.
    weight_width, weight_frac : int
        Signed word width and fraction bits of every synaptic weight.
    gain_frac : int
        Fraction bits of the quantized exact gains (unsigned).
    learning_rate_shift : int
        ``eta = 2**-learning_rate_shift`` for backprop; for the AR(2) circuit the floor the
        halving rate schedule stops at.
    rounding : {"nearest", "stochastic"}
        Rounding of weight updates: round half up, or stochastic from the seeded LFSR.
    bias_init : float
        Initial value of every bias weight.
    seed : int
        Seeds weight initialisation, sample order and the rounding LFSR.
    """

    layers: tuple[int, ...] = (2, 8, 1)
    output: str = "linear"
    ticks_per_window: int = 1
    leak_shift: int = 0
    current_width: int = 16
    current_frac: int = 12
    weight_width: int = 16
    weight_frac: int = 12
    gain_frac: int = 14
    learning_rate_shift: int = 3
    rounding: str = "nearest"
    bias_init: float = 0.1
    seed: int = 1
    _validated: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.layers, list):
            object.__setattr__(self, "layers", tuple(self.layers))
        _validate(self)

    # -- derived constants: one home for each -------------------------------------------------

    @property
    def alpha(self) -> float:
        """Leak factor per tick, ``dt / tau``."""
        return 2.0**-self.leak_shift

    @property
    def eta(self) -> float:
        """Learning rate of the backprop circuit."""
        return 2.0**-self.learning_rate_shift

    @property
    def update_shift(self) -> int:
        """Right shift turning ``post * pre`` (current x current) into ``eta * post * pre``
        in weight units: ``2 * current_frac + learning_rate_shift - weight_frac``."""
        return 2 * self.current_frac + self.learning_rate_shift - self.weight_frac

    @property
    def lfsr_seed(self) -> int:
        """Initial state of the 32-bit rounding LFSR (never zero)."""
        return self.seed + 1

    # -- JSON -----------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
            for f in dataclasses.fields(self)
            if f.init
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def from_dict(cls, data: Any, base: Config | None = None) -> Config:
        """Build from a mapping; missing keys take their value from ``base`` (or the defaults)."""
        if not isinstance(data, dict):
            raise ConfigError("<root>", f"expected a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls) if f.init}
        for key in data:
            if key not in known:
                raise ConfigError(str(key), f"unknown key (known: {', '.join(sorted(known))})")
        values = (base or cls()).to_dict()
        values.update(data)
        return cls(**values)

    @classmethod
    def from_json(cls, text: str, base: Config | None = None) -> Config:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError("<root>", f"not valid JSON: {exc}") from None
        return cls.from_dict(data, base)

    @classmethod
    def load(cls, path: str | Path, base: Config | None = None) -> Config:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError("<file>", f"cannot read {path}: {exc.strerror}") from None
        return cls.from_json(text, base)

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


def default_config(circuit: str = "xor") -> Config:
    """The embedded default configuration of a circuit (``"xor"`` or ``"ar2"``)."""
    if circuit == "xor":
        return Config()
    if circuit == "ar2":
        # Covariances of a unit-noise AR(2) reach ~3: 10 fraction bits leave a range of +-32.
        # Rates fall to 2^-14, far below one LSB per step, hence stochastic rounding.
        return Config(
            layers=(2,),
            current_width=16,
            current_frac=10,
            weight_width=18,
            weight_frac=12,
            learning_rate_shift=14,
            rounding="stochastic",
        )
    raise ValueError(f"unknown circuit {circuit!r} (known: xor, ar2)")


# -- validation -------------------------------------------------------------------------------


def _int_field(cfg: Config, name: str, lo: int, hi: int) -> int:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, f"must be an integer, got {type(value).__name__} {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(name, f"must be in [{lo}, {hi}], got {value}")
    return value


def _choice_field(cfg: Config, name: str, choices: tuple[str, ...]) -> str:
    value = getattr(cfg, name)
    if not isinstance(value, str):
        raise ConfigError(name, f"must be a string, got {type(value).__name__} {value!r}")
    if value not in choices:
        raise ConfigError(name, f"unknown value {value!r} (choose from {', '.join(choices)})")
    return value


def _validate(cfg: Config) -> None:
    if not isinstance(cfg.layers, tuple) or len(cfg.layers) == 0:
        raise ConfigError("layers", f"must be a non-empty list of sizes, got {cfg.layers!r}")
    for i, size in enumerate(cfg.layers):
        if isinstance(size, bool) or not isinstance(size, int):
            raise ConfigError(f"layers[{i}]", f"must be an integer, got {size!r}")
        if not 1 <= size <= MAX_POPULATIONS:
            raise ConfigError(f"layers[{i}]", f"must be in [1, {MAX_POPULATIONS}], got {size}")
    _choice_field(cfg, "output", OUTPUT_KINDS)
    _choice_field(cfg, "rounding", ROUNDING_MODES)
    n = _int_field(cfg, "ticks_per_window", 1, MAX_TICKS_PER_WINDOW)
    k = _int_field(cfg, "leak_shift", 0, MAX_LEAK_SHIFT)
    if k == 0 and n > 1:
        raise ConfigError(
            "leak_shift",
            f"0 means alpha = 1 (no memory), which only works with ticks_per_window = 1, "
            f"got ticks_per_window = {n}",
        )
    for kind in ("current", "weight"):
        width = _int_field(cfg, f"{kind}_width", 2, MAX_WIDTH)
        frac = _int_field(cfg, f"{kind}_frac", 0, MAX_WIDTH)
        if frac >= width:
            raise ConfigError(f"{kind}_frac", f"must be < {kind}_width ({width}), got {frac}")
        if width - frac < 2:
            raise ConfigError(
                f"{kind}_frac",
                f"leaves no integer bit: {kind}_width - {kind}_frac must be >= 2 so that 1.0 "
                f"(unit relays, the bias population) is representable",
            )
    _int_field(cfg, "gain_frac", 0, MAX_GAIN_FRAC)
    _int_field(cfg, "learning_rate_shift", 0, MAX_LEARNING_RATE_SHIFT)
    if cfg.update_shift < 0:
        raise ConfigError(
            "learning_rate_shift",
            f"2*current_frac + learning_rate_shift - weight_frac = {cfg.update_shift} < 0: "
            f"the update would need a left shift",
        )
    _int_field(cfg, "seed", 0, MAX_SEED)
    if isinstance(cfg.bias_init, bool) or not isinstance(cfg.bias_init, int | float):
        raise ConfigError("bias_init", f"must be a number, got {cfg.bias_init!r}")
    if not math.isfinite(cfg.bias_init):
        raise ConfigError("bias_init", f"must be finite, got {cfg.bias_init}")
    # Accumulations are exact in int64: (fan-in) x (current x weight) must fit in 62 bits.
    fan_in = 2 * max(cfg.layers) + 2
    bits = cfg.current_width + cfg.weight_width + math.ceil(math.log2(fan_in))
    if bits > 62:
        raise ConfigError(
            "weight_width", f"accumulator would need {bits} bits, the arithmetic supports 62"
        )
    # The exact gain has to fit a word; see dynamics.exact_gain (imported lazily: no cycle).
    from .dynamics import gain_word

    gain_word(cfg)
    object.__setattr__(cfg, "_validated", True)
