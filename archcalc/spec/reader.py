"""Read a TOML spec once, validate it, and turn it into frozen dataclasses.

Errors name the file and line, the layer (index and name) and the bad value.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from archcalc.errors import SpecError
from archcalc.layers import REGISTRY
from archcalc.layers.registry import REQUIRED, ArgError, suggest
from archcalc.spec.blocks import Expander, Scope, read_blocks
from archcalc.spec.model import INPUT, Expectations, LayerSpec, ModelSpec
from archcalc.symbolic import IDENTIFIER, RESERVED_NAMES, ExprSyntaxError, Size, parse_size_expr

TOP_LEVEL = ("model", "input", "symbols", "blocks", "layers", "output", "expect", "train", "lint")
LAYER_KEYS = ("type", "name", "from", "same_as", "expect_shape", "expect_params", "trainable")
EXPECT_KEYS = ("total_params", "trainable_params", "output_shape")
BUNDLED = ("speech_cnn", "speech_ffnn", "speech_crnn", "speech_kwt")
INPUT_DTYPES = {"float32": "float32", "float": "float32", "long": "long", "int64": "long"}
MAX_SPEC_BYTES = 10_000_000  # a spec is read no further than this
MAX_LAYERS = 100_000  # [[layers]] tables; a spec with blocks may expand to as many nodes
# Attributes of nn.Module, nn.Sequential and torch.fx.GraphModule (torch 2.13): a layer of that name
# would replace a method of the built model (`forward`, `to`, `training`), so such names are refused
# when the spec is read. tests/test_spec_errors.py holds the list against torch's own.
MODULE_ATTRIBUTES = frozenset(["T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children", "compile", "cpu", "cuda", "double", "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer", "get_extra_state", "get_parameter", "get_submodule", "half", "ipu", "load_state_dict", "modules", "mtia", "named_buffers", "named_children", "named_modules", "named_parameters", "parameters", "register_backward_hook", "register_buffer", "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook", "register_full_backward_pre_hook", "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook", "register_module", "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_", "set_extra_state", "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train", "type", "xpu", "zero_grad", "training", "append", "extend", "insert", "pop", "add_submodule", "code", "delete_all_unused_submodules", "delete_submodule", "graph", "print_readable", "recompile", "to_folder", "meta", "shape_env"])
_LAYER_HEADER = re.compile(r"^\s*\[\[\s*layers\s*\]\]", re.MULTILINE)


def bundled_spec(name: str) -> Path:
    """The path of a spec shipped with the package (``speech_cnn``, ``speech_ffnn``)."""
    path = Path(str(resources.files("archcalc") / "specs" / f"{name}.toml"))
    if not path.is_file():
        raise SpecError(f"no bundled spec named {name!r}{suggest(name, list(BUNDLED))}")
    return path


def load_spec(path: str | Path) -> ModelSpec:
    """Read and validate a spec file (at most ``MAX_SPEC_BYTES``; read no further than that)."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_SPEC_BYTES + 1)
    except FileNotFoundError:
        raise SpecError("no such file", source=str(path)) from None
    except IsADirectoryError:
        raise SpecError("is a directory, not a spec file", source=str(path)) from None
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror or exc}", source=str(path)) from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(f"larger than {MAX_SPEC_BYTES // 1_000_000} MB: a spec is a text file of layers "
                        f"(at most {MAX_LAYERS:,} of them)", source=str(path))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"not UTF-8 text (byte {exc.start}): a spec is a TOML text file", source=str(path)) from None
    return parse_spec(text, display_path(path), default_name=path.stem)


def display_path(path: Path) -> str:
    """How a spec is named in messages: relative to the working directory when inside it."""
    bundled = Path(str(resources.files("archcalc") / "specs")).resolve()
    resolved = path.resolve()
    if resolved.parent == bundled and not Path.cwd().resolve() in resolved.parents:
        return f"<bundled>/{path.name}"
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def parse_spec(text: str, source: str = "<spec>", default_name: str = "model") -> ModelSpec:
    """Validate the text of a spec; ``source`` names it in errors."""
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(f"larger than {MAX_SPEC_BYTES // 1_000_000} MB", source=source)
    headers = len(_LAYER_HEADER.findall(text))
    if headers > MAX_LAYERS:
        raise SpecError(f"{headers:,} [[layers]] tables: at most {MAX_LAYERS:,} layers (write repeated "
                        "parts as [blocks])", source=source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        where = f"{source}:{line.group(1)}" if line else source
        raise SpecError(f"invalid TOML: {exc}", source=where) from None
    except RecursionError:
        raise SpecError("arrays or tables nested too deeply for a spec", source=source) from None
    try:
        return _Reader(text, source).read(data, default_name)
    except RecursionError:
        raise SpecError("values nested too deeply for a spec", source=source) from None


class _Reader:
    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.lines = text.splitlines()
        self.layer_lines = [i + 1 for i, line in enumerate(self.lines)
                            if re.match(r"\s*\[\[\s*layers\s*\]\]", line)]
        self.context = ""  # appended to messages about the nodes of a block use
        self.frozen = False  # inside a use written with trainable = false
        self.nodes: dict[str, LayerSpec] = {}
        self.prefixes: set[str] = set()  # every proper dotted prefix of a node name
        self.aliases: dict[str, str] = {}  # block use name -> its output node
        self.symbols: set[str] = set()
        self.input_dtype = "float32"
        self.current_line: int | None = None  # the table being read, for messages

    # -- locating values in the text, for messages
    def line_of(self, key: str, after: int | None = None) -> int | None:
        start = after or 0
        if after is not None and 0 < after <= len(self.lines) and re.match(r"\s*\{", self.lines[after - 1]):
            # an inline table on one line: { name = "conv1", type = "Conv2d", ... }
            inline = re.search(rf"[{{,]\s*{re.escape(key)}\s*=", self.lines[after - 1])
            return after if inline else None
        for i in range(start, len(self.lines)):
            if i > start and after is not None and re.match(r"\s*\[", self.lines[i]):
                return None
            if re.match(rf"\s*{re.escape(key)}\s*=", self.lines[i]):
                return i + 1
        return None

    def _line_if(self, raw: Mapping[str, Any], key: str, after: int | None) -> int | None:
        """The line of ``key`` when the table has it (the search costs a scan of the text)."""
        return self.line_of(key, after) if key in raw else None

    def fail(self, message: str, line: int | None = None) -> SpecError:
        line = line or self.current_line  # a value found on no line of its own: the line of its table
        return SpecError(message + self.context, source=f"{self.source}:{line}" if line else self.source)

    def node_count(self) -> int:
        return len(self.nodes)

    def expectations(self, raw: dict[str, Any], label: str,
                     line: int | None) -> tuple[tuple[Size, ...] | None, int | None]:
        """A block use's ``expect_shape`` (its output) and ``expect_params`` (everything in it)."""
        return (self._shape_value(raw.get("expect_shape"), self.symbols, f"{label}: expect_shape",
                                  self._line_if(raw, "expect_shape", line)),
                self._count(raw.get("expect_params"), f"{label}: expect_params", self._line_if(raw, "expect_params", line)))

    def _check_keys(self, table: Mapping[str, Any], allowed: tuple[str, ...], what: str,
                    line: int | None = None) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(f"unknown key {key!r} in {what}{suggest(key, list(allowed))}",
                                self.line_of(key, line) or line)

    def read(self, data: dict[str, Any], default_name: str) -> ModelSpec:
        for key in data:
            if key not in TOP_LEVEL:
                raise self.fail(f"unknown table [{key}]{suggest(key, list(TOP_LEVEL))}")
        model = self._table(data, "model")
        self._check_keys(model, ("name", "description"), "[model]")
        name = model.get("name", default_name)
        if not isinstance(name, str) or not name:
            raise self.fail(f"[model] name must be a non-empty string, got {name!r}",
                            self.line_of("name"))
        description = model.get("description", "")
        if not isinstance(description, str):
            raise self.fail(f"[model] description must be a string, got {description!r}")
        input_shape = self._input(data)
        symbols = self._symbols(data, input_shape)
        layers_raw = data.get("layers")
        if not isinstance(layers_raw, list) or not layers_raw:
            raise self.fail("a spec needs at least one [[layers]] entry")
        self.symbols = set(symbols) | {s for s in input_shape if isinstance(s, str)}
        expander = Expander(self, read_blocks(data.get("blocks"), self))
        previous = INPUT
        for i, raw in enumerate(layers_raw, start=1):
            line = self.layer_lines[i - 1] if i <= len(self.layer_lines) else None
            if isinstance(raw, dict) and "when" in raw:
                raise self.fail(f"layer {i}: when chooses layers by block parameters: it belongs in a "
                                "[[blocks.NAME.layers]] table", self.line_of("when", line))
            self.current_line = line
            if isinstance(raw, dict) and "block" in raw:
                source = previous
                if "from" in raw:
                    source = self.resolve(raw["from"], f"block use {raw.get('name', raw['block'])!r}",
                                          self.line_of("from", line), None)
                full, previous = expander.use(raw, line, "", None, source, (), i)
                self.aliases[full] = previous
            else:
                previous = self.add_layer(raw, line, previous, None)
        self.current_line = None
        if not self.nodes:
            raise self.fail("the spec has no layers: every layer of its blocks is left out by a when condition")
        layers = self.nodes
        outputs = self._outputs(data, layers)
        expect = self._expect(data, input_shape)
        return ModelSpec(
            source=self.source, name=name, description=description, input_shape=input_shape,
            symbols=MappingProxyType(symbols), layers=tuple(layers.values()), outputs=outputs, expect=expect,
            groups=tuple(expander.groups), blocks=tuple(expander.blocks), input_dtype=self.input_dtype,
            train=MappingProxyType(self._settings(data, "train")),
            lint=MappingProxyType(self._settings(data, "lint")),
        )

    def _settings(self, data: dict[str, Any], name: str) -> dict[str, Any]:
        """``[train]`` or ``[lint]``, checked now: a bad value is the spec's error, not a bench's."""
        from archcalc.spec.settings import check_lint, check_train

        table = self._table(data, name)
        head = next((i + 1 for i, s in enumerate(self.lines) if re.match(rf"\s*\[\s*{name}\s*\]", s)), None)

        def fail(message: str, key: str) -> SpecError:
            return self.fail(message, self.line_of(key, head) or head)

        if name == "train":
            check_train(table, fail)
        else:
            from archcalc.analysis.lint import RULES  # the rule ids; imported here, when a spec has [lint]

            if table:
                check_lint(table, list(RULES), fail)
        return table

    def _table(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(f"[{key}] must be a table, got {value!r}", self.line_of(key))
        return value

    def _input(self, data: dict[str, Any]) -> tuple[int | str, ...]:
        table = self._table(data, "input")
        self._check_keys(table, ("shape", "dtype"), "[input]")
        dtype = table.get("dtype", "float32")
        if dtype not in INPUT_DTYPES:
            raise self.fail(f"[input] dtype must be one of {', '.join(map(repr, INPUT_DTYPES))}, got {dtype!r}",
                            self.line_of("dtype"))
        self.input_dtype = INPUT_DTYPES[dtype]
        shape = table.get("shape")
        line = self.line_of("shape")
        if not isinstance(shape, list) or not shape:
            raise self.fail(f"[input] shape must be a non-empty list of sizes (batch axis left out), "
                            f"got {shape!r}", line)
        for entry in shape:
            if isinstance(entry, str):
                if not IDENTIFIER.match(entry) or entry in RESERVED_NAMES:
                    raise self.fail(f"[input] shape entry {entry!r} is not a valid symbol name", line)
            elif isinstance(entry, bool) or not isinstance(entry, int) or entry < 1:
                raise self.fail(f"[input] shape entries must be positive integers or symbol names, "
                                f"got {entry!r}", line)
        return tuple(shape)

    def _symbols(self, data: dict[str, Any], input_shape: tuple[int | str, ...]) -> dict[str, int]:
        table = self._table(data, "symbols")
        known = [s for s in input_shape if isinstance(s, str)]
        for key, value in table.items():
            line = self.line_of(key)
            if key not in known:
                raise self.fail(f"[symbols] {key!r} is not a symbol of the input shape"
                                f"{suggest(key, known)}", line)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise self.fail(f"[symbols] {key} must be a positive integer, got {value!r}", line)
        return dict(table)

    def add_layer(self, raw: Any, line: int | None, default_input: str, scope: Scope | None) -> str:
        """Validate one node and add it to the graph; returns its name."""
        layer = self._layer(len(self.nodes) + 1, raw, line, default_input, scope)
        if layer.name in self.nodes:
            raise self.fail(f"{layer.label}: duplicate layer name {layer.name!r}", layer.line)
        self._check_tree_name(layer)
        self.nodes[layer.name] = layer
        parts = layer.name.split(".")
        self.prefixes.update(".".join(parts[:i]) for i in range(1, len(parts)))
        return layer.name

    def resolve(self, source: Any, label: str, where: int | None, scope: Scope | None) -> str:
        """The node a name in ``from`` stands for: the input, a layer, or a block use's output."""
        if not isinstance(source, str):
            raise self.fail(f"{label}: from must be a layer name, got {source!r}", where)
        if scope is not None:
            if isinstance(source, str) and source in scope.names:
                target = scope.names[source]
                if target is None:
                    raise self.fail(f"{label}: from {source!r} names a merge left out by its when "
                                    "condition; it has no single input to pass on", where)
                return target
            known = list(scope.names)
            raise self.fail(f"{label}: from {source!r} is not the input or a layer above it in block "
                            f"{scope.block!r}{suggest(str(source), known)}", where)
        if source == INPUT or source in self.nodes:
            return str(source)
        if source in self.aliases:
            return self.aliases[source]
        below = source in self._all_names()
        why = ("is written below this one: write every layer after its inputs" if below
               else f"is not a layer above this one{suggest(str(source), [INPUT, *self.nodes, *self.aliases])}")
        raise self.fail(f"{label}: from {source!r} {why}", where)

    def _layer(self, index: int, raw: Any, line: int | None, default_input: str,
               scope: Scope | None) -> LayerSpec:
        symbols, above = self.symbols, self.nodes
        if not isinstance(raw, dict):
            raise self.fail(f"layer {index} must be a table, got {raw!r}", line)
        shared = self._shared(index, raw, above, line, scope)
        type_name = raw.get("type", shared.type if shared else None)
        if not isinstance(type_name, str):
            raise self.fail(f"layer {index}: missing 'type' (a torch.nn class name such as 'Conv2d')",
                            line)
        kind = REGISTRY.get(type_name)
        if kind is None:
            raise self.fail(f"layer {index}: unknown layer type {type_name!r}"
                            f"{suggest(type_name, sorted(REGISTRY))}", self.line_of("type", line))
        name = raw.get("name", f"{type_name.lower()}_{index}")
        if not isinstance(name, str) or not all(name.split(".")) or name == INPUT:
            raise self.fail(f"layer {index}: name must be a non-empty string (dots only between parts, "
                            f"as in 'layer1.0.conv1'; {INPUT!r} names the model input), got {name!r}",
                            self.line_of("name", line))
        label = f"layer {index} {name!r} ({type_name})"
        reserved = next((part for part in name.split(".") if part in MODULE_ATTRIBUTES or part.startswith("_")),
                        None)
        if reserved is not None:
            why = ("a leading '_' marks torch's own attributes" if reserved.startswith("_")
                   else f"{reserved!r} is an attribute of torch's nn.Module")
            raise self.fail(f"{label}: the name part {reserved!r} cannot name a module: {why}; rename the "
                            f"layer (e.g. {reserved.strip('_') + '_1'!r})", self.line_of("name", line) or line)
        inputs = self._inputs(raw, label, kind.arity, line, default_input, scope)
        if shared is not None:
            return self._shared_layer(index, name, raw, shared, inputs, symbols, line)
        args: dict[str, Any] = {}
        for key, value in raw.items():
            if key in LAYER_KEYS:
                continue
            if key not in kind.args:
                known = sorted(kind.args) + list(LAYER_KEYS)
                valid = ", ".join(sorted(kind.args)) or "none"
                raise self.fail(f"{label}: unknown argument {key!r}{suggest(key, known)}; "
                                f"{type_name} takes: {valid}", self.line_of(key, line))
            try:
                args[key] = kind.args[key].check(value)
            except ArgError as exc:
                raise self.fail(f"{label}: {key} {exc}", self.line_of(key, line)) from None
        for key, spec in kind.args.items():
            if key not in args:
                if spec.default is REQUIRED:
                    raise self.fail(f"{label}: missing required argument {key!r}", line)
                args[key] = spec.default
        try:
            kind.check_args(args)
        except ArgError as exc:
            raise self.fail(f"{label}: {exc}", line) from None
        return LayerSpec(
            index=index, name=name, type=type_name, args=MappingProxyType(args),
            written=frozenset(k for k in raw if k not in LAYER_KEYS), inputs=inputs,
            expect_shape=self._shape_value(raw.get("expect_shape"), symbols, f"{label}: expect_shape",
                                           self._line_if(raw, "expect_shape", line)),
            expect_params=self._count(raw.get("expect_params"), f"{label}: expect_params",
                                      self._line_if(raw, "expect_params", line)),
            trainable=self._bool(raw.get("trainable", True), f"{label}: trainable", line) and not self.frozen,
            line=line,
        )

    def _shared(self, index: int, raw: dict[str, Any], above: dict[str, LayerSpec],
                line: int | None, scope: Scope | None) -> LayerSpec | None:
        """The node whose module a ``same_as`` layer applies (followed to the original)."""
        if "same_as" not in raw:
            return None
        target = raw["same_as"]
        where = self.line_of("same_as", line)
        if scope is not None and isinstance(target, str) and scope.names.get(target) is not None:
            target = scope.names[target]
        if not isinstance(target, str) or target not in above:
            use = " (a block use: share its layers one by one)" if target in self.aliases else ""
            raise self.fail(f"layer {index}: same_as {target!r} is not a layer above this one{use}"
                            f"{suggest(str(target), list(above))}", where)
        original = above[target]
        if original.same_as is not None:
            original = above[original.same_as]
        if "type" in raw and raw["type"] != original.type:
            raise self.fail(f"layer {index}: same_as {target!r} applies a {original.type}, but type is "
                            f"{raw['type']!r} (leave type out, or write {original.type!r})",
                            self.line_of("type", line))
        return original

    def _shared_layer(self, index: int, name: str, raw: dict[str, Any], original: LayerSpec,
                      inputs: tuple[str, ...], symbols: set[str], line: int | None) -> LayerSpec:
        label = f"layer {index} {name!r} ({original.type})"
        for key in raw:
            if key not in LAYER_KEYS or key == "trainable":
                raise self.fail(f"{label}: a shared layer takes its arguments from {original.name!r}; "
                                f"remove {key!r}", self.line_of(key, line))
        return LayerSpec(
            index=index, name=name, type=original.type, args=original.args, written=original.written,
            inputs=inputs, same_as=original.name, trainable=original.trainable and not self.frozen, line=line,
            expect_shape=self._shape_value(raw.get("expect_shape"), symbols, f"{label}: expect_shape",
                                           self._line_if(raw, "expect_shape", line)),
            expect_params=self._count(raw.get("expect_params"), f"{label}: expect_params",
                                      self._line_if(raw, "expect_params", line)),
        )

    def _inputs(self, raw: dict[str, Any], label: str, arity: int | None, line: int | None,
                default_input: str, scope: Scope | None) -> tuple[str, ...]:
        """The nodes ``from`` names, each the model input, a layer above or a block use; default:
        the layer above (or the use above's output)."""
        where = self._line_if(raw, "from", line)
        if "from" not in raw:
            inputs: tuple[str, ...] = (default_input,)
        else:
            value = raw["from"]
            names = [value] if isinstance(value, str) else value
            if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
                raise self.fail(f"{label}: from must be a layer name or a list of them, got {value!r}", where)
            own = raw.get("name")
            for source in names:
                if source == own or (scope is not None and own == f"{scope.use}.{source}"):
                    raise self.fail(f"{label}: from {source!r} is this layer itself: a layer takes the "
                                    "output of the input or of layers above it", where)
            inputs = tuple(self.resolve(source, label, where, scope) for source in names)
        if arity == 1 and len(inputs) != 1:
            raise self.fail(f"{label} takes one input, got {len(inputs)}: {', '.join(inputs)}", where)
        if arity is not None and arity > 1 and len(inputs) not in (1, arity):
            raise self.fail(f"{label} takes one input or {arity}, got {len(inputs)}: {', '.join(inputs)}", where)
        if arity is None and len(inputs) < 2:
            raise self.fail(f"{label} merges two or more inputs: write them as from = [\"a\", \"b\"]",
                            where or line)
        return inputs

    def _all_names(self) -> set[str]:
        names = set()
        for line in self.lines:
            match = re.match(r"""\s*name\s*=\s*["']([^"']*)["']""", line)
            if match:
                names.add(match.group(1))
        return names

    def _check_tree_name(self, layer: LayerSpec) -> None:
        """A name cannot be both a module and a folder of modules (``fc`` and ``fc.0``)."""
        parts = layer.name.split(".")
        clash = next((".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in self.nodes),
                     None)
        if clash is not None:
            short, long = clash, layer.name
        elif layer.name in self.prefixes:
            short = layer.name
            long = next(n for n in self.nodes if n.startswith(short + "."))
        else:
            return
        raise self.fail(f"{layer.label}: names {short!r} and {long!r} clash: {short!r} "
                        f"would be both a layer and a group of layers", layer.line)

    def _outputs(self, data: dict[str, Any], layers: dict[str, LayerSpec]) -> tuple[str, ...]:
        table = self._table(data, "output")
        head = next((i for i, s in enumerate(self.lines) if re.match(r"\s*\[\s*output\s*\]", s)), None)
        self._check_keys(table, ("from",), "[output]", head)
        if "from" not in table:
            return ()
        value = table["from"]
        names = [value] if isinstance(value, str) else value
        where = self.line_of("from", head)
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise self.fail(f"[output] from must be a layer name or a list of them, got {value!r}", where)
        names = [self.aliases.get(name, name) for name in names]
        for name in names:
            if name not in layers:
                raise self.fail(f"[output] from {name!r} is not a layer{suggest(name, list(layers))}", where)
        if len(set(names)) != len(names):
            raise self.fail(f"[output] from names a layer twice: {value!r}", where)
        return tuple(names)

    def _shape_value(self, value: Any, symbols: set[str], what: str,
                     line: int | None) -> tuple[Size, ...] | None:
        if value is None:
            return None
        if not isinstance(value, list) or not value:
            raise self.fail(f"{what} must be a list of sizes, got {value!r}", line)
        out: list[Size] = []
        for entry in value:
            if isinstance(entry, str):
                try:
                    out.append(parse_size_expr(entry, symbols))
                except ExprSyntaxError as exc:
                    raise self.fail(f"{what}: {exc}", line) from None
            elif isinstance(entry, int) and not isinstance(entry, bool) and entry >= 1:
                out.append(entry)
            else:
                raise self.fail(f"{what} entries must be positive integers or expressions, "
                                f"got {entry!r}", line)
        return tuple(out)

    def _count(self, value: Any, what: str, line: int | None) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(f"{what} must be a non-negative integer, got {value!r}", line)
        return value

    def _bool(self, value: Any, what: str, line: int | None) -> bool:
        if not isinstance(value, bool):
            raise self.fail(f"{what} must be true or false, got {value!r}", line)
        return value

    def _expect(self, data: dict[str, Any], input_shape: tuple[int | str, ...]) -> Expectations:
        table = self._table(data, "expect")
        head = next((i for i, s in enumerate(self.lines) if re.match(r"\s*\[\s*expect\s*\]", s)), None)
        self._check_keys(table, EXPECT_KEYS, "[expect]", head)
        symbols = {s for s in input_shape if isinstance(s, str)}
        return Expectations(
            total_params=self._count(table.get("total_params"), "[expect] total_params",
                                     self.line_of("total_params", head)),
            trainable_params=self._count(table.get("trainable_params"), "[expect] trainable_params",
                                         self.line_of("trainable_params", head)),
            output_shape=self._shape_value(table.get("output_shape"), symbols,
                                           "[expect] output_shape", self.line_of("output_shape", head)),
        )
