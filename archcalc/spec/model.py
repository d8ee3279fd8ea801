"""The validated spec: frozen dataclasses that nothing downstream re-reads as raw TOML."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from archcalc.symbolic import Size

INPUT = "input"  # the name of the model input in `from` and in the graph


@dataclass(frozen=True)
class LayerSpec:
    """One validated node: its torch type, its arguments (defaults filled), inputs and expectations.

    ``inputs`` is resolved by the reader: the layer written above (or the model input) when the
    spec has no ``from``. ``same_as`` names the node whose module this one applies (shared weights).
    """

    index: int  # 1-based position in the spec
    name: str
    type: str
    args: Mapping[str, Any]
    written: frozenset[str]  # argument names the spec wrote (the rest are torch's defaults)
    inputs: tuple[str, ...] = ()
    same_as: str | None = None
    expect_shape: tuple[Size, ...] | None = None
    expect_params: int | None = None
    trainable: bool = True
    line: int | None = None

    @property
    def label(self) -> str:
        return f"layer {self.index} {self.name!r} ({self.type})"


@dataclass(frozen=True)
class Group:
    """One use of a block: the nodes named ``NAME.*`` that it stamped out.

    A use with ``repeat = N`` is a group (``layer1``, ``repeat`` set) holding one group per copy
    (``layer1.0`` ...). ``output`` is the node whose output is the group's output.
    """

    name: str
    block: str
    args: Mapping[str, Any]
    output: str
    repeat: int | None = None
    line: int | None = None
    expect_shape: tuple[Size, ...] | None = None
    expect_params: int | None = None
    first: Mapping[str, Any] | None = None  # a repeat's arguments for its first copy

    @property
    def label(self) -> str:
        what = f"{self.repeat} x {self.block}" if self.repeat is not None else self.block
        return f"block {self.name!r} ({what})"


@dataclass(frozen=True)
class Expectations:
    total_params: int | None = None
    trainable_params: int | None = None
    output_shape: tuple[Size, ...] | None = None


@dataclass(frozen=True)
class ModelSpec:
    """A whole model as read from a spec file: a graph of named nodes in a topological (file) order."""

    source: str
    name: str
    description: str
    input_shape: tuple[int | str, ...]
    symbols: Mapping[str, int]  # default values from [symbols]
    layers: tuple[LayerSpec, ...]
    outputs: tuple[str, ...] = ()  # the [output] nodes; empty means the last layer
    groups: tuple[Group, ...] = ()  # the block uses, each after the groups it contains
    blocks: tuple[str, ...] = ()  # the names of the [blocks] defined, used or not
    input_dtype: str = "float32"  # "long": the input holds indices (for Embedding)
    expect: Expectations = field(default_factory=Expectations)
    train: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    lint: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def symbol_names(self) -> tuple[str, ...]:
        return tuple(s for s in self.input_shape if isinstance(s, str))

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.outputs or (self.layers[-1].name,)
