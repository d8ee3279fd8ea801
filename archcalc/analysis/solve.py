"""Inverse questions, answered exactly on the floor expressions.

Every size archcalc derives is non-decreasing in each input size, so the values of one symbol for
which a size reaches a target form an interval, found by exact integer search (or closed form on
the canonical floor form); the same holds for the total MACs, so a budget gives a largest value.
When a question involves more than one free symbol, archcalc says so instead of guessing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from archcalc.analysis.cost import cost
from archcalc.analysis.engine import Analysis, SymbolRange
from archcalc.errors import UsageError
from archcalc.layers.conv import AXES
from archcalc.layers.registry import suggest
from archcalc.symbolic import (
    Size,
    canonical_parts,
    evaluate,
    free_names,
    is_number,
    size_str,
    smallest_at_least,
    solve_equal,
)

PERIOD_LIMIT = 4096  # longer periods of the floor pattern are described, not listed
# integers written as text (sizes, symbol values, MAC budgets) have at most this many digits: far
# above any real size or MAC count, far below the 4300 digits where int() itself gives up
MAX_DIGITS = 100


@dataclass(frozen=True)
class Target:
    layer: str
    axis: int | None
    size: int


@dataclass
class TargetAnswer:
    target: Target
    axis: int
    expr: Size
    values: tuple[int, int | None] | None  # interval of the symbol, or None: no value
    note: str = ""


@dataclass
class WindowFacts:
    """For one conv/pool axis: the padding that keeps the size and the rows lost to the floor."""

    layer: str
    axis: str
    input_size: Size
    keep_padding: str
    dropped: str


@dataclass
class SolveReport:
    symbol: str | None
    ranges: dict[str, SymbolRange]
    targets: list[TargetAnswer] = field(default_factory=list)
    windows: list[WindowFacts] = field(default_factory=list)
    budget: tuple[int, int | None, Size] | None = None  # (max MACs, largest value, MAC formula)
    near: tuple[int, int | None, int | None] | None = None  # (asked, largest valid <=, smallest valid >=)


def shown(text: str, width: int = 40) -> str:
    """A value as an error message quotes it, cut short when long."""
    return repr(text if len(text) <= width else text[:width - 3] + "...")


def whole_number(text: str, option: str, subject: str) -> int | None:
    """``text`` as a non-negative integer if it is ASCII digits, else None (``int`` would also take
    ``'٣'``, and ``str.isdigit`` takes ``'²'``, which ``int`` refuses); more than MAX_DIGITS digits is
    a UsageError about ``option``."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()):
        return None
    if len(text.lstrip("0")) > MAX_DIGITS:
        raise UsageError(f"more than {MAX_DIGITS} digits; archcalc takes integers below 10**{MAX_DIGITS}",
                         option=option, subject=subject)
    return int(text)


def parse_target(text: str) -> Target:
    """``flatten=2464`` or ``pool2:1=22`` (axis 1 of the per-sample output)."""
    left, sep, right = text.partition("=")
    name, _, axis = left.partition(":")
    subject = shown(text)
    size = whole_number(right, "target", subject)
    index = whole_number(axis, "target", subject) if axis else None
    if not sep or not name.strip() or size is None or (axis and index is None):
        raise UsageError("write LAYER=SIZE or LAYER:AXIS=SIZE, e.g. flatten=2464", option="target",
                         subject=subject)
    return Target(name.strip(), index, size)


def parse_budget(text: str) -> int:
    """A MAC budget as written, exactly: an integer, or a decimal form denoting one (``2e7``, ``1.5e3``)."""
    subject = shown(text)
    try:
        value = Decimal(text.strip()) if text.strip().isascii() else None
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        raise UsageError("must be a non-negative integer, e.g. 20000000 or 2e7", option="max_macs",
                         subject=subject)
    if value < 0:
        raise UsageError("must be a non-negative number", option="max_macs", subject=subject)
    if value and value.adjusted() >= MAX_DIGITS:
        raise UsageError(f"more than {MAX_DIGITS} digits; archcalc takes integers below 10**{MAX_DIGITS}",
                         option="max_macs", subject=subject)
    if Decimal(int(value)) != value:  # Decimal compares exactly; a float would not
        raise UsageError("must be a whole number of MACs", option="max_macs", subject=subject)
    return int(value)


def free_symbol(analysis: Analysis, requested: str | None) -> str | None:
    """The symbol to solve for: the one asked for, else the only one of the spec."""
    symbols = list(analysis.symbols)
    if requested is not None:
        if requested not in symbols:
            raise UsageError(f"{analysis.spec.source} has no symbol {requested!r}{suggest(requested, symbols)} "
                             f"(symbols: {', '.join(symbols) or 'none'})", option="symbol", subject=repr(requested))
        return requested
    if len(symbols) > 1:
        raise UsageError(f"{analysis.spec.source} has symbols {', '.join(symbols)}: name the one to solve for",
                         option="symbol")
    return symbols[0] if symbols else None


def solve(analysis: Analysis, symbol: str | None, targets: list[Target], max_macs: int | None = None,
          near: int | None = None) -> SolveReport:
    """Ranges, target values, window facts, the MAC budget and the valid values near ``near``.

    ``max_macs`` is an exact integer budget (``parse_budget`` reads one from text). Raises
    ``UsageError`` naming the argument at fault (``target``, ``max_macs``, ``near``).
    """
    if max_macs is not None and (isinstance(max_macs, bool) or not isinstance(max_macs, int) or max_macs < 0):
        raise UsageError("must be a non-negative integer", option="max_macs", subject=repr(max_macs))
    if near is not None and (isinstance(near, bool) or not isinstance(near, int) or near < 1):
        raise UsageError("must be a positive integer", option="near", subject=repr(near))
    others = {k: v for k, v in analysis.values.items() if k != symbol}
    report = SolveReport(symbol, dict(analysis.ranges))
    if near is not None and symbol is not None:
        report.near = (near, *_nearest(analysis, symbol, others, near))
    for target in targets:
        report.targets.append(_answer(analysis, target, symbol, others))
    report.windows = window_facts(analysis, symbol, others)
    if max_macs is not None:
        report.budget = _budget(analysis, symbol, others, max_macs)
    return report


def _nearest(analysis: Analysis, symbol: str, others: dict[str, int], near: int,
             tries: int = 100_000) -> tuple[int | None, int | None]:
    """The valid values of ``symbol`` nearest ``near``, below and above, conditions not folded into
    its range included (then found value by value, within ``tries`` steps)."""
    rng = analysis.ranges[symbol]

    def ok(v: int) -> bool:
        return analysis.satisfies({**others, symbol: v})

    below, above = rng.last_to(near), rng.first_from(near)
    for _ in range(tries):
        if below is None or ok(below):
            break
        below = rng.last_to(below - 1)
    for _ in range(tries):
        if above is None or ok(above):
            break
        above = rng.first_from(above + 1)
    return below, above


def _answer(analysis: Analysis, target: Target, symbol: str | None, others: dict[str, int]) -> TargetAnswer:
    row = analysis.layer(target.layer)
    if row is None:
        raise UsageError(f"no such layer{suggest(target.layer, list(analysis.names))}", option="target",
                         subject=target.layer)
    shape = tuple(evaluate(s, others) for s in row.out_shape)
    axis = target.axis
    if axis is None:
        symbolic = [i for i, s in enumerate(shape) if not is_number(s)]
        if len(symbolic) > 1:
            raise UsageError(f"axes {symbolic} of {[size_str(s) for s in shape]} depend on symbols; name "
                             f"one, e.g. {target.layer}:{symbolic[0]}={target.size}", option="target",
                             subject=target.layer)
        axis = symbolic[0] if symbolic else (0 if len(shape) == 1 else -1)
        if axis == -1:
            raise UsageError(f"its output {list(shape)} does not depend on a symbol; name an axis, "
                             f"e.g. {target.layer}:0={target.size}", option="target", subject=target.layer)
    if not 0 <= axis < len(shape):
        raise UsageError(f"the output has axes 0..{len(shape) - 1}", option="target",
                         subject=f"{target.layer}:{axis}")
    expr = shape[axis]
    valid = analysis.ranges[symbol] if symbol else None
    if is_number(expr):
        holds = expr == target.size
        interval = ((valid.lo, valid.hi) if valid else (1, None)) if holds else None
        return TargetAnswer(target, axis, expr, interval, "every value" if holds else "never")
    depends = free_names(expr)
    if symbol is None or valid is None or depends != {symbol}:
        return TargetAnswer(target, axis, expr, None, f"depends on {', '.join(sorted(depends))}: no exact "
                            "answer for one symbol; give the others values first")
    found = solve_equal(expr, symbol, target.size)
    if found is None:
        return TargetAnswer(target, axis, expr, None, "no value reaches it exactly")
    within = valid.intersect(*found)
    if within is None:
        return TargetAnswer(target, axis, expr, None, f"only outside the valid range ({found[0]}..{found[1]})")
    if within.modulus > 1 and within.lo != within.hi:
        listed = within.values(9)
        note = f"valid values only: {', '.join(map(str, listed[:8]))}{', ...' if len(listed) > 8 else ''}"
        return TargetAnswer(target, axis, expr, (within.lo, within.hi), note)
    return TargetAnswer(target, axis, expr, (within.lo, within.hi))


def window_facts(analysis: Analysis, symbol: str | None, others: dict[str, int]) -> list[WindowFacts]:
    facts = []
    for row in analysis.layers:
        window = None if row.shared_with else row.kind.window(row.args)
        if window is None:
            continue
        k, s, p, d = window
        ceil_mode = bool(row.args.get("ceil_mode", False))
        for a, name in enumerate(AXES[len(k)]):
            n = evaluate(row.in_shape[1 + a], others)
            facts.append(WindowFacts(row.name, name, n, _keep(n, k[a], s[a], d[a]),
                                     "none (ceil_mode keeps partial windows)" if ceil_mode
                                     else _dropped(n, k[a], s[a], p[a], d[a], symbol, analysis)))
    return facts


def keep_total(n: int, k: int, s: int, d: int) -> int:
    """Total padding for ceil(n / s) outputs: max(0, (ceil(n/s) - 1)*s + d(k-1) + 1 - n)."""
    return max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)


def _keep(n: Size, k: int, s: int, d: int) -> str:
    """The padding for out = ceil(n / s) (= n at stride 1), as torch's 'same' and TF's SAME do."""
    span = d * (k - 1)
    if s == 1:
        return f"padding={span // 2}" if span % 2 == 0 else f"total {span} (asymmetric: padding='same' on a conv)"
    if is_number(n):
        total = keep_total(n, k, s, d)
        side = f"padding={total // 2}" if total % 2 == 0 else f"{total // 2} left, {total - total // 2} right"
        return f"total {total} for ceil(n/{s}) ({side})"
    # total = max(0, (ceil(n/s) - 1)*s + d(k-1) + 1 - n) depends only on n mod s
    by_total: dict[int, list[int]] = {}
    for r in range(s):
        by_total.setdefault(keep_total(s + r, k, s, d), []).append(r)  # any n with this residue
    if len(by_total) == 1:
        return f"total {next(iter(by_total))} for ceil(n/{s}), n = {size_str(n)}"
    parts = [f"total {t} when n mod {s} in {{{', '.join(map(str, rs))}}}" for t, rs in sorted(by_total.items())]
    return "; ".join(parts) + f" (n = {size_str(n)})"


def _dropped(n: Size, k: int, s: int, p: int, d: int, symbol: str | None, analysis: Analysis) -> str:
    """Rows of input (and padding) that no window reaches: (n + 2p - d(k-1) - 1) mod s."""
    if s == 1:
        return "none (stride 1)"
    if is_number(n):
        r = (n + 2 * p - d * (k - 1) - 1) % s
        return f"{r} row{'s' if r != 1 else ''} at n={n}" if r else f"none at n={n}"
    if symbol is None or free_names(n) != {symbol}:
        return f"depends on {', '.join(sorted(free_names(n)))}"
    period = _period(n, s)
    if period is None or period > PERIOD_LIMIT:
        return "periodic in " + symbol + " (period too long to list)"
    lo = analysis.ranges[symbol].lo
    valid = analysis.ranges[symbol]
    lossy = [t for t in range(lo, lo + math.lcm(period, valid.modulus)) if valid.contains(t)
             and (evaluate(n, {symbol: t}) + 2 * p - d * (k - 1) - 1) % s]
    if not lossy:
        return "none, for every value"
    residues = sorted({t % period for t in lossy})
    return f"when {symbol} mod {period} in {{{', '.join(map(str, residues))}}}"


def _period(n: Size, s: int) -> int | None:
    parts = canonical_parts(n)  # n = floor(c*T + f) + m: n mod s repeats every s * denominator(c)
    if parts is None or len(parts[0]) != 1:
        return None
    (c,) = parts[0].values()
    return s * Fraction(c).denominator


def _budget(analysis: Analysis, symbol: str | None, others: dict[str, int], max_macs: int
            ) -> tuple[int, int | None, Size]:
    macs = evaluate(cost(analysis).total_macs, others)
    if is_number(macs) or symbol is None:
        return max_macs, None, macs
    if free_names(macs) != {symbol}:
        raise UsageError(f"the MACs depend on {', '.join(sorted(free_names(macs)))}; bind the symbols "
                         f"other than {symbol}", option="max_macs", fix="values")
    first_over = smallest_at_least(macs, symbol, max_macs + 1)
    valid = analysis.ranges[symbol]
    largest = None if first_over is None else first_over - 1
    if largest is not None:
        largest = valid.last_to(largest) or 0  # 0: not even the smallest valid size fits
    return max_macs, largest, macs
