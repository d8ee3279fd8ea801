"""A PyTorch model -> a spec: trace it with torch.fx, one node per module call and per supported
function call, named after the module tree (``layer1.0.conv1``), then verify the spec against the
model before a byte is written.

Module calls keep the module's path; a module called again becomes a node with ``same_as``
(``layer1.0.relu_2``). A function call takes the path of the module whose ``forward`` made it
(``layer1.0.add``), or that path alone when the module does nothing else (a wrapper). Sizes read
only to feed a reshape (``x.view(x.size(0), -1)``) are folded away.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import operator
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archcalc.errors import CheckError, SpecError, UsageError
from archcalc.layers import REGISTRY
from archcalc.layers.merge import AXIS_NAMES
from archcalc.layers.registry import INFERRED, REQUIRED, ArgError, suggest
from archcalc.pytorch.build import import_torch, torch_message

MAX_NODES = 100_000


@dataclass
class Node:
    """One node of the spec being written."""

    name: str
    type: str
    args: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    same_as: str | None = None
    source: str = ""  # the module path or function, for messages
    fx_name: str = ""


@dataclass
class Imported:
    """The written spec and what verified it."""

    text: str
    nodes: list[Node]
    params: int
    output_shape: tuple[int, ...]


# --------------------------------------------------------------------------- loading the model

def parse_kwarg(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` with VALUE a TOML literal (``10``, ``false``, ``[32, 64]``, ``"relu"``)."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise UsageError("write NAME=VALUE with a TOML value, e.g. num_classes=10",
                         option="kwarg", subject=repr(text))
    try:
        return name, tomllib.loads(f"v = {value.strip()}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        raise UsageError(f"{value.strip()!r} is not a TOML value (strings need quotes: "
                         f'mode="fast")', option="kwarg", subject=repr(text)) from None


def load_target(target: str, kwargs: Mapping[str, Any]) -> Any:
    """``package.module:callable`` or ``path/to/file.py:callable``, called with ``kwargs``: an nn.Module."""
    torch = import_torch()
    module_part, sep, attr = target.rpartition(":")
    if not sep or not module_part or not attr:
        raise UsageError("write package.module:callable or path/to/file.py:callable",
                         option="model", subject=repr(target))
    try:
        if module_part.endswith(".py") or "/" in module_part or "\\" in module_part:
            path = Path(module_part)
            if not path.is_file():
                raise UsageError(f"no such file {module_part}", option="model", subject=repr(target))
            name = f"archcalc_import_{abs(hash(str(path.resolve())))}"
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise UsageError(f"cannot load {module_part} as Python", option="model", subject=repr(target))
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_part)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001  the user's module failed to import: say how
        raise UsageError(f"importing {module_part} failed: {torch_message(exc)}",
                         option="model", subject=repr(target)) from None
    factory = getattr(module, attr, None)
    if factory is None:
        names = [n for n in dir(module) if not n.startswith("_")]
        raise UsageError(f"{module_part} has no {attr!r}{suggest(attr, names)}",
                         option="model", subject=repr(target))
    try:
        model = factory(**kwargs)
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"calling {attr}({_kwargs_text(kwargs)}) failed: "
                         f"{torch_message(exc)}", option="model", subject=repr(target)) from None
    if not isinstance(model, torch.nn.Module):
        raise UsageError(f"{attr}(...) returned {type(model).__name__}, not a torch.nn.Module",
                         option="model", subject=repr(target))
    return model


def _kwargs_text(kwargs: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


# --------------------------------------------------------------------------- tracing

class _Refused(Exception):
    def __init__(self, node: str, source: str, what: str) -> None:
        self.node, self.source, self.what = node, source, what
        super().__init__(f"node {node!r} ({source}): {what}")


def trace(model: Any) -> Any:
    """The fx GraphModule: torch.nn layers stay modules (leaves), user modules are traced through."""
    from torch import fx

    try:
        return fx.symbolic_trace(model)
    except Exception as exc:  # noqa: BLE001  fx's own reasons (data-dependent control flow, ...)
        raise UsageError(f"torch.fx cannot trace {type(model).__name__}: {torch_message(exc)} (control flow "
                         "that depends on tensor values cannot become a spec)") from None


def propagate(torch: Any, graph_module: Any, shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """Every fx node's per-sample output shape, from one run in eval mode (batch 2)."""
    from torch.fx.passes.shape_prop import ShapeProp

    graph_module.eval()
    sample = torch.zeros((2, *shape))
    try:
        with torch.no_grad():
            graph_module(sample)  # first a plain run: ShapeProp prints a traceback of its own on failure
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"the model does not run on an input of shape {list(shape)}: {torch_message(exc)}",
                         option="input_shape") from None
    with torch.no_grad():
        ShapeProp(graph_module).propagate(sample)
    shapes = {}
    for node in graph_module.graph.nodes:
        meta = node.meta.get("tensor_meta")
        if meta is not None and hasattr(meta, "shape"):
            shapes[node.name] = tuple(int(s) for s in meta.shape[1:])
    return shapes


# --------------------------------------------------------------------------- fx graph -> nodes

def _functions(torch: Any) -> dict[Any, str]:
    F = torch.nn.functional
    table: dict[Any, str] = {
        operator.add: "Add", torch.add: "Add", operator.mul: "Mul", torch.mul: "Mul", torch.cat: "Cat",
        torch.flatten: "Flatten", F.relu: "ReLU", torch.relu: "ReLU", F.relu6: "ReLU6",
        F.hardswish: "Hardswish", F.hardsigmoid: "Hardsigmoid", torch.sigmoid: "Sigmoid", F.sigmoid: "Sigmoid",
        F.silu: "SiLU", F.gelu: "GELU", torch.tanh: "Tanh", F.tanh: "Tanh", F.softmax: "Softmax",
        torch.softmax: "Softmax", F.log_softmax: "LogSoftmax", F.dropout: "Dropout",
        F.adaptive_avg_pool1d: "AdaptiveAvgPool1d", F.adaptive_avg_pool2d: "AdaptiveAvgPool2d",
        F.adaptive_max_pool1d: "AdaptiveMaxPool1d", F.adaptive_max_pool2d: "AdaptiveMaxPool2d",
        F.max_pool1d: "MaxPool1d", F.max_pool2d: "MaxPool2d", F.avg_pool1d: "AvgPool1d", F.avg_pool2d: "AvgPool2d",
        F.leaky_relu: "LeakyReLU", F.elu: "ELU", F.hardtanh: "Hardtanh", F.mish: "Mish", F.softplus: "Softplus",
        F.softsign: "Softsign", F.glu: "GLU", F.dropout1d: "Dropout1d", F.dropout2d: "Dropout2d",
        F.dropout3d: "Dropout3d", torch.mean: "Mean", torch.sum: "Sum", torch.permute: "Permute",
        torch.transpose: "Transpose",
    }
    return table


METHODS = {"add": "Add", "mul": "Mul", "flatten": "Flatten", "relu": "ReLU", "sigmoid": "Sigmoid",
           "tanh": "Tanh", "softmax": "Softmax", "log_softmax": "LogSoftmax", "mean": "Mean", "sum": "Sum",
           "permute": "Permute", "transpose": "Transpose"}
SIZE_QUERIES = {"size", "dim"}
RESHAPES = {"view", "reshape"}
# positional parameter names of the functions, after the input (torch's own signatures)
POSITIONAL = {
    "Flatten": ("start_dim", "end_dim"), "Softmax": ("dim",), "LogSoftmax": ("dim",),
    "Dropout": ("p", "training", "inplace"), "ReLU": ("inplace",), "ReLU6": ("inplace",), "SiLU": ("inplace",),
    "Hardswish": ("inplace",), "Hardsigmoid": ("inplace",), "LeakyReLU": ("negative_slope", "inplace"),
    "ELU": ("alpha", "inplace"), "GELU": ("approximate",),
    "AdaptiveAvgPool1d": ("output_size",), "AdaptiveAvgPool2d": ("output_size",),
    "AdaptiveMaxPool1d": ("output_size", "return_indices"), "AdaptiveMaxPool2d": ("output_size", "return_indices"),
    "MaxPool1d": ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
    "MaxPool2d": ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
    "AvgPool1d": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
    "AvgPool2d": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
    "Mean": ("dim", "keepdim"), "Sum": ("dim", "keepdim"), "Permute": ("dims",), "Transpose": ("dim0", "dim1"),
    "Hardtanh": ("min_val", "max_val", "inplace"), "Softplus": ("beta", "threshold"), "GLU": ("dim",),
    "Mish": ("inplace",), "Dropout1d": ("p", "training", "inplace"), "Dropout2d": ("p", "training", "inplace"),
    "Dropout3d": ("p", "training", "inplace"),
}
# what a function's keyword is called on the module (torch.flatten's defaults differ from nn.Flatten's)
FUNCTION_DEFAULTS = {"Flatten": {"start_dim": 0, "end_dim": -1}, "Cat": {"dim": 0}}
TUPLE_MODULES = {"RNN", "LSTM", "GRU", "MultiheadAttention"}  # module(x) is (output, state or weights)
CREATORS = {"zeros", "ones", "full", "arange", "randn", "rand", "tensor", "empty", "eye", "linspace",
            "zeros_like", "ones_like", "randn_like", "rand_like", "full_like", "empty_like", "as_tensor"}


class _Converter:
    def __init__(self, torch: Any, graph_module: Any, model: Any, shapes: dict[str, tuple[int, ...]]) -> None:
        self.torch, self.gm, self.model, self.shapes = torch, graph_module, model, shapes
        self.functions = _functions(torch)
        self.nodes: list[Node] = []
        self.by_fx: dict[str, str] = {}  # fx node name -> spec node name (or the input)
        self.calls: dict[str, int] = {}  # module path -> calls so far
        self.used_names: set[str] = set()
        self.per_module: dict[tuple[str, str], int] = {}
        self.folded: set[str] = set()  # size queries, folded into the reshape that reads them
        self.scopes: dict[str, list[Any]] | None = None

    def convert(self) -> tuple[list[Node], list[str]]:
        outputs: list[str] = []
        for node in self.gm.graph.nodes:
            if len(self.nodes) > MAX_NODES:
                raise _Refused(node.name, "model", f"more than {MAX_NODES:,} nodes")
            if node.op == "placeholder":
                if self.by_fx:
                    raise _Refused(node.name, "forward", "a second input: a spec has one model input")
                self.by_fx[node.name] = "input"
            elif node.op == "call_module":
                self._module(node)
            elif node.op in ("call_function", "call_method"):
                self._function(node)
            elif node.op == "get_attr":
                users = ", ".join(u.name for u in node.users)
                if str(node.target).startswith("_tensor_constant"):
                    raise _Refused(users or node.name, f"constant {node.target}", "creates a tensor inside "
                                   "forward; a spec's nodes only transform their inputs (make it a buffer of a "
                                   "module, or an input)")
                raise _Refused(node.name, f"attribute {node.target}, used by {users}", "a parameter or buffer "
                               "used outside a module's own forward: wrap it in a module (a layer kind) or remove it")
            elif node.op == "output":
                outputs = [self._source(a, node) for a in self._flat(node.args[0])]
        return self.nodes, outputs

    # -- naming
    def _unique(self, wanted: str) -> str:
        name, k = wanted, 1
        while name in self.used_names:
            k += 1
            name = f"{wanted}_{k}"
        self.used_names.add(name)
        return name

    def _scope(self, node: Any) -> str:
        stack = node.meta.get("nn_module_stack") or {}
        return list(stack.values())[-1][0] if stack else ""

    def _function_name(self, node: Any, kind: str) -> str:
        scope = self._scope(node)
        if scope and self._wrapper(scope, node):
            return self._unique(scope)
        target = node.target
        base = "flatten" if kind == "Flatten" else (target if isinstance(target, str) else getattr(
            target, "__name__", kind.lower())).strip("_") or kind.lower()
        return self._unique(f"{scope}.{base}" if scope else base)

    def _wrapper(self, scope: str, node: Any) -> bool:
        """The module at ``scope`` does nothing but this call (a small module around a function)."""
        inside = [n for n in self._by_scope().get(scope, []) if n.name not in self.folded]
        return inside == [node] and scope not in self.used_names and not any(
            True for _ in self.model.get_submodule(scope).parameters())

    def _by_scope(self) -> dict[str, list[Any]]:
        """The graph's call nodes by the module whose forward made them (built once)."""
        if self.scopes is None:
            self.scopes = {}
            for n in self.gm.graph.nodes:
                if n.op not in ("placeholder", "output"):
                    self.scopes.setdefault(self._scope(n), []).append(n)
        return self.scopes

    # -- nodes
    def _module(self, node: Any) -> None:
        path = node.target
        module = self.gm.get_submodule(path)
        type_name = type(module).__name__
        kind = REGISTRY.get(type_name)
        source = f"module {path}: {type(module).__module__}.{type_name}"
        if kind is None or not type(module).__module__.startswith("torch.nn"):
            hint = suggest(type_name, sorted(REGISTRY))
            raise _Refused(path, source, f"{type_name} is not a layer kind archcalc knows{hint}; the kinds are "
                           "listed in the README (a module of your own is traced through when it is not a "
                           "torch.nn class)")
        inputs = [self._source(a, node) for a in self._flat(node.args)]
        count = self.calls.get(path, 0) + 1
        self.calls[path] = count
        if count == 1:
            args = module_args(kind, module, path)
            name = self._unique(path)
            self.nodes.append(Node(name, type_name, args, inputs, None, source, node.name))
        else:
            original = self.by_fx[next(n.name for n in self.gm.graph.nodes
                                       if n.op == "call_module" and n.target == path)]
            name = self._unique(f"{path}_{count}")
            self.nodes.append(Node(name, type_name, {}, inputs, original, source, node.name))
        self.by_fx[node.name] = name

    def _function(self, node: Any) -> None:
        target = node.target
        what = target if isinstance(target, str) else getattr(target, "__name__", str(target))
        source = f"method .{what}()" if node.op == "call_method" else f"function {_qualified(target)}"
        if node.op == "call_method" and what in SIZE_QUERIES or (
                node.op == "call_function" and target is getattr and len(node.args) > 1 and node.args[1] == "shape"):
            self._fold(node, source)
            return
        if node.op == "call_function" and target is operator.getitem and node.args[0].name in self.folded:
            self._fold(node, source)
            return
        if node.op == "call_function" and target is operator.getitem and self._tuple_output(node):
            if node.args[1] == 0:
                self.by_fx[node.name] = self.by_fx[node.args[0].name]  # out, state = lstm(x): the node is `out`
                return
            if not node.users:
                return  # the state, unused (out, _ = gru(x))
            raise _Refused(node.name, source, "uses the hidden state (or attention weights) of a recurrent or "
                           "attention module; a spec node gives its output sequence only")
        if node.op == "call_method" and what in RESHAPES:
            self._reshape(node, source)
            return
        if what in CREATORS:
            raise _Refused(node.name, source, "creates a tensor inside forward; a spec's nodes only transform "
                           "their inputs (make it a buffer of a module, or an input)")
        kind_name = METHODS.get(what) if node.op == "call_method" else self.functions.get(target)
        if kind_name is None or kind_name not in REGISTRY:
            raise _Refused(node.name, source, "no layer kind for this call (supported: + * torch.cat, flatten, "
                           "view/reshape to (N, -1), F.relu/relu6/hardswish/hardsigmoid/sigmoid/silu/gelu/"
                           "softmax/log_softmax/dropout, F's pools; see the README)")
        if kind_name in ("Add", "Mul") and any(k in node.kwargs for k in ("alpha", "out")):
            raise _Refused(node.name, source, "scales by alpha (or writes to out): no layer kind does that")
        tensors = [a for a in self._flat(node.args) + self._flat(node.kwargs.get("tensors", ())) if _is_node(a)]
        if kind_name in ("Add", "Mul") and (len(tensors) != 2 or len(node.args) != 2):
            raise _Refused(node.name, source, "adds or multiplies a number, not two tensors: no layer kind "
                           "scales by a constant")
        inputs = [self._source(a, node) for a in tensors]
        if kind_name == "Cat" and len(inputs) == 1:  # torch.cat of one tensor is that tensor
            name = self._function_name(node, "Cat")
            self.nodes.append(Node(name, "Identity", {}, inputs, None, source, node.name))
            self.by_fx[node.name] = name
            return
        args = self._function_args(node, kind_name, source)
        name = self._function_name(node, kind_name)
        self.nodes.append(Node(name, kind_name, args, inputs, None, source, node.name))
        self.by_fx[node.name] = name

    def _function_args(self, node: Any, kind_name: str, source: str) -> dict[str, Any]:
        kind = REGISTRY[kind_name]
        given: dict[str, Any] = dict(FUNCTION_DEFAULTS.get(kind_name, {}))
        if kind_name == "Cat":
            rest: tuple[Any, ...] = tuple(node.args[1:])
            names: tuple[str, ...] = ("dim",)
        elif kind_name == "Permute" and len(node.args) > 2:  # x.permute(0, 2, 1): the dims one by one
            rest, names = (list(node.args[1:]),), ("dims",)
        else:
            rest, names = tuple(node.args[1:]), POSITIONAL.get(kind_name, ())
        for key, value in zip(names, rest, strict=False):
            given[key] = value
        given.update(node.kwargs)
        given.pop("tensors", None)
        given.pop("training", None)
        given.pop("_stacklevel", None)
        given.pop("dtype", None)
        if kind_name == "Flatten" and given.get("start_dim") == 0:
            raise _Refused(node.name, source, "flattens the batch axis (start_dim 0): write flatten(x, 1)")
        if kind_name == "Softmax" and given.get("dim") is None and "dim" in kind.args:
            raise _Refused(node.name, source, "softmax without dim: write dim=1")
        for key, value in given.items():
            if any(_is_node(v) for v in self._flat(value)):
                raise _Refused(node.name, source, f"{key} is computed from a tensor; it must be a number")
        return _checked(kind, {k: _plain(v) for k, v in given.items() if k in kind.args}, node.name, source)

    def _tuple_output(self, node: Any) -> bool:
        """``module(x)[0]`` of a module returning (output, state): recurrent layers and attention,
        whose spec node is that output."""
        parent, index = node.args[0], node.args[1]
        if not (_is_node(parent) and parent.op == "call_module" and isinstance(index, int)
                and parent.name in self.by_fx):
            return False
        return type(self.gm.get_submodule(parent.target)).__name__ in TUPLE_MODULES

    def _fold(self, node: Any, source: str) -> None:
        for user in node.users:
            if not (user.op == "call_method" and user.target in RESHAPES) and not (
                    user.op == "call_function" and user.target is operator.getitem):
                raise _Refused(node.name, source, "reads a size for something other than a reshape; a spec "
                               "cannot compute with sizes")
        self.folded.add(node.name)

    def _reshape(self, node: Any, source: str) -> None:
        """view/reshape that keeps the batch axis: a Flatten of adjacent axes or an Unflatten of one."""
        data = node.args[0]
        sizes = self._flat(node.args[1:]) or self._flat(node.kwargs.get("shape", ()))
        first: Any = sizes[0] if sizes else None
        batch_kept = (_is_node(first) and first.name in self.folded) or (
            first == -1 and all(isinstance(v, int) and v > 0 for v in sizes[1:]))
        if not batch_kept:
            raise _Refused(node.name, source, f"reshapes with the batch size written as {first!r}: write "
                           "x.view(x.size(0), -1) or x.flatten(1), which hold for every batch size")
        have, want = self.shapes.get(data.name), self.shapes.get(node.name)
        kind_args = _reshape_kind(have, want)
        if kind_args is None:
            raise _Refused(node.name, source, f"reshapes {list(have or ())} to {list(want or ())}: only merging "
                           "adjacent axes (Flatten) or splitting one (Unflatten) has a layer kind")
        kind_name, args = kind_args
        args = _checked(REGISTRY[kind_name], args, node.name, source)  # defaults left out, as for modules
        if kind_name == "Unflatten":
            args = {"dim": args.get("dim", 1), **args}
        name = self._function_name(node, "Flatten" if kind_name == "Flatten" else "Unflatten")
        self.nodes.append(Node(name, kind_name, args, [self._source(data, node)], None, source, node.name))
        self.by_fx[node.name] = name

    def _source(self, arg: Any, user: Any) -> str:
        if not _is_node(arg) or arg.name not in self.by_fx:
            raise _Refused(user.name, "forward", f"reads {arg!r}, which is not a tensor from the input or a node")
        return self.by_fx[arg.name]

    def _flat(self, value: Any) -> list[Any]:
        if isinstance(value, (list, tuple)):
            return [x for v in value for x in self._flat(v)]
        return [value]


def _reshape_kind(have: tuple[int, ...] | None, want: tuple[int, ...] | None
                  ) -> tuple[str, dict[str, Any]] | None:
    """The kind of a per-sample reshape: Flatten(start_dim, end_dim) merging adjacent axes, or
    Unflatten(dim, unflattened_size) splitting one (dims count the batch axis, as torch's)."""
    if have is None or want is None or math.prod(have) != math.prod(want):
        return None
    i = 0
    while i < min(len(have), len(want)) and have[i] == want[i]:
        i += 1
    tail = 0
    while tail < min(len(have), len(want)) - i and have[len(have) - 1 - tail] == want[len(want) - 1 - tail]:
        tail += 1
    merged, split = have[i:len(have) - tail], want[i:len(want) - tail]
    if len(split) == 1 and len(merged) >= 2:
        args: dict[str, Any] = {"start_dim": i + 1}
        if len(have) - tail != len(have):
            args["end_dim"] = i + len(merged)
        return "Flatten", args
    if len(merged) == 1 and len(split) >= 2:
        return "Unflatten", {"dim": i + 1, "unflattened_size": list(split)}
    return None


def _is_node(value: Any) -> bool:
    return type(value).__name__ == "Node" and hasattr(value, "op")


def _qualified(target: Any) -> str:
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", str(target))
    return f"{module}.{name}" if module and module != "builtins" else name


def _plain(value: Any) -> Any:
    """A module attribute as a TOML value: tuples as lists, one repeated number as that number,
    None inside a size as "none" (TOML has no null)."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)) and any(v is None for v in value):
        return ["none" if v is None else _plain(v) for v in value]
    if isinstance(value, (tuple, list)):
        items = [_plain(v) for v in value]
        return items[0] if items and all(v == items[0] for v in items) and isinstance(items[0], int) else items
    return value


def _transformer_args(module: Any) -> dict[str, Any]:
    """A transformer layer keeps its arguments in its parts: read them there."""
    layer = module.layers[0] if hasattr(module, "layers") else module
    activation = getattr(layer.activation, "__name__", type(layer.activation).__name__).lower()
    found = {"nhead": layer.self_attn.num_heads, "dim_feedforward": layer.linear1.out_features,
             "dropout": layer.dropout.p, "activation": activation, "layer_norm_eps": layer.norm1.eps,
             "batch_first": layer.self_attn.batch_first, "norm_first": layer.norm_first,
             "bias": layer.linear1.bias is not None}
    if hasattr(module, "layers"):
        found["num_layers"] = module.num_layers
    return found


def _plain_list(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, (tuple, list)) else value


def _accepted(arg: Any, value: Any) -> bool:
    try:
        arg.check(value)
    except ArgError:
        return False
    return True


def module_args(kind: Any, module: Any, path: str) -> dict[str, Any]:
    """The constructor arguments of a torch module, read from its attributes (inferred sizes left out)."""
    if kind.type.startswith("Transformer"):
        return _checked(kind, _transformer_args(module), path, f"module {path}")
    if kind.type == "MultiheadAttention":
        attention: dict[str, Any] = {"num_heads": module.num_heads, "dropout": module.dropout, "bias": module.in_proj_bias is not None,
                 "add_bias_kv": module.bias_k is not None, "add_zero_attn": module.add_zero_attn,
                 "batch_first": module.batch_first}
        attention.update({k: getattr(module, k) for k in ("kdim", "vdim") if getattr(module, k) != module.embed_dim})
        return _checked(kind, attention, path, f"module {path}")
    found: dict[str, Any] = {}
    for key, arg in kind.args.items():
        if arg.default is INFERRED:
            continue
        if key == "bias" and not isinstance(getattr(module, "bias", None), bool):
            found[key] = getattr(module, "bias", None) is not None
        elif hasattr(module, key):
            found[key] = _plain(getattr(module, key))
            if found[key] != _plain_list(getattr(module, key)) and not _accepted(arg, found[key]):
                found[key] = _plain_list(getattr(module, key))  # (6, 6) is a list here, not one size
    if "stride" in found and kind.args["stride"].default is None and found["stride"] == found.get("kernel_size"):
        del found["stride"]  # a pool stores stride = kernel_size when none was given: the default
    return _checked(kind, found, path, f"module {path}")


def _checked(kind: Any, args: dict[str, Any], name: str, source: str) -> dict[str, Any]:
    """Validated as a spec would be; only what differs from the default is kept."""
    written = {}
    for key, value in args.items():
        spec = kind.args[key]
        try:
            checked = spec.check(value)
        except ArgError as exc:
            raise _Refused(name, source, f"{key} {exc}") from None
        default = spec.default
        if default is REQUIRED or _plain(checked) != _plain(default):
            written[key] = value
    return written


# --------------------------------------------------------------------------- the spec text

def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "inf" if value == math.inf else "-inf" if value == -math.inf else repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if value is None:
        raise TypeError("None has no TOML form")
    raise TypeError(f"no TOML form for {value!r}")


def spec_text(name: str, description: str, input_shape: Sequence[int | str], symbols: Mapping[str, int],
              nodes: list[Node], outputs: list[str], runs: list[tuple[list[Any], str]] | None = None) -> str:
    """The spec as TOML; with ``runs`` (from ``import_blocks.uses``) repeated sub-modules as blocks."""
    lines = [f"# {description}", "", "[model]", f"name = {_toml(name)}", f"description = {_toml(description)}",
             "", "[input]", f"shape = {_toml(list(input_shape))}"]
    if symbols:
        lines += ["", "[symbols]"] + [f"{k} = {v}" for k, v in symbols.items()]
    runs = runs or []
    written: set[str] = set()
    for run, block in runs:
        if block not in written:
            written.add(block)
            lines += _block_lines(block, run[0], nodes)
    starts = {run[0].start: (run, block) for run, block in runs}
    previous, i = "input", 0
    while i < len(nodes):
        if i in starts:
            run, block = starts[i]
            lines += _use_lines(run, block, previous)
            previous, i = run[-1].output, run[-1].stop
            continue
        lines += ["", "[[layers]]"] + _node_lines(nodes[i], nodes[i].name, previous, lambda n: n)
        previous, i = nodes[i].name, i + 1
    if outputs != [previous]:
        lines += ["", "[output]", f"from = {_toml(outputs[0] if len(outputs) == 1 else outputs)}"]
    return "\n".join(lines) + "\n"


def _node_lines(node: Node, name: str, previous: str, local: Callable[[str], str]) -> list[str]:
    lines = [f"name = {_toml(name)}"]
    if node.same_as is not None:
        lines.append(f"same_as = {_toml(local(node.same_as))}")
    else:
        lines.append(f"type = {_toml(node.type)}")
    inputs = [local(s) for s in node.inputs]
    if inputs != [previous]:
        lines.append(f"from = {_toml(inputs[0] if len(inputs) == 1 else inputs)}")
    lines += [f"{key} = {_toml(value)}" for key, value in node.args.items() if value is not None]
    return lines


def _block_lines(block: str, inst: Any, nodes: list[Node]) -> list[str]:
    """``[blocks.NAME]`` from one instance: local names, the outside input as ``input``."""
    cut = len(inst.path) + 1

    def local(name: str) -> str:
        return "input" if name == inst.source else name[cut:]

    lines = ["", f"[blocks.{block}]"]
    if nodes[inst.stop - 1].name != inst.output:
        lines.append(f"output = {_toml(local(inst.output))}")
    previous = "input"
    for node in nodes[inst.start:inst.stop]:
        lines += ["", f"[[blocks.{block}.layers]]"] + _node_lines(node, local(node.name), previous, local)
        previous = local(node.name)
    return lines


def _use_lines(run: list[Any], block: str, previous: str) -> list[str]:
    first = run[0]
    lines = ["", "[[layers]]"]
    if len(run) == 1:
        lines += [f"name = {_toml(first.path)}", f"block = {_toml(block)}"]
    else:
        parent, _, index = first.path.rpartition(".")
        lines += [f"name = {_toml(parent)}", f"block = {_toml(block)}", f"repeat = {len(run)}"]
        if int(index):
            lines.append(f"first_index = {int(index)}")
    if first.source != previous:
        lines.append(f"from = {_toml(first.source)}")
    return lines


# --------------------------------------------------------------------------- import, verified

def symbol_axes(input_shape: Sequence[int], symbols: Sequence[str]) -> dict[int, str]:
    """``H`` -> its axis (the tables' names: C, H, W; C, L; C, D, H, W), or ``T=1`` for axis 1."""
    names = AXIS_NAMES.get(len(input_shape), ())
    axes: dict[int, str] = {}
    for text in symbols:
        name, sep, axis_text = text.partition("=")
        if sep:
            if not (axis_text.isascii() and axis_text.isdigit()) or not int(axis_text) < len(input_shape):
                raise UsageError(f"the axis must be 0..{len(input_shape) - 1}", option="symbol_axis", subject=repr(text))
            axis = int(axis_text)
        elif name in names:
            axis = names.index(name)
        else:
            known = f"name an axis ({', '.join(names)})" if names else "give its axis"
            raise UsageError(f"{known}, or write NAME=AXIS (e.g. T=1)", option="symbol_axis", subject=repr(text))
        if not (name.isascii() and name.isidentifier()) or name in ("floor", "ceil", "min", "max"):
            raise UsageError(f"{name!r} is not a valid symbol name", option="symbol_axis", subject=repr(text))
        if axis in axes or name in axes.values():
            raise UsageError("the axis or the name is given twice", option="symbol_axis", subject=repr(text))
        axes[axis] = name
    return axes


def import_model(model: Any, input_shape: Sequence[int], symbols: Sequence[str] = (),
                 name: str | None = None, description: str = "", blocks: bool = True) -> Imported:
    """The spec of ``model`` for per-sample inputs of ``input_shape``, verified against the model:
    parameters (total and per module) and every node's output shape must agree, or CheckError."""
    torch = import_torch()
    shape = tuple(input_shape)
    axes = symbol_axes(shape, symbols)
    graph_module = trace(model)
    shapes = propagate(torch, graph_module, shape)
    converter = _Converter(torch, graph_module, model, shapes)
    try:
        nodes, outputs = converter.convert()
    except _Refused as exc:
        raise UsageError(f"node {exc.node!r} ({exc.source}): {exc.what}; nothing was written") from None
    if not nodes:
        raise UsageError("the model has no layers: its forward returns the input", option="model")
    model_name = name or type(model).__name__.lower()
    written_shape = [axes.get(i, s) for i, s in enumerate(shape)]
    header = (model_name, description or f"imported from {type(model).__name__}", written_shape,
              {axes[i]: shape[i] for i in sorted(axes)})
    text = spec_text(*header, nodes, outputs)
    if blocks:
        text = _with_blocks(model, header, nodes, outputs, text)
    return _verified(text, model, nodes, converter, shapes, outputs)


def _with_blocks(model: Any, header: tuple[Any, ...], nodes: list[Node], outputs: list[str], flat: str) -> str:
    """The text with repeated sub-modules as blocks, when it expands to exactly the flat nodes."""
    from archcalc.pytorch import import_blocks
    from archcalc.spec import parse_spec

    classes = {path: type(module).__name__ for path, module in model.named_modules()
               if path and next(module.children(), None) is not None}
    runs = import_blocks.uses(import_blocks.choose(import_blocks.instances(nodes, outputs, classes)))
    if not runs:
        return flat
    name, description, shape, symbols = header
    text = spec_text(name, description, shape, symbols, nodes, outputs, runs)

    def graph(source: str) -> list[tuple[Any, ...]]:
        return [(n.name, n.type, n.inputs, n.same_as, dict(n.args)) for n in parse_spec(source, "<import>").layers]

    try:
        return text if graph(text) == graph(flat) else flat
    except SpecError:
        return flat


def _verified(text: str, model: Any, nodes: list[Node], converter: _Converter, shapes: dict[str, tuple[int, ...]],
              outputs: list[str]) -> Imported:
    from archcalc.analysis import analyze
    from archcalc.spec import parse_spec

    try:
        analysis = analyze(parse_spec(text, "<imported spec>"))
    except SpecError as exc:
        raise UsageError(f"the model cannot be written as a spec: {exc.message}") from None
    except Exception as exc:  # noqa: BLE001  an archcalc refusal of what torch ran is a failed check
        raise UsageError(f"the model cannot be written as a spec: {getattr(exc, 'message', exc)}") from None
    for node in nodes:
        row = analysis.node(node.name)
        theirs = shapes.get(node.fx_name)
        if theirs is not None and tuple(analysis.value(s) for s in row.out_shape) != theirs:
            raise CheckError(f"node {node.name!r} ({node.source}): the spec gives "
                             f"{list(analysis.shape_value(row.out_shape))}, the model {list(theirs)}")
        if node.same_as is None and node.source.startswith("module "):
            module = model.get_submodule(node.name)
            own = sum(p.numel() for p in module.parameters())
            if analysis.value(row.params) != own:
                raise CheckError(f"node {node.name!r} ({node.source}): the spec counts "
                                 f"{analysis.value(row.params):,} parameters, the module has {own:,}")
    total = sum(p.numel() for p in model.parameters())
    if analysis.value(analysis.total_params) != total:
        raise CheckError(f"the spec counts {analysis.value(analysis.total_params):,} parameters, the model has "
                         f"{total:,} (parameters used outside the modules the spec names?)")
    out = tuple(int(analysis.value(s)) for s in analysis.output_shape)
    verified = (f"# verified against the model: {len(nodes)} nodes, {total:,} parameters, output {list(out)}; "
                "every node's shape and every module's parameters agree\n")
    first, _, rest = text.partition("\n")
    return Imported(f"{first}\n{verified}{rest}", nodes, total, out)


def load_and_import(target: str, input_shape: Sequence[int], kwargs: Mapping[str, Any],
                    symbols: Sequence[str] = ()) -> Imported:
    """Load, trace and verify with the user's code kept off standard output (where the spec goes),
    its warnings silenced, and a sys.exit() in it reported as an error."""
    import contextlib
    import warnings

    _, _, attr = target.rpartition(":")
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = load_target(target, kwargs)
            return import_model(model, input_shape, symbols, name=attr.lower(),
                                description=f"imported from {target}")
        except SystemExit as exc:
            raise UsageError(f"the model's code called sys.exit({exc.code!r})", option="model",
                             subject=repr(target)) from None


MAX_SAMPLE = 50_000_000  # values in one traced sample: the trace runs the model on a batch of 2


def parse_shape(text: str) -> tuple[int, ...]:
    """``3,224,224`` -> (3, 224, 224): positive ASCII integers, the batch axis left out."""
    parts = [p.strip() for p in text.split(",")]
    if not parts or not all(p.isascii() and p.isdigit() and len(p) <= 9 and int(p) > 0 for p in parts):
        raise UsageError("write positive integers separated by commas, batch axis left "
                         "out, e.g. 3,224,224", option="input_shape", subject=repr(text))
    shape = tuple(int(p) for p in parts)
    if math.prod(shape) > MAX_SAMPLE:
        raise UsageError(f"{math.prod(shape):,} values per sample: the model is run on the input to trace it, "
                         f"which allows at most {MAX_SAMPLE:,}", option="input_shape", subject=repr(text))
    return shape

