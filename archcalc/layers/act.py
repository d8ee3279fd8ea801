"""Activations and (log-)softmax: shape unchanged and no parameters, except PReLU (a learned
slope per channel or one for all) and GLU (halves its dim)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from archcalc.layers.registry import (
    REQUIRED,
    Arg,
    ArgError,
    LayerKind,
    ParamCount,
    Step,
    bool_arg,
    choice_arg,
    dim_arg,
    float_arg,
    int_arg,
    register,
    sample_axis,
    shape_words,
)
from archcalc.symbolic import Size, floor_div, size_str


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


def _simple(name: str, words: str, inplace: bool = False, **args: Arg) -> None:
    """An elementwise activation without parameters, registered under torch's name."""
    own: dict[str, Arg] = {**args, **({"inplace": bool_arg(False)} if inplace else {})}
    register(type(name, (_Activation,), {"type": name, "args": own, "words_name": words}))


_simple("Hardswish", "hard swish activation", inplace=True)
_simple("Hardsigmoid", "hard sigmoid activation", inplace=True)
_simple("Mish", "Mish activation", inplace=True)
_simple("Softplus", "softplus activation", beta=float_arg(1.0), threshold=float_arg(20.0))
_simple("Softsign", "softsign activation")
_simple("Tanhshrink", "tanhshrink activation (x - tanh x)")
_simple("Threshold", "threshold activation", inplace=True, threshold=float_arg(REQUIRED),
        value=float_arg(REQUIRED))


@register
class Hardtanh(_Activation):
    type = "Hardtanh"
    args: ClassVar[dict[str, Arg]] = {"min_val": float_arg(-1.0), "max_val": float_arg(1.0),
                                      "inplace": bool_arg(False)}
    words_name = "hard tanh activation"

    def check_args(self, args: Mapping[str, Any]) -> None:
        if args["max_val"] <= args["min_val"]:
            raise ArgError(f"max_val = {args['max_val']:g} must be greater than min_val = {args['min_val']:g} "
                           "(torch refuses it)")

    def describe(self, args: Mapping[str, Any]) -> str:
        return f"[{args['min_val']:g}, {args['max_val']:g}]"


@register
class PReLU(_Activation):
    """A learned negative slope: one for all channels, or one per channel (torch's dim 1)."""

    type = "PReLU"
    args: ClassVar[dict[str, Arg]] = {"num_parameters": int_arg(default=1), "init": float_arg(0.25)}
    words_name = "PReLU activation"

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        step = Step(tuple(shape))
        n = args["num_parameters"]
        if n > 1:
            step.need_equal(f"num_parameters = {n} must be 1 or the channels (dim 1)", shape[0], n)
        return step

    def params(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> ParamCount:
        n = args["num_parameters"]
        return ParamCount(n, f"{n} (slope{'s' if n > 1 else ''})")

    def param_shapes(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> dict[str, tuple[Size, ...]]:
        return {"weight": (args["num_parameters"],)}

    def describe(self, args: Mapping[str, Any]) -> str:
        return "" if args["num_parameters"] == 1 else f"x{args['num_parameters']}"


@register
class GLU(_Activation):
    """Gated linear unit: the first half of ``dim`` times the sigmoid of the second."""

    type = "GLU"
    args: ClassVar[dict[str, Arg]] = {"dim": dim_arg(-1)}
    rank_doc = "any; dim counts the batch axis, as in torch"
    words_name = "gated linear unit"

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        axis = sample_axis(args["dim"], len(shape))
        step = Step(())
        step.need_multiple(f"dim {axis + 1} (halved)", shape[axis], 2)
        half = floor_div(shape[axis], 0, 2)
        step.out_shape = (*shape[:axis], half, *shape[axis + 1:])
        step.derivation.append((f"dim {axis + 1}: {size_str(shape[axis])} / 2", half))
        return step

    def describe(self, args: Mapping[str, Any]) -> str:
        return f"dim={args['dim']}"

    def words(self, args: Mapping[str, Any], in_shapes: tuple[tuple[Size, ...], ...],
              out_shape: tuple[Size, ...]) -> str:
        return f"gated linear unit over dim {args['dim']} (halves it); output {shape_words(out_shape)}"


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


@register
class Softmax2d(LayerKind):
    """Softmax over the channels of each pixel."""

    type = "Softmax2d"
    family = "softmax"
    args: ClassVar[dict[str, Arg]] = {}
    ranks = (3,)
    rank_doc = "(C, H, W)"

    def words(self, args: Mapping[str, Any], in_shapes: tuple[tuple[Size, ...], ...],
              out_shape: tuple[Size, ...]) -> str:
        return f"Softmax2d over the {size_str(out_shape[0])} channels of each pixel"
