"""Blocks for an imported model: sub-modules whose nodes are identical are written once.

A sub-module (``layer1.1``, a Bottleneck) is a candidate when its nodes are contiguous in the
spec, it reads one node from outside and one of its nodes is read from outside. Candidates with
the same class and the same nodes (local names, kinds, arguments, wiring) share one
``[blocks.NAME]``; consecutive siblings become one use with ``repeat`` (and ``first_index``).
The written text expands to exactly the flat node list, which the importer checks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from archcalc.layers import REGISTRY
from archcalc.spec import INPUT


@dataclass
class Instance:
    path: str
    start: int  # index of its first node in the flat list
    stop: int  # one past its last node
    source: str  # the node it reads from outside
    output: str  # its node read from outside
    signature: tuple[Any, ...]


def _prefix(name: str, path: str) -> bool:
    return name.startswith(path + ".")


def instances(nodes: Sequence[Any], outputs: Sequence[str], classes: dict[str, str]) -> list[Instance]:
    """Every sub-module that could be a block use, with its signature."""
    position = {node.name: i for i, node in enumerate(nodes)}
    readers: dict[str, set[str]] = {}
    for node in nodes:
        for source in node.inputs:
            readers.setdefault(source, set()).add(node.name)
        if node.same_as:
            readers.setdefault(node.same_as, set()).add(node.name)
    found = []
    for path, cls in classes.items():
        inside = [i for i, node in enumerate(nodes) if _prefix(node.name, path)]
        if len(inside) < 2 or inside != list(range(inside[0], inside[-1] + 1)):
            continue
        names = {nodes[i].name for i in inside}
        external = {s for i in inside for s in nodes[i].inputs if s not in names}
        shared_out = any(nodes[i].same_as and nodes[i].same_as not in names for i in inside)
        leaving = [n for n in names if n in outputs or any(r not in names for r in readers.get(n, ()))]
        if len(external) != 1 or shared_out or len(leaving) != 1:
            continue
        source, output = external.pop(), leaving[0]
        if any(r not in names and position.get(r, -1) < inside[0] for r in readers.get(output, ())):
            continue
        found.append(Instance(path, inside[0], inside[-1] + 1, source, output,
                              _signature(nodes, inside, path, source, output, cls)))
    return found


def _signature(nodes: Sequence[Any], inside: list[int], path: str, source: str, output: str,
               cls: str) -> tuple[Any, ...]:
    cut = len(path) + 1

    def local(name: str) -> str:
        return INPUT if name == source else name[cut:]

    rows = tuple((nodes[i].name[cut:], nodes[i].type, json.dumps(nodes[i].args, sort_keys=True),
                  tuple(local(s) for s in nodes[i].inputs), local(nodes[i].same_as) if nodes[i].same_as else None)
                 for i in inside)
    return (cls, rows, local(output))


def choose(found: list[Instance]) -> list[tuple[Instance, str]]:
    """The instances written as block uses, each with its block's name: signatures seen twice or more,
    larger sub-modules first, never overlapping."""
    by_signature: dict[tuple[Any, ...], list[Instance]] = {}
    for inst in found:
        by_signature.setdefault(inst.signature, []).append(inst)
    groups = [g for g in by_signature.values() if len(g) >= 2]
    groups.sort(key=lambda g: -(g[0].stop - g[0].start) * len(g))
    taken: list[tuple[int, int]] = []
    picked: list[tuple[Instance, int]] = []
    for number, group in enumerate(groups):
        free = [i for i in group if all(i.stop <= a or i.start >= b for a, b in taken)]
        if len(free) < 2:
            continue
        for inst in free:
            taken.append((inst.start, inst.stop))
            picked.append((inst, number))
    picked.sort(key=lambda pair: pair[0].start)
    names: dict[int, str] = {}  # numbered in the order the blocks are first used
    counts: dict[str, int] = {}
    for inst, number in picked:
        if number not in names:
            base = re.sub(r"\W", "_", inst.signature[0]).lower().strip("_") or "block"
            if not base[0].isalpha() or base in REGISTRY:
                base = f"block_{base}"
            counts[base] = counts.get(base, 0) + 1
            names[number] = base if counts[base] == 1 else f"{base}_{counts[base]}"
    return [(inst, names[number]) for inst, number in picked]


def uses(chosen: list[tuple[Instance, str]]) -> list[tuple[list[Instance], str]]:
    """Runs of consecutive sibling copies (``layer1.1``, ``layer1.2``) of one block, in node order."""
    runs: list[tuple[list[Instance], str]] = []
    for inst, block in chosen:
        if runs:
            last, last_block = runs[-1]
            prev = last[-1]
            parent, _, index = inst.path.rpartition(".")
            prev_parent, _, prev_index = prev.path.rpartition(".")
            if (block == last_block and parent and parent == prev_parent and index.isdigit()
                    and prev_index.isdigit() and int(index) == int(prev_index) + 1 and inst.start == prev.stop
                    and inst.source == prev.output):
                last.append(inst)
                continue
        runs.append(([inst], block))
    return runs
