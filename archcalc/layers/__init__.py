"""Layer kinds, registered by their ``torch.nn`` class names on import."""

from archcalc.layers import (  # noqa: F401  (register kinds)
    act,
    attention,
    conv,
    embedding,
    linear,
    merge,
    norm,
    pad,
    pool,
    recurrent,
    reshape,
    shape,
    upsample,
)
from archcalc.layers.registry import REGISTRY, LayerKind, get_kind

__all__ = ["REGISTRY", "LayerKind", "get_kind"]
