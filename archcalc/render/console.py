"""The console, one-line messages, JSON output and progress bars."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from archcalc.render.escape import plain, visible


class LiteralConsole(Console):
    """A console on which every string is shown as written: no markup, no emoji codes, no
    highlighting, and control characters escaped (``\\x1b``) so no name can drive the terminal.
    Styles come only from Text objects built in render (see ``escape.plain``)."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        kwargs.update(markup=False, emoji=False, highlight=False)
        return super().render_str(visible(text), **kwargs)


def make_console(stderr: bool = False) -> Console:
    """A console that honours NO_COLOR and COLUMNS and shows every string literally."""
    width = int(os.environ["COLUMNS"]) if os.environ.get("COLUMNS", "").isdigit() else None
    return LiteralConsole(stderr=stderr, width=width, highlight=False, markup=False, emoji=False)


def error_line(message: str) -> None:
    """One line on stderr, never wrapped, so scripts and CI logs can grep it."""
    make_console(stderr=True).print(plain(f"error: {message}", style="red"), soft_wrap=True)


def warning_line(message: str) -> None:
    make_console(stderr=True).print(plain(f"warning: {message}", style="yellow"), soft_wrap=True)


def info_line(message: str) -> None:
    make_console(stderr=True).print(plain(message, style="dim"), soft_wrap=True)


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


@contextmanager
def progress_reporter(description: str) -> Iterator[Callable[[int, int], None]]:
    """A callback ``(done, total)`` drawing a bar on a terminal (stderr), or nothing otherwise."""
    console = make_console(stderr=True)
    if not console.is_terminal:
        yield lambda done, total: None
        return
    with Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console, transient=True) as progress:
        task = progress.add_task(visible(description), total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update
