"""Symbolic sizes: symbols, the one floor formula, n-tuples and a safe expression parser.

A size is a Python ``int`` when it is a number and a sympy expression otherwise. Expressions
are kept in a canonical floor form, ``floor(c1*T1 + ... + f) + m`` with rational ``c`` and
``0 <= f < 1``: nested floors are merged with the identity
``floor((floor(x) + m) / s) == floor((x + m) / s)`` (integer ``m``, positive integer ``s``),
so an expression does not grow with the depth of the network.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from fractions import Fraction
from functools import cache, lru_cache
from types import ModuleType
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    import sympy

Size = Union[int, "sympy.Expr"]


class _LazySympy(ModuleType):
    """sympy, imported on first use: a spec without symbols never needs it (saves ~0.3 s)."""

    def __getattr__(self, name: str) -> Any:
        import sympy

        globals()["sp"] = sympy
        return getattr(sympy, name)


sp: Any = _LazySympy("sympy")

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
RESERVED_NAMES = frozenset({"floor", "ceil", "min", "max"})


@cache
def symbol(name: str) -> sp.Symbol:
    """The sympy symbol for an input size: integer and positive."""
    return sp.Symbol(name, integer=True, positive=True)


def as_size(value: object) -> Size:
    """Normalize a sympy number to ``int``; leave other expressions alone."""
    if isinstance(value, bool):
        raise TypeError("a size cannot be a bool")
    if isinstance(value, int):
        return value
    if isinstance(value, sp.Integer):
        return int(value)
    if isinstance(value, sp.Expr):
        return value
    raise TypeError(f"not a size: {value!r}")


def is_number(size: Size) -> bool:
    return isinstance(size, int)


def free_names(size: Size) -> set[str]:
    if isinstance(size, int):
        return set()
    return {s.name for s in size.free_symbols}  # type: ignore[attr-defined]


def size_str(size: Size) -> str:
    """The text of a size: digits, or sympy's printing of the expression."""
    return str(size) if isinstance(size, int) else _expr_str(size)


@lru_cache(maxsize=4096)
def _expr_str(expr: Any) -> str:
    # a size is printed several times (a row's input is the previous row's output): print once
    return str(expr)


def shape_str(shape: Iterable[Size]) -> str:
    return "[" + ", ".join(size_str(s) for s in shape) + "]"


@lru_cache(maxsize=1)
def _compact_printer() -> Any:
    from sympy.printing.str import StrPrinter

    class CompactPrinter(StrPrinter):  # type: ignore[misc]
        """Tables print floor(x) as ⌊x⌋ and ceiling(x) as ⌈x⌉: narrow columns stay legible."""

        def _print_floor(self, expr: Any) -> str:
            return f"⌊{self._print(expr.args[0])}⌋"

        def _print_ceiling(self, expr: Any) -> str:
            return f"⌈{self._print(expr.args[0])}⌉"

    return CompactPrinter()


def compact_str(size: Size) -> str:
    return str(size) if isinstance(size, int) else _compact_expr_str(size)


@lru_cache(maxsize=4096)
def _compact_expr_str(expr: Any) -> str:
    return _compact_printer().doprint(expr)


def compact_shape(shape: Iterable[Size]) -> str:
    return "[" + ", ".join(compact_str(s) for s in shape) + "]"


def evaluate(size: Size, values: Mapping[str, int]) -> Size:
    """Substitute symbol values exactly (no floats); an ``int`` when every symbol is bound."""
    if isinstance(size, int):
        return size
    subs = {symbol(name): sp.Integer(v) for name, v in values.items()}
    return as_size(size.xreplace(subs) if subs else size)


def ntuple(value: int | tuple[int, ...], n: int) -> tuple[int, ...]:
    """An int becomes an n-tuple; a tuple must already have n entries."""
    if isinstance(value, int):
        return (value,) * n
    if len(value) != n:
        raise ValueError(f"needs {n} values, got {len(value)}")
    return tuple(value)


# --------------------------------------------------------------------------- canonical floor form

def canonical_parts(x: sp.Expr) -> tuple[dict[sp.Symbol, Fraction], Fraction, int] | None:
    """Split ``x == floor(sum c*s + f) + m``; None when x is not of that form."""
    m = 0
    floor_term = None
    linear: list[sp.Expr] = []
    for term in sp.Add.make_args(x):
        if term.is_Integer:
            m += int(term)
        elif isinstance(term, sp.floor):
            if floor_term is not None:
                return None
            floor_term = term
        else:
            linear.append(term)
    if floor_term is not None and linear:
        return None
    inner = floor_term.args[0] if floor_term is not None else sp.Add(*linear)
    coeffs: dict[sp.Symbol, Fraction] = {}
    f = Fraction(0)
    for term in sp.Add.make_args(inner):
        if term.is_Rational:
            f += Fraction(int(term.p), int(term.q))
            continue
        c, rest = term.as_coeff_Mul()
        if not (rest.is_Symbol and c.is_Rational):
            return None
        coeffs[rest] = coeffs.get(rest, Fraction(0)) + Fraction(int(c.p), int(c.q))
    if floor_term is None and any(c.denominator != 1 for c in coeffs.values()):
        return None  # a non-integer linear expression is not a size
    return coeffs, f, m


def _rational(q: Fraction) -> sp.Rational:
    return sp.Rational(q.numerator, q.denominator)


def _make_canonical(coeffs: dict[sp.Symbol, Fraction], f: Fraction, m: int) -> Size:
    """Build ``floor(sum c*s + f) + m`` with the integer part of f moved into m."""
    whole = f.numerator // f.denominator
    f -= whole
    m += whole
    coeffs = {s: c for s, c in coeffs.items() if c != 0}
    if all(c.denominator == 1 for c in coeffs.values()):
        # integer-valued inside: floor(integer + f) == integer when 0 <= f < 1
        return as_size(sp.Add(*[sp.Integer(c.numerator) * s for s, c in coeffs.items()]) + m)
    inner = sp.Add(*[_rational(c) * s for s, c in coeffs.items()], _rational(f))
    return sp.Add(sp.floor(inner, evaluate=False), sp.Integer(m))


def floor_div(x: Size, offset: int, s: int) -> Size:
    """``floor((x + offset) / s)`` for an integer-valued size x and a positive integer s."""
    if isinstance(x, int):
        return (x + offset) // s
    parts = canonical_parts(x)
    if parts is None:
        return as_size(sp.floor((x + offset) / s))
    coeffs, f, m = parts
    return _make_canonical({k: c / s for k, c in coeffs.items()}, (f + m + offset) / s, 0)


def floor_out(n: Size, k: int, s: int = 1, p: int = 0, d: int = 1, ceil_mode: bool = False) -> Size:
    """Output length of a conv or pool window: ``floor((n + 2p - d*(k-1) - 1)/s) + 1``.

    With ``ceil_mode`` the division rounds up, but, as in PyTorch, the last window must start
    inside the input or the left padding; both limits share the divisor, so the smaller offset
    wins: ``floor((n + min(2p - d(k-1) + s - 2, p - 1)) / s) + 1``.
    """
    offset = 2 * p - d * (k - 1) - 1
    if ceil_mode:
        offset = min(offset + s - 1, p - 1)
    return as_size(floor_div(n, offset, s) + 1)


# --------------------------------------------------------------------------- solving monotone conditions

def smallest_at_least(expr: Size, name: str, target: int, limit: int = 2**256) -> int | None:
    """Smallest positive value of symbol ``name`` with ``expr >= target``; None if none <= limit.

    Every size archcalc derives is non-decreasing in each input size (floors of sums with
    positive coefficients, products of positive sizes), so a doubling search followed by
    bisection is exact. The canonical form ``floor(c*T + f) + m`` is solved in closed form:
    ``floor(c*T + f) >= target - m  <=>  T >= ceil((target - m - f) / c)``.
    """
    if isinstance(expr, int):
        return 1 if expr >= target else None
    parts = canonical_parts(expr)
    if parts is not None and len(parts[0]) == 1:
        (sym, c), = parts[0].items()
        if sym.name == name and c > 0:  # type: ignore[attr-defined]
            _, f, m = parts
            q = (target - m - f) / c
            return max(1, -((-q.numerator) // q.denominator))

    def holds(v: int) -> bool:
        value = evaluate(expr, {name: v})
        return isinstance(value, int) and value >= target

    hi = 1
    while not holds(hi):
        if hi > limit:
            return None
        hi *= 2
    lo = hi // 2 + 1 if hi > 1 else 1
    while lo < hi:
        mid = (lo + hi) // 2
        if holds(mid):
            hi = mid
        else:
            lo = mid + 1
    return hi


def solve_equal(expr: Size, name: str, target: int) -> tuple[int, int] | None:
    """The interval ``[lo, hi]`` of positive values of ``name`` with ``expr == target``."""
    lo = smallest_at_least(expr, name, target)
    if lo is None or evaluate(expr, {name: lo}) != target:
        return None
    above = smallest_at_least(expr, name, target + 1)
    return (lo, above - 1) if above is not None else (lo, lo)


# --------------------------------------------------------------------------- safe expression parser

_TOKEN = re.compile(r"\s*(?:(\d+)|([A-Za-z_][A-Za-z0-9_]*)|(//|[-+*/(),]))")


class ExprSyntaxError(ValueError):
    """Raised for text that is not a valid size expression."""


def parse_size_expr(text: str, allowed: Iterable[str]) -> Size:
    """Parse ``+ - * / //``, parentheses, integers, symbols, ``floor()`` and ``ceil()``.

    A hand-written recursive-descent parser: user text never reaches eval or sympify.
    """
    tokens = _tokenize(text)
    parser = _Parser(tokens, set(allowed), text)
    value = parser.expression()
    if parser.pos != len(tokens):
        raise ExprSyntaxError(f"unexpected {tokens[parser.pos]!r} in {text!r}")
    return as_size(value)


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise ExprSyntaxError(f"unexpected character {text[pos:].strip()[0]!r} in {text!r}")
        tokens.append(next(g for g in match.groups() if g is not None))
        pos = match.end()
    if not tokens:
        raise ExprSyntaxError("empty expression")
    return tokens


class _Parser:
    def __init__(self, tokens: list[str], allowed: set[str], text: str) -> None:
        self.tokens, self.allowed, self.text, self.pos = tokens, allowed, text, 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            want = repr(expected) if expected else "a value"
            raise ExprSyntaxError(f"expected {want} in {self.text!r}")
        self.pos += 1
        return token

    def expression(self) -> sp.Expr:
        value = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            rhs = self.term()
            value = value + rhs if op == "+" else value - rhs
        return value

    def term(self) -> sp.Expr:
        value = self.unary()
        while self.peek() in ("*", "/", "//"):
            op = self.take()
            rhs = self.unary()
            if op != "*" and rhs == 0:
                raise ExprSyntaxError(f"division by zero in {self.text!r}")
            if op == "*":
                value = value * rhs
            elif op == "/":
                value = value / rhs
            else:
                value = sp.floor(value / rhs)
        return value

    def unary(self) -> sp.Expr:
        if self.peek() == "-":
            self.take()
            return -self.unary()
        if self.peek() == "+":
            self.take()
            return self.unary()
        return self.atom()

    def atom(self) -> sp.Expr:
        token = self.take()
        if token.isdigit():
            return sp.Integer(int(token))
        if token == "(":
            value = self.expression()
            self.take(")")
            return value
        if token in ("floor", "ceil"):
            self.take("(")
            value = self.expression()
            self.take(")")
            return sp.floor(value) if token == "floor" else sp.ceiling(value)
        if IDENTIFIER.match(token):
            if token not in self.allowed:
                known = ", ".join(sorted(self.allowed)) or "none"
                raise ExprSyntaxError(f"unknown symbol {token!r} in {self.text!r} (symbols: {known})")
            return symbol(token)
        raise ExprSyntaxError(f"unexpected {token!r} in {self.text!r}")
