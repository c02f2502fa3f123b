"""Networks several test modules check the cores against."""

from golden_model.config import Config

#: Currents and weights that clamp: a learning rate of one, relu output, leaky N = 2,
#: stochastic rounding (both saturation counters move within XOR's first 8 samples).
SATURATING = Config(
    layers=(2, 5, 3, 1),
    output="relu",
    learning_rate_shift=0,
    ticks_per_window=2,
    leak_shift=1,
    rounding="stochastic",
)
