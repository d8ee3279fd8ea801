"""Recurrent layers: RNN, LSTM and GRU over a per-sample sequence ``[T, features]``.

A spec shape has no batch axis, so a recurrent layer takes ``[T, F]``, time first, and gives the
output sequence ``[T, D*H_out]`` (``D`` = 2 when bidirectional, ``H_out`` = ``proj_size`` when it is
set, else ``hidden_size``); the final hidden state is not passed on. ``batch_first`` keeps torch's
meaning, how the module's batch tensor is laid out: archcalc builds the module as written, and the
module it builds (``archcalc.pytorch.ops``) takes the model's ``(N, T, F)`` tensor and, with
``batch_first = false``, transposes it to ``(T, N, F)`` and back; so the per-sample layout is
``[T, F]`` either way and the parameters are torch's own.

Parameters per layer and direction, as torch registers them (``G`` gates: RNN 1, GRU 3, LSTM 4;
``I`` the layer's input, ``R`` the recurrent input, ``proj_size`` or ``hidden_size``):
``weight_ih_l{k}`` ``(G*H, I)``, ``weight_hh_l{k}`` ``(G*H, R)``, ``bias_ih_l{k}`` and
``bias_hh_l{k}`` ``(G*H)``, and with ``proj_size`` ``weight_hr_l{k}`` ``(P, H)``; the reverse
direction adds ``_reverse``. Layers after the first take ``I = D*R``.

MACs per time step are the matrix products: ``G*H*(I + R)`` (+ ``P*H`` for the projection), per
layer and direction, times ``T``; biases and gate nonlinearities count 0 (torch's FlopCounterMode).
"""

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
    float_arg,
    int_arg,
    register,
    shape_words,
)
from archcalc.symbolic import Size, as_size, size_str


def _rnn_args(kind: str) -> dict[str, Arg]:
    args: dict[str, Arg] = {  # torch's order
        "input_size": int_arg(default=INFERRED),
        "hidden_size": int_arg(),
        "num_layers": int_arg(default=1),
    }
    if kind == "RNN":
        args["nonlinearity"] = choice_arg(("tanh", "relu"), "tanh")
    args.update({
        "bias": bool_arg(True),
        "batch_first": bool_arg(False),
        "dropout": float_arg(0.0, lo=0.0, hi=1.0),
        "bidirectional": bool_arg(False),
    })
    if kind == "LSTM":
        args["proj_size"] = int_arg(minimum=0, default=0)
    return args


def _is_sum(text: str) -> bool:
    """True when a formula has a ``+`` outside parentheses (it needs them as a factor)."""
    depth = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "+" and depth == 0:
            return True
    return False


class _Recurrent(LayerKind):
    family = "recurrent"
    ranks = (2,)
    rank_doc = "[T, features] (time first; the batch axis is never written)"
    gates: ClassVar[int] = 1

    def check_args(self, args: Mapping[str, Any]) -> None:
        proj = args.get("proj_size", 0)
        if proj and proj >= args["hidden_size"]:
            raise ArgError(f"proj_size = {proj} must be smaller than hidden_size = {args['hidden_size']} "
                           "(torch refuses it)")

    def _sizes(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> tuple[Size, int, int, int]:
        """(input features, hidden H, recurrent input R, directions D)."""
        features = shape[-1] if args["input_size"] is INFERRED else args["input_size"]
        hidden = args["hidden_size"]
        recurrent = args.get("proj_size", 0) or hidden
        return features, hidden, recurrent, 2 if args["bidirectional"] else 1

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        _, _, recurrent, directions = self._sizes(shape, args)
        step = Step((shape[0], directions * recurrent))
        step.infer("input_size", args["input_size"], shape[-1])
        step.derivation.append(("T: unchanged (one output per time step)", shape[0]))
        out = "proj_size" if args.get("proj_size", 0) else "hidden_size"
        text = f"features: {directions}*{out} = {directions}*{recurrent}" if directions == 2 else f"features: {out}"
        step.derivation.append((text, directions * recurrent))
        return step

    def param_shapes(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> dict[str, tuple[Size, ...]]:
        features, hidden, recurrent, directions = self._sizes(shape, args)
        gate_rows = self.gates * hidden
        proj = args.get("proj_size", 0)
        found: dict[str, tuple[Size, ...]] = {}
        for layer in range(args["num_layers"]):
            width = features if layer == 0 else directions * recurrent
            for suffix in ("", "_reverse")[:directions]:
                tag = f"l{layer}{suffix}"
                found[f"weight_ih_{tag}"] = (gate_rows, width)
                found[f"weight_hh_{tag}"] = (gate_rows, recurrent)
                if args["bias"]:
                    found[f"bias_ih_{tag}"] = (gate_rows,)
                    found[f"bias_hh_{tag}"] = (gate_rows,)
                if proj:
                    found[f"weight_hr_{tag}"] = (proj, hidden)
        return found

    def _per_direction(self, width: Size, hidden: int, recurrent: int, proj: int, bias: bool) -> tuple[Size, str]:
        """One layer and direction: its parameter count and formula."""
        g = self.gates
        count = as_size(g * hidden * (width + recurrent) + (2 * g * hidden if bias else 0) + proj * hidden)
        inner = f"{hidden}*({size_str(width)} + {recurrent})"
        if not proj:
            if not bias:
                return count, inner if g == 1 else f"{g}*{inner}"
            body = f"{inner} + 2*{hidden}"
            return count, body if g == 1 else f"{g}*({body})"
        text = f"{g}*{inner} + {2 * g}*{hidden}" if bias else f"{g}*{inner}"
        return count, f"{text} + {proj}*{hidden}"

    def params(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> ParamCount:
        features, hidden, recurrent, directions = self._sizes(shape, args)
        proj, layers = args.get("proj_size", 0), args["num_layers"]
        total: Size = 0
        terms = []
        for width, copies in ((features, 1), (directions * recurrent, layers - 1)):
            if copies == 0:
                continue
            count, formula = self._per_direction(width, hidden, recurrent, proj, args["bias"])
            total = as_size(total + copies * directions * count)
            factors = [str(n) for n in (copies, directions) if n > 1]
            if factors and _is_sum(formula):
                formula = f"({formula})"
            terms.append("*".join([*factors, formula]))
        return ParamCount(total, " + ".join(terms))

    def macs(self, shape: tuple[Size, ...], out_shape: tuple[Size, ...], args: Mapping[str, Any]) -> Size:
        features, hidden, recurrent, directions = self._sizes(shape, args)
        proj = args.get("proj_size", 0)
        per_step: Size = 0
        for layer in range(args["num_layers"]):
            width = features if layer == 0 else directions * recurrent
            per_step = as_size(per_step + directions * (self.gates * hidden * (width + recurrent) + proj * hidden))
        return as_size(shape[0] * per_step)

    def torch_kwargs(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> dict[str, Any]:
        return {**args, "input_size": shape[-1]}

    def build_module(self, torch: Any, kwargs: Mapping[str, Any]) -> Any:
        from archcalc.pytorch import ops

        return getattr(ops, self.type)(**kwargs)

    def describe(self, args: Mapping[str, Any]) -> str:
        parts = [f"->{args['hidden_size']}"]
        if args["num_layers"] > 1:
            parts.append(f"x{args['num_layers']}")
        if args["bidirectional"]:
            parts.append("bi")
        if args.get("proj_size", 0):
            parts.append(f"p{args['proj_size']}")
        return " ".join(parts)

    def words(self, args: Mapping[str, Any], in_shapes: tuple[tuple[Size, ...], ...],
              out_shape: tuple[Size, ...]) -> str:
        layers = args["num_layers"]
        what = f"{layers} layers" if layers > 1 else "1 layer"
        extra = [w for w, on in (("bidirectional", args["bidirectional"]),
                                 (f"projected to {args.get('proj_size', 0)}", args.get("proj_size", 0)),
                                 ("no bias", not args["bias"])) if on]
        more = f" ({', '.join(extra)})" if extra else ""
        return (f"{self.type}: {what} of {args['hidden_size']} hidden units{more} over "
                f"{size_str(in_shapes[0][-1])} input features per time step; output {shape_words(out_shape)}")

    def spans_input(self) -> bool:
        return True  # the state carries every earlier frame (every frame, bidirectional)


@register
class RNN(_Recurrent):
    type = "RNN"
    args = _rnn_args("RNN")
    gates = 1


@register
class LSTM(_Recurrent):
    type = "LSTM"
    args = _rnn_args("LSTM")
    gates = 4


@register
class GRU(_Recurrent):
    type = "GRU"
    args = _rnn_args("GRU")
    gates = 3

