"""Padding layers: ZeroPad, ConstantPad, ReflectionPad, ReplicationPad and CircularPad, 1d to 3d.

``padding`` is an int (every side) or torch's tuple ``(left, right, top, bottom, front, back)``,
starting from the last axis; a negative entry crops. Each padded axis becomes
``n + before + after`` (at least 1); zero, constant and circular padding crop first, so the input
must hold what is cropped (torch runs a circular padding that crops more than the input on one
side and pads the other, wrapping whatever its slices hold; archcalc refuses it). torch's limits: reflection needs each pad smaller than the
axis (``n >= pad + 1``), circular padding at most the axis (``n >= pad``); for a symbolic size
they are conditions on the symbols. Zero and constant padding pad the last axes of any input with
that many axes; the others take torch's (C, *spatial) form, or the spatial axes alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from archcalc.layers.merge import dim_label
from archcalc.layers.registry import (
    REQUIRED,
    Arg,
    ArgError,
    LayerKind,
    Step,
    factor_str,
    float_arg,
    register,
    shape_words,
)
from archcalc.symbolic import Size, as_size


def _padding_arg(dims: int) -> Arg:
    def check(value: Any) -> Any:
        items = [value] if isinstance(value, int) else value
        if not isinstance(items, (list, tuple)) or (not isinstance(value, int) and len(items) != 2 * dims) \
                or any(not isinstance(v, int) or isinstance(v, bool) for v in items):
            raise ArgError(f"must be an integer or a list of {2 * dims} integers "
                           f"({', '.join(_SIDES[:2 * dims])}), got {value!r}")
        return tuple(value) if isinstance(value, (list, tuple)) else value
    return Arg(check)


_SIDES = ("left", "right", "top", "bottom", "front", "back")


class _Pad(LayerKind):
    family = "pad"
    dims: ClassVar[int] = 1
    mode: ClassVar[str] = "constant"

    def pairs(self, args: Mapping[str, Any]) -> list[tuple[int, int]]:
        """(before, after) for the last axis, the one before it, ... (torch's order)."""
        pad = args["padding"]
        flat = (pad,) * (2 * self.dims) if isinstance(pad, int) else pad
        return [(flat[2 * i], flat[2 * i + 1]) for i in range(self.dims)]

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        out = list(shape)
        step = Step(())
        for i, (before, after) in enumerate(self.pairs(args)):
            axis = len(shape) - 1 - i
            n, label = shape[axis], dim_label(axis, len(shape))
            size = as_size(n + before + after)
            out[axis] = size
            step.derivation.append((f"{label}: {factor_str(n)} + {before} + {after}", size))
            step.need_positive(f"{label} after padding ({before}, {after})", size)
            most = max(before, after)
            if self.mode == "reflect" and most > 0:
                step.conditions.append((f"{label} (input, larger than the reflection padding {most})", n,
                                        ">=", most + 1))
            elif self.mode == "circular" and most > 0:
                step.conditions.append((f"{label} (input, at least the circular padding {most})", n, ">=", most))
            crop = -min(before, 0) - min(after, 0)
            if self.mode in ("constant", "circular") and crop and most > 0:  # torch crops, then pads
                step.conditions.append((f"{label} (input, at least the {crop} cropped)", n, ">=", crop))
        step.out_shape = tuple(out)
        return step

    def describe(self, args: Mapping[str, Any]) -> str:
        pad = args["padding"]
        return f"p{pad}" if isinstance(pad, int) else f"p{','.join(map(str, pad))}"

    def words(self, args: Mapping[str, Any], in_shapes: tuple[tuple[Size, ...], ...],
              out_shape: tuple[Size, ...]) -> str:
        how = {"constant": "zero" if self.type.startswith("Zero") else f"constant ({args.get('value', 0):g})",
               "reflect": "reflection", "replicate": "replication", "circular": "circular"}[self.mode]
        return f"{self.type}: {how} padding {args['padding']}; output {shape_words(out_shape)}"


def _pad(prefix: str, mode: str, dims: int) -> None:
    args: dict[str, Arg] = {"padding": _padding_arg(dims)}
    if prefix == "Constant":
        args["value"] = float_arg(REQUIRED)
    spatial = ", ".join(("D", "H", "W")[3 - dims:] if dims > 1 else ("L",))
    if mode == "constant":
        ranks: tuple[int, ...] = tuple(range(dims, 9))
        doc = f"at least {dims} ax{'es' if dims > 1 else 'is'}; the last {dims} are padded"
    else:
        ranks, doc = (dims, dims + 1), f"(C, {spatial}) or ({spatial})"
    name = f"{prefix}Pad{dims}d"
    register(type(name, (_Pad,), {"type": name, "dims": dims, "mode": mode, "args": args, "ranks": ranks,
                                  "rank_doc": doc}))


for _dims in (1, 2, 3):
    for _prefix, _mode in (("Zero", "constant"), ("Constant", "constant"), ("Reflection", "reflect"),
                           ("Replication", "replicate"), ("Circular", "circular")):
        _pad(_prefix, _mode, _dims)
