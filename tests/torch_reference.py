"""Random architectures, and an independent torch runner that gives the reference answer.

The runner never asks archcalc for a size: it builds each ``torch.nn`` module from the spec's
written arguments, takes inferred sizes from the real tensor it has in hand, and records the
output shape and parameter count of every layer, or the index of the layer where torch refuses.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from hypothesis import strategies as st

ACTIVATIONS = ["ReLU", "LeakyReLU", "ELU", "GELU", "SiLU", "Sigmoid", "Tanh", "Identity", "Hardswish",
               "Hardsigmoid", "Mish", "Softplus", "Softsign", "Tanhshrink", "Hardtanh", "PReLU"]


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def spec_text(input_shape: list[Any], layers: list[dict[str, Any]], symbols: dict[str, int] | None = None,
              outputs: str | list[str] | None = None) -> str:
    """A spec file; layer dicts may hold graph keys (name, from, same_as); ``outputs`` writes [output]."""
    lines = ["[model]", 'name = "random"', "[input]", f"shape = {toml_value(input_shape)}"]
    if symbols:
        lines.append("[symbols]")
        lines += [f"{k} = {v}" for k, v in symbols.items()]
    for layer in layers:
        lines.append("[[layers]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in layer.items()]
    if outputs is not None:
        lines += ["[output]", f"from = {toml_value(outputs)}"]
    return "\n".join(lines) + "\n"


def _tuple_or_int(draw: Any, dims: int, lo: int, hi: int) -> Any:
    if draw(st.booleans()):
        return draw(st.integers(lo, hi))
    return [draw(st.integers(lo, hi)) for _ in range(dims)]


def window_layer(draw: Any, dims: int) -> dict[str, Any]:
    """A conv, pool or adaptive pool of the given dimensionality, with random arguments."""
    family = draw(st.sampled_from(["Conv", "MaxPool", "AvgPool", "Adaptive", "Pad", "LPPool"]))
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
    if family == "Pad":  # negative entries crop; torch limits reflection and circular padding
        prefix = draw(st.sampled_from(["Zero", "Constant", "Reflection", "Replication", "Circular"]))
        low = 0 if prefix == "Circular" else -2  # circular crops: see test_layers_new.py
        padding = draw(st.integers(max(low, -1), 3)) if draw(st.booleans()) \
            else [draw(st.integers(low, 3)) for _ in range(2 * dims)]
        layer = {"type": f"{prefix}Pad{dims}d", "padding": padding}
        if prefix == "Constant":
            layer["value"] = 0.5
        return layer
    if family == "LPPool" and dims < 3:
        layer = {"type": f"LPPool{dims}d", "norm_type": draw(st.sampled_from([1, 2, 1.5])),
                 "kernel_size": k if dims > 1 else draw(st.integers(1, 5))}  # torch's LPPool1d: an int
        if draw(st.booleans()):
            layer["stride"] = _tuple_or_int(draw, dims, 1, 3)
        if draw(st.booleans()):
            layer["ceil_mode"] = True
        return layer
    if family in ("Adaptive", "LPPool"):
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
    options = ["act", "Dropout", "LayerNorm", "Softmax", "GroupNorm", "RMSNorm"]
    if rank in (1, 2):
        options.append("BatchNorm1d")
    if rank == 3:
        options.append("BatchNorm2d")
    if rank in (2, 3, 4):
        options.append(f"InstanceNorm{rank - 1}d")
    choice = draw(st.sampled_from(options))
    if choice == "GroupNorm":  # torch refuses channels that num_groups does not divide
        return {"type": "GroupNorm", "num_groups": draw(st.integers(1, 3)), "affine": draw(st.booleans())}
    if choice == "RMSNorm":
        return {"type": "RMSNorm", "elementwise_affine": draw(st.booleans())}
    if choice.startswith("InstanceNorm"):  # torch refuses one value per channel when training
        return {"type": choice, "affine": draw(st.booleans())}
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
        elif name.startswith(("BatchNorm", "InstanceNorm")):
            kwargs["num_features"] = x.shape[1]
        elif name == "GroupNorm":
            kwargs["num_channels"] = x.shape[1]
        elif name in ("LayerNorm", "RMSNorm"):
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


# --------------------------------------------------------------------------- graphs
#
# A graph spec gives every layer a `name` and may give it `from` (a name or a list of names; the
# model input is "input"); without `from` a layer takes the layer written just above it. Merges
# have no torch.nn class: `Add` and `Mul` (elementwise, broadcasting, 2+ inputs of one per-sample
# rank) and `Cat` (torch.cat along `dim`, the batch axis counting as 0; default 1). `same_as`
# applies the very module of an earlier node (tied weights; its own params are 0).

INPUT = "input"
MERGES = ("Add", "Mul", "Cat")
GRAPH_SYMBOLS = {1: ("L",), 2: ("H", "W")}  # the names of the spatial axes in symbolic graph specs
_NODE_KEYS = ("type", "name", "from", "same_as")


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread: on tiny tensors its thread pool costs far more than it saves
    (a 2x3x10x10 conv: 0.3 ms on one thread, up to 30 ms on two busy cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def node_inputs(node: dict[str, Any], above: str) -> tuple[str, ...]:
    """The names a node reads: its `from`, else the node written above it (or the input)."""
    source = node.get("from", above)
    return (source,) if isinstance(source, str) else tuple(source)


def _torch_kwargs(node: dict[str, Any]) -> dict[str, Any]:
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in node.items() if k not in _NODE_KEYS}
    if "output_size" in kwargs:
        out = kwargs["output_size"]
        kwargs["output_size"] = tuple(None if v == "none" else v for v in out) \
            if isinstance(out, tuple) else out
    return kwargs


def _torch_module(node: dict[str, Any], x: torch.Tensor) -> torch.nn.Module:
    """The torch.nn module a node writes, its inferred sizes taken from the tensor in hand."""
    kwargs = _torch_kwargs(node)
    kind = node["type"]
    if kind.startswith("Conv"):
        kwargs["in_channels"] = x.shape[1]
    elif kind == "Linear":
        kwargs["in_features"] = x.shape[-1]
    elif kind.startswith(("BatchNorm", "InstanceNorm")):
        kwargs["num_features"] = x.shape[1]
    elif kind == "GroupNorm":
        kwargs["num_channels"] = x.shape[1]
    elif kind in ("LayerNorm", "RMSNorm"):
        kwargs["normalized_shape"] = x.shape[-1]
    return getattr(torch.nn, kind)(**kwargs)


class GraphRefused(Exception):
    """A node torch (or a rule of the graph syntax that torch has no opinion on) refuses."""


@dataclass
class GraphReference:
    """What torch says about a graph: per-node results in file order, up to the first refusal."""

    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # per sample, no batch axis
    params: dict[str, int] = field(default_factory=dict)  # 0 for merges and shared nodes
    inputs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    total_params: int = 0  # over the unique parameter tensors of every module, as model.parameters()
    refused: str | None = None  # the first node torch refuses
    refusal: str = ""  # torch's message (or the rule) for it
    outputs: tuple[str, ...] = ()
    # per node and axis: does the size depend on the input's spatial sizes (is it symbolic when
    # they are)? Channels and sizes set by out_channels/out_features/output_size do not.
    varies: dict[str, tuple[bool, ...]] = field(default_factory=dict)
    # merges where an input's size 1 that varies with the input sizes broadcast against a larger
    # size: valid at these sizes, but archcalc never takes a symbolic size as a broadcastable 1
    symbolic_broadcasts: list[str] = field(default_factory=list)


class GraphRunner:
    """Runs a graph node by node on real tensors (batch 2, modules in training mode, no grad)."""

    def __init__(self, input_shape: list[int]) -> None:
        self.env: dict[str, torch.Tensor] = {INPUT: torch.zeros((2, *input_shape))}
        self.modules: dict[str, torch.nn.Module] = {}  # a shared node maps to its target's module
        self.ref = GraphReference()
        self.ref.varies[INPUT] = (False,) + (True,) * (len(input_shape) - 1)
        self.above = INPUT

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.env[name].shape[1:])

    def step(self, node: dict[str, Any]) -> bool:
        """Run one node; False (and ``ref.refused`` set) when torch refuses it."""
        name = node["name"]
        inputs = node_inputs(node, self.above)
        self.above = name
        try:
            if name in self.env or name in self.ref.types:
                raise GraphRefused(f"duplicate name {name!r}")
            missing = [i for i in inputs if i not in self.env]
            if missing:
                raise GraphRefused(f"unknown input(s) {missing}")
            kind, out, params = self._run(node, [self.env[i] for i in inputs])
        except Exception as exc:  # noqa: BLE001  any refusal by torch is the answer
            self.ref.refused = name
            self.ref.refusal = f"{type(exc).__name__}: {exc}"
            return False
        self.env[name] = out
        self.ref.varies[name] = self._varies(node, kind, [self.env[i] for i in inputs],
                                             [self.ref.varies[i] for i in inputs], out)
        self.ref.shapes[name] = tuple(out.shape[1:])
        self.ref.params[name] = params
        self.ref.inputs[name] = inputs
        self.ref.types[name] = kind
        return True

    def _run(self, node: dict[str, Any], xs: list[torch.Tensor]) -> tuple[str, torch.Tensor, int]:
        name = node["name"]
        if "same_as" in node:
            target = node["same_as"]
            if target not in self.modules:  # a shared target passes on the module it applies
                raise GraphRefused(f"same_as {target!r}: not an earlier node with a module")
            kind = self.ref.types[target]
            if node.get("type", kind) != kind:
                raise GraphRefused(f"same_as {target!r} is a {kind}, not a {node['type']}")
            extra = [k for k in node if k not in _NODE_KEYS]
            if extra or len(xs) != 1:
                raise GraphRefused("a shared node writes no arguments and takes one input")
            module, params = self.modules[target], 0
        elif node["type"] in MERGES:
            kind = node["type"]
            return kind, self._merge(node, xs), 0
        else:
            kind = node["type"]
            if len(xs) != 1:
                raise GraphRefused(f"{kind} takes one input, got {len(xs)}")
            module = _torch_module(node, xs[0])
            params = sum(p.numel() for p in module.parameters())
        with torch.no_grad():
            out = module(xs[0])
        if out.numel() == 0:
            raise GraphRefused("empty output")
        self.modules[name] = module
        return kind, out, params

    @staticmethod
    def _merge(node: dict[str, Any], xs: list[torch.Tensor]) -> torch.Tensor:
        kind = node["type"]
        extra = [k for k in node if k not in _NODE_KEYS and not (kind == "Cat" and k == "dim")]
        if extra:
            raise GraphRefused(f"{kind} takes no argument {extra}")
        if len({x.dim() for x in xs}) > 1:
            # torch would broadcast [N] against [C, N]; the spec asks for one per-sample rank
            raise GraphRefused(f"{kind} of inputs with different ranks")
        if kind == "Cat":
            dim = node.get("dim", 1)
            if dim % xs[0].dim() == 0:
                raise GraphRefused("Cat along the batch axis")
            return torch.cat(xs, dim=dim)
        if len(xs) < 2:
            raise GraphRefused(f"{kind} needs two or more inputs")
        op = torch.add if kind == "Add" else torch.mul
        out = xs[0]
        for x in xs[1:]:
            out = op(out, x)
        return out

    def _varies(self, node: dict[str, Any], kind: str, xs: list[torch.Tensor],
                flags: list[tuple[bool, ...]], out: torch.Tensor) -> tuple[bool, ...]:
        """Which output sizes depend on the input's spatial sizes (a structural rule per kind)."""
        rank = out.dim() - 1
        if kind in ("Add", "Mul"):
            result = []
            for axis in range(rank):
                sizes = [x.shape[axis + 1] for x in xs]
                big = max(sizes)
                if big > 1 and any(s == 1 and f[axis] for s, f in zip(sizes, flags)) \
                        and node["name"] not in self.ref.symbolic_broadcasts:
                    self.ref.symbolic_broadcasts.append(node["name"])
                result.append(any(f[axis] for s, f in zip(sizes, flags) if s == big))
            return tuple(result)
        if kind == "Cat":
            return tuple(any(f[axis] for f in flags) for axis in range(rank))
        (flag,) = flags
        if kind == "Flatten":
            module: Any = self.modules[node["name"]]
            start, end = (d % (len(flag) + 1) - 1 for d in (module.start_dim, module.end_dim))
            return flag[:start] + (any(flag[start:end + 1]),) + flag[end + 1:]
        if kind == "Linear":
            return flag[:-1] + (False,)
        if kind.startswith("Conv"):
            return (False,) + flag[1:]
        if kind.startswith("Adaptive"):
            size: Any = self.modules[node["name"]].output_size
            wanted = size if isinstance(size, tuple) else (size,) * (len(flag) - 1)
            return flag[:1] + tuple(f if s is None else False for f, s in zip(flag[1:], wanted))
        if len(flag) != rank:
            raise AssertionError(f"no rule for how {kind} changes the rank")
        return flag

    def finish(self, outputs: str | list[str] | None) -> GraphReference:
        ref = self.ref
        if ref.refused is None:
            unique = torch.nn.ModuleList(self.modules.values())  # yields a shared tensor once
            ref.total_params = sum(p.numel() for p in unique.parameters())
            ref.outputs = (self.above,) if outputs is None else \
                ((outputs,) if isinstance(outputs, str) else tuple(outputs))
        return ref


def torch_graph_reference(input_shape: list[int], nodes: list[dict[str, Any]],
                          outputs: str | list[str] | None = None) -> GraphReference:
    """Per-node output shapes and parameter counts from torch; the first node it refuses, or None."""
    runner = GraphRunner(input_shape)
    with one_thread():
        for node in nodes:
            if not runner.step(node):
                break
    return runner.finish(outputs)


class _GraphDraw:
    """Grows a random DAG node by node, running each on real tensors to know the shapes in hand."""

    def __init__(self, draw: Any, shape: list[int]) -> None:
        self.draw = draw
        self.dims = len(shape) - 1
        self.run = GraphRunner(shape)
        self.nodes: list[dict[str, Any]] = []
        self.count = 0
        self.broken = False  # the last node is one torch refuses: the graph ends there

    # -- helpers
    def fresh(self) -> int:
        self.count += 1
        return self.count

    def shape(self, name: str) -> tuple[int, ...]:
        return self.run.shape(name)

    def names(self, rank: int | None = None) -> list[str]:
        everything = [INPUT, *self.run.ref.shapes]
        return [n for n in everything if rank is None or len(self.shape(n)) == rank]

    def pick(self, candidates: list[str]) -> str:
        """Mostly a recent node, sometimes any earlier one."""
        if self.draw(st.booleans()):
            return candidates[-1]
        return self.draw(st.sampled_from(candidates))

    def add(self, name: str, layer: dict[str, Any], inputs: list[str] | tuple[str, ...],
            keep_refused: bool | None = None) -> bool:
        """Append a node reading ``inputs``; one torch refuses is kept (ending the graph) only if
        ``keep_refused`` (None: drawn, mostly not). Nothing is added where an input was dropped."""
        if any(i not in self.run.env for i in inputs):
            return False
        above = self.nodes[-1]["name"] if self.nodes else INPUT
        node: dict[str, Any] = {"name": name}
        if "type" in layer:
            node["type"] = layer["type"]
        inputs = list(inputs)
        if inputs == [above] and self.draw(st.booleans()):
            pass  # the default: the node written just above
        elif len(inputs) == 1 and self.draw(st.booleans()):
            node["from"] = inputs[0]
        else:
            node["from"] = inputs
        node.update({k: v for k, v in layer.items() if k != "type"})
        saved_above = self.run.above
        if self.run.step(node):
            self.nodes.append(node)
            return True
        if keep_refused is None:
            keep_refused = self.draw(st.integers(0, 3)) == 0
        if keep_refused:
            self.nodes.append(node)
            self.broken = True
        else:
            self.run.above = saved_above
            self.run.ref.refused, self.run.ref.refusal = None, ""
        return False

    def conv(self, out_channels: int, kernel: int = 1, **extra: Any) -> dict[str, Any]:
        layer = {"type": f"Conv{self.dims}d", "out_channels": out_channels, "kernel_size": kernel}
        if kernel > 1:
            layer["padding"] = self.draw(st.sampled_from([kernel // 2, "same"]))
        if self.draw(st.integers(0, 3)) == 0:
            layer["bias"] = False
        layer.update(extra)
        return layer

    def spatial(self) -> list[str]:
        return self.names(self.dims + 1)

    # -- node kinds
    def window(self) -> None:
        src = self.pick(self.spatial())
        layer = window_layer(self.draw, self.dims)
        k = self.fresh()
        name = f"n{k}" if self.draw(st.booleans()) else f"s{k}.{layer['type'].lower()}"
        self.add(name, layer, [src])

    def generic(self) -> None:
        src = self.pick(self.names())
        layer = generic_layer(self.draw, len(self.shape(src)))
        k = self.fresh()
        name = f"n{k}" if self.draw(st.booleans()) else f"g{k}.{layer['type'].lower()}"
        self.add(name, layer, [src])

    def residual(self) -> None:
        """``Add`` of two or three nodes: a conv block and its skip, or earlier nodes of one size."""
        draw = self.draw
        base = self.pick(self.spatial())
        channels = self.shape(base)[0]
        k = self.fresh()
        mode = draw(st.sampled_from(["block", "block", "down", "nodes", "nodes", "mismatch"]))
        if mode == "down":  # ResNet's downsampling block: its shortcut must halve the sizes alike
            width = draw(st.integers(1, 6))
            main = {"type": f"Conv{self.dims}d", "out_channels": width, "kernel_size": 3, "stride": 2,
                    "padding": 1}
            if not self.add(f"d{k}.conv", main, [base], False):
                return
            shortcut = draw(st.sampled_from(["conv", "conv", "avg", "max"]))
            if shortcut == "conv":  # ceil(H/2), like the main path: always fits
                self.add(f"d{k}.short", self.conv(width, stride=2), [base])
            else:  # AvgPool: floor(H/2), fits only an even size; MaxPool with ceil_mode: ceil(H/2)
                halve = {"type": f"{shortcut.capitalize()}Pool{self.dims}d", "kernel_size": 2, "stride": 2}
                if shortcut == "max":
                    halve["ceil_mode"] = True
                self.add(f"d{k}.pool", halve, [base], False)
                self.add(f"d{k}.short", self.conv(width), [f"d{k}.pool"])
            self.add(f"d{k}.add", {"type": "Add"}, draw(st.permutations([f"d{k}.short", f"d{k}.conv"])), True)
            return
        if mode == "block":
            width = draw(st.sampled_from([channels, channels, draw(st.integers(1, 6))]))
            if not self.add(f"b{k}.conv", self.conv(width, draw(st.sampled_from([1, 3, 5]))), [base], False):
                return
            branch = f"b{k}.conv"
            if draw(st.booleans()):
                self.add(f"b{k}.act", {"type": draw(st.sampled_from(ACTIVATIONS))}, [branch])
                branch = f"b{k}.act"
            skip = base
            if width != channels and draw(st.integers(0, 5)):
                self.add(f"b{k}.proj", self.conv(width), [base])
                skip = f"b{k}.proj"
            self.add(f"b{k}.add", {"type": "Add"}, draw(st.permutations([skip, branch])), True)
            return
        spatial = self.shape(base)[1:]
        if mode == "nodes":
            pool = [n for n in self.spatial() if n != base and self.shape(n)[1:] == spatial]
        else:  # mostly refused: another size or rank (a size 1 broadcasts, and torch accepts it)
            pool = [n for n in self.names() if n != base and self.shape(n)[1:] != spatial]
        if not pool:
            return
        others = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=min(2, len(pool)), unique=True))
        inputs = [base]
        for j, other in enumerate(others):
            other_channels = self.shape(other)[0] if len(self.shape(other)) == self.dims + 1 else None
            if mode == "nodes" and other_channels != channels and draw(st.integers(0, 5)):
                self.add(f"b{k}.proj{j}", self.conv(channels), [other])
                other = f"b{k}.proj{j}"
            inputs.append(other)
        self.add(f"b{k}.add", {"type": "Add"}, draw(st.permutations(inputs)), True)

    def gate(self) -> None:
        """A squeeze-and-excitation gate: pool to 1, 1x1 conv(s), Sigmoid, times the feature map."""
        draw = self.draw
        base = self.pick(self.spatial())
        channels = self.shape(base)[0]
        k = self.fresh()
        size: Any = 1 if self.dims == 1 or draw(st.booleans()) else [1] * self.dims
        self.add(f"se{k}.pool", {"type": f"AdaptiveAvgPool{self.dims}d", "output_size": size}, [base])
        out = draw(st.sampled_from([channels] * 6 + [1, channels + 1]))  # 1 broadcasts; +1 is refused
        top = f"se{k}.pool"
        if draw(st.booleans()):
            self.add(f"se{k}.fc1", self.conv(draw(st.integers(1, 4))), [top])
            self.add(f"se{k}.relu", {"type": "ReLU"}, [f"se{k}.fc1"])
            top = f"se{k}.relu"
        self.add(f"se{k}.fc2", self.conv(out), [top])
        self.add(f"se{k}.gate", {"type": "Sigmoid"}, [f"se{k}.fc2"])
        self.add(f"se{k}.mul", {"type": "Mul"}, draw(st.permutations([base, f"se{k}.gate"])), True)

    def cat(self) -> None:
        """``Cat`` along the channels (mostly) or another axis, of nodes equal on the other axes."""
        draw = self.draw
        base = self.pick(self.spatial())
        rank = self.dims + 1
        dim = 1 if draw(st.integers(0, 3)) else draw(st.integers(2, rank))
        shape = self.shape(base)

        def fits(n: str) -> bool:
            other = self.shape(n)
            return len(other) == rank and all(a == b for i, (a, b) in enumerate(zip(shape, other))
                                              if i != dim - 1)
        mismatch = draw(st.integers(0, 5)) == 0
        pool = [n for n in self.names() if n != base and fits(n) != mismatch]
        if not pool:
            return
        others = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=min(2, len(pool)), unique=True))
        layer: dict[str, Any] = {"type": "Cat"}
        written = draw(st.sampled_from(["default", "positive", "positive", "negative"]))
        if dim != 1 or written != "default":
            layer["dim"] = dim - (rank + 1) if written == "negative" else dim
        k = self.fresh()
        self.add(f"c{k}.cat" if draw(st.booleans()) else f"n{k}", layer, draw(st.permutations([base, *others])),
                 True)

    def shared(self) -> None:
        """A node applying an earlier conv/linear's module (``same_as``), to a fitting input or not."""
        draw = self.draw
        targets = [n["name"] for n in self.nodes
                   if "same_as" not in n and n.get("type") in (f"Conv{self.dims}d", "Linear")]
        if not targets or draw(st.integers(0, 3)) == 0:  # a conv made to be applied again
            base = self.pick(self.spatial())
            k = self.fresh()
            if not self.add(f"r{k}.conv", self.conv(self.shape(base)[0], draw(st.sampled_from([1, 3]))),
                            [base], False):
                return
            targets = [f"r{k}.conv"]
        target = draw(st.sampled_from(targets))
        module = self.run.modules[target]
        if isinstance(module, torch.nn.Linear):
            def fit(n: str) -> bool:
                return self.shape(n)[-1] == module.in_features
            candidates = self.names()
            misfits = [n for n in self.names(1) if not fit(n)]
        else:
            def fit(n: str) -> bool:
                return self.shape(n)[0] == module.in_channels
            candidates = self.spatial()  # same rank: torch reads no other rank as unbatched
            misfits = [n for n in candidates if not fit(n)]
        refused = draw(st.integers(0, 4)) == 0
        pool = misfits if refused else [n for n in candidates if fit(n)]
        if not pool:
            return
        layer: dict[str, Any] = {"same_as": target}
        if draw(st.booleans()):
            layer["type"] = self.run.ref.types[target]
        src = self.pick(pool)
        for _ in range(draw(st.integers(1, 3))):  # applied again to its own output while it fits
            name = f"a{self.fresh()}.again" if draw(st.booleans()) else f"n{self.fresh()}"
            if not self.add(name, layer, [src], True if refused else None) or refused or not fit(name):
                return
            src = name

    def head(self) -> None:
        """Flatten (one node or two, concatenated) and a few Linear layers, some shared."""
        draw = self.draw
        k = self.fresh()
        src = self.pick(self.names())
        if not self.add(f"head{k}.flat", {"type": "Flatten"}, [src], False):
            return
        top = f"head{k}.flat"
        if draw(st.integers(0, 3)) == 0:
            other = self.pick(self.names())
            if self.add(f"head{k}.flat2", {"type": "Flatten"}, [other], False) and \
                    self.add(f"head{k}.cat", {"type": "Cat"}, [top, f"head{k}.flat2"], True):
                top = f"head{k}.cat"
        for j in range(draw(st.integers(0, 3))):
            if self.broken:
                return
            choice = draw(st.sampled_from(["linear", "linear", "square", "generic", "shared"]))
            name = f"head{k}.l{j}"
            if choice == "generic":
                self.add(name, generic_layer(draw, 1), [top])
            elif choice == "shared":
                linears = [n["name"] for n in self.nodes if n.get("type") == "Linear" and "same_as" not in n
                           and self.run.modules[n["name"]].in_features == self.shape(top)[-1]]
                if not linears:
                    continue
                self.add(name, {"same_as": draw(st.sampled_from(linears))}, [top])
            else:
                features = self.shape(top)[-1] if choice == "square" else draw(st.integers(1, 12))
                layer = {"type": "Linear", "out_features": features}
                if draw(st.integers(0, 3)) == 0:
                    layer["bias"] = False
                self.add(name, layer, [top])
            if not self.broken and self.nodes[-1]["name"] == name:
                top = name


@st.composite
def graph_architectures(draw: Any, dead_ends: bool = True
                        ) -> tuple[list[int], list[dict[str, Any]], str | list[str] | None]:
    """A per-sample input shape, a DAG of named nodes (mostly valid, some that torch refuses) and
    the `[output]` node(s) (None: the last node).

    With ``dead_ends`` (the default) some nodes feed no output (side branches, nodes below a
    non-last output); without, the `[output]` lists every node that no other node reads."""
    dims = draw(st.integers(1, 2))
    hi = {1: 32, 2: 14}[dims]
    shape = [draw(st.integers(1, 4))] + [draw(st.integers(1, hi)) for _ in range(dims)]
    with one_thread():
        return _draw_graph(draw, shape, dead_ends)


def _draw_graph(draw: Any, shape: list[int], dead_ends: bool
                ) -> tuple[list[int], list[dict[str, Any]], str | list[str] | None]:
    g = _GraphDraw(draw, shape)
    kinds = ["window"] * 3 + ["generic"] * 2 + ["residual"] * 3 + ["gate", "cat", "cat", "shared", "shared"]
    for _ in range(draw(st.integers(1, 7))):
        getattr(g, draw(st.sampled_from(kinds)))()
        if g.broken:
            break
    if not g.broken and draw(st.booleans()):
        g.head()
    if not g.nodes:  # every draw was refused and dropped
        g.add(f"n{g.fresh()}", {"type": draw(st.sampled_from(ACTIVATIONS))}, [INPUT])
    outputs: str | list[str] | None = None
    valid = [n["name"] for n in g.nodes if n["name"] in g.run.ref.shapes]
    if not dead_ends:
        read = {i for n in valid for i in g.run.ref.inputs[n]}
        sinks = [n for n in valid if n not in read]
        if sinks != valid[-1:]:
            outputs = draw(st.permutations(sinks))
    elif len(valid) > 1 and draw(st.integers(0, 3)) == 0:
        first: str = draw(st.sampled_from(valid[:-1]))
        outputs = first
        if draw(st.booleans()):
            second = draw(st.sampled_from(valid))
            outputs = [first, second] if second != first and draw(st.booleans()) else [first]
    return shape, g.nodes, outputs
