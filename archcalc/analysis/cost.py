"""Receptive fields, MACs/FLOPs and activation memory, as formulas in the input sizes.

Conventions (stated wherever the numbers are shown):
- MACs: multiply-accumulates of the forward pass per sample: conv, linear, recurrent and attention layers
  (``Cout*H*W * K*K*Cin/groups`` and ``in*out`` per position); bias additions, activations,
  pooling and normalization count 0, as in ``torch.utils.flop_counter.FlopCounterMode``.
- FLOPs = 2 x MACs (forward). Training FLOPs = 3 x forward FLOPs (the backward pass computes
  gradients for the inputs and the weights: about twice the forward).
- Activation memory: every layer's output kept for the backward pass, plus the input, for a batch
  and an element size; in-place operations would need less.
- Receptive field per spatial axis: size ``r``, jump ``j`` (distance in input pixels between
  neighbouring outputs) and ``start`` (the centre of the first output's field, in input pixel
  coordinates, 0 = the first pixel's centre); ``r_out = r + (d(k-1)) j``, ``j_out = j s``,
  ``start_out = start + (d(k-1)/2 - p) j``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from archcalc.analysis.engine import Analysis, LayerResult
from archcalc.layers.conv import AXES
from archcalc.layers.registry import product
from archcalc.spec import INPUT
from archcalc.symbolic import Size, as_size

DTYPE_BYTES = {"float32": 4, "float64": 8, "float16": 2, "bfloat16": 2}


@dataclass(frozen=True)
class LayerCost:
    index: int
    name: str
    macs: Size
    flops: Size
    train_flops: Size
    activations: Size  # output elements per sample


@dataclass(frozen=True)
class CostReport:
    layers: tuple[LayerCost, ...]
    total_macs: Size
    total_flops: Size
    total_train_flops: Size
    activation_elements: Size  # per sample, input included
    activation_bytes: Size  # for the batch and dtype
    batch: int
    dtype: str


def cost(analysis: Analysis, batch: int = 1, dtype: str = "float32") -> CostReport:
    """Per-node and total compute, and activation memory for ``batch`` samples of ``dtype``.

    A shared module costs MACs at every node that applies it.
    """
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}: use {', '.join(DTYPE_BYTES)}")
    rows = []
    for row in analysis.layers:
        macs = row.kind.macs_all(row.in_shapes, row.out_shape, row.args)  # cross-attention: the key's length
        rows.append(LayerCost(row.index, row.name, macs, as_size(2 * macs), as_size(6 * macs),
                              product(list(row.out_shape))))
    total_macs = as_size(sum((r.macs for r in rows), start=0))
    elements = as_size(product(list(analysis.input_shape)) + sum((r.activations for r in rows), start=0))
    return CostReport(tuple(rows), total_macs, as_size(2 * total_macs), as_size(6 * total_macs), elements,
                      as_size(elements * batch * DTYPE_BYTES[dtype]), batch, dtype)


@dataclass(frozen=True)
class AxisField:
    size: int
    jump: int
    start: Fraction


Field = tuple[AxisField, ...] | str | None  # per axis; None: the whole input; str: why not tracked


def receptive_fields(analysis: Analysis) -> tuple[tuple[str, ...], list[Field]]:
    """Axis names and, per node, the receptive field on each spatial axis.

    None means the whole input; a text says why the field is not tracked ("mixed jumps" where
    branches of different strides meet, "after upsampling"). A merge takes the union of its
    inputs' fields when their jumps agree.
    """
    n_axes = len(analysis.input_shape) - 1
    names = AXES.get(n_axes, tuple(f"axis{i + 1}" for i in range(n_axes)))
    if n_axes < 1:
        return (), [None for _ in analysis.layers]
    fields: dict[str, Field] = {INPUT: tuple(AxisField(1, 1, Fraction(0)) for _ in range(n_axes))}
    for row in analysis.layers:
        fields[row.name] = _node_field(row, [fields[name] for name in row.inputs])
    return names, [fields[row.name] for row in analysis.layers]


AXIS_MOVES = ("Permute", "Transpose", "Unflatten", "PixelShuffle", "PixelUnshuffle")  # positions change meaning


def _node_field(row: LayerResult, inputs: list[Field]) -> Field:
    if len(inputs) > 1:
        if "dim" in row.args and row.args["dim"] % (len(row.in_shape) + 1) != 1:
            return "not tracked (joined along a spatial axis)"
        return _union(inputs)
    current = inputs[0]
    if current is None or isinstance(current, str) or row.kind.spans_input():
        return None if row.kind.spans_input() else current
    if row.kind.family in ("conv_transpose", "upsample"):
        return "after upsampling"
    if row.type in AXIS_MOVES:
        return "not tracked (axes moved)"
    if row.kind.family == "pad":
        return "not tracked (after a padding layer)"
    window = row.kind.window(row.args)
    if window is None or len(window[0]) != len(current):
        return current
    k, s, p, d = window
    return tuple(AxisField(f.size + d[a] * (k[a] - 1) * f.jump, f.jump * s[a],
                           f.start + (Fraction(d[a] * (k[a] - 1), 2) - p[a]) * f.jump)
                 for a, f in enumerate(current))


def _union(inputs: list[Field]) -> Field:
    """Where branches meet: every input pixel any branch sees, when the jumps agree."""
    if any(f is None for f in inputs):
        return None
    texts = [f for f in inputs if isinstance(f, str)]
    if texts:
        return texts[0]
    tuples = [f for f in inputs if isinstance(f, tuple)]
    out = []
    for axis_fields in zip(*tuples, strict=True):
        if len({f.jump for f in axis_fields}) > 1:
            return "mixed jumps"
        lo = min(f.start - Fraction(f.size - 1, 2) for f in axis_fields)
        hi = max(f.start + Fraction(f.size - 1, 2) for f in axis_fields)
        out.append(AxisField(int(hi - lo) + 1, axis_fields[0].jump, (lo + hi) / 2))
    return tuple(out)
