"""Evaluate the expectations written in a spec (``expect_*`` and ``[expect]``)."""

from __future__ import annotations

from dataclasses import dataclass

from archcalc.analysis.engine import Analysis
from archcalc.symbolic import (
    Size,
    evaluate,
    free_names,
    int_str,
    is_number,
    proven_equal,
    shape_str,
    size_str,
)

SAMPLES = 48  # values tried per symbol when two expressions cannot be proven equal


@dataclass(frozen=True)
class CheckResult:
    """One assertion and whether it held; ``expected``/``actual`` are display texts."""

    spec: str
    layer: str  # "layer 1 'conv1' (Conv2d)" or "model"
    what: str
    expected: str
    actual: str
    ok: bool
    note: str = ""


def check_expectations(analysis: Analysis) -> list[CheckResult]:
    """Every expectation the spec writes, in spec order, then the model-level ones."""
    spec = analysis.spec
    results: list[CheckResult] = []
    for result in analysis.layers:
        layer = result.layer
        if layer.expect_shape is not None:
            ok, note = compare_shapes(layer.expect_shape, result.out_shape, analysis)
            results.append(CheckResult(spec.source, layer.label, "output shape",
                                       shape_str(layer.expect_shape), _shown(result.out_shape, analysis),
                                       ok, note))
        if layer.expect_params is not None:
            ok, note = compare_sizes(layer.expect_params, result.params, analysis)
            results.append(CheckResult(spec.source, layer.label, "params", f"{layer.expect_params:,}",
                                       _count(result.params, analysis), ok, note))
    results.extend(_group_expectations(analysis))
    expect = spec.expect
    for what, wanted, actual in (("total params", expect.total_params, analysis.total_params),
                                 ("trainable params", expect.trainable_params,
                                  analysis.trainable_params)):
        if wanted is not None:
            ok, note = compare_sizes(wanted, actual, analysis)
            results.append(CheckResult(spec.source, "model", what, f"{wanted:,}",
                                       _count(actual, analysis), ok, note))
    if expect.output_shape is not None:
        ok, note = compare_shapes(expect.output_shape, analysis.output_shape, analysis)
        results.append(CheckResult(spec.source, "model", "output shape", shape_str(expect.output_shape),
                                   _shown(analysis.output_shape, analysis), ok, note))
    return results


def _group_expectations(analysis: Analysis) -> list[CheckResult]:
    """``expect_shape``/``expect_params`` written on a block use: its output, everything in it."""
    from archcalc.analysis.tree import row

    results = []
    for group in analysis.spec.groups:
        if group.expect_shape is None and group.expect_params is None:
            continue
        tree = row(analysis, group.name)
        if tree is None:
            continue
        if group.expect_shape is not None:
            ok, note = compare_shapes(group.expect_shape, tree.output.out_shape, analysis)
            results.append(CheckResult(analysis.spec.source, group.label, "output shape",
                                       shape_str(group.expect_shape), _shown(tree.output.out_shape, analysis),
                                       ok, note))
        if group.expect_params is not None:
            ok, note = compare_sizes(group.expect_params, tree.params, analysis)
            results.append(CheckResult(analysis.spec.source, group.label, "params", f"{group.expect_params:,}",
                                       _count(tree.params, analysis), ok, note))
    return results


def _shown(shape: tuple[Size, ...], analysis: Analysis) -> str:
    value = analysis.shape_value(shape)
    return shape_str(value) if value == shape else f"{shape_str(shape)} = {shape_str(value)}"


def _count(size: Size, analysis: Analysis) -> str:
    value = analysis.value(size)
    return int_str(value, grouped=True) if isinstance(value, int) else size_str(value)


def compare_shapes(expected: tuple[Size, ...], actual: tuple[Size, ...],
                   analysis: Analysis) -> tuple[bool, str]:
    if len(expected) != len(actual):
        return False, f"{len(expected)} axes expected, {len(actual)} found"
    notes = []
    for i, (e, a) in enumerate(zip(expected, actual)):
        ok, note = compare_sizes(e, a, analysis)
        if not ok:
            return False, f"axis {i}: {note}" if note else f"axis {i} differs"
        if note:
            notes.append(note)
    return True, "; ".join(sorted(set(notes)))


def compare_sizes(expected: Size, actual: Size, analysis: Analysis) -> tuple[bool, str]:
    """Equal as numbers, as expressions with the same normal form, or (said so) by evaluation.

    The proof is linear in the size of the expressions (sympy's simplify took minutes on a dozen
    nested floors); what it cannot prove is decided at the given symbol values, else at SAMPLES
    valid values of each symbol, and the note says which.
    """
    if is_number(expected) and is_number(actual):
        return expected == actual, ""
    if proven_equal(expected, actual):
        return True, ""
    # every evaluation binds every symbol: sympy then computes with numbers only (a floor of a
    # partly bound product can take it minutes)
    names = sorted(free_names(expected) | free_names(actual))
    bound = {n: analysis.values[n] for n in names if n in analysis.values}
    given = ", ".join(f"{k}={v}" for k, v in analysis.values.items())
    free = [n for n in names if n not in bound]
    if not free:
        e, a = evaluate(expected, bound), evaluate(actual, bound)
        return e == a, f"at {given}" if given else ("" if e == a else f"{size_str(e)} != {size_str(a)}")
    samples = {n: analysis.ranges[n].values(SAMPLES) for n in free}
    for i in range(min(len(v) for v in samples.values())):
        point = {**bound, **{n: samples[n][i] for n in free}}
        ev, av = evaluate(expected, point), evaluate(actual, point)
        if ev != av:
            where = ", ".join(f"{k}={v}" for k, v in point.items())
            return False, f"{size_str(ev)} != {size_str(av)} at {where}"
    span = ", ".join(f"{n} in {{{v[0]}..{v[-1]}}}" if analysis.ranges[n].modulus > 1 else f"{n}={v[0]}..{v[-1]}"
                     for n, v in samples.items() if v)
    where = ", ".join(w for w in (", ".join(f"{k}={v}" for k, v in bound.items()), span) if w)
    return True, f"equal at {where or 'no valid value'} (not proven for all values)"
