"""Attention: MultiheadAttention and the transformer layers, over per-sample sequences ``[T, E]``.

As for recurrent layers, a spec shape has no batch axis: an attention layer takes ``[T, E]``, time
first, whatever ``batch_first`` says; ``batch_first`` is passed to torch as written, and the module
archcalc builds (``archcalc.pytorch.ops``) transposes the model's ``(N, T, E)`` tensor when it is
false. ``embed_dim``/``d_model`` is inferred from the (first) input's last axis and
checked when written; ``kdim``/``vdim`` default to ``embed_dim`` as in torch, and are checked
against the key's and the value's last axes.

``MultiheadAttention`` takes one input (self-attention) or three, ``from = [query, key, value]``;
its output is the attention output ``[T, E]`` (no weights). ``TransformerDecoderLayer`` takes
``from = [tgt, memory]``. ``TransformerEncoder`` is ``num_layers`` copies of the encoder layer, built
as ``nn.TransformerEncoder(nn.TransformerEncoderLayer(...), num_layers, enable_nested_tensor=False)``.

MACs are the matrix products, as torch's FlopCounterMode counts them: the projections
(``T*E*E`` per projection of a length-T input) and the two attention products ``T*S*E`` each (scores
and weighted values, all heads together), so self-attention costs ``4*T*E^2 + 2*T^2*E``; the
feed-forward block ``2*T*E*F``. Softmax, norms, biases and dropout count 0.
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
    mul_str,
    register,
    shape_words,
)
from archcalc.symbolic import Size, as_size, size_str


def _heads_divide(args: Mapping[str, Any], dim: str, heads: str) -> None:
    if args[dim] is not INFERRED and args[dim] % args[heads]:
        raise ArgError(f"{dim} = {args[dim]} is not divisible by {heads} = {args[heads]} (torch refuses it)")


class _Sequence(LayerKind):
    family = "attention"
    ranks = (2,)
    rank_doc = "[T, E] (time first; the batch axis is never written)"

    def build_module(self, torch: Any, kwargs: Mapping[str, Any]) -> Any:
        from archcalc.pytorch import ops

        return getattr(ops, self.type)(**kwargs)

    def spans_input(self) -> bool:
        return True


@register
class MultiheadAttention(_Sequence):
    type = "MultiheadAttention"
    arity = 3  # one input (self-attention) or three (query, key, value): checked in apply_all
    args: ClassVar[dict[str, Arg]] = {  # torch's order
        "embed_dim": int_arg(default=INFERRED),
        "num_heads": int_arg(),
        "dropout": float_arg(0.0, lo=0.0, hi=1.0),
        "bias": bool_arg(True),
        "add_bias_kv": bool_arg(False),
        "add_zero_attn": bool_arg(False),
        "kdim": int_arg(default=None, allow_none=True),  # None: embed_dim, as in torch
        "vdim": int_arg(default=None, allow_none=True),
        "batch_first": bool_arg(False),
    }

    def check_args(self, args: Mapping[str, Any]) -> None:
        _heads_divide(args, "embed_dim", "num_heads")

    @staticmethod
    def _qkv(shapes: tuple[tuple[Size, ...], ...]) -> tuple[tuple[Size, ...], ...]:
        if len(shapes) not in (1, 3):
            raise ArgError(f"takes one input (self-attention) or three, from = [query, key, value]; "
                           f"got {len(shapes)}")
        return shapes if len(shapes) == 3 else (shapes[0],) * 3

    def apply_all(self, shapes: tuple[tuple[Size, ...], ...], args: Mapping[str, Any]) -> Step:
        query, key, value = self._qkv(shapes)
        step = Step(())
        embed = step.infer("embed_dim", args["embed_dim"], query[-1])
        _, kdim, vdim = self._dims(query, args)
        for i, name, dim, shape in ((2, "kdim", kdim, key), (3, "vdim", vdim, value)):
            if len(shapes) == 1 and args[name] is not None:
                step.need_equal(f"{name} = {args[name]} must equal embed_dim for self-attention (one input)",
                                embed, args[name])
            elif len(shapes) == 3:
                which = name if args[name] is not None else f"embed_dim ({name} not written)"
                step.need_equal(f"the features (dim 2) of input {i} ({'key' if i == 2 else 'value'}) must equal "
                                f"{which}", shape[-1], dim)
        if len(shapes) == 3:
            step.need_equal("the lengths (dim 1) of input 2 (key) and input 3 (value) must agree", key[0], value[0])
        step.need_multiple(f"embed_dim (num_heads = {args['num_heads']})", embed, args["num_heads"])
        step.out_shape = (query[0], embed)
        step.derivation.append(("T: the query's length", query[0]))
        step.derivation.append(("E: embed_dim", embed))
        return step

    @staticmethod
    def _dims(query: tuple[Size, ...], args: Mapping[str, Any]) -> tuple[Size, Size, Size]:
        """(embed_dim, kdim, vdim): torch's None for kdim/vdim is embed_dim."""
        embed = query[-1] if args["embed_dim"] is INFERRED else args["embed_dim"]
        return embed, args["kdim"] or embed, args["vdim"] or embed

    def params(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> ParamCount:
        embed, kdim, vdim = self._dims(shape, args)
        n = as_size(sum((_product(s) for s in self._named(embed, kdim, vdim, args).values()), start=0))
        e = size_str(embed)
        if kdim == embed and vdim == embed:
            text = f"3*{mul_str(embed, embed)} + 3*{e}" if args["bias"] else f"3*{mul_str(embed, embed)}"
        else:
            text = f"{mul_str(embed, embed)} + {mul_str(embed, kdim)} + {mul_str(embed, vdim)}"
            text += f" + 3*{e}" if args["bias"] else ""
        text += f" + {mul_str(embed, embed)}" + (f" + {e}" if args["bias"] else "")
        if args["add_bias_kv"]:
            text += f" + 2*{e}"
        return ParamCount(n, text)

    @staticmethod
    def _named(embed: Size, kdim: Size, vdim: Size, args: Mapping[str, Any]) -> dict[str, tuple[Size, ...]]:
        found: dict[str, tuple[Size, ...]] = {}
        if kdim == embed and vdim == embed:
            found["in_proj_weight"] = (as_size(3 * embed), embed)
        else:
            found.update(q_proj_weight=(embed, embed), k_proj_weight=(embed, kdim), v_proj_weight=(embed, vdim))
        if args["bias"]:
            found["in_proj_bias"] = (as_size(3 * embed),)
        if args["add_bias_kv"]:
            found.update(bias_k=(1, 1, embed), bias_v=(1, 1, embed))
        found["out_proj.weight"] = (embed, embed)
        if args["bias"]:
            found["out_proj.bias"] = (embed,)
        return found

    def param_shapes(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> dict[str, tuple[Size, ...]]:
        return self._named(*self._dims(shape, args), args)

    def macs(self, shape: tuple[Size, ...], out_shape: tuple[Size, ...], args: Mapping[str, Any]) -> Size:
        """Self-attention; with query, key and value see ``macs_all`` (the key's length S)."""
        return attention_macs(shape[0], shape[0], *self._dims(shape, args), args)

    def macs_all(self, shapes: tuple[tuple[Size, ...], ...], out_shape: tuple[Size, ...],
                 args: Mapping[str, Any]) -> Size:
        query, key, _ = self._qkv(shapes)
        return attention_macs(query[0], key[0], *self._dims(query, args), args)

    def torch_kwargs(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> dict[str, Any]:
        return {**args, "embed_dim": self._dims(shape, args)[0]}

    def describe(self, args: Mapping[str, Any]) -> str:
        return f"{args['num_heads']} heads"

    def words(self, args: Mapping[str, Any], in_shapes: tuple[tuple[Size, ...], ...],
              out_shape: tuple[Size, ...]) -> str:
        how = "self-attention" if len(in_shapes) == 1 else "attention of query, key and value"
        return (f"MultiheadAttention: {how} with {args['num_heads']} heads over {size_str(out_shape[-1])} "
                f"features; output {shape_words(out_shape)}")


def attention_macs(length: Size, source: Size, embed: Size, kdim: Size, vdim: Size,
                   args: Mapping[str, Any]) -> Size:
    """Projections of query (length T), key and value (length S), the two attention products over
    S' keys (S, plus one for add_bias_kv and one for add_zero_attn) and the output projection."""
    keys = source + int(args.get("add_bias_kv", False)) + int(args.get("add_zero_attn", False))
    return as_size(length * embed * embed + source * kdim * embed + source * vdim * embed
                   + 2 * length * keys * embed + length * embed * embed)


def _product(shape: tuple[Size, ...]) -> Size:
    out: Size = 1
    for s in shape:
        out = as_size(out * s)
    return out


def _layer_args() -> dict[str, Arg]:
    return {  # torch's order
        "d_model": int_arg(default=INFERRED),
        "nhead": int_arg(),
        "dim_feedforward": int_arg(default=2048),
        "dropout": float_arg(0.1, lo=0.0, hi=1.0),
        "activation": choice_arg(("relu", "gelu"), "relu"),
        "layer_norm_eps": float_arg(1e-5, lo=0.0, lo_open=True),
        "batch_first": bool_arg(False),
        "norm_first": bool_arg(False),
        "bias": bool_arg(True),
    }


class _TransformerLayer(_Sequence):
    """An encoder layer (``attentions`` = 1, norms 2) or a decoder layer (2 and 3)."""

    attentions: ClassVar[int] = 1
    copies_arg: ClassVar[str] = ""  # TransformerEncoder: "num_layers"

    def check_args(self, args: Mapping[str, Any]) -> None:
        _heads_divide(args, "d_model", "nhead")

    def _start(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> tuple[Step, Size]:
        step = Step(tuple(shape))
        d_model = step.infer("d_model", args["d_model"], shape[-1])
        step.need_multiple(f"d_model (nhead = {args['nhead']})", d_model, args["nhead"])
        step.derivation.append(("shape unchanged: [T, d_model]", d_model))
        return step, d_model

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        return self._start(shape, args)[0]

    def _one(self, e: Size, args: Mapping[str, Any]) -> dict[str, tuple[Size, ...]]:
        """One layer's parameters by name and shape, as torch registers them."""
        bias, f = args["bias"], args["dim_feedforward"]
        found: dict[str, tuple[Size, ...]] = {}
        for attn in ("self_attn", "multihead_attn")[:self.attentions]:
            found[f"{attn}.in_proj_weight"] = (as_size(3 * e), e)
            if bias:
                found[f"{attn}.in_proj_bias"] = (as_size(3 * e),)
            found[f"{attn}.out_proj.weight"] = (e, e)
            if bias:
                found[f"{attn}.out_proj.bias"] = (e,)
        found["linear1.weight"] = (f, e)
        if bias:
            found["linear1.bias"] = (f,)
        found["linear2.weight"] = (e, f)
        if bias:
            found["linear2.bias"] = (e,)
        for i in range(1, self.attentions + 2):
            found[f"norm{i}.weight"] = (e,)
            if bias:
                found[f"norm{i}.bias"] = (e,)
        return found

    def _d_model(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Size:
        return shape[-1] if args["d_model"] is INFERRED else args["d_model"]

    def _copies(self, args: Mapping[str, Any]) -> int:
        return args[self.copies_arg] if self.copies_arg else 1

    def param_shapes(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> dict[str, tuple[Size, ...]]:
        one = self._one(self._d_model(shape, args), args)
        if not self.copies_arg:
            return one
        return {f"layers.{i}.{name}": s for i in range(self._copies(args)) for name, s in one.items()}

    def params(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> ParamCount:
        e = self._d_model(shape, args)
        n = as_size(self._copies(args) * sum((_product(s) for s in self._one(e, args).values()), start=0))
        f, es, a, norms = args["dim_feedforward"], size_str(e), self.attentions, self.attentions + 1
        att = f"{a}*" if a > 1 else ""
        if args["bias"]:
            text = (f"{att}4*({mul_str(e, e)} + {es}) + 2*{mul_str(e, f)} + {f} + {es} + {norms}*2*{es}")
        else:
            text = f"{att}4*{mul_str(e, e)} + 2*{mul_str(e, f)} + {norms}*{es}"
        copies = self._copies(args)
        return ParamCount(n, f"{copies}*({text})" if copies > 1 else text)

    def _ff_macs(self, length: Size, e: Size, args: Mapping[str, Any]) -> Size:
        return as_size(2 * length * e * args["dim_feedforward"])

    def macs(self, shape: tuple[Size, ...], out_shape: tuple[Size, ...], args: Mapping[str, Any]) -> Size:
        e = self._d_model(shape, args)
        one = attention_macs(shape[0], shape[0], e, e, e, {}) + self._ff_macs(shape[0], e, args)
        return as_size(self._copies(args) * one)

    def torch_kwargs(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> dict[str, Any]:
        return {**args, "d_model": self._d_model(shape, args)}

    def describe(self, args: Mapping[str, Any]) -> str:
        text = f"h{args['nhead']} ff{args['dim_feedforward']}"
        return f"{text} x{self._copies(args)}" if self.copies_arg else text

    def words(self, args: Mapping[str, Any], in_shapes: tuple[tuple[Size, ...], ...],
              out_shape: tuple[Size, ...]) -> str:
        first = "pre-norm" if args["norm_first"] else "post-norm"
        copies = f"{self._copies(args)} encoder layers" if self.copies_arg else "one layer"
        return (f"{self.type}: {copies} of {args['nhead']}-head attention and a {args['dim_feedforward']}-wide "
                f"{args['activation']} feed-forward block ({first}) over {size_str(out_shape[-1])} features; "
                f"output {shape_words(out_shape)}")


@register
class TransformerEncoderLayer(_TransformerLayer):
    type = "TransformerEncoderLayer"
    args = _layer_args()


@register
class TransformerEncoder(_TransformerLayer):
    type = "TransformerEncoder"
    args: ClassVar[dict[str, Arg]] = {**_layer_args(), "num_layers": int_arg()}
    copies_arg = "num_layers"


@register
class TransformerDecoderLayer(_TransformerLayer):
    type = "TransformerDecoderLayer"
    args = _layer_args()
    arity = None  # [tgt, memory]
    attentions = 2
    rank_doc = "[T, E] for tgt and [S, E] for memory (time first)"

    def apply_all(self, shapes: tuple[tuple[Size, ...], ...], args: Mapping[str, Any]) -> Step:
        if len(shapes) != 2:
            raise ArgError(f"takes two inputs, from = [tgt, memory]; got {len(shapes)}")
        step, d_model = self._start(shapes[0], args)
        step.need_equal("the features (dim 2) of input 2 (memory) must equal d_model", shapes[1][-1], d_model)
        return step

    def macs(self, shape: tuple[Size, ...], out_shape: tuple[Size, ...], args: Mapping[str, Any]) -> Size:
        """A memory as long as tgt; ``macs_all`` takes the memory's own length."""
        return self.macs_all((shape, shape), out_shape, args)

    def macs_all(self, shapes: tuple[tuple[Size, ...], ...], out_shape: tuple[Size, ...],
                 args: Mapping[str, Any]) -> Size:
        e = self._d_model(shapes[0], args)
        length, source = shapes[0][0], shapes[1][0]
        return as_size(attention_macs(length, length, e, e, e, {}) + attention_macs(length, source, e, e, e, {})
                       + self._ff_macs(length, e, args))

    def words(self, args: Mapping[str, Any], in_shapes: tuple[tuple[Size, ...], ...],
              out_shape: tuple[Size, ...]) -> str:
        return (f"TransformerDecoderLayer: {args['nhead']}-head self-attention, attention over the memory "
                f"({size_str(in_shapes[1][0])} steps) and a {args['dim_feedforward']}-wide {args['activation']} "
                f"feed-forward block over {size_str(out_shape[-1])} features; output {shape_words(out_shape)}")
