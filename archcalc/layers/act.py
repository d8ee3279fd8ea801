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
from archcalc.symbolic import Size, size_str


class _Activation(LayerKind):
    family = "activation"


@register
class ReLU(_Activation):
    type = "ReLU"
    args: ClassVar[dict[str, Arg]] = {"inplace": bool_arg(False)}
    words_name = "ReLU activation"


@register
class ReLU6(_Activation):
    type = "ReLU6"
    args: ClassVar[dict[str, Arg]] = {"inplace": bool_arg(False)}
    words_name = "ReLU6 activation (clipped at 6)"


@register
class LeakyReLU(_Activation):
    type = "LeakyReLU"
    args: ClassVar[dict[str, Arg]] = {"negative_slope": float_arg(0.01), "inplace": bool_arg(False)}
    words_name = "leaky ReLU activation"


@register
class ELU(_Activation):
    type = "ELU"
    args: ClassVar[dict[str, Arg]] = {"alpha": float_arg(1.0), "inplace": bool_arg(False)}
    words_name = "ELU activation"


@register
class GELU(_Activation):
    type = "GELU"
    args: ClassVar[dict[str, Arg]] = {"approximate": choice_arg(("none", "tanh"), "none")}
    words_name = "GELU activation"


@register
class SiLU(_Activation):
    type = "SiLU"
    args: ClassVar[dict[str, Arg]] = {"inplace": bool_arg(False)}
    words_name = "SiLU activation"


@register
class Sigmoid(_Activation):
    type = "Sigmoid"
    words_name = "sigmoid activation"


@register
class Tanh(_Activation):
    type = "Tanh"
    words_name = "tanh activation"


class _SoftmaxLike(LayerKind):
    args: ClassVar[dict[str, Arg]] = {"dim": dim_arg(None)}
    family = "softmax"
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

    def words(self, args: Mapping[str, Any], in_shapes: tuple[tuple[Size, ...], ...],
              out_shape: tuple[Size, ...]) -> str:
        return f"{self.type} over the {size_str(out_shape[-1])} outputs"


@register
class Softmax(_SoftmaxLike):
    type = "Softmax"


@register
class LogSoftmax(_SoftmaxLike):
    type = "LogSoftmax"
