"""Figures: learning curves, a raster of one training step, AR(2) covariances."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from golden_model.schedule import POP, Schedule  # noqa: E402
from golden_model.trace import Trace  # noqa: E402

__all__ = [
    "learning_curve",
    "raster",
    "ar2_figure",
    "linear_figure",
    "accuracy_curve",
    "confusion_figure",
    "pareto",
    "pareto_front",
    "clock_breakdown",
]

#: What fills a sample's clocks (:func:`hw.microcode.clock_breakdown`), in the bars' order.
CLOCK_KINDS = ("multiply", "step", "gather", "wait", "control")


def learning_curve(curve: list[tuple[int, float]], path: Path, title: str) -> Path:
    samples, err = zip(*curve, strict=True)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.semilogy(samples, np.maximum(err, 1e-12), marker=".")
    ax.set_xlabel("training samples")
    ax.set_ylabel("mean squared error (4 inputs)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _group_axis(ax, groups: list[tuple[str, int]]) -> None:
    """Label a heat map's rows by group (one label at each group's middle) with a line
    between groups: readable where one label per element would not be."""
    edges = np.cumsum([0] + [size for _, size in groups])
    ax.set_yticks(
        [(a + b - 1) / 2 for a, b in zip(edges[:-1], edges[1:], strict=True)],
        [name if size == 1 else f"{name} ({size})" for name, size in groups],
        fontsize=8,
    )
    for edge in edges[1:-1]:
        ax.axhline(edge - 0.5, color="white", linewidth=0.8)


def raster(trace: Trace, schedule: Schedule, path: Path, scale: float, title: str) -> Path:
    """Gates, population currents and masks over the ticks of one sample, in the spirit of the
    talk's figures: the gating chain's pulses on top, the graded chain below. Rows are named
    by population group; the colour bar gives the currents in the model's units."""
    phases = trace.phase
    pops = [g for g in schedule.groups if g.kind == POP]
    held = [g for g in schedule.groups if g.kind != POP]
    gate_rows = [[g.name in schedule.phases[p].targets for p in phases] for g in pops]
    cur_rows, cur_groups = [], []
    for g in pops + held:
        values = trace.series(g.name) / scale
        cur_rows.extend(values[:, j] for j in range(g.size))
        cur_groups.append((g.name, g.size))
    mask_rows, mask_groups = [], []
    for name, size in schedule.masks:
        values = trace.series(name)
        mask_rows.extend(values[:, j] for j in range(size))
        mask_groups.append((name, size))
    heights = [len(gate_rows), max(len(cur_rows), 8), max(len(mask_rows), 2)]
    fig, axes = plt.subplots(
        3,
        1,
        figsize=(10, min(0.09 * sum(heights) + 4.5, 30)),
        sharex=True,
        gridspec_kw={"height_ratios": heights},
    )
    axes[0].imshow(
        np.array(gate_rows, float), aspect="auto", cmap="Oranges", interpolation="nearest"
    )
    axes[0].set_yticks(range(len(pops)), [g.name for g in pops], fontsize=8)
    axes[0].set_title(f"{title}\ngating pulses: a population's gate open (orange)", fontsize=10)
    im = axes[1].imshow(np.array(cur_rows), aspect="auto", cmap="viridis", interpolation="nearest")
    _group_axis(axes[1], cur_groups)
    axes[1].set_title("currents: populations, then held memories (rows per element)", fontsize=10)
    bar = fig.colorbar(im, ax=axes[1], fraction=0.025, pad=0.01)
    bar.set_label("current", fontsize=9)
    bar.ax.tick_params(labelsize=8)
    if mask_rows:
        axes[2].imshow(
            np.array(mask_rows, float),
            aspect="auto",
            cmap="Blues",
            vmin=0,
            vmax=1,
            interpolation="nearest",
        )
        _group_axis(axes[2], mask_groups)
    axes[2].set_title("derivative masks captured by the gating chain (blue: 1)", fontsize=10)
    names = [schedule.phases[p].name for p in phases]
    starts = [i for i in range(len(names)) if i == 0 or phases[i] != phases[i - 1]]
    axes[2].set_xticks(starts, [names[i] for i in starts], rotation=45, fontsize=8)
    axes[2].set_xlim(-0.5, len(phases) - 0.5)
    axes[2].set_xlabel("tick (labelled at each phase's first)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def ar2_figure(result, path: Path) -> Path:
    """Learned versus empirical lag covariances, and their error during the run."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    learned = np.concatenate([k.ravel() for k in result.K])
    empirical = np.concatenate([c.ravel() for c in result.C])
    labels = [f"K{lag}[{i},{j}]" for lag in range(3) for i in range(2) for j in range(2)]
    xs = np.arange(len(labels))
    left.bar(xs - 0.2, empirical, 0.4, label="empirical C_l")
    left.bar(xs + 0.2, learned, 0.4, label="learned K_l")
    left.set_xticks(xs, labels, rotation=70, fontsize=7)
    left.legend(fontsize=8)
    left.set_title("lag covariances", fontsize=9)
    samples = [s for s, _ in result.curve]
    errs = np.array([e for _, e in result.curve])
    for lag in range(3):
        right.semilogy(samples, errs[:, lag], label=f"lag {lag}")
    right.set_xlabel("samples")
    right.set_ylabel("relative Frobenius error")
    right.set_title("K_l against the covariance of the data so far", fontsize=9)
    right.legend(fontsize=8)
    right.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def linear_figure(result, path: Path, title: str) -> Path:
    """Every learned weight approaching its entry of ``A`` (dashed), and the error curves."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    samples = [s for s, _ in result.history]
    weights = np.array([w for _, w in result.history])
    targets = result.A.ravel()
    outputs, inputs = result.A.shape
    colors = plt.cm.tab10(np.arange(len(targets)) % 10)
    for k, (target, color) in enumerate(zip(targets, colors, strict=True)):
        i, j = divmod(k, inputs)
        left.plot(samples, weights[:, k], color=color, label=f"W[{i},{j}]")
        left.axhline(target, color=color, linestyle="--", linewidth=0.8)
    left.set_xlabel("training samples")
    left.set_ylabel("effective weight (dashed: A)")
    left.set_title("weights approach the target transform", fontsize=10)
    if len(targets) <= 12:
        left.legend(fontsize=7, ncol=2)
    left.grid(True, alpha=0.3)
    points = np.array(result.curve)
    right.semilogy(points[:, 0], np.maximum(points[:, 1], 1e-12), label="max |W - A|")
    right.semilogy(points[1:, 0], np.maximum(points[1:, 2], 1e-30), label="squared error")
    right.axhline(result.tolerance, color="gray", linestyle=":", label="tolerance")
    right.set_xlabel("training samples")
    right.set_title("error", fontsize=10)
    right.legend(fontsize=8)
    right.grid(True, which="both", alpha=0.3)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def accuracy_curve(curve: list[tuple[int, float, float]], path: Path, title: str) -> Path:
    """Training accuracy (seen while training) and test accuracy, epoch by epoch."""
    epochs, train, test = zip(*curve, strict=True)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(epochs, np.array(train) * 100, marker=".", label="training (while learning)")
    ax.plot(epochs, np.array(test) * 100, marker=".", label="test")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no half epochs on the axis
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def confusion_figure(
    confusion: np.ndarray, classes: tuple[str, ...], path: Path, title: str
) -> Path:
    """Test-set confusion matrix: rows are true classes, columns predicted ones."""
    n = len(classes)
    side = max(4.0, 1.5 + 0.5 * n)
    fig, ax = plt.subplots(figsize=(side, side))
    ax.imshow(confusion, cmap="Blues")
    for i in range(n):
        for j in range(n):
            if confusion[i, j]:
                color = "white" if confusion[i, j] > confusion.max() / 2 else "black"
                ax.text(j, i, str(confusion[i, j]), ha="center", va="center", color=color)
    ax.set_xticks(range(n), classes, rotation=45 if max(map(len, classes)) > 2 else 0)
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other beats: fewer (or equal) cost and more (or equal) value, one
    strictly better. ``(cost, value)`` pairs; the front in order of cost."""
    front, best = [], float("-inf")
    for cost, value in sorted(points, key=lambda p: (p[0], -p[1])):
        if value > best:
            front.append((cost, value))
            best = value
    return front


def pareto(rows: list[dict], path: Path, title: str) -> Path | None:
    """A sweep's rows for one board: samples/s at the built clock against logic cells (rows
    of ``build`` jobs), or, with no builds, clocks a sample against logic cells (lower is
    better: shown as samples per million clocks). Labels name each row's plan; accuracy is
    added where a row has one. ``None`` when no row has both numbers."""
    points = []
    for r in rows:
        cells = r.get("logic_cells")
        if cells is None:
            continue
        if r.get("samples_per_s") is not None:
            points.append((cells, r["samples_per_s"], r))
        elif r.get("cycles_per_sample"):
            points.append((cells, 1e6 / r["cycles_per_sample"], r))
    if not points:
        return None
    built = any(r.get("samples_per_s") is not None for _, _, r in points)
    fig, ax = plt.subplots(figsize=(6, 4))
    configs = list(dict.fromkeys(r["config"] for _, _, r in points))
    for index, config in enumerate(configs):  # a front per network: they do not compete
        mine = [(c, v, r) for c, v, r in points if r["config"] == config]
        color = f"C{index % 10}"
        ax.scatter([p[0] for p in mine], [p[1] for p in mine], color=color)
        front = pareto_front([(c, v) for c, v, _ in mine])
        ax.plot([c for c, _ in front], [v for _, v in front], color=color, label=config)
        for cells, value, r in mine:
            text = f"lanes {r['lanes']}"
            if r.get("accuracy") is not None:
                text += f" ({r['accuracy'] * 100:.1f} %)"
            ax.annotate(text, (cells, value), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("logic cells")
    ax.set_ylabel("samples/s at the built clock" if built else "samples per million clocks")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", title="Pareto front of")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def clock_breakdown(rows: list[dict], path: Path) -> Path:
    """``pulsegate bench cores``' rows as stacked bars, a panel a network: each plan's
    clocks of a sample split by what fills them (``clock_breakdown``), as shares of the
    sample, its total written at the bar's end. A small network's waits and a large one's
    multiplies are what a plan's choice moves."""
    networks = list(dict.fromkeys(r["network"] for r in rows))
    heights = [sum(r["network"] == n for r in rows) for n in networks]
    fig, axes = plt.subplots(
        len(networks),
        1,
        figsize=(7, 1.0 + 0.45 * sum(heights) + 0.5 * len(networks)),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    for ax, network in zip(axes[:, 0], networks, strict=True):
        mine = [r for r in rows if r["network"] == network]
        labels = [f"{r['lanes']} x {r['simd']}" for r in mine]
        totals = [sum(r["clock_breakdown"].values()) for r in mine]
        left = np.zeros(len(mine))
        for index, kind in enumerate(CLOCK_KINDS):
            share = np.array(
                [r["clock_breakdown"][kind] / t for r, t in zip(mine, totals, strict=True)]
            )
            ax.barh(labels, share * 100, left=left, color=f"C{index}", label=kind)
            left += share * 100
        for y, total in enumerate(totals):
            ax.annotate(f"{total:,}", (100, y), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize=8)  # fmt: skip
        ax.set_xlim(0, 112)
        ax.invert_yaxis()
        ax.set_title(network, fontsize=9, loc="left")
        ax.set_ylabel("lanes x simd", fontsize=8)
    axes[-1, 0].set_xlabel("% of a sample's clocks (its clocks at the right)")
    axes[0, 0].legend(ncol=len(CLOCK_KINDS), fontsize=7, loc="lower left", bbox_to_anchor=(0, 1.15))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
