"""Runs grouped over seeds: per group the mean test accuracy with its interval, and the differences
the course report asks about (CNN vs FFNN per optimizer, Adam vs SGD per model) with Welch's test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from archcalc.bench.stats import Difference, Summary, mean_std, summarize, welch

OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam"}


@dataclass
class Group:
    """The runs of one cell (bench: model x optimizer x head; sweep: one grid point), one per seed."""

    key: tuple[Any, ...]
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def first(self) -> dict[str, Any]:
        return self.runs[0]

    @property
    def counted(self) -> list[dict[str, Any]]:
        """The runs whose accuracy means something: a diverged run measured a model of NaN weights."""
        return [r for r in self.runs if not r["result"].get("diverged_epoch")]

    @property
    def diverged(self) -> list[dict[str, Any]]:
        return [r for r in self.runs if r["result"].get("diverged_epoch")]

    @property
    def seeds(self) -> list[int]:
        return [r["result"]["config"].get("seed") for r in self.runs]

    @property
    def accuracies(self) -> list[float]:
        return [r["result"]["test_accuracy"] for r in self.counted]

    def accuracy(self) -> Summary | None:
        values = self.accuracies
        return summarize(values) if values else None

    def mean_of(self, key: str) -> float:
        return mean_std([r["result"][key] for r in self.runs])[0]


def group_runs(runs: list[dict[str, Any]], key: Callable[[dict[str, Any]], tuple[Any, ...]]) -> list[Group]:
    """Runs grouped by ``key``, groups in the order of their first run."""
    groups: dict[tuple[Any, ...], Group] = {}
    for run in runs:
        k = key(run)
        groups.setdefault(k, Group(k)).runs.append(run)
    return list(groups.values())


def cell_key(run: dict[str, Any]) -> tuple[str, str, str]:
    """A bench cell: (model label, optimizer, head)."""
    return (run["model"], run["result"]["optimizer"], run["head"])


def bench_cells(doc: dict[str, Any]) -> list[Group]:
    return group_runs(doc["runs"], cell_key)


@dataclass(frozen=True)
class Comparison:
    """``a - b`` of mean test accuracy, in the setting ``given`` (an optimizer or a model)."""

    a: str
    b: str
    given: str
    difference: Difference | None  # None: fewer than two counted runs on a side


def report_comparisons(cells: list[Group]) -> list[Comparison]:
    """Per optimizer, each pair of models (first named minus second); per model, Adam minus SGD."""
    found = []
    by_key = {cell.key: cell for cell in cells}
    models = list(dict.fromkeys((c.key[0], c.key[2]) for c in cells))
    optimizers = list(dict.fromkeys(c.key[1] for c in cells))
    for optimizer in optimizers:
        for (m1, h1), (m2, h2) in combinations(models, 2):
            a, b = by_key.get((m1, optimizer, h1)), by_key.get((m2, optimizer, h2))
            if a and b:
                found.append(Comparison(m1, m2, OPTIMIZER_NAMES.get(optimizer, optimizer),
                                        welch(a.accuracies, b.accuracies)))
    for model, head in models:
        adam, sgd = by_key.get((model, "adam", head)), by_key.get((model, "sgd", head))
        if adam and sgd:
            found.append(Comparison("Adam", "SGD", model, welch(adam.accuracies, sgd.accuracies)))
    return found


def busy_runs(runs: list[dict[str, Any]]) -> tuple[int, float, int] | None:
    """(runs during which the load average exceeded the core count, the highest load, cores), or None."""
    busy, peak, cores = 0, 0.0, 0
    for run in runs:
        load = run.get("load") or {}
        n = load.get("cpu_count") or 0
        values = [v for v in (load.get("before"), load.get("peak"), load.get("after"))
                  if isinstance(v, (int, float))]
        if n and values and max(values) > n:
            busy += 1
            peak, cores = max(peak, max(values)), n
    return (busy, peak, cores) if busy else None


def busy_note(runs: list[dict[str, Any]]) -> str:
    """A caption's sentence when the machine was busier than its cores (else empty)."""
    busy = busy_runs(runs)
    if not busy:
        return ""
    count, peak, cores = busy
    return (f" The machine was busier than its {cores} cores during {count} of {len(runs)} runs (load average "
            f"up to {peak:.1f}): those training times are not comparable.")
