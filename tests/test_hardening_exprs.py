"""Size expressions a user can write that once crashed or hung `check`: each is a one-line error,
or a check decided fast (by proof, or by evaluation that the note admits)."""

from __future__ import annotations

import time
from fractions import Fraction
from math import floor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archcalc import analyze, check_expectations, parse_spec
from archcalc.symbolic import (
    MAX_DEPTH,
    MAX_DIGITS,
    MAX_TEXT,
    ExprSyntaxError,
    _NoNormalForm,
    _normal,
    evaluate,
    floor_out,
    parse_size_expr,
    proven_equal,
    size_str,
    symbol,
)

T = symbol("T")
HANG = 120  # seconds: a guard against a hang only; how fast these are is benchmarks/large_spec.py's to say


@pytest.fixture
def no_slow_sympy(monkeypatch):
    """sympy's simplify, equals and solve are exponential in the depth of nested floors (simplify took
    18 s on 12 levels here): the comparison must never reach them, whatever the machine's speed."""
    import sympy

    def refuse(*args, **kwargs):
        raise AssertionError("sympy's simplify/equals/solve was called on a size expression")

    for name in ("simplify", "nsimplify", "solve"):
        monkeypatch.setattr(sympy, name, refuse)
    for name in ("simplify", "equals"):
        monkeypatch.setattr(sympy.Expr, name, refuse)


def spec_text(expr: str, value: int | None = 101) -> str:
    """A 1x1 conv over [1, T, 40] (output [4, T, 40]) whose expect_shape writes ``expr`` for T."""
    symbols = f"[symbols]\nT = {value}\n" if value is not None else ""
    escaped = expr.replace("\\", "\\\\").replace('"', '\\"')
    return ('[input]\nshape = [1, "T", 40]\n' + symbols + '[[layers]]\ntype = "Conv2d"\nout_channels = 4\n'
            f'kernel_size = 1\nexpect_shape = [4, "{escaped}", 40]\n')


def pools(levels: int, expr: str) -> str:
    """MaxPool1d(2, 2) ``levels`` times over [1, T], ceil_mode on every other one, expecting ``expr``."""
    layers = "".join('[[layers]]\ntype = "MaxPool1d"\nkernel_size = 2\nstride = 2\n'
                     f'ceil_mode = {"true" if i % 2 else "false"}\n' for i in range(levels))
    return f'[input]\nshape = [1, "T"]\n{layers}expect_shape = [1, "{expr}"]\n'


def nested(levels: int, inner: str = "T") -> str:
    """floor(ceil(floor(...(T/2)...)/2)/2): what the pools above compute, written out by hand."""
    expr = inner
    for i in range(levels):
        expr = f"{'ceil' if i % 2 else 'floor'}({expr}/2)"
    return expr


def check_fails(cli, write_spec, text: str) -> str:
    result = cli("check", "--no-torch", write_spec(text))
    assert result.exit_code == 2, result.output
    err = next(line for line in result.output.splitlines() if line.startswith("error: "))
    assert "Traceback" not in result.output and len(err) < 400
    assert "model.toml:" in err and "expect_shape" in err
    return err


# --------------------------------------------------------------------------- bounded parsing

@pytest.mark.parametrize("expr, message", [
    ("(" * 5000 + "T" + ")" * 5000, f"longer than {MAX_TEXT} characters"),
    ("-" * 5000 + "T", f"longer than {MAX_TEXT} characters"),
    ("T + " + "1" * 5000, f"longer than {MAX_TEXT} characters"),
    ("(" * 200 + "T" + ")" * 200, f"nested deeper than {MAX_DEPTH} levels"),
    ("-" * 200 + "T", f"nested deeper than {MAX_DEPTH} levels"),
    ("floor(" * 110 + "T" + ")" * 110, f"nested deeper than {MAX_DEPTH} levels"),
    ("T + " + "1" * 101, f"at most {MAX_DIGITS} digits"),
    ("T + 1/(T - 101)", "not a number"),
])
def test_hostile_expressions_are_one_line_errors(cli, write_spec, expr, message):
    err = check_fails(cli, write_spec, spec_text(expr))
    assert message in err


@pytest.mark.parametrize("text", [
    "()", "T + ()", "floor()", "ceil(T", "T +", "T * / 2", "T //", "(T))", "T 2", ",", "floor T",
    "T/(T-T)", "T // (2 - 2)", "T/floor(T/2)", "T/(T - 101)", "T // T", "T + ١٢", "T + ²",
    "-" * (MAX_DEPTH + 1) + "T", "(" * (MAX_DEPTH + 1) + "T" + ")" * (MAX_DEPTH + 1),
    "1" * (MAX_DIGITS + 1), "T" + " + 1" * MAX_TEXT, "X" * 900, "T + " + "x" * 900,
])
def test_parser_refuses(text):
    with pytest.raises(ExprSyntaxError) as info:
        parse_size_expr(text, {"T"})
    assert "\n" not in str(info.value) and len(str(info.value)) < 200


def test_limits_are_inclusive():
    depth = MAX_DEPTH - 1  # the outermost level counts too
    assert parse_size_expr("(" * depth + "T" + ")" * depth, {"T"}) == T
    assert parse_size_expr("-" * depth + "T", {"T"}) == (-T if depth % 2 else T)
    assert parse_size_expr("9" * MAX_DIGITS + " - T", {"T"}) == 10**MAX_DIGITS - 1 - T
    assert parse_size_expr("T//(-2)", {"T"}) == parse_size_expr("floor(-T/2)", {"T"})
    assert parse_size_expr("T/(1/2)", {"T"}) == 2 * T


# --------------------------------------------------------------------------- bounded comparison

def test_twelve_nested_floors_are_proven_fast(cli, write_spec, no_slow_sympy):
    path = write_spec(pools(12, nested(12)))
    start = time.perf_counter()
    result = cli("check", "--no-torch", path)
    elapsed = time.perf_counter() - start
    assert result.exit_code == 0, result.output
    assert elapsed < HANG, elapsed
    (check,) = check_expectations(analyze(parse_spec(pools(12, nested(12)))))
    assert check.ok and check.note == ""  # proven, not sampled


def test_deepest_allowed_nesting_is_fast(no_slow_sympy):
    levels = MAX_DEPTH - 2
    start = time.perf_counter()
    expected = parse_size_expr(nested(levels), {"T"})
    actual = T
    for i in range(levels):
        actual = floor_out(actual, 2, 2, 0, 1, bool(i % 2))
    assert proven_equal(expected, actual)
    assert not proven_equal(expected, actual + 1)
    assert time.perf_counter() - start < HANG


def test_unprovable_equality_says_it_was_evaluated(no_slow_sympy):
    # floor(T/2) + floor((T+1)/2) == T is true, but not in the normal form
    inner = "(floor(T/2) + floor((T+1)/2))"
    start = time.perf_counter()
    (check,) = check_expectations(analyze(parse_spec(pools(12, nested(12, inner)))))
    assert check.ok and "not proven for all values" in check.note
    (check,) = check_expectations(analyze(parse_spec(spec_text(inner, None))))
    assert check.ok and "equal at T=1..48 (not proven for all values)" in check.note
    (check,) = check_expectations(analyze(parse_spec(spec_text(inner, 7))))
    assert check.ok and check.note == "at T=7"
    (check,) = check_expectations(analyze(parse_spec(spec_text("2*floor(T/2)", None))))
    assert not check.ok and check.note == "axis 1: 0 != 1 at T=1"
    assert time.perf_counter() - start < HANG


def test_a_product_too_large_to_expand_is_evaluated(no_slow_sympy):
    factors = "*".join(f"(T + {k})" for k in range(1, 40))
    expr = parse_size_expr(f"floor({factors}/7) + {factors}*(T+H)", {"T", "H"})
    start = time.perf_counter()
    assert not proven_equal(expr, expr + 1) and not proven_equal(expr, expr - expr + T)
    assert time.perf_counter() - start < HANG


def test_a_constant_that_is_not_an_integer_fails_the_check(cli, write_spec):
    text = '[input]\nshape = [1, 101, 40]\n[[layers]]\ntype = "Conv2d"\nout_channels = 4\n' \
           'kernel_size = 1\nexpect_shape = [4, "3/2", "80/2"]\n'
    result = cli("check", "--no-torch", write_spec(text))
    assert result.exit_code == 1, result.output
    assert "3/2 != 101" in result.stdout and "Traceback" not in result.output


def test_numbers_too_long_to_print_are_shown_by_magnitude(cli, write_spec):
    text = ('[input]\nshape = [1, "T", "H"]\n[[layers]]\ntype = "Conv2d"\nout_channels = 4\n'
            'kernel_size = 1\nexpect_shape = [4, "T", "' + "H*" * 50 + 'T"]\n')
    result = cli("check", "--no-torch", write_spec(text), "--set", f"H={10**99}")
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    (check,) = check_expectations(analyze(parse_spec(text), {"H": 10**99}))
    assert check.note == f"axis 2: ~10^4950 != {10**99} at H={10**99}, T=1"
    assert size_str(10**5000) == "~10^5000" and size_str(-(10**5000)) == "-~10^5000"
    assert size_str(10**4000) == str(10**4000)


# --------------------------------------------------------------------------- the proof is sound

def _poly_value(poly, values: dict[str, int]) -> Fraction:
    total = Fraction(0)
    for monomial, c in poly.items():
        term = c
        for atom, power in monomial:
            if atom[0] == "s":
                v = values[atom[1]]
            else:
                v = floor(sum(c_ * values[name] for name, c_ in atom[1]) + atom[2])
            term *= Fraction(v) ** power
        total += term
    return total


def _exprs():
    """(text, value): an expression and, computed apart from archcalc, its value at a point."""
    def leaf(name):
        return (name, lambda v: Fraction(v[name]) if name in v else Fraction(int(name)))

    def binary(a, op, b):
        fn = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
              "/": lambda x, y: x / y, "//": lambda x, y: Fraction(floor(x / y))}[op]
        return (f"({a[0]} {op} {b[0]})", lambda v: fn(a[1](v), b[1](v)))

    def rounded(kind, a):
        return (f"{kind}({a[0]})", lambda v: Fraction(floor(a[1](v)) if kind == "floor" else -floor(-a[1](v))))

    divisor = st.sampled_from([("2", lambda v: Fraction(2)), ("3", lambda v: Fraction(3)),
                               ("4", lambda v: Fraction(4)), ("(3/2)", lambda v: Fraction(3, 2))])

    def grow(inner):
        return st.one_of(
            st.builds(binary, inner, st.sampled_from(["+", "-", "*"]), inner),
            st.builds(binary, inner, st.sampled_from(["/", "//"]), divisor),
            st.builds(rounded, st.sampled_from(["floor", "ceil"]), inner),
        )
    return st.recursive(st.sampled_from(["T", "H", "1", "2", "3", "7"]).map(leaf), grow, max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(_exprs(), st.integers(1, 200), st.integers(1, 200))
def test_parse_and_normal_form_keep_the_value(case, t, h):
    text, value = case
    point = {"T": t, "H": h}
    expr = parse_size_expr(text, {"T", "H"})
    got = evaluate(expr, point)
    assert (Fraction(got) if isinstance(got, int) else Fraction(int(got.p), int(got.q))) == value(point)
    try:
        poly = _normal(expr)
    except _NoNormalForm:
        return
    assert _poly_value(poly, point) == value(point)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 4), st.integers(0, 2), st.booleans()),
                min_size=1, max_size=8))
def test_a_chain_written_by_hand_is_proven_equal(layers):
    actual, written = T, "T"
    for k, s, p, ceil_mode in layers:
        p = min(p, k // 2)
        actual = floor_out(actual, k, s, p, 1, ceil_mode)
        # ceil_mode as torch says it: round up, unless the last window would start in the padding
        if ceil_mode and p - 1 < 2 * p - (k - 1) - 1 + s - 1:
            written = f"floor(({written} + {p - 1})/{s}) + 1"
        elif ceil_mode:
            written = f"ceil(({written} + {2 * p - (k - 1) - 1})/{s}) + 1"
        else:
            written = f"({written} + {2 * p - (k - 1) - 1}) // {s} + 1"
    assert proven_equal(parse_size_expr(written, {"T"}), actual)
