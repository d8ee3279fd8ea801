"""Normalization layers: BatchNorm1d/2d/3d, InstanceNorm1d/2d/3d, GroupNorm, LayerNorm, RMSNorm and
LocalResponseNorm. Shapes are unchanged; the affine weights are per channel (``num_features``,
``num_channels``) or per normalized element (``normalized_shape``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from archcalc.layers.registry import (
    INFERRED,
    Arg,
    ArgError,
    LayerKind,
    ParamCount,
    Step,
    bool_arg,
    float_arg,
    int_arg,
    mul_str,
    product,
    register,
    shape_words,
)
from archcalc.symbolic import Size, as_size, is_number, size_str


def _bn_args() -> dict[str, Arg]:
    return {
        "num_features": int_arg(default=INFERRED),
        "eps": float_arg(1e-5, lo=0.0, lo_open=True),
        "momentum": float_arg(0.1, lo=0.0, hi=1.0),
        "affine": bool_arg(True),
        "track_running_stats": bool_arg(True),
    }


class _Norm(LayerKind):
    family = "norm"

    def words(self, args: Mapping[str, Any], in_shapes: tuple[tuple[Size, ...], ...],
              out_shape: tuple[Size, ...]) -> str:
        return f"{self.type}: normalization; output {shape_words(out_shape)}"


class _BatchNorm(_Norm):
    has_batch_stats = True

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        step = Step(tuple(shape))
        step.infer("num_features", args["num_features"], shape[0])
        step.derivation.append(("shape unchanged", shape[0]))
        return step

    def params(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> ParamCount:
        if not args["affine"]:
            return ParamCount(0, "0 (affine = false)")
        c = shape[0] if args["num_features"] is INFERRED else args["num_features"]
        return ParamCount(as_size(2 * c), f"2*{mul_str(c)} (weight and bias)")

    def param_shapes(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> dict[str, tuple[Size, ...]]:
        c = shape[0] if args["num_features"] is INFERRED else args["num_features"]
        return {"weight": (c,), "bias": (c,)} if args["affine"] else {}

    def torch_kwargs(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> dict[str, Any]:
        return {**args, "num_features": shape[0]}


@register
class BatchNorm1d(_BatchNorm):
    type = "BatchNorm1d"
    args = _bn_args()
    ranks = (1, 2)
    rank_doc = "(C) or (C, L)"


@register
class BatchNorm2d(_BatchNorm):
    type = "BatchNorm2d"
    args = _bn_args()
    ranks = (3,)
    rank_doc = "(C, H, W)"


@register
class BatchNorm3d(_BatchNorm):
    type = "BatchNorm3d"
    args = _bn_args()
    ranks = (4,)
    rank_doc = "(C, D, H, W)"


class _InstanceNorm(_BatchNorm):
    """Per sample and channel, over the spatial axes: no batch statistics. torch refuses a single
    value per channel (when training, or without running stats); archcalc refuses it always, and a
    written num_features that disagrees with the input (torch only warns when affine = false)."""

    has_batch_stats = False

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        step = super().apply(shape, args)
        spatial = product(list(shape[1:]))
        if is_number(spatial):
            if spatial < 2:
                raise ArgError(f"needs more than one value per channel, got {spatial} "
                               f"(input {[size_str(s) for s in shape]}): torch refuses it when training")
        else:
            step.conditions.append(("spatial values per channel (more than one)", spatial, ">=", 2))
        return step


def _in_args() -> dict[str, Arg]:
    return {**_bn_args(), "affine": bool_arg(False), "track_running_stats": bool_arg(False)}


@register
class InstanceNorm1d(_InstanceNorm):
    type = "InstanceNorm1d"
    args = _in_args()
    ranks = (2,)
    rank_doc = "(C, L)"


@register
class InstanceNorm2d(_InstanceNorm):
    type = "InstanceNorm2d"
    args = _in_args()
    ranks = (3,)
    rank_doc = "(C, H, W)"


@register
class InstanceNorm3d(_InstanceNorm):
    type = "InstanceNorm3d"
    args = _in_args()
    ranks = (4,)
    rank_doc = "(C, D, H, W)"


@register
class GroupNorm(_Norm):
    type = "GroupNorm"
    args: ClassVar[dict[str, Arg]] = {  # torch's order
        "num_groups": int_arg(),
        "num_channels": int_arg(default=INFERRED),
        "eps": float_arg(1e-5, lo=0.0, lo_open=True),
        "affine": bool_arg(True),
    }
    rank_doc = "(C, ...)"

    def check_args(self, args: Mapping[str, Any]) -> None:
        channels, groups = args["num_channels"], args["num_groups"]
        if channels is not INFERRED and channels % groups:
            raise ArgError(f"num_channels = {channels} is not divisible by num_groups = {groups} (torch refuses it)")

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        step = Step(tuple(shape))
        channels = step.infer("num_channels", args["num_channels"], shape[0])
        step.need_multiple(f"num_channels (num_groups = {args['num_groups']})", channels, args["num_groups"])
        step.derivation.append(("shape unchanged", shape[0]))
        return step

    def params(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> ParamCount:
        if not args["affine"]:
            return ParamCount(0, "0 (affine = false)")
        return ParamCount(as_size(2 * shape[0]), f"2*{mul_str(shape[0])} (weight and bias)")

    def param_shapes(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> dict[str, tuple[Size, ...]]:
        return {"weight": (shape[0],), "bias": (shape[0],)} if args["affine"] else {}

    def torch_kwargs(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> dict[str, Any]:
        return {**args, "num_channels": shape[0]}

    def describe(self, args: Mapping[str, Any]) -> str:
        return f"{args['num_groups']} groups"


@register
class LocalResponseNorm(_Norm):
    type = "LocalResponseNorm"
    args: ClassVar[dict[str, Arg]] = {
        "size": int_arg(),
        "alpha": float_arg(1e-4),
        "beta": float_arg(0.75),
        "k": float_arg(1.0),
    }
    ranks = (2, 3, 4, 5, 6, 7)
    rank_doc = "(C, ...) with at least one axis after C"

    def describe(self, args: Mapping[str, Any]) -> str:
        return f"size={args['size']}"


def _normalized_shape(value: Any) -> Any:
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in items):
        raise ArgError(f"must be a positive integer or a list of them, got {value!r}")
    return tuple(items)


@register
class LayerNorm(_Norm):
    """LayerNorm over the last axes: a weight and a bias of ``normalized_shape``."""

    type = "LayerNorm"
    args: ClassVar[dict[str, Arg]] = {
        # torch requires it; archcalc infers the last axis when it is left out
        "normalized_shape": Arg(_normalized_shape, INFERRED),
        "eps": float_arg(1e-5, lo=0.0, lo_open=True),
        "elementwise_affine": bool_arg(True),
        "bias": bool_arg(True),
    }
    rank_doc = "(..., *normalized_shape)"

    def _shape(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> tuple[Size, ...]:
        written = args["normalized_shape"]
        if written is INFERRED:
            return shape[-1:]
        if len(written) > len(shape):
            raise ArgError(f"normalized_shape {list(written)} has more axes than the input {len(shape)}")
        return tuple(written)

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        step = Step(tuple(shape))
        norm = self._shape(shape, args)
        tail = shape[len(shape) - len(norm):]
        for i, (want, have) in enumerate(zip(norm, tail)):
            step.infer(f"normalized_shape[{i}]", want if args["normalized_shape"] is not INFERRED
                       else INFERRED, have)
        step.derivation.append(("shape unchanged", product(list(tail))))
        return step

    def params(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> ParamCount:
        if not args["elementwise_affine"]:
            return ParamCount(0, "0 (elementwise_affine = false)")
        norm = self._shape(shape, args)
        count = product(list(norm))
        per = 2 if args["bias"] else 1
        what = "weight and bias" if per == 2 else "weight"
        return ParamCount(as_size(per * count), f"{per}*{mul_str(*norm)} ({what})")

    def param_shapes(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> dict[str, tuple[Size, ...]]:
        if not args["elementwise_affine"]:
            return {}
        norm = tuple(self._shape(shape, args))
        return {"weight": norm, "bias": norm} if args["bias"] else {"weight": norm}

    def torch_kwargs(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> dict[str, Any]:
        norm = self._shape(shape, args)
        if not all(is_number(n) for n in norm):
            raise ArgError(f"normalized_shape {[size_str(n) for n in norm]} is not a number")
        return {**args, "normalized_shape": list(norm)}


@register
class RMSNorm(LayerNorm):
    """RMSNorm: as LayerNorm, with a weight and no bias."""

    type = "RMSNorm"
    args: ClassVar[dict[str, Arg]] = {
        "normalized_shape": Arg(_normalized_shape, INFERRED),
        "eps": float_arg(None, lo=0.0, lo_open=True),  # None: torch's finfo(dtype).eps
        "elementwise_affine": bool_arg(True),
    }

    def params(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> ParamCount:
        if not args["elementwise_affine"]:
            return ParamCount(0, "0 (elementwise_affine = false)")
        norm = self._shape(shape, args)
        return ParamCount(product(list(norm)), f"{mul_str(*norm)} (weight)")

    def param_shapes(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> dict[str, tuple[Size, ...]]:
        return {"weight": tuple(self._shape(shape, args))} if args["elementwise_affine"] else {}
