"""Modules for the merge kinds, which torch writes as functions (``x + y``, ``torch.cat``).

Every node of a built graph is then a module: it has a name, a row in torchinfo, and hooks.
"""

from __future__ import annotations

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
