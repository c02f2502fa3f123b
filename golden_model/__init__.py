"""The golden model: the executable specification of the pulse-gated backprop circuit.

numpy only; imports nothing else of the project. ``hw`` and ``sim`` take every constant and the
compiled schedule from here, and compare their traces with :class:`~golden_model.trace.Trace`.
"""

from .config import Config, ConfigError, default_config

__all__ = ["Config", "ConfigError", "default_config"]
