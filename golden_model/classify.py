"""Classification on the backprop circuit: train on a data set's fixed split, epoch by epoch,
and measure test accuracy and the confusion matrix (iris 4-8-3, digits 64-32-10)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .circuit import FIXED, Circuit
from .config import Config
from .datasets import Dataset
from .schedule import compile_backprop
from .trace import TraceRecorder

__all__ = [
    "ClassifierResult",
    "train_classifier",
    "epoch_order",
    "training_samples",
    "evaluate",
    "test_with_weights",
    "confusion_matrix",
]

#: ``progress(epoch, epochs, result so far)`` after every epoch.
EpochProgress = Callable[[int, int, "ClassifierResult"], None]


@dataclass
class ClassifierResult:
    dataset: str
    mode: str
    seed: int
    epochs: int
    samples: int  # training samples run
    # one row per epoch: (epoch, training accuracy seen while training, test accuracy)
    curve: list[tuple[int, float, float]] = field(default_factory=list)
    confusion: np.ndarray | None = None  # test set, rows = true class, columns = predicted
    counters: list[int] = field(default_factory=list)  # sat_current, sat_weight, sat_copy, n
    weights: dict[str, np.ndarray] = field(default_factory=dict)  # final, as the circuit keeps them

    @property
    def test_accuracy(self) -> float:
        return self.curve[-1][2] if self.curve else float("nan")

    def to_json(self) -> dict:
        return {
            "dataset": self.dataset,
            "mode": self.mode,
            "seed": self.seed,
            "epochs": self.epochs,
            "samples": self.samples,
            "test_accuracy": self.test_accuracy,
            "curve": [list(row) for row in self.curve],
            "confusion": self.confusion.tolist() if self.confusion is not None else None,
            "counters": self.counters,
        }


def epoch_order(cfg: Config, size: int, epochs: int) -> list[np.ndarray]:
    """The training order of every epoch: seeded permutations (the RTL replays the same)."""
    rng = np.random.default_rng([cfg.seed, 2])
    return [rng.permutation(size) for _ in range(epochs)]


def training_samples(
    cfg: Config, data: Dataset, epochs: int, limit: int | None = None
) -> list[dict[str, np.ndarray]]:
    """The training samples (``x``, one-hot ``t``) in :func:`train_classifier`'s order, the
    first ``limit`` of them: what the RTL and a board are trained on."""
    order = np.concatenate(epoch_order(cfg, len(data.x_train), epochs))[:limit]
    targets = data.targets(data.y_train)
    return [{"x": data.x_train[i], "t": targets[i]} for i in order]


def test_with_weights(
    cfg: Config, data: Dataset, weight_codes: np.ndarray
) -> tuple[float, np.ndarray]:
    """Test accuracy and confusion matrix of the fixed-point circuit holding ``weight_codes``
    (every weight in the trace's order, as a board's READ_WEIGHT returns them)."""
    holder = Circuit(compile_backprop(cfg), cfg, FIXED)
    codes = np.asarray(weight_codes, dtype=np.int64)
    if codes.shape != holder.weight_flat.shape:
        raise ValueError(
            f"weights: {codes.size} codes, the {cfg.layers} circuit has {holder.weight_flat.size}"
        )
    holder.weight_flat[...] = codes
    evaluator = Circuit(compile_backprop(cfg, train=False), cfg, FIXED, share_weights_with=holder)
    predicted = evaluate(evaluator, data.x_test)
    accuracy = float(np.mean(predicted == data.y_test))
    return accuracy, confusion_matrix(data.y_test, predicted, len(data.classes))


def evaluate(evaluator: Circuit, xs: np.ndarray) -> np.ndarray:
    """Predicted class (argmax of the readout) for every input, by the inference schedule."""
    predicted = np.empty(len(xs), dtype=np.int64)
    for k, x in enumerate(xs):
        evaluator.load_signed("x", x)
        evaluator.run_sample()
        predicted[k] = int(np.argmax(evaluator.output()))
    return predicted


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    out = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(out, (true, predicted), 1)
    return out


def train_classifier(
    cfg: Config,
    data: Dataset,
    epochs: int,
    mode: str = FIXED,
    progress: EpochProgress | None = None,
    recorder: TraceRecorder | None = None,
    limit: int | None = None,
) -> ClassifierResult:
    """Train ``epochs`` passes over ``data``'s training split in :func:`epoch_order`.

    The training accuracy of an epoch is read from the training circuit itself (its readout
    comes before the learning phase, so it is the prediction the update then corrects); the
    test accuracy comes from the inference schedule on the test split after the epoch.
    ``limit`` stops after that many training samples (tests and RTL subsets); ``recorder``
    receives every training tick."""
    if cfg.layers[0] != data.features or cfg.layers[-1] != len(data.classes):
        raise ValueError(
            f"layers {cfg.layers} do not match {data.name}: "
            f"{data.features} inputs, {len(data.classes)} classes"
        )
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    circuit = Circuit(compile_backprop(cfg), cfg, mode)
    evaluator = Circuit(compile_backprop(cfg, train=False), cfg, mode, share_weights_with=circuit)
    targets = data.targets(data.y_train)
    result = ClassifierResult(data.name, mode, cfg.seed, epochs, 0)
    for epoch, order in enumerate(epoch_order(cfg, len(data.x_train), epochs), start=1):
        if limit is not None:
            order = order[: max(0, limit - result.samples)]
        correct = 0
        for i in order:
            circuit.load_signed("x", data.x_train[i])
            circuit.load_signed("t", targets[i])
            circuit.run_sample(recorder)
            correct += int(np.argmax(circuit.output()) == data.y_train[i])
        result.samples += len(order)
        predicted = evaluate(evaluator, data.x_test)
        test_accuracy = float(np.mean(predicted == data.y_test))
        result.curve.append((epoch, correct / max(len(order), 1), test_accuracy))
        result.confusion = confusion_matrix(data.y_test, predicted, len(data.classes))
        result.counters = [int(v) for v in circuit.counters]
        result.weights = {name: w.copy() for name, w in circuit.weights.items()}
        if progress is not None:
            progress(epoch, epochs, result)
        if limit is not None and result.samples >= limit:
            result.epochs = epoch
            break
    return result
