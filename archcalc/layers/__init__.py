"""Layer kinds, registered by their ``torch.nn`` class names on import."""

from archcalc.layers import act, conv, linear, merge, norm, reshape, upsample  # noqa: F401  (register kinds)
from archcalc.layers.registry import REGISTRY, LayerKind, get_kind

__all__ = ["REGISTRY", "LayerKind", "get_kind"]
