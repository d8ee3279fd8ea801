"""Merge kinds: where branches of a graph meet (residual adds, SE gates, concatenations).

They have no ``torch.nn`` class; ``archcalc.pytorch.ops`` gives each a tiny module, so every node
of a built graph is a module. Shapes follow torch: ``Add``/``Mul`` broadcast (a size 1 stretches),
``Cat`` sums the sizes along ``dim`` (the batch axis counted, as ``torch.cat``) and needs the other
axes equal. Where two sizes must agree symbolically, the condition goes to the analysis, which
solves it exactly (``H ≡ 0 (mod 16)``). A symbolic size is never taken as a broadcastable 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from archcalc.layers.registry import Arg, ArgError, LayerKind, Step, dim_arg, register, shape_words
from archcalc.symbolic import Size, as_size, is_number, shape_str, size_str

AXIS_NAMES = {3: ("C", "H", "W"), 4: ("C", "D", "H", "W"), 2: ("C", "L")}


def dim_label(axis: int, rank: int) -> str:
    """``dim 2 (H)``: torch's dim (batch counted) of a per-sample axis, with its usual name."""
    names = AXIS_NAMES.get(rank)
    return f"dim {axis + 1}" + (f" ({names[axis]})" if names else "")


def _same_rank(shapes: tuple[tuple[Size, ...], ...], verb: str) -> int:
    rank = len(shapes[0])
    for i, shape in enumerate(shapes[1:], start=2):
        if len(shape) != rank:
            raise ArgError(f"cannot {verb} input 1 {shape_str(shapes[0])} and input {i} {shape_str(shape)}: "
                           f"they need the same number of axes")
    return rank


class _Elementwise(LayerKind):
    """``Add``/``Mul`` of two or more inputs, with torch's broadcasting per axis."""

    family = "merge"
    arity = None
    args: ClassVar[dict[str, Arg]] = {}
    verb: ClassVar[str] = ""
    op: ClassVar[str] = ""

    def apply_all(self, shapes: tuple[tuple[Size, ...], ...], args: Mapping[str, Any]) -> Step:
        rank = _same_rank(shapes, self.verb)
        out = list(shapes[0])
        step = Step(())
        for i, shape in enumerate(shapes[1:], start=2):
            for axis, (a, b) in enumerate(zip(out, shape, strict=True)):
                if a == b or b == 1:
                    continue
                if a == 1:
                    out[axis] = b
                    continue
                what = f"{dim_label(axis, rank)} of input 1 and input {i}"
                if is_number(a) and is_number(b):
                    raise ArgError(f"cannot {self.verb} {shape_str(shapes[0])} and {shape_str(shape)} "
                                   f"(input {i}): {what} differ ({a} vs {b}) and neither is 1")
                step.need_equal(f"{what} must agree", a, b)
        step.out_shape = tuple(out)
        step.derivation.append((f"{self.op.join(shape_str(s) for s in shapes)} (broadcast)", out[0]))
        return step

    def build_module(self, torch: Any, kwargs: Mapping[str, Any]) -> Any:
        from archcalc.pytorch import ops

        return getattr(ops, self.type)()

    def words(self, args: Mapping[str, Any], in_shapes: tuple[tuple[Size, ...], ...],
              out_shape: tuple[Size, ...]) -> str:
        return f"{self.words_name} of {len(in_shapes)} inputs; output {shape_words(out_shape)}"


@register
class Add(_Elementwise):
    type = "Add"
    verb = "add"
    op = " + "
    words_name = "elementwise sum"


@register
class Mul(_Elementwise):
    type = "Mul"
    verb = "multiply"
    op = " * "
    words_name = "elementwise product"


@register
class Cat(LayerKind):
    type = "Cat"
    family = "merge"
    arity = None
    args: ClassVar[dict[str, Arg]] = {"dim": dim_arg(1)}
    rank_doc = "any; dim counts the batch axis, as in torch.cat"

    def apply_all(self, shapes: tuple[tuple[Size, ...], ...], args: Mapping[str, Any]) -> Step:
        rank = _same_rank(shapes, "concatenate")
        full = rank + 1
        dim = args["dim"]
        if not -full <= dim < full:
            raise ArgError(f"dim = {dim} is out of range for a {full}-d input (batch axis included): "
                           f"use {-full}..{full - 1}")
        if dim % full == 0:
            raise ArgError("dim = 0 would concatenate along the batch axis")
        axis = dim % full - 1
        step = Step(())
        total: Size = 0
        for i, shape in enumerate(shapes, start=1):
            total = as_size(total + shape[axis])
            for other in range(rank):
                if other != axis and i > 1:
                    step.need_equal(f"{dim_label(other, rank)} of input 1 and input {i} must agree",
                                    shapes[0][other], shape[other])
        out = list(shapes[0])
        out[axis] = total
        step.out_shape = tuple(out)
        parts = " + ".join(size_str(s[axis]) for s in shapes)
        step.derivation.append((f"{dim_label(axis, rank)}: {parts}", total))
        return step

    def describe(self, args: Mapping[str, Any]) -> str:
        return f"dim={args['dim']}"

    def build_module(self, torch: Any, kwargs: Mapping[str, Any]) -> Any:
        from archcalc.pytorch.ops import Cat

        return Cat(**kwargs)

    def words(self, args: Mapping[str, Any], in_shapes: tuple[tuple[Size, ...], ...],
              out_shape: tuple[Size, ...]) -> str:
        return (f"concatenation of {len(in_shapes)} inputs along dim {args['dim']}; "
                f"output {shape_words(out_shape)}")
