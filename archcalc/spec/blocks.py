"""Blocks: sub-networks defined once under ``[blocks.NAME]`` and stamped out where a layer uses them.

A block has parameters (``args`` with defaults, ``required`` without), layers whose arguments may
name the parameters or small integer expressions of them (``"4*planes"``, see ``intexpr``), and
layers kept only when a condition on the parameters holds (``when = "stride != 1"``). A layer
that is left out passes its input through: whoever takes its output takes its input instead,
which is how a shortcut with an optional projection is written.

Expansion happens once, when the spec is read: every node of every copy becomes an ordinary
``LayerSpec`` with a dotted name (``layer1.0.conv1``), so the analysis, the builder and every
command see a plain graph; the uses themselves are kept as ``Group`` records for the summaries.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from archcalc.layers import REGISTRY
from archcalc.layers.registry import ArgError, suggest
from archcalc.spec.intexpr import IntExprError, UnknownName, evaluate, names_in, tokenize
from archcalc.spec.model import INPUT, Group

if TYPE_CHECKING:
    from archcalc.errors import SpecError

BLOCK_KEYS = ("args", "required", "layers", "output", "description")
USE_KEYS = ("name", "block", "from", "when", "repeat", "first", "first_index", "trainable",
            "expect_shape", "expect_params")
MAX_NESTING = 16  # blocks inside blocks
MAX_NODES = 100_000  # nodes after expansion
BLOCK_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_OPERATORS = set("*+/%()<>=!")


@dataclass(frozen=True)
class BlockDef:
    """A block as written: parameters, defaults and layers (validated when used)."""

    name: str
    defaults: Mapping[str, Any]  # parameter -> default (parameters in `required` are absent)
    params: tuple[str, ...]  # every parameter, in the order written
    layers: tuple[tuple[dict[str, Any], int | None], ...]  # (raw layer, line)
    output: str | None
    line: int | None


@dataclass
class Scope:
    """Names visible to the layers of one copy of a block: local name -> global node name.

    A name mapped to None is a layer left out by its ``when`` that cannot pass its input through
    (it merges several inputs).
    """

    block: str
    use: str
    use_line: int | None
    params: Mapping[str, Any]
    names: dict[str, str | None] = field(default_factory=dict)
    left_out: set[str] = field(default_factory=set)  # names standing for a layer its when left out

    @property
    def context(self) -> str:
        at = f" at line {self.use_line}" if self.use_line else ""
        return f" (in block {self.block!r} as used by {self.use!r}{at})"


class ReaderLike(Protocol):
    """What the expander needs from the spec reader (see ``reader._Reader``)."""

    source: str
    lines: list[str]
    context: str
    frozen: bool
    current_line: int | None
    aliases: dict[str, str]

    def fail(self, message: str, line: int | None = None) -> SpecError: ...
    def line_of(self, key: str, after: int | None = None) -> int | None: ...
    def resolve(self, source: Any, label: str, where: int | None, scope: Scope | None) -> str: ...
    def add_layer(self, raw: dict[str, Any], line: int | None, default_input: str,
                  scope: Scope | None) -> str: ...
    def node_count(self) -> int: ...
    def expectations(self, raw: dict[str, Any], label: str,
                     line: int | None) -> tuple[tuple[Any, ...] | None, int | None]: ...


def read_blocks(table: Any, reader: ReaderLike) -> dict[str, BlockDef]:
    """Validate the ``[blocks]`` table's structure (the layers are checked when a block is used)."""
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise reader.fail(f"[blocks] must be a table of blocks ([blocks.NAME]), got {table!r}",
                          reader.line_of("blocks"))
    blocks: dict[str, BlockDef] = {}
    for name, body in table.items():
        head = _header_line(reader.lines, rf"\[\s*blocks\s*\.\s*{re.escape(name)}\s*\]")
        if not BLOCK_NAME.match(name):
            raise reader.fail(f"block name {name!r} must be a plain identifier (letters, digits, _)", head)
        if name in REGISTRY:
            raise reader.fail(f"block name {name!r} is a layer type: choose another name", head)
        if not isinstance(body, dict):
            raise reader.fail(f"[blocks.{name}] must be a table, got {body!r}", head)
        for key in body:
            if key not in BLOCK_KEYS:
                raise reader.fail(f"unknown key {key!r} in [blocks.{name}]{suggest(key, list(BLOCK_KEYS))}",
                                  reader.line_of(key, head) or head)
        defaults = body.get("args", {})
        if not isinstance(defaults, dict):
            raise reader.fail(f"[blocks.{name}] args must be a table of parameter defaults, "
                              f"e.g. args = {{ stride = 1 }}, got {defaults!r}", reader.line_of("args", head))
        required = body.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise reader.fail(f"[blocks.{name}] required must be a list of parameter names, got {required!r}",
                              reader.line_of("required", head))
        params = [*required, *defaults]
        for param in params:
            if not BLOCK_NAME.match(param) or param in ("and", "or", "not", "true", "false"):
                raise reader.fail(f"[blocks.{name}] parameter {param!r} must be a plain identifier",
                                  reader.line_of("args", head) or head)
        clash = [p for p in params if p in USE_KEYS]
        if clash:
            raise reader.fail(f"[blocks.{name}] parameter {clash[0]!r} is a key of a block use ({', '.join(USE_KEYS)}): "
                              "choose another name", reader.line_of("args", head) or head)
        both = sorted(set(required) & set(defaults)) or sorted({p for p in params if params.count(p) > 1})
        if both:
            raise reader.fail(f"[blocks.{name}] parameter {both[0]!r} is both required and given a default",
                              reader.line_of("required", head))
        layers = body.get("layers")
        if not isinstance(layers, list) or not layers or not all(isinstance(x, dict) for x in layers):
            raise reader.fail(f"[blocks.{name}] needs at least one [[blocks.{name}.layers]] table", head)
        lines = (_header_lines(reader.lines, rf"\[\[\s*blocks\s*\.\s*{re.escape(name)}\s*\.\s*layers\s*\]\]")
                 or _inline_lines(reader.lines, head))
        output = body.get("output")
        if output is not None and not isinstance(output, str):
            raise reader.fail(f"[blocks.{name}] output must be the name of one of its layers, got {output!r}",
                              reader.line_of("output", head))
        blocks[name] = BlockDef(
            name=name, defaults=MappingProxyType(dict(defaults)), params=tuple(params),
            layers=tuple((raw, lines[i] if i < len(lines) else head) for i, raw in enumerate(layers)),
            output=output, line=head,
        )
    return blocks


def _inline_lines(lines: list[str], head: int | None) -> list[int]:
    """The lines of the entries of ``layers = [ {...}, {...} ]`` in the table starting at ``head``."""
    if head is None:
        return []
    found: list[int] = []
    inside = False
    for i in range(head, len(lines)):
        text = lines[i]
        if not inside and re.match(r"\s*\[", text):
            break
        if not inside and re.match(r"\s*layers\s*=\s*\[", text):
            inside = True
            text = text.split("[", 1)[1]
        if inside and re.match(r"\s*\{", text):
            # every entry that starts on this line: an inline table after the array's [ or a comma
            found.extend([i + 1] * max(1, len(re.findall(r"(?:^|[\[,])\s*\{", text))))
        elif inside and re.match(r"\s*\]", text):
            break
    return found


def _header_line(lines: list[str], pattern: str) -> int | None:
    found = _header_lines(lines, pattern)
    return found[0] if found else None


def _header_lines(lines: list[str], pattern: str) -> list[int]:
    regex = re.compile(rf"\s*{pattern}")
    return [i + 1 for i, text in enumerate(lines) if regex.match(text)]


class Expander:
    """Stamps out block uses into nodes through the reader, and records the groups."""

    def __init__(self, reader: ReaderLike, blocks: dict[str, BlockDef]) -> None:
        self.reader = reader
        self.blocks = blocks
        self.groups: list[Group] = []
        self.used: set[str] = set()
        self.use_names: dict[str, bool] = {}  # full name of each use -> it continues a folder (first_index)
        self.copies = 0  # block bodies stamped out, empty ones included

    def use(self, raw: dict[str, Any], line: int | None, prefix: str, scope: Scope | None,
            input_node: str, stack: tuple[str, ...], local_index: int) -> tuple[str, str]:
        """Expand one use of a block; returns (its full name, its output node)."""
        reader = self.reader
        block_name = raw["block"]
        if not isinstance(block_name, str) or block_name not in self.blocks:
            known = sorted(self.blocks)
            what = f"known blocks: {', '.join(known)}" if known else "the spec defines no [blocks]"
            raise reader.fail(f"block {block_name!r} is not defined{suggest(str(block_name), known)}; {what}",
                              reader.line_of("block", line) or line)
        if block_name in stack:
            cycle = " -> ".join([*stack[stack.index(block_name):], block_name])
            raise reader.fail(f"block {block_name!r} uses itself ({cycle})", reader.line_of("block", line) or line)
        if len(stack) >= MAX_NESTING:
            raise reader.fail(f"blocks nested deeper than {MAX_NESTING} levels ({' -> '.join(stack)})", line)
        if "type" in raw:
            raise reader.fail(f"a layer takes either type or block, not both (type = {raw['type']!r}, "
                              f"block = {block_name!r})", reader.line_of("type", line) or line)
        block = self.blocks[block_name]
        self.used.add(block_name)
        reader.current_line = line
        name = raw.get("name", f"{block_name}_{local_index}")
        if not isinstance(name, str) or not all(name.split(".")) or name == INPUT:
            raise reader.fail(f"block use name must be a non-empty string (dots only between parts), "
                              f"got {name!r}", reader.line_of("name", line) or line)
        full = prefix + name
        label = f"block use {full!r} ({block_name})"
        continuing = "first_index" in raw
        if full in self.use_names and not (continuing and self.use_names[full]):
            raise reader.fail(f"{label}: a block use named {full!r} is written above; name uses apart (several "
                              "uses continue one folder only with repeat and first_index)",
                              reader.line_of("name", line) or line)
        self.use_names[full] = continuing or self.use_names.get(full, False)
        params = scope.params if scope is not None else {}
        args = self._use_args(raw, block, label, line, params)
        repeat = self._repeat(raw, label, line, params)
        first = self._first(raw, block, label, line, params, repeat)
        first_index = raw.get("first_index", 0)
        if "first_index" in raw and (repeat is None or isinstance(first_index, bool)
                                     or not isinstance(first_index, int) or first_index < 0):
            raise reader.fail(f"{label}: first_index needs repeat and must be an integer >= 0, "
                              f"got {first_index!r}", reader.line_of("first_index", line))
        expected = {**raw, **({"expect_params": self.value(raw["expect_params"], params, f"{label}: expect_params",
                                                           reader.line_of("expect_params", line))}
                              if "expect_params" in raw else {})}
        expect_shape, expect_params = reader.expectations(expected, label, line)
        frozen = reader.frozen
        if "trainable" in raw:
            if not isinstance(raw["trainable"], bool):
                raise reader.fail(f"{label}: trainable must be true or false, got {raw['trainable']!r}",
                                  reader.line_of("trainable", line))
            reader.frozen = frozen or not raw["trainable"]
        try:
            position = len(self.groups)
            if repeat is None:
                resolved = self._bind(block, args, label, line)
                output = self._body(block, resolved, full, line, input_node, (*stack, block_name))
                self.groups.append(Group(full, block_name, MappingProxyType(resolved), output, None, line,
                                         expect_shape, expect_params))
                reader.aliases[full] = output
                return full, output
            output = input_node
            for copy in range(repeat):
                resolved = self._bind(block, {**args, **(first if copy == 0 else {})}, label, line)
                copy_name = f"{full}.{first_index + copy}"
                output = self._body(block, resolved, copy_name, line, output, (*stack, block_name))
                self.groups.append(Group(copy_name, block_name, MappingProxyType(resolved), output, None, line))
                reader.aliases[copy_name] = output
            self.groups.insert(position, Group(full, block_name, MappingProxyType(args), output, repeat, line,
                                               expect_shape, expect_params, MappingProxyType(first)))
            reader.aliases[full] = output
            return full, output
        finally:
            reader.frozen = frozen

    def _use_args(self, raw: dict[str, Any], block: BlockDef, label: str, line: int | None,
                  params: Mapping[str, Any]) -> dict[str, Any]:
        args: dict[str, Any] = {}
        for key, value in raw.items():
            if key in USE_KEYS:
                continue
            if key not in block.params:
                known = list(block.params) + list(USE_KEYS)
                takes = ", ".join(block.params) or "no arguments"
                raise self.reader.fail(f"{label}: unknown argument {key!r}{suggest(key, known)}; "
                                       f"block {block.name!r} takes: {takes}", self.reader.line_of(key, line))
            args[key] = self.value(value, params, f"{label}: {key}", self.reader.line_of(key, line))
        return args

    def _repeat(self, raw: dict[str, Any], label: str, line: int | None,
                params: Mapping[str, Any]) -> int | None:
        if "repeat" not in raw:
            return None
        where = self.reader.line_of("repeat", line)
        repeat = self.value(raw["repeat"], params, f"{label}: repeat", where)
        if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= MAX_NODES:
            raise self.reader.fail(f"{label}: repeat must be an integer from 1 to {MAX_NODES:,}, "
                                   f"got {repeat!r}", where)
        return repeat

    def _first(self, raw: dict[str, Any], block: BlockDef, label: str, line: int | None,
               params: Mapping[str, Any], repeat: int | None) -> dict[str, Any]:
        if "first" not in raw:
            return {}
        where = self.reader.line_of("first", line)
        table = raw["first"]
        if repeat is None:
            raise self.reader.fail(f"{label}: first sets the first copy's arguments and needs repeat; "
                                   "without repeat, write the arguments themselves", where)
        if not isinstance(table, dict):
            raise self.reader.fail(f"{label}: first must be a table of arguments, e.g. first = "
                                   f"{{ stride = 2 }}, got {table!r}", where)
        out: dict[str, Any] = {}
        for key, value in table.items():
            if key not in block.params:
                raise self.reader.fail(f"{label}: first names {key!r}, not an argument of block "
                                       f"{block.name!r}{suggest(key, list(block.params))}", where)
            out[key] = self.value(value, params, f"{label}: first.{key}", where)
        return out

    def _bind(self, block: BlockDef, given: dict[str, Any], label: str, line: int | None) -> dict[str, Any]:
        """Every parameter's value: the given ones, then the defaults (which may name other parameters)."""
        missing = [p for p in block.params if p not in given and p not in block.defaults]
        if missing:
            raise self.reader.fail(f"{label}: missing argument {missing[0]!r} (block {block.name!r} "
                                   f"requires {', '.join(p for p in block.params if p not in block.defaults)})",
                                   line)
        bound = dict(given)
        pending = [p for p in block.params if p not in bound]
        for param in pending:
            default = block.defaults[param]
            tokens = tokenize(default) if isinstance(default, str) else None
            unknown = [n for n in names_in(tokens or []) if n not in block.params]
            if unknown and (len(tokens or []) > 1 or self._names(default, block.params)):
                raise self.reader.fail(f"[blocks.{block.name}] the default of {param} names {unknown[0]!r}, not a "
                                       f"parameter{suggest(unknown[0], list(block.params))} (parameters: "
                                       f"{', '.join(block.params)})", self.reader.line_of("args", block.line))
        while pending:
            progress = False
            for param in list(pending):
                default = block.defaults[param]
                needs = self._names(default, block.params)
                if needs - bound.keys():
                    continue
                bound[param] = self.value(default, bound, f"[blocks.{block.name}] default of {param}",
                                          self.reader.line_of("args", block.line))
                pending.remove(param)
                progress = True
            if not progress:
                raise self.reader.fail(f"[blocks.{block.name}] the defaults of {', '.join(pending)} "
                                       "refer to each other", self.reader.line_of("args", block.line))
        return {p: bound[p] for p in block.params}

    def _names(self, value: Any, params: tuple[str, ...]) -> set[str]:
        if isinstance(value, list):
            return set().union(*(self._names(v, params) for v in value)) if value else set()
        if not isinstance(value, str):
            return set()
        tokens = tokenize(value)
        return {n for n in names_in(tokens) if n in params} if tokens else set()

    def value(self, value: Any, params: Mapping[str, Any], what: str, line: int | None,
              accepts: Callable[[Any], bool] | None = None) -> Any:
        """A written value with the parameters substituted (lists item by item).

        A string is an expression when it names a parameter or holds a number or an operator
        other than ``-``; other strings (``"same"``, ``"nearest-exact"``) stay as written, unless
        ``accepts`` refuses them and they look like a misspelt parameter.
        """
        if isinstance(value, list):
            return [self.value(v, params, what, line, None) for v in value]
        if not isinstance(value, str):
            return value
        try:
            tokens = tokenize(value)
        except IntExprError as exc:
            raise self.reader.fail(f"{what}: {exc}", line) from None
        if tokens is None:
            return value
        names = names_in(tokens)
        if len(tokens) == 1 and tokens[0] in params:
            return params[tokens[0]]  # a parameter as it is: a number, a string, a list
        operators = any(t[0].isdigit() or t in _OPERATORS or t in ("//", "==", "!=", "<=", ">=")
                        or t in ("and", "or", "not") for t in tokens)
        if not operators and not any(n in params for n in names):
            if accepts is None or accepts(value) or len(tokens) > 1:
                return value
            hint = suggest(value, list(params))
            if hint:
                raise self.reader.fail(f"{what} = {value!r}: not a parameter of this block{hint}"
                                       f"", line)
            return value
        try:
            return evaluate(value, params)
        except UnknownName as exc:
            known = ", ".join(params) or "none"
            raise self.reader.fail(f"{what}: unknown parameter {exc.name!r} in {value!r}"
                                   f"{suggest(exc.name, list(params))} (parameters: {known})"
                                   f"", line) from None
        except IntExprError as exc:
            raise self.reader.fail(f"{what}: {exc}", line) from None

    def _body(self, block: BlockDef, params: dict[str, Any], full: str, use_line: int | None,
              input_node: str, stack: tuple[str, ...]) -> str:
        """Add one copy's nodes; returns the node whose output is the copy's output."""
        reader = self.reader
        self.copies += 1
        if self.copies + reader.node_count() > MAX_NODES:
            raise reader.fail(f"the spec expands to more than {MAX_NODES:,} nodes and block copies", use_line)
        scope = Scope(block.name, full, use_line, params, {INPUT: input_node})
        outer = reader.context
        reader.context = scope.context
        try:
            previous = input_node
            for position, (raw, line) in enumerate(block.layers, start=1):
                local = raw.get("name", None)
                if "when" in raw and not self._when(raw["when"], params, line):
                    previous = self._left_out(raw, local, line, scope, previous)
                    continue
                if "block" in raw:
                    name = raw.get("name", f"{raw['block']}_{position}")
                else:
                    name = local if local is not None else f"{str(raw.get('type', 'layer')).lower()}_{position}"
                if isinstance(name, str) and name in scope.names and name not in scope.left_out:
                    raise reader.fail(f"[blocks.{block.name}] layer name {name!r} is used twice in the block "
                                      "(two layers may share a name only when a when keeps at most one)",
                                      reader.line_of("name", line) or line)
                reader.current_line = line
                if "block" in raw:
                    source = self._source(raw, line, scope, previous)
                    used = {k: v for k, v in raw.items() if k not in ("when", "from")}
                    _, previous = self.use(used, line, f"{full}.", scope, source, stack, position)
                else:
                    layer = self._substituted(raw, params, line, name, full)
                    previous = reader.add_layer(layer, line, previous, scope)
                scope.left_out.discard(name)
                scope.names[name] = previous
                if reader.node_count() > MAX_NODES:
                    raise reader.fail(f"the spec expands to more than {MAX_NODES:,} nodes", use_line)
            if block.output is None:
                return previous
            if block.output in scope.left_out:
                raise reader.fail(f"[blocks.{block.name}] output {block.output!r} is left out by its when in this "
                                  "copy: the block would give no output of its own", reader.line_of("output", block.line))
            if block.output not in scope.names or scope.names[block.output] is None:
                known = [n for n in scope.names if n != INPUT]
                raise reader.fail(f"[blocks.{block.name}] output {block.output!r} is not a layer of the "
                                  f"block{suggest(block.output, known)}", reader.line_of("output", block.line))
            return scope.names[block.output]  # type: ignore[return-value]
        finally:
            reader.context = outer

    def _when(self, text: Any, params: Mapping[str, Any], line: int | None) -> bool:
        where = self.reader.line_of("when", line)
        if not isinstance(text, str):
            raise self.reader.fail(f"when must be a condition in quotes, e.g. when = \"stride != 1\", got "
                                   f"{text!r}", where)
        try:
            value = evaluate(text, params)
        except UnknownName as exc:
            raise self.reader.fail(f"when {text!r}: unknown parameter {exc.name!r}"
                                   f"{suggest(exc.name, list(params))} (parameters: "
                                   f"{', '.join(params) or 'none'})", where) from None
        except IntExprError as exc:
            raise self.reader.fail(f"when: {exc}", where) from None
        if not isinstance(value, bool):
            raise self.reader.fail(f"when {text!r} is {value!r}, not true or false: write a comparison, "
                                   f"e.g. \"stride != 1\"", where)
        return value

    def _source(self, raw: dict[str, Any], line: int | None, scope: Scope, previous: str) -> str:
        if "from" not in raw:
            return previous
        value = raw["from"]
        where = self.reader.line_of("from", line)
        if not isinstance(value, str):
            raise self.reader.fail(f"a block use takes one input: from must be one layer name, got {value!r}"
                                   f"", where)
        return self.reader.resolve(value, f"block use {raw.get('name', raw['block'])!r}", where, scope)

    def _left_out(self, raw: dict[str, Any], local: Any, line: int | None, scope: Scope,
                  previous: str) -> str:
        """A layer whose ``when`` is false: its name stands for its input (None for a merge)."""
        value = raw.get("from")
        if isinstance(value, list) and len(value) > 1:
            target: str | None = None
        else:
            source = value[0] if isinstance(value, list) and value else value
            target = previous if source is None else self.reader.resolve(
                source, f"layer {local!r}", self.reader.line_of("from", line), scope)
        if isinstance(local, str) and (local not in scope.names or local in scope.left_out):
            scope.names[local] = target  # a kept layer of the same name wins
            scope.left_out.add(local)
        return target if target is not None else previous

    def _substituted(self, raw: dict[str, Any], params: Mapping[str, Any], line: int | None,
                     name: str, full: str) -> dict[str, Any]:
        """The layer's table with parameters substituted and its dotted name."""
        type_name = raw.get("type")
        kind = REGISTRY.get(type_name) if isinstance(type_name, str) else None
        out: dict[str, Any] = {}
        for key, value in raw.items():
            if key in ("when", "name", "from", "same_as", "type", "expect_shape"):
                if key not in ("when", "name"):
                    out[key] = value
                continue
            accepts = None
            if kind is not None and key in kind.args:
                accepts = _accepts(kind.args[key].check)
            out[key] = self.value(value, params, key, self.reader.line_of(key, line), accepts)
        out["name"] = f"{full}.{name}"
        return out


def _accepts(check: Callable[[Any], Any]) -> Callable[[Any], bool]:
    def accepts(value: Any) -> bool:
        try:
            check(value)
        except ArgError:
            return False
        return True
    return accepts
