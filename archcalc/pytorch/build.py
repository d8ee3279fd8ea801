"""ModelSpec -> torch.nn.Module: the spec as a real model, inferred sizes filled in."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from archcalc.analysis import Analysis, LayerResult, analyze
from archcalc.analysis.engine import is_chain
from archcalc.errors import ShapeError, TorchMissingError, TorchRefusedError
from archcalc.layers.registry import INFERRED, ArgError
from archcalc.spec import INPUT, ModelSpec
from archcalc.symbolic import Size, evaluate, is_number, shape_str

if TYPE_CHECKING:
    import torch


def import_torch(extra: str = "torch", alternative: str = "") -> Any:
    """Import torch once, with an install hint when it is missing."""
    try:
        import torch
    except ImportError:
        raise TorchMissingError(f"torch is not installed; install it with "
                                f"pip install 'archcalc[{extra}]'{alternative}") from None
    return torch


def build(spec: ModelSpec, values: Mapping[str, int] | None = None) -> torch.nn.Module:
    """The spec as a torch model: an ``nn.Sequential`` for a chain, a ``torch.fx.GraphModule`` for a graph.

    ``values`` bind symbols (over the spec's ``[symbols]``); inferred sizes such as
    ``in_features`` must be numbers once they are bound. Modules are named after the nodes
    (dotted names nest, as in ``layer1.0.conv1``), so ``named_parameters()`` follows the spec.
    Raises ``ShapeError`` for an unbound size and ``TorchRefusedError`` when torch refuses a layer.
    """
    return build_from_analysis(analyze(spec, values))


def build_from_analysis(analysis: Analysis, values: Mapping[str, int] | None = None,
                        outputs: Sequence[str] | None = None) -> torch.nn.Module:
    """Build from an analysis, at its own symbol values or at ``values``.

    Every node of the spec is built, as a torch model creates every module in ``__init__``, even
    one that no output needs. ``outputs`` names other output nodes than the spec's (the bench
    trains on the logits below a final Softmax this way); then only the nodes they need are built.
    """
    torch = import_torch()
    point = dict(analysis.values if values is None else values)
    wanted = tuple(outputs) if outputs is not None else analysis.spec.output_names
    needed = analysis.ancestors(wanted, owners=True) if outputs is not None else set(analysis.names)
    modules: dict[str, Any] = {}
    for node in analysis.layers:
        if node.name in needed and node.shared_with is None:
            in_shape = tuple(evaluate(s, point) for s in node.in_shape)
            modules[node.name] = make_module(torch, node, in_shape)
    chain = [node for node in analysis.layers if node.name in needed]
    if is_chain(chain, wanted) and not any("." in node.name for node in chain):  # Sequential: no dots
        return torch.nn.Sequential(OrderedDict(modules))
    return _graph_module(torch, analysis.spec.name, chain, modules, wanted)


def _graph_module(torch: Any, name: str, nodes: list[LayerResult], modules: dict[str, Any],
                  outputs: Sequence[str]) -> Any:
    """A ``torch.fx.GraphModule``: one ``call_module`` per node, in the spec's order."""
    import keyword

    from torch import fx

    for node in nodes:  # names become attributes and generated code: refuse what would break them
        for part in node.name.split("."):
            if keyword.iskeyword(part) or part in ("self", "training") or part.startswith("_") or '"' in part \
                    or "\\" in part or hasattr(torch.nn.Module, part):
                raise ShapeError(f"{node.layer.label}: the name part {part!r} cannot name a module of a "
                                 "torch graph (a Python keyword, 'self', a leading '_', a quote or backslash, "
                                 "or an nn.Module attribute such as 'forward'): rename the layer")

    graph = fx.Graph()
    env = {INPUT: graph.placeholder("x")}
    for node in nodes:
        args = tuple(env[source] for source in node.inputs)
        env[node.name] = graph.call_module(node.shared_with or node.name, args)
    results = [env[out] for out in outputs]
    graph.output(results[0] if len(results) == 1 else tuple(results))
    class_name = "".join(ch for ch in name.title() if ch.isalnum()) or "Model"
    return fx.GraphModule(modules, graph, class_name=class_name if class_name[0].isalpha() else "Model")


def torch_kwargs(node: LayerResult, in_shape: tuple[Size, ...]) -> dict[str, Any]:
    """The constructor arguments: what the spec wrote plus the inferred sizes."""
    layer, kind = node.layer, node.kind
    try:
        full = kind.torch_kwargs(in_shape, layer.args)
    except ArgError as exc:
        raise ShapeError(f"{layer.label}: {exc}") from None
    inferred = {k for k, a in kind.args.items() if a.default is INFERRED}
    kwargs = {k: v for k, v in full.items() if k in layer.written or k in inferred}
    for key in inferred & kwargs.keys():
        if not is_number(kwargs[key]) and not isinstance(kwargs[key], (list, tuple)):
            raise ShapeError(f"{layer.label}: {key} is {kwargs[key]}, not a number: give the "
                             f"symbols values to build the model "
                             f"(input {shape_str(in_shape)})")
    return kwargs


def torch_message(exc: BaseException) -> str:
    """The first line of a torch error, with its type."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()


def make_module(torch: Any, node: LayerResult, in_shape: tuple[Size, ...]) -> Any:
    """One ``torch.nn`` module; frozen (requires_grad False) when the spec says trainable = false."""
    kwargs = torch_kwargs(node, in_shape)
    layer = node.layer
    try:
        module = node.kind.build_module(torch, kwargs)
    except Exception as exc:  # noqa: BLE001  whatever torch raises, name the layer
        raise TorchRefusedError(layer.label, torch_message(exc)) from None
    if not layer.trainable:
        module.requires_grad_(False)
    return module

