"""Every registered kind, one row each: a new kind fails here until it has a row, and is tested that day.

Each row is a per-sample input shape (a list of them for merges) and the written arguments. The
reference is torch itself: the module built from the written arguments (inferred sizes taken from the
real tensor), run on a batch of 2.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
import torch

from archcalc import analyze, parse_spec
from archcalc.analysis.cost import cost
from archcalc.layers import REGISTRY
from archcalc.layers.registry import FAMILIES

ROWS: dict[str, tuple[Any, dict[str, Any]]] = {
    "Conv1d": ([3, 20], {"out_channels": 4, "kernel_size": 3, "stride": 2}),
    "Conv2d": ([3, 9, 8], {"out_channels": 4, "kernel_size": 3, "padding": 1}),
    "Conv3d": ([2, 5, 6, 7], {"out_channels": 2, "kernel_size": [1, 2, 3]}),
    "ConvTranspose1d": ([3, 7], {"out_channels": 2, "kernel_size": 3, "stride": 2}),
    "ConvTranspose2d": ([4, 5, 6], {"out_channels": 2, "kernel_size": 2, "stride": 2}),
    "ConvTranspose3d": ([2, 3, 4, 5], {"out_channels": 2, "kernel_size": 3, "padding": 1, "output_padding": 0}),
    "MaxPool1d": ([2, 15], {"kernel_size": 3, "stride": 2}),
    "MaxPool2d": ([2, 9, 9], {"kernel_size": 2}),
    "MaxPool3d": ([2, 6, 6, 6], {"kernel_size": 2, "ceil_mode": True}),
    "AvgPool1d": ([2, 15], {"kernel_size": 4}),
    "AvgPool2d": ([2, 9, 9], {"kernel_size": 3, "stride": 2, "padding": 1}),
    "AvgPool3d": ([2, 6, 6, 6], {"kernel_size": 3}),
    "AdaptiveAvgPool1d": ([2, 15], {"output_size": 4}),
    "AdaptiveAvgPool2d": ([2, 9, 9], {"output_size": [3, 2]}),
    "AdaptiveMaxPool1d": ([2, 15], {"output_size": 5}),
    "AdaptiveMaxPool2d": ([2, 9, 9], {"output_size": 1}),
    "Upsample": ([2, 5, 6], {"scale_factor": 2, "mode": "nearest"}),
    "Linear": ([7], {"out_features": 5}),
    "BatchNorm1d": ([4, 6], {}),
    "BatchNorm2d": ([4, 5, 5], {"affine": False}),
    "LayerNorm": ([3, 6], {}),
    "Embedding": ([7], {"num_embeddings": 10, "embedding_dim": 4, "padding_idx": 0}),
    "EmbeddingBag": ([7], {"num_embeddings": 10, "embedding_dim": 4, "mode": "sum"}),
    "ReLU": ([5], {}), "ReLU6": ([5], {"inplace": True}), "LeakyReLU": ([5], {"negative_slope": 0.2}), "ELU": ([5], {}), "GELU": ([5], {}),
    "SiLU": ([5], {}), "Sigmoid": ([5], {}), "Tanh": ([5], {}),
    "Softmax": ([3, 4], {"dim": 1}), "LogSoftmax": ([3, 4], {"dim": -1}),
    "Flatten": ([2, 3, 4], {}), "Identity": ([6], {}), "Dropout": ([6], {"p": 0.25}),
    "Add": ([[4, 5, 5], [4, 1, 5]], {}), "Mul": ([[4, 5, 5], [4, 1, 1]], {}), "Cat": ([[2, 5], [3, 5]], {"dim": 1}),
    # recurrent: per-sample [T, features]
    "RNN": ([7, 5], {"hidden_size": 6, "num_layers": 2, "nonlinearity": "relu", "bias": False}),
    "LSTM": ([7, 5], {"hidden_size": 6, "num_layers": 2, "bidirectional": True, "proj_size": 3,
                      "batch_first": True, "dropout": 0.2}),
    "GRU": ([7, 5], {"hidden_size": 4, "bidirectional": True}),
    # attention: per-sample [T, E]
    "MultiheadAttention": ([7, 8], {"num_heads": 2, "add_bias_kv": True, "add_zero_attn": True}),
    "TransformerEncoderLayer": ([7, 8], {"nhead": 2, "dim_feedforward": 12, "norm_first": True,
                                         "activation": "gelu", "batch_first": True}),
    "TransformerDecoderLayer": ([[7, 8], [5, 8]], {"nhead": 4, "dim_feedforward": 6, "bias": False}),
    "TransformerEncoder": ([7, 8], {"nhead": 2, "dim_feedforward": 10, "num_layers": 2}),
    # normalization
    "BatchNorm3d": ([3, 2, 4, 4], {}),
    "GroupNorm": ([6, 5, 4], {"num_groups": 3}),
    "InstanceNorm1d": ([4, 6], {"affine": True}),
    "InstanceNorm2d": ([4, 5, 5], {"track_running_stats": True}),
    "InstanceNorm3d": ([2, 3, 4, 5], {"affine": True}),
    "RMSNorm": ([3, 6], {"normalized_shape": [3, 6]}),
    "LocalResponseNorm": ([6, 5, 5], {"size": 3}),
    # axis moves and reductions
    "Permute": ([3, 4, 5], {"dims": [0, 3, 1, 2]}),
    "Transpose": ([3, 4, 5], {"dim0": 1, "dim1": -1}),
    "Mean": ([3, 4, 5], {"dim": [2, -1]}),
    "Sum": ([3, 4, 5], {"dim": 1, "keepdim": True}),
    "Unflatten": ([12, 5], {"dim": 1, "unflattened_size": [2, -1, 3]}),
    "PixelShuffle": ([8, 3, 5], {"upscale_factor": 2}),
    "PixelUnshuffle": ([2, 6, 4], {"downscale_factor": 2}),
    "ChannelShuffle": ([6, 5, 5], {"groups": 3}),
    # activations and dropouts
    "PReLU": ([4, 5], {"num_parameters": 4}), "Hardtanh": ([5], {"min_val": -2.0, "max_val": 3.0}),
    "Hardswish": ([5], {}), "Hardsigmoid": ([5], {"inplace": True}), "Mish": ([5], {}),
    "Softplus": ([5], {"beta": 2.0}), "Softsign": ([5], {}), "Tanhshrink": ([5], {}),
    "Threshold": ([5], {"threshold": 0.1, "value": 20.0}), "GLU": ([6, 4], {"dim": 1}), "Softmax2d": ([3, 4, 5], {}),
    "Dropout1d": ([3, 5], {"p": 0.2}), "Dropout2d": ([3, 4, 5], {}), "Dropout3d": ([2, 3, 4, 5], {"inplace": True}),
    "AlphaDropout": ([6], {"p": 0.1}),
    # pooling and padding
    "AdaptiveAvgPool3d": ([2, 5, 6, 7], {"output_size": ["none", 2, 3]}),
    "AdaptiveMaxPool3d": ([2, 5, 6, 7], {"output_size": 2}),
    "LPPool1d": ([2, 15], {"norm_type": 2, "kernel_size": 3, "stride": 2}),
    "LPPool2d": ([2, 9, 8], {"norm_type": 1.5, "kernel_size": [2, 3], "ceil_mode": True}),
    "FractionalMaxPool2d": ([2, 9, 8], {"kernel_size": 3, "output_size": [5, 4]}),
    "ZeroPad1d": ([2, 5], {"padding": [1, 2]}), "ZeroPad2d": ([2, 5, 6], {"padding": [1, -1, 0, 2]}),
    "ZeroPad3d": ([2, 3, 4, 5], {"padding": 1}),
    "ConstantPad1d": ([5], {"padding": 2, "value": 1.5}),
    "ConstantPad2d": ([2, 3, 4, 5], {"padding": [1, 2, 3, 4], "value": -1.0}),
    "ConstantPad3d": ([2, 3, 4, 5], {"padding": [0, 1, 1, 0, 2, 2], "value": 0.0}),
    "ReflectionPad1d": ([2, 5], {"padding": [4, 1]}), "ReflectionPad2d": ([2, 5, 6], {"padding": 2}),
    "ReflectionPad3d": ([2, 3, 4, 5], {"padding": [1, 2, 0, 3, 2, -1]}),
    "ReplicationPad1d": ([2, 5], {"padding": [3, -1]}), "ReplicationPad2d": ([5, 6], {"padding": [1, 2, 3, 4]}),
    "ReplicationPad3d": ([2, 3, 4, 5], {"padding": 2}),
    "CircularPad1d": ([2, 5], {"padding": [5, 2]}), "CircularPad2d": ([2, 5, 6], {"padding": [1, 6, 0, 2]}),
    "CircularPad3d": ([3, 4, 5], {"padding": [1, 1, 2, 2, 3, 3]}),
}

INFERRED = {"in_channels": 0, "in_features": -1, "num_features": 0, "num_channels": 0,
            "input_size": -1, "embed_dim": -1, "d_model": -1}


def _sequence(module: Any, xs: list[torch.Tensor], batch_first: bool) -> torch.Tensor:
    """Run torch's own module as torch code would: (T, N, F) unless batch_first; the output only."""
    with warnings.catch_warnings():  # "LSTM with projections is not supported with oneDNN"
        warnings.filterwarnings("ignore", message="LSTM with projections")
        out = module(*xs) if batch_first else module(*(x.transpose(0, 1) for x in xs))
    out = out[0] if isinstance(out, tuple) else out
    return out if batch_first else out.transpose(0, 1)


TENSOR_OPS = {  # kinds that are tensor methods in torch
    "Permute": lambda x, a: x.permute(*a["dims"]),
    "Transpose": lambda x, a: x.transpose(a["dim0"], a["dim1"]),
    "Mean": lambda x, a: x.mean(dim=a["dim"], keepdim=a.get("keepdim", False)),
    "Sum": lambda x, a: x.sum(dim=a["dim"], keepdim=a.get("keepdim", False)),
}


def _module(type_: str, kwargs: dict[str, Any]) -> Any:
    if type_ == "TransformerEncoder":
        layers = kwargs.pop("num_layers")
        return torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(**kwargs), layers,
                                           enable_nested_tensor=False)
    return getattr(torch.nn, type_)(**kwargs)


INDICES = ("Embedding", "EmbeddingBag")  # kinds reading an input of indices ([input] dtype = "long")


def _spec(shapes: list[list[int]], type_: str, args: dict[str, Any]) -> str:
    text = f"[input]\nshape = {json.dumps(shapes[0])}\n" + ('dtype = "long"\n' if type_ in INDICES else "")
    names = ["input"]
    for i, extra in enumerate(shapes[1:]):  # more inputs: adaptive pools of the input to the wanted size
        text += (f'[[layers]]\nname = "in{i + 2}"\ntype = "Identity"\nfrom = "input"\n' if extra == shapes[0]
                 else _reshaper(i + 2, shapes[0], extra))
        names.append(f"in{i + 2}")
    text += f'[[layers]]\nname = "node"\ntype = "{type_}"\n'
    if len(names) > 1:
        text += f"from = {json.dumps(names)}\n"
    text += "".join(f"{k} = {json.dumps(v)}\n" for k, v in args.items())
    return text


def _reshaper(i: int, have: list[int], want: list[int]) -> str:
    """A 1x1 conv (channels) and an adaptive pool (spatial sizes) from the input to ``want``."""
    return (f'[[layers]]\nname = "proj{i}"\ntype = "Conv{len(want) - 1}d"\nfrom = "input"\n'
            f"out_channels = {want[0]}\nkernel_size = 1\n"
            f'[[layers]]\nname = "in{i}"\ntype = "AdaptiveAvgPool{len(want) - 1}d"\n'
            f"output_size = {json.dumps(want[1:])}\n")


def _torch_answer(type_: str, shapes: list[list[int]], args: dict[str, Any]
                  ) -> tuple[tuple[tuple[int, ...], int], dict[str, tuple[int, ...]]]:
    xs = [torch.randn(2, *s) for s in shapes]
    if type_ in INDICES:
        xs = [torch.randint(0, args["num_embeddings"], (2, *shapes[0]))]
    if type_ in ("Add", "Mul", "Cat"):
        out = {"Add": lambda: xs[0] + xs[1], "Mul": lambda: xs[0] * xs[1],
               "Cat": lambda: torch.cat(xs, dim=args["dim"])}[type_]()
        return (tuple(out.shape[1:]), 0), {}
    kwargs = {k: tuple(None if e == "none" else e for e in v) if isinstance(v, list) else v
              for k, v in args.items()}  # TOML's "none" is torch's None
    if type_ in TENSOR_OPS:
        return (tuple(TENSOR_OPS[type_](xs[0], kwargs).shape[1:]), 0), {}
    for key, axis in INFERRED.items():
        if key in {a for a in REGISTRY[type_].args}:
            kwargs[key] = xs[0].shape[1:][axis]
    if type_ in ("LayerNorm", "RMSNorm") and "normalized_shape" not in kwargs:
        kwargs["normalized_shape"] = xs[0].shape[-1]
    module = _module(type_, kwargs)
    with torch.no_grad():
        if REGISTRY[type_].family in ("recurrent", "attention"):
            inputs = xs * 3 if type_ == "MultiheadAttention" and len(xs) == 1 else xs
            out = _sequence(module, inputs, args.get("batch_first", False))
        else:
            out = module(xs[0])
    named = {name: tuple(p.shape) for name, p in module.named_parameters()}
    return (tuple(out.shape[1:]), sum(p.numel() for p in module.parameters())), named


@pytest.mark.parametrize("type_", sorted(REGISTRY))
def test_every_kind_agrees_with_torch(type_):
    assert type_ in ROWS, f"add a row for {type_} to ROWS in {__file__}"
    kind = REGISTRY[type_]
    assert kind.family in FAMILIES and kind.type == type_
    shape, args = ROWS[type_]
    shapes = shape if isinstance(shape[0], list) else [shape]
    analysis = analyze(parse_spec(_spec(shapes, type_, args), f"{type_}.toml"))
    node = analysis.node("node")
    answer, named = _torch_answer(type_, shapes, args)
    assert (node.out_shape, node.params) == answer
    assert kind.param_shapes(node.in_shape, node.args) == named  # names and shapes, as torch registers them
    assert isinstance(kind.words(node.args, node.in_shapes, node.out_shape), str)
    assert isinstance(kind.describe(node.args), str)
    assert cost(analysis).total_macs >= 0
    assert (kind.arity is None) == (len(shapes) > 1)
