"""Receptive-field, cost and solve output (tables and JSON)."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table

from archcalc.analysis import Analysis
from archcalc.analysis.cost import CostReport, receptive_fields
from archcalc.analysis.solve import SolveReport
from archcalc.render.console import make_console
from archcalc.render.spec import count_text
from archcalc.symbolic import Size, compact_str, is_number, size_str

COST_NOTE = ("MACs: forward multiply-accumulates per sample (conv, linear, recurrent and attention layers; "
             "activations, "
             "pooling and normalization count 0). FLOPs = 2 x MACs; training = 3 x forward FLOPs. "
             "Activations: every layer's output kept for the backward pass, input included.")


def _frac(value: Any) -> str:
    return str(value) if value.denominator != 1 else str(value.numerator)


def rf_rows(analysis: Analysis) -> tuple[tuple[str, ...], list[list[str]]]:
    names, fields = receptive_fields(analysis)
    rows = []
    for row, axes in zip(analysis.layers, fields):
        cells = [str(row.index), row.name, row.type]
        if axes is None:
            cells += ["whole input"] * len(names)
        elif isinstance(axes, str):
            cells += [axes] * len(names)
        else:
            cells += [f"r={f.size} j={f.jump} start={_frac(f.start)}" for f in axes]
        rows.append(cells)
    return names, rows


def print_receptive_fields(analysis: Analysis) -> None:
    names, rows = rf_rows(analysis)
    if not names:
        make_console().print("No spatial axes: the receptive field is the whole input.")
        return
    table = Table(title="Receptive field per axis: size r, jump j, start (centre of the first output's "
                        "field, in input pixels)", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("#", "name", "type", *names):
        table.add_column(column, justify="right" if column == "#" else "left")
    for cells in rows:
        table.add_row(*cells)
    make_console().print(table)


def rf_document(analysis: Analysis) -> list[dict[str, Any]]:
    names, fields = receptive_fields(analysis)
    return [{"layer": row.name, "axes": None if axes is None else axes if isinstance(axes, str) else {
        n: {"size": f.size, "jump": f.jump, "start": float(f.start)} for n, f in zip(names, axes)}}
        for row, axes in zip(analysis.layers, fields)]


def _value(size: Size, analysis: Analysis) -> str:
    value = analysis.value(size)
    if is_number(value) and not is_number(size):
        return f"{compact_str(size)} = {value:,}"
    return count_text(value)


def print_cost(analysis: Analysis, report: CostReport) -> None:
    table = Table(title=f"Cost per sample (activation memory for batch {report.batch}, {report.dtype})",
                  title_justify="left", caption=COST_NOTE, caption_justify="left", box=box.SIMPLE_HEAD)
    for column in ("#", "name", "type", "MACs", "FLOPs (forward)", "activations"):
        table.add_column(column, justify="left" if column in ("name", "type") else "right")
    for row, c in zip(analysis.layers, report.layers):
        table.add_row(str(row.index), row.name, row.type, _value(c.macs, analysis), _value(c.flops, analysis),
                      _value(c.activations, analysis))
    console = make_console()
    console.print(table)
    console.print(f"Total MACs: {_value(report.total_macs, analysis)}")
    console.print(f"Forward FLOPs: {_value(report.total_flops, analysis)}; "
                  f"training FLOPs (forward + backward): {_value(report.total_train_flops, analysis)}")
    console.print(f"Activation memory: {_value(report.activation_bytes, analysis)} bytes "
                  f"({_mib(analysis.value(report.activation_bytes))})")


def _mib(value: Size) -> str:
    return f"{value / 2**20:,.1f} MiB" if is_number(value) else "symbolic"


def _json(size: Size, analysis: Analysis) -> Any:
    value = analysis.value(size)
    return value if is_number(value) else size_str(value)


def cost_document(analysis: Analysis, report: CostReport) -> dict[str, Any]:
    return {
        "convention": COST_NOTE, "batch": report.batch, "dtype": report.dtype,
        "layers": [{"layer": c.name, "macs": _json(c.macs, analysis), "flops": _json(c.flops, analysis),
                    "train_flops": _json(c.train_flops, analysis),
                    "activations": _json(c.activations, analysis)} for c in report.layers],
        "total_macs": _json(report.total_macs, analysis), "total_flops": _json(report.total_flops, analysis),
        "total_train_flops": _json(report.total_train_flops, analysis),
        "activation_bytes": _json(report.activation_bytes, analysis),
    }


# --------------------------------------------------------------------------- solve

def _interval(values: tuple[int, int | None] | None, symbol: str | None) -> str:
    if values is None:
        return "none"
    lo, hi = values
    if hi is None:
        return f"{symbol} >= {lo}"
    if hi - lo < 8:
        return f"{symbol} in {{{', '.join(map(str, range(lo, hi + 1)))}}}"
    return f"{lo} <= {symbol} <= {hi}"


def print_solve(report: SolveReport) -> None:
    console = make_console()
    for name, rng in report.ranges.items():
        upper = f"{rng.hi}" if rng.hi is not None else "none"
        console.print(f"{name}: valid for {rng.text(name)}; upper bound: {upper}")
    if report.near is not None:
        asked, below, above = report.near
        console.print(f"valid {report.symbol} nearest {asked:,}: {_or_none(below)} below, {_or_none(above)} above")
    for answer in report.targets:
        t = answer.target
        text = _interval(answer.values, report.symbol)
        note = f" ({answer.note})" if answer.note else ""
        console.print(f"{t.layer}[{answer.axis}] = {size_str(answer.expr)} reaches {t.size}: {text}{note}",
                      soft_wrap=True)
    if report.budget is not None:
        budget, largest, macs = report.budget
        if not is_number(macs) and largest is not None:
            what = "none: not even the smallest valid size fits" if largest == 0 else f"{report.symbol} = {largest:,}"
            console.print(f"largest {report.symbol} within {budget:,} MACs: {what} (MACs = {size_str(macs)})",
                          soft_wrap=True)
        else:
            console.print(f"MACs = {size_str(macs)}: {'within' if is_number(macs) and macs <= budget else 'over'} "
                          f"the budget of {budget:,} for every value", soft_wrap=True)
    if report.windows:
        table = Table(title="Conv and pool windows", title_justify="left", box=box.SIMPLE_HEAD)
        for column in ("layer", "axis", "input", "padding that keeps ceil(n/stride)", "rows lost to the floor"):
            table.add_column(column, overflow="fold")
        for w in report.windows:
            table.add_row(w.layer, w.axis, compact_str(w.input_size), w.keep_padding, w.dropped)
        console.print(table)


def _or_none(value: int | None) -> str:
    return "none" if value is None else f"{value:,}"


def solve_document(report: SolveReport) -> dict[str, Any]:
    return {
        "symbol": report.symbol,
        "valid": {n: {"min": r.lo, "max": r.hi, **({"modulus": r.modulus, "residues": sorted(r.residues)}
                                                   if r.modulus > 1 else {})} for n, r in report.ranges.items()},
        "near": None if report.near is None else dict(zip(("value", "below", "above"), report.near, strict=True)),
        "targets": [{"layer": a.target.layer, "axis": a.axis, "size": a.target.size,
                     "expression": size_str(a.expr),
                     "values": None if a.values is None else {"min": a.values[0], "max": a.values[1]},
                     "note": a.note} for a in report.targets],
        "budget": None if report.budget is None else {
            "max_macs": report.budget[0], "largest": report.budget[1], "macs": size_str(report.budget[2])},
        "windows": [{"layer": w.layer, "axis": w.axis, "input": size_str(w.input_size),
                     "keep_padding": w.keep_padding, "rows_lost": w.dropped} for w in report.windows],
    }
