"""The benchmark's comparison table (terminal and Markdown) and its progress display."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich import box
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from archcalc.bench.protocol import fmt_hms
from archcalc.bench.summary import busy_note
from archcalc.render.console import make_console
from archcalc.render.escape import md_text, plain, visible

COLUMNS = ("model", "optimizer", "head", "parameters", "test accuracy", "training time",
           "samples/s", "time/epoch (s)")


def _columns(doc: dict[str, Any]) -> list[str]:
    """The head column only when the runs differ in it (--both-heads); with several seeds, the
    columns of the statistics over them."""
    if several_seeds(doc):
        return _seed_columns(doc)
    heads = {run["head"] for run in doc["runs"]}
    return [c for c in COLUMNS if c != "head" or len(heads) > 1]


def table_rows(doc: dict[str, Any]) -> list[list[str]]:
    """One row per run; with several seeds, one per cell with the statistics over its seeds."""
    if several_seeds(doc):
        return seed_rows(doc)
    show_head = "head" in _columns(doc)
    rows = []
    for run in doc["runs"]:
        r = run["result"]
        row = [run["model"], {"sgd": "SGD", "adam": "Adam"}.get(r["optimizer"], r["optimizer"])]
        row += [run["head"]] if show_head else []
        accuracy = f"{100 * r['test_accuracy']:.2f}%"
        if r.get("diverged_epoch"):  # its accuracy measures a model of NaN weights
            accuracy = f"diverged (epoch {r['diverged_epoch']})"
        row += [f"{r['params']:,}", accuracy, fmt_hms(r["train_time_s"]),
                f"{r['samples_per_s']:,.0f}", f"{r['time_per_epoch_s']:.2f}"]
        rows.append(row)
    return rows


def _amp_exceptions(protocol: dict[str, Any]) -> str:
    """Which models ``auto`` kept in float32 (recurrent or attention layers)."""
    kept = protocol.get("amp_off_for") or []
    if not kept:
        return ""
    if protocol["amp"] == "off":
        return " (auto; recurrent or attention layers)"
    return f" (off for {', '.join(kept)}: recurrent or attention layers)"


def caption(doc: dict[str, Any]) -> str:
    env, data = doc["environment"], doc["data"]
    protocol = doc["protocol"]
    sizes = data["sizes"]
    seeds = protocol.get("seeds") or [protocol["seed"]]
    seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seed_range(seeds)}"
    text = (f"{env['device_name']} ({env['device']}, {env['threads']} threads), torch {env['torch_version']}; "
            f"data {data['digest']}: {sizes['train']:,}/{sizes['val']:,}/{sizes['test']:,} train/val/test; "
            f"{protocol['epochs']} epochs, batch {protocol['batch_size']}, {seed_text}, "
            f"amp {protocol['amp']}{_amp_exceptions(protocol)}, channels_last {protocol['channels_last']}. ")
    if len(seeds) > 1:
        text += ("Test accuracy: mean ± sample standard deviation over the seeds, and the 95% interval of "
                 "the mean (Student t, cut at 0% and 100%); training time: the mean (h:mm:ss.ff)")
    else:
        text += "Training time (h:mm:ss.ffffff)"
    text += ": the training steps only, evaluation and data preparation excluded."
    return text + (diverged_note(doc["runs"]) if len(seeds) > 1 else "") + busy_note(doc["runs"])


def seed_range(seeds: list[int]) -> str:
    """``0-4`` for consecutive seeds, else ``0,3,7``."""
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(str(s) for s in seeds)


def diverged_note(runs: list[dict[str, Any]]) -> str:
    gone = [f"{r['id']} (epoch {r['result']['diverged_epoch']})" for r in runs if r["result"].get("diverged_epoch")]
    return f" Diverged, left out of the accuracy statistics: {', '.join(gone)}." if gone else ""


def several_seeds(doc: dict[str, Any]) -> bool:
    """The bench ran every cell with several seeds: the table shows statistics over them."""
    return len(doc["protocol"].get("seeds") or []) > 1


SEED_COLUMNS = ("model", "optimizer", "head", "parameters", "seeds", "test accuracy", "95% CI", "training time")


def _seed_columns(doc: dict[str, Any]) -> list[str]:
    heads = {run["head"] for run in doc["runs"]}
    return [c for c in SEED_COLUMNS if c != "head" or len(heads) > 1]


def pct(value: float) -> str:
    return f"{100 * value:.2f}"


def accuracy_cells(summary: Any) -> list[str]:
    """``mean ± sd%`` and ``low-high%``, the interval cut at 0% and 100% (a dash for what one value
    cannot give)."""
    if summary is None:
        return ["diverged", "-"]
    if summary.std is None:
        return [f"{pct(summary.mean)}%", "-"]
    low, high = max(summary.low, 0.0), min(summary.high, 1.0)
    return [f"{pct(summary.mean)} ± {pct(summary.std)}%", f"{pct(low)}-{pct(high)}"]


def fmt_short(seconds: float) -> str:
    """``h:mm:ss.ff``: a mean over seeds has no use for microseconds."""
    return fmt_hms(round(seconds, 2))[:-4]


def seed_rows(doc: dict[str, Any]) -> list[list[str]]:
    from archcalc.bench.summary import OPTIMIZER_NAMES, bench_cells

    show_head = "head" in _seed_columns(doc)
    rows = []
    for cell in bench_cells(doc):
        model, optimizer, head = cell.key
        row = [model, OPTIMIZER_NAMES.get(optimizer, optimizer)] + ([head] if show_head else [])
        row += [f"{cell.first['result']['params']:,}", str(len(cell.counted))]
        row += accuracy_cells(cell.accuracy()) + [fmt_short(cell.mean_of("train_time_s"))]
        rows.append(row)
    return rows


DIFF_COLUMNS = ("difference", "pp", "95% CI (pp)", "p", "excludes 0")


def difference_rows(doc: dict[str, Any]) -> list[list[str]]:
    """The report's two questions per optimizer and per model, in percentage points (Welch)."""
    from archcalc.bench.summary import bench_cells, report_comparisons

    rows = []
    for c in report_comparisons(bench_cells(doc)):
        d = c.difference
        label = f"{c.a} - {c.b} ({c.given})"
        if d is None:
            rows.append([label, "-", "-", "-", "-"])
            continue
        rows.append([label, f"{100 * d.diff:+.1f}",
                     f"{100 * d.low:+.1f} to {100 * d.high:+.1f}", f"{d.p:.2g}",
                     "yes" if d.excludes_zero else "no"])
    return rows


DIFF_CAPTION = ("Differences of mean test accuracy in percentage points (pp), with the 95% interval and the "
                "p-value of Welch's t-test (unequal variances); 'yes': the interval excludes 0, a difference "
                "at the 5% level. A dash: a side has fewer than 2 runs that did not diverge.")


def _rich_table(title: str, columns: list[str], rows: list[list[str]], left: tuple[str, ...]) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    for name in columns:
        table.add_column(SHORT.get(name, name), justify="left" if name in left else "right",
                         no_wrap=name in ("model", "training time", "test accuracy", "95% CI", "difference",
                                          "95% CI (pp)"))
    for row in rows:
        table.add_row(*(plain(cell) for cell in row))
    return table


def _markdown(columns: list[str] | tuple[str, ...], rows: list[list[str]], left: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(md_text(c) for c in columns) + " |",
             "|" + "|".join(" --- " if c in left else " ---: " for c in columns) + "|"]
    lines += ["| " + " | ".join(md_text(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


SHORT = {"optimizer": "optim.", "parameters": "params", "test accuracy": "test acc.",
         "time/epoch (s)": "s/epoch", "seeds": "n"}


def comparison_table(doc: dict[str, Any]) -> Table:
    table = Table(title="Comparison (test accuracy and training time)", title_justify="left",
                  box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    for name in _columns(doc):  # short headers keep the table within 80 columns
        table.add_column(SHORT.get(name, name), justify="left" if name in ("model", "optimizer", "head") else "right",
                         no_wrap=name in ("model", "training time"))
    for row in table_rows(doc):
        table.add_row(*(plain(cell) for cell in row))  # model names shown literally
    return table


LEFT = ("model", "optimizer", "head", "difference")


def markdown_table(doc: dict[str, Any]) -> str:
    if several_seeds(doc):
        text = _markdown(_seed_columns(doc), seed_rows(doc), LEFT) + "\n" + md_text(caption(doc), start=True) + "\n"
        differences = difference_rows(doc)
        if differences:
            text += "\n" + _markdown(DIFF_COLUMNS, differences, LEFT) + "\n" + md_text(DIFF_CAPTION, start=True) + "\n"
        return text
    columns = _columns(doc)
    lines = ["| " + " | ".join(md_text(c) for c in columns) + " |",
             "|" + "|".join(" --- " if c in ("model", "optimizer", "head") else " ---: " for c in columns) + "|"]
    lines += ["| " + " | ".join(md_text(cell) for cell in row) + " |" for row in table_rows(doc)]
    return "\n".join(lines) + "\n\n" + md_text(caption(doc), start=True) + "\n"


def print_comparison(doc: dict[str, Any]) -> None:
    console = make_console()
    if several_seeds(doc):
        console.print(_rich_table("Comparison over seeds (test accuracy and training time)", _seed_columns(doc),
                                  seed_rows(doc), LEFT))
        console.print(plain(caption(doc)))
        differences = difference_rows(doc)
        if differences:
            console.print()
            console.print(_rich_table("Differences (Welch)", list(DIFF_COLUMNS), differences, LEFT))
            console.print(plain(DIFF_CAPTION))
        return
    console.print(comparison_table(doc))
    console.print(plain(caption(doc)))


@contextmanager
def run_progress() -> Iterator[Callable[[str], Callable[[dict[str, Any]], None]]]:
    """Per run, a callback fed once per epoch: a bar on a terminal, plain lines otherwise."""
    console = make_console(stderr=True)
    if not console.is_terminal:
        def plain(run_id: str) -> Callable[[dict[str, Any]], None]:
            def line(e: dict[str, Any]) -> None:
                console.print(f"{run_id}: epoch {e['epoch']}/{e['epochs']} loss {e['train_loss']:.4f} "
                              f"acc {e['train_acc']:.3f} val_acc {e['val_acc']:.3f} "
                              f"{e['samples_per_s']:,.0f} samples/s", soft_wrap=True, highlight=False,
                              markup=False)
            return line
        yield plain
        return
    columns = (TextColumn("{task.description}", markup=False), BarColumn(),
               TextColumn("epoch {task.completed}/{task.total}"), TextColumn("{task.fields[stats]}", markup=False),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        def bar(run_id: str) -> Callable[[dict[str, Any]], None]:
            task = progress.add_task(visible(run_id), total=None, stats="")  # a model's name, as written

            def update(e: dict[str, Any]) -> None:
                progress.update(task, completed=e["epoch"], total=e["epochs"],
                                stats=f"loss {e['train_loss']:.4f} acc {e['train_acc']:.3f} "
                                      f"val {e['val_acc']:.3f} {e['samples_per_s']:,.0f}/s")
            return update
        yield bar
