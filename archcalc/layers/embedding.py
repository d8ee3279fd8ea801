"""Embedding and EmbeddingBag: a table of vectors looked up by integer indices.

They take the model input when it holds indices (``[input] dtype = "long"``): per sample a
sequence ``[T]`` (or ``[..., T]``) of indices below ``num_embeddings``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from archcalc.layers.registry import (
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
)
from archcalc.symbolic import Size, as_size, size_str


def _padding_idx(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgError(f"must be an integer index, got {value!r}")
    return value


def _table_args() -> dict[str, Arg]:
    return {
        "num_embeddings": int_arg(),
        "embedding_dim": int_arg(),
        "padding_idx": Arg(_padding_idx, None),
        "max_norm": float_arg(None, lo=0.0, lo_open=True),
        "norm_type": float_arg(2.0, lo=0.0, lo_open=True),
        "scale_grad_by_freq": bool_arg(False),
        "sparse": bool_arg(False),
    }


class _Table(LayerKind):
    family = "embedding"
    takes_indices: ClassVar[bool] = True

    def check_args(self, args: Mapping[str, Any]) -> None:
        n, pad = args["num_embeddings"], args["padding_idx"]
        if pad is not None and not -n <= pad < n:
            raise ArgError(f"padding_idx = {pad} must be within the table: {-n}..{n - 1} (num_embeddings = {n})")

    def params(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> ParamCount:
        n, d = args["num_embeddings"], args["embedding_dim"]
        return ParamCount(n * d, f"{mul_str(n, d)} (one vector of {d} per index)")

    def param_shapes(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> dict[str, tuple[Size, ...]]:
        return {"weight": (args["num_embeddings"], args["embedding_dim"])}

    def describe(self, args: Mapping[str, Any]) -> str:
        return f"{args['num_embeddings']}x{args['embedding_dim']}"


@register
class Embedding(_Table):
    type = "Embedding"
    args: ClassVar[dict[str, Arg]] = _table_args()
    rank_doc = "(*) indices"
    words_name = "embedding lookup"

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        step = Step((*shape, args["embedding_dim"]))
        step.derivation.append(("each index becomes a vector of embedding_dim", args["embedding_dim"]))
        return step

    def words(self, args: Mapping[str, Any], in_shapes: tuple[tuple[Size, ...], ...],
              out_shape: tuple[Size, ...]) -> str:
        return (f"Embedding: {args['num_embeddings']} indices to vectors of {args['embedding_dim']}; "
                f"output {' × '.join(size_str(s) for s in out_shape)}")


@register
class EmbeddingBag(_Table):
    type = "EmbeddingBag"
    args: ClassVar[dict[str, Arg]] = {**_table_args(), "mode": choice_arg(("mean", "sum", "max"), "mean"),
                                      "include_last_offset": bool_arg(False)}
    ranks = (1,)
    rank_doc = "(T) indices: one bag per sample"
    words_name = "embedding bag"

    def check_args(self, args: Mapping[str, Any]) -> None:
        super().check_args(args)
        if args["include_last_offset"]:
            raise ArgError("include_last_offset needs offsets, which a spec does not pass: leave it false")
        if args["mode"] == "max" and args["padding_idx"] is not None:
            raise ArgError("padding_idx is not supported with mode 'max' (as in torch)")

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        step = Step((args["embedding_dim"],))
        step.derivation.append((f"the {size_str(shape[0])} vectors of a bag reduced by {args['mode']}",
                                args["embedding_dim"]))
        return step

    def macs(self, shape: tuple[Size, ...], out_shape: tuple[Size, ...], args: Mapping[str, Any]) -> Size:
        return 0 if args["mode"] == "max" else as_size(shape[0] * args["embedding_dim"])
