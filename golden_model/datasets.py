"""Real data for the backprop circuit: scikit-learn's bundled iris and 8x8 digits sets.

Both ship inside scikit-learn (no download). Each set is split once, stratified, with a fixed
seed, so every run, every machine and the RTL see the same training and test samples in the
same order. Inputs are scaled to the circuit's signed range and targets are one-hot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import Config

__all__ = ["DATASETS", "Dataset", "load_dataset", "dataset_config", "default_epochs"]

#: name -> (layers, learning rate shift, test fraction, default epochs). Sizes are the task's:
#: iris 4-8-3, digits 64-32-10. Rates and epochs from seed sweeps (docs/model.md): iris at
#: eta = 2^-5 reaches >= 95.6 % test accuracy after 20 epochs from each of seeds 1-10.
DATASETS = {
    "iris": ((4, 8, 3), 5, 0.3, 20),
    "digits": ((64, 32, 10), 6, 0.25, 20),
}
SPLIT_SEED = 0


@dataclass(frozen=True)
class Dataset:
    """A fixed split. ``x_*`` are the circuit's signed inputs, ``t_*`` one-hot targets,
    ``y_*`` class indices."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]

    @property
    def features(self) -> int:
        return self.x_train.shape[1]

    def targets(self, y: np.ndarray) -> np.ndarray:
        return np.eye(len(self.classes))[y]


def load_dataset(name: str) -> Dataset:
    """The fixed split of ``name`` (``"iris"`` or ``"digits"``).

    Digits: pixel values 0..16 divided by 16 (inputs in [0, 1]). Iris: each feature
    standardized with the training split's mean and deviation, then halved (inputs within
    about +-1.5, well inside the currents' range)."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
    _, _, test_fraction, _ = DATASETS[name]
    if name == "digits":
        raw = datasets.load_digits()
        classes = tuple(str(c) for c in raw.target_names)
    else:
        raw = datasets.load_iris()
        classes = tuple(str(c) for c in raw.target_names)
    x = raw.data.astype(np.float64)
    y = raw.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=SPLIT_SEED, stratify=y
    )
    if name == "digits":
        x_train, x_test = x_train / 16.0, x_test / 16.0
    else:
        mean, std = x_train.mean(axis=0), x_train.std(axis=0)
        x_train, x_test = (x_train - mean) / std / 2.0, (x_test - mean) / std / 2.0
    return Dataset(name, x_train, y_train, x_test, y_test, classes)


def dataset_config(name: str, **overrides) -> Config:
    """The default configuration for ``name``: its layers and learning rate, 16-bit words."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
    layers, shift, _, _ = DATASETS[name]
    return Config(**{"layers": layers, "learning_rate_shift": shift, **overrides})


def default_epochs(name: str) -> int:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
    return DATASETS[name][3]
