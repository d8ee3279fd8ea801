"""The floor formula, the canonical form, the exact solvers and the safe parser."""

from __future__ import annotations

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from archcalc.symbolic import (
    ExprSyntaxError,
    evaluate,
    floor_out,
    ntuple,
    parse_size_expr,
    smallest_at_least,
    solve_equal,
    symbol,
)

T = symbol("T")


def torch_pool_len(n, k, s, p, d, ceil_mode):
    """PyTorch's pooling_output_shape, transcribed from ATen."""
    num = n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = num // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def test_course_numbers():
    assert floor_out(101, 5) == 97
    assert floor_out(97, 2, 2) == 48
    assert floor_out(48, 5) == 44
    assert floor_out(44, 2, 2) == 22
    assert floor_out(36, 2, 2) == 18 and floor_out(14, 2, 2) == 7


def test_symbolic_chain_stays_canonical():
    h = floor_out(floor_out(floor_out(floor_out(T, 5), 2, 2), 5), 2, 2)
    assert h == sp.floor(T / 4) - 3
    assert evaluate(h, {"T": 101}) == 22
    deep = T
    for _ in range(200):
        deep = floor_out(deep, 3, 2, 1)
    assert len(str(deep)) < 400  # one floor, not 200 nested ones
    assert sp.count_ops(deep) < 10


@settings(max_examples=300)
@given(st.integers(1, 60), st.integers(1, 6), st.integers(1, 4), st.integers(0, 3), st.integers(1, 3),
       st.booleans())
def test_floor_out_matches_torch_formula(n, k, s, p, d, ceil_mode):
    p = min(p, k // 2)
    assert floor_out(n, k, s, p, d, ceil_mode) == torch_pool_len(n, k, s, p, d, ceil_mode)


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(0, 2), st.booleans()),
                min_size=1, max_size=5), st.integers(1, 300))
def test_symbolic_equals_numeric(layers, t):
    sym, num = T, t
    for k, s, p, ceil_mode in layers:
        p = min(p, k // 2)
        sym = floor_out(sym, k, s, p, 1, ceil_mode)
        num = torch_pool_len(num, k, s, p, 1, ceil_mode)
    assert evaluate(sym, {"T": t}) == num


def test_ntuple():
    assert ntuple(3, 2) == (3, 3)
    assert ntuple((1, 2), 2) == (1, 2)
    with pytest.raises(ValueError):
        ntuple((1, 2, 3), 2)


def test_smallest_and_equal_are_exact():
    h = floor_out(floor_out(floor_out(floor_out(T, 5), 2, 2), 5), 2, 2)
    assert smallest_at_least(h, "T", 1) == 16
    flat = 16 * h * 7
    assert solve_equal(flat, "T", 2464) == (100, 103)
    assert solve_equal(flat, "T", 2465) is None
    assert smallest_at_least(5, "T", 1) == 1
    assert smallest_at_least(0, "T", 1) is None


@settings(max_examples=100)
@given(st.integers(1, 7), st.integers(1, 4), st.integers(-20, 20))
def test_smallest_at_least_brute_force(k, s, target):
    expr = floor_out(floor_out(T, k, s), 2, 2) * 3
    found = smallest_at_least(expr, "T", target)
    first = next(v for v in range(1, 10_000) if evaluate(expr, {"T": v}) >= target)
    assert found == first


def test_parser_accepts_arithmetic():
    assert parse_size_expr("T-4", {"T"}) == T - 4
    assert parse_size_expr("floor(T/4) - 3", {"T"}) == sp.floor(T / 4) - 3
    assert parse_size_expr("(T - 6) // 2 + 1", {"T"}) == sp.floor((T - 6) / 2) + 1
    assert parse_size_expr("16*22*7", set()) == 2464
    assert parse_size_expr("ceil(T/2)", {"T"}) == sp.ceiling(T / 2)


@pytest.mark.parametrize("text", [
    "__import__('os').system('true')", "T**2", "T.__class__", "lambda: 1", "", "T +", "(T",
    "X + 1", "1/0", "T; 1", "2e3", "()", "floor()", "T/(T - 1)", "1" * 101, "(" * 101 + "T" + ")" * 101,
])
def test_parser_refuses_anything_else(text):
    with pytest.raises(ExprSyntaxError):
        parse_size_expr(text, {"T"})
