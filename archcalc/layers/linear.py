"""Linear: acts on the last axis, as in torch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from archcalc.layers.registry import (
    INFERRED,
    Arg,
    LayerKind,
    ParamCount,
    Step,
    bool_arg,
    int_arg,
    mul_str,
    product,
    register,
)
from archcalc.symbolic import Size, as_size, size_str


@register
class Linear(LayerKind):
    type = "Linear"
    args: ClassVar[dict[str, Arg]] = {
        "in_features": int_arg(default=INFERRED),
        "out_features": int_arg(),
        "bias": bool_arg(True),
    }
    rank_doc = "(..., in_features)"
    family = "linear"

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        step = Step((*shape[:-1], args["out_features"]))
        step.infer("in_features", args["in_features"], shape[-1])
        step.derivation.append(("last axis: out_features", args["out_features"]))
        return step

    def params(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> ParamCount:
        m = shape[-1] if args["in_features"] is INFERRED else args["in_features"]
        n = args["out_features"]
        weight = as_size(m * n)
        if args["bias"]:
            return ParamCount(as_size(weight + n), f"{mul_str(m, n)} + {n}")
        return ParamCount(weight, mul_str(m, n))

    def param_shapes(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> dict[str, tuple[Size, ...]]:
        m = shape[-1] if args["in_features"] is INFERRED else args["in_features"]
        n = args["out_features"]
        return {"weight": (n, m), "bias": (n,)} if args["bias"] else {"weight": (n, m)}

    def torch_kwargs(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> dict[str, Any]:
        return {**args, "in_features": shape[-1]}

    def describe(self, args: Mapping[str, Any]) -> str:
        return f"->{args['out_features']}"

    def macs(self, shape: tuple[Size, ...], out_shape: tuple[Size, ...], args: Mapping[str, Any]) -> Size:
        return as_size(product(list(shape)) * args["out_features"])

    def spans_input(self) -> bool:
        return True

    def words(self, args: Mapping[str, Any], in_shapes: tuple[tuple[Size, ...], ...],
              out_shape: tuple[Size, ...]) -> str:
        return f"Linear (fully connected): {size_str(in_shapes[0][-1])} → {args['out_features']}"
