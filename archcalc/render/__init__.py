"""Everything archcalc prints: one module per subject, all re-exported here."""

from archcalc.render.console import error_line, make_console, print_json, progress_reporter, warning_line
from archcalc.render.spec import (
    analysis_document,
    checks_document,
    explain_lines,
    print_checks,
    print_params,
    print_shapes,
    print_tree,
    shapes_table,
    tree_document,
)

__all__ = [
    "analysis_document", "checks_document", "error_line", "explain_lines", "make_console",
    "print_checks", "print_json", "print_params", "print_shapes", "print_tree", "progress_reporter",
    "shapes_table", "tree_document", "warning_line",
]
