"""Symbolic sizes: symbols, the one floor formula, n-tuples and a safe expression parser.

A size is a Python ``int`` when it is a number and a sympy expression otherwise. Expressions
are kept in a canonical floor form, ``floor(c1*T1 + ... + f) + m`` with rational ``c`` and
``0 <= f < 1``: nested floors are merged with the identity
``floor((floor(x) + m) / s) == floor((x + m) / s)`` (integer ``m``, positive integer ``s``),
so an expression does not grow with the depth of the network.
"""

from __future__ import annotations

import math
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
    return int_str(size) if isinstance(size, int) else _expr_str(size)


# int() prints at most 4300 digits: a larger number (a product of many symbols at large values)
# is shown by its magnitude
_PRINTABLE_BITS = 14_000


def int_str(n: int, grouped: bool = False) -> str:
    """``n`` in digits (``1,234`` when grouped), or ``~10^k`` beyond 4,200 digits."""
    if n.bit_length() > _PRINTABLE_BITS:
        k = int((n.bit_length() - 1) * math.log10(2))  # floor(log10|n|), or one below it
        k += abs(n) >= 10 ** (k + 1)
        return f"{'-' if n < 0 else ''}~10^{k}"
    return f"{n:,}" if grouped else str(n)


@lru_cache(maxsize=4096)
def _expr_str(expr: Any) -> str:
    # a size is printed several times (a row's input is the previous row's output): print once
    try:
        return str(expr)
    except ValueError:  # a coefficient beyond int()'s 4300 printable digits
        return "(an expression with a number over 4,200 digits)"


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
    return int_str(size) if isinstance(size, int) else _compact_expr_str(size)


@lru_cache(maxsize=4096)
def _compact_expr_str(expr: Any) -> str:
    try:
        return str(_compact_printer().doprint(expr))
    except ValueError:
        return _expr_str(expr)


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


# --------------------------------------------------------------------------- proof of equality

# A normal form: a polynomial over atoms, each a symbol ("s", name) or a normalized floor
# ("f", ((name, c), ...), f) meaning floor(sum c*name + f) with 0 < c < 1 and f the smallest
# offset giving the same floor. Equal normal forms prove two sizes equal for every integer value;
# different ones prove nothing (floor(T/2) + floor((T+1)/2) == T). Building one is linear in the
# expression's size, where sympy's simplify is exponential in the depth of nested floors.
MAX_TERMS = 256  # a larger normal form is not built: the comparison falls back to evaluation
MAX_POWER = 1000

_Atom = tuple[Any, ...]
_Monomial = tuple[tuple[_Atom, int], ...]
_Poly = dict[_Monomial, Fraction]


class _NoNormalForm(Exception):
    """The expression is outside what the normal form covers, or too large."""


def proven_equal(a: Size, b: Size) -> bool:
    """True when ``a == b`` is proven for every value of the symbols (False: not proven)."""
    try:
        return _normal(a) == _normal(b)
    except _NoNormalForm:
        return False


def _normal(x: Any) -> _Poly:
    if isinstance(x, int) or x.is_Rational:
        q = Fraction(int(x)) if isinstance(x, int) else Fraction(int(x.p), int(x.q))
        return {(): q} if q else {}
    if x.is_Symbol:
        return {((("s", x.name), 1),): Fraction(1)}
    if x.is_Add:
        out: _Poly = {}
        for arg in x.args:
            out = _add(out, _normal(arg))
        return out
    if x.is_Mul:
        out = {(): Fraction(1)}
        for arg in x.args:
            out = _mul(out, _normal(arg))
        return out
    if x.is_Pow and x.exp.is_Integer and 0 < int(x.exp) <= MAX_POWER:
        base, out = _normal(x.base), {(): Fraction(1)}
        for _ in range(int(x.exp)):
            out = _mul(out, base)
        return out
    if isinstance(x, sp.floor):
        return _floor(_normal(x.args[0]))
    if isinstance(x, sp.ceiling):
        return _ceil(_normal(x.args[0]))
    raise _NoNormalForm


def _add(p: _Poly, q: _Poly) -> _Poly:
    out = dict(p)
    for m, c in q.items():
        total = out.get(m, Fraction(0)) + c
        if total:
            out[m] = total
        else:
            out.pop(m, None)
    if len(out) > MAX_TERMS:
        raise _NoNormalForm
    return out


def _mul(p: _Poly, q: _Poly) -> _Poly:
    if len(p) * len(q) > 4 * MAX_TERMS:
        raise _NoNormalForm
    out: _Poly = {}
    for m1, c1 in p.items():
        for m2, c2 in q.items():
            powers = dict(m1)
            for atom, k in m2:
                powers[atom] = powers.get(atom, 0) + k
            m = tuple(sorted(powers.items()))
            out[m] = out.get(m, Fraction(0)) + c1 * c2
    return _add({}, out)  # drops cancelled terms, checks the size


def _frac_floor(q: Fraction) -> int:
    return q.numerator // q.denominator


def _ceil(p: _Poly) -> _Poly:
    """``ceil(p) == floor(p + (D-1)/D)``: every value of p is a multiple of 1/D."""
    d = math.lcm(*(c.denominator for c in p.values())) if p else 1
    return _floor(_add(p, {(): Fraction(d - 1, d)}))


def _floor(p: _Poly) -> _Poly:
    """floor(p): integer parts out (atoms are integers), the fractional rest as one floor atom."""
    whole: _Poly = {}
    rest: _Poly = {}
    for m, c in p.items():
        i = _frac_floor(c)
        if i:
            whole[m] = Fraction(i)
        if c != i:
            rest[m] = c - i
    f = rest.pop((), Fraction(0))
    if not rest:
        return whole
    floors = [m for m in rest if m[0][0][0] == "f"]
    if any(len(m) != 1 or m[0][1] != 1 for m in rest) or len(floors) > 1:
        raise _NoNormalForm  # a product, a power or two floors under one floor
    if floors:
        # floor(F/s + y/s) == floor((x + floor(y))/s) for F == floor(x), integer s: the nested
        # floor merges into one over x when y's symbol terms are integers
        (atom, _), = floors[0]
        a = rest.pop(floors[0])
        s = a.denominator
        if a.numerator != 1 or any((c * s).denominator != 1 for c in rest.values()):
            raise _NoNormalForm
        inner: _Poly = {((("s", name), 1),): c for name, c in atom[1]}
        inner = _add(inner, {(): atom[2] + _frac_floor(f * s)})
        inner = _add(inner, {m: c * s for m, c in rest.items()})
        return _add(whole, _floor({m: c / s for m, c in inner.items()}))
    d = math.lcm(*(c.denominator for c in rest.values()))
    coeffs = tuple(sorted((m[0][0][1], c) for m, c in rest.items()))
    atom = ("f", coeffs, Fraction(_frac_floor(f * d), d))
    return _add(whole, {((atom, 1),): Fraction(1)})


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

# bounds on user text, so that no expression can exhaust the stack, int() or sympy: the digit bound
# is the one the CLI's --set uses (far above any real size, far below int()'s 4300-digit limit)
MAX_TEXT = 1000
MAX_DIGITS = 100
MAX_DEPTH = 100

_TOKEN = re.compile(r"\s*(?:([0-9]+)|([A-Za-z_][A-Za-z0-9_]*)|(//|[-+*/(),]))")


class ExprSyntaxError(ValueError):
    """Raised for text that is not a valid size expression."""


def parse_size_expr(text: str, allowed: Iterable[str]) -> Size:
    """Parse ``+ - * / //``, parentheses, integers, symbols, ``floor()`` and ``ceil()``.

    A hand-written recursive-descent parser: user text never reaches eval or sympify. Text longer
    than MAX_TEXT characters, numbers over MAX_DIGITS digits, nesting deeper than MAX_DEPTH levels
    (parentheses and signs) and a divisor that is not a number are refused.
    """
    if len(text) > MAX_TEXT:
        raise ExprSyntaxError(f"expression longer than {MAX_TEXT} characters ({len(text)})")
    tokens = _tokenize(text)
    parser = _Parser(tokens, set(allowed), text)
    value = parser.expression()
    if parser.pos != len(tokens):
        raise ExprSyntaxError(f"unexpected {_quote(tokens[parser.pos])} in {parser.quoted}")
    return as_size(value)


def _quote(text: str) -> str:
    """``repr(text)``, shortened in the middle when long: an error stays a readable line."""
    return repr(text) if len(text) <= 80 else f"{text[:40]!r}...{text[-30:]!r}"


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise ExprSyntaxError(f"unexpected character {text[pos:].strip()[0]!r} in {_quote(text)}")
        token = next(g for g in match.groups() if g is not None)
        if match.group(1) and len(token) > MAX_DIGITS:
            raise ExprSyntaxError(f"a number with {len(token)} digits in {_quote(text)}; "
                                  f"at most {MAX_DIGITS} digits")
        tokens.append(token)
        pos = match.end()
    if not tokens:
        raise ExprSyntaxError("empty expression")
    return tokens


class _Parser:
    def __init__(self, tokens: list[str], allowed: set[str], text: str) -> None:
        self.tokens, self.allowed, self.text, self.pos, self.depth = tokens, allowed, text, 0, 0
        self.quoted = _quote(text)

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            want = repr(expected) if expected else "a value"
            raise ExprSyntaxError(f"expected {want} in {self.quoted}")
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
                raise ExprSyntaxError(f"division by zero in {self.quoted}")
            if op != "*" and not rhs.is_Rational:
                # a symbolic divisor is zero or negative for some values: sizes divide by numbers
                raise ExprSyntaxError(f"division by {_expr_str(rhs)!r}, which is not a number, "
                                      f"in {self.quoted}")
            if op == "*":
                value = value * rhs
            elif op == "/":
                value = value / rhs
            else:
                value = _rounded(value / rhs, up=False)
        return value

    def unary(self) -> sp.Expr:
        # every level of nesting (a sign, a parenthesis, floor/ceil) passes here once
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprSyntaxError(f"expression nested deeper than {MAX_DEPTH} levels in {self.quoted}")
        try:
            if self.peek() == "-":
                self.take()
                return -self.unary()
            if self.peek() == "+":
                self.take()
                return self.unary()
            return self.atom()
        finally:
            self.depth -= 1

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
            return _rounded(value, up=token == "ceil")
        if IDENTIFIER.match(token):
            if token not in self.allowed:
                known = ", ".join(sorted(self.allowed)) or "none"
                raise ExprSyntaxError(f"unknown symbol {_quote(token)} in {self.quoted} (symbols: {known})")
            return symbol(token)
        raise ExprSyntaxError(f"unexpected {_quote(token)} in {self.quoted}")


def _rounded(arg: sp.Expr, up: bool) -> sp.Expr:
    """``floor(arg)`` or ``ceil(arg)`` with integer terms moved out, as sympy's own would, but
    without its assumption queries (seconds to minutes on a product of a few dozen sums)."""
    if arg.is_Rational:
        q = Fraction(int(arg.p), int(arg.q))
        return sp.Integer(-(-q.numerator // q.denominator) if up else q.numerator // q.denominator)
    whole, rest = [], []
    for term in sp.Add.make_args(arg):
        if _integer_valued(term):
            whole.append(term)
        else:
            rest.append(term)
    inner = sp.Add(*rest)
    if inner.is_Rational:
        return sp.Add(*whole, _rounded(inner, up))
    return sp.Add(*whole, (sp.ceiling if up else sp.floor)(inner, evaluate=False))


def _integer_valued(x: sp.Expr) -> bool:
    """Integer for every value of the symbols, seen from its form alone (symbols are integers)."""
    if x.is_Integer or x.is_Symbol or isinstance(x, (sp.floor, sp.ceiling)):
        return True
    if x.is_Add or x.is_Mul:
        return all(_integer_valued(a) for a in x.args)
    return bool(x.is_Pow and x.exp.is_Integer and x.exp >= 0 and _integer_valued(x.base))
