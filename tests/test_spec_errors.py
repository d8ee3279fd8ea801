"""Every error a user can cause: one line naming file, layer and value; exit 2; no traceback."""

from __future__ import annotations

import pytest
from conftest import fails

HEAD = '[input]\nshape = [1, 101, 40]\n'
CONV = '[[layers]]\nname = "conv1"\ntype = "Conv2d"\nout_channels = 8\nkernel_size = 5\n'


def test_toml_syntax_error_names_the_line(cli, write_spec):
    err = fails(cli, write_spec(HEAD + "[[layers]]\ntype = \n"))
    assert "model.toml:4" in err and "invalid TOML" in err


def test_unknown_layer_type_suggests_the_nearest(cli, write_spec):
    err = fails(cli, write_spec(HEAD + '[[layers]]\ntype = "Conv2D"\n'))
    assert "unknown layer type 'Conv2D'" in err and "did you mean 'Conv2d'" in err
    err = fails(cli, write_spec(HEAD + '[[layers]]\ntype = "Maxpool2d"\nkernel_size = 2\n'))
    assert "did you mean 'MaxPool2d'" in err


def test_unknown_argument_suggests_the_nearest(cli, write_spec):
    err = fails(cli, write_spec(HEAD + CONV + "kernal_size = 3\n"))
    assert "model.toml:8" in err and "layer 1 'conv1' (Conv2d)" in err
    assert "unknown argument 'kernal_size'" in err and "did you mean 'kernel_size'" in err


def test_missing_argument(cli, write_spec):
    err = fails(cli, write_spec(HEAD + '[[layers]]\ntype = "Conv2d"\nkernel_size = 3\n'))
    assert "missing required argument 'out_channels'" in err and "layer 1" in err


@pytest.mark.parametrize("line,expected", [
    ("kernel_size = 0", "kernel_size entries must be integers >= 1, got 0"),
    ("kernel_size = -3", "got -3"),
    ("kernel_size = 2.5", "got 2.5"),
    ("kernel_size = true", "got True"),
    ("kernel_size = [3, 3, 3]", "list of 2 integers"),
    ("stride = 0", "stride entries must be integers >= 1"),
    ("padding = -1", "padding entries must be integers >= 0"),
    ('padding = "full"', "'same' or 'valid'"),
    ("groups = 3", "out_channels = 8 is not divisible by groups = 3"),
    ('padding = "same"\nstride = 2', "padding='same' needs stride 1"),
    ('padding_mode = "mirror"', "padding_mode must be one of"),
])
def test_bad_argument_values(cli, write_spec, line, expected):
    text = HEAD + CONV.replace("kernel_size = 5\n", "") + line + "\n"
    if not line.startswith("kernel_size"):
        text += "kernel_size = 5\n"
    err = fails(cli, write_spec(text))
    assert expected in err and "conv1" in err


def test_size_that_becomes_non_positive_names_the_layer(cli, write_spec):
    text = HEAD + CONV + '[[layers]]\nname = "big"\ntype = "Conv2d"\nout_channels = 4\nkernel_size = 99\n'
    err = fails(cli, write_spec(text))
    assert "model.toml:8" in err and "layer 2 'big' (Conv2d)" in err
    assert "output H would be -1" in err


def test_stated_in_features_must_agree(cli, write_spec):
    text = HEAD + '[[layers]]\ntype = "Flatten"\n[[layers]]\nname = "fc"\ntype = "Linear"\n' \
        'in_features = 4000\nout_features = 3\n'
    err = fails(cli, write_spec(text))
    assert "layer 2 'fc' (Linear)" in err and "in_features = 4000 disagrees with the incoming size 4040" in err


def test_wrong_rank_is_explained(cli, write_spec):
    text = '[input]\nshape = [40]\n' + CONV
    err = fails(cli, write_spec(text))
    assert "takes a per-sample input (C, H, W), got [40] (1 axes)" in err


def test_bad_set_values(cli, write_spec):
    path = write_spec('[input]\nshape = [1, "T", 40]\n' + CONV)
    assert "write NAME=INTEGER" in fails(cli, path, "--set", "T")
    assert "positive integer" in fails(cli, path, "--set", "T=abc")
    assert "positive integer" in fails(cli, path, "--set", "T=0")
    assert "has no symbol 'X'" in fails(cli, path, "--set", "X=3")
    err = fails(cli, path, "--set", "T=3")
    assert "layer 1 'conv1'" in err and "T=3" in err and "valid: T >= 5" in err


def test_impossible_symbol_condition(cli, write_spec):
    text = '[input]\nshape = [1, "T", 40]\n' + CONV + \
        '[[layers]]\ntype = "Flatten"\n[[layers]]\nname = "fc"\ntype = "Linear"\nin_features = 1001\n' \
        'out_features = 3\n'
    err = fails(cli, write_spec(text))
    assert "no value of T" in err and "'fc'" in err


def test_missing_file_and_directory(cli, tmp_path):
    assert "no such file" in fails(cli, tmp_path / "nope.toml")
    assert "is a directory" in fails(cli, tmp_path)


def test_structure_errors(cli, write_spec):
    assert "at least one [[layers]]" in fails(cli, write_spec(HEAD))
    assert "unknown table [layer]" in fails(cli, write_spec(HEAD + "[layer]\nx = 1\n"))
    assert "unknown table [inputs] (did you mean 'input'?)" in fails(cli, write_spec("[inputs]\nshape = [1]\n"))
    assert "duplicate layer name 'conv1'" in fails(cli, write_spec(HEAD + CONV + CONV))
    assert "[input] shape" in fails(cli, write_spec('[input]\nshape = [1, 0]\n' + CONV))
    assert "not a valid symbol name" in fails(cli, write_spec('[input]\nshape = [1, "2T"]\n' + CONV))
    assert "not a symbol of the input shape" in fails(
        cli, write_spec(HEAD + "[symbols]\nT = 3\n" + CONV))
    assert "unknown key 'total_param'" in fails(
        cli, write_spec(HEAD + CONV + "[expect]\ntotal_param = 3\n"))
    assert "expect_shape" in fails(cli, write_spec(HEAD + CONV + 'expect_shape = ["T + 1"]\n'))


def test_flatten_and_softmax_axes(cli, write_spec):
    err = fails(cli, write_spec(HEAD + '[[layers]]\ntype = "Flatten"\nstart_dim = 0\n'))
    assert "merge the batch axis" in err
    err = fails(cli, write_spec(HEAD + '[[layers]]\ntype = "Softmax"\ndim = 4\n'))
    assert "dim = 4 is out of range for a 4-d input" in err


def test_absurdly_large_numbers_do_not_hang(cli, write_spec):
    big = 10**30
    text = f'[input]\nshape = [1, {big}, 40]\n' + CONV + \
        f'[[layers]]\ntype = "Flatten"\n[[layers]]\ntype = "Linear"\nout_features = {big}\n'
    result = cli("params", write_spec(text), "--json")
    assert result.exit_code == 0
    assert "8*(10**30 - 4)*36" not in result.stdout
    import json
    doc = json.loads(result.stdout)
    assert doc["total_params"] == 208 + (8 * (big - 4) * 36 + 1) * big
    path = write_spec('[input]\nshape = [1, "T", 40]\n' + CONV)
    result = cli("shapes", path, "--set", f"T={10**40}", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["layers"][0]["output_shape"][1] == 10**40 - 4
    err = fails(cli, write_spec(HEAD + CONV.replace("kernel_size = 5", f"kernel_size = {10**20}")))
    assert "output H would be" in err


def test_module_attribute_list_is_torchs_own():
    """The names refused at load are every public attribute of the modules archcalc builds."""
    import torch
    import torch.fx

    from archcalc.spec.reader import MODULE_ATTRIBUTES

    public = set()
    for cls in (torch.nn.Module, torch.nn.Sequential, torch.fx.GraphModule):
        public |= {n for n in dir(cls) if not n.startswith("_")}
    graph = torch.fx.GraphModule(torch.nn.Module(), torch.fx.Graph())
    public |= {n for n in vars(graph) if not n.startswith("_")}
    assert public <= MODULE_ATTRIBUTES


@pytest.mark.parametrize("name", ["training", "forward", "to", "eval", "pop", "code", "layer1.graph", "_private"])
def test_names_that_are_module_attributes_are_refused_at_load(cli, write_spec, name):
    text = HEAD + f'[[layers]]\nname = "{name}"\ntype = "Flatten"\n[[layers]]\ntype = "Linear"\nout_features = 3\n'
    err = fails(cli, write_spec(text))
    assert "model.toml:4" in err and "cannot name a module" in err
    for command in ("check", "params"):
        result = cli(command, write_spec(text))
        assert result.exit_code == 2 and "Traceback" not in result.output


@pytest.mark.parametrize(("line", "expected"), [
    ("sgd_lr = inf", "[train] sgd_lr must be a finite number >= 0, got inf"),
    ("adam_lr = nan", "[train] adam_lr must be a finite number >= 0, got nan"),
    ("sgd_momentum = -0.5", "got -0.5"),
    ("epochs = 0", "[train] epochs must be from 1"),
    ("batch_size = 2.5", "[train] batch_size must be an integer, got 2.5"),
    ("seed = true", "[train] seed must be an integer, got True"),
    ("sgd_lrr = 0.1", "[train] has no key 'sgd_lrr' (did you mean 'sgd_lr'?)"),
])
def test_train_table_is_checked_when_the_spec_is_read(cli, write_spec, line, expected):
    """A bad [train] value is the spec's error, with its line, for every command (not only bench)."""
    err = fails(cli, write_spec(HEAD + CONV + f"[train]\n{line}\n"))
    assert "model.toml:9" in err and expected in err


def test_lint_table_is_checked_when_the_spec_is_read(cli, write_spec):
    err = fails(cli, write_spec(HEAD + CONV + '[lint]\nignore = ["final-softmx"]\n'))
    assert "model.toml:9" in err and "no rule 'final-softmx' (did you mean 'final-softmax'?)" in err
    err = fails(cli, write_spec(HEAD + CONV + '[lint]\nignor = []\n'))
    assert "[lint] has no key 'ignor'" in err


def test_deep_nesting_and_size_limits(cli, write_spec, tmp_path):
    err = fails(cli, write_spec(HEAD + CONV + "x = " + "[" * 600 + "]" * 600 + "\n"))
    assert "nested too deeply" in err
    err = fails(cli, write_spec(HEAD + CONV + "x = " + "{a=" * 50_000 + "1" + "}" * 50_000 + "\n"))
    assert "nested too deeply" in err
    big = tmp_path / "big.toml"
    big.write_bytes(b"# " + b"x" * 10_000_001 + b"\n")
    err = fails(cli, big)
    assert "larger than 10 MB" in err
    many = HEAD + '[[layers]]\ntype = "ReLU"\n' * 100_001
    err = fails(cli, write_spec(many))
    assert "100,001 [[layers]] tables: at most 100,000 layers" in err


def test_an_endless_file_is_not_read_forever(cli):
    import os

    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    err = fails(cli, "/dev/zero")
    assert "larger than 10 MB" in err


def test_not_utf8(cli, tmp_path):
    path = tmp_path / "latin.toml"
    path.write_bytes(HEAD.encode() + b'[[layers]]\nname = "caf\xe9"\ntype = "ReLU"\n')
    err = fails(cli, path)
    assert "not UTF-8 text" in err


def test_input_dtype(cli, write_spec):
    err = fails(cli, write_spec(HEAD.replace("shape", 'dtype = "complex"\nshape') + CONV))
    assert "[input] dtype must be one of 'float32', 'float', 'long', 'int64', got 'complex'" in err
    err = fails(cli, write_spec(HEAD.replace("shape", 'dtype = "long"\nshape') + CONV))
    assert "reads the model input, which holds indices" in err and "only Embedding and EmbeddingBag" in err
