"""Property tests for graph specs (named nodes, `from`, Add/Mul/Cat merges, `same_as` sharing):
random DAGs agree with an independent torch runner, numerically and symbolically."""

from __future__ import annotations

import itertools
import re

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from torch_reference import (
    GRAPH_SYMBOLS,
    INPUT,
    graph_architectures,
    one_thread,
    spec_text,
    torch_graph_reference,
)

from archcalc import analyze, build, crosscheck, parse_spec
from archcalc.errors import ShapeError, SpecError
from archcalc.symbolic import evaluate

SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}


def _named(message: str, nodes: list[dict]) -> list[int]:
    """Positions (0-based) of the nodes an error message names (quoted, as a label writes them)."""
    return [i for i, node in enumerate(nodes)
            if re.search(f"['\"]{re.escape(node['name'])}['\"]", message)]


def _inputs(analysis_row) -> tuple[str, ...]:
    return tuple(analysis_row.inputs)


@settings(max_examples=80, **SETTINGS)
@given(graph_architectures())
def test_graph_shapes_and_params_match_torch(graph):
    shape, nodes, outputs = graph
    text = spec_text(shape, nodes, outputs=outputs)
    ref = torch_graph_reference(shape, nodes, outputs)
    try:
        analysis = analyze(parse_spec(text, "graph.toml"))
    except (ShapeError, SpecError) as exc:
        assert ref.refused is not None, f"archcalc refused, torch ran every node: {exc}\n{text}"
        refused_at = next(i for i, node in enumerate(nodes) if node["name"] == ref.refused)
        named = _named(str(exc), nodes)
        # the message may name the refused node's inputs, never a node below it
        assert all(i <= refused_at for i in named), (ref.refused, str(exc))
        return
    assert ref.refused is None, f"torch refused {ref.refused!r} ({ref.refusal}), archcalc accepted\n{text}"
    assert [row.name for row in analysis.layers] == [node["name"] for node in nodes]
    assert tuple(analysis.spec.output_names) == ref.outputs
    for row in analysis.layers:
        assert row.out_shape == ref.shapes[row.name], (row.name, text)
        assert row.params == ref.params[row.name], (row.name, text)
        assert _inputs(row) == ref.inputs[row.name], (row.name, text)
        assert analysis.node(row.name) == row
    # torch yields a shared tensor once: the total counts every module once
    assert analysis.total_params == ref.total_params
    assert analysis.total_params == sum(row.params for row in analysis.layers)


def _evaluated(row, values):
    return tuple(evaluate(s, values) for s in row.out_shape), evaluate(row.params, values)


def _same_numbers(symbolic, numeric, values, text):
    for row, expected in zip(symbolic.layers, numeric.layers, strict=True):
        assert row.name == expected.name
        assert _evaluated(row, values) == (expected.out_shape, expected.params), (row.name, text)
    assert evaluate(symbolic.total_params, values) == numeric.total_params


@settings(max_examples=45, **SETTINGS)
@given(graph_architectures())
def test_symbolic_graph_equals_numeric_one(graph):
    """The graph over [C, "H", "W"] (or [C, "L"]), evaluated at the drawn sizes, is the numeric one.

    One exception, by design: archcalc never takes a symbolic size as a broadcastable 1, so a merge
    that is valid only because a size that varies with the input happens to be 1 here
    (``ref.symbolic_broadcasts``) may be refused symbolically.
    """
    shape, nodes, outputs = graph
    names = GRAPH_SYMBOLS[len(shape) - 1]
    values = dict(zip(names, shape[1:], strict=True))
    numeric_text = spec_text(shape, nodes, outputs=outputs)
    symbolic_text = spec_text([shape[0], *names], nodes, outputs=outputs)
    try:
        numeric = analyze(parse_spec(numeric_text, "n.toml"))
    except SpecError:
        with pytest.raises(SpecError):
            parse_spec(symbolic_text, "s.toml")
        return
    except ShapeError:
        numeric = None
    spec = parse_spec(symbolic_text, "s.toml")
    if numeric is None:
        with pytest.raises(ShapeError):
            analyze(spec, values)
        return
    lenient = bool(torch_graph_reference(shape, nodes, outputs).symbolic_broadcasts)
    try:
        bound = analyze(spec, values)
    except ShapeError as exc:
        assert lenient, f"refused at {values}, where the numeric spec is valid: {exc}\n{symbolic_text}"
    else:
        _same_numbers(bound, numeric, values, symbolic_text)
    try:
        free = analyze(spec)
    except ShapeError as exc:
        assert lenient, f"symbolic analysis refused a graph valid at {values}: {exc}\n{symbolic_text}"
        return
    if lenient:
        return  # it may have taken the broadcast sizes as equal, valid at other sizes
    for name, value in values.items():
        if name in free.ranges:
            assert free.ranges[name].contains(value), (name, value, symbolic_text)
    _same_numbers(free, numeric, values, symbolic_text)


@settings(max_examples=25, **SETTINGS)
@given(graph_architectures(dead_ends=False))
def test_crosscheck_of_valid_graphs_passes(graph):
    """The built torch.fx graph agrees with the analysis on every node (torchinfo); every node
    feeds an output (several outputs where branches end apart)."""
    shape, nodes, outputs = graph
    assume(torch_graph_reference(shape, nodes, outputs).refused is None)
    analysis = analyze(parse_spec(spec_text(shape, nodes, outputs=outputs), "graph.toml"))
    with one_thread():
        report = crosscheck(analysis)
    assert report.failed == [], [f"{r.layer}: {r.what}: {r.expected} vs {r.actual}" for r in report.failed]


# --------------------------------------------------------------------------- torchinfo fixtures


class RecursiveNet(torch.nn.Module):
    """torchinfo's fixture: one conv applied six times."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(64, 64, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for _ in range(3):
            out = self.conv1(out)
            out = self.conv1(out)
        return out


class ReuseLinear(torch.nn.Module):
    """torchinfo's fixture: one Linear(10, 10) and a ReLU, four times."""

    def __init__(self) -> None:
        super().__init__()
        linear = torch.nn.Linear(10, 10)
        layers: list[torch.nn.Module] = []
        for _ in range(4):
            layers += [linear, torch.nn.ReLU(True)]
        self.model = torch.nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


RECURSIVE_NET = """
[model]
name = "RecursiveNet"
[input]
shape = [64, 28, 28]
[[layers]]
name = "conv1"
type = "Conv2d"
out_channels = 64
kernel_size = 3
stride = 1
padding = 1
""" + "".join(f"""
[[layers]]
name = "calls.{i}"
same_as = "conv1"
""" for i in range(2, 7))

REUSE_LINEAR = """
[model]
name = "ReuseLinear"
[input]
shape = [10]
[[layers]]
name = "model.0"
type = "Linear"
out_features = 10
[[layers]]
name = "model.1"
type = "ReLU"
inplace = true
""" + "".join(f"""
[[layers]]
name = "model.{2 * i}"
type = "Linear"
same_as = "model.0"
[[layers]]
name = "model.{2 * i + 1}"
type = "ReLU"
from = "model.{2 * i}"
""" for i in range(1, 4))


@pytest.mark.parametrize(("text", "module", "shape", "total", "owner"), [
    (RECURSIVE_NET, RecursiveNet, (64, 28, 28), 36_928, "conv1"),
    (REUSE_LINEAR, ReuseLinear, (10,), 110, "model.0"),
], ids=["RecursiveNet", "ReuseLinear"])
def test_torchinfo_shared_module_fixtures(text, module, shape, total, owner):
    analysis = analyze(parse_spec(text, "fixture.toml"))
    reference = module()
    with one_thread(), torch.no_grad():
        out = reference(torch.zeros((2, *shape)))
    assert analysis.total_params == total == sum(p.numel() for p in reference.parameters())
    assert analysis.layers[-1].out_shape == tuple(out.shape[1:])
    assert analysis.node(owner).params == total
    assert all(row.params == 0 for row in analysis.layers if row.name != owner)
    rows = analysis.layers
    assert _inputs(rows[0]) == (INPUT,)
    assert all(_inputs(row) == (above.name,) for above, row in itertools.pairwise(rows))
    built = build(parse_spec(text, "fixture.toml"))
    assert sum(p.numel() for p in built.parameters()) == total
    with one_thread():
        assert crosscheck(analysis).failed == []
