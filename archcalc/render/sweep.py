"""A sweep's table (one row per grid point: mean ± sd over seeds, 95% interval, mean training time),
its caption (protocol, executor, wall time and throughput, load) and its error-bar figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich import box
from rich.table import Table

from archcalc.bench.summary import OPTIMIZER_NAMES, Group, busy_note, group_runs
from archcalc.render.bench import accuracy_cells, diverged_note, fmt_short, seed_range
from archcalc.render.console import make_console
from archcalc.render.escape import md_text, plain


def point_keys(doc: dict[str, Any]) -> list[str]:
    """spec, optimizer, then the grid's other keys in file order (the seed is the repeat, not a key)."""
    grid = doc["protocol"].get("grid", {})
    return ["spec", "optimizer"] + [k for k in grid if k not in ("spec", "optimizer", "seed")]


def points(doc: dict[str, Any]) -> list[Group]:
    keys = point_keys(doc)
    return group_runs(doc["runs"], lambda run: tuple(_shown((run.get("point") or {}).get(k)) for k in keys))


def _shown(value: Any) -> str:
    from archcalc.bench.sweep import shown_value

    return "-" if value is None else shown_value(value)


def rows(doc: dict[str, Any]) -> list[list[str]]:
    found = []
    for group in points(doc):
        cells = list(group.key)
        cells[1] = OPTIMIZER_NAMES.get(cells[1], cells[1])
        cells += [str(len(group.counted))] + accuracy_cells(group.accuracy())
        cells.append(fmt_short(group.mean_of("train_time_s")))
        found.append(cells)
    return found


def columns(doc: dict[str, Any]) -> list[str]:
    return point_keys(doc) + ["n", "test accuracy", "95% CI", "training time"]


def caption(doc: dict[str, Any]) -> str:
    env, data, protocol = doc["environment"], doc["data"], doc["protocol"]
    sizes = data["sizes"]
    fixed = ", ".join(f"{k} {_shown(v)}" for k, v in protocol.get("train", {}).items())
    text = (f"{env['device_name']} ({env['device']}), torch {env['torch_version']}; data {data['digest']}: "
            f"{sizes['train']:,}/{sizes['val']:,}/{sizes['test']:,} train/val/test; "
            f"seeds {seed_range(protocol.get('seeds') or [protocol['seed']])}" + (f"; {fixed}" if fixed else "")
            + ". Test accuracy: mean ± sample standard deviation over the seeds and the 95% interval of the mean "
            "(Student t, cut at 0% and 100%); n: the runs counted. Training time: the mean over the seeds "
            "(h:mm:ss.ff), the training steps only.")
    text += sessions_note(doc) + diverged_note(doc["runs"]) + busy_note(doc["runs"])
    return text


def sessions_note(doc: dict[str, Any]) -> str:
    """Each invocation's executor, wall time and throughput (runs per hour)."""
    notes = []
    for s in (doc.get("sweep") or {}).get("sessions", []):
        if not s.get("runs"):
            continue
        threads = f"{s['threads']} thread" + ("s" if s["threads"] != 1 else "")
        how = {"here": f"one at a time, {threads}", "jobs": f"--jobs {s['jobs']}, {threads} each",
               "ray": f"Ray tasks, {threads} each"}.get(s["executor"], s["executor"])
        notes.append(f"{s['runs']} runs in {fmt_short(s['wall_time_s'])} wall time, {s['runs_per_hour']:,.0f} "
                     f"runs per hour ({how})")
    return (" Sweep: " + "; ".join(notes) + ".") if notes else ""


def _left(name: str) -> bool:
    return name in ("spec", "optimizer")


def print_sweep(doc: dict[str, Any]) -> None:
    console = make_console()
    table = Table(title="Sweep (test accuracy over seeds)", title_justify="left", box=box.SIMPLE_HEAD,
                  collapse_padding=True, pad_edge=False)
    for name in columns(doc):
        table.add_column("test acc." if name == "test accuracy" else name, justify="left" if _left(name) else "right",
                         no_wrap=name in ("spec", "test accuracy", "95% CI", "training time"))
    for row in rows(doc):
        table.add_row(*(plain(cell) for cell in row))
    console.print(table)
    console.print(plain(caption(doc)))


def markdown_table(doc: dict[str, Any]) -> str:
    names = columns(doc)
    lines = ["| " + " | ".join(md_text(c) for c in names) + " |",
             "|" + "|".join(" --- " if _left(c) else " ---: " for c in names) + "|"]
    lines += ["| " + " | ".join(md_text(cell) for cell in row) + " |" for row in rows(doc)]
    return "\n".join(lines) + "\n\n" + md_text(caption(doc), start=True) + "\n"


def error_bar_panels(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Per swept key with several values: accuracy against its values, a series per combination
    of the other swept keys."""
    keys = point_keys(doc)
    groups = points(doc)
    varied = [k for i, k in enumerate(keys) if len({g.key[i] for g in groups}) > 1]
    panels = []
    for key in varied:
        others = [keys.index(k) for k in varied if k != key]
        series: dict[tuple[str, ...], dict[str, Any]] = {}
        for group in groups:
            summary = group.accuracy()
            if summary is None:
                continue
            label = tuple(f"{keys[j]} {group.key[j]}" for j in others)
            entry = series.setdefault(label, {"label": ", ".join(label), "x": [], "mean": [], "low": [], "high": []})
            entry["x"].append(_x_value(group.first["point"].get(key)))
            entry["mean"].append(summary.mean)
            entry["low"].append(None if summary.low is None else max(summary.low, 0.0))
            entry["high"].append(None if summary.high is None else min(summary.high, 1.0))
        numeric = all(isinstance(x, float) for s in series.values() for x in s["x"])
        values = [x for s in series.values() for x in s["x"]]
        log = numeric and min(values) > 0 and max(values) / min(values) >= 10
        panels.append({"setting": key, "log": log, "series": list(series.values())})
    return panels


def _x_value(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _shown(value)
    return float(value)


def plot_accuracy(doc: dict[str, Any], path: str | Path) -> Path:
    from archcalc.render.plot import plot_error_bars

    panels = error_bar_panels(doc)
    if not panels:  # one grid point: its accuracy over the seeds
        group = points(doc)[0]
        summary = group.accuracy()
        series = [] if summary is None else [{"label": "", "x": [" / ".join(group.key)], "mean": [summary.mean],
                                              "low": [summary.low], "high": [summary.high]}]
        panels = [{"setting": "grid point", "log": False, "series": series}]
    return plot_error_bars(panels, path, "test accuracy: mean and 95% interval over the seeds")
