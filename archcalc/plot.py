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
