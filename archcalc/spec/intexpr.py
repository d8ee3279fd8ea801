"""Integer and truth expressions over block parameters: ``"4*planes"``, ``"stride != 1 or c != 4*p"``.

A hand-written recursive-descent parser and evaluator. User text never reaches ``eval``: the
grammar is integers, names, ``+ - * // %``, parentheses, comparisons, ``and``/``or``/``not`` and
``true``/``false``. Values are Python ``int`` and ``bool``, exact; a number beyond 10**30 or text
nested deeper than 100 levels is refused, so no expression can exhaust memory or the stack.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MAX_DIGITS = 30
MAX_DEPTH = 100
MAX_TEXT = 1000

_TOKEN = re.compile(r"\s*(?:([0-9]+)|([A-Za-z_][A-Za-z0-9_]*)|(//|==|!=|<=|>=|[-+*%()<>/]))")
_COMPARE = ("==", "!=", "<=", ">=", "<", ">")
_WORDS = {"and", "or", "not", "true", "false"}


class IntExprError(ValueError):
    """Text that is not a valid expression, or that names an unknown parameter."""


class UnknownName(IntExprError):
    def __init__(self, name: str, text: str) -> None:
        self.name = name
        super().__init__(f"unknown parameter {name!r} in {text!r}")


def tokenize(text: str) -> list[str] | None:
    """The tokens of ``text``, or None when it is not made of expression tokens."""
    if len(text) > MAX_TEXT:
        raise IntExprError(f"expression longer than {MAX_TEXT} characters")
    tokens: list[str] = []
    pos, end = 0, len(text.rstrip())
    while pos < end:
        match = _TOKEN.match(text, pos)
        if not match:
            return None
        tokens.append(next(g for g in match.groups() if g is not None))
        pos = match.end()
    return tokens or None


def names_in(tokens: list[str]) -> list[str]:
    return [t for t in tokens if t[0].isalpha() or t[0] == "_" if t not in _WORDS]


def evaluate(text: str, params: Mapping[str, Any]) -> int | bool:
    """The value of ``text`` with ``params`` bound; IntExprError for anything else."""
    tokens = tokenize(text)
    if tokens is None:
        raise IntExprError(f"{text!r} is not an expression (integers, parameter names, + - * // %, "
                           "comparisons, and/or/not)")
    parser = _Evaluator(tokens, params, text)
    value = parser.disjunction()
    if parser.pos != len(tokens):
        raise IntExprError(f"unexpected {tokens[parser.pos]!r} in {text!r}")
    return value


class _Evaluator:
    def __init__(self, tokens: list[str], params: Mapping[str, Any], text: str) -> None:
        self.tokens, self.params, self.text, self.pos, self.depth = tokens, params, text, 0, 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise IntExprError(f"expected {expected or 'a value'!r} in {self.text!r}"
                               if expected else f"expected a value in {self.text!r}")
        self.pos += 1
        return token

    def _truth(self, value: int | bool, op: str) -> bool:
        if not isinstance(value, bool):
            raise IntExprError(f"{op!r} needs true/false operands (comparisons), got {value} in {self.text!r}")
        return value

    def disjunction(self) -> int | bool:
        value = self.conjunction()
        while self.peek() == "or":
            self.take()
            rhs = self.conjunction()
            value = self._truth(value, "or") or self._truth(rhs, "or")
        return value

    def conjunction(self) -> int | bool:
        value = self.negation()
        while self.peek() == "and":
            self.take()
            rhs = self.negation()
            value = self._truth(value, "and") and self._truth(rhs, "and")
        return value

    def negation(self) -> int | bool:
        if self.peek() == "not":
            self.take()
            return not self._truth(self._nested(self.negation), "not")
        return self.comparison()

    def comparison(self) -> int | bool:
        value = self.sum()
        if self.peek() in _COMPARE:
            op = self.take()
            rhs = self.sum()
            a, b = self._int(value, op), self._int(rhs, op)
            value = {"==": a == b, "!=": a != b, "<=": a <= b, ">=": a >= b, "<": a < b, ">": a > b}[op]
            if self.peek() in _COMPARE:
                raise IntExprError(f"chained comparison in {self.text!r}: join them with 'and'")
        return value

    def sum(self) -> int | bool:
        value = self.product()
        while self.peek() in ("+", "-"):
            op = self.take()
            rhs = self._int(self.product(), op)
            value = self._bound(self._int(value, op) + (rhs if op == "+" else -rhs))
        return value

    def product(self) -> int | bool:
        value = self.unary()
        while self.peek() in ("*", "//", "%", "/"):
            op = self.take()
            if op == "/":
                raise IntExprError(f"'/' in {self.text!r}: sizes are integers, write // for floor division")
            a, b = self._int(value, op), self._int(self.unary(), op)
            if op != "*" and b == 0:
                raise IntExprError(f"division by zero in {self.text!r}")
            value = self._bound(a * b if op == "*" else a // b if op == "//" else a % b)
        return value

    def unary(self) -> int | bool:
        if self.peek() in ("-", "+"):
            op = self.take()
            value = self._int(self._nested(self.unary), op)
            return -value if op == "-" else value
        return self.atom()

    def atom(self) -> int | bool:
        token = self.take()
        if token.isdigit():
            if len(token) > MAX_DIGITS:
                raise IntExprError(f"a number with more than {MAX_DIGITS} digits in {self.text!r}")
            return int(token)
        if token == "(":
            value = self._nested(self.disjunction)
            self.take(")")
            return value
        if token in ("true", "false"):
            return token == "true"
        if token in _WORDS or not (token[0].isalpha() or token[0] == "_"):
            raise IntExprError(f"unexpected {token!r} in {self.text!r}")
        if token not in self.params:
            raise UnknownName(token, self.text)
        value = self.params[token]
        if not isinstance(value, (int, bool)):
            raise IntExprError(f"parameter {token!r} is {value!r}, not an integer, in {self.text!r}")
        return value

    def _nested(self, rule: Any) -> int | bool:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise IntExprError(f"expression nested deeper than {MAX_DEPTH} levels")
        try:
            return rule()  # type: ignore[no-any-return]
        finally:
            self.depth -= 1

    def _int(self, value: int | bool, op: str) -> int:
        if isinstance(value, bool):
            raise IntExprError(f"{op!r} needs integers, got {str(value).lower()} in {self.text!r}")
        return value

    def _bound(self, value: int) -> int:
        if abs(value) >= 10**MAX_DIGITS:
            raise IntExprError(f"a value beyond 10**{MAX_DIGITS} in {self.text!r}")
        return value
