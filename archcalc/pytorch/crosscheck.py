"""Cross-check an analysis against PyTorch: build the model, run it once with a forward hook on every
node's module and compare node by node; the totals against ``parameters()`` and torchinfo.

A disagreement is a bug in archcalc (or a spec that torch refuses): it is reported as a failed
check naming the layer and torch's own message, never as a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archcalc.analysis import Analysis, analyze
from archcalc.analysis.expectations import CheckResult, check_expectations
from archcalc.errors import CheckError, TorchMissingError, TorchRefusedError
from archcalc.pytorch.build import build_from_analysis, import_torch, torch_message
from archcalc.symbolic import Size, evaluate, is_number, shape_str

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
            want = rng.lo + (0, 1, 7, rng.lo + 13)[min(step, 3)] + max(0, step - 3) * 17
            point[name] = rng.first_from(want) or rng.last_to(want) or rng.lo  # a valid value near it
        found = _valid_near(analysis, point, unbound)
        if found is not None and found not in points:
            points.append(found)
    return points  # empty: no point near the smallest valid sizes meets every condition


def _valid_near(analysis: Analysis, point: dict[str, int], unbound: list[str],
                tries: int = 4096) -> dict[str, int] | None:
    """The point, or the next one up (every unbound symbol stepped together) that meets the
    conditions not folded into ranges (``H == W - 2``); None when none is found nearby."""
    for _ in range(tries):
        if analysis.satisfies(point):
            return point
        for name in unbound:
            point[name] = analysis.ranges[name].first_from(point[name] + 1) or point[name]
    return _search_pairs(analysis, point, unbound, tries) if len(unbound) > 1 else None


def _search_pairs(analysis: Analysis, point: dict[str, int], unbound: list[str], tries: int
                  ) -> dict[str, int] | None:
    """For several symbols tied by a condition, try the small valid values of each combination."""
    import itertools

    values = [analysis.ranges[n].values(64) for n in unbound]
    for combo in itertools.islice(itertools.product(*values), tries):
        candidate = {**point, **dict(zip(unbound, combo, strict=True))}
        if analysis.satisfies(candidate):
            return candidate
    return None


def crosscheck(analysis: Analysis, model: Any = None) -> CrossCheckReport:
    """Build the model (or take ``model``), run it and compare every node and the totals.

    Each node's output shape is recorded by a forward hook on its module (a shared module's
    calls are matched to its nodes in order), its parameters come from the module, and the totals
    from ``model.parameters()`` and torchinfo. Where torch refuses, the first node that did not
    run is named with torch's message.
    """
    torch = import_torch()
    try:
        import torchinfo
    except ImportError as exc:
        raise TorchMissingError(f"torchinfo cannot be imported ({exc}); install it with "
                                "pip install 'archcalc[torch]'") from None
    report = CrossCheckReport(points=check_points(analysis))
    if not report.points:
        unbound = [s for s in analysis.symbols if s not in analysis.values]
        conditions = "; ".join(c.text() for c in analysis.unsolved) or "the ranges"
        report.results.append(CheckResult(
            analysis.spec.source, "model", "torch", "a point meeting every condition",
            f"none found for {', '.join(unbound)}", True,
            f"not cross-checked: no values near the smallest valid ones satisfy {conditions}; "
            "give values with --set"))
        report.marks = {node.name: "skipped" for node in analysis.layers}
        return report
    mismatches: dict[str, CheckResult] = {}
    totals: list[CheckResult] = []
    for point in report.points:
        _check_point(torch, torchinfo, analysis, point, model, mismatches, totals)
    label = _point_label(report.points, analysis)
    skipped = any(t.note.startswith("not built") for t in totals)
    for node in analysis.layers:
        if node.layer.label in mismatches:
            report.results.append(mismatches[node.layer.label])
            report.marks[node.name] = "MISMATCH"
            continue
        report.marks[node.name] = "skipped" if skipped else "ok"
        if not skipped:
            shown = f"{shape_str(analysis.shape_value(node.out_shape))}, {_count(analysis.value(node.params))}"
            report.results.append(CheckResult(analysis.spec.source, node.layer.label, "torch",
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
    too_many = is_number(total) and total > MAX_PARAMS
    too_large = BATCH * biggest > MAX_ACTIVATIONS
    if too_many or too_large:
        over = []
        if too_many:
            over.append(f"{_count(total)} parameters exceed the cross-check limit of {MAX_PARAMS:,}")
        if too_large:
            over.append(f"{BATCH * biggest:,} values in the largest activation at batch {BATCH} exceed "
                        f"the cross-check limit of {MAX_ACTIVATIONS:,}")
        totals.append(CheckResult(source, "model", "torch", "", "", True,
                                  f"not built{f' at {where}' if where else ''}: {'; '.join(over)}"))
        return
    built = model if model is not None else _build(analysis, point, mismatches)
    if built is None:
        return
    input_shape = tuple(evaluate(s, point) for s in analysis.input_shape)
    run = _run(torch, built, input_shape, analysis)
    for node in analysis.layers:
        label = node.layer.label
        ours = (tuple(evaluate(s, point) for s in node.out_shape), evaluate(node.params, point))
        if run.modules.get(node.name) is None:
            _mismatch(mismatches, source, label, "torch", shape_str(ours[0]),
                      "no such module in the torch model", where)
        elif node.name in run.shapes:
            own = 0 if node.shared_with else sum(p.numel() for p in run.modules[node.name].parameters())
            theirs = run.shapes[node.name]
            if (theirs, own) != ours:
                shown = "not a tensor" if theirs is None else shape_str(theirs)
                _mismatch(mismatches, source, label, "torch", f"{shape_str(ours[0])}, {_count(ours[1])}",
                          f"{shown}, {own:,}", where)
        elif run.error is not None and node.name == run.failed_at:
            _mismatch(mismatches, source, label, "torch forward", "runs",
                      f"torch refused it: {run.error}", where)
    _parameter_names(built, analysis, point, mismatches, totals)
    if run.error is not None:
        return
    _totals(torchinfo, built, input_shape, analysis, point, totals)


def _parameter_names(built: Any, analysis: Analysis, point: Mapping[str, int],
                     mismatches: dict[str, CheckResult], totals: list[CheckResult]) -> None:
    """Every parameter by its dotted name and shape (``layer1.0.conv1.weight [64, 64, 1, 1]``)."""
    source = analysis.spec.source
    where = ", ".join(f"{k}={v}" for k, v in point.items())
    actual = {name: tuple(p.shape) for name, p in built.named_parameters()}
    claimed: set[str] = set()
    expected_count = 0
    for node in analysis.layers:
        ours = implied_parameters_of(analysis, node.name, point)
        if ours is None:
            continue
        expected_count += len(ours)
        theirs = {name[len(node.name) + 1:]: shape for name, shape in actual.items()
                  if name.startswith(node.name + ".")}  # a node is a module, never a folder of nodes
        claimed.update(f"{node.name}.{k}" for k in theirs)
        if ours != theirs:
            _mismatch(mismatches, source, node.layer.label, "parameter names", _names_text(ours),
                      _names_text(theirs), where)
    stray = sorted(set(actual) - claimed)
    ok = not stray and expected_count == len(actual)
    shown = f"{len(actual)} tensors" + (f"; not in the spec: {', '.join(stray[:3])}"
                                        f"{' ...' if len(stray) > 3 else ''}" if stray else "")
    totals.append(CheckResult(source, "model", "parameter names and shapes", f"{expected_count} tensors",
                              shown, ok and not any(r.what == "parameter names" for r in mismatches.values())))


def implied_parameters_of(analysis: Analysis, name: str, point: Mapping[str, int]
                          ) -> dict[str, tuple[Size, ...]] | None:
    node = analysis.node(name)
    if node.shared_with is not None:
        return None
    shapes = node.kind.param_shapes(node.in_shape, node.args)
    return {k: tuple(evaluate(s, point) for s in v) for k, v in shapes.items()}


def _names_text(named: Mapping[str, tuple[Size, ...]]) -> str:
    return ", ".join(f"{k} {shape_str(v)}" for k, v in named.items()) or "none"


def _totals(torchinfo: Any, built: Any, input_shape: tuple[int, ...], analysis: Analysis,
            point: Mapping[str, int], totals: list[CheckResult]) -> None:
    """The totals from ``parameters()`` (a shared tensor once) and from torchinfo's summary."""
    import torch

    source = analysis.spec.source
    total = evaluate(analysis.total_params, point)
    unique = sum(p.numel() for p in built.parameters())
    trainable = sum(p.numel() for p in built.parameters() if p.requires_grad)
    try:
        summary = torchinfo.summary(built, input_data=[sample_input(torch, analysis, input_shape)], verbose=0,
                                    device="cpu", depth=1)
        by_torchinfo = f"{summary.total_params:,}"
    except Exception as exc:  # noqa: BLE001  whatever torchinfo raises is the answer
        by_torchinfo = f"torchinfo failed: {torch_message(exc)}"
    for what, ours, theirs in (("torch total params", total, unique),
                               ("torch trainable params", evaluate(analysis.trainable_params, point),
                                trainable)):
        note = ""
        if ours != theirs:
            shared = _shared_names(built)
            note = f"shared parameters counted once: {shared}" if shared else ""
        totals.append(CheckResult(source, "model", what, _count(ours), _count(theirs), ours == theirs, note))
    totals.append(CheckResult(source, "model", "torchinfo total params", _count(total), by_torchinfo,
                              by_torchinfo == _count(total)))


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


@dataclass
class _Run:
    """What one forward pass of the built model showed, node by node."""

    modules: dict[str, Any]  # node name -> the module it applies (None: not in the model)
    shapes: dict[str, tuple[int, ...] | None]  # per-sample output shape of every node that ran
    error: str | None = None  # torch's message when the forward pass failed
    failed_at: str | None = None  # the first node (in spec order) that did not run


def _run(torch: Any, model: Any, input_shape: tuple[int, ...], analysis: Analysis) -> _Run:
    """Run the model once with a forward hook on every node's module."""
    run = _Run({}, {})
    owners: dict[int, list[str]] = {}
    calls: dict[int, list[tuple[int, ...] | None]] = {}
    for node in analysis.layers:
        try:
            module = model.get_submodule(node.shared_with or node.name)
        except AttributeError:
            module = None
        run.modules[node.name] = module
        if module is not None:
            owners.setdefault(id(module), []).append(node.name)

    def record(module: Any, args: Any, output: Any) -> None:
        shape = tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else None
        calls.setdefault(id(module), []).append(shape)

    hooked = {id(m): m for m in run.modules.values() if m is not None}
    handles = [m.register_forward_hook(record) for m in hooked.values()]
    try:
        with torch.no_grad():
            model(sample_input(torch, analysis, input_shape))
    except Exception as exc:  # noqa: BLE001  any torch error is reported, named
        run.error = torch_message(exc)
    finally:
        for handle in handles:
            handle.remove()
    for key, names in owners.items():
        run.shapes.update(zip(names, calls.get(key, []), strict=False))
    if run.error is not None:
        run.failed_at = next((n.name for n in analysis.layers if n.name not in run.shapes), None)
    return run


def sample_input(torch: Any, analysis: Analysis, input_shape: tuple[int, ...], batch: int = BATCH) -> Any:
    """Zeros of the input's shape and type: valid indices too, for an input of indices."""
    dtype = torch.long if analysis.spec.input_dtype == "long" else torch.float32
    return torch.zeros((batch, *input_shape), dtype=dtype)


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


