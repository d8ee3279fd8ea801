"""ModelSpec -> torch.nn.Module: the spec as a real model, inferred sizes filled in."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from archcalc.analysis import Analysis, analyze
from archcalc.errors import ShapeError, TorchMissingError, TorchRefusedError
from archcalc.layers import get_kind
from archcalc.layers.registry import INFERRED, ArgError
from archcalc.spec import LayerSpec, ModelSpec
from archcalc.symbolic import Size, evaluate, is_number, shape_str

if TYPE_CHECKING:
    import torch


def import_torch(extra: str = "torch", alternative: str = " (or use --no-torch)") -> Any:
    """Import torch once, with an install hint when it is missing."""
    try:
        import torch
    except ImportError:
        raise TorchMissingError(f"torch is not installed; install it with "
                                f"pip install 'archcalc[{extra}]'{alternative}") from None
    return torch


def build(spec: ModelSpec, values: Mapping[str, int] | None = None) -> torch.nn.Sequential:
    """The spec as an ``nn.Sequential`` of named modules, in spec order.

    ``values`` bind symbols (over the spec's ``[symbols]``); inferred sizes such as
    ``in_features`` must be numbers once they are bound.
    """
    return build_from_analysis(analyze(spec, values))


def build_from_analysis(analysis: Analysis, values: Mapping[str, int] | None = None) -> torch.nn.Sequential:
    """Build from an analysis, at its own symbol values or at ``values``."""
    torch = import_torch()
    point = dict(analysis.values if values is None else values)
    modules: OrderedDict[str, Any] = OrderedDict()
    for layer, row in zip(analysis.spec.layers, analysis.layers):
        in_shape = tuple(evaluate(s, point) for s in row.in_shape)
        modules[layer.name] = make_module(torch, layer, in_shape)
    return torch.nn.Sequential(modules)


def torch_kwargs(layer: LayerSpec, in_shape: tuple[Size, ...]) -> dict[str, Any]:
    """The constructor arguments: what the spec wrote plus the inferred sizes."""
    kind = get_kind(layer.type)
    assert kind is not None
    try:
        full = kind.torch_kwargs(in_shape, layer.args)
    except ArgError as exc:
        raise ShapeError(f"{layer.label}: {exc}") from None
    inferred = {k for k, a in kind.args.items() if a.default is INFERRED}
    kwargs = {k: v for k, v in full.items() if k in layer.written or k in inferred}
    for key in inferred & kwargs.keys():
        if not is_number(kwargs[key]) and not isinstance(kwargs[key], (list, tuple)):
            raise ShapeError(f"{layer.label}: {key} is {kwargs[key]}, not a number: give the "
                             f"symbols values (--set or [symbols]) to build the model "
                             f"(input {shape_str(in_shape)})")
    return kwargs


def torch_message(exc: BaseException) -> str:
    """The first line of a torch error, with its type."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()


def make_module(torch: Any, layer: LayerSpec, in_shape: tuple[Size, ...]) -> Any:
    """One ``torch.nn`` module; frozen (requires_grad False) when the spec says trainable = false."""
    kwargs = torch_kwargs(layer, in_shape)
    try:
        module = getattr(torch.nn, layer.type)(**kwargs)
    except Exception as exc:  # noqa: BLE001  whatever torch raises, name the layer
        raise TorchRefusedError(layer.label, torch_message(exc)) from None
    if not layer.trainable:
        module.requires_grad_(False)
    return module

