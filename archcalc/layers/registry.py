"""The layer registry: one small class per ``torch.nn`` kind, keyed by its class name.

A kind knows its constructor arguments (validated once, when the spec is read), its output shape
for an input shape (ints and sympy expressions alike), its parameter count with a human formula,
and the keyword arguments that build the matching ``torch.nn`` module.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from archcalc.symbolic import Size, as_size, floor_div, is_number, size_str


class _Required:
    def __repr__(self) -> str:
        return "<required>"


class _Inferred:
    def __repr__(self) -> str:
        return "<inferred>"


REQUIRED: Any = _Required()
INFERRED: Any = _Inferred()  # filled in from the incoming shape; checked when written


class ArgError(ValueError):
    """A bad argument value; the message names what is wrong, the caller adds where."""


@dataclass(frozen=True)
class Arg:
    """One constructor argument: how to validate it and what it defaults to."""

    check: Callable[[Any], Any]
    default: Any = REQUIRED
    doc: str = ""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def int_arg(minimum: int = 1, default: Any = REQUIRED, allow_none: bool = False) -> Arg:
    def check(value: Any) -> Any:
        if value is None and allow_none:
            return None
        if not _is_int(value) or value < minimum:
            raise ArgError(f"must be an integer >= {minimum}, got {value!r}")
        return value
    return Arg(check, default)


def ntuple_arg(n: int, minimum: int = 1, default: Any = REQUIRED, allow_none: bool = False,
               strings: tuple[str, ...] = ()) -> Arg:
    """An int, or a list of n ints (as torch's ``_pair``/``_triple`` accept)."""
    def check(value: Any) -> Any:
        if value is None and allow_none:
            return None
        if isinstance(value, str) and value in strings:
            return value
        if _is_int(value):
            items: list[Any] = [value]
        elif isinstance(value, (list, tuple)) and len(value) == n:
            items = list(value)
        else:
            also = "".join(f" or {s!r}" for s in strings)
            raise ArgError(f"must be an integer or a list of {n} integers{also}, got {value!r}")
        for item in items:
            if not _is_int(item) or item < minimum:
                raise ArgError(f"entries must be integers >= {minimum}, got {value!r}")
        return tuple(value) if isinstance(value, (list, tuple)) else value
    return Arg(check, default)


def bool_arg(default: bool) -> Arg:
    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise ArgError(f"must be true or false, got {value!r}")
        return value
    return Arg(check, default)


def float_arg(default: Any, lo: float = -math.inf, hi: float = math.inf,
              lo_open: bool = False) -> Arg:
    def check(value: Any) -> Any:
        if value is None and default is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise ArgError(f"must be a number, got {value!r}")
        if value < lo or value > hi or (lo_open and value == lo):
            bound = f"> {lo}" if lo_open else f">= {lo}"
            raise ArgError(f"must be {bound} and <= {hi}, got {value!r}")
        return float(value)
    return Arg(check, default)


def choice_arg(choices: tuple[str, ...], default: str) -> Arg:
    def check(value: Any) -> str:
        if value not in choices:
            raise ArgError(f"must be one of {', '.join(map(repr, choices))}, got {value!r}")
        return value
    return Arg(check, default)


def sample_axis(dim: int, rank: int, name: str = "dim") -> int:
    """The per-sample axis (0-based) of a torch dim that counts the batch axis; refuses the batch axis."""
    full = rank + 1
    if not -full <= dim < full:
        raise ArgError(f"{name} = {dim} is out of range for a {full}-d input (batch axis included): "
                       f"use {-full}..{full - 1}")
    if dim % full == 0:
        raise ArgError(f"{name} = {dim} is the batch axis; per-sample axes are 1..{full - 1} "
                       f"(or {-full + 1}..-1)")
    return dim % full - 1


def dims_arg(default: Any = REQUIRED, allow_int: bool = True) -> Arg:
    """An axis or a list of distinct axes, the batch axis counted as in torch."""
    def check(value: Any) -> Any:
        if allow_int and _is_int(value):
            return value
        if not isinstance(value, (list, tuple)) or not value or not all(_is_int(v) for v in value):
            what = "an integer axis or a non-empty list of them" if allow_int else "a non-empty list of integer axes"
            raise ArgError(f"must be {what} (batch axis counted, as in torch), got {value!r}")
        return tuple(value)
    return Arg(check, default)


def dim_arg(default: Any) -> Arg:
    def check(value: Any) -> Any:
        if value is None and default is None:
            return None
        if not _is_int(value):
            raise ArgError(f"must be an integer axis (batch axis counted, as in torch), got {value!r}")
        return value
    return Arg(check, default)


@dataclass(frozen=True)
class Condition:
    """A requirement on the symbols for the spec to hold: ``expr >= n``, ``expr == n``, or
    ``expr == value`` for two sizes (where branches of a graph meet)."""

    layer_index: int
    layer_name: str
    what: str
    expr: Size
    op: str  # ">=" or "=="
    value: Size

    def text(self) -> str:
        return f"{size_str(self.expr)} {self.op} {size_str(self.value)}"


@dataclass
class Step:
    """What one layer does to one input shape."""

    out_shape: tuple[Size, ...]
    derivation: list[tuple[str, Size]] = field(default_factory=list)
    conditions: list[tuple[str, Size, str, Size]] = field(default_factory=list)

    def need_positive(self, what: str, size: Size) -> None:
        self.conditions.append((what, size, ">=", 1))

    def need_equal(self, what: str, a: Size, b: Size) -> None:
        """Two sizes that must agree (branches meeting in a merge); numbers are checked at once."""
        if is_number(a) and is_number(b):
            if a != b:
                raise ArgError(f"{what}: {a} vs {b}")
            return
        if a != b:
            self.conditions.append((what, a, "==", b))

    def need_multiple(self, what: str, size: Size, divisor: int) -> None:
        """``size`` must be a multiple of ``divisor``: a number is checked at once; a symbolic size
        gets ``floor((n + d - 1)/d) == floor(n/d)``, which the analysis solves into residues."""
        if divisor == 1:
            return
        if is_number(size):
            if size % divisor:
                raise ArgError(f"{what}: {size} is not a multiple of {divisor}")
            return
        self.conditions.append((f"{what} (a multiple of {divisor})", floor_div(size, divisor - 1, divisor),
                                "==", floor_div(size, 0, divisor)))

    def infer(self, name: str, written: Any, incoming: Size) -> Size:
        """An inferred argument takes the incoming size; a written one must agree with it.

        Against a symbolic incoming size, a written number becomes a condition on the symbols.
        """
        if written is INFERRED:
            return incoming
        if is_number(incoming):
            if written != incoming:
                raise ArgError(f"{name} = {written} disagrees with the incoming size {incoming}")
        else:
            self.conditions.append((f"{name} = {written}", incoming, "==", written))
        return as_size(written)


@dataclass(frozen=True)
class ParamCount:
    n: Size
    formula: str
    trainable: bool = True


FAMILIES = ("conv", "conv_transpose", "pool", "adaptive_pool", "upsample", "linear", "activation", "norm",
            "softmax", "reshape", "dropout", "identity", "merge", "recurrent", "attention", "pad", "reduce",
            "embedding")


class LayerKind:
    """Base class of a layer kind. Subclasses set ``type``/``args`` and override the rules.

    Facts about the kind's family live here, so reports, lint rules, diagrams and the bench ask the
    kind instead of matching type names: ``family`` (one of ``FAMILIES``), ``has_batch_stats``
    (normalizes over the batch, so micro-batching would change the maths) and ``arity`` (inputs
    taken: 1; None for two or more; an int n > 1 for one or n, which the kind's ``apply_all``
    checks: MultiheadAttention takes one input or query, key and value).
    """

    type: ClassVar[str] = ""
    args: ClassVar[dict[str, Arg]] = {}
    ranks: ClassVar[tuple[int, ...] | None] = None  # accepted per-sample ranks; None: any >= 1
    rank_doc: ClassVar[str] = ""
    family: ClassVar[str] = "identity"
    has_batch_stats: ClassVar[bool] = False
    arity: ClassVar[int | None] = 1
    words_name: ClassVar[str] = ""  # how a report names the kind ("ReLU activation"); default: type

    def check_args(self, args: Mapping[str, Any]) -> None:
        """Checks between arguments, once they are valid one by one (raise ArgError)."""

    def apply(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> Step:
        """Output shape and derivation for a per-sample input shape."""
        return Step(tuple(shape))

    def apply_all(self, shapes: tuple[tuple[Size, ...], ...], args: Mapping[str, Any]) -> Step:
        """Output shape for the shapes of every input (one for most kinds; merges take several)."""
        return self.apply(shapes[0], args)

    def build_module(self, torch: Any, kwargs: Mapping[str, Any]) -> Any:
        """The ``torch.nn`` module for these constructor arguments."""
        return getattr(torch.nn, self.type)(**kwargs)

    def words(self, args: Mapping[str, Any], in_shapes: tuple[tuple[Size, ...], ...],
              out_shape: tuple[Size, ...]) -> str:
        """The layer in a sentence, as a report lists it (``out`` is the output, ``A × B``)."""
        return f"{self.words_name or self.type}; output {shape_words(out_shape)}"

    def params(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> ParamCount:
        return ParamCount(0, "0")

    def param_shapes(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> dict[str, tuple[Size, ...]]:
        """The module's parameters by name and shape (``weight``, ``bias``), as torch registers them."""
        return {}

    def torch_kwargs(self, shape: tuple[Size, ...], args: Mapping[str, Any]) -> dict[str, Any]:
        """Keyword arguments for the torch constructor, inferred sizes filled in."""
        return {k: v for k, v in args.items() if v is not INFERRED}

    def params_all(self, shapes: tuple[tuple[Size, ...], ...], args: Mapping[str, Any]) -> ParamCount:
        """The parameter count for the shapes of every input (a kind whose count depends on more
        than its first input overrides it)."""
        return self.params(shapes[0], args)

    def param_shapes_all(self, shapes: tuple[tuple[Size, ...], ...],
                         args: Mapping[str, Any]) -> dict[str, tuple[Size, ...]]:
        return self.param_shapes(shapes[0], args)

    def macs_all(self, shapes: tuple[tuple[Size, ...], ...], out_shape: tuple[Size, ...],
                 args: Mapping[str, Any]) -> Size:
        """MACs for the shapes of every input: cross-attention depends on the key's length."""
        return self.macs(shapes[0], out_shape, args)

    def describe(self, args: Mapping[str, Any]) -> str:
        """A short text of the key arguments, for tables and diagrams."""
        return ""

    def macs(self, shape: tuple[Size, ...], out_shape: tuple[Size, ...], args: Mapping[str, Any]) -> Size:
        """Forward multiply-accumulates per sample (conv and linear; elementwise ops count 0)."""
        return 0

    def window(self, args: Mapping[str, Any]) -> tuple[tuple[int, ...], ...] | None:
        """(kernel, stride, left padding, dilation) per spatial axis, for receptive fields."""
        return None

    def spans_input(self) -> bool:
        """True when every output sees the whole input (adaptive pooling, Flatten, Linear)."""
        return False


REGISTRY: dict[str, LayerKind] = {}


def register(cls: type[LayerKind]) -> type[LayerKind]:
    REGISTRY[cls.type] = cls()
    return cls


def get_kind(type_name: str) -> LayerKind | None:
    return REGISTRY.get(type_name)


def suggest(word: str, options: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest option, or nothing."""
    lowered = {o.lower(): o for o in options}
    if word.lower() in lowered:
        return f" (did you mean {lowered[word.lower()]!r}?)"
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def factor_str(size: Size) -> str:
    """A size as a factor in a formula: parenthesized unless it is a number or a name."""
    text = size_str(size)
    return text if is_number(size) or text.isidentifier() else f"({text})"


def mul_str(*factors: Size) -> str:
    """``5*5*1*32``, with non-atomic factors in parentheses."""
    return "*".join(factor_str(f) for f in factors)


def shape_words(shape: tuple[Size, ...]) -> str:
    """``32 × 97 × 36``: a shape as a report writes it."""
    return " × ".join(size_str(s) for s in shape)


def product(values: tuple[Size, ...] | list[Size]) -> Size:
    result: Size = 1
    for v in values:
        result = as_size(result * v)
    return result
