"""LPPool1d/2d (the floor formula of average pooling, without padding) and FractionalMaxPool2d
(pseudo-random windows to a fixed ``output_size``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from archcalc.layers.conv import AXES, _Pool
from archcalc.layers.registry import (
    REQUIRED,
    Arg,
    ArgError,
    LayerKind,
    Step,
    bool_arg,
    float_arg,
    int_arg,
    ntuple_arg,
    register,
    shape_words,
)
from archcalc.symbolic import Size, ntuple


class _LPPool(_Pool):
    """``(sum x^p)^(1/p)`` over each window: torch computes it as an average pool of ``x^p`` with
    padding 0, so the output size is average pooling's (``ceil_mode`` included)."""

    def words(self, args: Mapping[str, Any], in_shapes: tuple[tuple[Size, ...], ...],
              out_shape: tuple[Size, ...]) -> str:
        k = "×".join(map(str, self.windows(args)[0]))
        stride = args["stride"] if args["stride"] is not None else args["kernel_size"]
        return (f"{self.type}: power-{args['norm_type']:g} pooling over {k} windows, stride {stride}; "
                f"output {shape_words(out_shape)}")

    def describe(self, args: Mapping[str, Any]) -> str:
        return f"p={args['norm_type']:g} {super().describe(args)}"


def _lp_args(dims: int) -> dict[str, Arg]:
    return {  # torch's order; LPPool1d multiplies by kernel_size, so it takes an int only
        "norm_type": float_arg(REQUIRED, lo=0.0, lo_open=True),
        "kernel_size": ntuple_arg(dims) if dims > 1 else int_arg(),
        "stride": ntuple_arg(dims, default=None, allow_none=True),
        "ceil_mode": bool_arg(False),
    }


@register
class LPPool1d(_LPPool):
    type = "LPPool1d"
    dims = 1
    ranks = (2,)
    rank_doc = "(C, L)"
    args = _lp_args(1)


@register
class LPPool2d(_LPPool):
    type = "LPPool2d"
    dims = 2
    ranks = (3,)
    rank_doc = "(C, H, W)"
    args = _lp_args(2)


def _no_ratio(value: Any) -> Any:
    raise ArgError("is not supported: the size it gives depends on float rounding; write output_size")


def _no_indices(value: Any) -> Any:
    if value is not False:
        raise ArgError("= true returns a tuple, which a model cannot pass on")
    return value


@register
class FractionalMaxPool2d(LayerKind):
    """Max pooling over pseudo-random windows of ``kernel_size`` to exactly ``output_size``; torch
    needs ``output_size + kernel_size - 1 <= input`` on each axis."""

    type = "FractionalMaxPool2d"
    family = "pool"
    args: ClassVar[dict[str, Arg]] = {
        "kernel_size": ntuple_arg(2),
        "output_size": ntuple_arg(2),
        "output_ratio": Arg(_no_ratio, None),
        "return_indices": Arg(_no_indices, False),
    }
    ranks = (3,)
    rank_doc = "(C, H, W)"

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        k, out = ntuple(args["kernel_size"], 2), ntuple(args["output_size"], 2)
        step = Step((shape[0], *out))
        step.derivation.append(("C: unchanged", shape[0]))
        for axis, name in enumerate(AXES[2]):
            step.derivation.append((f"{name}: output_size", out[axis]))
            what = f"{name} (input, at least output_size {out[axis]} + kernel_size {k[axis]} - 1)"
            step.conditions.append((what, shape[1 + axis], ">=", out[axis] + k[axis] - 1))
        return step

    def describe(self, args: Mapping[str, Any]) -> str:
        k, out = ntuple(args["kernel_size"], 2), ntuple(args["output_size"], 2)
        return f"{'x'.join(map(str, k))} -> {list(out)}"

    def words(self, args: Mapping[str, Any], in_shapes: tuple[tuple[Size, ...], ...],
              out_shape: tuple[Size, ...]) -> str:
        k = "×".join(map(str, ntuple(args["kernel_size"], 2)))
        return f"FractionalMaxPool2d: max over pseudo-random {k} windows; output {shape_words(out_shape)}"

    def spans_input(self) -> bool:
        return True  # the windows are drawn at random: no fixed receptive field
