"""The benchmark's comparison table (terminal and Markdown) and its progress display."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich import box
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from archcalc.bench.protocol import fmt_hms
from archcalc.render.console import make_console
from archcalc.render.escape import md_text, plain, visible

COLUMNS = ("model", "optimizer", "head", "parameters", "test accuracy", "training time",
           "samples/s", "time/epoch (s)")


def _columns(doc: dict[str, Any]) -> list[str]:
    """The head column only when the runs differ in it (--both-heads)."""
    heads = {run["head"] for run in doc["runs"]}
    return [c for c in COLUMNS if c != "head" or len(heads) > 1]


def table_rows(doc: dict[str, Any]) -> list[list[str]]:
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


def caption(doc: dict[str, Any]) -> str:
    env, data = doc["environment"], doc["data"]
    protocol = doc["protocol"]
    sizes = data["sizes"]
    return (f"{env['device_name']} ({env['device']}, {env['threads']} threads), torch {env['torch_version']}; "
            f"data {data['digest']}: {sizes['train']:,}/{sizes['val']:,}/{sizes['test']:,} train/val/test; "
            f"{protocol['epochs']} epochs, batch {protocol['batch_size']}, seed {protocol['seed']}, "
            f"amp {protocol['amp']}, channels_last {protocol['channels_last']}. "
            "Training time (h:mm:ss.ffffff): the training steps only, evaluation and data "
            "preparation excluded.")


SHORT = {"optimizer": "optim.", "parameters": "params", "test accuracy": "test acc.",
         "time/epoch (s)": "s/epoch"}


def comparison_table(doc: dict[str, Any]) -> Table:
    table = Table(title="Comparison (test accuracy and training time)", title_justify="left",
                  box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    for name in _columns(doc):  # short headers keep the table within 80 columns
        table.add_column(SHORT.get(name, name), justify="left" if name in ("model", "optimizer", "head") else "right",
                         no_wrap=name in ("model", "training time"))
    for row in table_rows(doc):
        table.add_row(*(plain(cell) for cell in row))  # model names shown literally
    return table


def markdown_table(doc: dict[str, Any]) -> str:
    columns = _columns(doc)
    lines = ["| " + " | ".join(md_text(c) for c in columns) + " |",
             "|" + "|".join(" --- " if c in ("model", "optimizer", "head") else " ---: " for c in columns) + "|"]
    lines += ["| " + " | ".join(md_text(cell) for cell in row) + " |" for row in table_rows(doc)]
    return "\n".join(lines) + "\n\n" + md_text(caption(doc), start=True) + "\n"


def print_comparison(doc: dict[str, Any]) -> None:
    console = make_console()
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
