"""ModelSpec -> Analysis: every node's shapes, parameters and the conditions on the symbols.

A spec is a graph of named nodes written in a topological order (a node's inputs are the model
input or nodes written above it), so one pass over the file order derives every shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from archcalc.analysis.conditions import Conditions, SymbolRange, holds
from archcalc.errors import ShapeError, UsageError
from archcalc.layers import get_kind
from archcalc.layers.registry import ArgError, Condition, LayerKind, Step, suggest
from archcalc.spec import INPUT, LayerSpec, ModelSpec
from archcalc.symbolic import Size, as_size, evaluate, shape_str, symbol

Shape = tuple[Size, ...]

__all__ = ["Analysis", "LayerResult", "Shape", "SymbolRange", "analyze"]


@dataclass(frozen=True)
class LayerResult:
    """One node of an analysis: its spec and kind, its input and output shapes, its parameters."""

    layer: LayerSpec
    kind: LayerKind
    in_shapes: tuple[Shape, ...]
    out_shape: Shape
    params: Size
    trainable_params: Size
    params_formula: str
    derivation: tuple[tuple[str, Size], ...]
    description: str = ""

    @property
    def index(self) -> int:
        return self.layer.index

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def type(self) -> str:
        return self.layer.type

    @property
    def args(self) -> Mapping[str, Any]:
        return self.layer.args

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.layer.inputs

    @property
    def shared_with(self) -> str | None:
        """The node whose module (and parameters) this node applies again."""
        return self.layer.same_as

    @property
    def in_shape(self) -> Shape:
        """The first input's shape (the only one, for every kind but the merges)."""
        return self.in_shapes[0]


@dataclass(frozen=True)
class Analysis:
    """The result of analyzing a spec: what every table, check and report is made from."""

    spec: ModelSpec
    values: Mapping[str, int]
    layers: tuple[LayerResult, ...]  # the nodes, in file (topological) order
    conditions: tuple[Condition, ...]
    ranges: Mapping[str, SymbolRange]
    total_params: Size
    trainable_params: Size
    input_shape: Shape
    unsolved: tuple[Condition, ...] = ()  # conditions not folded into ``ranges`` (several symbols, ...)

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.spec.symbol_names

    @property
    def bound(self) -> bool:
        """True when every symbol has a value."""
        return all(s in self.values for s in self.symbols)

    def value(self, size: Size) -> Size:
        return evaluate(size, self.values)

    def satisfies(self, point: Mapping[str, int]) -> bool:
        """Every symbol's range, and every condition not folded into one, hold at ``point``
        (conditions that stay symbolic there are not judged)."""
        if any(not self.ranges[n].contains(v) for n, v in point.items() if n in self.ranges):
            return False
        for cond in self.unsolved:
            a, b = evaluate(cond.expr, point), evaluate(cond.value, point)
            if isinstance(a, int) and isinstance(b, int) and not holds(a, cond.op, b):
                return False
        return True

    def shape_value(self, shape: tuple[Size, ...]) -> tuple[Size, ...]:
        return tuple(self.value(s) for s in shape)

    # -- the graph
    @cached_property
    def _by_name(self) -> dict[str, LayerResult]:
        return {node.name: node for node in self.layers}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def node(self, name: str) -> LayerResult:
        """The node called ``name``; KeyError (with a suggestion) when there is none."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no node {name!r}{suggest(name, list(self._by_name))}") from None

    def layer(self, name: str) -> LayerResult | None:
        """The node called ``name``, or None."""
        return self._by_name.get(name)

    def predecessors(self, name: str) -> tuple[str, ...]:
        """The names of the node's inputs (``"input"`` for the model input), in order."""
        return self.node(name).inputs

    def successors(self, name: str) -> tuple[str, ...]:
        """The names of the nodes that take this node (or ``"input"``) as an input."""
        return self._successors.get(name, ())

    @cached_property
    def _successors(self) -> dict[str, tuple[str, ...]]:
        found: dict[str, list[str]] = {}
        for node in self.layers:
            for source in dict.fromkeys(node.inputs):
                found.setdefault(source, []).append(node.name)
        return {k: tuple(v) for k, v in found.items()}

    @property
    def outputs(self) -> tuple[LayerResult, ...]:
        """The output nodes: the spec's [output], else the last node."""
        return tuple(self._by_name[n] for n in self.spec.output_names)

    @property
    def output_shape(self) -> Shape:
        """The (first) output node's shape."""
        return self.outputs[0].out_shape if self.layers else self.input_shape

    def ancestors(self, names: tuple[str, ...] | list[str], owners: bool = False) -> set[str]:
        """The nodes ``names`` depend on, themselves included (``"input"`` left out); with
        ``owners``, also the nodes whose modules shared nodes among them apply."""
        found: set[str] = set()
        stack = list(names)
        while stack:
            name = stack.pop()
            if name == INPUT or name in found:
                continue
            found.add(name)
            node = self.node(name)
            stack.extend(node.inputs)
            if owners and node.shared_with:
                stack.append(node.shared_with)
        return found

    @cached_property
    def module_tree(self) -> tuple[Any, ...]:
        """The folders of dotted names and the nodes, as ``analysis.tree.TreeRow`` (pre-order)."""
        from archcalc.analysis.tree import build_tree

        return build_tree(self)

    @cached_property
    def is_sequential(self) -> bool:
        """True for a plain chain: every node takes the one above, nothing shared, the last is the output."""
        return is_chain(self.layers, self.spec.output_names)


def is_chain(nodes: tuple[LayerResult, ...] | list[LayerResult], outputs: tuple[str, ...]) -> bool:
    """Every node takes the one above (the first, the input), none is shared, the last is the output."""
    previous = INPUT
    for node in nodes:
        if node.inputs != (previous,) or node.shared_with is not None:
            return False
        previous = node.name
    return tuple(outputs) == (previous,)


def analyze(spec: ModelSpec, overrides: Mapping[str, int] | None = None) -> Analysis:
    """Derive every node's shapes and parameters, symbolically, and check the conditions.

    ``overrides`` bind symbols (over the spec's ``[symbols]``). Raises ``UsageError`` for a name
    that is not a symbol of the spec, ``ShapeError`` for a size that becomes impossible (naming
    the layer, and the symbol values where they break a condition).
    """
    overrides = dict(overrides or {})
    for name, value in overrides.items():
        if name not in spec.symbol_names:
            known = ", ".join(spec.symbol_names) or "none"
            raise UsageError(f"{spec.source} has no symbol {name!r}"
                             f"{suggest(name, list(spec.symbol_names))} (symbols: {known})")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"symbol {name} must be a positive integer, got {value!r}")
    values = {**spec.symbols, **overrides}
    input_shape: Shape = tuple(symbol(s) if isinstance(s, str) else s for s in spec.input_shape)
    shapes: dict[str, Shape] = {INPUT: input_shape}
    tracker = Conditions(spec, values)
    results: list[LayerResult] = []
    by_name: dict[str, LayerResult] = {}
    total: Size = 0
    trainable: Size = 0
    for layer in spec.layers:
        in_shapes = tuple(shapes[name] for name in layer.inputs)
        original = by_name[layer.same_as] if layer.same_as else None
        result = _analyze_layer(spec, layer, in_shapes, tracker, original)
        results.append(result)
        by_name[layer.name] = result
        shapes[layer.name] = result.out_shape
        total = as_size(total + result.params)
        trainable = as_size(trainable + result.trainable_params)
    tracker.check_values()
    return Analysis(spec=spec, values=values, layers=tuple(results),
                    conditions=tuple(tracker.conditions), ranges=dict(tracker.ranges),
                    total_params=total, trainable_params=trainable, input_shape=input_shape,
                    unsolved=tuple(tracker.unsolved))


def _analyze_layer(spec: ModelSpec, layer: LayerSpec, in_shapes: tuple[Shape, ...], tracker: Conditions,
                   original: LayerResult | None) -> LayerResult:
    kind = get_kind(layer.type)
    assert kind is not None  # the reader validated the type
    where = f"{spec.source}:{layer.line}" if layer.line else spec.source
    _check_indices(spec, layer, kind, where)
    for shape, source in zip(in_shapes, layer.inputs, strict=True):
        if kind.ranks is not None and len(shape) not in kind.ranks:
            of = f" (from {source!r})" if len(in_shapes) > 1 else ""
            raise ShapeError(f"{layer.label} takes a per-sample input {kind.rank_doc}, "
                             f"got {shape_str(shape)}{of} ({len(shape)} axes)", source=where)
    try:
        step = kind.apply_all(in_shapes, layer.args)
        if original is not None:
            _same_module(kind, layer, original, in_shapes[0], step)
            counted_n, formula = 0, f"shared with {original.name}"
        else:
            counted = kind.params(in_shapes[0], layer.args)
            counted_n, formula = counted.n, counted.formula
    except ArgError as exc:
        raise ShapeError(f"{layer.label}: {_name_inputs(str(exc), layer)}", source=where) from None
    for what, expr, op, value in step.conditions:
        cond = Condition(layer.index, layer.name, _name_inputs(what, layer), expr, op, value)
        tracker.add(cond, layer, where)
    return LayerResult(
        layer=layer, kind=kind, in_shapes=in_shapes,
        out_shape=tuple(as_size(s) for s in step.out_shape), params=counted_n,
        trainable_params=counted_n if layer.trainable else 0, params_formula=formula,
        derivation=tuple(step.derivation), description=kind.describe(layer.args),
    )


def _check_indices(spec: ModelSpec, layer: LayerSpec, kind: LayerKind, where: str) -> None:
    """Indices (``[input] dtype = "long"``) go to Embedding kinds only, and those take nothing else."""
    takes = getattr(kind, "takes_indices", False)
    reads_input = INPUT in layer.inputs
    if spec.input_dtype == "long" and reads_input and not takes:
        raise ShapeError(f"{layer.label} reads the model input, which holds indices ([input] dtype = \"long\"): "
                         "only Embedding and EmbeddingBag take indices", source=where)
    if takes and not (reads_input and spec.input_dtype == "long"):
        raise ShapeError(f"{layer.label} takes indices: its input must be the model input, with "
                         "[input] dtype = \"long\"", source=where)


def _same_module(kind: LayerKind, layer: LayerSpec, original: LayerResult, shape: Shape, step: Step) -> None:
    """A shared module must fit its new input: the sizes it was built with must agree."""
    theirs = _module_sizes(kind, original.in_shape, layer.args)
    ours = _module_sizes(kind, shape, layer.args)
    for key, built in theirs.items():
        for i, (a, b) in enumerate(zip(_items(built), _items(ours[key]), strict=True)):
            what = f"{key}{f'[{i}]' if isinstance(built, (list, tuple)) else ''} of the module shared with " \
                   f"{original.name!r}"
            step.need_equal(what, b, a)


def _module_sizes(kind: LayerKind, shape: Shape, args: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor arguments a module takes from its input shape (in_features, ...)."""
    try:
        full = kind.torch_kwargs(shape, args)
    except ArgError:
        return {"input shape": list(shape)}
    return {k: v for k, v in full.items() if args.get(k) is not v}


def _items(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


_INPUT_REF = re.compile(r"\binput (\d+)\b")


def _name_inputs(text: str, layer: LayerSpec) -> str:
    """A merge kind says ``input 2``; the message names the node: ``'pool1'``."""
    if len(layer.inputs) < 2:
        return text

    def name(match: re.Match[str]) -> str:
        i = int(match.group(1)) - 1
        return repr(layer.inputs[i]) if 0 <= i < len(layer.inputs) else match.group(0)
    return _INPUT_REF.sub(name, text)
