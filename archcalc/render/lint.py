"""Lint findings: a table, or a JSON document."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table

from archcalc.analysis import Analysis
from archcalc.analysis.lint import Finding, severity_rank
from archcalc.render.console import make_console
from archcalc.render.escape import plain


def print_lint(analysis: Analysis, findings: list[Finding]) -> None:
    console = make_console()
    if not findings:
        console.print(f"{analysis.spec.source}: no findings", markup=False)
        return
    table = Table(title=plain(f"{analysis.spec.source}: {len(findings)} finding{'s' if len(findings) != 1 else ''}"),
                  title_justify="left", box=box.SIMPLE_HEAD, show_lines=True)
    for column in ("severity", "id", "layer", "reason", "fix"):
        table.add_column(column, overflow="fold", no_wrap=column in ("severity", "id"))
    for f in sorted(findings, key=severity_rank):
        style = "yellow" if f.severity == "warning" else "cyan"
        # layer names and reasons are shown as written, never read as rich markup
        table.add_row(plain(f.severity, style=style), plain(f.id), plain(f.layer), plain(f.reason), plain(f.fix))
    console.print(table)
    console.print("silence a rule with [lint] ignore = [\"id\"] in the spec", markup=False)


def lint_document(analysis: Analysis, findings: list[Finding]) -> dict[str, Any]:
    return {"spec": analysis.spec.source,
            "findings": [f.__dict__ for f in sorted(findings, key=severity_rank)],
            "warnings": sum(f.severity == "warning" for f in findings),
            "infos": sum(f.severity == "info" for f in findings)}
