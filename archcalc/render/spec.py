"""Spec output: layer tables, derivations, check tables and their JSON documents."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from archcalc.analysis import Analysis, LayerResult
from archcalc.analysis.expectations import CheckResult
from archcalc.render.console import make_console
from archcalc.render.escape import plain, visible
from archcalc.symbolic import Size, compact_shape, compact_str, is_number, shape_str, size_str


def count_text(size: Size) -> str:
    return f"{size:,}" if is_number(size) else compact_str(size)


NARROW = 100  # below this width the input column (the previous row's output) is left out


def _values_label(analysis: Analysis) -> str:
    return ", ".join(f"{k}={v}" for k, v in analysis.values.items() if k in analysis.symbols)


def _symbolic(analysis: Analysis) -> bool:
    return bool(analysis.symbols)


# --------------------------------------------------------------------------- tables

def shapes_table(analysis: Analysis, verified: dict[str, str] | None = None,
                 width: int = 120) -> Table:
    """The layer table: index, name, type, input, output (and its value), params, trainable."""
    table = Table(title=_title(analysis), title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("name", no_wrap=True)
    table.add_column("type")
    graph = not analysis.is_sequential
    if graph:  # a chain needs no column: each row takes the row above
        table.add_column("from", overflow="fold")
    show_input = width >= NARROW
    if show_input:
        table.add_column("input", overflow="fold")
    table.add_column("output", overflow="fold")
    show_values = _symbolic(analysis) and analysis.bound
    if show_values:
        table.add_column(f"output ({_values_label(analysis)})", overflow="fold")
    table.add_column("params", justify="right", no_wrap=True)
    table.add_column("trainable", justify="right", no_wrap=True)
    if verified is not None:
        table.add_column("torch")
    for row in analysis.layers:
        cells = [str(row.index), row.name, _type_cell(row)]
        if graph:
            cells.append(from_cell(row))
        if show_input:
            cells.append(" ".join(compact_shape(s) for s in row.in_shapes))
        cells.append(compact_shape(row.out_shape))
        if show_values:
            cells.append(compact_shape(analysis.shape_value(row.out_shape)))
        cells += [count_text(analysis.value(row.params)), count_text(analysis.value(row.trainable_params))]
        if verified is not None:
            cells.append(verified.get(row.name, ""))
        table.add_row(*cells)
    return table


def params_table(analysis: Analysis, verified: dict[str, str] | None = None) -> Table:
    """Parameters per layer with the formula and the share of the total."""
    table = Table(title=_title(analysis), title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("name", no_wrap=True)
    table.add_column("type")
    table.add_column("formula", overflow="fold")
    table.add_column("params", justify="right", no_wrap=True)
    table.add_column("trainable", justify="right", no_wrap=True)
    table.add_column("share", justify="right", no_wrap=True)
    if verified is not None:
        table.add_column("torch")
    total = analysis.value(analysis.total_params)
    for row in analysis.layers:
        value = analysis.value(row.params)
        share = f"{100 * value / total:.1f}%" if is_number(value) and is_number(total) and total else ""
        cells = [str(row.index), row.name, _type_cell(row),
                 _formula(row),
                 count_text(value), count_text(analysis.value(row.trainable_params)), share]
        if verified is not None:
            cells.append(verified.get(row.name, ""))
        table.add_row(*cells)
    return table


BIG_TABLE = 1_000  # rows; a larger table is printed as plain columns (rich takes ~1 ms a row)


def _print_plain_table(console: Any, table: Table) -> None:
    """The table as fixed-width columns, one line a row, in time linear in its size: a 100,000-node
    spec prints in seconds instead of minutes. The same columns as the rich table, never wrapped."""
    columns = table.columns
    cells = [[_cell_text(c) for c in column.cells] for column in columns]
    headers = [_cell_text(column.header) for column in columns]
    widths = [max([len(h)] + [len(x) for x in col]) for h, col in zip(headers, cells, strict=True)]

    def line(texts: list[str]) -> str:
        parts = [t.rjust(w) if column.justify == "right" else t.ljust(w)
                 for t, w, column in zip(texts, widths, columns, strict=True)]
        return ("  " + "   ".join(parts)).rstrip()

    out = [_cell_text(table.title or ""), "", line(headers), " " + "─" * (sum(widths) + 3 * len(widths) - 1)]
    out += [line([col[i] for col in cells]) for i in range(table.row_count)]
    console.file.write("\n".join(out) + "\n")


def _cell_text(cell: Any) -> str:
    """A cell's text as shown: control characters escaped, as everywhere."""
    return visible(cell.plain if isinstance(cell, Text) else str(cell))


def _fit(table: Table, width: int) -> Table:
    """Turn off wrapping when every cell fits on one line: rich renders big tables 3x faster."""
    needed = sum(max([len(str(c.header))] + [len(str(cell)) for cell in c.cells]) + 3
                 for c in table.columns)
    if needed <= width:
        for column in table.columns:
            column.no_wrap = True
    return table


def _formula(row: LayerResult) -> str:
    return row.params_formula if row.params != 0 or row.shared_with else ""


def from_cell(row: LayerResult) -> str:
    """The node's inputs, and the node whose module it shares."""
    text = ", ".join(row.inputs)
    return text + (f" (module of {row.shared_with})" if row.shared_with else "")


def _type_cell(row: LayerResult) -> str:
    return f"{row.type} {row.description}".rstrip()


def _title(analysis: Analysis) -> str:
    spec = analysis.spec
    return f"{spec.name}: input {compact_shape(analysis.input_shape)}" + (
        f" ({_values_label(analysis)})" if _values_label(analysis) else "")


def totals_lines(analysis: Analysis) -> list[str]:
    total = analysis.value(analysis.total_params)
    trainable = analysis.value(analysis.trainable_params)
    lines = [f"Total params: {count_text(total)}", f"Trainable params: {count_text(trainable)}"]
    if is_number(total) and is_number(trainable):
        lines.append(f"Non-trainable params: {total - trainable:,}")
    lines.extend(condition_lines(analysis))
    return lines


def condition_lines(analysis: Analysis) -> list[str]:
    """The conditions on the symbols, as ranges where they involve one symbol."""
    if not analysis.symbols:
        return []
    lines = ["Valid for: " + ", ".join(analysis.ranges[s].text(s) for s in analysis.symbols)]
    lines.extend(f"  and {c.text()}  ({c.layer_name}: {c.what})" for c in analysis.unsolved)
    unbound = [s for s in analysis.symbols if s not in analysis.values]
    if unbound:
        lines.append(f"Unbound: {', '.join(unbound)} (give values with --set NAME=INT)")
    return lines


def print_shapes(analysis: Analysis, explain: bool, verified: dict[str, str] | None = None) -> None:
    console = make_console()
    _print_with_totals(console, shapes_table(analysis, verified, console.width), analysis,
                       explain_lines(analysis, shapes=True) if explain else [])


def print_params(analysis: Analysis, explain: bool, verified: dict[str, str] | None = None) -> None:
    console = make_console()
    _print_with_totals(console, params_table(analysis, verified), analysis,
                       explain_lines(analysis, shapes=False) if explain else [])


def _print_with_totals(console: Any, table: Table, analysis: Analysis, derivation: list[str]) -> None:
    """The table, the totals and conditions under it, then the derivation when asked for."""
    if table.row_count > BIG_TABLE:
        _print_plain_table(console, table)
    else:
        console.print(_fit(table, console.width))
    for line in totals_lines(analysis):
        console.print(line)
    if derivation:
        console.print()
    for line in derivation:
        console.print(line, soft_wrap=True)  # a derivation line is never broken


def explain_lines(analysis: Analysis, shapes: bool) -> list[str]:
    """The derivation a student writes by hand, layer by layer."""
    lines: list[str] = []
    terms: list[str] = []
    for row in analysis.layers:
        if not shapes and row.params == 0:
            continue
        inputs = ", ".join(shape_str(s) for s in row.in_shapes)
        source = "" if analysis.is_sequential else f" from {from_cell(row)}"
        lines.append(f"{row.index}. {row.name} ({_type_cell(row)}){source}: {inputs} -> {shape_str(row.out_shape)}")
        if shapes:
            for text, result in row.derivation:
                lines.append(f"   {text} = {_with_value(result, analysis)}")
        if row.shared_with:
            lines.append(f"   params: {row.params_formula} (counted once, there)")
        elif row.params != 0:
            lines.append(f"   params: {row.params_formula} = {_with_value(row.params, analysis)}")
            terms.append(count_text(analysis.value(row.params)).replace(",", ""))
    if terms:
        total = analysis.value(analysis.total_params)
        lines.append(f"total: {' + '.join(terms)} = {count_text(total).replace(',', '')}")
    return lines


def _with_value(size: Size, analysis: Analysis) -> str:
    value = analysis.value(size)
    if is_number(size) or not is_number(value):
        return size_str(size)
    return f"{size_str(size)} = {value} ({_values_label(analysis)})"


# --------------------------------------------------------------------------- summaries by depth

def tree_table(analysis: Analysis, depth: int, params: bool = False) -> Table:
    """The module tree to ``depth`` (as torchinfo's ``depth``): each folder (a block use, or the nodes
    sharing a dotted prefix) one row with its output and everything it holds; deeper rows folded in."""
    from archcalc.analysis.tree import children, summary

    table = Table(title=f"{_title(analysis)}, depth {depth}", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("name", no_wrap=True)
    table.add_column("type")
    if params:
        table.add_column("formula", overflow="fold")
    else:
        table.add_column("output", overflow="fold")
        if _symbolic(analysis) and analysis.bound:
            table.add_column(f"output ({_values_label(analysis)})", overflow="fold")
    table.add_column("params", justify="right", no_wrap=True)
    table.add_column("trainable", justify="right", no_wrap=True)
    total = analysis.value(analysis.total_params)
    if params:
        table.add_column("share", justify="right", no_wrap=True)
    for row in summary(analysis, depth):
        name = "  " * (row.depth - 1) + row.name.rsplit(".", 1)[-1] if row.depth > 1 else row.name
        cells = [row.index_range, name, row.kind if row.is_leaf else f"{row.kind} ({len(row.nodes)} nodes)"]
        value = analysis.value(row.params)
        if params:
            if row.is_leaf:
                cells.append(_formula(row.nodes[0]))
            else:
                parts = [count_text(analysis.value(c.params)) for c in children(analysis, row) if c.params != 0]
                cells.append(" + ".join(parts) if len(parts) > 1 else "")
        else:
            cells.append(compact_shape(row.output.out_shape))
            if _symbolic(analysis) and analysis.bound:
                cells.append(compact_shape(analysis.shape_value(row.output.out_shape)))
        cells += [count_text(value), count_text(analysis.value(row.trainable_params))]
        if params:
            cells.append(f"{100 * value / total:.1f}%" if is_number(value) and is_number(total) and total else "")
        table.add_row(*cells)
    return table


def print_tree(analysis: Analysis, depth: int, params: bool) -> None:
    console = make_console()
    _print_with_totals(console, tree_table(analysis, depth, params), analysis, [])


def _plain(args: Any) -> dict[str, Any]:
    """Block arguments as JSON values (a TOML date or time as its text)."""
    def plain(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v if isinstance(v, (int, float, str, bool)) or v is None else str(v)
    return {k: plain(v) for k, v in args.items()}


def tree_document(analysis: Analysis, depth: int | None) -> dict[str, Any]:
    """The block uses (and, with a depth, the summary rows) for the JSON documents."""
    from archcalc.analysis.tree import summary

    def shape(s: Sequence[Size]) -> list[int | str]:
        return [_json_size(analysis.value(x)) for x in s]

    doc: dict[str, Any] = {"blocks": [{
        "name": g.name, "block": g.block, "repeat": g.repeat, "output": g.output,
        "args": _plain(g.args), **({"first": _plain(g.first)} if g.first else {}),
    } for g in analysis.spec.groups]}
    if depth is not None:
        doc["depth"] = depth
        doc["summary"] = [{
            "name": row.name, "depth": row.depth, "kind": row.kind, "leaf": row.is_leaf,
            "nodes": len(row.nodes), "output": row.output.name, "output_shape": shape(row.output.out_shape),
            "params": _json_size(analysis.value(row.params)),
            "trainable_params": _json_size(analysis.value(row.trainable_params)),
        } for row in summary(analysis, depth)]
    return doc


# --------------------------------------------------------------------------- JSON

def _json_size(size: Size) -> int | str:
    return size if is_number(size) else size_str(size)  # type: ignore[return-value]


def analysis_document(analysis: Analysis) -> dict[str, Any]:
    """The JSON document of ``shapes --json`` and ``params --json`` (values substituted)."""
    def shape(s: Sequence[Size]) -> list[int | str]:
        return [_json_size(analysis.value(x)) for x in s]

    from archcalc.analysis.tree import block_path

    return {
        "model": analysis.spec.name,
        "spec": analysis.spec.source,
        "input_shape": shape(analysis.input_shape),
        "symbols": {s: analysis.values.get(s) for s in analysis.symbols},
        "valid": {s: _valid_document(analysis, s) for s in analysis.symbols},
        "conditions": [{"layer": c.layer_name, "what": c.what, "condition": c.text()}
                       for c in analysis.conditions],
        "outputs": list(analysis.spec.output_names),
        "layers": [{
            "index": row.index, "name": row.name, "type": row.type, "inputs": list(row.inputs),
            "path": block_path(row.name),
            **({"same_as": row.shared_with} if row.shared_with else {}),
            "input_shape": shape(row.in_shape), "output_shape": shape(row.out_shape),
            **({"input_shapes": [shape(s) for s in row.in_shapes]} if len(row.in_shapes) > 1 else {}),
            "params": _json_size(analysis.value(row.params)),
            "trainable_params": _json_size(analysis.value(row.trainable_params)),
            "params_formula": row.params_formula,
        } for row in analysis.layers],
        "total_params": _json_size(analysis.value(analysis.total_params)),
        "trainable_params": _json_size(analysis.value(analysis.trainable_params)),
    }


def _valid_document(analysis: Analysis, name: str) -> dict[str, Any]:
    rng = analysis.ranges[name]
    doc: dict[str, Any] = {"min": rng.lo, "max": rng.hi}
    if rng.modulus > 1:
        doc.update(modulus=rng.modulus, residues=sorted(rng.residues))
    return doc


# --------------------------------------------------------------------------- checks

def checks_table(spec_name: str, results: Iterable[CheckResult]) -> Table:
    table = Table(title=spec_name, title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("layer", no_wrap=True)
    table.add_column("check")
    table.add_column("expected", overflow="fold")
    table.add_column("actual", overflow="fold")
    table.add_column("result")
    for r in results:
        status = Text("ok", style="green") if r.ok else Text("FAILED", style="bold red")
        if r.note:
            status.append(visible(f" ({r.note})"), style="dim")
        table.add_row(_short_label(r.layer), r.what, r.expected, r.actual, status)
    return table


def _short_label(label: str) -> str:
    """``layer 1 'conv1' (Conv2d)`` -> ``1 conv1``, to keep check tables narrow."""
    match = re.fullmatch(r"layer (\d+) (['\"])(.*)\2 \((\w+)\)", label)
    if match:
        return f"{match.group(1)} {_unrepr(match.group(3))}"
    block = re.fullmatch(r"block (['\"])(.*)\1 \((.*)\)", label)
    return f"{_unrepr(block.group(2))} ({block.group(3)})" if block else label


_REPR_ESCAPE = re.compile(r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|[\\'\"nrt])")


def _unrepr(text: str) -> str:
    """The name inside a label that quotes it as Python's repr does (``'a\\\\b'`` -> ``a\\b``): shown
    as written, its control characters escaped once by the console."""
    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        return {"n": "\n", "r": "\r", "t": "\t"}.get(code) or (chr(int(code[1:], 16)) if len(code) > 1 else code)
    return _REPR_ESCAPE.sub(one, text)


def print_checks(groups: list[tuple[str, list[CheckResult]]], errors: list[str]) -> None:
    console = make_console()
    for name, results in groups:
        console.print(checks_table(name, results))
    for message in errors:
        console.print(plain(f"error: {message}", style="red"), soft_wrap=True)
    console.print(summary_line(groups, errors))


def summary_line(groups: list[tuple[str, list[CheckResult]]], errors: list[str]) -> str:
    n_checks = sum(len(r) for _, r in groups)
    failed = sum(1 for _, rs in groups for r in rs if not r.ok)
    specs = len(groups) + len(errors)
    line = f"{specs} spec{'s' if specs != 1 else ''}, {n_checks} checks, {failed} failed"
    return line + (f", {len(errors)} could not be checked" if errors else "")


def checks_document(groups: list[tuple[str, list[CheckResult]]], errors: list[str]) -> dict[str, Any]:
    return {
        "specs": [{"spec": name, "checks": [r.__dict__ for r in results],
                   "failed": sum(1 for r in results if not r.ok)} for name, results in groups],
        "errors": errors,
        "checks": sum(len(r) for _, r in groups),
        "failed": sum(1 for _, rs in groups for r in rs if not r.ok),
    }
