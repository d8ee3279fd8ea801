"""archcalc: exact shapes, parameter counts and benchmarks for neural networks written as TOML.

Public API::

    from archcalc import load_spec, analyze
    analysis = analyze(load_spec("specs/speech_cnn.toml"))
    analysis.total_params   # 346067
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "analyze", "load_spec", "parse_spec", "bundled_spec", "check_expectations",
           "build", "crosscheck", "assert_spec"]

if TYPE_CHECKING:
    from archcalc.analyze import analyze
    from archcalc.build import build
    from archcalc.checks import check_expectations
    from archcalc.crosscheck import assert_spec, crosscheck
    from archcalc.spec import bundled_spec, load_spec, parse_spec

_LAZY = {
    "analyze": "archcalc.analyze", "load_spec": "archcalc.spec", "parse_spec": "archcalc.spec",
    "bundled_spec": "archcalc.spec", "check_expectations": "archcalc.checks",
    "build": "archcalc.build", "crosscheck": "archcalc.crosscheck", "assert_spec": "archcalc.crosscheck",
}


def __getattr__(name: str) -> Any:
    # lazy, so that `import archcalc` costs nothing and torch loads only when asked for
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'archcalc' has no attribute {name!r}")
