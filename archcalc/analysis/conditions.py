"""The conditions a spec puts on its symbols, and the exact set of values each symbol may take.

A condition is ``expr >= n``, ``expr == n`` or, where two branches of a graph meet, ``a == b``
for two sizes. Conditions on one symbol are folded into a ``SymbolRange``: an interval, and a set
of residues modulo a period. The residues are exact: every size archcalc derives is in the
canonical form ``floor(c*T + f) + m``, so ``a - b`` for two sizes with the same slope ``c = p/q``
repeats every ``q`` values of ``T`` (U-Net's four 2x poolings give ``T ≡ 0 (mod 16)``); with
different slopes ``a == b`` holds on a short interval, listed value by value. Conditions on
several symbols (or too long a period to list) are kept and checked once the symbols are bound.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

from archcalc.errors import ShapeError
from archcalc.layers.registry import Condition
from archcalc.spec import LayerSpec, ModelSpec
from archcalc.symbolic import (
    Size,
    evaluate,
    free_names,
    is_number,
    size_str,
    smallest_at_least,
    solve_equal,
    sp,
)

PERIOD_LIMIT = 1 << 16  # longer periods are kept as conditions, checked at bound values


@dataclass(frozen=True)
class SymbolRange:
    """The values of a symbol allowed by the single-symbol conditions:
    ``lo <= v <= hi`` and ``v mod modulus`` in ``residues``; ``lo``/``hi`` are themselves valid."""

    lo: int = 1
    hi: int | None = None
    modulus: int = 1
    residues: frozenset[int] = field(default_factory=lambda: frozenset({0}))

    def text(self, name: str) -> str:
        if self.hi is None:
            span = f"{name} >= {self.lo}"
        elif self.hi == self.lo:
            return f"{name} = {self.lo}"
        else:
            span = f"{self.lo} <= {name} <= {self.hi}"
        if self.modulus == 1:
            return span
        if len(self.residues) == 1:
            return f"{span}, {name} ≡ {next(iter(self.residues))} (mod {self.modulus})"
        listed = ", ".join(map(str, sorted(self.residues)))
        return f"{span}, {name} mod {self.modulus} in {{{listed}}}"

    def contains(self, value: int) -> bool:
        return (value >= self.lo and (self.hi is None or value <= self.hi)
                and value % self.modulus in self.residues)

    def first_from(self, value: int) -> int | None:
        """The smallest valid value >= ``value``, or None."""
        v = max(value, self.lo)
        for candidate in range(v, v + self.modulus):
            if candidate % self.modulus in self.residues:
                return candidate if self.hi is None or candidate <= self.hi else None
        return None

    def last_to(self, value: int) -> int | None:
        """The largest valid value <= ``value``, or None."""
        v = value if self.hi is None else min(value, self.hi)
        for candidate in range(v, v - self.modulus, -1):
            if candidate < self.lo:
                return None
            if candidate % self.modulus in self.residues:
                return candidate
        return None

    def values(self, count: int, start: int | None = None) -> list[int]:
        """Up to ``count`` valid values from ``start`` (default: the smallest) upwards."""
        out: list[int] = []
        v = self.first_from(self.lo if start is None else start)
        while v is not None and len(out) < count:
            out.append(v)
            v = self.first_from(v + 1)
        return out

    def intersect(self, lo: int, hi: int | None, modulus: int = 1,
                  residues: Iterable[int] = (0,)) -> SymbolRange | None:
        """Both sets at once; None when they share no value. Raises OverflowError past PERIOD_LIMIT."""
        m = math.lcm(self.modulus, modulus)
        if m > PERIOD_LIMIT:
            raise OverflowError(m)
        wanted = set(residues)
        kept = frozenset(r for r in range(m) if r % self.modulus in self.residues and r % modulus in wanted)
        new_hi = hi if self.hi is None else (self.hi if hi is None else min(self.hi, hi))
        raw = SymbolRange(max(self.lo, lo), new_hi, m, kept)
        if not kept:
            return None
        first = raw.first_from(raw.lo)
        if first is None:
            return None
        last = raw.last_to(new_hi) if new_hi is not None else None
        return SymbolRange(first, last, m, kept)


def equal_set(a: Size, b: Size, name: str) -> tuple[int, int | None, int, frozenset[int]] | None:
    """The values of symbol ``name`` with ``a == b``: (lo, hi, modulus, residues), exactly.

    Both sides are sums ``sum k*floor(c*T + f) + l*T + m`` (what conv, pool and transposed conv
    sizes are). With equal slopes ``a - b`` repeats every lcm of the ``c`` denominators; with
    different slopes it is zero only on a short interval, searched value by value. None when a side
    has another form or the period is too long (the condition is then checked at bound values).
    An empty set is ``(1, 0, 1, {0})``.
    """
    pa, pb = _floor_sum(a, name), _floor_sum(b, name)
    if pa is None or pb is None:
        return None

    def holds(t: int) -> bool:
        return _value(pa, t) == _value(pb, t)

    slope_a, slope_b = _slope(pa), _slope(pb)
    if slope_a == slope_b:
        period = math.lcm(1, *(c.denominator for _, c, _ in pa[0] + pb[0]))
        if period > PERIOD_LIMIT:
            return None
        residues = frozenset(r for r in range(period) if holds(r + period))
        if not residues:
            return 1, 0, 1, frozenset({0})
        return 1, None, period, residues
    # each floor is within 1 of its argument: a - b = (slope_a - slope_b)*t + k + e, |e| <= width
    width = sum(abs(k) for k, _, _ in pa[0] + pb[0]) + 1
    k = sum(kk * f for kk, _, f in pa[0]) - sum(kk * f for kk, _, f in pb[0]) + pa[2] - pb[2]
    slope = slope_a - slope_b
    ends = sorted(((-width - k) / slope, (width - k) / slope))
    first, last = max(1, math.floor(ends[0])), math.ceil(ends[1])
    if last - first > PERIOD_LIMIT:
        return None
    found = [t for t in range(first, last + 1) if holds(t)]
    if not found:
        return 1, 0, 1, frozenset({0})
    lo, hi = found[0], found[-1]
    if hi - lo + 1 == len(found):
        return lo, hi, 1, frozenset({0})
    span = hi - lo + 1  # each residue modulo the span appears once in [lo, hi]
    return lo, hi, span, frozenset(t % span for t in found)


FloorSum = tuple[list[tuple[int, Fraction, Fraction]], Fraction, int]  # [(k, c, f)], l, m


def _floor_sum(size: Size, name: str) -> FloorSum | None:
    """``sum k*floor(c*T + f) + l*T + m`` as ([(k, c, f)], l, m), when ``size`` depends on ``name`` alone."""
    if is_number(size):
        return [], Fraction(0), int(size)
    floors: list[tuple[int, Fraction, Fraction]] = []
    linear, m = Fraction(0), 0
    for term in sp.Add.make_args(size):
        if term.is_Integer:
            m += int(term)
            continue
        k, rest = term.as_coeff_Mul()
        if rest.is_Symbol and rest.name == name and k.is_Rational:
            linear += Fraction(int(k.p), int(k.q))
        elif k.is_Integer and isinstance(rest, sp.floor):
            inner = _linear(rest.args[0], name)
            if inner is None:
                return None
            floors.append((int(k), *inner))
        else:
            return None
    return floors, linear, m


def _linear(expr: sp.Expr, name: str) -> tuple[Fraction, Fraction] | None:
    """``c*T + f`` as (c, f)."""
    c, f = Fraction(0), Fraction(0)
    for term in sp.Add.make_args(expr):
        if term.is_Rational:
            f += Fraction(int(term.p), int(term.q))
            continue
        coeff, rest = term.as_coeff_Mul()
        if not (coeff.is_Rational and rest.is_Symbol and rest.name == name):
            return None
        c += Fraction(int(coeff.p), int(coeff.q))
    return c, f


def _slope(form: FloorSum) -> Fraction:
    return sum((k * c for k, c, _ in form[0]), start=form[1])


def _value(form: FloorSum, t: int) -> Fraction:
    return sum((Fraction(k * math.floor(c * t + f)) for k, c, f in form[0]), start=form[1] * t + form[2])


class Conditions:
    """Collects the conditions on the symbols; refuses impossible ones at once."""

    def __init__(self, spec: ModelSpec, values: Mapping[str, int]) -> None:
        self.spec = spec
        self.values = values
        self.conditions: list[Condition] = []
        self.ranges: dict[str, SymbolRange] = {s: SymbolRange() for s in spec.symbol_names}
        self.located: dict[int, tuple[LayerSpec, str]] = {}
        self.unsolved: list[Condition] = []  # not folded into a range: shown as they are, checked when bound

    def add(self, cond: Condition, layer: LayerSpec, where: str) -> None:
        if is_number(cond.expr) and is_number(cond.value):
            if not holds(cond.expr, cond.op, cond.value):
                raise ShapeError(numeric_failure(cond, layer), source=where)
            return
        if cond.op == "==" and cond.expr == cond.value:
            return  # the same canonical form on both sides: holds for every value
        names = free_names(cond.expr) | free_names(cond.value)
        if len(names) != 1 or not self._narrow(next(iter(names)), cond, layer, where):
            self.unsolved.append(cond)
        self.conditions.append(cond)
        self.located[id(cond)] = (layer, where)

    def check_values(self) -> None:
        """With every condition known, the first one the bound values break is an error."""
        for cond in self.conditions:
            value, target = evaluate(cond.expr, self.values), evaluate(cond.value, self.values)
            if is_number(value) and is_number(target) and not holds(value, cond.op, target):
                layer, where = self.located[id(cond)]
                names = sorted(free_names(cond.expr) | free_names(cond.value))
                bound = ", ".join(f"{k}={v}" for k, v in self.values.items() if k in names)
                need = ", ".join(self.ranges[n].text(n) for n in names)
                if is_number(cond.value):
                    got = f"{cond.what} is {size_str(cond.expr)} = {value} for {bound}; " \
                          f"needs {cond.op} {cond.value}"
                else:
                    got = (f"{cond.what}: {size_str(cond.expr)} = {value} but {size_str(cond.value)} = "
                           f"{target} for {bound}")
                raise ShapeError(f"{layer.label}: {got} (valid: {need})", source=where)

    def _narrow(self, name: str, cond: Condition, layer: LayerSpec, where: str) -> bool:
        """Fold a one-symbol condition into the symbol's range; False when it cannot be folded."""
        old = self.ranges[name]
        found = self._solve(name, cond)
        if found is None:
            return False
        lo, hi, modulus, residues = found
        if hi is not None and hi < lo:
            if is_number(cond.value):
                raise ShapeError(f"{layer.label}: no value of {name} gives {cond.what}: "
                                 f"{cond.text()}", source=where)
            raise ShapeError(f"{layer.label}: {cond.what}, but {cond.text()} holds for no value of {name}",
                             source=where)
        try:
            new = old.intersect(lo, hi, modulus, residues)
        except OverflowError:
            return False
        if new is None:
            raise ShapeError(f"{layer.label}: no value of {name} satisfies {cond.text()} ({cond.what}) "
                             f"together with the earlier layers ({old.text(name)})", source=where)
        self.ranges[name] = new
        return True

    @staticmethod
    def _solve(name: str, cond: Condition) -> tuple[int, int | None, int, frozenset[int]] | None:
        if not is_number(cond.value):  # two sizes that must agree (numbers never reach here)
            return equal_set(cond.expr, cond.value, name)
        target = int(cond.value)
        if cond.op == ">=":
            lo = smallest_at_least(cond.expr, name, target)
            return (1, 0, 1, frozenset({0})) if lo is None else (lo, None, 1, frozenset({0}))
        interval = solve_equal(cond.expr, name, target)
        return (1, 0, 1, frozenset({0})) if interval is None else (*interval, 1, frozenset({0}))


def holds(value: Size, op: str, target: Size) -> bool:
    return value >= target if op == ">=" else value == target  # type: ignore[operator]


def numeric_failure(cond: Condition, layer: LayerSpec) -> str:
    if cond.op == ">=" and "(output)" in cond.what:
        axis = cond.what.split(" ")[0]
        return (f"{layer.label}: output {axis} would be {cond.expr} (must be >= 1): "
                f"the input is too small for this window")
    if cond.op == ">=":
        return f"{layer.label}: {cond.what}: size {cond.expr} is too small (needs >= {cond.value})"
    return f"{layer.label}: {cond.what} disagrees with the incoming size {cond.expr}"
