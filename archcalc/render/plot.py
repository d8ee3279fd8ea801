"""PNG figures (matplotlib, headless): log-mel examples and learning curves."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from archcalc.atomic import atomic_open
from archcalc.data.arrays import SpeechData
from archcalc.render.escape import visible

# user text (names, class names) is drawn as written: no mathtext ($...$), no TeX even where a
# matplotlibrc turns usetex on, and control characters escaped (they are not valid in SVG)
LITERAL = {"parse_math": False, "usetex": False}


def _literal_legend(ax: Any, **kwargs: Any) -> None:
    for text in ax.legend(**kwargs).get_texts():
        text.set_parse_math(False)
        text.set_usetex(False)


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
                ax.set_ylabel(visible(name), **LITERAL)
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
            name = visible(name)
            loss_ax.plot(c["iteration"], c["train_loss"], color=color, alpha=0.55, lw=1, label=f"{name} train")
            loss_ax.plot(c["val_iteration"], c["val_loss"], color=color, lw=1.8, label=f"{name} validation")
            acc_ax.plot(c["iteration"], c["train_acc"], color=color, alpha=0.55, lw=1, label=f"{name} train")
            acc_ax.plot(c["val_iteration"], c["val_acc"], color=color, lw=1.8, label=f"{name} validation")
        loss_ax.set_title(f"{visible(model)}: loss", **LITERAL)
        acc_ax.set_title(f"{visible(model)}: accuracy", **LITERAL)
        for ax in (loss_ax, acc_ax):
            ax.set_xlabel("iteration")
            ax.grid(alpha=0.3)
            _literal_legend(ax, fontsize=8)
        acc_ax.set_ylim(0, 1)
    fig.tight_layout()
    return save_figure(fig, path)


def _mean_band(runs: list[dict[str, Any]], x_key: str, y_key: str) -> tuple[Any, Any, Any] | None:
    """x, mean and standard deviation of one curve over runs, on the iterations every run reached."""
    curves = [r["result"]["curves"] for r in runs]
    length = min(len(c[x_key]) for c in curves) if curves else 0
    if not length:
        return None
    values = np.array([[np.nan if v is None else v for v in c[y_key][:length]] for c in curves], dtype=float)
    std = values.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros(length)
    return np.array(curves[0][x_key][:length]), values.mean(axis=0), std


def plot_curve_bands(doc: dict[str, Any], path: str | Path) -> Path:
    """Figure 1 over seeds: per model, the mean loss and accuracy of each optimizer against
    iteration, with a band of ± one standard deviation over the seeds (diverged runs left out)."""
    from archcalc.bench.summary import OPTIMIZER_NAMES, bench_cells

    plt = _pyplot()
    cells = bench_cells(doc)
    models = list(dict.fromkeys(cell.key[0] for cell in cells))
    fig, axes = plt.subplots(len(models), 2, figsize=(11, 3.4 * max(1, len(models))), squeeze=False)
    colors = {"sgd": "tab:blue", "adam": "tab:orange"}
    for row, model in enumerate(models):
        loss_ax, acc_ax = axes[row]
        for cell in (c for c in cells if c.key[0] == model):
            optimizer = cell.key[1]
            color, runs = colors.get(optimizer), cell.counted
            name = visible(f"{OPTIMIZER_NAMES.get(optimizer, optimizer)} (n={len(runs)})")
            for ax, metric in ((loss_ax, "loss"), (acc_ax, "acc")):
                for x_key, y_key, width, alpha, what in (("iteration", f"train_{metric}", 1, 0.55, "train"),
                                                         ("val_iteration", f"val_{metric}", 1.8, 1.0, "validation")):
                    band = _mean_band(runs, x_key, y_key)
                    if band is None:
                        continue
                    x, mean, std = band
                    ax.plot(x, mean, color=color, lw=width, alpha=alpha, label=f"{name} {what}")
                    ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.12 if what == "train" else 0.22,
                                    lw=0)
        loss_ax.set_title(f"{visible(model)}: loss (mean ± sd over seeds)", **LITERAL)
        acc_ax.set_title(f"{visible(model)}: accuracy (mean ± sd over seeds)", **LITERAL)
        for ax in (loss_ax, acc_ax):
            ax.set_xlabel("iteration")
            ax.grid(alpha=0.3)
            _literal_legend(ax, fontsize=8)
        acc_ax.set_ylim(0, 1)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_error_bars(panels: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """One panel per swept setting: mean test accuracy against the setting's values, with the 95%
    interval as error bars, one line per combination of the other settings.

    Each panel is ``{"setting": name, "log": bool, "series": [{"label", "x", "mean", "low", "high"}]}``;
    ``x`` holds numbers, or strings (then placed at 0, 1, 2, ...), and low/high None where one seed
    gives no interval.
    """
    plt = _pyplot()
    n = max(1, len(panels))
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 4.0), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        labels: list[str] = []
        for series in panel["series"]:
            xs = series["x"]
            if any(isinstance(v, str) for v in xs):
                for v in xs:
                    if str(v) not in labels:
                        labels.append(str(v))
                positions = [labels.index(str(v)) for v in xs]
            else:
                positions = list(xs)
            means = np.array(series["mean"], dtype=float) * 100
            low = np.array([m if v is None else v * 100 for v, m in zip(series["low"], means)])
            high = np.array([m if v is None else v * 100 for v, m in zip(series["high"], means)])
            ax.errorbar(positions, means, yerr=[means - low, high - means], marker="o", ms=4, capsize=4, lw=1.3,
                        label=visible(series["label"]) if series["label"] else None)
        if labels:
            ax.set_xticks(range(len(labels)))
            ax.set_xticklabels([visible(v) for v in labels], **LITERAL)
        elif panel.get("log"):
            ax.set_xscale("log")
        ax.set_xlabel(visible(panel["setting"]), **LITERAL)
        ax.set_ylabel("test accuracy (%), mean and 95% interval")
        ax.grid(alpha=0.3)
        if any(s["label"] for s in panel["series"]):
            _literal_legend(ax, fontsize=7)
    if title:
        fig.suptitle(visible(title), fontsize=10, **LITERAL)
    fig.tight_layout()
    return save_figure(fig, path)


FAMILY_COLORS = {"conv": "#4C72B0", "conv_transpose": "#4C72B0", "pool": "#55A868", "adaptive_pool": "#55A868",
                 "upsample": "#55A868", "linear": "#C44E52", "reshape": "#8172B2", "norm": "#CCB974",
                 "dropout": "#999999", "merge": "#64B5CD", "block": "#937860"}


def _color(family: str | None) -> str:
    if family is None:  # the model input
        return "#BBBBBB"
    return FAMILY_COLORS.get(family, "#DD8452")


def _edges(ax: Any, boxes: list[_Box], step: float, width: float) -> None:
    """A graph's edges: an arrow between neighbouring boxes, an arc over the boxes for a skip."""
    from matplotlib.patches import FancyArrowPatch

    column = {"input": 0, **{box.name: i + 1 for i, box in enumerate(boxes)}}
    for i, box in enumerate(boxes, start=1):
        for source in box.sources:
            j = column[source]
            if j == i - 1:
                start, end, style = (j * step + width, 1.9), (i * step, 1.9), "arc3"
            else:  # over the top, higher for longer skips
                start, end = (j * step + width / 2, 6.0), (i * step + width / 2, 6.0)
                peak = min(1.6, 0.35 + 0.08 * (i - j))  # longer skips arc higher, within the axes
                style = f"arc3,rad={-2 * peak / ((i - j) * step):.3f}"
            ax.add_patch(FancyArrowPatch(start, end, connectionstyle=style, arrowstyle="-|>", mutation_scale=7,
                                         lw=0.8, color="#444444", alpha=0.8))


@dataclass
class _Box:
    """One box of the diagram: a node, or (folded to a depth) a block use drawn as one."""

    name: str
    label: str
    family: str | None
    shape: list[Any]
    params: int
    sources: list[str]


def _boxes(analysis: Any, depth: int | None) -> list[_Box]:
    """The boxes left to right: every node, or the module tree cut at ``depth``."""
    def shape(s: Any) -> list[Any]:
        return [analysis.value(x) for x in s]

    if depth is None:
        return [_Box(r.name, f"{r.type} {r.description}".strip(), r.kind.family, shape(r.out_shape),
                     int(analysis.value(r.params)), list(dict.fromkeys(r.inputs))) for r in analysis.layers]
    from archcalc.analysis.tree import summary

    cut = [row for row in summary(analysis, depth) if row.depth == depth or row.is_leaf]
    box_of = {node.name: row.name for row in cut for node in row.nodes}
    boxes = []
    for row in cut:
        sources = [box_of.get(src, src) for node in row.nodes for src in node.inputs]
        sources = [src for src in dict.fromkeys(sources) if src != row.name]
        leaf = row.nodes[0] if row.is_leaf else None
        label = f"{leaf.type} {leaf.description}".strip() if leaf else f"{row.kind} ({len(row.nodes)} nodes)"
        boxes.append(_Box(row.name, label, leaf.kind.family if leaf else "block", shape(row.output.out_shape),
                          int(analysis.value(row.params)), sources))
    return boxes


def plot_network(analysis: Any, path: str | Path, depth: int | None = None) -> Path:
    """One box per layer, left to right: box height is the output size and the bar under it the
    parameter count, both on log scales, so a reader sees where the size and the parameters go.
    A graph also gets its edges: arrows between neighbours and arcs over the boxes for skips.
    With ``depth``, each block use at that depth of the module tree is one box."""
    import math

    from matplotlib.patches import FancyBboxPatch, Rectangle

    plt = _pyplot()
    boxes = _boxes(analysis, depth)
    sizes = [int(np.prod(b.shape)) for b in boxes]
    params = [b.params for b in boxes]
    input_size = int(np.prod([analysis.value(s) for s in analysis.input_shape]))
    top = math.log10(max(sizes + [input_size, 10]))
    ptop = math.log10(max(params + [10]))
    width = 1.0
    fig, ax = plt.subplots(figsize=(max(8, 1.25 * (len(boxes) + 1)), 6.4))
    columns: list[tuple[str, str, str | None, list[Any], int, int]] = [
        ("input", "", None, [analysis.value(s) for s in analysis.input_shape], input_size, 0)]
    columns += [(b.name, b.label, b.family, b.shape, n, b.params) for b, n in zip(boxes, sizes, strict=True)]
    for i, (name, label, family, shape, n, p) in enumerate(columns):
        x = i * 1.3
        h = 3.0 * max(math.log10(max(n, 1)), 0.05) / top
        ax.add_patch(FancyBboxPatch((x, 2.0), width, h, boxstyle="round,pad=0.02", color=_color(family),
                                    alpha=0.85))
        ax.text(x + width / 2, 2.05 + h, "×".join(str(s) for s in shape), ha="center", va="bottom",
                fontsize=7, rotation=90, **LITERAL)
        if p:
            ph = 1.0 * math.log10(p + 1) / ptop
            ax.add_patch(Rectangle((x + 0.15, 1.8 - ph), width - 0.3, ph, color="#222222", alpha=0.7))
            ax.text(x + width / 2, 1.75 - ph, f"{p:,}", ha="center", va="top", fontsize=6.5, **LITERAL)
        ax.text(x + width / 2, 0.35, visible(f"{name}  {label}".strip()), ha="center", va="top", fontsize=7.5,
                rotation=90, **LITERAL)
    chain = all(b.sources == [prev] for b, prev in zip(boxes, ["input"] + [b.name for b in boxes], strict=False))
    if not chain:
        _edges(ax, boxes, 1.3, width)
    ax.set_xlim(-0.3, len(columns) * 1.3)
    ax.set_ylim(-2.6, 6.0 if chain else 8.3)
    ax.axis("off")
    total = analysis.value(analysis.total_params)
    folded = f", depth {depth}" if depth is not None else ""
    ax.set_title(f"{visible(analysis.spec.name)}{folded}: box height = output size (log scale), dark bar = "
                 f"parameters (log scale); {total:,} parameters", fontsize=10, **LITERAL)
    fmt = "svg" if str(path).lower().endswith(".svg") else "png"
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format=fmt, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return Path(path)
