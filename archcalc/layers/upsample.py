"""Layers that grow the spatial axes: transposed convolutions and ``Upsample``.

A transposed convolution has no floor: ``(I-1)*S - 2P + D*(K-1) + output_padding + 1`` per axis,
linear in I, so symbolic sizes stay in canonical form.

``Upsample`` by a ``scale_factor`` is where floats enter: torch computes ``floor(float(I) * scale)``
in double precision (every mode), so ``floor(100*0.57) == 56``. Numeric sizes repeat that very
product, so they always agree with torch. A symbolic size gets ``floor(p*I/q)``, ``p/q`` the
simplest fraction within half an ulp of the float, where ``scale_rule`` proves it equal to torch
for every size below 2**31 (0.3, 1/3, 2.5, 0.1, 1.1, 85.7% of the scales 0.01 ... 9.99). For the
others (0.7, 1.4, 0.57: the float lies just far enough below p/q that torch's product lands on
some whole values and just below others, depending on their bits) no floor formula matches, and a
symbolic size is refused with a message asking for a number.

Not mirrored: ``window()`` (receptive fields through these kinds are handled elsewhere); mode
'lanczos', which needs ``antialias`` that ``nn.Upsample`` cannot pass (refused when read; torch
fails in forward); a symbolic in_channels is not checked against groups (as for Conv).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from fractions import Fraction
from functools import cache
from typing import Any, ClassVar

from archcalc.layers.conv import AXES
from archcalc.layers.registry import (
    INFERRED,
    Arg,
    ArgError,
    LayerKind,
    ParamCount,
    Step,
    bool_arg,
    choice_arg,
    factor_str,
    int_arg,
    mul_str,
    ntuple_arg,
    product,
    register,
    shape_words,
)
from archcalc.symbolic import Size, as_size, floor_div, is_number, ntuple, size_str

# --------------------------------------------------------------------------- transposed convolutions


def _zeros_only(value: Any) -> str:
    if value != "zeros":
        raise ArgError(f"must be 'zeros', got {value!r} (torch supports only zero padding "
                       "for transposed convolutions)")
    return value


def _conv_transpose_args(dims: int) -> dict[str, Arg]:
    return {  # torch's order
        "in_channels": int_arg(default=INFERRED),
        "out_channels": int_arg(),
        "kernel_size": ntuple_arg(dims),
        "stride": ntuple_arg(dims, default=1),
        "padding": ntuple_arg(dims, minimum=0, default=0),  # no 'same': torch refuses strings
        "output_padding": ntuple_arg(dims, minimum=0, default=0),
        "groups": int_arg(default=1),
        "bias": bool_arg(True),
        "dilation": ntuple_arg(dims, default=1),
        "padding_mode": Arg(_zeros_only, "zeros"),
    }


class _ConvTranspose(LayerKind):
    """``ConvTransposeNd``: each input position scatters a kernel into a stride-spaced output."""

    family = "conv_transpose"
    dims: ClassVar[int] = 2

    def _axes(self, args: Mapping[str, Any]) -> tuple[tuple[int, ...], ...]:
        n = self.dims
        return tuple(ntuple(args[key], n) for key in
                     ("kernel_size", "stride", "padding", "dilation", "output_padding"))

    def check_args(self, args: Mapping[str, Any]) -> None:
        groups = args["groups"]
        for key in ("out_channels", "in_channels"):
            if args[key] is not INFERRED and args[key] % groups:
                raise ArgError(f"{key} = {args[key]} is not divisible by groups = {groups}")
        _, s, _, d, op = self._axes(args)
        for name, sa, da, oa in zip(AXES[self.dims], s, d, op):
            if oa >= sa and oa >= da:  # torch: output padding must be smaller than either
                raise ArgError(f"output_padding {oa} on {name} must be smaller than its stride {sa} "
                               f"or dilation {da} (torch refuses it)")

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        k, s, p, d, op = self._axes(args)
        cout = args["out_channels"]
        step = Step(())
        step.derivation.append(("C: out_channels", cout))
        out: list[Size] = [cout]
        for axis, name in enumerate(AXES[self.dims]):
            n = shape[1 + axis]
            # (n-1)*s - 2p + d*(k-1) + op + 1, written as s*n + const: linear, so canonical
            size = as_size(s[axis] * n + d[axis] * (k[axis] - 1) - 2 * p[axis] + op[axis] + 1 - s[axis])
            text = (f"{name}: ({factor_str(n)} - 1)*{s[axis]} - 2*{p[axis]} + {d[axis]}*({k[axis]}-1)"
                    f" + {op[axis]} + 1")
            step.derivation.append((text, size))
            # not "(output)": that reads "input too small"; here padding is what cuts too much
            step.need_positive(f"output {name}, after 2*padding = {2 * p[axis]} is cut off", size)
            out.append(size)
        step.out_shape = tuple(out)
        cin = step.infer("in_channels", args["in_channels"], shape[0])
        if is_number(cin) and cin % args["groups"]:
            raise ArgError(f"in_channels = {cin} is not divisible by groups = {args['groups']}")
        return step

    def _weight(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> tuple[Size, tuple[Size, ...]]:
        """Weight count and its factors: torch's weight is (in, out/groups, *kernel)."""
        k = ntuple(args["kernel_size"], self.dims)
        cin = shape[0] if args["in_channels"] is INFERRED else args["in_channels"]
        factors = (*k, cin, args["out_channels"] // args["groups"])
        return product(list(factors)), factors

    def params(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> ParamCount:
        weight, factors = self._weight(shape, args)
        cout = args["out_channels"]
        if args["bias"]:
            return ParamCount(as_size(weight + cout), f"{mul_str(*factors)} + {cout}")
        return ParamCount(weight, mul_str(*factors))

    def param_shapes(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> dict[str, tuple[Size, ...]]:
        cin = shape[0] if args["in_channels"] is INFERRED else args["in_channels"]
        cout = args["out_channels"]
        found: dict[str, tuple[Size, ...]] = {
            "weight": (cin, cout // args["groups"], *ntuple(args["kernel_size"], self.dims))}
        if args["bias"]:
            found["bias"] = (cout,)
        return found

    def torch_kwargs(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> dict[str, Any]:
        return {**args, "in_channels": shape[0]}

    def macs(self, shape: tuple[Size, ...], out_shape: tuple[Size, ...], args: Mapping[str, Any]) -> Size:
        # as torch's FlopCounterMode: every input position meets the whole weight (bias not counted)
        weight, _ = self._weight(shape, args)
        return as_size(weight * product(list(shape[1:])))

    def describe(self, args: Mapping[str, Any]) -> str:
        k, s, p, _, op = self._axes(args)
        parts = ["x".join(map(str, k)), f"->{args['out_channels']}"]
        for tag, values in (("s", s), ("p", p), ("op", op)):
            if any(x != (1 if tag == "s" else 0) for x in values):
                parts.append(tag + ",".join(map(str, values)))
        return " ".join(parts)

    def words(self, args: Mapping[str, Any], in_shapes: tuple[tuple[Size, ...], ...],
              out_shape: tuple[Size, ...]) -> str:
        k = "×".join(map(str, ntuple(args["kernel_size"], self.dims)))
        cin = in_shapes[0][0]
        plural = "" if cin == 1 else "s"
        extra = f", output_padding {args['output_padding']}" if any(self._axes(args)[4]) else ""
        bias = "" if args["bias"] else ", no bias"
        return (f"{self.type}: transposed convolution to {args['out_channels']} channels with {k} kernels "
                f"over {size_str(cin)} input channel{plural}, stride {args['stride']}, padding "
                f"{args['padding']}{extra}{bias}; output {shape_words(out_shape)}")


@register
class ConvTranspose1d(_ConvTranspose):
    type = "ConvTranspose1d"
    dims = 1
    ranks = (2,)
    rank_doc = "(C, L)"
    args = _conv_transpose_args(1)


@register
class ConvTranspose2d(_ConvTranspose):
    type = "ConvTranspose2d"
    dims = 2
    ranks = (3,)
    rank_doc = "(C, H, W)"
    args = _conv_transpose_args(2)


@register
class ConvTranspose3d(_ConvTranspose):
    type = "ConvTranspose3d"
    dims = 3
    ranks = (4,)
    rank_doc = "(C, D, H, W)"
    args = _conv_transpose_args(3)


# --------------------------------------------------------------------------- Upsample

SYMBOLIC_LIMIT = 2**31  # symbolic Upsample sizes are exact below this size on the axis
_MODE_DIMS = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}  # others: 1 to 3 axes
_NEAREST = ("nearest", "nearest-exact", "area")  # torch refuses align_corners with these


def _optional(check: Callable[[Any], Any]) -> Arg:
    """TOML has no null: "none" stands for torch's None."""
    return Arg(lambda value: None if value in (None, "none") else check(value), None)


def _entries(value: Any, ok: Callable[[Any], bool], what: str) -> Any:
    """A value or a list of 1 to 3 values (one per spatial axis), each passing ``ok``."""
    items = value if isinstance(value, list | tuple) else [value]
    if not 1 <= len(items) <= 3 or not all(ok(v) and not isinstance(v, bool) for v in items):
        raise ArgError(f"must be {what} or a list of one per spatial axis, got {value!r}")
    return tuple(items) if isinstance(value, list | tuple) else value


def _size_value(value: Any) -> Any:
    return _entries(value, lambda v: isinstance(v, int) and v >= 1, "an integer >= 1")


def _scale_value(value: Any) -> Any:
    def ok(v: Any) -> bool:
        return isinstance(v, int | float) and math.isfinite(v) and v > 0
    checked = _entries(value, ok, "a number > 0")
    return tuple(map(float, checked)) if isinstance(checked, tuple) else float(checked)


_flag = bool_arg(False).check


def _simplest_between(lo: Fraction, hi: Fraction) -> Fraction:
    """The fraction with the smallest denominator in [lo, hi] (continued fractions), 0 < lo <= hi."""
    whole = math.floor(lo)
    if whole == lo or whole + 1 <= hi:
        return Fraction(whole if whole == lo else whole + 1)
    return whole + 1 / _simplest_between(1 / (hi - whole), 1 / (lo - whole))


@cache
def scale_rule(scale: float) -> Fraction | None:
    """``p/q`` with ``floor(float(I)*scale) == floor(p*I/q)`` for every I < 2**31, or None.

    Where ``I*p/q`` is not whole, its distance to a whole number is at least ``1/q``, more than the
    float errors (the float's distance to p/q and the product's rounding) add up to below 2**31.
    Where ``I*p/q == k`` is whole and the float is a relative ``rho`` below p/q, the product
    ``k*(1 - rho)`` rounds back to k for every k when ``rho <= 2**-54`` (at a power of two it is a
    tie, which goes to the even k); above that it rounds down for some k and not others (a float
    within half an ulp of p/q is never as far as 2**-53 below it, where all k would round down).
    """
    exact = Fraction(scale)
    half_ulp_lo = (exact - Fraction(math.nextafter(scale, 0))) / 2
    half_ulp_hi = (Fraction(math.nextafter(scale, math.inf)) - exact) / 2
    ratio = _simplest_between(exact - half_ulp_lo, exact + half_ulp_hi)
    error = abs(ratio - exact) + exact / 2**53  # per unit of I
    if SYMBOLIC_LIMIT * error >= Fraction(1, ratio.denominator):
        return None
    return ratio if (ratio - exact) / ratio <= Fraction(1, 2**54) else None


def scaled_size(n: Size, scale: float) -> Size:
    """torch's ``floor(float(n) * scale)``, for a number or (by ``scale_rule``) a symbolic n."""
    if is_number(n):
        return math.floor(n * scale)  # the same IEEE double product torch computes
    ratio = scale_rule(scale)
    if ratio is None:
        raise ArgError(f"scale_factor {scale!r} on the symbolic size {size_str(n)}: torch's float product "
                       f"floor({size_str(n)}*{scale!r}) rounds differently at different sizes and no formula "
                       "matches it; write that input size as a number, or use a scale such as 0.75 or 1.5")
    return floor_div(as_size(ratio.numerator * n), 0, ratio.denominator)


@register
class Upsample(LayerKind):
    """``Upsample``: to a fixed ``size`` or by ``scale_factor`` per spatial axis; no parameters."""

    type = "Upsample"
    args: ClassVar[dict[str, Arg]] = {
        "size": _optional(_size_value),
        "scale_factor": _optional(_scale_value),
        "mode": choice_arg(("nearest", "linear", "bilinear", "bicubic", "trilinear", "nearest-exact",
                            "area"), "nearest"),
        "align_corners": _optional(_flag),
        "recompute_scale_factor": _optional(_flag),
    }
    ranks = (2, 3, 4)
    rank_doc = "(C, L), (C, H, W) or (C, D, H, W)"
    family = "upsample"

    def check_args(self, args: Mapping[str, Any]) -> None:
        given = [k for k in ("size", "scale_factor") if args[k] is not None]
        if len(given) != 1:
            raise ArgError("give exactly one of size or scale_factor (torch refuses "
                           f"{'both' if given else 'neither'})")
        if args["align_corners"] is not None and args["mode"] in _NEAREST:
            raise ArgError(f"align_corners only applies to the modes linear, bilinear, bicubic and "
                           f"trilinear; torch refuses it (even false) with mode {args['mode']!r}")
        if args["recompute_scale_factor"] and args["size"] is not None:
            raise ArgError("recompute_scale_factor = true needs scale_factor, not size (torch refuses it)")

    def _per_axis(self, args: Mapping[str, Any], dims: int) -> tuple[str, tuple[Any, ...]]:
        """Which argument sets the output, and its value on each spatial axis."""
        mode = args["mode"]
        if _MODE_DIMS.get(mode, dims) != dims:
            want = _MODE_DIMS[mode]
            raise ArgError(f"mode {mode!r} works on {want} spatial ax{'is' if want == 1 else 'es'}, "
                           f"the input has {dims}")
        key = "size" if args["size"] is not None else "scale_factor"
        value = args[key]
        if isinstance(value, tuple) and len(value) != dims:
            raise ArgError(f"{key} {list(value)} has {len(value)} entries for {dims} spatial axes")
        return key, value if isinstance(value, tuple) else (value,) * dims

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        dims = len(shape) - 1
        key, values = self._per_axis(args, dims)
        step = Step(())
        step.derivation.append(("C: unchanged", shape[0]))
        out: list[Size] = [shape[0]]
        for name, n, value in zip(AXES[dims], shape[1:], values):
            if key == "size":
                size, text = value, f"{name}: size"
            elif value.is_integer():
                size, text = as_size(int(value) * n), f"{name}: {factor_str(n)}*{int(value)}"
            else:
                size = scaled_size(n, value)
                text = f"{name}: floor({factor_str(n)}*{value!r}) (torch rounds the float product down)"
            step.derivation.append((text, size))
            step.need_positive(f"output {name}", size)
            out.append(size)
        step.out_shape = tuple(out)
        return step

    def describe(self, args: Mapping[str, Any]) -> str:
        if args["size"] is not None:
            return f"-> {args['size']} {args['mode']}"
        return f"x{args['scale_factor']} {args['mode']}"

    def words(self, args: Mapping[str, Any], in_shapes: tuple[tuple[Size, ...], ...],
              out_shape: tuple[Size, ...]) -> str:
        how = (f"to size {args['size']}" if args["size"] is not None
               else f"by a factor {args['scale_factor']}")
        return f"Upsample: {args['mode']} resampling {how}; output {shape_words(out_shape)}"
