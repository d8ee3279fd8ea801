"""A spec -> a standalone PyTorch module (only ``torch`` imported), or ONNX where it is installed.

The class creates every node's module in ``__init__`` under the node's dotted name (so
``state_dict`` keys are the spec's), and ``forward`` calls them in the spec's order. Merges are
small modules defined in the file (``Add``, ``Mul``, ``Cat``), so they have names too and the
file imports back into the same spec.
"""

from __future__ import annotations

import keyword
import math
import re
from pathlib import Path
from typing import Any

from archcalc.analysis import Analysis, LayerResult
from archcalc.errors import ShapeError, TorchMissingError, UsageError
from archcalc.pytorch.build import torch_kwargs
from archcalc.symbolic import evaluate, is_number

HEADER = '''"""{name}: written by archcalc export from {source}. Only torch is needed.

{summary}
"""

from __future__ import annotations

import torch
from torch import nn


class Add(nn.Module):
    """x1 + x2 + ... (broadcasting as torch does)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Mul(nn.Module):
    """x1 * x2 * ... (broadcasting as torch does)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


class Cat(nn.Module):
    """torch.cat of the inputs along dim (the batch axis counted)."""

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.dim)


class Permute(nn.Module):
    """x.permute(dims); the batch axis counted (and kept at 0)."""

    def __init__(self, dims: tuple[int, ...]) -> None:
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.dims)


class Transpose(nn.Module):
    """x.transpose(dim0, dim1); the batch axis counted."""

    def __init__(self, dim0: int, dim1: int) -> None:
        super().__init__()
        self.dim0, self.dim1 = dim0, dim1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(self.dim0, self.dim1)


class Mean(nn.Module):
    """x.mean over dim (the batch axis counted)."""

    def __init__(self, dim: int | tuple[int, ...], keepdim: bool = False) -> None:
        super().__init__()
        self.dim, self.keepdim = dim, keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=self.dim, keepdim=self.keepdim)


class Sum(Mean):
    """x.sum over dim (the batch axis counted)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=self.dim, keepdim=self.keepdim)


def _put(root: nn.Module, path: str, module: nn.Module) -> None:
    """Set ``module`` at a dotted path, making plain containers on the way (``layer1.0.conv1``)."""
    *folders, leaf = path.split(".")
    for folder in folders:
        if not hasattr(root, folder):
            root.add_module(folder, nn.Module())
        root = getattr(root, folder)
    root.add_module(leaf, module)
'''

MERGES = {"Add": "Add()", "Mul": "Mul()"}
OPS = ("Permute", "Transpose", "Mean", "Sum")  # written with the classes above
TUPLES = ("RNN", "LSTM", "GRU", "MultiheadAttention")  # torch returns (output, state): the node is [0]
SEQUENCE = ("TransformerEncoderLayer", "TransformerDecoderLayer", "TransformerEncoder")


def export_python(analysis: Analysis) -> str:
    """The module's source text, at the analysis' symbol values (every size must be a number)."""
    spec = analysis.spec
    class_name = _class_name(spec.name)
    while class_name in HELPERS:
        class_name = f"{class_name}Model"
    total = analysis.value(analysis.total_params)
    summary = (f"{len(analysis.layers)} nodes, {total:,} parameters, input {list(analysis.shape_value(analysis.input_shape))}"
               f" per sample (batch axis first when called).")
    containers = _block_classes(analysis, class_name)
    lines = [HEADER.format(name=spec.name, source=spec.source, summary=summary), ""]
    for block, cls in sorted(set(containers.values())):
        lines += ["", f"class {cls}(nn.Module):", f'    """The container of each use of block {block!r}."""', ""]
    lines += ["", f"class {class_name}(nn.Module):",
              f'    """{_doc(spec.description or spec.name)}"""', "",
              "    def __init__(self) -> None:", "        super().__init__()"]
    for path, (_, cls) in containers.items():
        lines.append(f"        _put(self, {path!r}, {cls}())")
    for node in analysis.layers:
        if node.shared_with:
            continue
        lines.append(f"        {_setter(node.name, _constructor(analysis, node))}")
    lines += ["", "    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:"]
    variables = {"input": "x"}
    taken = {"x", "self", "torch", "nn"}
    for node in analysis.layers:
        var = _variable(node.name, taken)
        variables[node.name] = var
        call = _module_ref(node.shared_with or node.name)
        lines.append(f"        {var} = {_call(node, call, [variables[source] for source in node.inputs])}")
    outputs = [variables[n] for n in spec.output_names]
    lines.append(f"        return {outputs[0] if len(outputs) == 1 else '(' + ', '.join(outputs) + ')'}")
    return "\n".join(lines) + "\n"


def _call(node: LayerResult, call: str, args: list[str]) -> str:
    """The call of a node's module in forward: torch's sequence modules take time first unless
    batch_first, and the recurrent and attention ones return tuples, of which the node is [0]."""
    if node.type not in TUPLES + SEQUENCE:
        return f"{call}({', '.join(args)})"
    batch_first = node.args.get("batch_first", False)
    if node.type == "MultiheadAttention" and len(args) == 1:
        args = args * 3
    if not batch_first:
        args = [f"{a}.transpose(0, 1)" for a in args]
    extra = ", need_weights=False" if node.type == "MultiheadAttention" else ""
    out = f"{call}({', '.join(args)}{extra})" + ("[0]" if node.type in TUPLES else "")
    return out if batch_first else f"{out}.transpose(0, 1)"


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


HELPERS = {"Add", "Mul", "Cat", "Permute", "Transpose", "Mean", "Sum", "_put", "torch", "nn", "annotations"}


def _block_classes(analysis: Analysis, model_class: str) -> dict[str, tuple[str, str]]:
    """Each block copy's path -> (block, the container class named after it), outer paths first: the
    class name carries the block's name, so the file imports back to the same blocks. Names that
    would clash with the file's helpers, its model class or each other get a suffix."""
    taken = {name.lower() for name in HELPERS | {model_class}}
    classes: dict[str, str] = {}
    found = {}
    for group in sorted(analysis.spec.groups, key=lambda g: g.name.count(".")):
        if group.repeat is not None:
            continue
        if group.block not in classes:
            cls = group.block[:1].upper() + group.block[1:]
            while cls.lower() in taken or not cls.isidentifier() or keyword.iskeyword(cls):
                cls = f"{cls}Block"
            taken.add(cls.lower())
            classes[group.block] = cls
        found[group.name] = (group.block, classes[group.block])
    return found


def _constructor(analysis: Analysis, node: LayerResult) -> str:
    if node.type in MERGES:
        return MERGES[node.type]
    if node.type == "Cat":
        return f"Cat(dim={node.args['dim']})"
    from archcalc.layers.registry import LayerKind

    if node.type in OPS:
        return f"{node.type}({', '.join(f'{k}={_literal(_tuple(v))}' for k, v in node.args.items())})"
    if node.type == "TransformerEncoder":
        in_shape = tuple(evaluate(s, analysis.values) for s in node.in_shape)
        kwargs = torch_kwargs(node, in_shape)
        layers = kwargs.pop("num_layers")
        inner = ", ".join(f"{k}={_literal(v)}" for k, v in kwargs.items())
        return f"nn.TransformerEncoder(nn.TransformerEncoderLayer({inner}), {layers}, enable_nested_tensor=False)"
    if node.type in TUPLES + SEQUENCE:
        pass  # the torch.nn class itself; forward takes [0] and keeps the batch axis first (_call)
    elif type(node.kind).build_module is not LayerKind.build_module:  # built from archcalc's own modules
        raise UsageError(f"{node.layer.label}: {node.type} has no torch.nn class to write; export writes "
                         "torch.nn layers and the merges")
    in_shape = tuple(evaluate(s, analysis.values) for s in node.in_shape)
    if not all(is_number(s) for s in in_shape):
        raise ShapeError(f"{node.layer.label}: the sizes are symbolic; give the symbols values to export")
    kwargs = torch_kwargs(node, in_shape)
    inner = ", ".join(f"{k}={_literal(v)}" for k, v in kwargs.items())
    return f"nn.{node.type}({inner})"


def _literal(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, float) and math.isnan(value):
        return 'float("nan")'
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return 'float("inf")' if value > 0 else 'float("-inf")'
    if isinstance(value, (bool, int, float, str)) or value is None:
        return repr(value)
    raise UsageError(f"cannot write {value!r} as Python")


def _plain_name(name: str) -> bool:
    return all(part.isidentifier() and not keyword.iskeyword(part) for part in name.split("."))


def _setter(name: str, constructor: str) -> str:
    if "." not in name and _plain_name(name):
        return f"self.{name} = {constructor}"
    return f"_put(self, {name!r}, {constructor})"


def _module_ref(name: str) -> str:
    if "." not in name and _plain_name(name):
        return f"self.{name}"
    return f"self.get_submodule({name!r})"


def _variable(name: str, taken: set[str]) -> str:
    base = re.sub(r"\W", "_", name)
    if not base or base[0].isdigit() or keyword.iskeyword(base):
        base = f"n_{base}"
    var, k = base, 1
    while var in taken:
        k += 1
        var = f"{base}_{k}"
    taken.add(var)
    return var


def _class_name(name: str) -> str:
    text = "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", name) if part)
    return text if text[:1].isalpha() else f"Model{text}"


def _doc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def export_onnx(analysis: Analysis, path: Path) -> Path:
    """ONNX through torch.onnx (needs the ``onnx`` package, the ``onnx`` extra)."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise TorchMissingError("--format onnx needs the onnx package: pip install 'archcalc[onnx]'") from None
    import importlib.util
    import warnings

    import torch

    from archcalc.pytorch.build import build_from_analysis

    model = build_from_analysis(analysis).eval()
    sample = torch.zeros((1, *(int(analysis.value(s)) for s in analysis.input_shape)))
    # torch's new exporter needs onnxscript; without it the TorchScript exporter (deprecated, still
    # exact for these layers) writes the file
    dynamo = importlib.util.find_spec("onnxscript") is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (sample,), str(path), input_names=["input"], dynamo=dynamo)
    return path
