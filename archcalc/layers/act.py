"""Activations and (log-)softmax: shape unchanged, no parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from archcalc.layers.registry import (
    Arg,
    ArgError,
    LayerKind,
    Step,
    bool_arg,
    choice_arg,
    dim_arg,
    float_arg,
    register,
)
from archcalc.symbolic import Size


def _simple(name: str, **args: Any) -> None:
    register(type(name, (LayerKind,), {"type": name, "args": args}))


_simple("ReLU", inplace=bool_arg(False))
_simple("LeakyReLU", negative_slope=float_arg(0.01), inplace=bool_arg(False))
_simple("ELU", alpha=float_arg(1.0), inplace=bool_arg(False))
_simple("GELU", approximate=choice_arg(("none", "tanh"), "none"))
_simple("SiLU", inplace=bool_arg(False))
_simple("Sigmoid")
_simple("Tanh")


class _SoftmaxLike(LayerKind):
    args: ClassVar[dict[str, Arg]] = {"dim": dim_arg(None)}
    rank_doc = "any; dim counts the batch axis, as in torch"

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        full = len(shape) + 1
        dim = args["dim"]
        if dim is not None and not -full <= dim < full:
            raise ArgError(f"dim = {dim} is out of range for a {full}-d input "
                           f"(batch axis included): use {-full}..{full - 1}")
        return Step(tuple(shape))

    def describe(self, args: Mapping[str, Any]) -> str:
        return "" if args["dim"] is None else f"dim={args['dim']}"


@register
class Softmax(_SoftmaxLike):
    type = "Softmax"


@register
class LogSoftmax(_SoftmaxLike):
    type = "LogSoftmax"
