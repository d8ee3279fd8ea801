"""ModelSpec -> Analysis: every layer's shapes, parameters and the conditions on the symbols."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from archcalc.errors import ShapeError, UsageError
from archcalc.layers import get_kind
from archcalc.layers.registry import ArgError, Condition, suggest
from archcalc.spec import LayerSpec, ModelSpec
from archcalc.symbolic import (
    Size,
    as_size,
    evaluate,
    free_names,
    is_number,
    shape_str,
    size_str,
    smallest_at_least,
    solve_equal,
    symbol,
)


@dataclass(frozen=True)
class LayerResult:
    """One layer of an analysis: symbolic shapes and parameters with their formulas."""

    index: int
    name: str
    type: str
    in_shape: tuple[Size, ...]
    out_shape: tuple[Size, ...]
    params: Size
    trainable_params: Size
    params_formula: str
    derivation: tuple[tuple[str, Size], ...]
    description: str = ""


@dataclass(frozen=True)
class SymbolRange:
    """The values of a symbol allowed by the single-symbol conditions: ``lo <= v <= hi``."""

    lo: int = 1
    hi: int | None = None

    def text(self, name: str) -> str:
        if self.hi is None:
            return f"{name} >= {self.lo}"
        if self.hi == self.lo:
            return f"{name} = {self.lo}"
        return f"{self.lo} <= {name} <= {self.hi}"

    def contains(self, value: int) -> bool:
        return value >= self.lo and (self.hi is None or value <= self.hi)


@dataclass(frozen=True)
class Analysis:
    """The result of analyzing a spec: what every table, check and report is made from."""

    spec: ModelSpec
    values: Mapping[str, int]
    layers: tuple[LayerResult, ...]
    conditions: tuple[Condition, ...]
    ranges: Mapping[str, SymbolRange]
    total_params: Size
    trainable_params: Size
    input_shape: tuple[Size, ...] = field(default=())

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.spec.symbol_names

    @property
    def bound(self) -> bool:
        """True when every symbol has a value."""
        return all(s in self.values for s in self.symbols)

    def value(self, size: Size) -> Size:
        return evaluate(size, self.values)

    def shape_value(self, shape: tuple[Size, ...]) -> tuple[Size, ...]:
        return tuple(self.value(s) for s in shape)

    @property
    def output_shape(self) -> tuple[Size, ...]:
        return self.layers[-1].out_shape if self.layers else self.input_shape

    def layer(self, name: str) -> LayerResult | None:
        return next((r for r in self.layers if r.name == name), None)


def parse_assignments(items: list[str] | None) -> dict[str, int]:
    """``["T=200", ...]`` from ``--set`` into a dict; bad text is a UsageError."""
    values: dict[str, int] = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not name:
            raise UsageError(f"--set {item!r}: write NAME=INTEGER, e.g. --set T=200")
        if not (text.isdigit() and int(text) >= 1):
            raise UsageError(f"--set {item!r}: the value must be a positive integer, got {text!r}")
        values[name] = int(text)
    return values


def analyze(spec: ModelSpec, overrides: Mapping[str, int] | None = None) -> Analysis:
    """Derive every layer's shapes and parameters, symbolically, and check the conditions."""
    overrides = dict(overrides or {})
    for name in overrides:
        if name not in spec.symbol_names:
            known = ", ".join(spec.symbol_names) or "none"
            raise UsageError(f"--set {name}: {spec.source} has no symbol {name!r}"
                             f"{suggest(name, list(spec.symbol_names))} (symbols: {known})")
    values = {**spec.symbols, **overrides}
    shape: tuple[Size, ...] = tuple(symbol(s) if isinstance(s, str) else s for s in spec.input_shape)
    input_shape = shape
    tracker = _Conditions(spec, values)
    results: list[LayerResult] = []
    total: Size = 0
    trainable: Size = 0
    for layer in spec.layers:
        result = _analyze_layer(spec, layer, shape, tracker)
        results.append(result)
        total = as_size(total + result.params)
        trainable = as_size(trainable + result.trainable_params)
        shape = result.out_shape
    tracker.check_values()
    return Analysis(spec=spec, values=values, layers=tuple(results),
                    conditions=tuple(tracker.conditions), ranges=dict(tracker.ranges),
                    total_params=total, trainable_params=trainable, input_shape=input_shape)


def _analyze_layer(spec: ModelSpec, layer: LayerSpec, shape: tuple[Size, ...],
                   tracker: _Conditions) -> LayerResult:
    kind = get_kind(layer.type)
    assert kind is not None  # spec.py validated the type
    where = f"{spec.source}:{layer.line}" if layer.line else spec.source
    if kind.ranks is not None and len(shape) not in kind.ranks:
        raise ShapeError(f"{layer.label} takes a per-sample input {kind.rank_doc}, "
                         f"got {shape_str(shape)} ({len(shape)} axes)", source=where)
    try:
        step = kind.apply(shape, layer.args)
        counted = kind.params(shape, layer.args)
    except ArgError as exc:
        raise ShapeError(f"{layer.label}: {exc}", source=where) from None
    for what, expr, op, value in step.conditions:
        tracker.add(Condition(layer.index, layer.name, what, expr, op, value), layer, where)
    return LayerResult(
        index=layer.index, name=layer.name, type=layer.type, in_shape=shape,
        out_shape=tuple(as_size(s) for s in step.out_shape), params=counted.n,
        trainable_params=counted.n if layer.trainable else 0, params_formula=counted.formula,
        derivation=tuple(step.derivation), description=kind.describe(layer.args),
    )


class _Conditions:
    """Collects the conditions on the symbols; refuses impossible ones at once."""

    def __init__(self, spec: ModelSpec, values: Mapping[str, int]) -> None:
        self.spec = spec
        self.values = values
        self.conditions: list[Condition] = []
        self.ranges: dict[str, SymbolRange] = {s: SymbolRange() for s in spec.symbol_names}
        self.located: dict[int, tuple[LayerSpec, str]] = {}

    def add(self, cond: Condition, layer: LayerSpec, where: str) -> None:
        if is_number(cond.expr):
            if not _holds(cond.expr, cond.op, cond.value):
                raise ShapeError(_numeric_failure(cond, layer), source=where)
            return
        names = free_names(cond.expr)
        if len(names) == 1:
            self._narrow(next(iter(names)), cond, layer, where)
        self.conditions.append(cond)
        self.located[id(cond)] = (layer, where)

    def check_values(self) -> None:
        """With every condition known, the first one the bound values break is an error."""
        for cond in self.conditions:
            value = evaluate(cond.expr, self.values)
            if is_number(value) and not _holds(value, cond.op, cond.value):
                layer, where = self.located[id(cond)]
                names = sorted(free_names(cond.expr))
                bound = ", ".join(f"{k}={v}" for k, v in self.values.items() if k in names)
                need = ", ".join(self.ranges[n].text(n) for n in names)
                raise ShapeError(f"{layer.label}: {cond.what} is {size_str(cond.expr)} = {value} "
                                 f"for {bound}; needs {cond.op} {cond.value} (valid: {need})",
                                 source=where)

    def _narrow(self, name: str, cond: Condition, layer: LayerSpec, where: str) -> None:
        old = self.ranges[name]
        interval: tuple[int, int | None] | None
        if cond.op == ">=":
            lo = smallest_at_least(cond.expr, name, cond.value)
            interval = None if lo is None else (lo, None)
        else:
            interval = solve_equal(cond.expr, name, cond.value)
        if interval is None:
            raise ShapeError(f"{layer.label}: no value of {name} gives {cond.what}: "
                             f"{cond.text()}", source=where)
        lo, hi = max(old.lo, interval[0]), old.hi
        if interval[1] is not None:
            hi = interval[1] if hi is None else min(hi, interval[1])
        if hi is not None and lo > hi:
            raise ShapeError(f"{layer.label}: no value of {name} satisfies {cond.text()} together "
                             f"with the earlier layers ({old.text(name)})", source=where)
        self.ranges[name] = SymbolRange(lo, hi)


def _holds(value: int, op: str, target: int) -> bool:
    return value >= target if op == ">=" else value == target


def _numeric_failure(cond: Condition, layer: LayerSpec) -> str:
    if cond.op == ">=" and "(output)" in cond.what:
        axis = cond.what.split(" ")[0]
        return (f"{layer.label}: output {axis} would be {cond.expr} (must be >= 1): "
                f"the input is too small for this window")
    if cond.op == ">=":
        return f"{layer.label}: {cond.what}: size {cond.expr} is too small (needs >= {cond.value})"
    return f"{layer.label}: {cond.what} disagrees with the incoming size {cond.expr}"
