"""Real data for the backprop circuit: scikit-learn's bundled iris and 8x8 digits sets, the
digits upsampled to 20 x 20 (400 inputs, the size of MNIST cropped as in Loihi's work), and
MNIST itself from IDX files the user has.

The bundled sets ship inside scikit-learn (no download). Each is split once, stratified, with
a fixed seed, so every run, every machine and the RTL see the same training and test samples
in the same order; ``digits20`` is ``digits`` upsampled, sample for sample. MNIST keeps its
own 60,000 / 10,000 split and is never downloaded (:func:`load_mnist` reads a folder).
Inputs are scaled to the circuit's signed range and targets are one-hot.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import Config

__all__ = [
    "DATASETS",
    "Dataset",
    "load_dataset",
    "load_mnist",
    "read_idx",
    "upsample",
    "dataset_config",
    "default_epochs",
]

#: name -> (layers, learning rate shift, test fraction, default epochs). Sizes are the task's:
#: iris 4-8-3, digits 64-32-10. Rates and epochs from seed sweeps (docs/model.md): iris at
#: eta = 2^-5 reaches >= 95.6 % test accuracy after 20 epochs from each of seeds 1-10.
DATASETS = {
    "iris": ((4, 8, 3), 5, 0.3, 20),
    "digits": ((64, 32, 10), 6, 0.25, 20),
    "digits20": ((400, 400, 10), 7, 0.25, 20),
    "mnist20": ((400, 400, 10), 7, None, 20),  # MNIST's own split
}
#: MNIST's IDX files (each may also be gzipped: the same name with ``.gz``).
MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
#: Pixels cropped from each side of MNIST's 28 x 28 images: 20 x 20 remain.
MNIST_BORDER = 4
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
    if name == "mnist20":
        raise ValueError("mnist20 is read from IDX files: load_mnist(data_dir)")
    if name == "digits20":
        d = load_dataset("digits")
        x_train, x_test = upsample(d.x_train, 20), upsample(d.x_test, 20)
        return Dataset(name, x_train, d.y_train, x_test, d.y_test, d.classes)
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


def upsample(images: np.ndarray, size: int) -> np.ndarray:
    """Square images (one a row, flattened) resized to ``size`` x ``size`` by bilinear
    interpolation with the corners aligned: the same numbers on every machine (two small
    matrix products, no library resampler), values within the originals' range."""
    images = np.asarray(images, dtype=np.float64)
    side = int(round(np.sqrt(images.shape[1])))
    if side * side != images.shape[1]:
        raise ValueError(f"images of {images.shape[1]} pixels are not square")
    # A[i, j]: the weight of source pixel j in target pixel i along one axis
    positions = np.linspace(0.0, side - 1, size)
    low = np.minimum(np.floor(positions).astype(int), side - 2)
    frac = positions - low
    axis = np.zeros((size, side))
    axis[np.arange(size), low] = 1.0 - frac
    axis[np.arange(size), low + 1] += frac
    grids = images.reshape(-1, side, side)
    return np.einsum("ij,njk,lk->nil", axis, grids, axis).reshape(len(images), size * size)


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (MNIST's format; gzipped if its name ends in ``.gz``) as an array of
    unsigned bytes. A file that is not one says which field is wrong."""
    import gzip

    path = Path(path)
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (magic: the first two bytes must be zero)")
    if raw[2] != 0x08:
        raise ValueError(f"{path}: element type 0x{raw[2]:02x}, expected 0x08 (unsigned byte)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise ValueError(f"{path}: dimensions: {ndim} declared, header cut short")
    shape = tuple(int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    count = int(np.prod(shape))
    if len(raw) - header != count:
        raise ValueError(
            f"{path}: dimensions {shape} need {count:,} bytes of data, the file has "
            f"{len(raw) - header:,}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_mnist(data_dir: str | Path) -> Dataset:
    """MNIST from the four IDX files in ``data_dir`` (:data:`MNIST_FILES`, each plain or
    ``.gz``; nothing is downloaded), its own training and test split, each 28 x 28 image
    cropped by :data:`MNIST_BORDER` pixels a side to 20 x 20 and scaled to [0, 1]."""
    data_dir = Path(data_dir)
    arrays = {}
    for key, name in MNIST_FILES.items():
        found = [p for p in (data_dir / name, data_dir / f"{name}.gz") if p.is_file()]
        if not found:
            raise FileNotFoundError(f"{data_dir}: no {name} (or {name}.gz): MNIST's IDX files")
        arrays[key] = read_idx(found[0])
    for part in ("train", "test"):
        images, labels = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise ValueError(f"{MNIST_FILES['x_' + part]}: images {images.shape[1:]}, not 28 x 28")
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(
                f"{MNIST_FILES['y_' + part]}: {labels.shape} labels for {len(images)} images"
            )
        if labels.max(initial=0) > 9:
            raise ValueError(f"{MNIST_FILES['y_' + part]}: a label above 9")
    b = MNIST_BORDER

    def crop(images):
        return images[:, b : 28 - b, b : 28 - b].reshape(len(images), -1) / 255.0

    return Dataset(
        "mnist20",
        crop(arrays["x_train"]),
        arrays["y_train"].astype(np.int64),
        crop(arrays["x_test"]),
        arrays["y_test"].astype(np.int64),
        tuple(str(c) for c in range(10)),
    )


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
