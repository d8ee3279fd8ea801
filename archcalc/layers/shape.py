"""Axis moves and reductions: Permute, Transpose, Mean, Sum, Unflatten, PixelShuffle,
PixelUnshuffle and ChannelShuffle. No parameters.

Axes count the batch axis as torch does (``dims = [0, 2, 1]`` swaps the two axes of a per-sample
``[C, T]``), and the batch axis must stay where it is. ``Permute``, ``Transpose``, ``Mean`` and
``Sum`` are tensor methods in torch; ``archcalc.pytorch.ops`` gives each a module. A size that must
divide (PixelUnshuffle's ``H`` by the factor, Unflatten's ``-1``) becomes, for a symbol, a
condition solved into residues (``T ≡ 0 (mod 4)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from archcalc.layers.registry import (
    REQUIRED,
    Arg,
    ArgError,
    LayerKind,
    Step,
    bool_arg,
    dim_arg,
    dims_arg,
    int_arg,
    product,
    register,
    sample_axis,
    shape_words,
)
from archcalc.symbolic import Size, as_size, floor_div, is_number, size_str


class _Ops(LayerKind):
    """A kind built from ``archcalc.pytorch.ops``."""

    family = "reshape"

    def build_module(self, torch: Any, kwargs: Mapping[str, Any]) -> Any:
        from archcalc.pytorch import ops

        return getattr(ops, self.type)(**kwargs)


@register
class Permute(_Ops):
    type = "Permute"
    args: ClassVar[dict[str, Arg]] = {"dims": dims_arg(allow_int=False)}
    rank_doc = "any; dims count the batch axis, as in torch.permute"

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        dims, full = args["dims"], len(shape) + 1
        if len(dims) != full:
            raise ArgError(f"dims has {len(dims)} entries but the input has {full} axes (batch axis included)")
        for d in dims:
            if not -full <= d < full:
                raise ArgError(f"dims entry {d} is out of range for a {full}-d input (batch axis included): "
                               f"use {-full}..{full - 1}")
        order = [d % full for d in dims]
        if sorted(order) != list(range(full)):
            raise ArgError(f"dims {list(dims)} is not a permutation of 0..{full - 1}")
        if order[0] != 0:
            raise ArgError(f"dims {list(dims)} moves the batch axis: dims[0] must be 0")
        step = Step(tuple(shape[d - 1] for d in order[1:]))
        for i, d in enumerate(order[1:], start=1):
            step.derivation.append((f"dim {i}: input dim {d}", shape[d - 1]))
        return step

    def describe(self, args: Mapping[str, Any]) -> str:
        return f"dims={list(args['dims'])}"

    def words(self, args: Mapping[str, Any], in_shapes: tuple[tuple[Size, ...], ...],
              out_shape: tuple[Size, ...]) -> str:
        return f"Permute: axes reordered {list(args['dims'])}; output {shape_words(out_shape)}"


@register
class Transpose(_Ops):
    type = "Transpose"
    args: ClassVar[dict[str, Arg]] = {"dim0": dim_arg(REQUIRED), "dim1": dim_arg(REQUIRED)}
    rank_doc = "any; dim0/dim1 count the batch axis, as in torch.transpose"

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        a = sample_axis(args["dim0"], len(shape), "dim0")
        b = sample_axis(args["dim1"], len(shape), "dim1")
        out = list(shape)
        out[a], out[b] = out[b], out[a]
        step = Step(tuple(out))
        for i, j in sorted({(a, b), (b, a)}):
            step.derivation.append((f"dim {i + 1}: input dim {j + 1}", out[i]))
        return step

    def describe(self, args: Mapping[str, Any]) -> str:
        return f"{args['dim0']},{args['dim1']}"

    def words(self, args: Mapping[str, Any], in_shapes: tuple[tuple[Size, ...], ...],
              out_shape: tuple[Size, ...]) -> str:
        return f"Transpose of dims {args['dim0']} and {args['dim1']}; output {shape_words(out_shape)}"


class _Reduce(_Ops):
    family = "reduce"
    args: ClassVar[dict[str, Arg]] = {"dim": dims_arg(), "keepdim": bool_arg(False)}
    rank_doc = "any; dim (an axis or a list) counts the batch axis, as in torch"
    how: ClassVar[str] = ""

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        dims = args["dim"] if isinstance(args["dim"], tuple) else (args["dim"],)
        axes = [sample_axis(d, len(shape)) for d in dims]
        if len(set(axes)) != len(axes):
            raise ArgError(f"dim {list(dims)} names an axis twice (torch refuses it)")
        if not args["keepdim"] and len(axes) == len(shape):
            raise ArgError(f"dim {list(dims)} reduces every per-sample axis, which leaves a bare number per "
                           "sample: keep one (keepdim = true) or reduce fewer")
        out = [1 if i in axes else s for i, s in enumerate(shape)]
        if not args["keepdim"]:
            out = [s for i, s in enumerate(shape) if i not in axes]
        step = Step(tuple(out))
        for axis in sorted(axes):
            step.derivation.append((f"dim {axis + 1}: {self.how} over {size_str(shape[axis])} values"
                                    + (" (kept as 1)" if args["keepdim"] else " (removed)"), shape[axis]))
        return step

    def describe(self, args: Mapping[str, Any]) -> str:
        dim = args["dim"]
        return f"dim={list(dim) if isinstance(dim, tuple) else dim}" + (" keepdim" if args["keepdim"] else "")

    def words(self, args: Mapping[str, Any], in_shapes: tuple[tuple[Size, ...], ...],
              out_shape: tuple[Size, ...]) -> str:
        dim = args["dim"]
        return f"{self.how} over dim {list(dim) if isinstance(dim, tuple) else dim}; output {shape_words(out_shape)}"

    def spans_input(self) -> bool:
        return True


@register
class Mean(_Reduce):
    type = "Mean"
    how = "mean"


@register
class Sum(_Reduce):
    type = "Sum"
    how = "sum"


def _unflattened(value: Any) -> tuple[int, ...]:
    items = value if isinstance(value, (list, tuple)) else None
    if not items or any(not isinstance(v, int) or isinstance(v, bool) or (v < 1 and v != -1) for v in items):
        raise ArgError(f"must be a non-empty list of integers >= 1 (one may be -1), got {value!r}")
    if list(items).count(-1) > 1:
        raise ArgError(f"may hold one -1 only, got {value!r}")
    return tuple(items)


@register
class Unflatten(LayerKind):
    type = "Unflatten"
    family = "reshape"
    args: ClassVar[dict[str, Arg]] = {"dim": dim_arg(REQUIRED), "unflattened_size": Arg(_unflattened)}  # torch requires dim
    rank_doc = "any; dim counts the batch axis, as in torch"

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        axis = sample_axis(args["dim"], len(shape))
        sizes, size = args["unflattened_size"], shape[axis]
        known = product([s for s in sizes if s != -1])
        step = Step(())
        if -1 in sizes:
            step.need_multiple(f"dim {axis + 1} (unflattened into {list(sizes)})", size, known)
            rest = floor_div(size, 0, known)
            out_sizes: list[Size] = [rest if s == -1 else s for s in sizes]
            step.derivation.append((f"-1: {size_str(size)} / {known}", rest))
        else:
            if is_number(size) and size != known:
                raise ArgError(f"unflattened_size {list(sizes)} multiplies to {known}, but dim {axis + 1} "
                               f"has size {size}")
            if not is_number(size):
                step.conditions.append((f"dim {axis + 1} (unflattened into {list(sizes)})", size, "==", known))
            out_sizes = list(sizes)
        step.out_shape = (*shape[:axis], *out_sizes, *shape[axis + 1:])
        step.derivation.append((f"dim {axis + 1}: {' x '.join(map(size_str, out_sizes))}", size))
        return step

    def describe(self, args: Mapping[str, Any]) -> str:
        return f"{args['dim']} -> {list(args['unflattened_size'])}"


class _Pixel(LayerKind):
    """Moves ``r*r`` channels into an ``r x r`` block of pixels (shuffle) or back (unshuffle)."""

    family = "reshape"
    ranks = (3, 4, 5, 6, 7)
    rank_doc = "(..., C, H, W)"
    factor: ClassVar[str] = ""

    def describe(self, args: Mapping[str, Any]) -> str:
        return f"x{args[self.factor]}"


@register
class PixelShuffle(_Pixel):
    type = "PixelShuffle"
    args: ClassVar[dict[str, Arg]] = {"upscale_factor": int_arg()}
    factor = "upscale_factor"

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        r = args["upscale_factor"]
        c, h, w = shape[-3:]
        step = Step(())
        step.need_multiple(f"C (upscale_factor**2 = {r * r})", c, r * r)
        out = (floor_div(c, 0, r * r), as_size(h * r), as_size(w * r))
        step.out_shape = (*shape[:-3], *out)
        for name, size, text in (("C", out[0], f"/ {r * r}"), ("H", out[1], f"* {r}"), ("W", out[2], f"* {r}")):
            step.derivation.append((f"{name}: {text}", size))
        return step


@register
class PixelUnshuffle(_Pixel):
    type = "PixelUnshuffle"
    args: ClassVar[dict[str, Arg]] = {"downscale_factor": int_arg()}
    factor = "downscale_factor"

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        r = args["downscale_factor"]
        c, h, w = shape[-3:]
        step = Step(())
        step.need_multiple(f"H (downscale_factor = {r})", h, r)
        step.need_multiple(f"W (downscale_factor = {r})", w, r)
        out = (as_size(c * r * r), floor_div(h, 0, r), floor_div(w, 0, r))
        step.out_shape = (*shape[:-3], *out)
        for name, size, text in (("C", out[0], f"* {r * r}"), ("H", out[1], f"/ {r}"), ("W", out[2], f"/ {r}")):
            step.derivation.append((f"{name}: {text}", size))
        return step


@register
class ChannelShuffle(LayerKind):
    type = "ChannelShuffle"
    family = "reshape"
    args: ClassVar[dict[str, Arg]] = {"groups": int_arg()}
    ranks = (2, 3, 4, 5, 6, 7)
    rank_doc = "(C, ...) with at least one axis after C"

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        step = Step(tuple(shape))
        step.need_multiple(f"C (groups = {args['groups']})", shape[0], args["groups"])
        step.derivation.append(("shape unchanged", shape[0]))
        return step

    def describe(self, args: Mapping[str, Any]) -> str:
        return f"{args['groups']} groups"
