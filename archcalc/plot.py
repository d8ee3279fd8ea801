"""PNG figures (matplotlib, headless): log-mel examples and learning curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from archcalc.atomic import atomic_open
from archcalc.data.arrays import SpeechData


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path) -> Path:
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return Path(path)


def plot_examples(data: SpeechData, path: str | Path, per_class: int = 4, split: str = "train") -> Path:
    """A grid of log-mel examples: one row per class, time on x, mel bin on y."""
    plt = _pyplot()
    n_classes = len(data.classes)
    fig, axes = plt.subplots(n_classes, per_class, figsize=(2.2 * per_class, 1.9 * n_classes),
                             squeeze=False, sharex=True, sharey=True)
    x, y = data.X[split], data.y[split]
    lo, hi = np.percentile(x, [1, 99.5])
    for row, name in enumerate(data.classes):
        picks = np.flatnonzero(y == row)[:per_class]
        for col in range(per_class):
            ax = axes[row][col]
            if col < len(picks):
                ax.imshow(x[picks[col]].T, origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap="magma")
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(name)
    fig.suptitle(f"log-mel features ({split}): {x.shape[1]} frames x {x.shape[2]} mel bins")
    return save_figure(fig, path)


def plot_curves(doc: dict[str, Any], path: str | Path) -> Path:
    """The course report's Figure 1: loss and accuracy against iteration, SGD vs Adam, per model."""
    plt = _pyplot()
    models = list(dict.fromkeys(run["model"] for run in doc["runs"]))
    fig, axes = plt.subplots(len(models), 2, figsize=(11, 3.4 * max(1, len(models))), squeeze=False)
    colors = {"sgd": "tab:blue", "adam": "tab:orange"}
    for row, model in enumerate(models):
        loss_ax, acc_ax = axes[row]
        for run in (r for r in doc["runs"] if r["model"] == model):
            res = run["result"]
            c, name = res["curves"], {"sgd": "SGD", "adam": "Adam"}.get(res["optimizer"], res["optimizer"])
            color = colors.get(res["optimizer"])
            loss_ax.plot(c["iteration"], c["train_loss"], color=color, alpha=0.55, lw=1, label=f"{name} train")
            loss_ax.plot(c["val_iteration"], c["val_loss"], color=color, lw=1.8, label=f"{name} validation")
            acc_ax.plot(c["iteration"], c["train_acc"], color=color, alpha=0.55, lw=1, label=f"{name} train")
            acc_ax.plot(c["val_iteration"], c["val_acc"], color=color, lw=1.8, label=f"{name} validation")
        loss_ax.set_title(f"{model}: loss")
        acc_ax.set_title(f"{model}: accuracy")
        for ax in (loss_ax, acc_ax):
            ax.set_xlabel("iteration")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        acc_ax.set_ylim(0, 1)
    fig.tight_layout()
    return save_figure(fig, path)
