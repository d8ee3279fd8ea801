"""TOML -> ModelSpec: read once, validate at the boundary, errors with file:line."""

from archcalc.spec.model import INPUT, Expectations, Group, LayerSpec, ModelSpec
from archcalc.spec.reader import BUNDLED, bundled_spec, display_path, load_spec, parse_spec

__all__ = ["BUNDLED", "INPUT", "Expectations", "Group", "LayerSpec", "ModelSpec", "bundled_spec", "display_path",
           "load_spec", "parse_spec"]
