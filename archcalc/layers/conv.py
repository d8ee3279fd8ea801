"""Convolution and pooling: one floor formula for every dimensionality."""

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
    choice_arg,
    factor_str,
    int_arg,
    mul_str,
    ntuple_arg,
    product,
    register,
    shape_words,
)
from archcalc.symbolic import Size, as_size, floor_out, is_number, ntuple, size_str

AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def window_step(shape: tuple[Size, ...], dims: int, k: tuple[int, ...], s: tuple[int, ...],
                p: tuple[int, ...], d: tuple[int, ...], ceil_mode: bool,
                channels: Size, channel_note: str) -> Step:
    """Apply the floor formula on each spatial axis of a (C, *spatial) shape."""
    out: list[Size] = [channels]
    step = Step(())
    step.derivation.append((f"C: {channel_note}", channels))
    for axis, name in enumerate(AXES[dims]):
        n = shape[1 + axis]
        ka, sa, pa, da = k[axis], s[axis], p[axis], d[axis]
        size = floor_out(n, ka, sa, pa, da, ceil_mode)
        inside = f"{factor_str(n)} + 2*{pa} - {da}*({ka}-1) - 1"
        if not ceil_mode:
            text = f"{name}: floor(({inside})/{sa}) + 1"
        elif pa - da * (ka - 1) + sa - 1 <= 0:
            text = f"{name}: ceil(({inside})/{sa}) + 1"
        else:  # the last window may start in the right padding: torch drops it
            text = (f"{name}: min(ceil(({inside})/{sa}), floor(({factor_str(n)} + {pa} - 1)/{sa})) + 1"
                    " (the last window must start inside the input or left padding)")
        step.derivation.append((text, size))
        step.need_positive(f"{name} (output)", size)
        out.append(size)
    step.out_shape = tuple(out)
    return step


class _Windowed(LayerKind):
    """Shared by conv and pool kinds: rank (C, *spatial) and the window arguments."""

    dims: ClassVar[int] = 2

    def windows(self, args: Mapping[str, Any]) -> tuple[tuple[int, ...], ...]:
        n = self.dims
        k = ntuple(args["kernel_size"], n)
        stride = args.get("stride")
        s = k if stride is None else ntuple(stride, n)
        padding = args.get("padding", 0)
        p = (0,) * n if isinstance(padding, str) else ntuple(padding, n)  # "same": see _Conv
        d = ntuple(args.get("dilation", 1), n)
        return k, s, p, d


def _conv_args(dims: int) -> dict[str, Arg]:
    return {
        "in_channels": int_arg(default=INFERRED),
        "out_channels": int_arg(),
        "kernel_size": ntuple_arg(dims),
        "stride": ntuple_arg(dims, default=1),
        "padding": ntuple_arg(dims, minimum=0, default=0, strings=("same", "valid")),
        "dilation": ntuple_arg(dims, default=1),
        "groups": int_arg(default=1),
        "bias": bool_arg(True),
        "padding_mode": choice_arg(("zeros", "reflect", "replicate", "circular"), "zeros"),
    }


class _Conv(_Windowed):
    family = "conv"

    def words(self, args: Mapping[str, Any], in_shapes: tuple[tuple[Size, ...], ...],
              out_shape: tuple[Size, ...]) -> str:
        k = "×".join(map(str, self.windows(args)[0]))
        cin = in_shapes[0][0]
        plural = "" if cin == 1 else "s"
        bias = "" if args["bias"] else ", no bias"
        return (f"{self.type}: {args['out_channels']} filters of {k} over {size_str(cin)} input "
                f"channel{plural}, stride {args['stride']}, padding {args['padding']}{bias}; "
                f"output {shape_words(out_shape)}")

    def check_args(self, args: Mapping[str, Any]) -> None:
        groups = args["groups"]
        if args["out_channels"] % groups:
            raise ArgError(f"out_channels = {args['out_channels']} is not divisible by groups = {groups}")
        if args["in_channels"] is not INFERRED and args["in_channels"] % groups:
            raise ArgError(f"in_channels = {args['in_channels']} is not divisible by groups = {groups}")
        if args["padding"] == "same" and any(x != 1 for x in ntuple(args["stride"], self.dims)):
            raise ArgError("padding='same' needs stride 1 (torch refuses strided 'same' convolutions)")

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        k, s, p, d = self.windows(args)
        if args["padding"] == "same":
            step = Step(())
            step.out_shape = (args["out_channels"], *shape[1:])
            step.derivation.append(("C: out_channels", args["out_channels"]))
            for axis, name in enumerate(AXES[self.dims]):
                step.derivation.append((f"{name}: padding='same' keeps the size", shape[1 + axis]))
            pads = [(d[a] * (k[a] - 1) // 2, d[a] * (k[a] - 1) - d[a] * (k[a] - 1) // 2)
                    for a in range(self.dims)]
        else:
            step = window_step(shape, self.dims, k, s, p, d, False, args["out_channels"],
                               "out_channels")
            pads = [(x, x) for x in p]
        self._padding_mode_conditions(step, shape, pads, args["padding_mode"])
        cin = step.infer("in_channels", args["in_channels"], shape[0])
        if is_number(cin) and cin % args["groups"]:
            raise ArgError(f"in_channels = {cin} is not divisible by groups = {args['groups']}")
        return step

    def _padding_mode_conditions(self, step: Step, shape: tuple[Size, ...],
                                 pads: list[tuple[int, int]], mode: str) -> None:
        if mode not in ("reflect", "circular"):
            return
        for axis, name in enumerate(AXES[self.dims]):
            pad = max(pads[axis])
            if pad:
                # reflect needs pad < size; circular needs pad <= size
                need = pad + 1 if mode == "reflect" else pad
                step.conditions.append((f"{name} (input, {mode} padding {pad})", shape[1 + axis],
                                        ">=", need))

    def params(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> ParamCount:
        k = ntuple(args["kernel_size"], self.dims)
        cin = shape[0] if args["in_channels"] is INFERRED else args["in_channels"]
        groups = args["groups"]
        cin_per_group = cin // groups if is_number(cin) else as_size(cin / groups)
        cout = args["out_channels"]
        weight = as_size(product(k) * cin_per_group * cout)
        formula = mul_str(*k, cin_per_group, cout)
        if args["bias"]:
            return ParamCount(as_size(weight + cout), f"{formula} + {cout}")
        return ParamCount(weight, formula)

    def param_shapes(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> dict[str, tuple[Size, ...]]:
        cin = shape[0] if args["in_channels"] is INFERRED else args["in_channels"]
        cin_per_group = cin // args["groups"] if is_number(cin) else as_size(cin / args["groups"])
        cout = args["out_channels"]
        found: dict[str, tuple[Size, ...]] = {"weight": (cout, cin_per_group, *ntuple(args["kernel_size"], self.dims))}
        if args["bias"]:
            found["bias"] = (cout,)
        return found

    def torch_kwargs(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> dict[str, Any]:
        kwargs = dict(args)
        kwargs["in_channels"] = shape[0]
        return kwargs

    def macs(self, shape: tuple[Size, ...], out_shape: tuple[Size, ...], args: Mapping[str, Any]) -> Size:
        k = ntuple(args["kernel_size"], self.dims)
        groups = args["groups"]
        cin_per_group = shape[0] // groups if is_number(shape[0]) else as_size(shape[0] / groups)
        return as_size(product(list(out_shape)) * product(k) * cin_per_group)

    def window(self, args: Mapping[str, Any]) -> tuple[tuple[int, ...], ...]:
        k, s, p, d = self.windows(args)
        if args["padding"] == "same":  # torch pads floor(total/2) on the left
            p = tuple(d[a] * (k[a] - 1) // 2 for a in range(self.dims))
        return k, s, p, d

    def describe(self, args: Mapping[str, Any]) -> str:
        k, s, p, _ = self.windows(args)
        parts = [f"{'x'.join(map(str, k))}", f"->{args['out_channels']}"]
        if any(x != 1 for x in s):
            parts.append(f"s{','.join(map(str, s))}")
        if args["padding"] == "same":
            parts.append("same")
        elif any(p):
            parts.append(f"p{','.join(map(str, p))}")
        return " ".join(parts)


def _conv(dims: int) -> type[_Conv]:
    cls = type(f"Conv{dims}d", (_Conv,), {
        "type": f"Conv{dims}d", "dims": dims, "ranks": (dims + 1,), "args": _conv_args(dims),
        "rank_doc": f"(C, {', '.join(AXES[dims])})",
    })
    return register(cls)  # type: ignore[return-value]


class _Pool(_Windowed):
    family = "pool"

    def words(self, args: Mapping[str, Any], in_shapes: tuple[tuple[Size, ...], ...],
              out_shape: tuple[Size, ...]) -> str:
        k = "×".join(map(str, self.windows(args)[0]))
        how = "max" if self.type.startswith("Max") else "average"
        stride = args["stride"] if args["stride"] is not None else args["kernel_size"]
        return f"{self.type}: {how} pooling over {k} windows, stride {stride}; output {shape_words(out_shape)}"

    def check_args(self, args: Mapping[str, Any]) -> None:
        if args.get("return_indices"):
            raise ArgError("return_indices = true returns a tuple, which a sequential model cannot pass on")
        k, _, p, _ = self.windows(args)
        for ka, pa in zip(k, p):
            if 2 * pa > ka:
                raise ArgError(f"padding {pa} is more than half of kernel_size {ka} (torch refuses it)")

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        k, s, p, d = self.windows(args)
        step = window_step(shape, self.dims, k, s, p, d, args["ceil_mode"], shape[0], "unchanged")
        if self.type == "AvgPool3d":
            # torch's avg_pool3d also checks the unpadded input against the kernel
            for axis, name in enumerate(AXES[3]):
                step.conditions.append((f"{name} (input, at least kernel_size {k[axis]})",
                                        shape[1 + axis], ">=", k[axis]))
        return step

    def window(self, args: Mapping[str, Any]) -> tuple[tuple[int, ...], ...]:
        return self.windows(args)

    def describe(self, args: Mapping[str, Any]) -> str:
        k, s, p, _ = self.windows(args)
        text = "x".join(map(str, k))
        if s != k:
            text += f" s{','.join(map(str, s))}"
        return text + (f" p{','.join(map(str, p))}" if any(p) else "")


def _pool(family: str, dims: int) -> type[_Pool]:
    args: dict[str, Arg] = {
        "kernel_size": ntuple_arg(dims),
        "stride": ntuple_arg(dims, default=None, allow_none=True),
        "padding": ntuple_arg(dims, minimum=0, default=0),
    }
    if family == "Max":
        args["dilation"] = ntuple_arg(dims, default=1)
        args["return_indices"] = bool_arg(False)
        args["ceil_mode"] = bool_arg(False)
    else:
        args["ceil_mode"] = bool_arg(False)
        args["count_include_pad"] = bool_arg(True)
        if dims > 1:
            args["divisor_override"] = int_arg(default=None, allow_none=True)
    cls = type(f"{family}Pool{dims}d", (_Pool,), {
        "type": f"{family}Pool{dims}d", "dims": dims, "ranks": (dims + 1,), "args": args,
        "rank_doc": f"(C, {', '.join(AXES[dims])})",
    })
    return register(cls)  # type: ignore[return-value]


def _output_size_arg(dims: int) -> Arg:
    def check(value: Any) -> Any:
        items = value if isinstance(value, (list, tuple)) else [value]
        if dims == 1 and isinstance(value, (list, tuple)) and len(value) != 1:
            raise ArgError(f"must be an integer, got {value!r}")
        if isinstance(value, (list, tuple)) and len(value) != dims:
            raise ArgError(f"must be an integer or a list of {dims} entries, got {value!r}")
        out: list[int | None] = []
        for item in items:
            if item == "none" and dims == 1:
                raise ArgError("must be an integer >= 1, got 'none' (torch's 1-d adaptive pooling refuses None)")
            if item == "none":
                out.append(None)  # TOML has no null: "none" keeps that axis, as None does in torch
            elif isinstance(item, int) and not isinstance(item, bool) and item >= 1:
                out.append(item)
            else:
                raise ArgError(f"entries must be integers >= 1 or \"none\", got {value!r}")
        return tuple(out) if isinstance(value, (list, tuple)) else out[0]
    return Arg(check)


class _AdaptivePool(_Windowed):
    family = "adaptive_pool"

    def words(self, args: Mapping[str, Any], in_shapes: tuple[tuple[Size, ...], ...],
              out_shape: tuple[Size, ...]) -> str:
        return f"{self.type}: pooling to a fixed size {args['output_size']}; output {shape_words(out_shape)}"

    def check_args(self, args: Mapping[str, Any]) -> None:
        if args.get("return_indices"):
            raise ArgError("return_indices = true returns a tuple, which a sequential model cannot pass on")

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        sizes = args["output_size"]
        sizes = sizes if isinstance(sizes, tuple) else (sizes,) * self.dims
        step = Step(())
        step.derivation.append(("C: unchanged", shape[0]))
        out: list[Size] = [shape[0]]
        for axis, name in enumerate(AXES[self.dims]):
            size = shape[1 + axis] if sizes[axis] is None else sizes[axis]
            step.derivation.append((f"{name}: output_size", size))
            out.append(size)
        step.out_shape = tuple(out)
        return step

    def describe(self, args: Mapping[str, Any]) -> str:
        return f"-> {args['output_size']}"

    def spans_input(self) -> bool:
        return True


def _adaptive(family: str, dims: int) -> type[_AdaptivePool]:
    args: dict[str, Arg] = {"output_size": _output_size_arg(dims)}
    if family == "Max":
        args["return_indices"] = bool_arg(False)
    cls = type(f"Adaptive{family}Pool{dims}d", (_AdaptivePool,), {
        "type": f"Adaptive{family}Pool{dims}d", "dims": dims, "ranks": (dims + 1,), "args": args,
        "rank_doc": f"(C, {', '.join(AXES[dims])})",
    })
    return register(cls)  # type: ignore[return-value]


for _dims in (1, 2, 3):
    _conv(_dims)
    _pool("Max", _dims)
    _pool("Avg", _dims)
for _dims in (1, 2, 3):
    _adaptive("Avg", _dims)
    _adaptive("Max", _dims)

