"""Blocks in the spec: expansion, parameters, when, repeat, and every error as one line with exit 2."""

from __future__ import annotations

import pytest
from conftest import fails

import archcalc
from archcalc.errors import SpecError
from archcalc.spec.intexpr import IntExprError, evaluate

HEAD = '[input]\nshape = [8, 16, 16]\n'
# a residual block: conv, bn, relu; the projection only when the width changes
BLOCK = '''
[blocks.res]
required = ["out"]
args = { inp = "out", stride = 1, project = "stride != 1 or inp != out" }

[[blocks.res.layers]]
name = "conv"
type = "Conv2d"
out_channels = "out"
kernel_size = 3
stride = "stride"
padding = 1

[[blocks.res.layers]]
name = "proj"
when = "project"
from = "input"
type = "Conv2d"
out_channels = "out"
kernel_size = 1
stride = "stride"

[[blocks.res.layers]]
name = "add"
type = "Add"
from = ["conv", "proj"]
'''


def spec(text: str) -> archcalc.ModelSpec:
    return archcalc.parse_spec(text, "model.toml")


def use(**keys: object) -> str:
    lines = ["[[layers]]"] + [f"{k} = {v!r}".replace("'", '"') if not isinstance(v, str) or not v.startswith("{")
                              else f"{k} = {v}" for k, v in keys.items()]
    return "\n".join(lines).replace("True", "true").replace("False", "false") + "\n"


# --------------------------------------------------------------------------- expansion

def test_repeat_stamps_dotted_copies_chained():
    s = spec(HEAD + BLOCK + use(name="stage", block="res", repeat=3, out=16, first="{ inp = 8, stride = 2 }"))
    names = [layer.name for layer in s.layers]
    assert names == ["stage.0.conv", "stage.0.proj", "stage.0.add",
                     "stage.1.conv", "stage.1.add", "stage.2.conv", "stage.2.add"]
    by = {layer.name: layer for layer in s.layers}
    assert by["stage.0.conv"].inputs == ("input",) and by["stage.0.proj"].inputs == ("input",)
    assert by["stage.0.conv"].args["stride"] == 2 and by["stage.1.conv"].args["stride"] == 1
    assert by["stage.1.conv"].inputs == ("stage.0.add",)
    assert by["stage.1.add"].inputs == ("stage.1.conv", "stage.0.add")  # proj left out: its input instead
    groups = {g.name: g for g in s.groups}
    assert groups["stage"].repeat == 3 and groups["stage"].output == "stage.2.add"
    assert dict(groups["stage.0"].args) == {"out": 16, "inp": 8, "stride": 2, "project": True}
    assert groups["stage.1"].args["project"] is False


def test_copies_and_nested_uses_are_names_for_their_outputs():
    text = (HEAD + BLOCK + use(name="stage", block="res", repeat=2, out=8)
            + '[[layers]]\nname = "sum"\ntype = "Add"\nfrom = ["stage.0", "stage"]\n')
    s = spec(text)
    assert s.layers[-1].inputs == ("stage.0.add", "stage.1.add")


def test_use_without_repeat_names_nodes_under_the_use():
    s = spec(HEAD + BLOCK + use(name="b", block="res", out=8))
    assert [layer.name for layer in s.layers] == ["b.conv", "b.add"]
    assert s.layers[1].inputs == ("b.conv", "input")


def test_layers_after_a_use_take_its_output_and_from_may_name_the_use():
    text = (HEAD + BLOCK + use(name="b", block="res", out=8)
            + '[[layers]]\nname = "relu"\ntype = "ReLU"\n'
            + '[[layers]]\nname = "sum"\ntype = "Add"\nfrom = ["b", "relu"]\n[output]\nfrom = "sum"\n')
    s = spec(text)
    by = {layer.name: layer for layer in s.layers}
    assert by["relu"].inputs == ("b.add",) and by["sum"].inputs == ("b.add", "relu")


def test_block_output_key_and_nested_blocks_and_trainable():
    text = HEAD + '''
[blocks.inner]
args = { c = 4 }
output = "a"
layers = [
  { name = "a", type = "Conv2d", out_channels = "2*c", kernel_size = 1 },
  { name = "b", type = "ReLU" },
]
[blocks.outer]
args = { w = 3 }
layers = [
  { name = "x", block = "inner", c = "w + 1" },
  { name = "y", block = "inner", repeat = "w - 1", c = "w" },
]
''' + use(name="o", block="outer", trainable=False)
    s = spec(text)
    names = [layer.name for layer in s.layers]
    assert names == ["o.x.a", "o.x.b", "o.y.0.a", "o.y.0.b", "o.y.1.a", "o.y.1.b"]
    by = {layer.name: layer for layer in s.layers}
    assert by["o.x.a"].args["out_channels"] == 8 and by["o.y.0.a"].args["out_channels"] == 6
    assert by["o.y.0.a"].inputs == ("o.x.a",)  # inner's output is `a`, not the last layer
    assert by["o.y.1.a"].inputs == ("o.y.0.a",)
    assert not any(layer.trainable for layer in s.layers)
    analysis = archcalc.analyze(s)
    assert analysis.trainable_params == 0 and analysis.total_params == (8 * 8 + 8) + (8 * 6 + 6) + (6 * 6 + 6)


def test_strings_that_are_not_parameters_stay_literal():
    text = HEAD + '''
[blocks.up]
args = { mode = "nearest", scale = 2 }
layers = [{ name = "u", type = "Upsample", scale_factor = "scale", mode = "mode" },
          { name = "c", type = "Conv2d", out_channels = 4, kernel_size = 3, padding = "same" }]
''' + use(name="u", block="up")
    s = spec(text)
    assert s.layers[0].args["mode"] == "nearest" and s.layers[1].args["padding"] == "same"


def test_alternatives_under_one_name():
    """Two layers may share a name when their conditions keep at most one (torchvision's conv.0)."""
    text = HEAD + '''
[blocks.b]
args = { t = 1 }
layers = [
  { name = "conv.0", when = "t != 1", type = "Conv2d", out_channels = 16, kernel_size = 1 },
  { name = "conv.0", when = "t == 1", type = "Conv2d", out_channels = 8, kernel_size = 3, padding = 1 },
]
''' + use(name="x", block="b") + use(name="y", block="b", t=6)
    s = spec(text)
    assert [(layer.name, layer.args["out_channels"]) for layer in s.layers] == [("x.conv.0", 8), ("y.conv.0", 16)]


# --------------------------------------------------------------------------- the expression language

@pytest.mark.parametrize(("text", "value"), [
    ("4*out", 256), ("(out + 1) // 2", 32), ("out % 7", 1), ("-out + 1", -63),
    ("stride != 1 or out == 64", True), ("stride != 1 or out != 64", False), ("not (stride == 1 and out == 64)", False), ("true", True),
    ("out >= 64 and out < 65", True),
])
def test_expressions(text, value):
    assert evaluate(text, {"out": 64, "stride": 1}) == value


@pytest.mark.parametrize(("text", "message"), [
    ("out / 2", "write // for floor division"), ("out // 0", "division by zero"),
    ("1 < out < 3", "chained comparison"), ("out and true", "needs true/false"),
    ("(" * 200 + "1" + ")" * 200, "nested deeper than"), ("-" * 500 + "1", "nested deeper than"),
    ("9" * 40, "more than 30 digits"), ("out" + "*out" * 20, "beyond 10**30"),
    ("x + 1", "unknown parameter 'x'"), ("__import__('os')", "not an expression"), ("out.real", "not an expression"), ("out +", "expected"),
    ("1" * 2000, "longer than"),
])
def test_bad_expressions(text, message):
    with pytest.raises(IntExprError, match=message.replace("*", r"\*").replace("(", r"\(")):
        evaluate(text, {"out": 64, "stride": 1})


# --------------------------------------------------------------------------- every error: one line, exit 2

@pytest.mark.parametrize(("text", "expected"), [
    (BLOCK + use(name="b", block="res"), ["model.toml:", "missing argument 'out'"]),
    (BLOCK + use(name="b", block="rez", out=8), ["block 'rez' is not defined", "did you mean 'res'"]),
    (BLOCK + use(name="b", block="res", out=8, outt=3), ["unknown argument 'outt'", "takes: out, inp"]),
    (BLOCK + use(name="b", block="res", out=8, repeat=0), ["repeat must be an integer from 1", "got 0"]),
    (BLOCK + use(name="b", block="res", out=8, repeat=-2), ["repeat must be", "got -2"]),
    (BLOCK + use(name="b", block="res", out=8, repeat="two"), ["repeat must be", "got 'two'"]),
    (BLOCK + use(name="b", block="res", out=8, first="{ stride = 2 }"), ["first sets the first copy's"]),
    (BLOCK + use(name="b", block="res", out=8, repeat=2, first="{ strid = 2 }"),
     ["first names 'strid'", "did you mean 'stride'"]),
    (BLOCK + use(name="b", block="res", type="Conv2d", out=8), ["either type or block"]),
    (BLOCK.replace('out_channels = "out"\nkernel_size = 3', 'out_channels = "4*ouy"\nkernel_size = 3')
     + use(name="b", block="res", out=8),
     ["model.toml:11:", "unknown parameter 'ouy'", "did you mean 'out'", "as used by 'b' at line"]),
    (BLOCK.replace('out_channels = "out"\nkernel_size = 3', 'out_channels = "ouy"\nkernel_size = 3')
     + use(name="b", block="res", out=8), ["'ouy': not a parameter of this block", "did you mean 'out'"]),
    (BLOCK.replace('when = "project"', 'when = "projekt"') + use(name="b", block="res", out=8),
     ["when 'projekt': unknown parameter", "did you mean 'project'"]),
    (BLOCK.replace('when = "project"', 'when = "out"') + use(name="b", block="res", out=8),
     ["is 8, not true or false"]),
    (BLOCK.replace('out_channels = "out"\nkernel_size = 3', 'out_channels = "out - 8"\nkernel_size = 3')
     + use(name="b", block="res", out=8), ["'b.conv' (Conv2d): out_channels must be an integer >= 1, got 0",
                                           "in block 'res' as used by 'b'"]),
    (BLOCK.replace('from = ["conv", "proj"]', 'from = ["conv", "projj"]') + use(name="b", block="res", out=8),
     ["from 'projj' is not the input or a layer above it in block 'res'", "did you mean 'proj'"]),
    ('[blocks.a]\nlayers = [{ name = "x", block = "a" }]\n' + use(name="u", block="a"),
     ["block 'a' uses itself (a -> a)"]),
    ('[blocks.a]\nlayers = [{ name = "x", block = "b" }]\n[blocks.b]\nlayers = [{ name = "y", block = "a" }]\n'
     + use(name="u", block="a"), ["block 'a' uses itself (a -> b -> a)"]),
    ('[blocks.a]\nargs = { p = "q", q = "p" }\nlayers = [{ name = "r", type = "ReLU" }]\n' + use(name="u", block="a"),
     ["defaults of p, q refer to each other"]),
    ('[blocks.a]\nlayers = [{ name = "r", type = "ReLU" }, { name = "r", type = "ReLU" }]\n' + use(block="a"),
     ["layer name 'r' is used twice"]),
    ('[blocks.a]\noutput = "z"\nlayers = [{ name = "r", type = "ReLU" }]\n' + use(block="a"),
     ["output 'z' is not a layer of the block"]),
    ('[blocks.a]\nlayers = []\n' + use(block="a"), ["needs at least one [[blocks.a.layers]]"]),
    ('[blocks.a]\nrequired = ["p"]\nargs = { p = 1 }\nlayers = [{ type = "ReLU" }]\n' + use(block="a"),
     ["'p' is both required and given a default"]),
    ('[blocks.Conv2d]\nlayers = [{ type = "ReLU" }]\n' + use(block="Conv2d"), ["is a layer type"]),
    ('[blocks.a]\nlayers = [{ type = "ReLU" }]\nlayerz = 1\n' + use(block="a"),
     ["unknown key 'layerz' in [blocks.a]", "did you mean 'layers'"]),
    ('[blocks.a]\nargs = { n = 3 }\nlayers = [{ name = "c", block = "a2", repeat = "n - 3" }]\n'
     '[blocks.a2]\nlayers = [{ type = "ReLU" }]\n' + use(block="a"), ["repeat must be an integer from 1", "got 0"]),
    ('[[layers]]\ntype = "ReLU"\nwhen = "true"\n', ["when chooses layers by block parameters"]),
    ('[blocks.a]\nargs = { repeat = 1 }\nlayers = [{ type = "ReLU" }]\n' + use(block="a"),
     ["parameter 'repeat' is a key of a block use"]),
    ('[blocks.a]\nlayers = [{ type = "ReLU" }]\n' + use(name="u", block="a") + use(name="u", block="a"),
     ["a block use named 'u' is written above"]),
    ('[blocks.a]\nlayers = [{ name = "r", type = "ReLU", when = "false" }]\n' + use(name="u", block="a"),
     ["the spec has no layers"]),
    ('[blocks.a]\noutput = "r"\nlayers = [{ name = "r", type = "ReLU", when = "false" }, { name = "s", '
     'type = "ReLU" }]\n' + use(name="u", block="a"), ["output 'r' is left out by its when"]),
    ('[blocks.a]\nargs = { c = "d * 2" }\nlayers = [{ type = "ReLU" }]\n' + use(block="a"),
     ["the default of c names 'd', not a parameter", "(parameters: c)"]),
    ('[blocks.a]\nargs = { c = 3 }\nlayers = [{ name = "r", type = "ReLU" }, { name = "q", type = "Conv2d", '
     'out_channels = "c", kernel_size = 1, dilation = 0 }]\n' + use(name="u", block="a"),
     ["model.toml:5:", "'u.q' (Conv2d): dilation"]),
    ('[blocks.a]\nlayers = [{ name = "m", when = "false", type = "Add", from = ["input", "input"] },'
     ' { name = "r", type = "ReLU", from = "m" }]\n' + use(block="a"), ["names a merge left out by its when"]),
])
def test_block_errors_are_one_line(cli, write_spec, text, expected):
    err = fails(cli, write_spec(HEAD + text))
    for fragment in expected:
        assert fragment in err, err


def test_nesting_and_size_limits(cli, write_spec):
    chain = "".join(f'[blocks.b{i}]\nlayers = [{{ name = "x", block = "b{i + 1}" }}]\n' for i in range(20))
    chain += '[blocks.b20]\nlayers = [{ type = "ReLU" }]\n'
    err = fails(cli, write_spec(HEAD + chain + use(block="b0")))
    assert "nested deeper than 16 levels" in err
    bomb = ('[blocks.a]\nlayers = [{ name = "r", type = "ReLU", when = "false" }]\n'
            '[blocks.b]\nlayers = [{ name = "x", block = "a", repeat = 100000 }]\n'
            '[[layers]]\nname = "pre"\ntype = "ReLU"\n' + use(name="u", block="b", repeat=100000))
    err = fails(cli, write_spec(HEAD + bomb))  # copies that add no node still count: no hang
    assert "more than 100,000 nodes and block copies" in err
    many = '[blocks.a]\nlayers = [{ type = "ReLU" }, { type = "ReLU" }]\n' + use(block="a", repeat=60000)
    err = fails(cli, write_spec(HEAD + many))
    assert "more than 100,000 nodes" in err


def test_errors_name_the_line_of_the_block_layer():
    text = HEAD + BLOCK.replace("kernel_size = 3\n", "kernel_size = 3\ndilation = 0\n") + use(name="b", block="res", out=8)
    with pytest.raises(SpecError) as info:
        spec(text)
    line = (HEAD + BLOCK).splitlines().index("kernel_size = 3") + 2
    assert info.value.source == f"model.toml:{line}"
    assert "'b.conv'" in info.value.message and "dilation" in info.value.message


def test_block_use_expectations_are_checked(cli, write_spec):
    good = HEAD + BLOCK + use(name="b", block="res", out=8, expect_shape=[8, 16, 16], expect_params=8 * 8 * 9 + 8)
    result = cli("check", "--no-torch", write_spec(good))
    assert result.exit_code == 0, result.output
    assert "b (res)" in result.stdout
    bad = HEAD + BLOCK + use(name="b", block="res", out=8, expect_params=1)
    result = cli("check", "--no-torch", write_spec(bad))
    assert result.exit_code == 1 and "FAILED" in result.stdout
