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

from .choices import OutputKind, Rounding
from .gains import gain_word
from .limits import (
    MAX_CONFIG_BYTES,
    MAX_GAIN_FRAC,
    MAX_LAYERS,
    MAX_LEAK_SHIFT,
    MAX_LEARNING_RATE_SHIFT,
    MAX_POPULATIONS,
    MAX_SEED,
    MAX_TICKS_PER_WINDOW,
    MAX_UPDATE_SHIFT,
    MAX_WEIGHTS,
    MAX_WIDTH,
    ConfigError,
    excerpt,
)

__all__ = [
    "Rounding",
    "OutputKind",
    "ROUNDING_MODES",
    "OUTPUT_KINDS",
    "MAX_WIDTH",
    "MAX_POPULATIONS",
    "MAX_LAYERS",
    "MAX_WEIGHTS",
    "MAX_TICKS_PER_WINDOW",
    "ConfigError",
    "Config",
    "default_config",
    "weight_count",
    "TASK_SHAPES",
    "check_task_shape",
]

ROUNDING_MODES = tuple(Rounding)
OUTPUT_KINDS = tuple(OutputKind)


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
    output: str = OutputKind.LINEAR
    ticks_per_window: int = 1
    leak_shift: int = 0
    current_width: int = 16
    current_frac: int = 12
    weight_width: int = 16
    weight_frac: int = 12
    gain_frac: int = 14
    learning_rate_shift: int = 3
    rounding: str = Rounding.NEAREST
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
                raise ConfigError(
                    excerpt(key).strip("'"), f"unknown key (known: {', '.join(sorted(known))})"
                )
        values = (base or cls()).to_dict()
        values.update(data)
        return cls(**values)

    @classmethod
    def from_json(cls, text: str, base: Config | None = None) -> Config:
        if len(text) > MAX_CONFIG_BYTES:
            raise ConfigError("<file>", f"larger than {MAX_CONFIG_BYTES:,} bytes")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError("<root>", f"not valid JSON: {exc}") from None
        except RecursionError:
            raise ConfigError("<root>", "not a configuration: nested too deeply") from None
        except ValueError as exc:  # e.g. an integer past Python's digit limit
            raise ConfigError("<root>", f"not valid JSON: {excerpt(str(exc))}") from None
        return cls.from_dict(data, base)

    @classmethod
    def load(cls, path: str | Path, base: Config | None = None) -> Config:
        """Read a JSON file of at most ``MAX_CONFIG_BYTES`` (a larger one, or an endless
        device such as ``/dev/zero``, is refused after reading one byte past the limit)."""
        try:
            with open(path, "rb") as stream:
                raw = stream.read(MAX_CONFIG_BYTES + 1)
        except OSError as exc:
            raise ConfigError("<file>", f"cannot read {path}: {exc.strerror}") from None
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError("<file>", f"{path} is larger than {MAX_CONFIG_BYTES:,} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(
                "<file>", f"{path} is not UTF-8 text (byte {exc.start}: {raw[exc.start]:#04x})"
            ) from None
        return cls.from_json(text, base)

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


def default_config(circuit: str = "xor") -> Config:
    """The embedded default configuration of a circuit (``"xor"``, ``"ar2"`` or
    ``"linear"``)."""
    if circuit == "xor":
        return Config()
    if circuit == "linear":
        return Config(layers=(3, 2))
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
            rounding=Rounding.STOCHASTIC,
        )
    raise ValueError(f"unknown circuit {circuit!r} (known: xor, ar2, linear)")


# -- validation -------------------------------------------------------------------------------


def _int_field(cfg: Config, name: str, lo: int, hi: int) -> int:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, f"must be an integer, got {type(value).__name__} {excerpt(value)}")
    if not lo <= value <= hi:
        raise ConfigError(name, f"must be in [{lo}, {hi}], got {excerpt(value)}")
    return value


def _choice_field(cfg: Config, name: str, choices: tuple[str, ...]) -> str:
    value = getattr(cfg, name)
    if not isinstance(value, str):
        raise ConfigError(name, f"must be a string, got {type(value).__name__} {excerpt(value)}")
    if value not in choices:
        raise ConfigError(
            name, f"unknown value {excerpt(value)} (choose from {', '.join(choices)})"
        )
    return value


def _validate(cfg: Config) -> None:
    if not isinstance(cfg.layers, tuple) or len(cfg.layers) == 0:
        raise ConfigError("layers", f"must be a non-empty list of sizes, got {excerpt(cfg.layers)}")
    if len(cfg.layers) > MAX_LAYERS:
        raise ConfigError("layers", f"at most {MAX_LAYERS} layers, got {len(cfg.layers):,}")
    for i, size in enumerate(cfg.layers):
        if isinstance(size, bool) or not isinstance(size, int):
            raise ConfigError(f"layers[{i}]", f"must be an integer, got {excerpt(size)}")
        if not 1 <= size <= MAX_POPULATIONS:
            raise ConfigError(
                f"layers[{i}]", f"must be in [1, {MAX_POPULATIONS}], got {excerpt(size)}"
            )
    if (weights := weight_count(cfg.layers)) > MAX_WEIGHTS:
        raise ConfigError(
            "layers",
            f"{'-'.join(map(str, cfg.layers))} has {weights:,} weights, at most "
            f"{MAX_WEIGHTS:,} are supported",
        )
    object.__setattr__(cfg, "output", OutputKind(_choice_field(cfg, "output", OUTPUT_KINDS)))
    object.__setattr__(cfg, "rounding", Rounding(_choice_field(cfg, "rounding", ROUNDING_MODES)))
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
    if cfg.update_shift > MAX_UPDATE_SHIFT:
        raise ConfigError(
            "learning_rate_shift",
            f"2*current_frac + learning_rate_shift - weight_frac = {cfg.update_shift} > "
            f"{MAX_UPDATE_SHIFT}: the update's shift (and the rounding LFSR's draw) is at most "
            f"{MAX_UPDATE_SHIFT} bits",
        )
    _int_field(cfg, "seed", 0, MAX_SEED)
    if isinstance(cfg.bias_init, bool) or not isinstance(cfg.bias_init, int | float):
        raise ConfigError("bias_init", f"must be a number, got {excerpt(cfg.bias_init)}")
    largest = ((1 << (cfg.weight_width - 1)) - 1) / (1 << cfg.weight_frac)
    if not (math.isfinite(cfg.bias_init) and abs(cfg.bias_init) <= largest):
        raise ConfigError(
            "bias_init",
            f"must be within the weight format's range [-{largest:g}, {largest:g}] "
            f"(weight_width {cfg.weight_width}, weight_frac {cfg.weight_frac}), "
            f"got {excerpt(cfg.bias_init)}",
        )
    # Accumulations are exact in int64: (fan-in) x (current x weight) must fit in 62 bits.
    fan_in = 2 * max(cfg.layers) + 2
    bits = cfg.current_width + cfg.weight_width + math.ceil(math.log2(fan_in))
    if bits > 62:
        raise ConfigError(
            "weight_width", f"accumulator would need {bits} bits, the arithmetic supports 62"
        )
    gain_word(cfg)  # the exact and held gains must fit a word
    object.__setattr__(cfg, "_validated", True)


def weight_count(layers: tuple[int, ...]) -> int:
    """Weights of all the backprop circuit's matrices, bias columns included."""
    pairs = zip(layers[:-1], layers[1:], strict=True)
    return sum((fan_in + 1) * fan_out for fan_in, fan_out in pairs)


#: What each task needs of ``layers``: (fewest entries, most entries, input size, output size);
#: ``None`` leaves a size free. Two entries are a one-layer network.
TASK_SHAPES: dict[str, tuple[int, int, int | None, int | None]] = {
    "backprop": (2, MAX_LAYERS, None, None),
    "xor": (2, MAX_LAYERS, 2, 1),
    "iris": (2, MAX_LAYERS, 4, 3),
    "digits": (2, MAX_LAYERS, 64, 10),
    "digits20": (2, MAX_LAYERS, 400, 10),
    "mnist20": (2, MAX_LAYERS, 400, 10),
    "linear": (2, 2, None, None),
    "ar2": (1, 1, None, None),
}


def check_task_shape(cfg: Config, task: str) -> None:
    """Raise :class:`ConfigError` naming the field unless ``cfg`` has the shape ``task`` needs
    (``layers``), and the formats its learning rule needs."""
    fewest, most, inputs, outputs = TASK_SHAPES[task]
    layers = cfg.layers
    shape = "-".join(map(str, layers))
    if not fewest <= len(layers) <= most:
        need = (
            f"exactly {fewest} entr{'y' if fewest == 1 else 'ies'}"
            if fewest == most
            else f"{fewest} to {most} entries (input, hidden..., output)"
        )
        raise ConfigError("layers", f"the {task} circuit needs {need}, got {shape}")
    if inputs is not None and layers[0] != inputs:
        raise ConfigError(
            "layers[0]", f"the {task} task has {inputs} inputs, got {layers[0]} ({shape})"
        )
    if task == "ar2" and 2 * cfg.current_frac < cfg.weight_frac:
        raise ConfigError(
            "current_frac",
            f"the covariance rule needs 2*current_frac >= weight_frac, got 2*"
            f"{cfg.current_frac} < {cfg.weight_frac}",
        )
    if outputs is not None and layers[-1] != outputs:
        raise ConfigError(
            f"layers[{len(layers) - 1}]",
            f"the {task} task has {outputs} output(s), got {layers[-1]} ({shape})",
        )
