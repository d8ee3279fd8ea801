"""Random architectures, and an independent torch runner that gives the reference answer.

The runner never asks archcalc for a size: it builds each ``torch.nn`` module from the spec's
written arguments, takes inferred sizes from the real tensor it has in hand, and records the
output shape and parameter count of every layer, or the index of the layer where torch refuses.
"""

from __future__ import annotations

from typing import Any

import torch
from hypothesis import strategies as st

ACTIVATIONS = ["ReLU", "LeakyReLU", "ELU", "GELU", "SiLU", "Sigmoid", "Tanh", "Identity"]


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def spec_text(input_shape: list[Any], layers: list[dict[str, Any]], symbols: dict[str, int] | None = None,
              ) -> str:
    lines = ["[model]", 'name = "random"', "[input]", f"shape = {toml_value(input_shape)}"]
    if symbols:
        lines.append("[symbols]")
        lines += [f"{k} = {v}" for k, v in symbols.items()]
    for layer in layers:
        lines.append("[[layers]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in layer.items()]
    return "\n".join(lines) + "\n"


def _tuple_or_int(draw: Any, dims: int, lo: int, hi: int) -> Any:
    if draw(st.booleans()):
        return draw(st.integers(lo, hi))
    return [draw(st.integers(lo, hi)) for _ in range(dims)]


def window_layer(draw: Any, dims: int) -> dict[str, Any]:
    """A conv, pool or adaptive pool of the given dimensionality, with random arguments."""
    family = draw(st.sampled_from(["Conv", "MaxPool", "AvgPool", "Adaptive"]))
    k = _tuple_or_int(draw, dims, 1, 5)
    if family == "Conv":
        layer: dict[str, Any] = {"type": f"Conv{dims}d", "out_channels": draw(st.integers(1, 6)),
                                 "kernel_size": k}
        groups = draw(st.sampled_from([1, 1, 1, 2]))
        if groups > 1:
            layer["groups"] = groups
            layer["out_channels"] = 2 * draw(st.integers(1, 3))
        if draw(st.booleans()):
            layer["padding"] = draw(st.sampled_from(["same", "valid"])) if draw(st.booleans()) \
                else _tuple_or_int(draw, dims, 0, 3)
        if layer.get("padding") != "same" and draw(st.booleans()):
            layer["stride"] = _tuple_or_int(draw, dims, 1, 3)
        if draw(st.booleans()):
            layer["dilation"] = _tuple_or_int(draw, dims, 1, 3)
        if draw(st.booleans()):
            layer["bias"] = False
        if draw(st.integers(0, 5)) == 0:
            layer["padding_mode"] = draw(st.sampled_from(["reflect", "replicate", "circular"]))
        return layer
    if family == "Adaptive" and dims < 3:
        kind = draw(st.sampled_from(["Avg", "Max"]))
        size = [draw(st.integers(1, 6)) if draw(st.integers(0, 3)) else "none" for _ in range(dims)]
        out = size if dims > 1 else size[0]
        if out == "none":
            out = 2
        return {"type": f"Adaptive{kind}Pool{dims}d", "output_size": out}
    kind = "Avg" if family == "AvgPool" else "Max"
    ks = [k] * dims if isinstance(k, int) else k
    layer = {"type": f"{kind}Pool{dims}d", "kernel_size": k}
    if draw(st.booleans()):
        layer["stride"] = _tuple_or_int(draw, dims, 1, 3)
    if draw(st.booleans()):
        layer["padding"] = [draw(st.integers(0, kk // 2)) for kk in ks]
    if draw(st.booleans()):
        layer["ceil_mode"] = True
    if kind == "Max" and draw(st.booleans()):
        layer["dilation"] = _tuple_or_int(draw, dims, 1, 2)
    if kind == "Avg" and draw(st.booleans()):
        layer["count_include_pad"] = False
    return layer


def generic_layer(draw: Any, rank: int) -> dict[str, Any]:
    """A shape-keeping layer valid for a per-sample input of this rank."""
    options = ["act", "Dropout", "LayerNorm", "Softmax"]
    if rank in (1, 2):
        options.append("BatchNorm1d")
    if rank == 3:
        options.append("BatchNorm2d")
    choice = draw(st.sampled_from(options))
    if choice == "act":
        return {"type": draw(st.sampled_from(ACTIVATIONS))}
    if choice == "Dropout":
        return {"type": "Dropout", "p": draw(st.sampled_from([0.0, 0.25, 0.5]))}
    if choice == "LayerNorm":
        layer: dict[str, Any] = {"type": "LayerNorm"}
        if draw(st.booleans()):
            layer["elementwise_affine"] = False
        elif draw(st.booleans()):
            layer["bias"] = False
        return layer
    if choice == "Softmax":
        return {"type": draw(st.sampled_from(["Softmax", "LogSoftmax"])),
                "dim": draw(st.integers(-(rank + 1), rank))}
    layer = {"type": choice}
    if draw(st.booleans()):
        layer["affine"] = False
    return layer


@st.composite
def architectures(draw: Any) -> tuple[list[int], list[dict[str, Any]]]:
    """A per-sample input shape and a stack of layers over the supported kinds."""
    dims = draw(st.integers(1, 3))
    hi = {1: 40, 2: 24, 3: 9}[dims]
    shape = [draw(st.integers(1, 4))] + [draw(st.integers(1, hi)) for _ in range(dims)]
    layers = []
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.integers(0, 2)):
            layers.append(window_layer(draw, dims))
        else:
            layers.append(generic_layer(draw, dims + 1))
    if draw(st.booleans()):
        layers.append({"type": "Flatten"})
        for _ in range(draw(st.integers(0, 3))):
            if draw(st.booleans()):
                layer = {"type": "Linear", "out_features": draw(st.integers(1, 12))}
                if draw(st.integers(0, 3)) == 0:
                    layer["bias"] = False
                layers.append(layer)
            else:
                layers.append(generic_layer(draw, 1))
    return shape, layers


def torch_reference(input_shape: list[int], layers: list[dict[str, Any]]
                    ) -> tuple[list[tuple[int, ...]], list[int], int | None]:
    """Per-layer output shapes and parameter counts from torch; the index of a refusal, or None."""
    x = torch.zeros((2, *input_shape))
    shapes: list[tuple[int, ...]] = []
    params: list[int] = []
    for index, layer in enumerate(layers, start=1):
        kwargs = {k: v for k, v in layer.items() if k != "type"}
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
        if "output_size" in kwargs:
            out = kwargs["output_size"]
            kwargs["output_size"] = tuple(None if v == "none" else v for v in out) \
                if isinstance(out, tuple) else out
        name = layer["type"]
        if name.startswith("Conv"):
            kwargs["in_channels"] = x.shape[1]
        elif name == "Linear":
            kwargs["in_features"] = x.shape[-1]
        elif name.startswith("BatchNorm"):
            kwargs["num_features"] = x.shape[1]
        elif name == "LayerNorm":
            kwargs["normalized_shape"] = x.shape[-1]
        try:
            module = getattr(torch.nn, name)(**kwargs)
            with torch.no_grad():
                x = module(x)
        except Exception:  # noqa: BLE001  any refusal by torch is the answer
            return shapes, params, index
        if x.numel() == 0:
            return shapes, params, index
        shapes.append(tuple(x.shape[1:]))
        params.append(sum(p.numel() for p in module.parameters()))
    return shapes, params, None

