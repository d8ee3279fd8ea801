"""archcalc: exact shapes, parameter counts and benchmarks for neural networks written as TOML.

Public API::

    from archcalc import load_spec, analyze
    analysis = analyze(load_spec("specs/speech_cnn.toml"))
    analysis.total_params                      # 346067

    model = archcalc.build(load_spec("specs/speech_cnn.toml"))   # torch.nn.Sequential
    archcalc.assert_spec("specs/speech_cnn.toml")                # for pytest in other projects

torch is imported only by ``build``, ``crosscheck`` and ``assert_spec``, when they are called.
"""

from __future__ import annotations

from archcalc.analysis import Analysis, LayerResult, analyze
from archcalc.analysis.expectations import CheckResult, check_expectations
from archcalc.errors import ArchcalcError, CheckError, DataError, ShapeError, SpecError
from archcalc.pytorch.build import build
from archcalc.pytorch.crosscheck import assert_spec, crosscheck
from archcalc.spec import LayerSpec, ModelSpec, bundled_spec, load_spec, parse_spec

__version__ = "0.1.0"

__all__ = [
    "Analysis", "ArchcalcError", "CheckError", "CheckResult", "DataError", "LayerResult", "LayerSpec",
    "ModelSpec", "ShapeError", "SpecError", "__version__", "analyze", "assert_spec", "build",
    "bundled_spec", "check_expectations", "crosscheck", "load_spec", "parse_spec",
]
