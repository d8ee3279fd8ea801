"""Flatten, Identity and the dropouts: no parameters, shape kept or merged."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from archcalc.layers.registry import (
    Arg,
    ArgError,
    LayerKind,
    Step,
    bool_arg,
    dim_arg,
    float_arg,
    mul_str,
    product,
    register,
    shape_words,
)
from archcalc.symbolic import Size


@register
class Flatten(LayerKind):
    type = "Flatten"
    args: ClassVar[dict[str, Arg]] = {"start_dim": dim_arg(1), "end_dim": dim_arg(-1)}
    rank_doc = "any; start_dim/end_dim count the batch axis, as in torch"
    family = "reshape"

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        full = len(shape) + 1  # torch counts the batch axis
        start, end = args["start_dim"], args["end_dim"]
        for name, dim in (("start_dim", start), ("end_dim", end)):
            if not -full <= dim < full:
                raise ArgError(f"{name} = {dim} is out of range for a {full}-d input "
                               f"(batch axis included): use {-full}..{full - 1}")
        start, end = start % full, end % full
        if start == 0:
            raise ArgError("start_dim = 0 would merge the batch axis into the features")
        if end < start:
            raise ArgError(f"end_dim = {args['end_dim']} comes before start_dim = {args['start_dim']}")
        merged = shape[start - 1:end]
        size = product(list(merged))
        step = Step((*shape[:start - 1], size, *shape[end:]))
        step.derivation.append((f"flatten: {' x '.join(mul_str(m) for m in merged)}", size))
        return step

    def spans_input(self) -> bool:
        return True

    def words(self, args: Mapping[str, Any], in_shapes: tuple[tuple[Size, ...], ...],
              out_shape: tuple[Size, ...]) -> str:
        return f"Flatten: {shape_words(in_shapes[0])} = {shape_words(out_shape)} features"


@register
class Identity(LayerKind):
    type = "Identity"
    words_name = "identity"
    args: ClassVar[dict[str, Arg]] = {}


@register
class Dropout(LayerKind):
    type = "Dropout"
    args: ClassVar[dict[str, Arg]] = {"p": float_arg(0.5, lo=0.0, hi=1.0), "inplace": bool_arg(False)}
    family = "dropout"

    def describe(self, args: Mapping[str, Any]) -> str:
        return f"p={args['p']:g}"

    def words(self, args: Mapping[str, Any], in_shapes: tuple[tuple[Size, ...], ...],
              out_shape: tuple[Size, ...]) -> str:
        return f"Dropout with p = {args['p']:g}"


class _ChannelDropout(Dropout):
    """Drops whole channels: the per-sample input is (C, *spatial), as torch's batched form."""

    def words(self, args: Mapping[str, Any], in_shapes: tuple[tuple[Size, ...], ...],
              out_shape: tuple[Size, ...]) -> str:
        return f"{self.type}: whole channels dropped with p = {args['p']:g}"


@register
class Dropout1d(_ChannelDropout):
    type = "Dropout1d"
    ranks = (2,)
    rank_doc = "(C, L)"


@register
class Dropout2d(_ChannelDropout):
    type = "Dropout2d"
    ranks = (3,)
    rank_doc = "(C, H, W)"


@register
class Dropout3d(_ChannelDropout):
    type = "Dropout3d"
    ranks = (4,)
    rank_doc = "(C, D, H, W)"


@register
class AlphaDropout(Dropout):
    """Dropout that keeps the mean and variance of SELU activations."""

    type = "AlphaDropout"
