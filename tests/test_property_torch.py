"""Property tests: random stacks of every layer kind agree with torch, numerically and symbolically."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch_reference import architectures, spec_text, torch_reference

from archcalc.analysis import analyze
from archcalc.errors import ShapeError
from archcalc.spec import parse_spec
from archcalc.symbolic import evaluate

SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(architectures())
def test_shapes_and_params_match_torch(arch):
    shape, layers = arch
    spec = parse_spec(spec_text(shape, layers), "random.toml")
    torch_shapes, torch_params, refused_at = torch_reference(shape, layers)
    try:
        analysis = analyze(spec)
    except ShapeError as exc:
        # archcalc refuses exactly where torch refuses
        assert refused_at is not None, f"archcalc refused, torch ran: {exc}"
        assert f"layer {refused_at} " in str(exc), (refused_at, str(exc))
        return
    assert refused_at is None, f"torch refused layer {refused_at}, archcalc accepted it"
    assert [r.out_shape for r in analysis.layers] == torch_shapes
    assert [r.params for r in analysis.layers] == torch_params
    assert analysis.total_params == sum(torch_params)


@SETTINGS
@given(architectures(), st.data())
def test_symbolic_sizes_equal_numeric_ones_after_substitution(arch, data):
    shape, layers = arch
    axis = data.draw(st.integers(1, len(shape) - 1))
    numeric = parse_spec(spec_text(shape, layers), "n.toml")
    symbolic_shape = list(shape)
    symbolic_shape[axis] = "T"
    symbolic = parse_spec(spec_text(symbolic_shape, layers), "s.toml")
    try:
        expected = analyze(numeric)
    except ShapeError:
        return  # refused numerically; the symbolic version may hold for other T
    try:
        sym = analyze(symbolic)
    except ShapeError as exc:
        # only a stated size (in_features, normalized_shape) can pin T; the value must then be in range
        raise AssertionError(f"symbolic analysis refused a spec valid at T={shape[axis]}: {exc}")
    values = {"T": shape[axis]}
    assert sym.ranges["T"].contains(shape[axis])
    for row, ref in zip(sym.layers, expected.layers):
        assert tuple(evaluate(s, values) for s in row.out_shape) == ref.out_shape
        assert evaluate(row.params, values) == ref.params


@settings(max_examples=60, deadline=None)
@given(architectures(), st.data())
def test_smallest_valid_symbol_value_is_exact(arch, data):
    """The lower bound archcalc derives for T is valid and T - 1 is not (brute force)."""
    shape, layers = arch
    axis = data.draw(st.integers(1, len(shape) - 1))
    symbolic_shape = list(shape)
    symbolic_shape[axis] = "T"
    try:
        sym = analyze(parse_spec(spec_text(symbolic_shape, layers), "s.toml"))
    except ShapeError:
        return
    lo = sym.ranges["T"].lo

    def valid(t: int) -> bool:
        concrete = list(shape)
        concrete[axis] = t
        try:
            analyze(parse_spec(spec_text(concrete, layers), "c.toml"))
        except ShapeError:
            return False
        return True

    assert valid(lo)
    if lo > 1:
        assert not valid(lo - 1)
