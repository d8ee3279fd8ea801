"""Data set summaries and WAV preparation reports."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich import box
from rich.table import Table

from archcalc.data.arrays import SPLITS, SpeechData
from archcalc.render.console import make_console
from archcalc.render.escape import plain


def data_document(data: SpeechData) -> dict[str, Any]:
    """Split sizes, class balance and feature statistics, as plain data."""
    doc: dict[str, Any] = {"source": data.source, "classes": list(data.classes),
                           "feature_shape": list(data.feature_shape), "digest": data.digest(), "splits": {}}
    names = class_columns(data.classes)
    for split in SPLITS:
        x, y = data.X[split], data.y[split]
        counts = np.bincount(y, minlength=len(data.classes))  # by class index, never by name
        doc["splits"][split] = {
            "n": int(y.shape[0]),
            "per_class": {c: int(n) for c, n in zip(names, counts)},
            "mean": float(x.mean(dtype=np.float64)), "std": float(x.std(dtype=np.float64)),
            "min": float(x.min()), "max": float(x.max()),
        }
    return doc


def class_columns(classes: tuple[str, ...]) -> list[str]:
    """The class names, a repeated name told apart by its index (``yes#1``) so no count is lost."""
    repeated = {c for c in classes if classes.count(c) > 1}
    return [f"{c}#{i}" if c in repeated else c for i, c in enumerate(classes)]


def home_relative(path: str) -> str:
    """``~/.cache/archcalc/...`` for a path in the home folder, as the README and shells write it."""
    from pathlib import Path

    try:
        return "~/" + Path(path).relative_to(Path.home()).as_posix()
    except (ValueError, RuntimeError):  # not under the home folder, or no home folder
        return path


def print_data_info(data: SpeechData, source: str | None = None) -> None:
    """The summary table; ``source`` replaces ``data.source`` in its title (shown literally)."""
    doc = data_document(data)
    console = make_console()
    title = plain(f"{source or doc['source']}  (features {' x '.join(map(str, doc['feature_shape']))}, "
                 f"digest {doc['digest']})")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("split")
    table.add_column("n", justify="right")
    names = class_columns(data.classes)
    for name in names:
        table.add_column(plain(name), justify="right")
    for column in ("mean", "std", "min", "max"):
        table.add_column(column, justify="right")
    for split, row in doc["splits"].items():
        table.add_row(split, f"{row['n']:,}", *[f"{row['per_class'][c]:,}" for c in names],
                      *[f"{row[k]:.2f}" for k in ("mean", "std", "min", "max")])
    console.print(table)


def print_prepare_report(report: Any, out: str) -> None:
    console = make_console()
    used = ", ".join(f"{split} {n:,}" for split, n in report.used.items())
    console.print(f"wrote {out}: {used}", markup=False)
    if report.skipped:
        total = sum(report.skipped.values())
        console.print(f"skipped {total:,} file{'s' if total != 1 else ''}:")
        for reason, count in sorted(report.skipped.items()):
            console.print(f"  {count:,} {reason} (e.g. {report.examples[reason]})", soft_wrap=True, markup=False)
