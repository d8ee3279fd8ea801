"""Modules for the kinds torch writes as functions (``x + y``, ``torch.cat``, ``x.permute``), and
wrappers of torch's sequence modules whose forward returns a tuple.

Every node of a built graph is then a module: it has a name, a row in torchinfo, and hooks.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn


class Add(nn.Module):
    """``x1 + x2 + ...`` with broadcasting."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Mul(nn.Module):
    """``x1 * x2 * ...`` with broadcasting (a squeeze-and-excitation gate)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


class Cat(nn.Module):
    """``torch.cat(xs, dim)``; dim counts the batch axis."""

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


# --------------------------------------------------------------------------- axis moves and reductions


class Permute(nn.Module):
    """``x.permute(*dims)``; dims count the batch axis, which stays at 0."""

    def __init__(self, dims: tuple[int, ...] | list[int]) -> None:
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class Transpose(nn.Module):
    """``x.transpose(dim0, dim1)``; the dims count the batch axis."""

    def __init__(self, dim0: int, dim1: int) -> None:
        super().__init__()
        self.dim0, self.dim1 = dim0, dim1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(self.dim0, self.dim1)

    def extra_repr(self) -> str:
        return f"dim0={self.dim0}, dim1={self.dim1}"


class Mean(nn.Module):
    """``x.mean(dim, keepdim)``: a time average (global pooling over frames)."""

    def __init__(self, dim: int | tuple[int, ...] | list[int], keepdim: bool = False) -> None:
        super().__init__()
        self.dim = tuple(dim) if isinstance(dim, (list, tuple)) else dim
        self.keepdim = keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=self.dim, keepdim=self.keepdim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, keepdim={self.keepdim}"


class Sum(Mean):
    """``x.sum(dim, keepdim)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=self.dim, keepdim=self.keepdim)


# --------------------------------------------------------------------------- sequence modules
# torch's recurrent and attention modules return tuples (output, state / weights) and lay a
# sequence out time-first unless batch_first: these subclasses keep torch's parameters and
# names, return the output sequence only, and take the model's (N, T, F) tensor whatever
# batch_first says (with batch_first = false they transpose to (T, N, F) and back).


def _time_first(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(0, 1)  # (N, T, F) <-> (T, N, F)


def _output_only(forward: Any, batch_first: bool, x: torch.Tensor) -> torch.Tensor:
    """The output sequence of a recurrent module's ``(output, state)``, for an (N, T, F) input."""
    if batch_first:
        return forward(x)[0]
    return _time_first(forward(_time_first(x))[0])


class RNN(nn.RNN):
    """``nn.RNN`` returning the output sequence (N, T, D*H) only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return _output_only(super().forward, self.batch_first, x)


class LSTM(nn.LSTM):
    """``nn.LSTM`` returning the output sequence (N, T, D*H_out) only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if not self.proj_size:
            return _output_only(super().forward, self.batch_first, x)
        with warnings.catch_warnings():  # "LSTM with projections is not supported with oneDNN": torch's own path runs
            warnings.filterwarnings("ignore", message="LSTM with projections")
            return _output_only(super().forward, self.batch_first, x)


class GRU(nn.GRU):
    """``nn.GRU`` returning the output sequence (N, T, D*H) only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return _output_only(super().forward, self.batch_first, x)


class MultiheadAttention(nn.MultiheadAttention):
    """``nn.MultiheadAttention`` on one input (self-attention) or on query, key and value;
    returns the attention output only (no weights)."""

    def forward(self, query: torch.Tensor, key: torch.Tensor | None = None,  # type: ignore[override]
                value: torch.Tensor | None = None) -> torch.Tensor:
        if key is None or value is None:
            key = value = query
        if self.batch_first:
            return super().forward(query, key, value, need_weights=False)[0]
        out = super().forward(_time_first(query), _time_first(key), _time_first(value), need_weights=False)[0]
        return _time_first(out)


class TransformerEncoderLayer(nn.TransformerEncoderLayer):
    """``nn.TransformerEncoderLayer`` that takes the model's (N, T, E) tensor whatever batch_first says."""

    def forward(self, src: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if self.self_attn.batch_first:
            return super().forward(src)
        return _time_first(super().forward(_time_first(src)))


class TransformerDecoderLayer(nn.TransformerDecoderLayer):
    """``nn.TransformerDecoderLayer`` of (tgt, memory), each (N, T, E) whatever batch_first says."""

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if self.self_attn.batch_first:
            return super().forward(tgt, memory)
        return _time_first(super().forward(_time_first(tgt), _time_first(memory)))


class TransformerEncoder(nn.TransformerEncoder):
    """``nn.TransformerEncoder(nn.TransformerEncoderLayer(**layer), num_layers, enable_nested_tensor=False)``."""

    def __init__(self, num_layers: int, **layer: object) -> None:
        super().__init__(nn.TransformerEncoderLayer(**layer), num_layers,  # type: ignore[arg-type]
                         enable_nested_tensor=False)

    def forward(self, src: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if self.layers[0].self_attn.batch_first:
            return super().forward(src)
        return _time_first(super().forward(_time_first(src)))
