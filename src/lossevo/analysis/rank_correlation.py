"""How well rankings of losses agree between settings (MH-AUG, Table 3 and Figures 3-4).

Input: an accuracy matrix, one row per loss and one column per setting (NaN where the loss
failed). Kendall's τ (scipy's τ-b) between every pair of settings over the losses that trained in
both, and over the intersection of each pair's best K; agglomerative clustering of the losses
(average linkage on their accuracy vectors); the cheapest surrogate whose ranking agrees with a
target setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from lossevo.verdict.faithfulness import MIN_LOSSES, Agreement, agreement
from lossevo.verdict.statistics import Tau, kendall

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def top_k(values: np.ndarray, k: int) -> set[int]:
    """Row indices of the ``k`` highest finite values (ties broken by row order)."""
    finite = np.flatnonzero(np.isfinite(values))
    order = finite[np.argsort(-values[finite], kind="stable")]
    return set(order[:k].tolist())


def shown_tau(a: np.ndarray, b: np.ndarray) -> Tau:
    """τ over the losses finite in both, or NaN (with its n) over fewer than MIN_LOSSES: over a
    handful of losses τ takes a few values and says next to nothing."""
    tau = kendall(a, b)
    return tau if tau.n >= MIN_LOSSES else Tau(float("nan"), float("nan"), tau.n)


def kendall_matrix(acc: np.ndarray, k: int | None = None) -> list[list[Tau]]:
    """τ between every pair of columns; with ``k``, only over losses in both columns' best ``k``
    (NaN over fewer than MIN_LOSSES losses)."""
    columns = acc.shape[1]
    out = [[Tau(float("nan"), float("nan"), 0)] * columns for _ in range(columns)]
    for i in range(columns):
        for j in range(columns):
            a, b = acc[:, i], acc[:, j]
            if k is not None:
                shared = sorted(top_k(a, k) & top_k(b, k))
                a, b = a[shared], b[shared]
            out[i][j] = shown_tau(a, b)
    return out


def cluster_losses(acc: np.ndarray, clusters: int) -> np.ndarray:
    """Cluster label (1..clusters) per loss by average linkage on its accuracies; 0 for a loss
    that failed in some setting (it has no full accuracy vector)."""
    labels = np.zeros(acc.shape[0], dtype=int)
    complete = np.flatnonzero(np.isfinite(acc).all(axis=1))
    if len(complete) == 0:
        return labels
    if len(complete) == 1 or clusters <= 1:
        labels[complete] = 1
        return labels
    tree = linkage(acc[complete], method="average", metric="euclidean")
    labels[complete] = fcluster(tree, t=min(clusters, len(complete)), criterion="maxclust")
    return labels


@dataclass(frozen=True)
class Calibration:
    """One surrogate against the target: its cost and τ with a bootstrap 95% interval."""

    setting: str
    seconds: float  # per training
    agreement: Agreement
    clears: bool  # τ >= the threshold, over at least MIN_LOSSES losses


@dataclass
class Recommendation:
    setting: str | None  # the cheapest surrogate clearing the threshold (None: none does)
    rows: list[Calibration]  # cheapest first

    @property
    def chosen(self) -> Calibration | None:
        return next((r for r in self.rows if r.setting == self.setting), None)


def calibrate(
    acc: np.ndarray, names: list[str], seconds: list[float], target: str, threshold: float
) -> Recommendation:
    """τ between the target setting and every other (with its interval); the cheapest whose τ
    reaches ``threshold`` over at least MIN_LOSSES losses."""
    t = names.index(target)
    rows = []
    for i, name in enumerate(names):
        if i == t:
            continue
        a = agreement(list(acc[:, t]), list(acc[:, i]), f"{name} vs {target}")
        ok = a.tau.n >= MIN_LOSSES and bool(np.isfinite(a.tau.tau)) and a.tau.tau >= threshold
        rows.append(Calibration(name, seconds[i], a, ok))
    rows.sort(key=lambda r: r.seconds)
    best = next((r.setting for r in rows if r.clears), None)
    return Recommendation(best, rows)


# ---------------------------------------------------------------------------- files
def tau_markdown(names: list[str], full: list[list[Tau]], top: list[list[Tau]] | None, k: int) -> str:
    """Seed 000's Table 3 layout: τ over all losses above the diagonal, over the best-K
    intersection below it."""
    lines = ["| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for i, row_name in enumerate(names):
        cells = []
        for j in range(len(names)):
            if i == j:
                cells.append("—")
            elif j > i or top is None:
                cells.append(tau_cell(full[i][j]))
            else:
                cells.append(tau_cell(top[i][j]))
        lines.append(f"| {row_name} | " + " | ".join(cells) + " |")
    caption = "τ over all losses above the diagonal"
    if top is not None:
        caption += f"; over the intersection of both settings' best {k} below it"
    return "\n".join(lines) + f"\n\n{caption} (n: losses compared).\n"


def interval(a: Agreement) -> str:
    return "n/a" if not np.isfinite(a.low) else f"[{a.low:.2f}, {a.high:.2f}]"


def recommendation_line(recommendation: Recommendation) -> str:
    """The chosen surrogate with its τ against the target and that τ's interval."""
    r = recommendation.chosen
    if r is None:
        return "none"
    return (
        f"{r.setting} (τ {r.agreement.tau.tau:.2f} {interval(r.agreement)} over {r.agreement.tau.n} losses)"
    )


def tau_cell(t: Tau) -> str:
    return f"n/a (n={t.n})" if not np.isfinite(t.tau) else f"{t.tau:.3f} (n={t.n})"


def plot_heatmap(names: list[str], full: list[list[Tau]], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lossevo.analysis.plots import annotate_cells

    values = np.array([[t.tau for t in row] for row in full])
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 1.0 * len(names) + 1.5))
    image = ax.imshow(values, vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    annotate_cells(ax, image, values)
    fig.colorbar(image, ax=ax, label="Kendall τ")
    ax.set_title(title)
    return _save(fig, path)


def plot_scatter(acc: np.ndarray, names: list[str], labels: np.ndarray, path: Path) -> Path:
    """Accuracy in one setting against another for every pair, coloured by cluster (Figure 3)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]
    cols = min(4, max(1, len(pairs)))
    rows = max(1, -(-len(pairs) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, (i, j) in zip(axes.flat, pairs, strict=False):
        for label in sorted(set(labels.tolist())):
            rows_of = labels == label
            ax.scatter(
                acc[rows_of, i],
                acc[rows_of, j],
                s=12,
                color="lightgrey" if label == 0 else colours((label - 1) % 10),
                label="failed somewhere" if label == 0 else f"cluster {label}",
            )
        ax.set_xlabel(names[i])
        ax.set_ylabel(names[j])
    for ax in list(axes.flat)[len(pairs) :]:
        ax.axis("off")
    if pairs:
        axes.flat[0].legend(fontsize=7)
    fig.suptitle("validation accuracy per loss, by setting")
    return _save(fig, path)


def _save(fig: Figure, path: Path) -> Path:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
