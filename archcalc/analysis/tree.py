"""The module tree of an analysis: dotted node names as folders (``layer1`` > ``layer1.0`` > ``conv1``).

Block uses name their nodes ``USE.COPY.LAYER``; hand-written dotted names form the same tree. A
summary to a depth (as torchinfo's ``depth``) shows every folder and node down to that depth,
each folder with its output shape and the parameters of everything in it.
"""

from __future__ import annotations

from dataclasses import dataclass

from archcalc.analysis.engine import Analysis, LayerResult
from archcalc.spec import Group
from archcalc.symbolic import Size, as_size


@dataclass(frozen=True)
class TreeRow:
    """One folder (group of nodes) or one node of the module tree."""

    name: str
    depth: int  # 1 for the top level
    nodes: tuple[LayerResult, ...]  # the nodes inside, in file order (the node itself for a leaf)
    output: LayerResult  # the node whose output is this row's output
    params: Size
    trainable_params: Size
    group: Group | None = None  # the block use, when the folder is one

    @property
    def is_leaf(self) -> bool:
        return len(self.nodes) == 1 and self.nodes[0].name == self.name

    @property
    def kind(self) -> str:
        """What the row is: the layer type, the block (``bottleneck x3`` for a repeat), or ``group``."""
        if self.is_leaf:
            return self.nodes[0].type
        if self.group is None:
            return "group"
        return f"{self.group.block} x{self.group.repeat}" if self.group.repeat is not None else self.group.block

    @property
    def index_range(self) -> str:
        first, last = self.nodes[0].index, self.nodes[-1].index
        return str(first) if first == last else f"{first}-{last}"


def module_tree(analysis: Analysis) -> tuple[TreeRow, ...]:
    """Every folder and node, in pre-order (a folder before what it holds), by first node."""
    return analysis.module_tree


def build_tree(analysis: Analysis) -> tuple[TreeRow, ...]:
    members: dict[str, list[LayerResult]] = {}
    for node in analysis.layers:
        parts = node.name.split(".")
        for i in range(1, len(parts) + 1):
            members.setdefault(".".join(parts[:i]), []).append(node)
    groups: dict[str, Group | None] = {}
    for g in analysis.spec.groups:  # several uses continuing one folder (features.2, features.4): no one block
        groups[g.name] = None if g.name in groups else g
    rows = []
    for name, nodes in members.items():  # dict order: each path first seen at its first node
        group = groups.get(name)
        output = analysis.node(group.output) if group is not None else _output_of(analysis, name, nodes)
        params: Size = 0
        trainable: Size = 0
        for node in nodes:
            params = as_size(params + node.params)
            trainable = as_size(trainable + node.trainable_params)
        rows.append(TreeRow(name, name.count(".") + 1, tuple(nodes), output, params, trainable, group))
    return tuple(rows)


def _output_of(analysis: Analysis, name: str, nodes: list[LayerResult]) -> LayerResult:
    """A hand-written folder's output: its one node read from outside (else its last node)."""
    inside = {n.name for n in nodes}
    outputs = set(analysis.spec.output_names)
    leaving = [n for n in nodes if n.name in outputs
               or any(s not in inside for s in analysis.successors(n.name))]
    return leaving[0] if len(leaving) == 1 else nodes[-1]


def summary(analysis: Analysis, depth: int) -> tuple[TreeRow, ...]:
    """The rows down to ``depth`` (1: the top level only)."""
    return tuple(row for row in module_tree(analysis) if row.depth <= depth)


def children(analysis: Analysis, row: TreeRow) -> tuple[TreeRow, ...]:
    """The rows directly inside a folder."""
    prefix = row.name + "."
    return tuple(r for r in module_tree(analysis)
                 if r.depth == row.depth + 1 and r.name.startswith(prefix))


def block_path(name: str) -> list[str]:
    """The folders a node sits in: ``layer1.0.conv1`` -> ``["layer1", "layer1.0"]``."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def max_depth(analysis: Analysis) -> int:
    return max((node.name.count(".") + 1 for node in analysis.layers), default=1)


def row(analysis: Analysis, name: str) -> TreeRow | None:
    return next((r for r in module_tree(analysis) if r.name == name), None)
