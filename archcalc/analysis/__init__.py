"""ModelSpec -> Analysis, and the questions asked of an analysis (expectations, cost, solve, lint)."""

from archcalc.analysis.engine import Analysis, LayerResult, SymbolRange, analyze

__all__ = ["Analysis", "LayerResult", "SymbolRange", "analyze"]
