"""Cross-check an analysis against PyTorch: build the model, run torchinfo, compare layer by layer.

A disagreement is a bug in archcalc (or a spec that torch refuses): it is reported as a failed
check naming the layer and torch's own message, never as a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archcalc.analysis import Analysis, analyze
from archcalc.checks import CheckResult, check_expectations
from archcalc.errors import CheckError, TorchMissingError, TorchRefusedError
from archcalc.symbolic import Size, evaluate, is_number, shape_str
from archcalc.torchbuild import build_from_analysis, import_torch, torch_message

BATCH = 2  # BatchNorm needs more than one value per channel in training mode
MAX_PARAMS = 200_000_000  # larger models are not built: say so instead of exhausting memory
MAX_ACTIVATIONS = 100_000_000  # elements of the largest activation, batch included


@dataclass
class CrossCheckReport:
    """Per-layer results of the torch cross-check, at each point (symbol values) checked."""

    results: list[CheckResult] = field(default_factory=list)
    points: list[dict[str, int]] = field(default_factory=list)
    marks: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if not r.ok]

    def row_marks(self) -> dict[str, str]:
        """A short mark per layer name for the ``--verify`` column."""
        return dict(self.marks)

    def raise_if_failed(self) -> None:
        if self.failed:
            raise CheckError(failure_message(self.failed))


def failure_message(failed: list[CheckResult]) -> str:
    first = failed[0]
    more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
    note = f" [{first.note}]" if first.note else ""
    return (f"{first.spec}: {first.layer}: {first.what}: expected {first.expected}, "
            f"got {first.actual}{note}{more}")


def check_points(analysis: Analysis, extra: int = 3) -> list[dict[str, int]]:
    """The symbol values to check at: the bound values, else the smallest valid and a few more."""
    if analysis.bound:
        return [dict(analysis.values)]
    unbound = [s for s in analysis.symbols if s not in analysis.values]
    points = []
    for step in range(extra + 1):
        point = dict(analysis.values)
        for name in unbound:
            rng = analysis.ranges[name]
            value = rng.lo + (0, 1, 7, rng.lo + 13)[min(step, 3)] + max(0, step - 3) * 17
            point[name] = value if rng.hi is None else min(value, rng.hi)
        if point not in points:
            points.append(point)
    return points


def crosscheck(analysis: Analysis, model: Any = None) -> CrossCheckReport:
    """Build the model (or take ``model``), run torchinfo and compare every layer and the total."""
    torch = import_torch()
    try:
        import torchinfo
    except ImportError as exc:
        raise TorchMissingError(f"torchinfo cannot be imported ({exc}); install it with "
                                "pip install 'archcalc[torch]' (or use --no-torch)") from None
    report = CrossCheckReport(points=check_points(analysis))
    mismatches: dict[str, CheckResult] = {}
    totals: list[CheckResult] = []
    for point in report.points:
        _check_point(torch, torchinfo, analysis, point, model, mismatches, totals)
    label = _point_label(report.points, analysis)
    for layer, row in zip(analysis.spec.layers, analysis.layers):
        if layer.label in mismatches:
            report.results.append(mismatches[layer.label])
            report.marks[layer.name] = "MISMATCH"
            continue
        mark = "skipped" if any(t.note.startswith("not built") for t in totals) else "ok"
        report.marks[layer.name] = mark
        if mark == "ok":
            shown = f"{shape_str(analysis.shape_value(row.out_shape))}, {_count(analysis.value(row.params))}"
            report.results.append(CheckResult(analysis.spec.source, layer.label, "torchinfo",
                                              shown, shown, True, label))
    report.results.extend(_merge_totals(totals, label))
    return report


def _merge_totals(totals: list[CheckResult], label: str) -> list[CheckResult]:
    """One row per model-level check: the first failure, or one ok for every point."""
    merged: dict[str, CheckResult] = {}
    for result in totals:
        kept = merged.get(result.what)
        if kept is None or (kept.ok and not result.ok):
            merged[result.what] = result
    return [r if not r.ok or r.note else CheckResult(r.spec, r.layer, r.what, r.expected, r.actual,
                                                     True, label) for r in merged.values()]


def _point_label(points: list[dict[str, int]], analysis: Analysis) -> str:
    unbound = [s for s in analysis.symbols if s not in analysis.values]
    if not unbound:
        return ""
    return "at " + "; ".join(", ".join(f"{k}={p[k]}" for k in unbound) for p in points)


def _count(size: Size) -> str:
    return f"{size:,}" if is_number(size) else str(size)


def _check_point(torch: Any, torchinfo: Any, analysis: Analysis, point: Mapping[str, int], model: Any,
                 mismatches: dict[str, CheckResult], totals: list[CheckResult]) -> None:
    source = analysis.spec.source
    where = ", ".join(f"{k}={v}" for k, v in point.items())
    total = evaluate(analysis.total_params, point)
    biggest = max(_elements(evaluate(s, point) for s in row.out_shape) for row in analysis.layers)
    if (is_number(total) and total > MAX_PARAMS) or BATCH * biggest > MAX_ACTIVATIONS:
        totals.append(CheckResult(source, "model", "torchinfo", "", "", True,
                                  f"not built at {where}: {_count(total)} parameters, "
                                  f"{biggest:,} activations per sample exceed the cross-check limits"))
        return
    built = model if model is not None else _build(analysis, point, mismatches)
    if built is None:
        return
    input_shape = tuple(evaluate(s, point) for s in analysis.input_shape)
    infos = _run(torch, torchinfo, built, input_shape, analysis, mismatches, where)
    if infos is None:
        return
    children = dict(built.named_children())
    for layer, row in zip(analysis.spec.layers, analysis.layers):
        info = infos.get(layer.name)
        ours_shape = tuple(evaluate(s, point) for s in row.out_shape)
        ours_params = evaluate(row.params, point)
        module = children.get(layer.name)
        if info is None or module is None:
            _mismatch(mismatches, source, layer.label, "torchinfo", shape_str(ours_shape),
                      "no such module in the torch model", where)
            continue
        theirs_shape = tuple(info.output_size[1:])
        own = sum(p.numel() for p in module.parameters())  # shared tensors counted once
        if theirs_shape != ours_shape or info.num_params != ours_params or own != ours_params:
            _mismatch(mismatches, source, layer.label, "torchinfo",
                      f"{shape_str(ours_shape)}, {_count(ours_params)}",
                      f"{shape_str(theirs_shape)}, {info.num_params:,} (named_parameters: {own:,})", where)
    unique = sum(p.numel() for p in built.parameters())  # torch yields a shared tensor once
    trainable = sum(p.numel() for p in built.parameters() if p.requires_grad)
    for what, ours, theirs in (("torch total params", total, unique),
                               ("torch trainable params", evaluate(analysis.trainable_params, point),
                                trainable)):
        note = ""
        if ours != theirs:
            shared = _shared_names(built)
            note = f"shared parameters counted once: {shared}" if shared else ""
        totals.append(CheckResult(source, "model", what, _count(ours), _count(theirs), ours == theirs,
                                  note))


def _elements(shape: Any) -> int:
    n = 1
    for s in shape:
        n *= s if is_number(s) else 1
    return n


def _shared_names(model: Any) -> str:
    """``fc1.weight = fc2.weight`` for every tensor that two names share."""
    seen: dict[int, str] = {}
    pairs = []
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen:
            pairs.append(f"{seen[id(p)]} = {name}")
        else:
            seen[id(p)] = name
    return ", ".join(pairs)


def _mismatch(mismatches: dict[str, CheckResult], source: str, label: str, what: str,
              expected: str, actual: str, where: str) -> None:
    mismatches.setdefault(label, CheckResult(source, label, what, expected, actual, False,
                                             f"at {where}" if where else ""))


def _build(analysis: Analysis, point: Mapping[str, int], mismatches: dict[str, CheckResult]) -> Any:
    """The model at ``point``, or None when torch refuses a layer (recorded as a mismatch)."""
    try:
        return build_from_analysis(analysis, point)
    except TorchRefusedError as exc:
        where = ", ".join(f"{k}={v}" for k, v in point.items())
        _mismatch(mismatches, analysis.spec.source, exc.label, "torch build", "a module",
                  f"torch refused it: {exc.torch_message}", where)
        return None


def _run(torch: Any, torchinfo: Any, model: Any, input_shape: tuple[Any, ...], analysis: Analysis,
         mismatches: dict[str, CheckResult], where: str) -> dict[str, Any] | None:
    """torchinfo's depth-1 rows by module name; on failure, find the layer torch stops at."""
    try:
        summary = torchinfo.summary(model, input_size=(BATCH, *input_shape), verbose=0,
                                    device="cpu", depth=1)
    except Exception:
        x = torch.zeros((BATCH, *input_shape))
        labels = {layer.name: layer.label for layer in analysis.spec.layers}
        with torch.no_grad():
            for name, module in model.named_children():
                try:
                    x = module(x)
                except Exception as exc:  # noqa: BLE001  any torch error is reported, named
                    _mismatch(mismatches, analysis.spec.source, labels.get(name, name), "torch forward",
                              "runs", f"torch refused it: {torch_message(exc)}", where)
                    return None
        raise
    return {info.var_name: info for info in summary.summary_list if info.depth == 1}


def assert_spec(path: str | Path, values: Mapping[str, int] | None = None, torch: bool = True) -> None:
    """Check a spec's expectations and its torch cross-check; AssertionError on any failure.

    For tests in other projects: ``archcalc.assert_spec("specs/model.toml")``.
    """
    from archcalc.spec import load_spec

    analysis = analyze(load_spec(path), values)
    results = check_expectations(analysis)
    if torch:
        results += crosscheck(analysis).results
    failed = [r for r in results if not r.ok]
    if failed:
        raise AssertionError(failure_message(failed))


